"""The batch-native embedded Runge–Kutta pair: flow maps of many initial states at once.

A flow map needs only the final state: no dense output, no saving along the way, no events.
`embedded_pair` steps a batch of states with a solver's embedded Runge–Kutta pair (its Butcher
tableau, e.g. Dopri8 or Tsit5) in one `while_loop`: every state keeps its own time and step
size, each step is accepted or rejected by an integral controller with diffrax's defaults, and
a state that is done hands its slot to the next one. This is the cost that matters for FTLE
fields and basins: the double gyre's 401 × 201 grid at numbacs' tolerances takes 0.3 s a
direction on 2 CPU cores, against 0.8 s through `vmap` of `diffrax.diffeqsolve` with the same
tableau and vector field (whose general machinery, dense output, `SaveAt`, events, runs per
step for the whole batch) and 0.8 s in numbacs.

The integrated vector is `(x, v_1, …, v_k, q)`: the state, `k` tangent vectors and trailing
quadratures. The error of each step is measured on what is reported: the state as diffrax
measures it, and each tangent vector in the same way after scaling it to unit RMS size (the
variational equations are linear, so only a tangent's relative error has a meaning). At a
fixed point, where the state's error estimate is zero, the tangents' error still bounds the
step, and the derivative of the numerical flow map stays the flow map's derivative.

The loop is `equinox.internal.while_loop` with `kind="checkpointed"`, so reverse-mode
gradients flow through it (by recursive checkpointing), as through `diffeqsolve`; the step
sizes are not differentiated (as in diffrax).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from .._solution import RESULTS, code, from_code
from ._tableau import Tableau

# The integral controller's constants (diffrax's `PIDController` defaults).
_SAFETY, _FACTOR_MIN, _FACTOR_MAX = 0.9, 0.2, 10.0


def split(v: Array) -> tuple[Array, ...]:
    """A small vector as a tuple of its entries."""
    return tuple(v[i] for i in range(v.shape[0]))


def embedded_pair(
    f: Callable,
    y0: Float[Array, "batch N"],
    length: ArrayLike,
    tableau: Tableau,
    rtol: ArrayLike,
    atol: ArrayLike,
    max_steps: int,
    *,
    split_state: bool,
    n: int | None = None,
    k: int = 0,
    control_tangents: bool = True,
    width: int | None = None,
    h0: Array | None = None,
) -> tuple[Float[Array, "batch N"], RESULTS, Int[Array, " batch"], Float[Array, " batch"]]:
    """`y(length)` of `y' = f(s, y)`, `y(0) = y0`, for a batch of initial vectors `y0`
    `[batch, N]`, by adaptive steps of the embedded pair `tableau`; each keeps its own time
    and step size.

    Each vector is `(x, v_1, …, v_k, q)`: a state of `n` entries (default all `N`), `k`
    tangent vectors of `n` entries, and `N − n(1 + k)` trailing quadratures. A step's error
    is `max(e_x, e_1, …, e_k)`: `e_x` the RMS over the state of `err / (atol + rtol·max(|x₀|,
    |x₁|))` (diffrax's measure), and `e_j` the same for tangent `j` with `atol` multiplied by
    the RMS size of `v_j` at the start of the step. With `control_tangents=False` only `e_x`
    counts (tangents ride along on the state's steps). Quadratures are not controlled: they
    follow the state.

    `f` is the derivative of one vector (it is `vmap`ped here). With `split_state` it takes and
    returns the vector as a tuple of `N` scalars: XLA then fuses each entry's arithmetic on its
    own, where with a stacked `[batch, N]` derivative it re-evaluated the derivative wherever
    a slice of it was read. (`f` should return the entries as they are made:
    `split(stack(...))` folds away, `split(-stack(...))` does not.) Without, `f` maps a
    vector to a vector (large states, whose derivative is a matrix product anyway).

    The stages' derivatives are held stage-major, `[stages, batch]` per component, and the
    stages run in a loop, so each derivative is computed once and each stage's combination is
    a product vectorised over the batch. (Unrolled, XLA fused each derivative into every later
    stage that read it, evaluating the vector field there again: with tangents, ten times the
    work.)

    `width` vectors are integrated at once (default: all). With fewer slots than vectors, a
    slot whose vector is done takes the next one, so that no slot idles until the slowest
    of a fixed group is done (the double gyre: 15–20 % less time).

    `rtol` and `atol` may be traced (a new tolerance does not recompile). The first step is
    `h0` where given (per vector; NaN: choose), else Hairer's rule (Hairer, Nørsett & Wanner,
    Solving ODEs I, II.4) on the state. Returns the final vectors, the statuses
    (`max_steps_reached` where `max_steps` attempted steps did not reach `length`,
    `nonfinite_state` where the derivative stayed non-finite as the step shrank to rounding
    level), the numbers of attempted steps and the step size each vector would take next.
    """
    n_points, N = y0.shape
    n = N if n is None else n
    dtype = y0.dtype
    rtol = jnp.asarray(rtol, dtype)
    atol = jnp.asarray(atol, dtype)
    n_slots = n_points if width is None else max(1, min(int(width), n_points))
    # The vector as components with the batch on axis 0: its `N` entries `[batch]` when split,
    # else the one vector `[batch, N]`.
    if split_state:
        Y0 = tuple(y0[:, i] for i in range(N))
        F = jax.vmap(lambda s, *c: tuple(f(s, c)))
    else:
        Y0 = (y0,)
        F = jax.vmap(lambda s, z: (f(s, z),))
    Fc = lambda s, Y: F(s, *Y)
    length = jnp.asarray(length, dtype)
    power = -1.0 / tableau.order
    sg = jax.lax.stop_gradient
    tiny = jnp.finfo(dtype).tiny

    def times(h, v):  # a per-vector scalar times a component
        return h.reshape(h.shape + (1,) * (v.ndim - 1)) * v

    def select(mask, new, old):
        return tuple(jnp.where(mask.reshape(mask.shape + (1,) * (o.ndim - 1)), a_, o)
                     for a_, o in zip(new, old))

    def take(Y, i):
        return tuple(yc[i] for yc in Y)

    def blocks(Y):
        """The state's and each tangent's entries, `[batch]` arrays (split) or a `[batch, n]`
        array each."""
        if split_state:
            return [Y[j * n: (j + 1) * n] for j in range(1 + k)]
        return [(Y[0][:, j * n: (j + 1) * n],) for j in range(1 + k)]

    def mean_square(parts):
        if split_state:
            return sum(p * p for p in parts) / len(parts)
        return jnp.mean(parts[0] * parts[0], axis=-1)

    def ratios(e, a, b, floor):
        return [ei / (floor + rtol * jnp.maximum(jnp.abs(ai), jnp.abs(bi)))
                for ei, ai, bi in zip(e, a, b)]

    def scaled(err, y_a, y_b, state_only=False):
        e, a, b = blocks(err), blocks(y_a), blocks(y_b)
        norm = jnp.sqrt(mean_square(ratios(e[0], a[0], b[0], atol)))
        if state_only or not control_tangents:
            return norm
        for ej, aj, bj in zip(e[1:], a[1:], b[1:]):
            size = jnp.sqrt(jnp.maximum(mean_square(aj), tiny))
            if not split_state:
                size = size[:, None]
            norm = jnp.maximum(norm, jnp.sqrt(mean_square(ratios(ej, aj, bj, atol * size))))
        return norm

    # The first derivative and the first step of every vector.
    F0 = Fc(jnp.zeros((n_points,), dtype), Y0)
    Y0s, F0s = sg(Y0), sg(F0)
    d0 = scaled(Y0s, Y0s, Y0s, True)
    d1 = scaled(F0s, Y0s, Y0s, True)
    h_a = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.where(d1 > 0, d1, 1.0))
    h_a = jnp.minimum(h_a, length)
    F1 = sg(Fc(h_a, tuple(yc + times(h_a, fc) for yc, fc in zip(Y0s, F0s))))
    d2 = scaled(tuple(p - q for p, q in zip(F1, F0s)), Y0s, Y0s, True) / h_a
    dmax = jnp.maximum(d1, d2)
    h_b = jnp.where(dmax <= 1e-15, jnp.maximum(1e-6, 1e-3 * h_a),
                    (0.01 / jnp.where(dmax > 0, dmax, 1.0)) ** (1.0 / (tableau.order + 1)))
    H0 = sg(jnp.minimum(100 * h_a, h_b).astype(dtype))
    if h0 is not None:  # a given first step, where it is a positive number
        h0 = sg(jnp.broadcast_to(jnp.asarray(h0, dtype), (n_points,)))
        H0 = jnp.where(jnp.isfinite(h0) & (h0 > 0), h0, H0)

    n_stages = len(tableau.b)
    a = jnp.asarray([row + (0.0,) * (n_stages - len(row)) for row in ((),) + tableau.a], dtype)
    c = jnp.asarray((0.0,) + tableau.c, dtype)
    b, e = jnp.asarray(tableau.b, dtype), jnp.asarray(tableau.e, dtype)

    def combine(y, h, w, K):
        return tuple(yc + times(h, jnp.tensordot(w, Kc, axes=1)) for yc, Kc in zip(y, K))

    def running(s, steps):
        return (s < length) & (steps >= 0) & (steps < max_steps)

    def cond(carry):
        return jnp.any(carry[0] < n_points)

    def body(carry):
        idx, nxt, s, h_prev, y, k1, steps, out = carry
        active = (idx < n_points) & running(s, steps)
        last = h_prev >= length - s
        h = jnp.where(last, length - s, h_prev)
        if not tableau.fsal:
            k1 = Fc(s, y)

        def stage(i, K):
            ki = Fc(s + c[i] * h, combine(y, h, a[i], K))
            return tuple(Kc.at[i].set(kc) for Kc, kc in zip(K, ki))

        K0 = tuple(jnp.zeros((n_stages,) + yc.shape, dtype).at[0].set(kc)
                   for yc, kc in zip(y, k1))
        K = jax.lax.fori_loop(1, n_stages, stage, K0)
        y1 = combine(y, h, b, K)
        err = tuple(times(h, jnp.tensordot(e, Kc, axes=1)) for Kc in K)
        # The step sizes are not differentiated (as in diffrax).
        en = sg(scaled(err, y, y1))
        finite = jnp.isfinite(en)
        accept = active & finite & (en <= 1.0)
        factor = _SAFETY * jnp.where(en > 0, en, 1.0) ** power
        factor = jnp.where(en > 0, factor, _FACTOR_MAX)
        factor = jnp.clip(factor, _FACTOR_MIN, _FACTOR_MAX)
        factor = jnp.where(accept, factor, jnp.where(finite, jnp.minimum(factor, 1.0),
                                                     _FACTOR_MIN))
        s = jnp.where(accept, jnp.where(last, length, s + h), s)
        # After the last step the size it would have taken is kept (the next integration
        # from here starts with it), not the shortened one.
        h = jnp.where(active, jnp.where(accept & last, jnp.maximum(h_prev, h * factor),
                                        h * factor), h_prev).astype(dtype)
        y = select(accept, y1, y)
        if tableau.fsal:
            k1 = select(accept, tuple(Kc[-1] for Kc in K), k1)
        steps = steps + active.astype(steps.dtype)
        # A derivative that stays non-finite while the step shrinks to nothing ends the vector
        # at once (its count stored as −count − 1), rather than holding its batch for
        # `max_steps`.
        dead = active & ~finite & (h <= 64 * jnp.finfo(dtype).eps * jnp.maximum(length, 1.0))
        steps = jnp.where(dead, -steps - 1, steps)
        # Finished vectors leave their slots, and the next ones take them.
        done = (idx < n_points) & ~running(s, steps)
        to = jnp.where(done, idx, n_points)
        out = tuple(o.at[to].set(v, mode="drop") for o, v in zip(out, (s, steps, h) + y))
        new = nxt + jnp.cumsum(done) - 1
        fill = done & (new < n_points)
        src = jnp.clip(new, 0, n_points - 1)
        idx = jnp.where(fill, new, jnp.where(done, n_points, idx))
        nxt = jnp.minimum(nxt + jnp.sum(done), n_points)
        s = jnp.where(fill, 0.0, s).astype(dtype)
        h = jnp.where(fill, H0[src], h)
        y = select(fill, take(Y0, src), y)
        k1 = select(fill, take(F0, src), k1)
        steps = jnp.where(fill, 0, steps)
        return idx, nxt, s, h, y, k1, steps, out

    first = jnp.arange(n_slots)
    out0 = (jnp.zeros((n_points,), dtype), jnp.zeros((n_points,), jnp.int32),
            jnp.zeros((n_points,), dtype)) + tuple(jnp.zeros_like(yc) for yc in Y0)
    init = (first, jnp.asarray(n_slots), jnp.zeros((n_slots,), dtype), H0[first],
            take(Y0, first), take(F0, first), jnp.zeros((n_slots,), jnp.int32), out0)
    carry = eqxi.while_loop(cond, body, init, max_steps=min(max_steps * n_points, 2**31 - 1),
                            kind="checkpointed")
    s, steps, h_next, *Y = carry[-1]
    failed = steps < 0
    steps = jnp.where(failed, -steps - 1, steps)
    Y = jnp.stack(Y, axis=1) if split_state else Y[0]
    status = jnp.where(s >= length, code(RESULTS.successful),
                     jnp.where(failed, code(RESULTS.nonfinite_state),
                               code(RESULTS.max_steps_reached)))
    return Y, from_code(status), steps, h_next
