"""Training recipes: the `jd.train` options that train each task, in one place.

Every entry was measured on the CPU in float32 over three seeds (64 hidden units; CTRNNs with
`dt = task.dt` and `tau = 2·dt`), and the choice-task entries are what `tests/test_recipes.py`
checks. `jd.train`'s defaults (Adam at 1e-2 with a cosine decay, clipping at 1, 1,000 steps of
32 trials) are the recipe wherever the table says nothing.

- PerceptualDecisionMaking, every architecture (GRU, LSTM, CTRNN tanh/ReLU, scaled CTRNN,
  vanilla): the defaults; ≥ 0.95 on coherence > 0 trials (≈ 0.89 overall, as coherence-0
  trials are coin flips).
- ContextDecisionMaking, GRU, LSTM, CTRNN tanh/ReLU, scaled CTRNN: `steps=2000,
  batch_size=64, decision_weight=10`; ≥ 0.90 (an ideal observer of the relevant modality
  gets 0.94).
- FlipFlop, Integrator, AngularIntegration, GRU-32: the defaults; MSE ≤ 0.004, R² ≥ 0.99.
- IntervalDiscrimination, DelayComparison, MultiSensoryIntegration, GoNoGo, ReadySetGo, GRU:
  the defaults; 0.98, 0.99, 0.89, 1.0 and 1.0 (means of 3 seeds).

ContextDecisionMaking (NeuroGym 2.x layout) gives no cue at the decision step after a
variable delay, and its answer counts only at that one step: with plain cross-entropy
(`decision_weight=1`) networks learn to keep fixating and score 0, in jaxdyn as in NeuroGym +
PyTorch. Weighting the decision step 10× lets them answer.
"""

from __future__ import annotations

from typing import Any

_RECIPES: dict[str, dict[str, Any]] = {
    "ContextDecisionMaking": {"steps": 2000, "batch_size": 64, "decision_weight": 10.0},
}


def recipe(task: Any, model: Any = None) -> dict[str, Any]:
    """The `jd.train` options that train `model` (any of the zoo's architectures) on `task`.

    **Arguments:**

    - `task`: a task or its name.
    - `model`: the network (unused by the current table, where each task has one recipe
      for every architecture; kept so that per-architecture entries need no new signature).

    **Returns:** a dict of keyword arguments for `jd.train` (empty where the defaults are the
    recipe): `jd.train(model, task, key, **jd.tasks.recipe(task, model))`.
    """
    from ._registry import get_task

    if isinstance(task, str):
        task = get_task(task)
    return dict(_RECIPES.get(type(task).__name__, {}))
