"""Procrustes analysis over vector fields and the eigenvalue (Wasserstein) score.

PAVF compares two operators up to an orthogonal change of coordinates,
`min_{C ∈ O(r)} ‖Â − C B̂ Cᵀ‖_F` with `Â = A/‖A‖_F`, `B̂ = B/‖B‖_F`. It has no closed form;
as in dsa-metric, `C` is the Cayley transform of a skew-symmetric matrix, which stays on the
rotations SO(r) while Adam (optax) moves the free parameters, and the reflections
(det C = −1) are reached by repeating the optimisation on `P B̂ Pᵀ`, P a transposition. Both
branches (and any extra random starts) run as one batch; the lowest loss wins.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

SCORES = ("angular", "euclidean", "wasserstein")


class Procrustes(eqx.Module):
    """The result of a Procrustes analysis over vector fields.

    **Fields:**

    - `C`: the best orthogonal matrix found, `[r, r]` (`Â ≈ C B̂ Cᵀ`).
    - `loss`: `‖Â − C B̂ Cᵀ‖²_F` at `C` (the normalised operators).
    - `angular`: `arccos tr(Âᵀ C B̂ Cᵀ)` in `[0, π]`.
    - `euclidean`: `‖Â − C B̂ Cᵀ‖_F` in `[0, 2]` (`= 2 sin(angular / 2)`).
    """

    C: Float[Array, "... r r"]
    loss: Float[Array, "*batch"]
    angular: Float[Array, "*batch"]
    euclidean: Float[Array, "*batch"]


def _normalise(A):
    return A / jnp.linalg.norm(A)


def _cayley(S):
    eye = jnp.eye(S.shape[0], dtype=S.dtype)
    return jnp.linalg.solve(eye + S, eye - S)


def _optimise(A, B, C0, lr, iters):
    """Adam on O(r) from `C0` by dynamic trivialisation: every step moves `C ← C·Cayley(S)`
    with `S` the Adam step on the skew-symmetric generator at the current point, so the chart
    is always centred where it is used (no slow-down far from the start). Returns the lowest
    loss seen and its `C`.

    For orthogonal `C`, `‖A − C B Cᵀ‖² = ‖A‖² + ‖B‖² − 2⟨C, A C Bᵀ⟩`; its gradient with respect
    to the generator `M` of `C·Cayley(M − Mᵀ)` at `M = 0` is `−2(K − Kᵀ)`,
    `K = Cᵀ ∂L/∂C = −2 Cᵀ(A C Bᵀ + Aᵀ C B)`, which costs four products and no solve.
    """
    opt = optax.adam(lr)
    const = jnp.sum(A * A) + jnp.sum(B * B)

    def body(carry, _):
        C, state, best_loss, best_C = carry
        ACBt = A @ (C @ B.T)
        loss = const - 2 * jnp.sum(C * ACBt)
        better = loss < best_loss
        best_loss = jnp.where(better, loss, best_loss)
        best_C = jnp.where(better, C, best_C)
        K = -2 * (C.T @ (ACBt + A.T @ (C @ B)))
        grad = -2 * (K - K.T)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and ints
            step, state = opt.update(grad, state)
        C = C @ _cayley(step - step.T)
        return (C, state, best_loss, best_C), None

    inf = jnp.asarray(jnp.inf, A.dtype)
    init = (C0, opt.init(jnp.zeros_like(C0)), inf, C0)
    (C, _, best_loss, best_C), _ = jax.lax.scan(body, init, None, length=iters)
    last = _loss(C, A, B)
    return jnp.minimum(last, best_loss), jnp.where(last < best_loss, C, best_C)


def _loss(C, A, B):
    return jnp.sum((A - C @ B @ C.T) ** 2)


def _scores(A, B, C):
    """Angular and Euclidean scores of `C` for the normalised `A`, `B` (differentiable in A
    and B; the arccos is clipped so that exact matches give 0, not NaN)."""
    CBC = C @ B @ C.T
    cos = jnp.sum(A * CBC)
    # arccos has an infinite slope at ±1: exact matches give 0 (or π) with a zero gradient.
    one = jnp.asarray(1.0, A.dtype)
    eps = jnp.asarray(np.finfo(np.dtype(A.dtype)).eps, A.dtype)
    inside = jnp.abs(cos) < one - eps
    angular = jnp.where(inside, jnp.arccos(jnp.where(inside, cos, 0 * cos)),
                        jnp.where(cos > 0, 0 * cos, 0 * cos + jnp.pi))
    diff = A - CBC
    sq = jnp.sum(diff**2)
    euclidean = jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, one)), 0 * sq)
    return sq, angular, euclidean


def procrustes(A, B, *, iters=1500, lr=5e-3, n_starts=8, key=None) -> Procrustes:
    """Procrustes analysis over vector fields of two square operators of one size.

    Minimises `‖Â − C B̂ Cᵀ‖²_F` over orthogonal `C` (both operators scaled to unit Frobenius
    norm) with Adam on a Cayley parametrisation, on both components of O(r). The search
    starts at `C = I` and at `n_starts − 1` random rotations drawn from `key` (default a fixed
    key), each also reflected; all run for a tenth of `iters`, and the best continues for the
    rest (the objective has local minima; dsa-metric runs one random start per component).
    Each Adam step is taken on the skew-symmetric generator at the current point
    (`C ← C·Cayley(S)`), which converges faster than a fixed chart.
    The optimum `C` is held fixed when differentiating (its own derivative
    vanishes at a minimum), so gradients of the scores with respect to `A` and `B` cost one
    evaluation.

    **Arguments:**

    - `A`, `B`: operators `[r, r]` (e.g. `Operator.A`).
    - `iters`: Adam steps per start (static).
    - `lr`: Adam's learning rate (traced).
    - `n_starts`, `key`: starts per component of O(r), and the key of the random ones.

    **Returns:** a `Procrustes` result.

    Reference: Ostrow et al., NeurIPS 2023, Section 3 (Procrustes Analysis over Vector
    Fields); dsa-metric's `SimilarityTransformDist`.
    """
    A = _normalise(A)
    B = _normalise(B)
    C = _best_rotation(jax.lax.stop_gradient(A), jax.lax.stop_gradient(B), lr, iters,
                       n_starts, key)
    C = jax.lax.stop_gradient(C)
    loss, angular, euclidean = _scores(A, B, C)
    return Procrustes(C=C, loss=loss, angular=angular, euclidean=euclidean)


def _best_rotation(A, B, lr, iters, n_starts, key):
    n = A.shape[0]
    perm = np.arange(n)
    if n > 1:
        perm[[0, 1]] = perm[[1, 0]]
    P = jnp.eye(n, dtype=A.dtype)[perm]
    Bs = jnp.stack([B, P @ B @ P.T])
    C0 = jnp.eye(n, dtype=A.dtype)[None]
    if n_starts > 1:
        key = jax.random.PRNGKey(0) if key is None else key
        # Haar-random rotations: QR of Gaussian matrices with the signs fixed, det +1.
        G = jax.random.normal(key, (n_starts - 1, n, n), A.dtype)
        Q, R = jnp.linalg.qr(G)
        Q = Q * jnp.sign(jnp.diagonal(R, axis1=-2, axis2=-1))[:, None, :]
        Q = Q.at[:, :, 0].multiply(jnp.sign(jnp.linalg.det(Q))[:, None])
        C0 = jnp.concatenate([C0, Q])
    # Screen every start on both components of O(r) for a tenth of the steps, then continue
    # the best: local minima are common, and which basin a start falls in shows early.
    screen = max(1, iters // 10)
    run = jax.vmap(jax.vmap(lambda b, c: _optimise(A, b, c, lr, screen), (None, 0)), (0, None))
    losses, Cs = run(Bs, C0)  # [2, n_starts]
    best = jnp.argmin(losses.reshape(-1))
    branch = best // n_starts
    C = Cs.reshape(-1, n, n)[best]
    Bb = jnp.where(branch == 0, Bs[0], Bs[1])
    if iters > screen:
        loss2, C2 = _optimise(A, Bb, C, lr, iters - screen)
        C = jnp.where(loss2 < losses.reshape(-1)[best], C2, C)
    return jnp.where(branch == 0, C, C @ P)


def _assignment(cost):
    """An optimal assignment for a (batched) square cost matrix, on the host (scipy)."""
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost)
    flat = cost.reshape((-1,) + cost.shape[-2:])
    out = np.stack([linear_sum_assignment(c)[1] for c in flat]).astype(np.int32)
    return out.reshape(cost.shape[:-1])


def wasserstein(a, b):
    """The eigenvalue score: the squared 2-Wasserstein distance between the eigenvalues of two
    operators, as points of the complex plane with equal weights.

    Equal counts give `(1/r) min_π Σ |λ_i − μ_π(i)|²` (an assignment problem, solved exactly on
    the host); a smaller set is padded with zeros, as dsa-metric does. The eigenvalues are
    those of the operators as fitted (not normalised). Differentiable with respect to the
    operators through their eigenvalues (the assignment held fixed).

    **Arguments:**

    - `a`, `b`: operators `[r, r]` or eigenvalue vectors `[r]` (complex).

    **Returns:** the score, a scalar (W₂², not its square root, as in dsa-metric).

    Reference: Redman et al., "Identifying equivalent training dynamics", 2023, and
    dsa-metric's `SimilarityTransformDist(score_method="wasserstein")`.
    """
    la = jnp.linalg.eigvals(a) if jnp.ndim(a) == 2 else jnp.asarray(a)
    lb = jnp.linalg.eigvals(b) if jnp.ndim(b) == 2 else jnp.asarray(b)
    n = max(la.shape[0], lb.shape[0])
    la = jnp.concatenate([la, jnp.zeros(n - la.shape[0], la.dtype)])
    lb = jnp.concatenate([lb, jnp.zeros(n - lb.shape[0], lb.dtype)])
    cost = jnp.abs(la[:, None] - lb[None, :]) ** 2
    perm = jax.pure_callback(_assignment, jax.ShapeDtypeStruct((n,), jnp.int32),
                             jax.lax.stop_gradient(cost), vmap_method="broadcast_all")
    return jnp.mean(cost[jnp.arange(n), perm])
