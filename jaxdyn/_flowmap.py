"""Flow maps with their tangents: the shared core of `ftle`, `basins` and `lyapunov_spectrum`.

The flow map `φ = φ_{t0}^{t0+T}` and its gradient `C = ∂φ/∂x0` come from one integration of
the state together with tangent vectors (the variational equations `V' = J V`, with `J V` by
forward-mode autodiff or an RNN's closed-form Jacobian) through the integrators of
`jd.simulate`: adaptive diffrax solvers, or the fixed-step Runge–Kutta scan. Backward time
(`T < 0`) integrates the time-reversed system `y' = −f(t0 − s, y)` forward in `s`, as LCS
codes do. Maps iterate the update and its tangent map `|T|` times.
"""

from __future__ import annotations

import math
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._erk import Tableau, embedded_tableau, flow_maps, split
from ._grid import Grid
from ._inputs import args_at
from ._newton import newton_solve
from ._simulate import _explicit_tableau, _fixed_step, _integrate_flow, _resolve_solver
from ._solution import RESULTS
from ._system import AbstractFlow, AbstractJacobianSystem, AbstractSystem
from ._validate import (
    as_float_array,
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
    describe,
    is_concrete,
)


class _Tangent(AbstractFlow):
    """The state with `k` tangent vectors, `z = (x, vec V)`, of `system` in the time
    `s = (t − t0)·sign`: `dz/ds = sign·(f(t, x), J(t, x) V)`."""

    system: AbstractSystem
    t0: Array
    sign: Array
    n: int = eqx.field(static=True)
    k: int = eqx.field(static=True)

    @property
    def state_size(self) -> None:
        return None

    def __call__(self, s, z, args):
        (a,) = args
        t = self.t0 + self.sign * s
        x, dx = _step(self.system, t, z[: self.n], z[self.n:].reshape(self.n, self.k),
                      args_at(a, t))
        return self.sign * jnp.concatenate([x, dx.reshape(-1)])


def _preimage(system, t, x, V, a):
    """One backward iterate of a map: the state `y` with `F(t, y) = x`, by the Newton core
    started from `y = x` (tolerance 100 ulps of `x`), and the tangents `J(y)⁻¹ V`. Returns
    `(y, J⁻¹V, status)`; a preimage Newton does not find is a failed status, not a result."""
    tol = 100 * jnp.finfo(x.dtype).eps * (1 + jnp.max(jnp.abs(x)))
    sol = newton_solve(lambda y, p: system(p[0], y, p[2]) - p[1], x, (t, x, a), tol=tol,
                       max_steps=200)
    y = sol.x
    if V.shape[1]:
        J = (system.state_jacobian(y, a) if isinstance(system, AbstractJacobianSystem)
             else jax.jacfwd(lambda z: system(t, z, a))(y))
        V = jnp.linalg.solve(J, V)
    return y, V, sol.result


def _step(system, t, x, V, a):
    """`(f(t, x, a), J V)` with `J = ∂f/∂x`: closed form for the RNN zoo, else one forward-mode
    product per column of `V` (no tangent work when `k = 0`)."""
    if V.shape[1] == 0:
        return system(t, x, a), V
    if isinstance(system, AbstractJacobianSystem):
        return system(t, x, a), system.state_jacobian(x, a) @ V
    f = lambda y: system(t, y, a)
    return f(x), jax.vmap(lambda v: jax.jvp(f, (x,), (v,))[1], in_axes=1, out_axes=1)(V)


class _Integrator(eqx.Module):
    """How flows are integrated (static options of `simulate`'s integrators); `tableau` is
    the solver's embedded Runge–Kutta pair when adaptive steps run in `_erk` (None with a
    fixed `dt` or a solver that is not an explicit Runge–Kutta pair)."""

    solver: Any
    tableau: Tableau | None
    dt: float | None = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)


