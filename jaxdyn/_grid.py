"""Regular grids of states and 2-D planes through high-dimensional state spaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._validate import (
    as_float_array,
    check_finite,
    check_int,
    check_state,
    describe,
)


class Grid(eqx.Module):
    """A regular `d`-dimensional grid of points embedded in the `n`-dimensional state space:
    `point = origin + basis @ s` for grid coordinates `s` on the tensor product of `axes`.

    Made by `jd.grid` (a full grid: `basis` the identity) or `jd.plane` (a 2-D slice through
    a point, `basis` two orthonormal directions).

    **Fields:**

    - `origin`: the point of coordinates `s = 0`, shape `(n,)`.
    - `basis`: orthonormal directions as columns, `(n, d)`.
    - `axes`: the `d` coordinate axes, each a 1-D increasing array of evenly spaced values.
    """

    origin: Float[Array, " n"]
    basis: Float[Array, "n d"]
    axes: tuple[Float[Array, " s"], ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """The number of points along each axis."""
        return tuple(int(a.shape[0]) for a in self.axes)

    @property
    def coords(self) -> Float[Array, "... d"]:
        """Grid coordinates of every point, `[*shape, d]` (`indexing="ij"`)."""
        return jnp.stack(jnp.meshgrid(*self.axes, indexing="ij"), axis=-1)

    @property
    def points(self) -> Float[Array, "... n"]:
        """The points in state space, `[*shape, n]`."""
        c = self.coords @ self.basis.T
        return _lift(self.origin, c)

    def project(self, x: ArrayLike) -> Array:
        """Grid coordinates `basisᵀ (x − origin)` of states `x` `[..., n]` (for a plane: the
        orthogonal projection onto it)."""
        x = jnp.asarray(x)
        return (x - self.origin.reshape((1,) * (x.ndim - 1) + self.origin.shape)) @ self.basis


def _lift(origin, like):
    """`origin` broadcast to the rank of `like` (explicitly: rank promotion may be off)."""
    return like + origin.reshape((1,) * (like.ndim - 1) + origin.shape).astype(like.dtype)


def _bounds(bounds: Any, d: int | None, name: str = "bounds") -> list[tuple[float, float]]:
    try:
        b = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a sequence of (low, high) pairs; got "
                         f"{bounds!r}.") from None
    if b.ndim != 2 or b.shape[1] != 2 or (d is not None and b.shape[0] != d):
        want = f"{d} " if d is not None else ""
        raise ValueError(f"`{name}` must be {want}(low, high) pairs, shape ({d or 'd'}, 2); "
                         f"got {describe(b)}.")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"`{name}` must be finite; got {bounds!r}.")
    bad = [i for i, (lo, hi) in enumerate(b) if not hi > lo]
    if bad:
        raise ValueError(f"`{name}` must have high > low on every axis (a grid with zero or "
                         f"negative extent); got {bounds!r} (axes {bad}).")
    return [(float(lo), float(hi)) for lo, hi in b]


def _shape(shape: Any, d: int) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),) * d
    if not isinstance(shape, Sequence) or len(shape) != d:
        raise ValueError(f"`shape` must be {d} integers >= 2 (points per axis), or one; got "
                         f"{shape!r}.")
    return tuple(check_int(s, f"shape[{i}]", minimum=2) for i, s in enumerate(shape))


def grid(bounds: Any, shape: int | Sequence[int], *, dtype: Any = None) -> Grid:
    """A regular grid of points `[*shape, n]` over a box of the `n`-dimensional state space.

    (A grid of states, for `jd.ftle` and `jd.basins`; for a product grid of sweep parameters
    see `jd.grid_params`.)

    **Arguments:**

    - `bounds`: one `(low, high)` pair per state coordinate, e.g. `[(0, 2), (0, 1)]`.
    - `shape`: points per axis (each ≥ 2), or one int for every axis.
    - `dtype`: the floating dtype (default: JAX's default float).

    **Returns:** a `Grid` (`grid.points` are the states, axis `i` along coordinate `i`).

    **Raises:** `ValueError` naming `bounds` for bounds that are not finite `(low, high)`
    pairs with `high > low` (a grid with zero extent), or naming `shape` for a wrong number
    of entries or fewer than 2 points on an axis.
    """
    b = _bounds(bounds, None)
    shape = _shape(shape, len(b))
    dtype = jnp.result_type(float) if dtype is None else dtype
    axes = tuple(jnp.linspace(lo, hi, s, dtype=dtype) for (lo, hi), s in zip(b, shape))
    n = len(b)
    return Grid(origin=jnp.zeros(n, dtype), basis=jnp.eye(n, dtype=dtype), axes=axes)


def plane(center: ArrayLike, directions: ArrayLike, bounds: Any,
          shape: int | Sequence[int]) -> Grid:
    """A 2-D slice of state space: the plane through `center` spanned by two directions.

    The directions are orthonormalised (Gram–Schmidt, the first keeps its direction), so
    plane coordinates are Euclidean distances in state space. For a high-dimensional system
    use e.g. the top two principal components of trajectories:
    `directions = jnp.linalg.svd(xs - xs.mean(0), full_matrices=False)[2][:2]`.

    **Arguments:**

    - `center`: the point of plane coordinates `(0, 0)`, shape `(n,)`.
    - `directions`: two directions as rows, shape `(2, n)`.
    - `bounds`: `((a_low, a_high), (b_low, b_high))`, the range of the coordinates along the
      first and second (orthonormalised) direction.
    - `shape`: points per direction, `(n_a, n_b)`, or one int for both.

    **Returns:** a `Grid` with `d = 2` (`.points` `[n_a, n_b, n]`, `.coords`, `.project`).

    **Raises:** `ValueError` naming `directions` when they are not `(2, n)` with `n` the
    length of `center`, are zero or parallel, or are not finite; naming `center`, `bounds` or
    `shape` for their problems.
    """
    c = check_state(center, "center")
    n = c.shape[0]
    v = as_float_array(directions, "directions")
    if v.shape != (2, n):
        raise ValueError(f"`directions` must be two directions as rows, shape (2, {n}) for a "
                         f"`center` of length {n}; got {describe(v)}.")
    check_finite(v, "directions")
    b = _bounds(bounds, 2)
    shape = _shape(shape, 2)
    v = v.astype(c.dtype)
    vn = np.asarray(v, dtype=float)
    norms = np.linalg.norm(vn, axis=1)
    if not np.all(norms > 0):
        raise ValueError(f"`directions` must be nonzero; got norms {norms.tolist()}.")
    e1 = vn[0] / norms[0]
    r = vn[1] - (vn[1] @ e1) * e1
    if not np.linalg.norm(r) > 1e-8 * norms[1]:
        raise ValueError("`directions` must not be parallel: the two rows span a line, not a "
                         "plane (|sin angle| < 1e-8).")
    basis = jnp.asarray(np.stack([e1, r / np.linalg.norm(r)], axis=1), c.dtype)
    axes = tuple(jnp.linspace(lo, hi, s, dtype=c.dtype) for (lo, hi), s in zip(b, shape))
    return Grid(origin=c, basis=basis, axes=axes)
