"""Progress meters: objects passed to long calls, never module-level bars.

A meter is a small static `eqx.Module` (hashable, so it can be an argument of a jitted call).
Host loops (training, sweeps) call `meter.open(total)` and update the returned handle;
traced loops (the Newton work queue, chunked maps) call `meter.report(done, total)` inside
the compiled program, which sends the running count of finished items to the host. Each
compiled program owns its own host-side handle, created when the program is traced; it opens
a fresh bar whenever the count starts again (a new call of the same program).
"""

from __future__ import annotations

import abc
import functools
from typing import Any

import equinox as eqx
import jax
import numpy as np


class AbstractProgressMeter(eqx.Module):
    """How a long call shows its progress.

    Final subclasses implement `open(total, initial)`, returning a host-side handle with
    `update(done, **postfix)` (the absolute number of finished items) and `close()`.
    """

    @abc.abstractmethod
    def open(self, total: int, initial: int = 0) -> Any:
        """Start showing progress over `total` items, `initial` of them already done."""

    @property
    def enabled(self) -> bool:
        return True

    def report(self, done: Any, total: int) -> None:
        """Inside traced code: send the running count `done` (of `total`) to the host.

        Under `vmap` the count may be batched; the largest element is shown.
        """
        if not self.enabled:
            return
        handle = _TracedHandle(self, total)
        jax.debug.callback(functools.partial(_report, handle), done)


class NoProgressMeter(AbstractProgressMeter):
    """Show nothing (the default of every call except `sweep`, which is long work by nature)."""

    @property
    def enabled(self) -> bool:
        return False

    def open(self, total: int, initial: int = 0) -> _NullHandle:
        return _NullHandle()


class TqdmProgressMeter(AbstractProgressMeter):
    """A tqdm bar (`tqdm.auto`, so a widget in notebooks and text in a terminal).

    **Arguments:**

    - `desc`: the bar's label.
    - `unit`: the unit of the items counted.
    - `leave`: keep the finished bar on screen.
    """

    desc: str = eqx.field(static=True, default="jaxdyn")
    unit: str = eqx.field(static=True, default="it")
    leave: bool = eqx.field(static=True, default=False)

    def open(self, total: int, initial: int = 0) -> Any:
        from tqdm.auto import tqdm

        return _TqdmHandle(tqdm(total=total, initial=initial, desc=self.desc, unit=self.unit,
                                leave=self.leave, mininterval=0.5))


class _NullHandle:
    def update(self, done: int, **postfix: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _TqdmHandle:
    def __init__(self, bar):
        self.bar = bar

    def update(self, done: int, **postfix: Any) -> None:
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(int(done) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class _TracedHandle:
    """The host side of one compiled program's meter."""

    def __init__(self, meter: AbstractProgressMeter, total: int):
        self.meter, self.total = meter, int(total)
        self.handle, self.last = None, -1


def _report(traced: _TracedHandle, done) -> None:
    done = int(np.max(np.asarray(done)))
    if traced.handle is None or done < traced.last:
        if traced.handle is not None:
            traced.handle.close()
        traced.handle = traced.meter.open(traced.total)
    traced.last = done
    traced.handle.update(min(done, traced.total))
    if done >= traced.total:
        traced.handle.close()
        traced.handle, traced.last = None, -1


def as_meter(progress: Any, desc: str, unit: str = "it") -> AbstractProgressMeter:
    """`progress` as a meter: `False`/`None` → none, `True` → a tqdm bar labelled `desc`, a
    meter → itself.

    **Raises:** `ValueError` for anything else.
    """
    if isinstance(progress, AbstractProgressMeter):
        return progress
    if progress is None or progress is False:
        return NoProgressMeter()
    if progress is True:
        return TqdmProgressMeter(desc=desc, unit=unit)
    raise ValueError(f"`progress` must be True, False or a progress meter "
                     f"(jd.TqdmProgressMeter(...)); got {progress!r}.")
