"""Bifurcation diagrams."""

from __future__ import annotations

from typing import Any

import numpy as np


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs `[start, stop)` of True in `mask`."""
    runs, start = [], None
    for i, v in enumerate(mask):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


def plot_branch(branch: Any, ax=None, *, coordinate: int | str = "norm", color=None,
                label: str | None = None, annotate: bool = True):
    """Draw a continuation branch: stable points solid, unstable dashed, special points
    marked and labelled (LP fold, H Hopf, BP branch point, PD flip, NS Neimark–Sacker,
    CP cusp, BT Bogdanov–Takens).

    **Arguments:**

    - `branch`: a `jd.Branch` (a single one, not a batch).
    - `ax`: the matplotlib axes (default: a new figure).
    - `coordinate`: the vertical axis: "norm" (‖x‖₂), or the index of a state coordinate.
      On a two-parameter curve the vertical axis is the second parameter instead.
    - `color`, `label`: the line's colour and legend label.
    - `annotate`: write the special points' labels.

    **Returns:** the axes.
    """
    import matplotlib.pyplot as plt

    from .._continuation._branch import KIND_LABELS

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    valid = np.asarray(branch.valid)
    if valid.ndim != 1:
        raise ValueError("`branch` must be a single branch; index a batch of branches first.")
    p = np.asarray(branch.p)[valid]
    two = branch.kind != "equilibria"

    def vertical(x, p2):
        if two:
            return p2
        if coordinate == "norm":
            return np.linalg.norm(x, axis=-1)
        if isinstance(coordinate, (int, np.integer)):
            return x[..., int(coordinate)]
        raise ValueError(f"`coordinate` must be 'norm' or a state index; got {coordinate!r}.")

    v = vertical(np.asarray(branch.x)[valid], np.asarray(branch.p2)[valid])
    stable = np.asarray(branch.stable)[valid]
    line = None
    if two:
        (line,) = ax.plot(p, v, "-", color=color, label=label)
    else:
        for style, mask in (("-", stable), ("--", ~stable)):
            for a, b in _runs(mask):
                lo, hi = max(a - 1, 0), b  # join each run to the previous point
                (ln,) = ax.plot(p[lo:hi], v[lo:hi], style,
                                color=color if line is None else line.get_color(),
                                label=label if line is None else None)
                line = line or ln
    sp = branch.special
    ok = np.asarray(sp.valid)
    if ok.any():
        sx = vertical(np.asarray(sp.x)[ok], np.asarray(sp.p2)[ok])
        sp_p = np.asarray(sp.p)[ok]
        ax.plot(sp_p, sx, "o", color="k", ms=4, zorder=3)
        if annotate:
            for k, xx, yy in zip(np.asarray(sp.kind)[ok], sp_p, sx):
                ax.annotate(KIND_LABELS[int(k)], (xx, yy), textcoords="offset points",
                            xytext=(4, 4), fontsize=8)
    ax.set_xlabel("p")
    ax.set_ylabel("p2" if two else ("‖x‖" if coordinate == "norm" else f"x[{coordinate}]"))
    return ax
