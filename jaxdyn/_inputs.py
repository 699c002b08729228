"""Time-varying arguments: inputs that a system sees as a function of time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


class PiecewiseConstant(eqx.Module):
    """An input sequence held constant over steps of length `dt`: `u(t) = values[k]` for
    `t0 + k·dt ≤ t < t0 + (k+1)·dt`, clamped to the first/last value outside the range.

    This is how a task's input sequence `[T, n_in]` drives a continuous-time RNN.

    **Arguments:**

    - `values`: array `[T, ...]`, one input per step.
    - `dt`: the step length (a positive scalar).
    - `t0`: the time of the first value (default 0).
    """

    values: Float[Array, "T ..."]
    dt: Float[Array, ""]
    t0: Float[Array, ""]

    def __init__(self, values: ArrayLike, dt: ArrayLike, t0: ArrayLike = 0.0):
        from ._validate import as_float_array, check_positive

        values = as_float_array(values, "values")
        if values.ndim < 1 or values.shape[0] == 0:
            raise ValueError(
                f"`values` must have a leading time axis of length >= 1; got shape {values.shape}."
            )
        check_positive(dt, "dt")
        self.values = values
        self.dt = jnp.asarray(dt, dtype=values.dtype)
        self.t0 = jnp.asarray(t0, dtype=values.dtype)

    def __call__(self, t: ArrayLike) -> Array:
        # Times accumulated by a solver land a few ulps off the step boundaries; a small offset
        # (relative to dt) keeps a boundary time in the step that starts there.
        eps = 1000 * jnp.finfo(self.values.dtype).eps
        k = jnp.floor((t - self.t0) / self.dt + eps).astype(jnp.int32)
        return self.values[jnp.clip(k, 0, self.values.shape[0] - 1)]

    @property
    def jump_ts(self) -> Array:
        """The switching times `t0 + k·dt`, k = 1..T−1 (for adaptive step-size control)."""
        return self.t0 + self.dt * jnp.arange(1, self.values.shape[0], dtype=self.values.dtype)


def is_time_varying(args: Any) -> bool:
    """`args` is a function of time: a `PiecewiseConstant` or a plain Python callable."""
    if isinstance(args, PiecewiseConstant):
        return True
    return callable(args) and not isinstance(args, eqx.Module) and not hasattr(args, "shape")


def args_at(args: Any, t: ArrayLike) -> Any:
    """The value of possibly time-varying `args` at time `t`."""
    return args(t) if is_time_varying(args) else args


def bind_args(system: Callable, args: Any) -> Callable:
    """`f(t, x, args)` with time-varying `args` evaluated at `t`."""
    if not is_time_varying(args):
        return system
    return lambda t, x, a: system(t, x, a(t))
