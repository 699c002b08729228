"""Simulate a system: diffrax for flows, `lax.scan` for maps."""

from __future__ import annotations

import math
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree

from ._inputs import PiecewiseConstant, args_at, bind_args
from ._solution import RESULTS
from ._system import AbstractSystem, as_system
from ._validate import (
    check_int,
    check_nonnegative,
    check_positive,
    check_state,
    check_system_output,
    is_concrete,
    promote_scalars,
)


class RK4(diffrax.AbstractERK):
    """The classical fourth-order Runge–Kutta method (fixed step; pass `dt` to `simulate`).

    Reference: Kutta (1901); the Butcher tableau with nodes (0, ½, ½, 1) and weights
    (1/6, 1/3, 1/3, 1/6).
    """

    tableau = diffrax.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.zeros(4),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    )
    interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


_SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "rk4": RK4,
    "euler": diffrax.Euler,
    "heun": diffrax.Heun,
    "kvaerno5": diffrax.Kvaerno5,
}


class Trajectory(eqx.Module):
    """A simulated trajectory.

    **Fields:**

    - `ts`: save times, shape `[T]` (step indices for a map).
    - `xs`: states at `ts`, shape `[T, n]`.
    - `success`: whether the integration finished with finite states (`result` is
      `RESULTS.successful`).
    - `result`: a `jd.RESULTS` item: `successful`; `max_steps_reached` (an adaptive
      integration ran out of `max_steps`; rows after the failure are `inf`);
      `nonfinite_state` (the state blew up; rows from the first non-finite one on are not
      valid states); `invalid_time_span` (a traced `t1` that is not after `t0`; every row is
      NaN); or another status of diffrax's.
    - `steps`: the number of solver steps taken.
    """

    ts: Float[Array, " T"]
    xs: Float[Array, "T n"]
    success: Bool[Array, ""]
    result: RESULTS
    steps: Int[Array, ""]

    def plot(self, ax=None, dims: tuple[int, ...] = (0, 1), **kwargs):
        """Draw the trajectory in the plane of two state coordinates (or one against time)."""
        from .plot import plot_trajectory

        return plot_trajectory(self, ax=ax, dims=dims, **kwargs)


def _resolve_solver(solver: Any, dt: Any):
    if solver is None:
        return RK4() if dt is not None else diffrax.Tsit5()
    if isinstance(solver, str):
        key = solver.lower()
        if key not in _SOLVERS:
            raise ValueError(f"`solver` must be one of {sorted(_SOLVERS)} or a diffrax solver; "
                             f"got {solver!r}.")
        return _SOLVERS[key]()
    if isinstance(solver, diffrax.AbstractSolver):
        return solver
    raise ValueError(f"`solver` must be a name or a diffrax solver; got {solver!r}.")


