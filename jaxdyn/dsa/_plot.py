"""Figures for DSA: the distance matrix, its MDS embedding, and pairwise separability."""

from __future__ import annotations

from typing import Any

import numpy as np


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _groups(labels, P):
    if labels is None:
        return None, None
    labels = np.asarray(labels)
    if labels.shape != (P,):
        raise ValueError(f"`labels` must hold one label per network ({P}); got shape "
                         f"{labels.shape}.")
    groups = list(dict.fromkeys(labels.tolist()))
    return labels, groups


def plot_distances(D: Any, labels: Any = None, ax=None, *, cmap: str = "viridis", **kwargs):
    """The distance matrix as a heatmap; with `labels`, networks are ordered by group and the
    groups are outlined and named.

    **Arguments:**

    - `D`: a distance matrix `[P, Q]` (from `pairwise`).
    - `labels`: optional group label per network (square matrices only).
    - `ax`: the axes to draw into (default: a new figure).
    - `cmap`, `**kwargs`: passed to `imshow`.

    **Returns:** the axes.
    """
    D = np.asarray(D)
    ax = _axes(ax)
    labels, groups = _groups(labels, D.shape[0])
    order = np.arange(D.shape[0])
    if labels is not None:
        order = np.concatenate([np.flatnonzero(labels == g) for g in groups])
        D = D[np.ix_(order, order)]
    im = ax.imshow(D, cmap=cmap, interpolation="nearest", **kwargs)
    ax.figure.colorbar(im, ax=ax, label="DSA distance")
    if labels is not None:
        edges = np.cumsum([np.sum(labels == g) for g in groups])
        centres = edges - np.array([np.sum(labels == g) for g in groups]) / 2 - 0.5
        for e in edges[:-1]:
            ax.axhline(e - 0.5, color="w", lw=1)
            ax.axvline(e - 0.5, color="w", lw=1)
        ax.set_xticks(centres, [str(g) for g in groups], rotation=45, ha="right")
        ax.set_yticks(centres, [str(g) for g in groups])
    else:
        ax.set_xlabel("network")
        ax.set_ylabel("network")
    return ax


def plot_embedding(D: Any, labels: Any = None, ax=None, **kwargs):
    """The networks in a 2-D classical-MDS embedding of their distances (`embed`), coloured
    by `labels`.

    **Arguments:**

    - `D`: a square distance matrix `[P, P]`, or coordinates `[P, 2]` already embedded.
    - `labels`: optional group label per network (a legend names the groups).
    - `ax`: the axes (default: a new figure); `**kwargs`: passed to `scatter`.

    **Returns:** the axes.
    """
    from ._separability import embed

    D = np.asarray(D)
    Z = np.asarray(embed(D, 2)) if D.shape[0] == D.shape[1] and D.shape[1] != 2 else D
    ax = _axes(ax)
    labels, groups = _groups(labels, Z.shape[0])
    if labels is None:
        ax.scatter(Z[:, 0], Z[:, 1], **kwargs)
    else:
        for g in groups:
            m = labels == g
            ax.scatter(Z[m, 0], Z[m, 1], label=str(g), **kwargs)
        ax.legend(frameon=False)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def plot(D: Any, labels: Any = None, axes=None):
    """The distance heatmap and the MDS embedding side by side.

    **Arguments:**

    - `D`: a square distance matrix (from `pairwise`); `labels`: optional groups.
    - `axes`: two axes to draw into (default: a new figure).

    **Returns:** the two axes.
    """
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    plot_distances(D, labels, ax=axes[0])
    plot_embedding(D, labels, ax=axes[1])
    return axes


def plot_separability(sep: Any, ax=None, *, cmap: str = "magma", **kwargs):
    """A `Separability` result as a heatmap of accuracies, each cell annotated with the
    accuracy and (when computed) the permutation p-value.

    **Returns:** the axes.
    """
    acc = np.asarray(sep.accuracy)
    pv = np.asarray(sep.p_value)
    ax = _axes(ax)
    im = ax.imshow(acc, vmin=0.5, vmax=1.0, cmap=cmap, **kwargs)
    ax.figure.colorbar(im, ax=ax, label="cross-validated accuracy")
    G = len(sep.groups)
    for a in range(G):
        for b in range(G):
            if a != b and np.isfinite(acc[a, b]):
                text = f"{acc[a, b]:.2f}" + (f"\np={pv[a, b]:.2g}" if np.isfinite(pv[a, b])
                                              else "")
                ax.text(b, a, text, ha="center", va="center", fontsize=8,
                        color="w" if acc[a, b] < 0.8 else "k")
    names = [str(g) for g in sep.groups]
    ax.set_xticks(range(G), names, rotation=45, ha="right")
    ax.set_yticks(range(G), names)
    return ax
