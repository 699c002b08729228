"""Look up a task by name."""

from __future__ import annotations

from typing import Any

from ._base import AbstractTask
from ._continuous import AngularIntegration, FlipFlop, Integrator
from ._decision import ContextDecisionMaking, MultiSensoryIntegration, PerceptualDecisionMaking
from ._memory import DelayComparison, GoNoGo
from ._timing import IntervalDiscrimination, ReadySetGo

TASKS: dict[str, type[AbstractTask]] = {
    cls.__name__: cls
    for cls in (PerceptualDecisionMaking, ContextDecisionMaking, IntervalDiscrimination,
                DelayComparison, MultiSensoryIntegration, GoNoGo, ReadySetGo, FlipFlop,
                Integrator, AngularIntegration)
}

# Abbreviations used in the literature and NeuroGym's spellings.
_ALIASES = {
    "pdm": "PerceptualDecisionMaking",
    "cdm": "ContextDecisionMaking",
    "id": "IntervalDiscrimination",
    "dc": "DelayComparison",
    "parametricworkingmemory": "DelayComparison",
    "msi": "MultiSensoryIntegration",
    "multisensory": "MultiSensoryIntegration",
    "rsg": "ReadySetGo",
    "3bitflipflop": "FlipFlop",
}


def _key(name: str) -> str:
    name = name.lower()
    if name.endswith("-v0"):
        name = name[:-3]
    return "".join(c for c in name if c.isalnum())


_LOOKUP = {_key(k): k for k in TASKS} | {_key(k): v for k, v in _ALIASES.items()}


def get_task(name: str, **kwargs: Any) -> AbstractTask:
    """Build a task from its name.

    **Arguments:**

    - `name`: a class name (`"PerceptualDecisionMaking"`), a NeuroGym environment id
      (`"GoNogo-v0"`) or an abbreviation (`"PDM"`, `"CDM"`, `"ID"`, `"DC"`, `"MSI"`,
      `"RSG"`); case, `-`, `_` and spaces are ignored.
    - `**kwargs`: the task's constructor options.

    **Returns:** the task.

    **Raises:** `ValueError` for an unknown name (listing the known ones) or invalid options.
    """
    if not isinstance(name, str) or _key(name) not in _LOOKUP:
        raise ValueError(
            f"unknown task {name!r}; known tasks are {sorted(TASKS)} (abbreviations "
            f"{sorted(a.upper() for a in ('pdm', 'cdm', 'id', 'dc', 'msi', 'rsg'))})."
        )
    return TASKS[_LOOKUP[_key(name)]](**kwargs)
