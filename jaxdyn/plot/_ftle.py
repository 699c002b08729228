"""Figures for FTLE fields, ridges, basins and Lyapunov spectra."""

from __future__ import annotations

import numpy as np

from ._figures import _axes


def _fixed_point_states(fixed_points):
    if fixed_points is None:
        return None
    x = getattr(fixed_points, "x", fixed_points)
    x = np.asarray(x)
    valid = getattr(fixed_points, "valid", None)
    if valid is not None:
        x = x[np.asarray(valid)]
    return x[np.all(np.isfinite(x), axis=-1)]


def _mesh(result):
    """`(A, B)` plane coordinates of a 2-D grid result (for pcolormesh), or None."""
    g = result.grid
    if g is None or len(g.shape) != 2:
        return None
    return np.meshgrid(np.asarray(g.axes[0]), np.asarray(g.axes[1]), indexing="ij")


def plot_ftle(field, ax=None, *, ridges=None, fixed_points=None, cmap="viridis",
              colorbar=True, **kwargs):
    """An FTLE field over its 2-D grid (plane coordinates), with ridge points and fixed points.

    **Arguments:**

    - `field`: an `FTLEField`; on a 2-D `Grid` it is drawn as an image, otherwise the first
      two state coordinates of its points are scattered.
    - `ax`: matplotlib axes (default: a new figure).
    - `ridges`: `Ridges` (from `field.ridges()`) to overlay, or `True` to extract them.
    - `fixed_points`: states `[m, n]` or a `FixedPoints`, projected onto the plane.
    - `cmap`, `colorbar`: the colour map and whether to draw its bar.
    - `**kwargs`: passed to `pcolormesh` (or `scatter`).

    **Returns:** the axes.
    """
    ax = _axes(ax)
    f = np.asarray(field.ftle)
    mesh = _mesh(field)
    if mesh is not None:
        art = ax.pcolormesh(mesh[0], mesh[1], f, cmap=cmap, shading="auto", **kwargs)
        ax.set_xlabel("plane coordinate 1" if field.grid.basis.shape[0] > 2 else "x[0]")
        ax.set_ylabel("plane coordinate 2" if field.grid.basis.shape[0] > 2 else "x[1]")
        ax.set_aspect("equal")
    else:
        x0s = field.grid.points if field.x0s is None else field.x0s
        x = np.asarray(x0s).reshape(-1, x0s.shape[-1])
        art = ax.scatter(x[:, 0], x[:, min(1, x.shape[1] - 1)], c=f.reshape(-1), cmap=cmap,
                         s=kwargs.pop("s", 4), **kwargs)
        ax.set_xlabel("x[0]")
        ax.set_ylabel("x[1]")
    if colorbar:
        ax.figure.colorbar(art, ax=ax, label=f"FTLE (T = {float(field.T):g})")
    if ridges is True:
        ridges = field.ridges()
    if ridges is not None:
        keep = np.asarray(ridges.valid)
        c = np.asarray(ridges.coords)[keep]
        if mesh is None:
            c = np.asarray(ridges.x)[keep][:, :2]
        ax.plot(c[:, 0], c[:, 1], ".", color="w", ms=1.5, label="ridge")
    fps = _fixed_point_states(fixed_points)
    if fps is not None and len(fps):
        p = np.asarray(field.grid.project(fps)) if mesh is not None else fps[:, :2]
        ax.scatter(p[:, 0], p[:, 1], marker="x", color="tab:red", s=40, zorder=3,
                   label="fixed point")
    return ax


def plot_basins(basins, ax=None, *, cmap="tab10", **kwargs):
    """Basin labels over a 2-D grid (−1, unassigned, in grey) or scattered points, with the
    attractors projected onto the plane.

    **Returns:** the axes.
    """
    ax = _axes(ax)
    lab = np.asarray(basins.label).astype(float)
    lab[lab < 0] = np.nan
    mesh = _mesh(basins)
    if mesh is not None:
        ax.pcolormesh(mesh[0], mesh[1], lab, cmap=cmap, shading="auto", vmin=0, vmax=9,
                      **kwargs)
        p = np.asarray(basins.grid.project(basins.attractors))
    else:
        x = np.asarray(basins.x.reshape(-1, basins.x.shape[-1]))
        x0 = x if basins.grid is None else x
        ax.scatter(x0[:, 0], x0[:, min(1, x0.shape[1] - 1)], c=lab.reshape(-1), cmap=cmap,
                   vmin=0, vmax=9, s=kwargs.pop("s", 4), **kwargs)
        p = np.asarray(basins.attractors)[:, :2]
    ax.scatter(p[:, 0], p[:, 1], marker="x", color="k", s=40, zorder=3, label="attractor")
    return ax


def plot_lyapunov(spectrum, ax=None, **kwargs):
    """Running estimates of the Lyapunov exponents against the averaging time.

    **Returns:** the axes.
    """
    ax = _axes(ax)
    t = np.asarray(spectrum.times)
    h = np.asarray(spectrum.history)
    kwargs.setdefault("lw", 1.0)
    for j in range(h.shape[1]):
        ax.plot(t, h[:, j], label=f"λ{j + 1}", **kwargs)
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("averaging time")
    ax.set_ylabel("exponent estimate")
    ax.legend(fontsize="small")
    return ax
