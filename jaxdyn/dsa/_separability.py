"""Embedding a distance matrix (classical MDS) and the linear separability of groups in it."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_float_array, check_finite, check_int, describe


def _check_distances(D: Any, name: str = "D") -> Array:
    D = as_float_array(D, name)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"`{name}` must be a square distance matrix (P, P); got {describe(D)}.")
    check_finite(D, name)
    return D


def embed(D: ArrayLike, dim: int = 2) -> Float[Array, "P dim"]:
    """Classical (Torgerson) multidimensional scaling of a distance matrix.

    Double-centres the squared distances, `G = −½ J D² J` with `J = I − 11ᵀ/P`, and returns
    the leading `dim` eigenvectors of `G` scaled by the square roots of their eigenvalues
    (negative eigenvalues, from distances that are not Euclidean, count as zero). The
    coordinates are defined up to a rotation and reflection; signs are fixed so that the
    largest entry of each axis is positive.

    **Arguments:**

    - `D`: a symmetric distance matrix `[P, P]` (e.g. from `pairwise`).
    - `dim`: the embedding dimension (at most `P`).

    **Returns:** coordinates `[P, dim]`.

    **Raises:** `ValueError` for a matrix that is not square, holds NaN, or a `dim` above `P`.

    Reference: Torgerson, "Multidimensional scaling: I. Theory and method", Psychometrika 1952.
    """
    D = _check_distances(D)
    dim = check_int(dim, "dim", owner="embed")
    if dim > D.shape[0]:
        raise ValueError(f"`dim`={dim} is above the number of items {D.shape[0]}; expected "
                         f"dim <= {D.shape[0]}.")
    return _mds(D, dim)


def _mds(D, dim):
    P = D.shape[0]
    J = jnp.eye(P, dtype=D.dtype) - jnp.full((P, P), 1.0 / P, D.dtype)
    G = -0.5 * J @ (D * D) @ J
    G = 0.5 * (G + G.T)
    w, V = jnp.linalg.eigh(G)
    w, V = w[::-1][:dim], V[:, ::-1][:, :dim]
    sign = jnp.sign(V[jnp.argmax(jnp.abs(V), axis=0), jnp.arange(dim)])
    return V * (sign * jnp.sqrt(jnp.maximum(w, 0)))[None, :]


class Separability(eqx.Module):
    """Cross-validated linear separability of every pair of groups in a distance matrix.

    **Fields** (`G` groups; entry `[a, b]` for groups `a ≠ b`, NaN on the diagonal):

    - `accuracy`: the held-out accuracy of a linear classifier telling group `a` from `b`.
    - `chance`: the accuracy of always guessing the larger group (the chance level).
    - `null`: the mean accuracy under `n_permutations` shuffles of the labels (the chance level
      measured with the same classifier and folds).
    - `p_value`: the fraction of shuffles doing at least as well, `(1 + #≥) / (1 + n)`.
    - `groups`: the group labels, in order (static).
    """

    accuracy: Float[Array, "G G"]
    chance: Float[Array, "G G"]
    null: Float[Array, "G G"]
    p_value: Float[Array, "G G"]
    groups: tuple = eqx.field(static=True)

    def plot(self, ax=None, **kwargs):
        """The accuracies as an annotated heatmap (see `plot_separability`)."""
        from ._plot import plot_separability

        return plot_separability(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        try:
            acc = np.asarray(self.accuracy)
            ch, pv = np.asarray(self.chance), np.asarray(self.p_value)
        except Exception:
            return eqx.tree_pformat(self)
        rows = ["Separability (cross-validated linear classifier)",
                f"{'pair':<24}{'accuracy':>9}{'chance':>8}{'p':>8}"]
        G = len(self.groups)
        for a in range(G):
            for b in range(a + 1, G):
                pair = f"{self.groups[a]} vs {self.groups[b]}"
                rows.append(f"{pair:<24}{acc[a, b]:>9.3f}{ch[a, b]:>8.3f}{pv[a, b]:>8.3f}")
        return "\n".join(rows)


def _classify(Z, y, train, ridge):
    """Held-out predictions of a ridge least-squares linear classifier (targets ±1)."""
    Zb = jnp.concatenate([Z, jnp.ones((Z.shape[0], 1), Z.dtype)], axis=1)
    w = train.astype(Z.dtype)
    t = jnp.where(y, 1.0, -1.0).astype(Z.dtype)
    reg = ridge * jnp.eye(Zb.shape[1], dtype=Z.dtype).at[-1, -1].set(0)
    coef = jnp.linalg.solve((Zb * w[:, None]).T @ Zb + reg, (Zb * w[:, None]).T @ t)
    return (Zb @ coef) > 0


def _cv_accuracy(Z, y, folds, n_folds, ridge):
    def fold(k):
        test = folds == k
        pred = _classify(Z, y, ~test, ridge)
        return jnp.sum((pred == y) & test)

    return jnp.sum(jax.vmap(fold)(jnp.arange(n_folds, dtype=folds.dtype))) / y.shape[0]


def separability(
    D: ArrayLike,
    labels: Any,
    *,
    dim: int = 2,
    n_folds: int = 5,
    n_permutations: int = 200,
    ridge: float = 1e-6,
    key: Any,
) -> Separability:
    """How linearly separable each pair of groups is in the DSA distance matrix.

    For every pair of groups `(a, b)`: the networks of those two groups are embedded with
    classical MDS (`embed` of their sub-matrix, `dim` dimensions), and a linear classifier
    (ridge-regularised least squares on ±1 targets, i.e. Fisher's discriminant) is trained
    and tested by stratified `n_folds`-fold cross-validation. The chance level is given two
    ways: always guessing the larger group, and the same procedure on shuffled labels
    (`n_permutations` times), which also gives a p-value.

    **Arguments:**

    - `D`: a distance matrix `[P, P]` (from `pairwise`).
    - `labels`: one group label per network, length `P` (strings or integers); at least
      two groups, each with at least `n_folds`... two members.
    - `dim`: the MDS dimension the classifier sees.
    - `n_folds`: cross-validation folds (at most the smaller group's size; capped to it).
    - `n_permutations`: label shuffles for the null distribution (0: none; `null` and
      `p_value` are then NaN).
    - `ridge`: the classifier's ridge penalty (relative to unit-variance coordinates).
    - `key`: a PRNG key for the fold assignment and the shuffles.

    **Returns:** a `Separability` result.

    **Raises:** `ValueError` for a malformed matrix, labels of the wrong length, fewer than
    two groups, or a group with fewer than two members.

    Reference: the analysis of Ghalambor, Fakharian, Zeraati & Safavi, "Identifying
    task-specific dynamics in recurrent neural networks using Dynamical Similarity
    Analysis", Bernstein Conference 2024.
    """
    D = _check_distances(D)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != D.shape[0]:
        raise ValueError(f"`labels` must hold one label per network ({D.shape[0]}); got "
                         f"{describe(labels)}.")
    groups = list(dict.fromkeys(labels.tolist()))
    if len(groups) < 2:
        raise ValueError(f"`labels` must name at least two groups; got {groups!r}.")
    counts = {g: int(np.sum(labels == g)) for g in groups}
    small = [g for g, c in counts.items() if c < 2]
    if small:
        raise ValueError(f"every group needs at least two networks to cross-validate; "
                         f"{small!r} have fewer (counts {counts}).")
    dim = check_int(dim, "dim", owner="separability")
    n_folds = check_int(n_folds, "n_folds", minimum=2, owner="separability")
    n_permutations = check_int(n_permutations, "n_permutations", minimum=0,
                               owner="separability")
    G = len(groups)
    nan = np.full((G, G), np.nan)
    acc, chance, null, pval = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    for a in range(G):
        for b in range(a + 1, G):
            key, sub = jax.random.split(key)
            idx = np.flatnonzero((labels == groups[a]) | (labels == groups[b]))
            y = labels[idx] == groups[a]
            k = min(n_folds, int(y.sum()), int((~y).sum()))
            folds, perms = _folds_and_shuffles(sub, y, k, n_permutations)
            sub_D = D[np.ix_(idx, idx)]
            res = _pair(sub_D, jnp.asarray(y), folds, perms, jnp.asarray(ridge, D.dtype),
                        dim=min(dim, len(idx)), n_folds=k)
            acc[a, b] = acc[b, a] = float(res[0])
            chance[a, b] = chance[b, a] = max(y.mean(), 1 - y.mean())
            if n_permutations:
                null[a, b] = null[b, a] = float(res[1])
                pval[a, b] = pval[b, a] = float(res[2])
    return Separability(accuracy=jnp.asarray(acc), chance=jnp.asarray(chance),
                        null=jnp.asarray(null), p_value=jnp.asarray(pval), groups=tuple(groups))


def _folds_and_shuffles(key, y, k, n_permutations):
    """Stratified fold numbers (each class dealt round-robin after a shuffle) and label
    shuffles."""
    rng = np.random.default_rng(np.asarray(jax.random.randint(key, (2,), 0, 2**31 - 1)))
    folds = np.empty(y.shape[0], np.int32)
    for cls in (True, False):
        members = rng.permutation(np.flatnonzero(y == cls))
        folds[members] = np.arange(members.size) % k
    perms = np.stack([rng.permutation(y.shape[0]) for _ in range(n_permutations)]) \
        if n_permutations else np.zeros((0, y.shape[0]), np.int64)
    return jnp.asarray(folds), jnp.asarray(perms.astype(np.int32))


@eqx.filter_jit
def _pair(D, y, folds, perms, ridge, *, dim, n_folds):
    Z = _mds(D, dim)
    Z = Z / jnp.maximum(jnp.std(Z, axis=0, keepdims=True), jnp.finfo(Z.dtype).tiny)
    acc = _cv_accuracy(Z, y, folds, n_folds, ridge)
    if perms.shape[0] == 0:
        return acc, acc, acc
    null = jax.vmap(lambda p: _cv_accuracy(Z, y[p], folds, n_folds, ridge))(perms)
    p_value = (1 + jnp.sum(null >= acc)) / (1 + null.shape[0])
    return acc, jnp.mean(null), p_value