def simulate(
    system: Any,
    x0: ArrayLike,
    args: PyTree = None,
    t1: ArrayLike | None = None,
    *,
    t0: ArrayLike = 0.0,
    ts: ArrayLike | None = None,
    n_save: int | None = None,
    dt: ArrayLike | None = None,
    solver: Any = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 100_000,
) -> Trajectory:
    """Simulate `system` from `x0`.

    Flows are integrated with diffrax: adaptive Tsit5 with a PID controller by default, or a
    fixed step `dt` (classical RK4 unless `solver` says otherwise). With a fixed step, an
    explicit Runge–Kutta solver's tableau runs directly in `lax.scan` (no step-size control
    or dense output is needed), which is many times faster under `vmap` for small systems.
    Maps are iterated with `lax.scan` for `t1 − t0` steps, keeping every state. The call is
    one compiled program; it works under `jax.jit`, `jax.vmap` (over `x0`, `args` or stacked
    models) and `jax.grad`.

    **Arguments:**

    - `system`: a `jd.Flow`, a `jd.Map`, an RNN model, or a callable `f(t, x, args)` (a flow).
    - `x0`: the initial state, shape `(n,)`.
    - `args`: constant arguments (an RNN's input vector), or time-varying ones: a
      `jd.PiecewiseConstant` input sequence or any Python function of `t`.
    - `t1`: final time (for a map: the final step index).
    - `t0`: initial time (default 0).
    - `ts`: times at which to save (flows), interpolated by diffrax. Default: with a fixed `dt`,
      every step (or every `n_steps / (n_save − 1)` steps when `n_save` is given); with adaptive
      steps, `n_save` evenly spaced times (default 101) from `t0` to `t1`.
    - `n_save`: number of saved times when `ts` is not given.
    - `dt`: a fixed step size; `None` (default) means adaptive steps.
    - `solver`: a diffrax solver or one of `"tsit5"`, `"dopri5"`, `"dopri8"`, `"rk4"`,
      `"euler"`, `"heun"`, `"kvaerno5"`.
    - `rtol`, `atol`: tolerances of the adaptive controller.
    - `max_steps`: the most solver steps (adaptive integration).

    **Returns:** a `Trajectory` with `ts`, `xs`, `success` and `steps`.

    **Raises:** `ValueError` for a state of the wrong shape, non-finite `x0`, `args` the system
    cannot take, `t1 <= t0`, `dt <= 0` or an unknown solver.
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
    check_positive(dt, "dt", allow_none=True)
    check_nonnegative(rtol, "rtol")
    check_nonnegative(atol, "atol")
    if is_concrete((rtol, atol)) and float(np.asarray(rtol)) == float(np.asarray(atol)) == 0:
        raise ValueError("`rtol` and `atol` cannot both be 0 (no step would be accepted); got "
                         "rtol=0, atol=0.")
    check_system_output(system, x0, args_at(args, t0))
    if system.discrete:
        if not is_concrete((t0, t1)):
            raise ValueError("for a map, `t0` and `t1` set the number of steps and must be "
                             "concrete numbers, not traced values.")
        n_steps = int(round(float(np.asarray(t1)) - float(np.asarray(t0))))
        check_int(n_steps, "t1 - t0", minimum=1)
        return _iterate_map(system, x0, args, jnp.asarray(t0, x0.dtype), n_steps)

    solver = _resolve_solver(solver, dt)
    t0a = jnp.asarray(t0, x0.dtype)
    t1a = jnp.asarray(t1, x0.dtype)
    tableau = _explicit_tableau(solver)
    if ts is None and dt is not None and tableau is not None:
        if not is_concrete((t0, t1, dt)):
            raise ValueError("with a fixed `dt`, `t0`, `t1` and `dt` set the number of steps and "
                             "must be concrete numbers; pass `ts` to save at traced times.")
        n_steps = _n_steps(t0, t1, dt)
        stride = 1
        if n_save is not None:
            n_save = check_int(n_save, "n_save", minimum=2)
            if n_steps % (n_save - 1):
                raise ValueError(f"with a fixed `dt`, `n_save` - 1 must divide the {n_steps} "
                                 f"steps; got n_save={n_save}.")
            stride = n_steps // (n_save - 1)
        return _fixed_step(system, x0, args, t0a, t1a, jnp.asarray(dt, x0.dtype),
                           tableau, n_steps // stride, stride)
    if ts is None:
        n_save = 101 if n_save is None else check_int(n_save, "n_save", minimum=2)
        ts = jnp.linspace(t0a, t1a, n_save)
    else:
        ts = check_state(ts, "ts")
    if dt is not None:
        if is_concrete((t0, t1, dt)):
            max_steps = _n_steps(t0, t1, dt) + 1
        controller = diffrax.ConstantStepSize()
        dt0 = jnp.asarray(dt, x0.dtype)
    else:
        jump_ts = args.jump_ts if isinstance(args, PiecewiseConstant) else None
        controller = diffrax.PIDController(rtol=rtol, atol=atol, jump_ts=jump_ts)
        dt0 = None
    max_steps = check_int(max_steps, "max_steps")
    return _integrate_flow(system, x0, args, t0a, t1a, ts, dt0, solver, controller, max_steps)


def _n_steps(t0, t1, dt) -> int:
    """Fixed steps of size `dt` that cover `[t0, t1]` (concrete values; a last partial step
    counts, up to rounding)."""
    span = float(np.asarray(t1)) - float(np.asarray(t0))
    return int(math.ceil(span / float(np.asarray(dt)) - 1e-9))


def _explicit_tableau(solver):
    """The Butcher tableau `(c, a_lower, b)` of an explicit Runge–Kutta solver, or None."""
    if isinstance(solver, diffrax.Euler):
        return ((), (), (1.0,))
    tableau = getattr(solver, "tableau", None)
    if isinstance(solver, diffrax.AbstractERK) and tableau is not None:
        return (tuple(float(c) for c in tableau.c),
                tuple(tuple(float(a) for a in row) for row in tableau.a_lower),
                tuple(float(b) for b in tableau.b_sol))
    return None


@eqx.filter_jit
def _fixed_step(system, x0, args, t0, t1, dt, tableau, n_save: int, stride: int):
    # Fixed steps need no step-size control or dense output: the solver's Butcher tableau is
    # applied directly inside `lax.scan`, which stays cheap under `vmap` over many small systems.
    # A `dt` that does not divide the span gets a shorter last step, so the run ends at t1.
    f = bind_args(system, args)
    c, a_lower, b = tableau

    def rk_step(x, t, h):
        ks = [f(t, x, args)]
        for ci, row in zip(c, a_lower):
            xi = x + h * sum(a * k for a, k in zip(row, ks) if a != 0.0)
            ks.append(f(t + ci * h, xi, args))
        return x + h * sum(bi * k for bi, k in zip(b, ks) if bi != 0.0)

    def save_block(x, i):
        def inner(x, j):
            t = t0 + (i * stride + j) * dt
            return rk_step(x, t, jnp.minimum(dt, t1 - t)), None

        x, _ = jax.lax.scan(inner, x, jnp.arange(stride, dtype=x0.dtype))
        return x, x

    _, xs = jax.lax.scan(save_block, x0, jnp.arange(n_save, dtype=x0.dtype))
    xs = jnp.concatenate([x0[None], xs], axis=0)
    ts = jnp.minimum(t0 + dt * stride * jnp.arange(n_save + 1, dtype=x0.dtype), t1)
    return _trajectory(ts, xs, RESULTS.successful, jnp.asarray(n_save * stride))


def _trajectory(ts, xs, result, steps) -> Trajectory:
    """A `Trajectory` whose status also reports non-finite states."""
    finite = jnp.all(jnp.isfinite(xs))
    result = RESULTS.where(finite | (result != RESULTS.successful), result,
                           RESULTS.nonfinite_state)
    return Trajectory(ts=ts, xs=xs, success=result == RESULTS.successful, result=result,
                      steps=steps)


@eqx.filter_jit
def _integrate_flow(system, x0, args, t0, t1, ts, dt0, solver, controller, max_steps):
    # Under jit a traced t1 may not be after t0: integrate nothing and say so.
    forward = t1 > t0
    t1 = jnp.where(forward, t1, t0 + 1)
    ts = jnp.where(forward, ts, t0)
    term = diffrax.ODETerm(bind_args(system, args))
    sol = diffrax.diffeqsolve(
        term, solver, t0, t1, dt0, x0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
    )
    result = RESULTS.where(forward, RESULTS.promote(sol.result), RESULTS.invalid_time_span)
    xs = jnp.where(forward, sol.ys, jnp.nan)
    return _trajectory(sol.ts, xs, result, sol.stats["num_steps"])


@eqx.filter_jit
def _iterate_map(system: AbstractSystem, x0, args, t0, n_steps: int):
    def step(x, k):
        t = t0 + k
        x_next = system(t, x, args_at(args, t))
        return x_next, x_next

    _, xs = jax.lax.scan(step, x0, jnp.arange(n_steps, dtype=x0.dtype))
    xs = jnp.concatenate([x0[None], xs], axis=0)
    ts = t0 + jnp.arange(n_steps + 1, dtype=x0.dtype)
    return _trajectory(ts, xs, RESULTS.successful, jnp.asarray(n_steps))
