"""Epoch timing shared by every task: durations in ms, converted to steps of `dt`.

**The step rule.** A duration of `d` ms lasts `floor(d / dt)` steps (with a relative tolerance of
1e-9, so that 300 ms at dt = 100 ms is 3 steps despite rounding). This is NeuroGym's rule
(`duration = (d // dt) * dt`): 750 ms is 7 steps at dt = 100, 83 ms is 1 step at dt = 80.
Random durations are drawn in ms and then floored, so their distribution over steps is the one
NeuroGym produces (e.g. U(300, 600) ms at dt = 80 gives 3–7 steps with unequal weights).
Zero-length epochs are allowed; an epoch that a task needs for scoring (its decision epoch)
must last at least one step, which the task checks at construction.

**Fixed length.** A task's trials all have the same number of steps `T`, the sum of every epoch's
largest possible duration. Shorter trials end with padding: epoch index −1, zero inputs, zero
loss weight.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Int, PRNGKeyArray

_TOL = 1e-9


def _check_ms(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number of milliseconds; got {value!r}.")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"`{name}` must be {'> 0' if positive else '>= 0'} ms; got {value!r}.")
    return float(value)


def check_dt(dt: Any) -> float:
    """The step length in ms: a finite number > 0."""
    return _check_ms(dt, "dt", positive=True)


def to_steps(ms: float, dt: float) -> int:
    """`floor(ms / dt)` steps, NeuroGym's rule, with a 1e-9 relative tolerance."""
    return int(math.floor(ms / dt * (1 + _TOL)))


def _below(ms: float, dt: float) -> int:
    """The largest step count `k` with `k·dt < ms` (for a half-open upper bound)."""
    return int(math.ceil(ms / dt * (1 - _TOL))) - 1


