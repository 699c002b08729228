"""`RESULTS`: the one status enumeration of every jaxdyn solver.

Every iterative call reports a per-element status instead of raising inside traced code:
Newton solves (fixed points, and the correctors of later analyses), `simulate` and training.
The enumeration extends diffrax's, which extends optimistix's and lineax's, so that a status
coming from any of them (a failed linear solve, an integrator that ran out of steps) is
promoted into this one with `RESULTS.promote(...)` rather than dropped.

`RESULTS[r]` gives the message of an item: it says what happened and what to change.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool


class RESULTS(diffrax.RESULTS):  # pyright: ignore[reportGeneralTypeIssues]
    """Per-element outcome of a jaxdyn solver.

    Inherited items include `successful`, `max_steps_reached` (an integrator),
    `nonlinear_max_steps_reached` (a Newton solve ran out of `max_steps`), `singular` (a
    linear solve met a singular matrix) and `nonfinite` (NaN or inf met during a solve).
    """

    slow_point = (
        "The solver reached a local minimum of q = ½‖f(x)‖² with q > 0 (a slow point), not "
        "a root."
    )
    stagnated = (
        "No step decreases ‖f(x)‖ any more: the iterate is at a minimum of ‖f‖ that is not a "
        "root, or the Jacobian is singular there. Try other starts, or method='q' to report "
        "such points as slow points."
    )
    invalid_time_span = (
        "`t1` is not after `t0` (a traced value inside `jit`); nothing was integrated. Pass "
        "t1 > t0."
    )
    nonfinite_state = (
        "The state became NaN or inf during the simulation (the solution blew up, or the step "
        "`dt` is too large for the system); rows from the first non-finite one on are not "
        "valid states. Use a smaller `dt` or adaptive steps."
    )
    nonfinite_output = (
        "The function returned NaN or inf for this point of the sweep; the other points are "
        "unaffected. Look at this point's inputs, or at the statuses the function returns."
    )
    diverged = (
        "The training loss became non-finite; this network kept its last good parameters and "
        "stopped training. Lower its learning rate, keep `grad_clip`, or add `weight_reg`."
    )
    nonfinite_ftle = (
        "The flow-map gradient at this point is not finite or collapses every direction (the "
        "state blew up, or a finite difference met a failed neighbour), so it has no FTLE. "
        "Use a shorter |T|, a smaller step, or look at the neighbouring points' statuses."
    )

    trace_identity_failed = (
        "The sum of the Lyapunov exponents differs from the time average of the Jacobian's "
        "trace (of ln|det J| for a map) by more than the integration tolerance allows: the "
        "tangents were not integrated accurately enough. Lower `rtol`, or use float64."
    )

    continuation_start = (
        "Newton did not converge from `x0` at the starting parameter `p0`: `x0` is not close "
        "to an equilibrium (a fixed point, for a map). Start from a point found by "
        "`jd.fixed_points`, or nearer to the branch."
    )
    continuation_step_min = (
        "The continuation step fell below `ds_min`: the corrector failed even with the "
        "smallest step (a singular point the branch cannot pass, or the end of the branch). "
        "Lower `ds_min`, or raise `tol`."
    )
    continuation_max_steps = (
        "The branch used all `max_steps` continuation steps before it left `bounds` or "
        "closed on itself: it is cut short, and special points beyond its end are missing. "
        "Raise `max_steps` (or `ds_max`), or narrow `bounds`."
    )
    continuation_max_points = (
        "The branch filled its `max_points` point buffer before it left `bounds` or closed on "
        "itself: it is cut short, and special points beyond its end are missing. Raise "
        "`max_points` (or `ds_max`), or narrow `bounds`."
    )
    continuation_max_events = (
        "The branch crossed more special points than its `max_events` slots hold; the ones "
        "that did not fit were dropped. Raise `max_events`."
    )
    continuation_outside_bounds = (
        "The starting parameter is outside `bounds` (a traced value inside `jit`); nothing "
        "was continued. Start inside `bounds`, or widen them."
    )
    continuation_switch_step = (
        "`h`, the distance of the first point along the new branch, is zero or not finite "
        "(a traced value inside `jit`); nothing was continued. Pass a finite `h` ≠ 0."
    )

    undetermined_coefficients = (
        "The SSM fit's data cannot determine some polynomial coefficients at the working "
        "precision: the fitted samples span too little of the data's range (e.g. after a long "
        "`transient`) or the features are nearly dependent, so those terms would be rounding "
        "noise amplified over the data. The fit dropped the degrees from the lowest such one "
        "up (`order`, `dynamics_order` and the `determined` masks say what was kept). Use a "
        "shorter `transient`, float64, or a lower order."
    )
    degenerate_data = (
        "The SSM fit had nothing to fit: every sample was masked or before `transient` (a "
        "traced value inside `jit`), or the fitted samples do not move in the chart (all "
        "equal, e.g. all zero or all at the anchor). The model is empty. Use a shorter "
        "`transient`, or data that leave the fixed point."
    )


def is_successful(result: RESULTS) -> Bool[Array, ...]:
    """`result == RESULTS.successful`, elementwise (works on batched results)."""
    return jnp.asarray(result._value == RESULTS.successful._value)


def code(result: RESULTS) -> Array:
    """The integer codes of a (batched) status, to combine statuses with `jnp.where` inside a
    traced loop."""
    return jnp.asarray(result._value)


def from_code(value: Array) -> RESULTS:
    """A (batched) status from integer codes made by `code`."""
    return eqx.tree_at(lambda r: r._value, RESULTS.successful, jnp.asarray(value, jnp.int32))


def first_failure(old: Array, new: Array) -> Array:
    """Status codes that keep the first failure: `old` where it already failed, else `new`."""
    return jnp.where(old == RESULTS.successful._value, new, old)
