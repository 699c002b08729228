"""Ridge-regularised least squares in closed form, by orthogonal factorisations in the working
precision, with order and ridge chosen by cross-validation over folds of whole trajectories,
and each coefficient checked against what the data can determine at that precision."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

# A coefficient is determined when the working-precision uncertainty of its term, over the
# whole range of the data, is below this fraction of the data's size.
DETERMINED_TOL = 1e-2


class Precision(eqx.Module):
    """What the working precision resolves, for `fit_ridge`: the size of the rounding in the
    quantities the targets are computed from, relative to the largest target.

    - `noise`: the root-mean-square size, over the fitted samples, of the quantities the
      targets are computed from (rounding is `eps` times this).
    - `peak`: the largest target size over all valid samples (the range the model is used on).
    - `phi_max`: `[p]`, the largest `|φ_j|` over all valid samples.
    - `low`: the lowest η-degree a fit can be truncated to (static).
    """

    noise: Array
    peak: Array
    phi_max: Array
    low: int = eqx.field(static=True)


class RidgeFit(eqx.Module):
    """The outcome of `fit_ridge`: coefficients `c [p, q]`, the chosen order (after any
    truncation) and ridge, the cross-validation error, the condition number of the scaled
    feature matrix, the `determined` mask `[p]` and whether degrees were dropped."""

    c: Array
    order: Array
    ridge: Array
    cv_error: Array
    condition: Array
    determined: Array
    truncated: Array


def _fold_factors(phi: Array, y: Array, w: Array, folds: int):
    """Triangular factors `R_f [F, m, m]` of each fold's weighted `[φ | y]` (`m = p + q`) and
    the fold weights `[F]`; trajectory `i` is in fold `i mod folds`. `‖R_f x‖ = ‖A_f x‖` for
    every `x`, so the factors stand in for the fold's data in every least-squares quantity."""
    N, T, p = phi.shape
    m = p + y.shape[-1]
    A = jnp.where(w[..., None] > 0, jnp.concatenate([phi, y], -1), 0.0)
    A = A * jnp.sqrt(jnp.maximum(w, 0.0))[..., None]
    k = -(-N // folds)
    pad = k * folds - N
    A = jnp.pad(A, ((0, pad), (0, 0), (0, 0)))
    wp = jnp.pad(w, ((0, pad), (0, 0)))
    A = A.reshape(k, folds, T, m).transpose(1, 0, 2, 3).reshape(folds, k * T, m)
    if k * T < m:
        A = jnp.pad(A, ((0, 0), (0, m - k * T), (0, 0)))
    R = jax.lax.map(lambda a: jnp.linalg.qr(a, mode="r"), A)
    nw = wp.reshape(k, folds, T).sum(axis=(0, 2))
    return R, nw


def _solve_leading(R11: Array, b: Array, nw: Array, k: Array, lam: Array):
    """Coefficients `[p, q]` minimising `(1/N)Σ w‖y − Φc‖² + λ‖s ⊙ c‖²` over the leading `k`
    features (the others 0), with `s` the features' root-mean-square (a scale-free ridge),
    from the upper-triangular factor `R11` of the weighted features and `b = Qᵀ y`; a
    rank-deficient problem gets the minimum-norm solution (singular values below the rank
    cut-off are dropped).

    The leading `k` columns of `R11` are the factor of the leading `k` features, so every
    order is one SVD of the same shape: the unit-RMS columns of those features, with each
    other column replaced by a distinct constant multiple of its unit vector (orthogonal to
    them, larger than their singular values, and solved to 0). Also returns, per feature,
    the size `u_j` of the coefficient's response to a unit root-mean-square perturbation of
    the targets (for the unit-RMS feature; `inf` along a dropped direction), the RMS `s`, and
    the condition number of the `k` scaled features."""
    p = R11.shape[1]
    dtype = R11.dtype
    tiny = jnp.finfo(dtype).tiny
    idx = jnp.arange(p)
    kept = idx < k
    nw = jnp.maximum(nw, tiny)
    s = jnp.sqrt(jnp.sum(R11 * R11, axis=0) / nw)
    s = jnp.where(kept & (s > 0), s, 1.0)
    bound = 3.0 * np.sqrt(p)
    A = jnp.where(kept[None, :], R11 / s[None, :] / jnp.sqrt(nw), 0.0)
    A = A + jnp.diag(jnp.where(kept, 0.0, bound * (1.0 + idx.astype(dtype))))
    bs = jnp.where(kept[:, None], b / jnp.sqrt(nw), 0.0)
    U, sv, Vt = jnp.linalg.svd(A, full_matrices=False)
    kf = jnp.maximum(k, 1).astype(dtype)
    cut = kf * jnp.sqrt(kf) * jnp.finfo(dtype).eps
    live = sv > cut
    safe = jnp.where(live, sv, 1.0)
    f = jnp.where(live, safe / (safe * safe + lam), 0.0)
    cs = Vt.T @ (f[:, None] * (U.T @ bs))
    c = jnp.where(kept[:, None], cs / s[:, None], 0.0)
    # Sensitivities (no derivatives needed): rows of the (filtered) pseudo-inverse.
    svs, fs, Vs = jax.lax.stop_gradient((sv, f, Vt))
    data = svs < 2.0 * np.sqrt(p)
    dead = jnp.sum(jnp.where((data & (fs == 0))[:, None], Vs * Vs, 0.0), axis=0)
    u = jnp.sqrt(jnp.sum(jnp.where(data[:, None], (fs[:, None] * Vs) ** 2, 0.0), axis=0))
    u = jnp.where(dead > 1e-6, jnp.inf, u)
    hi = jnp.max(jnp.where(data, svs, 0.0))
    lo = jnp.min(jnp.where(data, svs, jnp.inf))
    cond = jnp.where(k > 0, hi / jnp.maximum(lo, tiny), 1.0)
    return c, u, jax.lax.stop_gradient(s), cond


def fit_ridge(phi: Array, y: Array, w: Array, degs: np.ndarray, orders: tuple[int, ...],
              ridges: Array, folds: int, precision: Precision | None = None) -> RidgeFit:
    """Fit `y ≈ φ c` (weights `w`), choosing the order among `orders` (features of η-degree
    above it are dropped; the features are sorted by degree) and the ridge among `ridges` by
    the held-out error over `folds` trajectory folds, when there is more than one candidate.

    The least squares are solved from a QR factorisation of the weighted features and an SVD
    of its triangular factor with unit-RMS columns, in the working precision (no normal
    equations, whose condition number is squared); the held-out errors come from per-fold
    triangular factors of `[φ | y]`, so they are residual norms, not differences of sums of
    squares. With `precision`, each coefficient's working-precision uncertainty is carried to
    the whole range of the data: a coefficient whose term could change the model there by
    more than `DETERMINED_TOL` of the data's size is undetermined, and the fit drops the
    degrees from the lowest undetermined one up (not below `precision.low − 1`).

    **Returns:** a `RidgeFit`.
    """
    dtype = phi.dtype
    p, q = phi.shape[-1], y.shape[-1]
    degs = np.asarray(degs)
    if p == 0:
        zero = jnp.zeros((), dtype)
        return RidgeFit(c=jnp.zeros((0, q), dtype), order=jnp.asarray(orders[-1]),
                        ridge=ridges[0], cv_error=jnp.asarray(jnp.nan, dtype),
                        condition=jnp.asarray(1.0, dtype) + zero,
                        determined=jnp.zeros(0, bool), truncated=jnp.asarray(False))
    if np.any(np.diff(degs) < 0):
        raise AssertionError("features must be sorted by degree")
    count = lambda k: int(np.sum(degs <= k))  # noqa: E731  (an order's leading features)
    n_cand = len(orders) * ridges.shape[0]
    if n_cand > 1 and folds > 1:
        io, il, cv_error = _cross_validate(phi, y, w, [count(o) for o in orders], ridges,
                                           folds)
    else:
        io, il = jnp.asarray(len(orders) - 1), jnp.asarray(0)
        cv_error = jnp.asarray(jnp.nan, dtype)
    lam = ridges[il]
    order = jnp.asarray(orders)[io]

    # The fit on every fitted sample: Q R of the weighted features, b = Qᵀ y (after the
    # cross-validation: batched LAPACK kernels side by side can deadlock XLA's CPU runtime).
    phi, y, w, _ = jax.lax.optimization_barrier((phi, y, w, cv_error))
    ws = jnp.sqrt(jnp.maximum(w, 0.0))[..., None]
    Phi = (jnp.where(w[..., None] > 0, phi, 0.0) * ws).reshape(-1, p)
    Yw = (jnp.where(w[..., None] > 0, y, 0.0) * ws).reshape(-1, q)
    if Phi.shape[0] < p:
        Phi = jnp.pad(Phi, ((0, p - Phi.shape[0]), (0, 0)))
        Yw = jnp.pad(Yw, ((0, p - Yw.shape[0]), (0, 0)))
    Qf, R11 = jnp.linalg.qr(Phi)
    b = Qf.T @ Yw
    nw = jnp.sum(w)

    # Every order a fit can end with (a chosen one, or a truncation), one after another.
    low = 0 if precision is None else precision.low
    levels = sorted(set(orders) | set(range(max(low - 1, 0), max(orders) + 1)))
    ks = jnp.asarray([count(k) for k in levels])
    C, U, S, conds = jax.lax.map(lambda k: _solve_leading(R11, b, nw, k, lam), ks)
    lv = jnp.asarray(levels)
    masks = jnp.arange(p)[None, :] < ks[:, None]
    at = jnp.argmax(lv == order)
    if precision is None:
        final, truncated, det = at, jnp.asarray(False), masks[at]
    else:
        eps = jnp.finfo(dtype).eps
        ratio = precision.noise / jnp.maximum(precision.peak, jnp.finfo(dtype).tiny)
        r = eps * U * (jax.lax.stop_gradient(precision.phi_max)[None] / S) * ratio
        ok = masks & (r <= DETERMINED_TOL)  # NaN is undetermined
        bad = masks[at] & ~ok[at]
        first_bad = jnp.min(jnp.where(bad, jnp.asarray(degs), np.iinfo(np.int32).max))
        truncated = jnp.any(bad)
        target = jnp.where(truncated, jnp.maximum(first_bad - 1, levels[0]), order)
        final = jnp.argmax(lv == target)
        det = ok[final]
        order = jnp.where(truncated, target, order)
    return RidgeFit(c=C[final], order=order, ridge=lam, cv_error=cv_error,
                    condition=conds[final], determined=det, truncated=truncated)


def _cross_validate(phi, y, w, counts, ridges, folds):
    """The (order, ridge) indices with the smallest held-out error, and that error (RMS);
    `counts` are the orders' numbers of leading features."""
    p = phi.shape[-1]
    Rf, nwf = _fold_factors(*jax.lax.stop_gradient((phi, y, w)), folds)
    F, m = Rf.shape[0], Rf.shape[-1]
    # Each fold's training factor: the other folds' factors stacked and re-factorised.
    others = 1.0 - jnp.eye(F, dtype=Rf.dtype)
    stacked = (others[:, :, None, None] * Rf[None]).reshape(F, F * m, m)
    Rtrain = jax.lax.map(lambda a: jnp.linalg.qr(a, mode="r"), stacked)
    nt = jnp.sum(nwf)

    def errors(pair):
        # One (order, fold) pair: one SVD, every ridge.
        k, f = pair
        Rtr, Rho = Rtrain[f], Rf[f]

        def one(lam):
            c, _, _, _ = _solve_leading(Rtr[:p, :p], Rtr[:p, p:], nt - nwf[f], k, lam)
            res = Rho[:, :p] @ c - Rho[:, p:]
            return jnp.sum(res * res)

        return jax.vmap(one)(ridges)

    ks = jnp.repeat(jnp.asarray(counts), F)
    fs = jnp.tile(jnp.arange(F), len(counts))
    errs = jax.lax.map(errors, (ks, fs)).reshape(len(counts), F, -1)  # [O, F, L]
    table = jnp.sum(errs, axis=1) / jnp.maximum(nt, 1.0)
    table = jnp.where(jnp.isfinite(table), table, jnp.inf)
    best = jnp.argmin(table.reshape(-1))
    io, il = best // ridges.shape[0], best % ridges.shape[0]
    return io, il, jnp.sqrt(jnp.maximum(table.reshape(-1)[best], 0.0))
