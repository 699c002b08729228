"""Data preparation for SSM fits: checks, delay embedding, masks and time derivatives."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._validate import as_float_array, check_finite, describe, is_concrete

# Central first-derivative stencils; the 4th-order one also has SSMLearnPy's (findiff's)
# one-sided end stencils, so that a fit can be compared with SSMLearnPy's term by term.
_FD6 = np.array([-1 / 60, 3 / 20, -3 / 4, 0.0, 3 / 4, -3 / 20, 1 / 60])
_FD4 = np.array([1 / 12, -2 / 3, 0.0, 2 / 3, -1 / 12])
_FD4_FORWARD = np.array([-25 / 12, 4.0, -3.0, 4 / 3, -1 / 4])
_STENCIL = {"fd6": 7, "fd4": 5, "exact": 1, "shift": 2}


def check_trajectories(trajectories: Any, name: str = "trajectories") -> Array:
    """A finite floating `[n_traj, T, n]` array."""
    arr = as_float_array(trajectories, name)
    if arr.ndim != 3:
        raise ValueError(f"`{name}` must be a 3-D array [n_traj, T, n] (stack trajectories; "
                         f"pad ragged ones and pass `mask`); got {describe(arr)}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got {describe(arr)}.")
    check_finite(arr, name)
    return arr


def check_mask(mask: Any, shape: tuple[int, int], name: str = "mask") -> Array:
    """A boolean `[n_traj, T]` mask whose true entries are a leading run per trajectory."""
    if mask is None:
        return jnp.ones(shape, bool)
    m = jnp.asarray(mask)
    if m.shape != shape or m.dtype != jnp.bool_:
        raise ValueError(f"`{name}` must be a boolean array of shape {shape} ([n_traj, T], True "
                         f"on valid samples); got {describe(m)}.")
    if is_concrete(m):
        a = np.asarray(m)
        lengths = a.sum(axis=1)
        prefix = np.arange(shape[1])[None, :] < lengths[:, None]
        if not np.array_equal(a, prefix):
            raise ValueError(f"`{name}` must mark a leading run of valid samples in each "
                             f"trajectory (ragged lengths), with no gaps; got a mask with "
                             f"gaps in trajectories {np.nonzero((a != prefix).any(1))[0]}.")
    return m


def check_lengths(mask: Array, delays: int, stencil: str) -> None:
    """Every trajectory must be longer than the delay window plus the derivative stencil."""
    need = delays - 1 + _STENCIL[stencil]
    if is_concrete(mask):
        lengths = np.asarray(mask).sum(axis=1)
        short = np.nonzero(lengths < need)[0]
        if short.size:
            raise ValueError(
                f"trajectories {short.tolist()} have {lengths[short].tolist()} valid samples, "
                f"fewer than the {need} that the delay window ({delays} samples) and the "
                f"derivative stencil ('{stencil}', {_STENCIL[stencil]} samples) need; "
                f"pass longer trajectories or fewer `delays`.")
    elif mask.shape[1] < need:
        raise ValueError(f"trajectories of {mask.shape[1]} samples are shorter than the "
                         f"{need} that the delay window and the derivative stencil need.")


def check_samples(X: np.ndarray, mask: np.ndarray, delays: int, stencil: str,
                  transient: float, dt: float) -> None:
    """Concrete data must leave samples to fit after `transient` (and the derivative
    stencil), and those samples must not all be equal (all zero, or constant)."""
    N, T, _ = X.shape
    L = T - delays + 1
    lengths = mask.sum(axis=1) - delays + 1  # valid embedded samples per trajectory
    idx = np.arange(L)
    fit = (idx[None, :] < lengths[:, None]) & (idx[None, :] * dt >= transient)
    if stencil == "fd6":
        dyn = fit & (idx[None, :] >= 3) & (idx[None, :] < lengths[:, None] - 3)
        last = (lengths.max() - 4) * dt
    elif stencil == "shift":
        dyn = fit[:, :-1] & fit[:, 1:]
        last = (lengths.max() - 2) * dt
    else:
        dyn = fit
        last = (lengths.max() - 1) * dt
    unit = "step" if stencil == "shift" else "time"
    if not dyn.any():
        raise ValueError(
            f"`transient`={transient:g} leaves no samples to fit: the last sample that the fit "
            f"can use (after the delay window and the derivative stencil) is at {unit} "
            f"{last:g}; expected `transient` <= {last:g}, or longer trajectories.")
    cover = np.zeros((N, T), bool)
    for j in range(delays):
        cover[:, j:j + L] |= fit
    vals = X[cover]
    spread = vals.max(axis=0) - vals.min(axis=0)
    size = np.abs(vals).max()
    if np.all(spread <= 100 * np.finfo(X.dtype).eps * size):
        kind = "all zero" if size == 0 else "constant"
        value = np.array2string(vals[0], precision=6, threshold=8)
        raise ValueError(
            f"`trajectories` do not move over the fitted samples: every one equals {value} "
            f"({kind}), so they determine no manifold or dynamics; expected samples that "
            f"leave the fixed point.")


def embed(trajectories: Array, delays: int, mask: Array | None = None):
    """Delay embedding: sample `t` becomes `(y_t, y_{t+1}, …, y_{t+k−1})`, `k = delays`.

    **Returns:** `(embedded [n_traj, T − k + 1, k n], mask [n_traj, T − k + 1])`.
    """
    T = trajectories.shape[1]
    if mask is None:
        mask = jnp.ones(trajectories.shape[:2], bool)
    if delays == 1:
        return trajectories, mask
    L = T - delays + 1
    parts = [trajectories[:, j:j + L] for j in range(delays)]
    m = mask[:, :L]
    for j in range(1, delays):
        m = m & mask[:, j:j + L]
    return jnp.concatenate(parts, axis=-1), m


def fd_derivative(eta: Array, mask: Array, dt: Array, kind: str):
    """Time derivative of `eta [N, T, d]` by finite differences within each trajectory's valid
    run; returns `(deta, valid)`. `fd6`: 6th-order central, interior only; `fd4`: 4th-order
    central with one-sided 4th-order stencils at both ends (findiff's scheme)."""
    N, T, _ = eta.shape
    lengths = jnp.sum(mask, axis=1)
    t = jnp.arange(T)

    def gather(offsets):
        idx = jnp.clip(t[None, :, None] + np.asarray(offsets)[None, None, :], 0, T - 1)
        idx = jnp.broadcast_to(idx, (N, T, len(offsets)))
        return jnp.take_along_axis(eta[:, :, None, :], idx[..., None], axis=1)  # [N,T,k,d]

    def apply(offsets, coeffs):
        return jnp.einsum("ntkd,k->ntd", gather(offsets), jnp.asarray(coeffs, eta.dtype)) / dt

    if kind == "fd6":
        h = 3
        d = apply(range(-h, h + 1), _FD6)
        valid = (t[None, :] >= h) & (t[None, :] < lengths[:, None] - h)
        return d, valid & mask
    h = 2
    central = apply(range(-h, h + 1), _FD4)
    forward = apply(range(0, 5), _FD4_FORWARD)
    backward = apply(range(-4, 1), -_FD4_FORWARD[::-1])
    out = jnp.where((t[None, :] < h)[..., None], forward, central)
    out = jnp.where((t[None, :] >= lengths[:, None] - h)[..., None], backward, out)
    return out, mask
