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
