"""`Trajectory`: the states of a simulated system at its save times."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .._solution import RESULTS


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
