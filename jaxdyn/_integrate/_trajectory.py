"""`Trajectory`: the states of a simulated system at its save times."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .._inputs import args_at, bind_args
from .._solution import RESULTS, from_code
from ._probe import probed_states, solve_states
from ._rk import saved_steps
from ._tableau import tableau_of


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
        from ..plot import plot_trajectory

        return plot_trajectory(self, ax=ax, dims=dims, **kwargs)


def trajectory(ts, xs, result, steps) -> Trajectory:
    """A `Trajectory` whose status also reports non-finite states."""
    finite = jnp.all(jnp.isfinite(xs))
    result = RESULTS.where(finite | (result != RESULTS.successful), result,
                           RESULTS.nonfinite_state)
    return Trajectory(ts=ts, xs=xs, success=result == RESULTS.successful, result=result,
                      steps=steps)


@eqx.filter_jit
def diffeqsolve_trajectory(system, x0, args, t0, t1, ts, dt0, solver, controller, max_steps,
                           probe: bool = False):
    """A trajectory saved at `ts` by `diffrax.diffeqsolve`; with `probe`, reverse-mode
    derivatives come from an integration that also controls a probe tangent (`_probe.py`)."""
    solve = probed_states if probe else solve_states
    ts_out, xs, rc, steps = solve((system, x0, args, t0, t1, ts), dt0, solver, controller,
                                  max_steps)
    return trajectory(ts_out, xs, from_code(rc), steps)


@eqx.filter_jit
def fixed_trajectory(system, x0, args, t0, t1, integrator, n_save: int, stride: int):
    """A trajectory by `n_save · stride` fixed steps of `integrator`'s explicit tableau,
    saved every `stride` steps."""
    f = bind_args(system, args)
    tab = tableau_of(integrator.solver)
    ts, xs = saved_steps(lambda t, x: f(t, x, args), tab, x0, t0, t1,
                         jnp.asarray(integrator.dt, x0.dtype), n_save, stride)
    return trajectory(ts, xs, RESULTS.successful, jnp.asarray(n_save * stride))


@eqx.filter_jit
def map_trajectory(system, x0, args, t0, steps: int):
    """The first `steps` iterates of a map, every one saved."""
    t0 = jnp.asarray(t0, x0.dtype)

    def step(x, k):
        t = t0 + k
        x_next = system(t, x, args_at(args, t))
        return x_next, x_next

    _, xs = jax.lax.scan(step, x0, jnp.arange(steps, dtype=x0.dtype))
    xs = jnp.concatenate([x0[None], xs], axis=0)
    ts = t0 + jnp.arange(steps + 1, dtype=x0.dtype)
    return trajectory(ts, xs, RESULTS.successful, jnp.asarray(steps))
