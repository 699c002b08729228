"""Matplotlib figures for jaxdyn's results. Each function takes `ax=None` and returns the axes."""

from __future__ import annotations

import numpy as np


def _axes(ax, projection=None):
    import matplotlib.pyplot as plt

    if ax is None:
        fig = plt.figure(figsize=(5, 4))
        ax = fig.add_subplot(projection=projection)
    return ax


def plot_trajectory(traj, ax=None, dims=(0, 1), **kwargs):
    """A trajectory in the plane of state coordinates `dims`, or one coordinate against time
    when `dims` has a single entry. Batched trajectories (`xs` of shape `[B, T, n]`) draw one
    line each."""
    xs = np.asarray(traj.xs)
    ts = np.asarray(traj.ts)
    if xs.ndim == 2:
        xs, ts = xs[None], ts[None]
    ax = _axes(ax)
    kwargs.setdefault("lw", 1.0)
    for x, t in zip(xs, ts):
        if len(dims) == 1:
            ax.plot(t, x[:, dims[0]], **kwargs)
        else:
            ax.plot(x[:, dims[0]], x[:, dims[1]], **kwargs)
    if len(dims) == 1:
        ax.set_xlabel("t")
        ax.set_ylabel(f"x[{dims[0]}]")
    else:
        ax.set_xlabel(f"x[{dims[0]}]")
        ax.set_ylabel(f"x[{dims[1]}]")
    return ax


def plot_history(history, ax=None, smooth: int = 10):
    """Training loss (log scale) and accuracy against the step; one line per network."""
    import matplotlib.pyplot as plt

    loss = np.atleast_2d(np.asarray(history.loss))
    acc = np.atleast_2d(np.asarray(history.accuracy))
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    k = max(1, int(smooth))
    kernel = np.ones(k) / k
    for lo, ac in zip(loss, acc):
        ax[0].plot(np.convolve(lo, kernel, mode="valid"), lw=0.8)
        ax[1].plot(np.convolve(ac, kernel, mode="valid"), lw=0.8)
    ax[0].set(yscale="log", xlabel="step", ylabel="loss")
    ax[1].set(xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02))
    return ax


_STABILITY_COLOURS = ("tab:blue", "tab:red", "tab:orange", "tab:gray")


def _pca_plane(ax, pts, trajectories):
    """The projection onto the first two principal components of `trajectories` (or of
    `pts` without them), with the trajectories drawn in grey. Returns `(project, data,
    basis)`."""
    n = pts.shape[-1]
    traj = None
    if trajectories is not None:
        traj = np.asarray(getattr(trajectories, "xs", trajectories))
        traj = traj.reshape((-1,) + traj.shape[-2:]) if traj.ndim >= 2 else traj[None, None]
    data = traj.reshape(-1, n) if traj is not None else pts
    data = data[np.all(np.isfinite(data), axis=-1)] if data.size else np.zeros((1, n))
    mean = data.mean(axis=0)
    if n == 1:
        basis = np.array([[1.0, 0.0]])
    else:
        _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
        basis = np.zeros((n, 2))
        basis[:, : min(2, vt.shape[0])] = vt[:2].T
    project = lambda z: (z - mean) @ basis
    if traj is not None:
        for t in traj:
            p = project(t)
            ax.plot(p[:, 0], p[:, 1], color="0.8", lw=0.7, zorder=0)
    return project, data, basis


