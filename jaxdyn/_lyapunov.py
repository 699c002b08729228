"""Finite-time Lyapunov exponents, FTLE ridges and Lyapunov spectra.

Flow-map gradients come from `_flowmap.py` (state and tangents integrated together through
`jd.simulate`'s integrators); batches of points run through the chunked `vmap` of
`_chunk.py` under a memory budget.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PyTree

from ._chunk import resolve_chunk_size
from ._flowmap import _check_time, _chunk_budget, _chunking, _log_stretch, _points
from ._grid import Grid, _lift
from ._inputs import args_at
from ._integrate import AbstractIntegrator, make_integrator
from ._progress import as_meter
from ._solution import RESULTS, code, from_code
from ._system import AbstractJacobianSystem, as_system
from ._validate import (
    check_choice,
    check_finite,
    check_int,
    check_system_output,
    promote_scalars,
)


class Ridges(eqx.Module):
    """FTLE ridge points (sub-grid), in a fixed-size buffer with a `valid` mask.

    **Fields** (leading axis `m` = the number of grid points):

    - `coords`: grid coordinates of the ridge points, `[m, 2]` (NaN in padding).
    - `x`: the same points in state space, `[m, n]`.
    - `ftle`: the FTLE at the grid point each ridge point was found from, `[m]`.
    - `valid`: `True` for the real ridge points (they come first).
    """

    coords: Float[Array, "m 2"]
    x: Float[Array, "m n"]
    ftle: Float[Array, " m"]
    valid: Array

    @property
    def count(self) -> Int[Array, ""]:
        return jnp.sum(self.valid)

    def __repr__(self) -> str:
        try:
            return f"Ridges({int(self.count)} ridge points)"
        except Exception:
            return eqx.tree_pformat(self)


class FTLEField(eqx.Module):
    """Finite-time Lyapunov exponents at a batch (or grid) of initial states.

    **Fields:**

    - `ftle`: `σ = ln σ_max(∂φ/∂x0) / |T|`, with the batch shape of the points (the grid's
      shape for a `Grid`); NaN where `result` is not successful.
    - `x0s`: the initial states `[..., n]` when they were given as an array; None for a
      `Grid` (its states are `grid.points`; a large plane of a large network never holds
      them all).
    - `result`: a `jd.RESULTS` status per point: `successful`; an integrator status
      (`max_steps_reached`, ...); or `nonfinite_ftle` (the flow-map gradient was not finite or
      collapsed every direction).
    - `T`: the integration time (negative: backward).
    - `grid`: the `Grid` the points were taken from, or None.
    """

    ftle: Float[Array, "*batch"]
    x0s: Float[Array, "... n"] | None
    result: RESULTS
    T: Float[Array, ""]
    grid: Grid | None = None

    @property
    def success(self) -> Array:
        return self.result == RESULTS.successful

    def ridges(self, *, percentile: float = 75.0, curvature: float = 0.0) -> Ridges:
        """FTLE ridge points by the second-derivative criterion (see `ftle_ridges`)."""
        return ftle_ridges(self, percentile=percentile, curvature=curvature)

    def plot(self, ax=None, *, ridges=None, fixed_points=None, **kwargs):
        """The field over the grid (a scatter for scattered points), with ridge points and
        fixed points when given (see `jaxdyn.plot.plot_ftle`)."""
        from .plot import plot_ftle

        return plot_ftle(self, ax=ax, ridges=ridges, fixed_points=fixed_points, **kwargs)

    def __repr__(self) -> str:
        try:
            f = np.asarray(self.ftle)
            ok = np.asarray(self.success)
        except Exception:
            return eqx.tree_pformat(self)
        rng = f"range [{np.min(f[ok]):.4g}, {np.max(f[ok]):.4g}]" if ok.any() else "no values"
        return (f"FTLEField(shape {f.shape}, T = {float(self.T):g}: {int(ok.sum())} of {f.size} "
                f"points successful, {rng})")


_METHODS = ("autodiff", "grid")

def ftle(
    system: Any,
    x0s: Grid | ArrayLike,
    args: PyTree = None,
    t0: ArrayLike = 0.0,
    T: float | None = None,
    *,
    method: str = "autodiff",
    stretching: str | None = None,
    integrator: AbstractIntegrator | None = None,
    solver: Any = None,
    dt: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int | None = None,
    chunk_size: int | None = None,
    budget: int | None = None,
    progress: Any = False,
) -> FTLEField:
    """Finite-time Lyapunov exponents `σ(x0) = ln √λ_max(CᵀC) / |T|`, `C = ∂φ/∂x0`, with `φ`
    the flow map from `t0` to `t0 + T` (for a map: `T` iterates).

    `method="autodiff"` (default) integrates each point with its tangent vectors (the
    variational equations, by forward-mode autodiff), so `C` is exact up to the integration
    tolerance; `method="grid"` takes central finite differences of the flow map between
    neighbouring grid points (second-order one-sided differences on the edges), the classic
    LCS recipe, for comparison with LCS codes. Time-dependent systems (`f(t, x, args)`,
    time-varying `args`) are integrated from `t0`. Points run `chunk_size` at a time.

    On a `jd.plane` through an `n`-dimensional state space, `stretching` chooses what is
    stretched: `"full"` (default for `autodiff`) is the FTLE of the system, the largest
    stretching over all `n` directions (`n` tangents per point); `"plane"` (2 tangents, the
    only choice for `method="grid"`) is the largest stretching of perturbations within the
    plane, measured in the full space, `σ_max(C B)` with `B` the plane's basis.

    **Arguments:**

    - `system`: a `jd.Flow`, `jd.Map`, an RNN model, or a callable `f(t, x, args)`.
    - `x0s`: a `Grid` (`jd.grid`, `jd.plane`) or an array of initial states `[..., n]`.
    - `args`: the system's arguments (an RNN's constant input), shared by all points.
    - `t0`: the initial time.
    - `T`: the integration time, a nonzero Python number: `T > 0` forward (repelling
      structures), `T < 0` backward (attracting ones); for a map a nonzero integer, the
      backward iterates found one by one by Newton's method (`F(y) = x` from `y = x`; a
      point whose preimage is not found gets a failed `result`).
    - `method`: `"autodiff"` or `"grid"` (needs a `Grid` with ≥ 3 points per axis).
    - `stretching`: `"full"` or `"plane"`, as above (default: `"full"` for `autodiff`,
      `"plane"` for `grid`).
    - `integrator`, or its shortcuts `solver`, `dt`, `rtol`, `atol`, `max_steps`: as in
      `jd.simulate` (adaptive Tsit5 at rtol 1e-6, atol 1e-8 by default; a fixed `dt` runs
      RK4 steps). Adaptive steps control the error of the state and of every tangent
      (`method="autodiff"`), so a point that settles on a fixed point gets the FTLE of its
      linearisation, not of steps grown past the tangents' accuracy; the grid method
      controls the flow map, whose differences it takes: their error is about `atol` over
      the grid spacing, so where the flow contracts neighbours to below `atol / rtol`
      apart, lower `atol`.
    - `chunk_size`: points integrated at once; default: as many as fit in `budget`, and with
      adaptive steps at most 2,048 (with tangents) or 8,192, so that each chunk steps only
      until its own slowest point is done.
    - `budget`: memory budget in bytes for one chunk (default half the accelerator memory;
      64 MiB on CPU, where chunks that stay in cache are faster).
    - `progress`: `True` for a progress bar over chunks, or a progress meter.

    **Returns:** an `FTLEField` (`.ftle`, `.result`, `.ridges()`, `.plot()`).

    **Raises:** `ValueError` for `T` zero, missing or not concrete (fractional for
    a map), states of the wrong shape or non-finite, `args` the system cannot take, an
    unknown `method` or `stretching`, `"plane"` without a `Grid`, `method="grid"` on
    scattered points or with `stretching="full"` on a plane, or bad integrator options.

    Reference: G. Haller, "Lagrangian coherent structures", Annu. Rev. Fluid Mech. 47 (2015);
    S. C. Shadden, F. Lekien & J. E. Marsden, Physica D 212 (2005).
    """
    system = as_system(system)
    args = promote_scalars(args)
    T = _check_time(T, system, backward_map=True)
    check_choice(method, "method", _METHODS)
    pts, g = _points(system, x0s)
    n = g.origin.shape[0] if pts is None else pts.shape[-1]
    if stretching is None:
        stretching = "plane" if method == "grid" else "full"
    check_choice(stretching, "stretching", ("full", "plane"))
    if stretching == "plane" and g is None:
        raise ValueError("`stretching='plane'` needs `x0s` to be a Grid (jd.plane, jd.grid); "
                         "got an array of points.")
    if method == "grid":
        if g is None:
            raise ValueError("`method='grid'` needs `x0s` to be a Grid (jd.grid, jd.plane): "
                             "finite differences need neighbouring points.")
        if min(g.shape) < 3:
            raise ValueError(f"`method='grid'` needs at least 3 points per axis of `x0s`; got "
                             f"shape {g.shape}.")
        if stretching == "full" and g.basis.shape[1] < n:
            raise ValueError("`stretching='full'` needs `method='autodiff'`: a grid of "
                             f"dimension {g.basis.shape[1]} in a state space of dimension {n} "
                             "has no neighbours off the grid; use stretching='plane'.")
    check_finite(t0, "t0")
    dtype = (pts if g is None else g.origin).dtype
    integ = make_integrator(system, integrator, dtype, solver=solver, dt=dt, rtol=rtol,
                            atol=atol, max_steps=max_steps)
    if g is None:
        flat, shape = pts.reshape(-1, n), pts.shape[:-1]
    else:  # grid coordinates; each chunk makes its own points
        flat, shape = g.coords.reshape(-1, g.basis.shape[1]), g.shape
    first = flat[0] if g is None else g.origin
    check_system_output(system, first, args_at(args, t0), t=t0, name="x0s")
    if method == "grid":
        V0 = jnp.zeros((n, 0), flat.dtype)
    elif stretching == "plane":
        V0 = g.basis.astype(flat.dtype)
    else:
        V0 = jnp.eye(n, dtype=flat.dtype)
    itemsize = jnp.dtype(flat.dtype).itemsize
    per_item = 32 * n * (1 + V0.shape[1]) * itemsize + 256
    if isinstance(system, AbstractJacobianSystem) and V0.shape[1]:
        per_item += 4 * n * n * itemsize  # the closed-form Jacobian and its intermediates
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    chunk = resolve_chunk_size(flat.shape[0], chunk_size=chunk_size, bytes_per_item=per_item,
                               budget=_chunk_budget(budget))
    chunk, width = _chunking(chunk, chunk_size, integ, flat.shape[0], n, V0.shape[1], itemsize,
                             isinstance(system, AbstractJacobianSystem))
    meter = as_meter(progress, "FTLE", "chunk")
    spacing = None if method == "autodiff" else tuple(g.axes)
    span = integ.span(T, flat.dtype)
    embed = None if g is None else (g.origin.astype(flat.dtype), g.basis.astype(flat.dtype))
    sig, res = _ftle_field(system, flat, embed, args, jnp.asarray(t0, flat.dtype), V0, span,
                           integ, chunk, width, meter, spacing)
    res = from_code(code(res).reshape(shape))
    return FTLEField(ftle=sig.reshape(shape), x0s=pts, result=res,
                     T=jnp.asarray(T, flat.dtype), grid=g)


@eqx.filter_jit
def _ftle_field(system, flat, embed, args, t0, V0, span, integ, chunk, width, meter, spacing):
    from ._chunk import chunked_vmap

    def block(s):
        x0 = s if embed is None else embed[0][None] + s @ embed[1].T
        V = jnp.broadcast_to(V0, (x0.shape[0],) + V0.shape)
        out = integ.propagate(system, x0, V, args, t0, span, width=width)
        # Keep the output per point small: the grid method needs the flow map, the exact
        # gradient only its largest stretching (never the `[points, n, k]` tangents at once).
        if spacing is not None:
            return out.x, None, code(out.result)
        return None, jax.vmap(_log_stretch)(out.V), code(out.result)

    x, stretch, rv = chunked_vmap(block, flat, chunk_size=chunk, progress=meter, batched=True)
    ok_value = code(RESULTS.successful)
    bad_value = code(RESULTS.nonfinite_ftle)
    if spacing is not None:
        shape = tuple(a.shape[0] for a in spacing)
        phi = x.reshape(shape + (x.shape[-1],))
        cols = [_difference(phi, a, axis) for axis, a in enumerate(spacing)]
        C = jnp.stack(cols, axis=-1).reshape(flat.shape[0], x.shape[-1], len(spacing))
        # A point's differences use its neighbours: it fails where they failed.
        ok = (rv == ok_value).reshape(shape)
        okn = ok
        for axis in range(len(shape)):
            okn = okn & _neighbours_ok(ok, axis)
        rv = jnp.where((rv == ok_value) & ~okn.reshape(-1), bad_value, rv)
        stretch = jax.vmap(_log_stretch)(C)
    sig = stretch / span.length.astype(stretch.dtype)
    rv = jnp.where((rv == ok_value) & ~jnp.isfinite(sig), bad_value, rv)
    result = from_code(rv)
    return jnp.where(rv == ok_value, sig, jnp.nan), result


def _difference(phi, axis_values, axis):
    """`∂φ/∂s` along grid `axis` of `phi` `[*shape, n]`: central differences inside, second
    order one-sided differences on the two edges."""
    h = axis_values[1] - axis_values[0]
    p = jnp.moveaxis(phi, axis, 0)
    inner = (p[2:] - p[:-2]) / (2 * h)
    first = (-3 * p[0] + 4 * p[1] - p[2]) / (2 * h)
    last = (3 * p[-1] - 4 * p[-2] + p[-3]) / (2 * h)
    d = jnp.concatenate([first[None], inner, last[None]], axis=0)
    return jnp.moveaxis(d, 0, axis)


def _neighbours_ok(ok, axis):
    o = jnp.moveaxis(ok, axis, 0)
    prev = jnp.concatenate([o[1:2], o[:-1]], axis=0)
    nxt = jnp.concatenate([o[1:], o[-2:-1]], axis=0)
    return jnp.moveaxis(prev & nxt, 0, axis)


def ftle_ridges(field: FTLEField, *, percentile: float = 75.0,
                curvature: float = 0.0) -> Ridges:
    """Ridge points of a 2-D FTLE field by the second-derivative criterion.

    At every interior grid point the gradient `g` and Hessian `H` of the field come from
    central differences. A ridge crosses the cell of a point where the field is at least its
    `percentile`-th percentile, the smallest eigenvalue `λ` of `H` is below `−curvature`
    (strong negative curvature across the ridge), and the maximum of the field along the
    corresponding eigenvector `ξ` (one Newton step, `t = −⟨g, ξ⟩ / λ`) lies within half a
    cell: the ridge point is then the point moved by `t ξ` (sub-grid accuracy).

    **Arguments:**

    - `field`: an `FTLEField` computed on a 2-D `Grid` (`jd.plane`, or `jd.grid` in 2-D).
    - `percentile`: only points with FTLE at or above this percentile of the finite values
      (default 75).
    - `curvature`: the threshold on `−λ` (default 0), on top of a floor of 1e-6 of the
      field's range per squared cell width, so that directions in which the field is flat up
      to rounding do not count as curved.

    **Returns:** `Ridges`: a buffer of one slot per grid point with the ridge points first
    and a `valid` mask (works under `jit`).

    **Raises:** `ValueError` naming `field` if it is not an `FTLEField` on a 2-D grid, or
    naming `percentile` / `curvature` when out of range.

    Reference: S. C. Shadden, F. Lekien & J. E. Marsden, Physica D 212 (2005) (second-
    derivative ridges); G. Haller, Annu. Rev. Fluid Mech. 47 (2015).
    """
    from ._validate import check_number

    if not isinstance(field, FTLEField) or field.grid is None or len(field.grid.shape) != 2:
        raise ValueError("`field` must be an FTLEField computed on a 2-D Grid (jd.plane, or "
                         "jd.grid with two axes); got "
                         f"{type(field).__name__}.")
    if min(field.grid.shape) < 3:
        raise ValueError(f"`field` needs at least 3 points per axis; got {field.grid.shape}.")
    percentile = check_number(percentile, "percentile", high=100.0)
    curvature = check_number(curvature, "curvature")
    return _ridges(field.ftle, field.grid, percentile, curvature)


@eqx.filter_jit
def _ridges(f, g: Grid, percentile: float, curvature: float) -> Ridges:
    h1 = g.axes[0][1] - g.axes[0][0]
    h2 = g.axes[1][1] - g.axes[1][0]
    finite = jnp.isfinite(f)
    level = jnp.nanpercentile(jnp.where(finite, f, jnp.nan), percentile)
    z = jnp.where(finite, f, jnp.nanmin(jnp.where(finite, f, jnp.nan)))
    c = z[1:-1, 1:-1]
    g1 = (z[2:, 1:-1] - z[:-2, 1:-1]) / (2 * h1)
    g2 = (z[1:-1, 2:] - z[1:-1, :-2]) / (2 * h2)
    H11 = (z[2:, 1:-1] - 2 * c + z[:-2, 1:-1]) / (h1 * h1)
    H22 = (z[1:-1, 2:] - 2 * c + z[1:-1, :-2]) / (h2 * h2)
    H12 = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * h1 * h2)
    lam = 0.5 * (H11 + H22) - jnp.sqrt(0.25 * (H11 - H22) ** 2 + H12 * H12)
    # Eigenvector of the smaller eigenvalue: of the two candidate forms, the better
    # conditioned one (they are parallel).
    a1, a2 = H12, lam - H11
    b1, b2 = lam - H22, H12
    use_a = a1 * a1 + a2 * a2 >= b1 * b1 + b2 * b2
    e1, e2 = jnp.where(use_a, a1, b1), jnp.where(use_a, a2, b2)
    norm = jnp.sqrt(e1 * e1 + e2 * e2)
    degenerate = norm == 0
    e1 = jnp.where(degenerate, 1.0, e1 / jnp.where(degenerate, 1.0, norm))
    e2 = jnp.where(degenerate, 0.0, e2 / jnp.where(degenerate, 1.0, norm))
    step = -(g1 * e1 + g2 * e2) / jnp.where(lam < 0, lam, -1.0)
    d1, d2 = step * e1, step * e2
    interior_ok = (finite[1:-1, 1:-1] & finite[2:, 1:-1] & finite[:-2, 1:-1]
                   & finite[1:-1, 2:] & finite[1:-1, :-2] & finite[2:, 2:] & finite[:-2, :-2]
                   & finite[2:, :-2] & finite[:-2, 2:])
    # Curvatures at the level of rounding noise (a field constant along one axis) are flat.
    span = jnp.nanmax(jnp.where(finite, f, jnp.nan)) - jnp.nanmin(jnp.where(finite, f, jnp.nan))
    floor = 1e-6 * span / jnp.minimum(h1, h2) ** 2
    mask = (interior_ok & (c >= level) & (lam < -(curvature + floor))
            & (jnp.abs(d1) <= 0.5 * h1)
            & (jnp.abs(d2) <= 0.5 * h2))
    mask = jnp.pad(mask, 1)
    coords = g.coords + jnp.stack([jnp.pad(d1, 1), jnp.pad(d2, 1)], axis=-1)
    m = f.size
    (idx,) = jnp.nonzero(mask.reshape(-1), size=m, fill_value=0)
    valid = jnp.arange(m) < jnp.sum(mask)
    pc = jnp.where(valid[:, None], coords.reshape(m, 2)[idx], jnp.nan)
    return Ridges(coords=pc, x=_lift(g.origin, pc @ g.basis.T),
                  ftle=jnp.where(valid, f.reshape(-1)[idx], jnp.nan), valid=valid)
