"""`distance` and `pairwise`: DSA between trajectories (or fitted operators), all pairs batched."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._chunk import chunked_vmap
from .._progress import as_meter
from .._validate import check_choice, check_int, check_positive
from ._operator import Operator, _as_trials, fit_operator
from ._procrustes import METHODS, SCORES, procrustes, wasserstein

_FIT_KEYS = ("n_delays", "delay_interval", "rank", "rank_thresh", "rank_explained_variance",
             "lamb", "reduced_rank", "steps_ahead")


def _fit_options(kw: dict) -> dict:
    return {k: kw[k] for k in _FIT_KEYS}


def _operator(X: Any, fit: dict, name: str) -> Operator:
    if isinstance(X, Operator):
        return X
    try:
        return fit_operator(_as_trials(X, name), **fit)
    except ValueError as e:
        msg = str(e).replace("`X`", f"`{name}`")
        raise ValueError(msg) from None


def _check_scoring(score, iters, lr, n_starts, key, method):
    check_choice(score, "score", SCORES)
    check_choice(method, "method", METHODS)
    iters = check_int(iters, "iters")
    n_starts = check_int(n_starts, "n_starts")
    check_positive(lr, "lr")
    return iters, n_starts


def _pad(A: Array, r: int) -> Array:
    k = A.shape[-1]
    if k == r:
        return A
    pad = [(0, 0)] * (A.ndim - 2) + [(0, r - k), (0, r - k)]
    return jnp.pad(A, pad)


def _same_size(As: list[Array], score: str, what: str) -> list[Array]:
    sizes = sorted({a.shape[-1] for a in As})
    if len(sizes) == 1:
        return As
    if score != "wasserstein":
        raise ValueError(
            f"{what} have different sizes {sizes} (set by each one's state dimension, delays "
            f"and rank), but the {score!r} score compares operators of one size. Pass one "
            "`rank` for all (at most the smallest embedding dimension), or "
            "score='wasserstein' (eigenvalues, the smaller sets padded with zeros).")
    return [_pad(a, sizes[-1]) for a in As]


@eqx.filter_jit
def _score_pair(A, B, lr, key, *, score, iters, n_starts, method):
    if score == "wasserstein":
        return wasserstein(A, B)
    result = procrustes(A, B, iters=iters, lr=lr, n_starts=n_starts, key=key, method=method)
    return result.angular if score == "angular" else result.euclidean


def distance(
    X: ArrayLike | Operator,
    Y: ArrayLike | Operator,
    *,
    score: str = "wasserstein",
    n_delays: int = 1,
    delay_interval: int = 1,
    rank: int | None = None,
    rank_thresh: float | None = None,
    rank_explained_variance: float | None = None,
    lamb: ArrayLike = 1e-8,
    reduced_rank: bool = False,
    steps_ahead: int = 1,
    iters: int = 1500,
    lr: ArrayLike = 5e-3,
    n_starts: int = 16,
    key: Any = None,
    method: str = "bb",
) -> Float[Array, ""]:
    """The Dynamical Similarity Analysis distance between two sets of trajectories.

    Each set is delay-embedded and fitted with a linear operator (`fit_operator`); the two
    operators are then compared up to an orthogonal change of coordinates (Procrustes
    analysis over vector fields, `procrustes`) or by their eigenvalues (`wasserstein`). The
    definitions and defaults are dsa-metric 2.x's (`DSA(X, Y, ...).fit_score()`), whose
    default score is `"wasserstein"`; the DSA paper's metric is `score="angular"`.

    **Arguments:**

    - `X`, `Y`: trajectories `[T, n]` or `[n_traj, T, n]` (no centring is applied), or
      operators already fitted with `fit_operator`. Their state dimensions may differ.
    - `score`: `"angular"` (`arccos` of the aligned operators' cosine, in `[0, π]`),
      `"euclidean"` (`‖Â − C B̂ Cᵀ‖_F` in `[0, 2]`) or `"wasserstein"` (W₂² between the
      eigenvalues).
    - `n_delays`, `delay_interval`, `rank`, `rank_thresh`, `rank_explained_variance`, `lamb`,
      `reduced_rank`, `steps_ahead`: the operator fit (see `fit_operator`).
    - `iters`: the most steps of one Procrustes search (it stops earlier once converged).
    - `n_starts`, `key`: starting points of the search: a spectral start (aligning the
      operators' symmetric parts), its reflection, the identity, and random orthogonal
      matrices drawn from `key` (default: a fixed key, so results repeat); the better half
      continues at each of a few screens, and the best two run to convergence (`procrustes`).
    - `method`: `"bb"` (Barzilai–Borwein gradient steps, default) or `"adam"` (Adam with
      learning rate `lr` for `iters` steps, dsa-metric's optimiser).

    **Returns:** the distance, a scalar. Differentiable with respect to the trajectories (the
    optimal rotation held fixed, as at a minimum its derivative vanishes).

    **Raises:** `ValueError` for malformed trajectories, NaN in them, delays longer than the
    trajectories, a rank above the embedding dimension, an unknown score, or operators of
    different sizes under a Procrustes score.

    Reference: Ostrow, Eisen, Kozachkov & Fiete, "Beyond Geometry: Comparing the Temporal
    Structure of Computation in Neural Circuits with Dynamical Similarity Analysis", NeurIPS
    2023.
    """
    iters, n_starts = _check_scoring(score, iters, lr, n_starts, key, method)
    fit = _fit_options(locals())
    A = _operator(X, fit, "X").A
    B = _operator(Y, fit, "Y").A
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError("`distance` compares two sets of trajectories; for a stack of "
                         "networks use `pairwise`.")
    A, B = _same_size([A, B], score, "the operators of `X` and `Y`")
    lr = jnp.asarray(lr, A.dtype)
    return _score_pair(A, B, lr, key, score=score, iters=iters, n_starts=n_starts,
                       method=method)


def _stack(Xs: Any, fit: dict, score: str, name: str) -> Array:
    """The operators of a stack (array or Operator) or a list of trajectory sets."""
    if isinstance(Xs, Operator):
        if Xs.A.ndim != 3:
            raise ValueError(f"`{name}` must be a stack of operators (fit_operator on "
                             f"[P, n_traj, T, n]); got one operator.")
        return Xs.A
    if isinstance(Xs, (list, tuple)):
        if len(Xs) == 0:
            raise ValueError(f"`{name}` must hold at least one set of trajectories; got none.")
        shapes = {np.shape(x) for x in Xs if not isinstance(x, Operator)}
        if len(shapes) == 1 and not any(isinstance(x, Operator) for x in Xs):
            return _stack(jnp.stack([jnp.asarray(x) for x in Xs]), fit, score, name)
        As = [_operator(x, fit, f"{name}[{i}]").A for i, x in enumerate(Xs)]
        return jnp.stack(_same_size(As, score, f"the operators of `{name}`"))
    X = _as_trials(Xs, name)
    if X.ndim != 4:
        raise ValueError(
            f"`{name}` must be a stack of networks' trajectories [P, n_traj, T, n], a list of "
            f"trajectory sets, or a stack of operators; got an array of shape {X.shape}.")
    return _operator(X, fit, name).A


def pairwise(
    Xs: Any,
    Ys: Any = None,
    *,
    score: str = "wasserstein",
    n_delays: int = 1,
    delay_interval: int = 1,
    rank: int | None = None,
    rank_thresh: float | None = None,
    rank_explained_variance: float | None = None,
    lamb: ArrayLike = 1e-8,
    reduced_rank: bool = False,
    steps_ahead: int = 1,
    iters: int = 1500,
    lr: ArrayLike = 5e-3,
    n_starts: int = 16,
    key: Any = None,
    method: str = "bb",
    chunk_size: int | None = None,
    progress: Any = False,
) -> Float[Array, "P Q"]:
    """DSA distances between every pair of networks, in one batched computation.

    The operators of all networks are fitted at once (`fit_operator` vmapped over the
    stack); the pairs then run through a chunked `vmap` (`chunk_size` pairs at a time, the
    chunks one after another in one compiled loop, with an optional progress bar). Within
    one stack only the pairs `i < j` are computed and the matrix is mirrored, with a zero
    diagonal.

    **Arguments:**

    - `Xs`: the networks' trajectories, `[P, n_traj, T, n]` (e.g. `model.run` vmapped over a
      stack of trained networks and a batch of trials), a list of trajectory sets (their
      shapes may differ), or a stack of operators (`fit_operator` on such an array).
    - `Ys`: optionally a second collection: then the `[P, Q]` distances between the two.
    - `score`, the fit options, `iters`, `lr`, `n_starts`, `method`: as for `distance`.
    - `key`: the PRNG key of the random starts (split over the pairs; default a fixed key).
    - `chunk_size`: pairs per chunk. Default: one pair at a time for the Procrustes scores
      (each search stops when it converges; pairs batched in one `vmap` would all run as
      long as the slowest, which on CPU costs more than batching saves; on an accelerator a
      larger chunk may pay), all pairs at once for the eigenvalue score.
    - `progress`: `True` or a progress meter for a bar over the chunks.

    **Returns:** the distance matrix `[P, P]` (symmetric, zero diagonal) or `[P, Q]`.

    **Raises:** as `distance`, plus `ValueError` for a collection of the wrong form.

    Reference: Ostrow et al., NeurIPS 2023.
    """
    iters, n_starts = _check_scoring(score, iters, lr, n_starts, key, method)
    fit = _fit_options(locals())
    if chunk_size is None and score != "wasserstein":
        chunk_size = 1
    As = _stack(Xs, fit, score, "Xs")
    P = As.shape[0]
    if Ys is None:
        ii, jj = np.triu_indices(P, k=1)
        Bs = As
    else:
        Bs = _stack(Ys, fit, score, "Ys")
        As, Bs = _same_size([As, Bs], score, "the operators of `Xs` and `Ys`")
        ii, jj = (a.ravel() for a in np.meshgrid(np.arange(P), np.arange(Bs.shape[0]),
                                                indexing="ij"))
    as_meter(progress, "DSA pairs", "chunk")  # validates `progress` before any work
    lr = jnp.asarray(lr, As.dtype)
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.random.split(key, max(len(ii), 1))
    values = _pairs(As, Bs, jnp.asarray(ii), jnp.asarray(jj), lr, keys, score=score,
                    iters=iters, n_starts=n_starts, method=method, chunk_size=chunk_size,
                    progress=progress)
    if Ys is not None:
        return values.reshape(P, Bs.shape[0])
    D = jnp.zeros((P, P), values.dtype).at[ii, jj].set(values)
    return D + D.T


@eqx.filter_jit
def _pairs(As, Bs, ii, jj, lr, keys, *, score, iters, n_starts, method, chunk_size,
           progress):
    if ii.shape[0] == 0:
        return jnp.zeros((0,), As.dtype)
    if score == "wasserstein":
        # Eigenvalues once per network, not once per pair.
        la, lb = jnp.linalg.eigvals(As), jnp.linalg.eigvals(Bs)
        return chunked_vmap(wasserstein, la[ii], lb[jj], chunk_size=chunk_size,
                            progress=as_meter(progress, "DSA pairs", "chunk"))

    def one(a, b, k):
        result = procrustes(a, b, iters=iters, lr=lr, n_starts=n_starts, key=k,
                            method=method)
        return result.angular if score == "angular" else result.euclidean

    return chunked_vmap(one, As[ii], Bs[jj], keys, chunk_size=chunk_size,
                        progress=as_meter(progress, "DSA pairs", "chunk"))
