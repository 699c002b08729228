"""Ridge-regularised least squares in closed form, with order and ridge chosen by
cross-validation over folds of whole trajectories."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def _solve(G, b, nw, mask, lam):
    """Coefficients minimising `(1/N)Σ w‖y − Φc‖² + λ‖s ⊙ c‖²` over the features in `mask`
    (the others get 0), with `s` the features' root-mean-square: scale-free ridge. Returns
    `(c, condition)`; a rank-deficient problem gets the minimum-norm solution."""
    p = G.shape[0]
    dtype = G.dtype
    maskf = mask.astype(dtype)
    nw = jnp.maximum(nw, jnp.finfo(dtype).tiny)
    s = jnp.sqrt(jnp.maximum(jnp.diagonal(G), 0.0) / nw)
    s = jnp.where(mask & (s > 0), s, 1.0)
    both = maskf[:, None] * maskf[None, :]
    Gs = G / (s[:, None] * s[None, :]) / nw * both + jnp.diag(1.0 - maskf)
    bs = b / s[:, None] / nw * maskf[:, None]
    evals, Q = jnp.linalg.eigh(Gs + lam * jnp.diag(maskf))
    top = jnp.max(evals)
    cut = top * p * jnp.finfo(dtype).eps
    inv = jnp.where(evals > cut, 1.0 / jnp.where(evals > cut, evals, 1.0), 0.0)
    cs = Q @ (inv[:, None] * (Q.T @ bs))
    raw = jnp.linalg.eigvalsh(Gs)
    cond = jnp.sqrt(jnp.max(raw) / jnp.maximum(jnp.min(raw), jnp.finfo(dtype).tiny))
    return (cs / s[:, None]) * maskf[:, None], cond


def grams(phi: Array, y: Array, w: Array, folds: int):
    """Per-fold Gram matrices `Σ w φφᵀ`, `Σ w φ yᵀ`, `Σ w ‖y‖²` and weights; trajectory `i`
    is in fold `i mod folds`. `phi [N, T, p]`, `y [N, T, q]`, `w [N, T]`."""
    N = phi.shape[0]
    onehot = jax.nn.one_hot(jnp.arange(N) % folds, folds, dtype=phi.dtype)
    wf = w[:, :, None] * onehot[:, None, :]  # [N, T, F]
    G = jnp.einsum("ntf,ntp,ntq->fpq", wf, phi, phi)
    b = jnp.einsum("ntf,ntp,ntq->fpq", wf, phi, y)
    yy = jnp.einsum("ntf,ntq,ntq->f", wf, y, y)
    nw = jnp.sum(wf, axis=(0, 1))
    return G, b, yy, nw


def fit_ridge(phi: Array, y: Array, w: Array, degs: np.ndarray, orders: tuple[int, ...],
              ridges: Array, folds: int):
    """Fit `y ≈ φ c` (weights `w`), choosing the order among `orders` (features of η-degree
    above it are dropped) and the ridge among `ridges` by the held-out error over `folds`
    trajectory folds, when there is more than one candidate.

    **Returns:** `(c [p, q], order, ridge, cv_error, condition)`.
    """
    dtype = phi.dtype
    masks = jnp.asarray(np.stack([np.asarray(degs) <= m for m in orders]))
    if phi.shape[-1] == 0:
        zero = jnp.zeros((), dtype)
        return (jnp.zeros((0, y.shape[-1]), dtype), jnp.asarray(orders[-1]), ridges[0],
                jnp.asarray(jnp.nan, dtype), jnp.asarray(1.0, dtype) + zero)
    n_cand = len(orders) * ridges.shape[0]
    cv = n_cand > 1 and folds > 1
    G, b, yy, nw = grams(phi, y, w, folds if cv else 1)
    Gt, bt, nt = G.sum(0), b.sum(0), nw.sum()
    if cv:
        def score(mask, lam):
            def held_out(Gf, bf, yyf, nwf):
                c, _ = _solve(Gt - Gf, bt - bf, nt - nwf, mask, lam)
                return jnp.trace(c.T @ Gf @ c) - 2 * jnp.sum(c * bf) + yyf
            errs = jax.vmap(held_out)(G, b, yy, nw)
            return jnp.sum(errs) / jnp.maximum(nt, 1.0)

        table = jax.vmap(lambda m: jax.vmap(lambda lam: score(m, lam))(ridges))(masks)
        table = jnp.where(jnp.isfinite(table), table, jnp.inf)
        best = jnp.argmin(table.reshape(-1))
        io, il = best // ridges.shape[0], best % ridges.shape[0]
        cv_error = jnp.sqrt(jnp.maximum(table.reshape(-1)[best], 0.0))
    else:
        io, il = len(orders) - 1, 0
        cv_error = jnp.asarray(jnp.nan, dtype)
    mask, lam = masks[io], ridges[il]
    c, cond = _solve(Gt, bt, nt, mask, lam)
    return c, jnp.asarray(orders)[io], lam, cv_error, cond
