"""A system's state with tangent vectors: the variational equations and the tangent map.

The integrators advance `(x, v_1, …, v_k, q)`: the state, `k` tangent vectors (`v' = J v` for a
flow, `v ↦ J v` for a map) and, when asked for, one quadrature of the Jacobian's trace
(`q' = tr J` for a flow, `q ↦ q + ln|det J|` for a map) — the sum of all `n` Lyapunov
exponents, computed independently of the tangents, so that a spectrum can check itself.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._inputs import args_at
from .._newton import newton_solve
from .._system import AbstractJacobianSystem, AbstractSystem


def state_jacobian(system: AbstractSystem, t: Array, x: Array, a) -> Array:
    """`∂f/∂x` at `(t, x)`: the RNN zoo's closed form, else forward-mode autodiff."""
    if isinstance(system, AbstractJacobianSystem):
        return system.state_jacobian(x, a)
    return jax.jacfwd(lambda y: system(t, y, a))(x)


def tangent_step(system: AbstractSystem, t: Array, x: Array, V: Array, a, trace: bool = False
                 ) -> tuple[Array, Array, Array | None]:
    """`(f(t, x, a), J V, tr J or ln|det J| or None)` with `J = ∂f/∂x` and `V` `[n, k]`.

    Without `trace`, `J V` is one forward-mode product per column (no tangent work for
    `k = 0`); with it, `J` is formed once (closed form for the RNN zoo) and its trace (flows)
    or log-determinant (maps) taken."""
    if trace or (V.shape[1] and isinstance(system, AbstractJacobianSystem)):
        J = state_jacobian(system, t, x, a)
        q = (jnp.linalg.slogdet(J)[1] if system.discrete else jnp.trace(J)) if trace else None
        return system(t, x, a), J @ V, q
    if V.shape[1] == 0:
        return system(t, x, a), V, None
    f = lambda y: system(t, y, a)
    return f(x), jax.vmap(lambda v: jax.jvp(f, (x,), (v,))[1], in_axes=1, out_axes=1)(V), None


def pack(x: Array, V: Array, q: Array | None) -> Array:
    """`(x, v_1, …, v_k[, q])` as one vector (tangent vectors one after the other)."""
    parts = [x, V.T.reshape(-1)]
    if q is not None:
        parts.append(jnp.reshape(q, (1,)))
    return jnp.concatenate(parts)


def unpack(z: Array, n: int, k: int, trace: bool) -> tuple[Array, Array, Array | None]:
    """The inverse of `pack` (on the last axis; leading axes are a batch)."""
    x = z[..., :n]
    V = jnp.swapaxes(z[..., n: n * (1 + k)].reshape(z.shape[:-1] + (k, n)), -1, -2)
    return x, V, (z[..., -1] if trace else None)


class TangentFlow(eqx.Module):
    """The packed derivative of `(x, V[, q])` for a flow in the time `s = (t − t0)·sign`:
    `sign·(f, J V[, tr J])` at `t = t0 + sign·s`, with time-varying `args` at that `t`."""

    system: AbstractSystem
    args: object
    t0: Array
    sign: Array
    n: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    trace: bool = eqx.field(static=True)

    def __call__(self, s, z):
        t = self.t0 + self.sign * s
        x, V, _ = unpack(z, self.n, self.k, self.trace)
        dx, JV, q = tangent_step(self.system, t, x, V, args_at(self.args, t), self.trace)
        return self.sign * pack(dx, JV, q)


def map_step(system: AbstractSystem, t: Array, x: Array, V: Array, q: Array | None, a
             ) -> tuple[Array, Array, Array | None]:
    """One iterate of a map with its tangents (and the log-determinant quadrature)."""
    x1, V1, dq = tangent_step(system, t, x, V, a, q is not None)
    return x1, V1, (None if q is None else q + dq)


def preimage(system: AbstractSystem, t: Array, x: Array, V: Array, q: Array | None, a):
    """One backward iterate of a map: the state `y` with `F(t, y) = x`, by the Newton core
    started from `y = x` (tolerance 100 ulps of `x`), the tangents `J(y)⁻¹ V` and the
    quadrature `q − ln|det J(y)|`. Returns `(y, J⁻¹V, q, status)`; a preimage Newton does not
    find is a failed status, not a result."""
    tol = 100 * jnp.finfo(x.dtype).eps * (1 + jnp.max(jnp.abs(x)))
    sol = newton_solve(lambda y, p: system(p[0], y, p[2]) - p[1], x, (t, x, a), tol=tol,
                       max_steps=200)
    y = sol.x
    if V.shape[1] or q is not None:
        J = state_jacobian(system, t, y, a)
        V = jnp.linalg.solve(J, V) if V.shape[1] else V
        q = None if q is None else q - jnp.linalg.slogdet(J)[1]
    return y, V, q, sol.result


# A state with its tangents of at most this many entries is integrated as separate scalars.
SPLIT_MAX = 16


def is_split(n: int, k: int) -> bool:
    """Whether the batch-native loop carries the state as separate scalars (small states)."""
    return n * (1 + k) <= SPLIT_MAX
