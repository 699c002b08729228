"""Simulate a system: its trajectory, saved along the way, by an integrator of the family."""

from __future__ import annotations

from typing import Any

import numpy as np
from jaxtyping import ArrayLike, PyTree

from ._inputs import args_at
from ._integrate import AbstractIntegrator, Trajectory, make_integrator
from ._system import as_system
from ._validate import check_int, check_state, check_system_output, is_concrete, promote_scalars

__all__ = ["Trajectory", "simulate"]


def simulate(
    system: Any,
    x0: ArrayLike,
    args: PyTree = None,
    t1: ArrayLike | None = None,
    *,
    t0: ArrayLike = 0.0,
    ts: ArrayLike | None = None,
    n_save: int | None = None,
    integrator: AbstractIntegrator | None = None,
    dt: ArrayLike | None = None,
    solver: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int | None = None,
) -> Trajectory:
    """Simulate `system` from `x0`.

    Flows are integrated by `integrator`: adaptive Tsit5 (`jd.Adaptive`, through diffrax, with
    dense output at the save times) by default, or fixed steps (`jd.FixedStep`: classical RK4
    unless another solver is named, its tableau applied directly in `lax.scan`, which is many
    times faster under `vmap` for small systems). Maps are iterated (`jd.Iterate`) for
    `t1 − t0` steps, keeping every state. The call is one compiled program; it works under
    `jax.jit`, `jax.vmap` (over `x0`, `args` or stacked models) and `jax.grad`. Adaptive steps
    control the state's error; a reverse-mode derivative is a tangent, so its backward pass
    integrates again with the error of a probe tangent controlled too (with
    `jd.Adaptive(tangents="ride")` it differentiates the forward steps, which is wrong where
    the state settles on a fixed point). `jd.flow_map` gives the flow-map Jacobian itself.

    **Arguments:**

    - `system`: a `jd.Flow`, a `jd.Map`, an RNN model, or a callable `f(t, x, args)` (a flow).
    - `x0`: the initial state, shape `(n,)`.
    - `args`: constant arguments (an RNN's input vector), or time-varying ones: a
      `jd.PiecewiseConstant` input sequence or any Python function of `t`.
    - `t1`: final time (for a map: the final step index).
    - `t0`: initial time (default 0).
    - `ts`: times at which to save (flows), interpolated by diffrax. Default: with fixed
      steps, every step (or every `n_steps / (n_save − 1)` steps when `n_save` is given); with
      adaptive steps, `n_save` evenly spaced times (default 101) from `t0` to `t1`.
    - `n_save`: number of saved times when `ts` is not given.
    - `integrator`: a `jd.Adaptive`, `jd.FixedStep` or `jd.Iterate`; or leave it out and use
      the shortcuts:
    - `dt`: a fixed step (`jd.FixedStep(dt, solver)`); `None` (default) means adaptive steps.
    - `solver`: a diffrax solver or one of `"tsit5"`, `"dopri5"`, `"dopri8"`, `"rk4"`,
      `"euler"`, `"heun"`, `"kvaerno5"`.
    - `rtol`, `atol`: tolerances of adaptive steps (default 1e-6, 1e-8; traced values: a new
      tolerance does not recompile).
    - `max_steps`: the most attempted steps (adaptive; default 100,000).

    **Returns:** a `Trajectory` with `ts`, `xs`, `success`, `result` and `steps`.

    **Raises:** `ValueError` for a state of the wrong shape, non-finite `x0`, `args` the system
    cannot take, `t1 <= t0`, `dt <= 0`, an unknown solver, tolerances given with a fixed `dt`
    or below what the dtype resolves, or `integrator` together with its shortcuts.
    """
    system = as_system(system)
    # Python numbers in `args` would be static under jit (a recompile per value).
    args = promote_scalars(args)
    if t1 is None:
        raise ValueError("`t1` (the final time) is required; got None.")
    x0 = check_state(x0, "x0", size=system.state_size)
    for value, name in ((t0, "t0"), (t1, "t1")):
        if is_concrete(value) and not np.all(np.isfinite(np.asarray(value, dtype=float))):
            raise ValueError(f"`{name}` must be a finite number; got {value!r}.")
    if is_concrete((t0, t1)) and not float(np.asarray(t1)) > float(np.asarray(t0)):
        raise ValueError(f"`t1` must be greater than `t0`; got t0={t0!r}, t1={t1!r}.")
    integ = make_integrator(system, integrator, x0.dtype, solver=solver, dt=dt, rtol=rtol,
                            atol=atol, max_steps=max_steps)
    check_system_output(system, x0, args_at(args, t0))
    if n_save is not None:
        n_save = check_int(n_save, "n_save", minimum=2)
    if ts is not None:
        ts = check_state(ts, "ts").astype(x0.dtype)
    return integ.trajectory(system, x0, args, t0, t1, ts=ts, n_save=n_save)
