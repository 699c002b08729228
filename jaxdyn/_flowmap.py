"""Flow maps and what the point-batch analyses (`ftle`, `basins`) share.

`jd.flow_map` is the flow map `φ = φ_{t0}^{t0+T}` of one state with its Jacobian
`C = ∂φ/∂x0`, from one integration of the state with `n` tangent vectors (the variational
equations `V' = J V`) by the integrator family, whose adaptive steps control the tangents'
error as well as the state's. Backward time (`T < 0`) integrates the time-reversed system
`y' = −f(t0 − s, y)` forward in `s`, as LCS codes do. Maps iterate the update and its tangent
map `|T|` times (backward: Newton preimages).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PyTree

from ._grid import Grid
from ._inputs import args_at
from ._integrate import AbstractIntegrator, Adaptive, make_integrator
from ._integrate._probe import direction as probe_direction
from ._integrate._tableau import tableau_of
from ._solution import RESULTS, code, from_code
from ._system import as_system
from ._validate import (
    as_float_array,
    check_finite,
    check_positive,
    check_state,
    check_system_output,
    describe,
    is_concrete,
    promote_scalars,
)


class FlowMap(eqx.Module):
    """The flow map of one state and its Jacobian.

    **Fields:**

    - `x`: `φ(x0)`, the state at `t0 + T`, shape `(n,)`.
    - `jacobian`: `∂φ/∂x0`, shape `(n, n)` (None when not asked for).
    - `result`: a `jd.RESULTS` status: `successful`, an integrator status
      (`max_steps_reached`, ...), or `nonfinite_state`.
    - `steps`: the integrator's attempted steps (iterates for a map).
    - `T`: the integration time (negative: backward).
    """

    x: Float[Array, " n"]
    jacobian: Float[Array, "n n"] | None
    result: RESULTS
    steps: Int[Array, ""]
    T: Float[Array, ""]

    @property
    def success(self) -> Array:
        return self.result == RESULTS.successful

    def __repr__(self) -> str:
        try:
            x = np.asarray(self.x)
            ok = bool(np.all(np.asarray(self.success)))
        except Exception:
            return eqx.tree_pformat(self)
        what = "with its Jacobian" if self.jacobian is not None else "state only"
        msg = "successful" if ok else "failed: see .result"
        return (f"FlowMap(n = {x.shape[-1]}, T = {float(self.T):g}, {what}, "
                f"{int(np.max(np.asarray(self.steps)))} steps, {msg})")


def flow_map(
    system: Any,
    x0: ArrayLike,
    args: PyTree = None,
    t0: ArrayLike = 0.0,
    T: float | None = None,
    *,
    jacobian: bool = True,
    integrator: AbstractIntegrator | None = None,
    solver: Any = None,
    dt: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int | None = None,
) -> FlowMap:
    """The flow map `φ(x0)` from `t0` to `t0 + T` and its Jacobian `∂φ/∂x0`.

    The state is integrated with `n` tangent vectors (the variational equations, `J V` by
    forward-mode autodiff or the RNN zoo's closed-form Jacobian). With adaptive steps
    (`jd.Adaptive`, the default) each step's error is measured on the state and on every
    tangent, so the Jacobian is right where the state settles: at a fixed point `x*` it is
    `e^{J(x*) T}` to the tolerance, where state-only control would let the steps grow until
    the tangents are wrong. Reverse-mode derivatives of `x` (`jax.jacrev`) follow the same
    steps and agree with `jacobian`; with `jacobian=False` one fixed probe tangent is still
    integrated and controlled (as in the backward pass of `jd.simulate`), so they stay right
    (`jd.Adaptive(tangents="ride")` controls the state alone). Works under `jit`, `vmap` and
    `grad`.

    **Arguments:**

    - `system`: a `jd.Flow`, `jd.Map`, an RNN model, or a callable `f(t, x, args)`.
    - `x0`: the initial state `(n,)`.
    - `args`: the system's arguments (constant, or a function of time).
    - `t0`: the initial time.
    - `T`: the integration time, a nonzero concrete number (negative: backward; for a map a
      nonzero integer number of iterates).
    - `jacobian`: whether to compute `∂φ/∂x0` (default True).
    - `integrator`, or its shortcuts `solver`, `dt`, `rtol`, `atol`, `max_steps`: as in
      `jd.simulate` (adaptive Tsit5 at rtol 1e-6, atol 1e-8 by default).

    **Returns:** a `FlowMap` (`x`, `jacobian`, `result`, `steps`, `T`).

    **Raises:** `ValueError` for a bad `x0`, `T` missing, zero or not concrete (fractional for
    a map), a `jacobian` that is not a bool, `args` the system cannot take, or bad integrator
    options.

    Reference: E. Hairer, S. P. Nørsett & G. Wanner, Solving Ordinary Differential Equations
    I, §I.14 and §II.9 (variational equations, integrated jointly with the state).
    """
    system = as_system(system)
    args = promote_scalars(args)
    x0 = check_state(x0, "x0", size=system.state_size)
    T = _check_time(T, system, backward_map=True)
    check_finite(t0, "t0")
    if not isinstance(jacobian, bool):
        raise ValueError(f"`jacobian` must be True or False; got {jacobian!r}.")
    integ = make_integrator(system, integrator, x0.dtype, solver=solver, dt=dt, rtol=rtol,
                            atol=atol, max_steps=max_steps)
    check_system_output(system, x0, args_at(args, t0), t=t0)
    n = x0.shape[0]
    if jacobian:
        V0 = jnp.eye(n, dtype=x0.dtype)
    elif isinstance(integ, Adaptive) and integ.tangents == "control":
        # Reverse-mode derivatives of `x` are tangents: one probe tangent sets the steps too.
        V0 = probe_direction(n, x0.dtype)[:, None]
    else:
        V0 = jnp.zeros((n, 0), x0.dtype)
    return _flow_map(system, x0, V0, args, jnp.asarray(t0, x0.dtype), integ.span(T, x0.dtype),
                     integ, jacobian)


@eqx.filter_jit
def _flow_map(system, x0, V0, args, t0, span, integ, jacobian: bool):
    out = integ.propagate(system, x0[None], V0[None], args, t0, span)
    return FlowMap(x=out.x[0], jacobian=out.V[0] if jacobian else None,
                   result=from_code(code(out.result)[0]),
                   steps=out.steps[0], T=span.sign * span.length)


def _log_stretch(C: Float[Array, "n k"]) -> Float[Array, ""]:
    """`ln σ_max(C) = ½ ln λ_max(CᵀC)`; a closed form for `k ≤ 2` (the common plane case).
    `C` is scaled by its largest entry first (a constant to the derivative), so that `CᵀC`
    neither overflows nor underflows where the flow stretches by e^{±44} (float32) or more."""
    m = jax.lax.stop_gradient(jnp.max(jnp.abs(C)))
    m = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    return jnp.log(m) + _log_stretch_scaled(C / m)


def _log_stretch_scaled(C):
    k = C.shape[1]
    if k == 1:
        return 0.5 * jnp.log(jnp.sum(C * C))
    if k == 2:
        a, b, c = jnp.sum(C[:, 0] ** 2), jnp.sum(C[:, 0] * C[:, 1]), jnp.sum(C[:, 1] ** 2)
        d = 0.25 * (a - c) ** 2 + b * b
        pos = d > 0
        # Where the two stretches are equal, sqrt's derivative is infinite; keep grads finite.
        root = jnp.where(pos, jnp.sqrt(jnp.where(pos, d, 1.0)), 0.0)
        return 0.5 * jnp.log(0.5 * (a + c) + root)
    return jnp.log(jnp.linalg.svd(C, compute_uv=False)[0])


_ADAPTIVE_CHUNK = {False: 8192, True: 2048}  # default chunk cap: without / with tangents
_SLOTS = 2048  # the most slots of the embedded Runge–Kutta path
_SLOT_BYTES = 12 * 2**20  # the working set its slots may take (stage derivatives, Jacobians)
_REFILL_BLOCK = 8  # with refilled slots: points per chunk, in slots


def _chunking(chunk: int, chunk_size: int | None, integ: AbstractIntegrator, n_points: int,
              n: int, k: int, itemsize: int, jacobian: bool) -> tuple[int, int | None]:
    """`(points per chunk, slots per chunk)` for states of size `n` with `k` tangents, from
    the chunk that fits the memory budget.

    A vmapped adaptive batch steps until its slowest point is done, so its chunks are capped
    (smaller chunks let the easy points finish early: double gyre, 2 CPU cores, 1.8x faster
    with tangents at 201 x 101, 1.5x without at 401 x 201). The embedded Runge–Kutta path
    refills its slots instead: the slots run at once, and each chunk holds `_REFILL_BLOCK`
    times as many points, which take the slots in turn. Its slots are as many as keep the
    stage derivatives (and a network's Jacobians) within about 12 MiB: up to 2,048 for the
    double gyre (0.29 s a direction at 2,048, 0.41 s at 8,192); 170 for a 101 x 101 plane of
    a 64-unit CTRNN with in-plane tangents (0.67 s at 128 slots, 1.63 s at 745), 50 with all
    64 tangents (4.1 s at 64, 5.4 s at 16 and 5.7 s at 256)."""
    if not isinstance(integ, Adaptive):
        return chunk, None
    tableau = tableau_of(integ.solver)
    if tableau is None:
        return (chunk if chunk_size is not None else
                min(chunk, _ADAPTIVE_CHUNK[bool(k)])), None
    if chunk_size is not None:
        width = chunk
    else:
        per_slot = itemsize * (len(tableau.b) + 4) * n * (1 + k)
        if jacobian and k:
            per_slot += 4 * itemsize * n * n  # the closed-form Jacobian and its intermediates
        width = max(32, min(chunk, _SLOTS, _SLOT_BYTES // per_slot))
    return min(n_points, width * _REFILL_BLOCK), min(width, n_points)


_CPU_CHUNK_BYTES = 64 * 2**20


def _chunk_budget(budget: int | None) -> int | None:
    """The memory budget that sizes the chunks. On CPU the default is 64 MiB: chunks that stay
    in cache run faster than big ones (a GRU-128 plane of 300 × 300 points: 2.7 s and 0.5 GB
    peak at 64 MiB, 4.9 s and 0.9 GB at the 2 GiB device budget, 26 s and 6.5 GB unchunked)."""
    if budget is not None:
        check_positive(budget, "budget")
        return int(budget)
    return _CPU_CHUNK_BYTES if jax.default_backend() == "cpu" else None


def _check_time(T: Any, system, name: str = "T", backward_map: bool = False) -> float:
    if T is None:
        raise ValueError(f"`{name}` (the integration time) is required; got None.")
    if not is_concrete(T):
        raise ValueError(f"`{name}` must be a concrete number (it sets the direction of time "
                         f"and, for maps and fixed steps, the number of steps); got a traced "
                         f"value.")
    a = np.asarray(T)
    if a.shape != () or not np.issubdtype(a.dtype, np.number) or not np.isfinite(a):
        raise ValueError(f"`{name}` must be a finite nonzero number; got {T!r}.")
    T = float(a)
    if T == 0:
        raise ValueError(f"`{name}` must be nonzero (T > 0 forward, T < 0 backward); got 0.")
    if system.discrete:
        if T < 0 and not backward_map:
            raise ValueError(f"`{name}` must be > 0 for a map here; got {T!r}.")
        if T != round(T):
            raise ValueError(f"`{name}` is the number of iterates of a map and must be an "
                             f"integer; got {T!r}.")
    return T


def _points(system, x0s) -> tuple[Array | None, Grid | None]:
    """`(points, None)` for an array of states, `(None, grid)` for a Grid (whose points are
    made chunk by chunk, never all at once)."""
    if isinstance(x0s, Grid):
        n = x0s.origin.shape[0]
        if system.state_size is not None and n != system.state_size:
            raise ValueError(f"`x0s` is a grid in dimension {n}, but the system's state has "
                             f"size {system.state_size}.")
        return None, x0s
    pts = as_float_array(x0s, "x0s")
    if pts.ndim < 2 or pts.size == 0:
        raise ValueError(f"`x0s` must be a Grid (jd.grid, jd.plane) or an array of states "
                         f"[..., n]; got {describe(pts)}.")
    if system.state_size is not None and pts.shape[-1] != system.state_size:
        raise ValueError(f"`x0s` has last dimension {pts.shape[-1]}, but the system's state "
                         f"has size {system.state_size}.")
    check_finite(pts, "x0s")
    return pts, None