def _make_integrator(system, solver, dt, rtol, atol, max_steps) -> _Integrator | None:
    if system.discrete:
        return None
    check_positive(dt, "dt", allow_none=True)
    check_nonnegative(rtol, "rtol")
    check_nonnegative(atol, "atol")
    if dt is None and float(rtol) == float(atol) == 0:
        raise ValueError("`rtol` and `atol` cannot both be 0; got rtol=0, atol=0.")
    if dt is not None and not is_concrete(dt):
        raise ValueError("`dt` must be a concrete number (it sets the number of steps).")
    solver = _resolve_solver(solver, dt)
    return _Integrator(solver=solver, tableau=None if dt is not None else embedded_tableau(solver),
                       dt=None if dt is None else float(np.asarray(dt)), rtol=float(rtol),
                       atol=float(atol), max_steps=check_int(max_steps, "max_steps"))


class _Span(eqx.Module):
    """An integration time: its length `|T|` and direction `±1` (arrays, so that a new value
    or the other direction does not recompile an adaptive integration), and for maps and
    fixed steps the step count."""

    length: Array
    sign: Array
    steps: int | None = eqx.field(static=True)
    inverse: bool = eqx.field(static=True, default=False)  # a map's backward iterates


def _make_span(T: float, system, integ: _Integrator | None, dtype) -> _Span:
    steps = None
    if system.discrete:
        steps = int(round(abs(T)))
    elif integ.dt is not None:
        steps = max(1, int(math.ceil(abs(T) / integ.dt - 1e-9)))
    return _Span(jnp.asarray(abs(T), dtype), jnp.asarray(1.0 if T > 0 else -1.0, dtype), steps,
                 inverse=bool(system.discrete and T < 0))


def _propagate(system, x0, V0, args, t0, span: _Span, integ: _Integrator | None):
    """`φ(x0)` and `(∂φ/∂x0) V0` over `[t0, t0 + T]`, with the integration's `RESULTS`
    status."""
    n, k = V0.shape
    dtype = x0.dtype
    if system.discrete and span.inverse:
        ok = RESULTS.successful._value

        def back(carry, i):
            x, V, rv = carry
            t = t0 - 1 - i
            y, V, r = _preimage(system, t, x, V, args_at(args, t))
            return (y, V, jnp.where(rv == ok, r._value, rv)), None

        (x, V, rv), _ = jax.lax.scan(back, (x0, V0, jnp.asarray(ok)),
                                     jnp.arange(span.steps, dtype=dtype))
        return x, V, eqx.tree_at(lambda r: r._value, RESULTS.successful, rv)
    if system.discrete:

        def body(carry, i):
            x, V = carry
            t = t0 + i
            return _step(system, t, x, V, args_at(args, t)), None

        (x, V), _ = jax.lax.scan(body, (x0, V0), jnp.arange(span.steps, dtype=dtype))
        return x, V, RESULTS.successful
    if integ.tableau is not None:
        x, V, result = _adaptive(system, x0[None], V0[None], args, jnp.asarray(t0, dtype),
                                 span, integ)
        return x[0], V[0], eqx.tree_at(lambda r: r._value, result, result._value[0])
    aug = _Tangent(system, jnp.asarray(t0, dtype), span.sign.astype(dtype), n, k)
    z0 = jnp.concatenate([x0, V0.reshape(-1)])
    length = span.length.astype(dtype)
    zero = jnp.zeros((), dtype)
    tableau = _explicit_tableau(integ.solver)
    if integ.dt is not None and tableau is not None:
        traj = _fixed_step(aug, z0, (args,), zero, length, jnp.asarray(integ.dt, dtype),
                           tableau, 1, span.steps)
    else:
        if integ.dt is not None:
            controller, dt0 = diffrax.ConstantStepSize(), jnp.asarray(integ.dt, dtype)
            max_steps = span.steps + 1
        else:
            # Steps are controlled on the state alone: the tangents ride along on the same
            # steps (the derivative of the discrete flow map), rather than forcing the small
            # steps that their exponential growth would ask for.
            controller = diffrax.PIDController(rtol=integ.rtol, atol=integ.atol,
                                               norm=_StateNorm(n))
            dt0, max_steps = None, integ.max_steps
        traj = _integrate_flow(aug, z0, (args,), zero, length, length[None], dt0,
                               integ.solver, controller, max_steps)
    z = traj.xs[-1]
    return z[:n], z[n:].reshape(n, k), traj.result


