"""Ring-chart SSMs and the classification of 1-D slow manifolds: line attractor, ring
attractor or isolated fixed points."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._solution import RESULTS
from .._system import as_system, jacobian
from .._validate import check_int, check_number
from . import _features as feats
from ._data import check_lengths, check_mask, check_trajectories
from ._fit import _ridges
from ._model import SSM
from ._ridge import fit_ridge

LINE, RING, ISOLATED = 0, 1, 2


def fit_ring(trajectories: Any, order: int = 4, *, dt: Any = 1.0, mask: Any = None,
             transient: Any = 0.0, ridge: Any = 0.0, discrete: bool | None = None,
             system: Any = None) -> SSM:
    """Fit a 1-D closed slow manifold with a periodic chart (a ring SSM).

    A closed invariant curve is not the graph of a chart anchored at one fixed point, so the
    chart here is the angle `θ = atan2(p₂·(y − c), p₁·(y − c))` of the data in their top two
    principal directions around their mean `c`; the curve `y(θ)` and the reduced dynamics
    (`θ'`, or the step `θ_{k+1} − θ_k` of a map) are Fourier series of order `order`, fitted
    by ridge least squares in closed form. This is a parametrised slow manifold rather than an
    SSM in the strict sense (its chart is not spectral).

    **Arguments:** as `ssm.fit` (`order` is the Fourier order); `system` only decides flow or
    map.

    **Returns:** an `SSM` with `periodic=True` and `dim` 1.

    **Raises:** `ValueError` for bad data or options, as `ssm.fit`.
    """
    X = check_trajectories(trajectories)
    order = check_int(order, "order")
    if system is not None:
        discrete = as_system(system).discrete
    discrete = bool(discrete) if discrete is not None else False
    if X.shape[-1] < 2:
        raise ValueError(f"a ring needs at least 2 observables; got {X.shape[-1]}.")
    mask = check_mask(mask, X.shape[:2])
    check_lengths(mask, 1, "shift" if discrete else "fd6")
    ridges = _ridges(ridge, "ridge", X.dtype)
    return _fit_ring(X, mask, jnp.asarray(dt, X.dtype), jnp.asarray(transient, X.dtype),
                     ridges, order, discrete)


@eqx.filter_jit
def _fit_ring(X, mask, dt, transient, ridges, order: int, discrete: bool) -> SSM:
    from ._data import fd_derivative

    dtype = X.dtype
    N, T, n = X.shape
    t = jnp.arange(T, dtype=dtype) * (1.0 if discrete else dt)
    w = mask & (t[None, :] >= transient)
    wf = w.astype(dtype)
    centre = jnp.sum(X * wf[..., None], axis=(0, 1)) / jnp.sum(wf)
    Z = X - centre[None, None]
    _, _, vt = jnp.linalg.svd((Z * wf[..., None]).reshape(-1, n), full_matrices=False)
    P = vt[:2]
    proj = Z @ P.T
    theta = jnp.arctan2(proj[..., 1], proj[..., 0])
    phi = feats.fourier(theta, order)
    degs = np.zeros(phi.shape[-1], int)
    fw = fit_ridge(phi, Z, wf, degs, (0,), ridges, 1)
    unwrapped = jnp.unwrap(theta, axis=1)
    if discrete:
        x_in, y_out = phi[:, :-1], (unwrapped[:, 1:] - unwrapped[:, :-1])[..., None]
        wr = (w[:, :-1] & w[:, 1:]).astype(dtype)
    else:
        dth, valid = fd_derivative(unwrapped[..., None], mask, dt, "fd6")
        x_in, y_out, wr = phi, dth, (valid & w).astype(dtype)
    fr = fit_ridge(x_in, y_out, wr, degs, (0,), ridges, 1)
    Wc, Rc, lam = fw.c, fr.c, fw.ridge
    nan = jnp.full(n, jnp.nan, dtype)
    cond = jnp.stack([fw.condition, fr.condition])
    ok = jnp.all(jnp.isfinite(Wc)) & jnp.all(jnp.isfinite(Rc))
    pi = jnp.asarray(jnp.pi, dtype)
    return SSM(anchor=centre, V=P.T, P=P, W=Wc, R=Rc, dt=dt, p_ref=jnp.zeros((), dtype),
               rates=nan, eig_parts=jnp.stack([nan, nan]), gap=jnp.asarray(jnp.nan, dtype),
               eta_min=-pi[None], eta_max=pi[None], eta_scale=pi, order=jnp.asarray(order),
               dynamics_order=jnp.asarray(order), ridge=lam, dynamics_ridge=lam,
               cv_error=jnp.stack([fw.cv_error, fr.cv_error]), condition=cond,
               determined=fw.determined, dynamics_determined=fr.determined,
               result=RESULTS.where(ok, RESULTS.successful, RESULTS.nonfinite),
               manifold_table=((0, 0),), dynamics_table=((0, 0),), discrete=discrete,
               delays=1, periodic=True, fourier_order=order)


class Attractor(eqx.Module):
    """What a 1-D slow manifold is: a line attractor, a ring attractor or isolated fixed
    points (see `ssm.classify`).

    **Fields:**

    - `kind`: `Attractor.kind_names[kind]`: line (0), ring (1), isolated fixed points (2).
    - `slowness`: `max_I |v(η)| / (r_⊥ |I|)`: the largest reduced speed over the interval
      `I` (per unit time, or per step for a map), in units of the interval crossed per
      transverse time constant `1/r_⊥`. Small on a line or ring attractor.
    - `extent`: the arc length of the manifold over `I`, in state units.
    - `transverse_rate`: `r_⊥`, the slowest decay rate transverse to the manifold.
    - `interval`: `I` in the chart, `[2]`.
    - `fixed_points`: zeros of the reduced speed on `I`, `[m]` (NaN padding); `stable`:
      whether each attracts along the manifold; `valid`: real entries.
    """

    kind: Int[Array, ""]
    slowness: Float[Array, ""]
    extent: Float[Array, ""]
    transverse_rate: Float[Array, ""]
    interval: Float[Array, " 2"]
    fixed_points: Float[Array, " m"]
    stable: Bool[Array, " m"]
    valid: Bool[Array, " m"]

    kind_names: ClassVar[tuple[str, ...]] = ("line attractor", "ring attractor",
                                             "isolated fixed points")

    @property
    def n_fixed_points(self) -> Int[Array, ""]:
        return jnp.sum(self.valid)

    def __repr__(self) -> str:
        try:
            return (f"Attractor({self.kind_names[int(self.kind)]}: slowness "
                    f"{float(self.slowness):.3g}, extent {float(self.extent):.3g}, transverse "
                    f"rate {float(self.transverse_rate):.3g}, {int(self.n_fixed_points)} fixed "
                    f"points on the manifold ({int(jnp.sum(self.stable & self.valid))} "
                    f"stable))")
        except Exception:
            return eqx.tree_pformat(self)


def classify(model: SSM, *, trajectories: Any = None, system: Any = None, args: Any = None,
             tol: Any = 0.05, n_grid: int = 401, max_fixed_points: int = 16) -> Attractor:
    """Classify a 1-D SSM (polynomial or ring) as a line attractor, a ring attractor or
    isolated fixed points, following the SSM definitions of the seed paper.

    Over the interval `I` of the chart covered by the data (the circle for a ring), the
    slowness number `s = max_I |v(η)| / (r_⊥ |I|)` compares the reduced speed `v` (`R(η)`
    for a flow, `R(η) − η` per step for a map) with the transverse decay rate `r_⊥`: `s`
    is the fraction of the interval the state drifts along the manifold in one transverse
    time constant. A slow (`s < tol`) closed manifold is a ring attractor, a slow open one a
    line attractor; otherwise the manifold carries isolated fixed points (the zeros of `v`).

    **Arguments:**

    - `model`: a fitted 1-D `SSM` (from `ssm.fit` or `ssm.fit_ring`).
    - `trajectories`: `[n_traj, T, n]` data (model samples, `model.dt` apart), for the
      transverse rate as the rate at which the data approach the manifold: the median over
      trajectories of `log(d₀ / d_k) / (k dt)`, `d` the distance to the manifold and
      `k = T // 4`. Preferred for gated networks, whose Jacobians have many near-neutral
      directions.
    - `system`, `args`: otherwise, the full system, for the transverse rate as the median
      over points of the lifted manifold of the Jacobian's second-slowest growth rate.
      Without either, the model's anchor rates are used (Jacobian chart only).
    - `tol`: the slowness threshold (default 0.05; may be traced).
    - `n_grid`: grid points on `I`; `max_fixed_points`: the size of the fixed-point buffer.

    **Returns:** an `Attractor`.

    **Raises:** `ValueError` for a model of dimension other than 1, or no source of a
    transverse rate.

    Reference: A. Marraffa, R. Krause, V. Mante and G. Haller, arXiv:2510.13519 (2025).
    """
    if model.dim != 1:
        raise ValueError(f"`classify` needs a 1-D SSM; got dim={model.dim}.")
    if trajectories is not None:
        trajectories = check_trajectories(trajectories)
        if trajectories.shape[1] < 8 or trajectories.shape[-1] != model.anchor.shape[-1]:
            raise ValueError(f"`trajectories` must be [n_traj, T >= 8, "
                             f"{model.anchor.shape[-1]}]; got {trajectories.shape}.")
    elif system is None and not bool(np.all(np.isfinite(np.asarray(model.rates[:2])))):
        raise ValueError("the model's chart is not from a Jacobian: pass the full `system` "
                         "(and `args`) for the transverse rate.")
    n_grid = check_int(n_grid, "n_grid", minimum=8)
    max_fixed_points = check_int(max_fixed_points, "max_fixed_points")
    if not isinstance(tol, jax.Array):
        check_number(tol, "tol", open_low=True)
    system = None if system is None else as_system(system)
    return _classify(model, trajectories, system, args, jnp.asarray(tol, model.R.dtype),
                     n_grid, max_fixed_points)


@eqx.filter_jit
def _classify(model: SSM, data, system, args, tol, n_grid: int, m: int) -> Attractor:
    dtype = model.R.dtype
    lo, hi = model.eta_min[0], model.eta_max[0]
    s = jnp.linspace(0.0, 1.0, n_grid, dtype=dtype)
    grid = lo + (hi - lo) * s
    eta = grid[:, None]
    p = model.p_ref if model.parametric else None
    v = model.velocity(eta, p)[:, 0]
    pts = model.lift(eta, p)
    extent = jnp.sum(jnp.linalg.norm(pts[1:] - pts[:-1], axis=-1))
    if data is not None:
        k = data.shape[1] // 4
        dist = jnp.linalg.norm(data - model.lift(model.reduce(data), p), axis=-1)
        step = 1.0 if model.discrete else model.dt
        rates = jnp.log(dist[:, 0] / dist[:, k]) / (k * step)
        rate = jnp.maximum(jnp.median(rates), jnp.finfo(dtype).tiny)
    elif system is not None:
        sample = pts[:: max(1, n_grid // 16)]

        def second_rate(x):
            w = jnp.linalg.eigvals(jacobian(system, x, args))
            r = jnp.log(jnp.abs(w)) if system.discrete else jnp.real(w)
            return jnp.sort(jnp.abs(r))[1]

        rate = jnp.median(jax.vmap(second_rate)(sample))
    else:
        rate = jnp.abs(model.rates[1])
    width = hi - lo
    slowness = jnp.max(jnp.abs(v)) / (rate * width)
    slow = slowness < tol
    kind = jnp.where(slow, RING if model.periodic else LINE, ISOLATED)
    # Zeros of v: sign changes between grid points, refined linearly.
    a, b = v[:-1], v[1:]
    if model.periodic:
        a, b = v, jnp.roll(v, -1)
        g0, g1 = grid, jnp.roll(grid, -1)
    else:
        g0, g1 = grid[:-1], grid[1:]
    change = (a == 0) | (a * b < 0)
    (idx,) = jnp.nonzero(change, size=m, fill_value=0)
    valid = jnp.arange(m) < jnp.sum(change)
    frac = a[idx] / jnp.where(a[idx] == b[idx], 1.0, a[idx] - b[idx])
    root = g0[idx] + frac * (g1[idx] - g0[idx])
    stable = (b[idx] < a[idx]) & valid
    return Attractor(kind=kind, slowness=slowness, extent=extent, transverse_rate=rate,
                     interval=jnp.stack([lo, hi]), fixed_points=jnp.where(valid, root, jnp.nan),
                     stable=stable, valid=valid)