class AbstractDuration(eqx.Module):
    """The duration of an epoch: a constant or a distribution in ms, sampled on the step grid."""

    @abc.abstractmethod
    def bounds(self, dt: float) -> tuple[int, int]:
        """The smallest and largest number of steps this duration can take."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...], dt: float) -> Int[Array, "*shape"]:
        """Durations in steps, shape `shape`."""


class Constant(AbstractDuration):
    """A fixed duration of `ms` milliseconds."""

    ms: float = eqx.field(static=True)

    def __check_init__(self):
        _check_ms(self.ms, "duration")

    def bounds(self, dt):
        n = to_steps(self.ms, dt)
        return n, n

    def sample(self, key, shape, dt):
        return jnp.full(shape, to_steps(self.ms, dt), dtype=jnp.int32)


class Uniform(AbstractDuration):
    """A duration drawn uniformly from `[low, high)` ms, then floored to the step grid."""

    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)

    def __check_init__(self):
        _check_ms(self.low, "Uniform low")
        _check_ms(self.high, "Uniform high")
        if not self.low < self.high:
            raise ValueError(
                f"a Uniform duration needs low < high; got low={self.low!r}, high={self.high!r}."
            )

    def bounds(self, dt):
        lo = to_steps(self.low, dt)
        return lo, max(lo, _below(self.high, dt))

    def sample(self, key, shape, dt):
        ms = jr.uniform(key, shape, minval=self.low, maxval=self.high)
        return _floor_clip(ms, dt, *self.bounds(dt))


class TruncExp(AbstractDuration):
    """An exponential duration of mean `mean` ms conditioned on `low <= d < high`.

    NeuroGym draws it by rejection; the inverse of the truncated CDF gives the same distribution
    without a loop.
    """

    mean: float = eqx.field(static=True)
    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)

    def __check_init__(self):
        _check_ms(self.mean, "TruncExp mean", positive=True)
        _check_ms(self.low, "TruncExp low")
        _check_ms(self.high, "TruncExp high")
        if not self.low < self.high:
            raise ValueError(
                f"a TruncExp duration needs low < high; got low={self.low!r}, high={self.high!r}."
            )

    def bounds(self, dt):
        lo = to_steps(self.low, dt)
        return lo, max(lo, _below(self.high, dt))

    def sample(self, key, shape, dt):
        u = jr.uniform(key, shape)
        span = -math.expm1(-(self.high - self.low) / self.mean)
        ms = self.low - self.mean * jnp.log1p(-u * span)
        return _floor_clip(ms, dt, *self.bounds(dt))


class Choice(AbstractDuration):
    """A duration drawn with equal probability from `values` (ms)."""

    values: tuple[float, ...] = eqx.field(static=True, converter=tuple)

    def __check_init__(self):
        if len(self.values) == 0:
            raise ValueError("a Choice duration needs at least one value; got ().")
        for v in self.values:
            _check_ms(v, "Choice value")

    def bounds(self, dt):
        steps = [to_steps(v, dt) for v in self.values]
        return min(steps), max(steps)

    def sample(self, key, shape, dt):
        steps = jnp.asarray([to_steps(v, dt) for v in self.values], dtype=jnp.int32)
        return steps[jr.randint(key, shape, 0, len(self.values))]


def _floor_clip(ms: Array, dt: float, lo: int, hi: int) -> Int[Array, "*shape"]:
    # The clip guards the half-open upper bound against floating-point rounding.
    steps = jnp.floor(ms / dt * (1 + _TOL)).astype(jnp.int32)
    return jnp.clip(steps, lo, hi)


def as_duration(value: Any, name: str) -> AbstractDuration:
    """A duration from a number (ms), a duration object, a list of numbers (a choice) or a
    NeuroGym-style tuple: `("uniform", (low, high))`, `("truncated_exponential", (mean, low,
    high))`, `("choice", values)`, `("constant", ms)`."""
    if isinstance(value, AbstractDuration):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return Constant(_check_ms(value, name))
    try:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            kind, args = value
            if kind == "uniform":
                return Uniform(*args)
            if kind == "truncated_exponential":
                return TruncExp(*args)
            if kind == "choice":
                return Choice(args)
            if kind == "constant":
                return Constant(args)
        elif isinstance(value, (list, tuple)):
            return Choice(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` is not a valid duration: {e}") from None
    raise ValueError(
        f"`{name}` must be a duration in ms (a number), Uniform(low, high), TruncExp(mean, low, "
        f"high), Choice(values) or a NeuroGym tuple such as ('uniform', (low, high)); "
        f"got {value!r}."
    )


Timing = tuple[tuple[str, AbstractDuration], ...]


def make_timing(defaults: Mapping[str, Any], timing: Mapping[str, Any] | None, dt: float,
                *, required: tuple[str, ...] = ("decision",)) -> Timing:
    """Merge user `timing` into a task's `defaults` (same keys, same order) and check it.

    **Raises:** `ValueError` for an unknown epoch name, an invalid duration, or a `required`
    epoch that is shorter than one step at this `dt`.
    """
    timing = {} if timing is None else timing
    if not isinstance(timing, Mapping):
        raise ValueError(f"`timing` must be a dict of epoch durations; got {timing!r}.")
    unknown = [k for k in timing if k not in defaults]
    if unknown:
        raise ValueError(
            f"`timing` has unknown epoch(s) {unknown}; this task's epochs are {list(defaults)}."
        )
    merged = {**defaults, **timing}
    out = tuple((k, as_duration(v, f"timing[{k!r}]")) for k, v in merged.items())
    for name, dur in out:
        if name in required and dur.bounds(dt)[0] < 1:
            raise ValueError(
                f"`timing[{name!r}]` must last at least one step of dt = {dt} ms (durations are "
                f"floored to whole steps); got {dur!r}."
            )
    return out


def max_steps(timing: Timing, dt: float) -> int:
    """The fixed trial length `T`: the sum of the largest durations."""
    return sum(d.bounds(dt)[1] for _, d in timing)


def sample_durations(key: PRNGKeyArray, timing: Timing, dt: float,
                     batch_size: int) -> dict[str, Int[Array, " B"]]:
    """One duration in steps per trial and epoch."""
    keys = jr.split(key, len(timing))
    return {name: d.sample(k, (batch_size,), dt) for k, (name, d) in zip(keys, timing)}


class Schedule(eqx.Module):
    """The epochs of a batch of trials laid end to end on `n_steps` steps.

    **Arguments:**

    - `names`: the epoch names, in order.
    - `durations`: `[B, E]` steps per trial and epoch.
    - `n_steps`: the fixed trial length `T` (at least the longest trial).
    """

    durations: Int[Array, "B E"]
    names: tuple[str, ...] = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)

    def __init__(self, names: tuple[str, ...], durations: Mapping[str, Array] | Array,
                 n_steps: int):
        self.names = tuple(names)
        if isinstance(durations, Mapping):
            durations = jnp.stack([jnp.asarray(durations[k]) for k in self.names], axis=-1)
        self.durations = jnp.asarray(durations, dtype=jnp.int32)
        self.n_steps = int(n_steps)

    @property
    def ends(self) -> Int[Array, "B E"]:
        return jnp.cumsum(self.durations, axis=-1, dtype=jnp.int32)

    def start(self, name: str) -> Int[Array, " B"]:
        """The first step of epoch `name` in each trial."""
        i = self.names.index(name)
        return self.ends[:, i] - self.durations[:, i]

    def end(self, name: str) -> Int[Array, " B"]:
        """One past the last step of epoch `name` in each trial."""
        return self.ends[:, self.names.index(name)]

    def index(self) -> Int[Array, "B T"]:
        """The epoch index of every step; −1 on the padding after the trial."""
        t = jnp.arange(self.n_steps, dtype=jnp.int32)[None, :, None]
        i = jnp.sum(t >= self.ends[:, None, :], axis=-1, dtype=jnp.int32)
        return jnp.where(i < len(self.names), i, -1)

    def mask(self, *names: str) -> Bool[Array, "B T"]:
        """True on the steps of any of the epochs `names`."""
        idx = self.index()
        out = jnp.zeros(idx.shape, dtype=bool)
        for name in names:
            out = out | (idx == self.names.index(name))
        return out

    def valid(self) -> Bool[Array, "B T"]:
        """True on the steps of the trial, False on its padding."""
        return self.index() >= 0


def sample_schedule(key: PRNGKeyArray, timing: Timing, dt: float, batch_size: int,
                    n_steps: int) -> Schedule:
    """A `Schedule` of `batch_size` trials with every epoch duration drawn from `timing`."""
    return Schedule(tuple(name for name, _ in timing),
                    sample_durations(key, timing, dt, batch_size), n_steps)
