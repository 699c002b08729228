"""Basins of attraction: which attractor each state flows to."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PyTree

from ._chunk import resolve_chunk_size
from ._flowmap import _check_time, _chunk_budget, _chunking, _points
from ._grid import Grid
from ._inputs import args_at
from ._integrate import AbstractIntegrator, make_integrator
from ._progress import as_meter
from ._solution import RESULTS, code, from_code
from ._system import as_system
from ._validate import (
    check_finite,
    check_int,
    check_positive,
    check_state,
    check_system_output,
    promote_scalars,
)


class Basins(eqx.Module):
    """Which attractor each point flows to.

    **Fields:**

    - `label`: the index (into `attractors`) of the attractor each point ends nearest to, or
      −1 when the final state is farther than `tol` from every one (or the integration
      failed); the batch shape of the points (the grid's shape for a `Grid`).
    - `distance`: the distance (2-norm) of the final state to that nearest attractor.
    - `x`: the final states, `[..., n]`.
    - `attractors`: the states the points were compared with, `[m, n]`.
    - `result`: the integration's `jd.RESULTS` status per point.
    - `grid`: the `Grid` the points came from, or None.
    """

    label: Int[Array, "*batch"]
    distance: Float[Array, "*batch"]
    x: Float[Array, "... n"]
    attractors: Float[Array, "m n"]
    result: RESULTS
    grid: Grid | None = None

    def fraction(self, i: int) -> Array:
        """The share of points in the basin of attractor `i`."""
        return jnp.mean(self.label == i)

    def plot(self, ax=None, **kwargs):
        """The labels over the grid, or a scatter of the points (see
        `jaxdyn.plot.plot_basins`)."""
        from .plot import plot_basins

        return plot_basins(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        try:
            lab = np.asarray(self.label)
        except Exception:
            return eqx.tree_pformat(self)
        counts = ", ".join(f"{int((lab == i).sum())} → {i}"
                           for i in range(self.attractors.shape[0]))
        return f"Basins({lab.size} points: {counts}, {int((lab < 0).sum())} unassigned)"


def _attractors(fixed_points: Any, n: int) -> Array:
    from ._fixed_points import STABLE, FixedPoints

    if isinstance(fixed_points, FixedPoints):
        keep = np.asarray(fixed_points.valid) & np.asarray(fixed_points.converged)
        if fixed_points.stability is not None:
            keep &= np.asarray(fixed_points.stability) == STABLE
        if fixed_points.point is not None:
            keep &= np.asarray(fixed_points.point) == np.arange(keep.shape[0])
        xs = np.asarray(fixed_points.x)[keep]
        if xs.shape[0] == 0:
            raise ValueError("`fixed_points` holds no converged stable fixed point to use as "
                             "an attractor.")
        return jnp.asarray(xs)
    xs = check_state(fixed_points, "fixed_points", ndim=2, size=n)
    return xs


def basins(
    system: Any,
    points: Grid | ArrayLike,
    args: PyTree = None,
    fixed_points: Any = None,
    *,
    T: float | None = None,
    t0: ArrayLike = 0.0,
    tol: float | None = None,
    integrator: AbstractIntegrator | None = None,
    solver: Any = None,
    dt: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int | None = None,
    chunk_size: int | None = None,
    budget: int | None = None,
    progress: Any = False,
) -> Basins:
    """The basin of attraction of each point: the attractor (from a set of fixed points)
    that its trajectory ends nearest to after time `T`.

    **Arguments:**

    - `system`: a `jd.Flow`, `jd.Map`, an RNN model, or a callable `f(t, x, args)`.
    - `points`: a `Grid` (`jd.plane`, `jd.grid`) or initial states `[..., n]`.
    - `args`: the system's arguments (an RNN's constant input).
    - `fixed_points`: the attractors: states `[m, n]`, or a `FixedPoints` (its distinct,
      converged, stable points are used).
    - `T`: how long to run each point (a positive number; iterates for a map).
    - `t0`: the initial time.
    - `tol`: a final state farther than this from every attractor gets label −1 (default:
      half the smallest distance between two attractors, or ∞ for one attractor).
    - `integrator`, or its shortcuts `solver`, `dt`, `rtol`, `atol`, `max_steps`: as in
      `jd.simulate` (adaptive Tsit5 at rtol 1e-6, atol 1e-8 by default).
    - `chunk_size`, `budget`, `progress`: as in `jd.ftle`.

    **Returns:** a `Basins` (`label`, `distance`, `x`, `attractors`, `result`).

    **Raises:** `ValueError` for `T` missing, zero, negative or not concrete, `points` or
    `fixed_points` of the wrong shape or non-finite, no usable attractor, `tol <= 0`, or bad
    integrator options.
    """
    system = as_system(system)
    args = promote_scalars(args)
    T = _check_time(T, system)
    if T < 0:
        raise ValueError(f"`T` must be > 0 (points are run forward to their attractor); got "
                         f"{T!r}.")
    pts, g = _points(system, points)
    pts = g.points if pts is None else pts
    n = pts.shape[-1]
    if fixed_points is None:
        raise ValueError("`fixed_points` (the attractors, [m, n] or a FixedPoints) is "
                         "required; got None.")
    att = _attractors(fixed_points, n).astype(pts.dtype)
    if tol is None:
        a = np.asarray(att)
        d = np.linalg.norm(a[:, None] - a[None], axis=-1) + np.diag(np.full(len(a), np.inf))
        tol = 0.5 * float(d.min()) if len(a) > 1 else float("inf")
    else:
        check_positive(tol, "tol")
    check_finite(t0, "t0")
    integ = make_integrator(system, integrator, pts.dtype, solver=solver, dt=dt, rtol=rtol,
                            atol=atol, max_steps=max_steps)
    flat = pts.reshape(-1, n)
    check_system_output(system, flat[0], args_at(args, t0), t=t0, name="points")
    per_item = 32 * n * jnp.dtype(flat.dtype).itemsize + 256
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    chunk = resolve_chunk_size(flat.shape[0], chunk_size=chunk_size, bytes_per_item=per_item,
                               budget=_chunk_budget(budget))
    chunk, width = _chunking(chunk, chunk_size, integ, flat.shape[0], n, 0,
                             jnp.dtype(flat.dtype).itemsize, False)
    meter = as_meter(progress, "basins", "chunk")
    span = integ.span(T, flat.dtype)
    x, label, dist, rv = _basins(system, flat, args, jnp.asarray(t0, flat.dtype), att, span,
                                 jnp.asarray(tol, flat.dtype), integ, chunk, width, meter)
    shape = pts.shape[:-1]
    res = from_code(rv.reshape(shape))
    return Basins(label=label.reshape(shape), distance=dist.reshape(shape),
                  x=x.reshape(shape + (n,)), attractors=att, result=res, grid=g)


@eqx.filter_jit
def _basins(system, flat, args, t0, att, span, tol, integ, chunk, width, meter):
    from ._chunk import chunked_vmap

    def block(x0):
        V0 = jnp.zeros(x0.shape + (0,), x0.dtype)
        out = integ.propagate(system, x0, V0, args, t0, span, width=width)
        return out.x, code(out.result)

    x, rv = chunked_vmap(block, flat, chunk_size=chunk, progress=meter, batched=True)
    d = jnp.linalg.norm(x[:, None, :] - att[None], axis=-1)
    nearest = jnp.argmin(jnp.where(jnp.isnan(d), jnp.inf, d), axis=-1)
    dist = jnp.take_along_axis(d, nearest[:, None], axis=-1)[:, 0]
    ok = (rv == code(RESULTS.successful)) & (dist <= tol)
    return x, jnp.where(ok, nearest, -1).astype(jnp.int32), dist, rv