# A state with its tangents of at most this many entries is integrated as separate scalars.
_SPLIT_MAX = 16


def _adaptive(system, X0, V0, args, t0, span: _Span, integ: _Integrator, width=None):
    """`_propagate` for a batch `X0` `[B, n]` (tangents `V0` `[B, n, k]`) by the adaptive
    embedded Runge–Kutta steps of `_erk.flow_maps`; the state is `(x, V[:, 0], …, V[:, k-1])`."""
    n, k = V0.shape[1:]
    dtype = X0.dtype
    sign = span.sign.astype(dtype)
    split_state = n * (1 + k) <= _SPLIT_MAX

    def derivative(s, z):
        t = t0 + sign * s
        a = args_at(args, t)
        if not split_state:
            x, dx = _step(system, t, z[:n], z[n:].reshape(k, n).T, a)
            return sign * jnp.concatenate([x, dx.T.reshape(-1)])
        # Entries in, entries out, the sign applied to each: see `flow_maps`.
        x = jnp.stack(z[:n])
        V = jnp.stack([jnp.stack(z[n * (j + 1): n * (j + 2)]) for j in range(k)], axis=1) \
            if k else jnp.zeros((n, 0), x.dtype)
        dx, JV = _step(system, t, x, V, a)
        parts = [dx] + [JV[:, j] for j in range(k)]
        return tuple(sign * v for p in parts for v in split(p))

    z0 = jnp.concatenate([X0, jnp.swapaxes(V0, 1, 2).reshape(X0.shape[0], -1)], axis=1)
    z, result, _ = flow_maps(derivative, z0, span.length.astype(dtype), integ.tableau,
                             integ.rtol, integ.atol, integ.max_steps, split_state=split_state,
                             n_controlled=n, width=width)
    x = z[:, :n]
    V = jnp.swapaxes(z[:, n:].reshape(-1, k, n), 1, 2) if k else V0
    finite = jnp.all(jnp.isfinite(x), axis=1) & jnp.all(jnp.isfinite(V), axis=(1, 2))
    code = jnp.where(finite | (result._value != RESULTS.successful._value), result._value,
                     RESULTS.nonfinite_state._value)
    return x, V, eqx.tree_at(lambda r: r._value, result, code)


def _propagate_many(system, X0, V0, args, t0, span: _Span, integ: _Integrator | None,
                    width: int | None = None):
    """`_propagate` for a batch of states `X0` `[B, n]` with shared tangents `V0` `[n, k]`:
    adaptive steps run batch-wise in `_erk`, `width` states at a time, the other
    integrators under `vmap`."""
    if integ is not None and integ.tableau is not None:
        V = jnp.broadcast_to(V0, (X0.shape[0],) + V0.shape)
        return _adaptive(system, X0, V, args, jnp.asarray(t0, X0.dtype), span, integ, width)
    return jax.vmap(lambda x: _propagate(system, x, V0, args, t0, span, integ))(X0)


class _StateNorm(eqx.Module):
    """The RMS norm of the first `n` entries (the state part of `(x, vec V)`)."""

    n: int = eqx.field(static=True)

    def __call__(self, z):
        x = z[: self.n]
        return jnp.sqrt(jnp.mean(x * x))


def _log_stretch(C: Float[Array, "n k"]) -> Float[Array, ""]:
    """`ln σ_max(C) = ½ ln λ_max(CᵀC)`; a closed form for `k ≤ 2` (the common plane case)."""
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


def _chunking(chunk: int, chunk_size: int | None, integ: _Integrator | None, n_points: int,
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
    if integ is None or integ.dt is not None:
        return chunk, None
    if integ.tableau is None:
        return (chunk if chunk_size is not None else
                min(chunk, _ADAPTIVE_CHUNK[bool(k)])), None
    if chunk_size is not None:
        width = chunk
    else:
        per_slot = itemsize * (len(integ.tableau.b) + 4) * n * (1 + k)
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
