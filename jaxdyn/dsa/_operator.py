"""Delay (Hankel) embedding and the linear operator DSA compares (HAVOK-DMD / reduced-rank).

The definitions follow the reference implementation of Dynamical Similarity Analysis
(`dsa-metric`, `DSA.DMD`), so that an operator fitted here has the same eigenvalues as the one
fitted there on the same data (its coordinates are arbitrary: SVD signs and, for repeated
singular values, the basis are not unique).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_float_array, check_finite, check_int, describe, is_concrete


def delay_embed(X: ArrayLike, n_delays: int, delay_interval: int = 1) -> Float[Array, "*batch"]:
    """Delay (Hankel) embedding of trajectories.

    Row `t` of the embedding of one trajectory `x` is
    `[x(t + (D−1)τ), …, x(t + τ), x(t)]` (the latest sample first), `D = n_delays`,
    `τ = delay_interval`, for `t = 0 … T − (D−1)τ − 1`.

    **Arguments:**

    - `X`: trajectories `[..., T, n]` (any leading batch axes, e.g. `[n_traj, T, n]`).
    - `n_delays`: the number of delays `D` (1: no embedding).
    - `delay_interval`: the steps `τ` between delays.

    **Returns:** the embedding `[..., T − (D−1)τ, D·n]`.

    **Raises:** `ValueError` if `X` has fewer than 2 axes or the delays span more than `T`.

    Reference: Ostrow et al., "Beyond Geometry: Comparing the Temporal Structure of
    Computation in Neural Circuits with Dynamical Similarity Analysis", NeurIPS 2023.
    """
    X = as_float_array(X, "X")
    if X.ndim < 2:
        raise ValueError(f"`X` must be trajectories of shape (..., T, n); got {describe(X)}.")
    n_delays = check_int(n_delays, "n_delays", owner="delay_embed")
    delay_interval = check_int(delay_interval, "delay_interval", owner="delay_embed")
    _check_length(X.shape[-2], n_delays, delay_interval, steps_ahead=0)
    return _embed(X, n_delays, delay_interval)


def _check_length(T: int, n_delays: int, delay_interval: int, steps_ahead: int) -> int:
    span = (n_delays - 1) * delay_interval
    rows = T - span
    if rows < 1 + steps_ahead:
        need = span + 1 + steps_ahead
        raise ValueError(
            f"`n_delays`={n_delays} with `delay_interval`={delay_interval} spans {span + 1} "
            f"time steps, too many for trajectories of length T={T}: the fit needs T >= "
            f"{need}. Use fewer delays or longer trajectories."
        )
    return rows


def _embed(X: Array, n_delays: int, delay_interval: int) -> Array:
    T = X.shape[-2]
    rows = T - (n_delays - 1) * delay_interval
    blocks = [X[..., (n_delays - 1 - d) * delay_interval:
                (n_delays - 1 - d) * delay_interval + rows, :] for d in range(n_delays)]
    return jnp.concatenate(blocks, axis=-1)


class Operator(eqx.Module):
    """A linear operator fitted to delay-embedded trajectories: what DSA compares.

    **Fields:**

    - `A`: the operator in the whitened delay coordinates (dsa-metric's `A_v`): `[r, r]` for
      the principal-component regression (HAVOK) fit, `[m, m]` of rank `r` for reduced-rank
      regression, `m = min(D·n, n_rows)` the embedding's number of singular values.
    - `singular_values`: the singular values of the embedding, `[m]`.
    - `modes`: the leading `r` right singular vectors of the embedding (its principal
      directions in delay space), `[D·n, r]`.
    - `rank`, `n_delays`, `delay_interval`, `reduced_rank`: the fit's settings (static).

    A stack of operators (from `fit_operator` on `[P, n_traj, T, n]`) carries a leading axis
    `P` on every array.
    """

    A: Float[Array, "... r r"]
    singular_values: Float[Array, "... m"]
    modes: Float[Array, "... Dn r"]
    rank: int = eqx.field(static=True)
    n_delays: int = eqx.field(static=True)
    delay_interval: int = eqx.field(static=True)
    reduced_rank: bool = eqx.field(static=True)

    @property
    def eigvals(self) -> Array:
        """The operator's eigenvalues (complex; basis-free, the quantity to compare across
        implementations)."""
        return jnp.linalg.eigvals(self.A)

    @property
    def explained_variance(self) -> Array:
        """Cumulative fraction of the embedding's variance captured by the leading singular
        directions."""
        s2 = self.singular_values**2
        return jnp.cumsum(s2, axis=-1) / jnp.sum(s2, axis=-1, keepdims=True)

    @property
    def A_full(self) -> Array:
        """The operator in delay-embedding coordinates, `[D·n, D·n]` (dsa-metric's
        `A_havok_dmd`, restricted to the `r` kept directions): it maps one embedded row to the
        next."""
        k = self.modes.shape[-1]
        s = self.singular_values[..., :k]
        A = jnp.swapaxes(self.A, -1, -2) if self.reduced_rank else self.A
        scaled = self.modes * s[..., None, :]
        return scaled @ A @ jnp.swapaxes(self.modes / s[..., None, :], -1, -2)

    def __repr__(self) -> str:
        kind = "reduced-rank" if self.reduced_rank else "HAVOK"
        batch = self.A.shape[:-2]
        head = f"{batch[0]} operators" if batch else "Operator"
        return (f"{head}({kind}, rank {self.rank}, {self.A.shape[-1]}×{self.A.shape[-1]}, "
                f"n_delays={self.n_delays}, delay_interval={self.delay_interval})")


def _as_trials(X: Any, name: str) -> Array:
    X = as_float_array(X, name)
    if X.ndim == 2:
        X = X[None]
    if X.ndim not in (3, 4):
        raise ValueError(
            f"`{name}` must be trajectories of shape (T, n), (n_traj, T, n) or a stack "
            f"(P, n_traj, T, n); got {describe(X)}.")
    if X.size == 0:
        raise ValueError(f"`{name}` must not be empty; got {describe(X)}.")
    check_finite(X, name)
    return X


def _max_rank(X: Array, n_delays: int, delay_interval: int, steps_ahead: int) -> int:
    rows = _check_length(X.shape[-2], n_delays, delay_interval, steps_ahead)
    return min(n_delays * X.shape[-1], X.shape[-3] * rows)


def _resolve_rank(X, *, n_delays, delay_interval, steps_ahead, rank, rank_thresh,
                  rank_explained_variance, reduced_rank, lamb, name) -> tuple[int, Any]:
    """The static rank, and for data-driven ranks a per-network rank (host ints)."""
    m = _max_rank(X, n_delays, delay_interval, steps_ahead)
    given = [v is not None for v in (rank, rank_thresh, rank_explained_variance)]
    if sum(given) > 1:
        raise ValueError("give at most one of `rank`, `rank_thresh` and "
                         f"`rank_explained_variance`; got rank={rank!r}, rank_thresh="
                         f"{rank_thresh!r}, rank_explained_variance={rank_explained_variance!r}.")
    if rank is not None:
        rank = check_int(rank, "rank")
        if rank > m:
            raise ValueError(
                f"`rank`={rank} is above the embedding dimension: `{name}` embedded with "
                f"n_delays={n_delays} has {m} singular directions (the smaller of n_delays·n "
                f"and the number of embedded rows); expected rank <= {m}.")
        return rank, None
    if not any(given):
        return m, None
    if not is_concrete(X):
        raise ValueError("`rank_thresh` and `rank_explained_variance` choose the rank from the "
                         "data, which needs concrete trajectories (not traced inside jit); pass "
                         "an integer `rank` instead.")
    value = rank_thresh if rank_thresh is not None else rank_explained_variance
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"the rank threshold must be a finite number >= 0; got {value!r}.")
    stack = X if X.ndim == 4 else X[None]
    spectra = np.asarray(jax.vmap(lambda x: _spectrum(
        x, n_delays, delay_interval, steps_ahead, reduced_rank, lamb))(stack))
    if rank_thresh is not None:
        ranks = np.maximum((spectra > rank_thresh).sum(-1), 1)
    else:
        s2 = spectra if reduced_rank else spectra**2
        cum = np.cumsum(s2, -1) / np.sum(s2, -1, keepdims=True)
        ranks = np.array([min(int(np.searchsorted(c, value)) + 1, m) for c in cum])
    ranks = ranks.astype(int)
    return int(ranks.max()), (ranks if X.ndim == 4 else ranks[:1])


def _regression_pairs(X, n_delays, delay_interval, steps_ahead, rank=None):
    """The whitened delay coordinates one step apart, and the embedding's singular values and
    right singular vectors. With `rank` below the embedding dimension of a tall embedding,
    only the leading `rank` directions are formed, from the eigenvectors of the Gram matrix
    `HᵀH` (`U = H V / S`): a fifth of the cost of the SVD for a [10⁴, 640] embedding, and
    as accurate for directions whose singular values are not tiny next to the largest (the
    small ones, unused, then have an absolute error of order √eps times the largest)."""
    K, T, n = X.shape
    rows = T - (n_delays - 1) * delay_interval
    dn = n_delays * n
    if rank is not None and rank < min(K * rows, dn) and K * rows >= dn:
        lam, W = jnp.linalg.eigh(_hankel_gram(X, n_delays, delay_interval))
        S = jnp.sqrt(jnp.maximum(lam[::-1], 0))
        V = W[:, ::-1][:, :rank]
        # U = H V / S, block by block (the embedding is never formed).
        HV = sum(X[:, (n_delays - 1 - d) * delay_interval:
                    (n_delays - 1 - d) * delay_interval + rows] @ V[d * n:(d + 1) * n]
                 for d in range(n_delays))
        U = HV.reshape(K * rows, rank) / S[None, :rank]
        Vh = V.T
    else:
        H = _embed(X, n_delays, delay_interval).reshape(K * rows, dn)
        U, S, Vh = jnp.linalg.svd(H, full_matrices=False)
    m = U.shape[1]
    # Singular vectors have arbitrary signs; fix them by the time courses (each column's
    # largest entry positive). Trajectories that differ by a change of coordinates of the
    # state (X and X Qᵀ) then get the same whitened coordinates and the same operator, not one
    # conjugated by a sign flip that a Procrustes search must find.
    pick = jnp.argmax(jnp.abs(U), axis=0)
    sign = jnp.sign(U[pick, jnp.arange(m)])
    sign = jax.lax.stop_gradient(jnp.where(sign == 0, jnp.ones_like(sign), sign))
    U, Vh = U * sign[None, :], Vh * sign[:, None]
    V = U.reshape(K, rows, m)  # the whitened delay coordinates, per trial
    Vm = V[:, :-steps_ahead].reshape(-1, m)
    Vp = V[:, steps_ahead:].reshape(-1, m)
    return Vm, Vp, S, Vh


def _hankel_gram(X, n_delays, delay_interval):
    """`HᵀH` of the delay embedding `H` of trajectories `X` [K, T, n] without forming `H`.

    Block `(d, d')`, `d ≤ d'`, is `Σ_s x(s + ℓ) x(s)ᵀ` over a window of `s`, `ℓ = (d' − d)τ`:
    the sum over all `s` for that lag, less the few terms before and after the window (at
    most `(D − 1)τ` each). Cost: `D` lagged products instead of `D²` blocks."""
    K, T, n = X.shape
    D, tau = n_delays, delay_interval
    E = (D - 1) * tau
    blocks = {}
    for j in range(D):
        lag = j * tau
        Xa, Xb = X[:, lag:], X[:, :T - lag]  # x(s + ℓ), x(s)
        full = jnp.einsum("ksi,ksj->ij", Xa, Xb)
        if E:
            head = jnp.einsum("ksi,ksj->sij", Xa[:, :E], Xb[:, :E])
            tail = jnp.einsum("ksi,ksj->sij", Xa[:, -E:], Xb[:, -E:])[::-1]
            zero = jnp.zeros((1, n, n), X.dtype)
            head = jnp.concatenate([zero, jnp.cumsum(head, axis=0)])  # head[m]: s < m
            tail = jnp.concatenate([zero, jnp.cumsum(tail, axis=0)])  # tail[m]: last m
        for d in range(D - j):
            dp = d + j
            start = (D - 1 - dp) * tau  # the window is s ∈ [start, start + rows)
            block = full
            if E:
                block = block - head[start] - tail[d * tau]
            blocks[d, dp] = block
    return jnp.block([[blocks[d, dp] if d <= dp else blocks[dp, d].T for dp in range(D)]
                      for d in range(D)])


def _gram_solve(Vm, Vp, lamb, active):
    """((Vmᵀ Vm + λI)⁻¹ Vmᵀ Vp) over the columns flagged `active` (zero elsewhere)."""
    Vm = jnp.where(active[None, :], Vm, 0)
    Vp = jnp.where(active[None, :], Vp, 0)
    # Inactive columns get a unit diagonal so the system stays regular; their rows are zero.
    G = Vm.T @ Vm + jnp.diag(jnp.where(active, lamb, jnp.ones((), Vm.dtype)))
    return jnp.linalg.solve(G, Vm.T @ Vp)


def _spectrum(X, n_delays, delay_interval, steps_ahead, reduced_rank, lamb):
    Vm, Vp, S, _ = _regression_pairs(X, n_delays, delay_interval, steps_ahead)
    if not reduced_rank:
        return S
    m = S.shape[0]
    B = _gram_solve(Vm, Vp, lamb, jnp.ones(m, bool))
    return jnp.linalg.eigvalsh(Vp.T @ Vm @ B)[::-1]


def _fit_one(X, lamb, active_rank, *, n_delays, delay_interval, steps_ahead, rank,
             reduced_rank) -> Operator:
    Vm, Vp, S, Vh = _regression_pairs(X, n_delays, delay_interval, steps_ahead,
                                      None if reduced_rank else rank)
    m = S.shape[0]
    lamb = jnp.asarray(lamb, Vm.dtype)
    if reduced_rank:
        B = _gram_solve(Vm, Vp, lamb, jnp.ones(m, bool))
        _, W = jnp.linalg.eigh(Vp.T @ Vm @ B)
        W = W[:, ::-1]
        keep = jnp.arange(m) < active_rank
        Wr = jnp.where(keep[None, :], W, 0)
        A = B @ (Wr @ Wr.T)
    else:
        active = jnp.arange(rank) < active_rank
        A = _gram_solve(Vm[:, :rank], Vp[:, :rank], lamb, active).T
    modes = Vh.T if reduced_rank else Vh[:rank].T
    return Operator(A=A, singular_values=S, modes=modes, rank=rank, n_delays=n_delays,
                    delay_interval=delay_interval, reduced_rank=reduced_rank)


def fit_operator(
    X: ArrayLike,
    *,
    n_delays: int = 1,
    delay_interval: int = 1,
    rank: int | None = None,
    rank_thresh: float | None = None,
    rank_explained_variance: float | None = None,
    lamb: ArrayLike = 1e-8,
    reduced_rank: bool = False,
    steps_ahead: int = 1,
) -> Operator:
    """Fit the linear operator of DSA (HAVOK dynamic mode decomposition) to trajectories.

    The trajectories are delay-embedded (`delay_embed`), the embedding `H` (trials stacked,
    `[n_traj·T', D·n]`) is factored `H = V S Wᵀ`, and the operator maps the whitened delay
    coordinates `V` one step ahead within each trajectory, by ridge regression on the leading
    `r` columns: `A = ((V₋ᵀV₋ + λI)⁻¹ V₋ᵀ V₊)ᵀ` (principal-component regression). With
    `reduced_rank=True` the regression uses every column and is then projected on the `r`
    leading directions of its prediction (`A = B Π_r`, row-vector convention, as dsa-metric).
    Same definitions and defaults as dsa-metric 2.x's `DMD` (no centring of the data).

    **Arguments:**

    - `X`: trajectories `[T, n]`, `[n_traj, T, n]`, or a stack of networks'
      `[P, n_traj, T, n]` (then every field of the result has a leading axis `P`).
    - `n_delays`, `delay_interval`: the delay embedding.
    - `rank`: the number of singular directions kept (default: all, `min(D·n, rows)`).
    - `rank_thresh`: instead, keep the singular values above this threshold (at least 1).
    - `rank_explained_variance`: instead, keep the fewest directions whose cumulative
      explained variance reaches this fraction. These two need concrete data; for a stack
      the operators are fitted at the largest rank found and each is zero outside its own
      rank (the shapes then agree; only the eigenvalue score compares such operators).
    - `lamb`: the ridge penalty λ (traced: a new value does not recompile).
    - `reduced_rank`: reduced-rank regression instead of principal-component regression.
    - `steps_ahead`: the prediction horizon in steps.

    **Returns:** an `Operator`.

    **Raises:** `ValueError` for trajectories of the wrong rank, NaN or inf in them, delays
    spanning more than the trajectory length, a rank above the embedding dimension, or more
    than one rank option.

    Reference: Ostrow et al., NeurIPS 2023 (DSA); Brunton et al., "Chaos as an intermittently
    forced linear system", Nat. Commun. 2017 (HAVOK).
    """
    X = _as_trials(X, "X")
    n_delays = check_int(n_delays, "n_delays", owner="fit_operator")
    delay_interval = check_int(delay_interval, "delay_interval", owner="fit_operator")
    steps_ahead = check_int(steps_ahead, "steps_ahead", owner="fit_operator")
    if is_concrete(lamb) and not (np.all(np.isfinite(np.asarray(lamb)))
                                  and np.all(np.asarray(lamb) >= 0)):
        raise ValueError(f"`lamb` must be a finite number >= 0; got {lamb!r}.")
    r, ranks = _resolve_rank(X, n_delays=n_delays, delay_interval=delay_interval,
                             steps_ahead=steps_ahead, rank=rank, rank_thresh=rank_thresh,
                             rank_explained_variance=rank_explained_variance,
                             reduced_rank=bool(reduced_rank), lamb=lamb, name="X")
    lamb = jnp.asarray(lamb, X.dtype)
    return _fit(X, lamb, ranks, n_delays=n_delays, delay_interval=delay_interval,
                steps_ahead=steps_ahead, rank=r, reduced_rank=bool(reduced_rank))


@eqx.filter_jit
def _fit_jit(X, lamb, active, *, n_delays, delay_interval, steps_ahead, rank, reduced_rank):
    kw = dict(n_delays=n_delays, delay_interval=delay_interval, steps_ahead=steps_ahead,
              rank=rank, reduced_rank=reduced_rank)
    if X.ndim == 4:
        return jax.vmap(lambda x, a: _fit_one(x, lamb, a, **kw))(X, active)
    return _fit_one(X, lamb, active, **kw)


def _fit(X, lamb, ranks, **kw):
    if ranks is None:
        active = jnp.full(X.shape[:1] if X.ndim == 4 else (), kw["rank"])
    else:
        active = jnp.asarray(ranks if X.ndim == 4 else ranks[0])
    return _fit_jit(X, lamb, active, **kw)
