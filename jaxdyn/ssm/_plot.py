"""Figures of SSM models: the manifold over data in a 3-D PCA view, the reduced phase
portrait, and backbone curves. Each function takes `ax=None` and returns the axes."""

from __future__ import annotations

import numpy as np


def plot_ssm(model, trajectories=None, ax=None, n_grid: int = 41, p=None):
    """The manifold (a curve for `d = 1`, a surface for `d = 2`) over the data in the data's
    top three principal components, beside the reduced phase portrait (`ax` a pair of axes;
    the first must be 3-D)."""
    import jax.numpy as jnp
    import matplotlib.pyplot as plt

    if ax is None:
        fig = plt.figure(figsize=(10, 4))
        ax = [fig.add_subplot(1, 2, 1, projection="3d"), fig.add_subplot(1, 2, 2)]
    lo, hi = np.asarray(model.eta_min), np.asarray(model.eta_max)
    d = model.dim
    axes1 = [np.linspace(lo[i], hi[i], n_grid) for i in range(d)]
    mesh = np.stack(np.meshgrid(*axes1, indexing="ij"), axis=-1)
    surf = np.asarray(model.lift(jnp.asarray(mesh), p))
    data = None
    if trajectories is not None:
        from ._data import embed

        data, _ = embed(jnp.asarray(trajectories), model.delays)
        data = np.asarray(data)
    ref = data.reshape(-1, data.shape[-1]) if data is not None else surf.reshape(
        -1, surf.shape[-1])
    centre = ref.mean(axis=0)
    _, _, vt = np.linalg.svd(ref - centre, full_matrices=False)
    basis = vt[:3].T
    if basis.shape[1] < 3:
        basis = np.pad(basis, ((0, 0), (0, 3 - basis.shape[1])))
    proj = lambda a: (a - centre) @ basis  # noqa: E731
    if data is not None:
        for tr in data:
            q = proj(tr)
            ax[0].plot(q[:, 0], q[:, 1], q[:, 2], lw=0.6, color="0.4")
    s = proj(surf)
    if d == 1:
        ax[0].plot(s[:, 0], s[:, 1], s[:, 2], lw=2.5, color="tab:red")
    elif d == 2:
        ax[0].plot_surface(s[..., 0], s[..., 1], s[..., 2], alpha=0.4, color="tab:red")
    ax[0].set(xlabel="PC 1", ylabel="PC 2", zlabel="PC 3", title="SSM over data")
    if d == 1:
        g = jnp.asarray(axes1[0])[:, None]
        ax[1].plot(axes1[0], np.asarray(model.velocity(g, p))[:, 0])
        ax[1].axhline(0.0, color="0.6", lw=0.8)
        ax[1].set(xlabel="θ" if model.periodic else "η", ylabel="reduced speed")
    elif d == 2:
        v = np.asarray(model.velocity(jnp.asarray(mesh), p))
        ax[1].streamplot(axes1[0], axes1[1], v[..., 0].T, v[..., 1].T, density=0.8)
        ax[1].set(xlabel="η₁", ylabel="η₂")
    ax[1].set_title("reduced dynamics")
    return ax


def plot_backbone(nf, amplitude_max: float = 1.0, ax=None, n: int = 101):
    """Backbone curves of a `NormalForm`: frequency and damping rate against amplitude."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    a = np.linspace(0.0, amplitude_max, n)
    freq, damp = (np.asarray(z) for z in nf.backbone(a))
    ax[0].plot(freq, a)
    ax[0].set(xlabel="frequency ω", ylabel="amplitude", title="backbone")
    ax[1].plot(damp, a)
    ax[1].set(xlabel="damping rate", ylabel="amplitude")
    return ax