def plot_manifolds(fps, manifolds, ax=None, trajectories=None, **kwargs):
    """Manifolds of fixed points and isolated points in the plane of the first two principal
    components: isolated points coloured by stability, each manifold's members in a colour of
    its own with a segment along its first principal axis (over the members' range).

    **Arguments:** `fps`, the `FixedPoints` the manifolds were found in; `manifolds`, a
    `FixedPointManifolds`; `ax`, `trajectories` and `**kwargs` as `plot_fixed_points`.

    **Returns:** the axes.
    """
    ax = _axes(ax)
    x = np.asarray(fps.x)
    label = np.asarray(manifolds.label)
    iso = np.asarray(manifolds.isolated)
    keep = (iso | (label >= 0)) & np.all(np.isfinite(x), axis=-1)
    project, _, _ = _pca_plane(ax, x[keep], trajectories)
    kwargs.setdefault("s", 36)
    stab = (np.asarray(fps.stability) if fps.stability is not None
            else np.zeros(len(x), int))
    for code, name in enumerate(fps.stability_names):
        sel = iso & (stab == code)
        if sel.any():
            p = project(x[sel])
            ax.scatter(p[:, 0], p[:, 1], color=(_STABILITY_COLOURS + ("k",))[code],
                       label=f"{name} (isolated)", zorder=3, **kwargs)
    colours = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
    for i in np.flatnonzero(np.asarray(manifolds.valid)):
        colour = colours[i % len(colours)]
        p = project(x[label == i])
        d = int(manifolds.dim[i])
        kind = "ring" if bool(manifolds.closed[i]) else f"{d}-D manifold"
        ax.scatter(p[:, 0], p[:, 1], color=colour, marker="D", zorder=3,
                   label=f"{kind}, {int(manifolds.n_members[i])} points", **kwargs)
        c = np.asarray(manifolds.centre[i])
        a = np.asarray(manifolds.axes[i])[:, 0] * 0.5 * float(manifolds.extent[i, 0])
        seg = project(np.stack([c - a, c + a]))
        ax.plot(seg[:, 0], seg[:, 1], color=colour, lw=1.5, alpha=0.6, zorder=2)
    n = x.shape[-1]
    ax.set_xlabel("PC 1" if n > 1 else "x")
    ax.set_ylabel("PC 2" if n > 1 else "")
    if keep.any():
        ax.legend(loc="best", fontsize="small")
    return ax


def plot_fixed_points(fps, ax=None, trajectories=None, *, directions=True, scale=None,
                      **kwargs):
    """Fixed points in the plane of the first two principal components, coloured by stability
    (stable, saddle, unstable, marginal; slow points hollow), with their unstable directions
    drawn as short segments and optional trajectories underneath.

    **Arguments:**

    - `fps`: a `FixedPoints`; only valid, resolved points are drawn.
    - `ax`: matplotlib axes (default: a new figure).
    - `trajectories`: a `Trajectory` or an array of states `[..., n]`; the PCA basis is fitted
      to these when given, else to the points.
    - `directions`: draw the unstable eigen-directions (needs the linearisation).
    - `scale`: half-length of the direction segments (default 5% of the data's extent).
    - `**kwargs`: passed to `ax.scatter`.

    **Returns:** the axes.
    """
    ax = _axes(ax)
    x = np.asarray(fps.x)
    keep = np.asarray(fps.resolved) & np.all(np.isfinite(x), axis=-1)
    pts = x[keep]
    n = x.shape[-1]
    project, data, basis = _pca_plane(ax, pts, trajectories)
    p = project(pts)
    if scale is None:
        extent = np.ptp(np.concatenate([p, project(data)]), axis=0).max() if len(p) else 1.0
        scale = 0.05 * (extent if extent > 0 else 1.0)
    slow = np.asarray(fps.slow)[keep]
    kwargs.setdefault("s", 36)
    if fps.stability is None:  # not linearised: stability unknown
        labels, names = np.zeros(len(pts), int), ("fixed point",)
    else:
        labels, names = np.asarray(fps.stability)[keep], fps.stability_names
    for code, name in enumerate(names):
        for hollow in (False, True):
            sel = (labels == code) & (slow == hollow)
            if not sel.any():
                continue
            colour = _STABILITY_COLOURS[code] if len(names) > 1 else "k"
            ax.scatter(p[sel, 0], p[sel, 1], facecolors="none" if hollow else colour,
                       edgecolors=colour, label=f"{name}{' (slow)' if hollow else ''}",
                       zorder=3, **kwargs)
    if directions and fps.eigvecs is not None and len(pts):
        vecs = np.real(np.asarray(fps.eigvecs)[keep])
        n_unst = np.asarray(fps.n_unstable)[keep]
        for centre, v, m in zip(p, vecs, n_unst):
            for j in range(int(m)):
                d = v[:, j] @ basis
                norm = np.linalg.norm(d)
                if norm > 0:
                    d = scale * d / norm
                    ax.plot([centre[0] - d[0], centre[0] + d[0]],
                            [centre[1] - d[1], centre[1] + d[1]], color="tab:red", lw=1.2,
                            zorder=2)
    ax.set_xlabel("PC 1" if n > 1 else "x")
    ax.set_ylabel("PC 2" if n > 1 else "")
    if len(pts):
        ax.legend(loc="best", fontsize="small")
    return ax
