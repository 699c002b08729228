"""`ssm.fit`: a spectral-submanifold reduced model from trajectories, in closed form."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._solution import RESULTS
from .._system import as_system, jacobian
from .._validate import (
    as_float_array,
    check_choice,
    check_int,
    check_positive,
    describe,
    is_concrete,
)
from . import _features as feats
from ._data import (
    _FD4_FORWARD,
    _FD6,
    check_lengths,
    check_mask,
    check_samples,
    check_trajectories,
    embed,
    fd_derivative,
)
from ._model import SSM
from ._ridge import Precision, fit_ridge


def _orders(value: Any, name: str) -> tuple[int, ...]:
    vals = value if isinstance(value, (list, tuple)) else (value,)
    if len(vals) == 0:
        raise ValueError(f"`{name}` must be an integer >= 1 or a sequence of them; got "
                         f"{value!r}.")
    return tuple(sorted({check_int(v, name) for v in vals}))


def _ridges(value: Any, name: str, dtype) -> jax.Array:
    arr = jnp.atleast_1d(as_float_array(value, name)).astype(dtype)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a number or a 1-D sequence of numbers; got "
                         f"{describe(arr)}.")
    if is_concrete(arr) and not np.all(np.isfinite(np.asarray(arr)) & (np.asarray(arr) >= 0)):
        raise ValueError(f"`{name}` must be finite and >= 0; got {value!r}.")
    return arr


def fit(
    trajectories: Any,
    dim: int,
    order: int | Sequence[int] = 3,
    *,
    dynamics_order: int | Sequence[int] | None = None,
    dt: Any = 1.0,
    mask: Any = None,
    system: Any = None,
    fixed_point: Any = None,
    args: Any = None,
    params: Any = None,
    param_ref: Any = 0.0,
    param_order: int | None = None,
    chart: str = "auto",
    delays: int = 1,
    transient: Any = 0.0,
    ridge: Any = 0.0,
    dynamics_ridge: Any = None,
    folds: int = 5,
    derivative: str = "auto",
    free_linear: bool = False,
    discrete: bool | None = None,
) -> SSM:
    """Fit a spectral-submanifold (SSM) reduced model to trajectories.

    The observables (optionally delay-embedded) are centred on the anchor fixed point `y*`
    and projected onto a `dim`-dimensional spectral subspace: from the anchor's Jacobian
    (the `dim` slowest modes, ranked by `|Re λ|` for a flow and `|log|μ||` for a map, with
    complex pairs kept together, projected with the left eigenvectors: an oblique chart
    along the fast modes) or from the data (the leading left singular vectors). The manifold
    `y = y* + V η + W φ(η)` (a graph over the chart) and the reduced dynamics (`η' = R(η)`
    for flows, `η_{k+1} = R(η_k)` for maps) are polynomials fitted by ridge-regularised least
    squares in closed form: the chart coordinates are scaled to unit size over the fitted
    samples before the monomials are formed, and the least squares are solved by QR and SVD
    in the working precision (no normal equations), so float32 fits give the float64
    coefficients to float32 precision. When `order`, `dynamics_order` or the ridges are
    sequences, the best combination is chosen by cross-validation over folds of whole
    trajectories (one triangular factor per fold serves every candidate). All of this is one
    compiled program: `jax.vmap` over stacked data (and stacked systems) fits many models in
    one call.

    Each coefficient's rounding-level uncertainty is carried over the whole range of the data
    (the transient included, where predictions start): a coefficient that could change the
    model there by more than 1 % of the data's size is undetermined (e.g. a cubic term after
    a `transient` that leaves data 1e-4 of their start, in float32), and the fit drops the
    degrees from the lowest undetermined one up, with the status
    `RESULTS.undetermined_coefficients` (see `SSM.determined`).

    **Arguments:**

    - `trajectories`: `[n_traj, T, n]` samples `dt` apart (states, or observables).
    - `dim`: the SSM dimension `d` (less than the embedded observable dimension).
    - `order`: polynomial order of the manifold (≥ 1), or a sequence to cross-validate.
    - `dynamics_order`: order of the reduced dynamics (default: `order`), or a sequence.
    - `dt`: the sampling step (flows; may be traced).
    - `mask`: `[n_traj, T]` booleans marking each trajectory's valid leading samples
      (ragged lengths); default all valid.
    - `system`: the system that made the data (a `jd.Flow`, `jd.Map`, RNN model), for the
      Jacobian chart and exact derivatives `η' = P f(x)`; it also decides flow or map.
    - `fixed_point`: the anchor `x*` (state or observable), `[n]`; default the origin.
    - `args`: the system's `args` at the anchor, or with `params` a function `p -> args`
      (default: the parameter itself is `args`).
    - `params`: `[n_traj]`, the scalar parameter of each trajectory (a constant input or a
      context), for a parameter-dependent model whose coefficients are polynomials of
      degree `param_order` (default 2) in `p − param_ref`.
    - `param_ref`: the parameter at which `fixed_point` is the anchor (default 0).
    - `chart`: `"jacobian"` (needs `system`; no delays), `"svd"`, or `"auto"` (the Jacobian
      when a system is given and there are no delays).
    - `delays`: delay-embedding depth `k`: sample `t` becomes `(y_t, …, y_{t+k−1})`.
    - `transient`: samples with time `< transient` (steps for a map) are not fitted (they
      are off the manifold); may be traced.
    - `ridge`, `dynamics_ridge`: scale-free ridge strengths (≥ 0; features scaled by their
      RMS) of the manifold and the dynamics fits, or sequences to cross-validate.
    - `folds`: trajectory folds for cross-validation (at most `n_traj`).
    - `derivative`: `"exact"` (`P f(x)`, needs `system`, the default then for flows),
      `"fd6"` (6th-order central differences, interior samples; the default otherwise) or
      `"fd4"` (4th-order with one-sided ends, SSMLearnPy's scheme).
    - `free_linear`: also fit the linear part of the manifold (degrees 1..order, as
      SSMLearnPy does) instead of holding it at the chart's tangent space.
    - `discrete`: whether the data come from a map, when no `system` says so (default
      False).

    **Returns:** an `SSM` (its `result` says `undetermined_coefficients` when degrees were
    dropped, `degenerate_data` when a traced `transient` left nothing to fit or the data do
    not move).

    **Raises:** `ValueError` (before tracing) for trajectories that are not a finite
    `[n_traj, T, n]` array (NaN in the data), `dim` ≥ the (embedded) dimension, an order
    < 1, trajectories shorter than the delay window plus the derivative stencil, a mask
    that is not a leading run per trajectory, an unknown `chart`/`derivative`, a Jacobian
    chart or exact derivatives without a `system`, a `dim` that splits a complex pair of
    the anchor's eigenvalues, a `transient` that leaves no samples to fit, or data that do
    not move over the fitted samples (all zero, constant).

    Reference: M. Cenedese, J. Axås, B. Bäuerlein, K. Avila and G. Haller, "Data-driven
    modeling and prediction of non-linearizable dynamics via spectral submanifolds", Nature
    Communications 13:872 (2022); A. Marraffa, R. Krause, V. Mante and G. Haller,
    "Data-Driven Reduced Modeling of Recurrent Neural Networks", arXiv:2510.13519 (2025).
    """
    X = check_trajectories(trajectories)
    n_traj, T, n_obs = X.shape
    dim = check_int(dim, "dim")
    delays = check_int(delays, "delays")
    n = n_obs * delays
    if dim >= n:
        raise ValueError(f"`dim` must be smaller than the (embedded) state dimension {n}; got "
                         f"dim={dim}.")
    orders = _orders(order, "order")
    dyn_orders = orders if dynamics_order is None else _orders(dynamics_order,
                                                               "dynamics_order")
    if system is not None:
        system = as_system(system)
        discrete = system.discrete
    discrete = bool(discrete) if discrete is not None else False
    chart = check_choice(chart, "chart", ("auto", "jacobian", "svd"))
    if chart == "auto":
        chart = "jacobian" if system is not None and delays == 1 else "svd"
    if chart == "jacobian" and (system is None or delays != 1):
        raise ValueError("`chart='jacobian'` needs `system` and no delay embedding "
                         f"(delays=1); got system={type(system).__name__}, delays={delays}.")
    derivative = check_choice(derivative, "derivative", ("auto", "exact", "fd6", "fd4"))
    if derivative == "auto":
        derivative = "exact" if system is not None and delays == 1 else "fd6"
    if derivative == "exact" and (system is None or delays != 1) and not discrete:
        raise ValueError("`derivative='exact'` needs `system` and no delay embedding.")
    stencil = "shift" if discrete else derivative
    mask = check_mask(mask, (n_traj, T))
    check_lengths(mask, delays, stencil)
    folds = max(1, min(check_int(folds, "folds"), n_traj))
    check_positive(dt, "dt")
    dtype = X.dtype
    if params is None:
        K = 0
        params = jnp.zeros(n_traj, dtype)
    else:
        params = as_float_array(params, "params").astype(dtype)
        if params.shape != (n_traj,):
            raise ValueError(f"`params` must have shape ({n_traj},), one scalar per "
                             f"trajectory; got {describe(params)}.")
        K = 2 if param_order is None else check_int(param_order, "param_order", minimum=0)
    if fixed_point is None:
        anchor = jnp.zeros(n_obs, dtype)
    else:
        anchor = as_float_array(fixed_point, "fixed_point").astype(dtype)
        if anchor.shape != (n_obs,):
            raise ValueError(f"`fixed_point` must have shape ({n_obs},); got "
                             f"{describe(anchor)}.")
    ridges = _ridges(ridge, "ridge", dtype)
    dyn_ridges = ridges if dynamics_ridge is None else _ridges(dynamics_ridge,
                                                               "dynamics_ridge", dtype)
    args_fn = args if callable(args) and not isinstance(args, eqx.Module) else None
    cfg = _Config(dim=dim, orders=orders, dyn_orders=dyn_orders, K=K, chart=chart,
                  delays=delays, derivative=derivative, discrete=discrete, folds=folds,
                  free_linear=bool(free_linear), args_fn=args_fn)
    shared_args = None if args_fn is not None else args
    if system is not None and chart == "jacobian" and is_concrete((X, anchor, shared_args)):
        _check_pair(system, anchor, _args_at(cfg, shared_args, jnp.asarray(param_ref, dtype)),
                    dim)
    if is_concrete((X, mask, dt, transient)):
        tr = np.asarray(transient)
        if tr.shape != () or not np.isfinite(tr):
            raise ValueError(f"`transient` must be a finite number; got {transient!r}.")
        check_samples(np.asarray(X), np.asarray(mask), delays, stencil, float(tr),
                      1.0 if discrete else float(np.asarray(dt)))
    return _fit(X, mask, jnp.asarray(dt, dtype), anchor, jnp.asarray(transient, dtype),
                ridges, dyn_ridges, params, jnp.asarray(param_ref, dtype), system,
                shared_args, cfg)


class _Config(eqx.Module):
    dim: int = eqx.field(static=True)
    orders: tuple = eqx.field(static=True)
    dyn_orders: tuple = eqx.field(static=True)
    K: int = eqx.field(static=True)
    chart: str = eqx.field(static=True)
    delays: int = eqx.field(static=True)
    derivative: str = eqx.field(static=True)
    discrete: bool = eqx.field(static=True)
    folds: int = eqx.field(static=True)
    free_linear: bool = eqx.field(static=True)
    args_fn: Callable | None = eqx.field(static=True)


def _args_at(cfg: _Config, shared_args, p):
    if cfg.args_fn is not None:
        return cfg.args_fn(p)
    return p if cfg.K > 0 and shared_args is None else shared_args


def _check_pair(system, anchor, args, dim):
    w = np.linalg.eigvals(np.asarray(jacobian(system, anchor, args)))
    rates = np.log(np.abs(w)) if system.discrete else w.real
    order = np.lexsort((-w.imag, np.abs(rates)))
    if dim < w.size and w[order][dim - 1].imag > 0:
        raise ValueError(f"`dim`={dim} splits the complex-conjugate pair of eigenvalues "
                         f"{w[order][dim - 1]:.6g} and its conjugate at the fixed point; use "
                         f"dim={dim + 1} or {dim - 1}.")


def _chart(system, anchor, args, dim, discrete):
    """Oblique chart from the anchor's Jacobian: the real basis `B` of eigenvectors, slowest
    first, and the dual rows `B⁻¹`."""
    J = jacobian(system, anchor, args)
    # Eigenvector derivatives assume distinct eigenvalues (generic), as in `fixed_points`.
    w, v = jax.lax.linalg.eig(J, compute_left_eigenvectors=False, enable_eigvec_derivs=True)
    rates = jnp.log(jnp.abs(w)) if discrete else jnp.real(w)
    order = jnp.lexsort((-jnp.imag(w), jnp.abs(rates)))
    w, v, rates = w[order], v[:, order], rates[order]
    # A conjugate pair (positive imaginary part first) becomes the columns (Re v, Im v).
    B = jnp.where(jnp.imag(w)[None, :] < 0, -jnp.imag(v), jnp.real(v))
    Binv = jnp.linalg.inv(B)
    n = J.shape[0]
    split = (jnp.imag(w[dim - 1]) > 0) if dim < n else jnp.asarray(False)
    ok = ~split & jnp.all(jnp.isfinite(Binv))
    gap = jnp.abs(rates[dim]) / jnp.abs(rates[dim - 1])
    return B[:, :dim], Binv[:dim], rates, jnp.stack([jnp.real(w), jnp.imag(w)]), gap, ok


@eqx.filter_jit
def _fit(X, mask, dt, anchor_obs, transient, ridges, dyn_ridges, params, p_ref, system,
         shared_args, cfg: _Config) -> SSM:
    dtype = X.dtype
    d = cfg.dim
    Y, m = embed(X, cfg.delays, mask)
    anchor = jnp.tile(anchor_obs, cfg.delays)
    Z = Y - anchor[None, None]
    N, L, n = Z.shape
    t = jnp.arange(L, dtype=dtype) * (1.0 if cfg.discrete else dt)
    w = m & (t[None, :] >= transient)
    wf = w.astype(dtype)
    ok = jnp.asarray(True)
    if cfg.chart == "jacobian":
        V, P, rates, eig_parts, gap, ok = _chart(system, anchor, _args_at(cfg, shared_args, p_ref),
                                               d, cfg.discrete)
    else:
        # Leading left singular vectors of the stacked data, from the SVD of the n × n
        # triangular factor of its QR (the Gram matrix would square its condition number).
        flat = jnp.where(w[..., None], Z, 0.0).reshape(-1, n)
        if flat.shape[0] < n:
            flat = jnp.pad(flat, ((0, n - flat.shape[0]), (0, 0)))
        _, _, Vt = jnp.linalg.svd(jnp.linalg.qr(flat, mode="r"), full_matrices=False)
        V = Vt[:d].T
        # A deterministic sign: the largest entry of each column is positive.
        sign = jnp.sign(V[jnp.argmax(jnp.abs(V), axis=0), jnp.arange(d)])
        V = V * jnp.where(sign == 0, 1.0, sign)[None, :]
        P = V.T
        rates = jnp.full(n, jnp.nan, dtype)
        eig_parts = jnp.full((2, n), jnp.nan, dtype)
        gap = jnp.asarray(jnp.nan, dtype)
    eta = Z @ P.T
    mu = jnp.broadcast_to((params - p_ref)[:, None], (N, L))
    eps = jnp.finfo(dtype).eps
    # Chart coordinates and parameter scaled to unit size over the fitted samples before the
    # monomials are formed, so that high powers neither underflow nor swamp the low ones.
    big = jnp.finfo(dtype).max
    eta_fit = jnp.where(w[..., None], eta, 0.0)
    eta_unit = jnp.max(jnp.abs(eta_fit), axis=(0, 1))
    spread = (jnp.max(jnp.where(w[..., None], eta, -big), axis=(0, 1))
              - jnp.min(jnp.where(w[..., None], eta, big), axis=(0, 1)))
    degenerate = jnp.any(spread <= 100 * eps * eta_unit) | ~jnp.any(w)
    eta_unit = jnp.where(eta_unit > 0, eta_unit, 1.0)
    mu_unit = jnp.max(jnp.where(w, jnp.abs(mu), 0.0))
    mu_unit = jnp.where(mu_unit > 0, mu_unit, 1.0)
    xi, xi_fit, nu = eta / eta_unit[None, None], eta_fit / eta_unit[None, None], mu / mu_unit
    xi_all = jax.lax.stop_gradient(jnp.where(m[..., None], xi, 0.0))
    rms = lambda a, wt: jnp.sqrt(jnp.sum(wt * jnp.sum(a * a, -1)) / jnp.maximum(  # noqa: E731
        jnp.sum(wt), 1.0))
    peak = lambda a, valid: jnp.max(jnp.where(valid, jnp.sqrt(jnp.sum(a * a, -1)), 0.0))  # noqa: E731

    def unscale(c, table):
        # Coefficients of the unit-scaled monomials → coefficients of η^α μ^k.
        table = np.asarray(table)
        f = (jnp.prod(eta_unit[None, :] ** jnp.asarray(table[:, :-1], dtype), axis=1)
             * mu_unit ** jnp.asarray(table[:, -1], dtype))
        return c / f[:, None]

    def precision(table, noise, size, valid, low):
        phi_max = jnp.max(jnp.where(valid[..., None], jnp.abs(
            feats.polynomial(table, xi_all, jax.lax.stop_gradient(nu))), 0.0), axis=(0, 1))
        return Precision(noise=jax.lax.stop_gradient(noise),
                         peak=jax.lax.stop_gradient(size), phi_max=phi_max, low=low)

    # Manifold: the part of the data off the tangent space, on monomials of degree 2..M (and
    # the parameter terms), or the whole data on degrees 1..M with `free_linear`.
    top = max(cfg.orders)
    full = feats.exponents(d, 0, top, cfg.K)
    deg, kk = feats.degrees(full), full[:, -1]
    low = 1 if cfg.free_linear else 2
    keep = (deg >= low) | ((deg < low) & (kk > 0))
    table_w = full[keep]
    target = Z if cfg.free_linear else Z - eta @ V.T
    phi_w = feats.polynomial(table_w, xi_fit, nu)
    # Rounding in the targets is eps × the size of Z and of the tangent part removed from it.
    noise_w = rms(Z, wf) + jnp.linalg.norm(jax.lax.stop_gradient(V)) * rms(eta, wf)
    fw = fit_ridge(phi_w, target, wf, feats.degrees(table_w), cfg.orders, ridges, cfg.folds,
                   precision(table_w, noise_w, peak(Z, m), m, low))
    Wc = unscale(fw.c, table_w)
    if cfg.free_linear:
        # Fold the fitted linear part into W; V stays the chart's tangent basis.
        lin = (feats.degrees(table_w) == 1) & (table_w[:, -1] == 0)
        Wc = Wc.at[np.nonzero(lin)[0]].add(-V.T)

    # Reduced dynamics: degrees 1..R, plus pure-parameter terms (the moving fixed point).
    top_r = max(cfg.dyn_orders)
    full_r = feats.exponents(d, 0, top_r, cfg.K)
    deg_r, k_r = feats.degrees(full_r), full_r[:, -1]
    table_r = full_r[(deg_r >= 1) | (k_r > 0)]
    # Rounding of η (through the chart) passes into the targets at the rate of the dynamics.
    chart_gain = (jnp.linalg.norm(jax.lax.stop_gradient(P)) * rms(Z, wf)
                  / jnp.maximum(rms(eta, wf), jnp.finfo(dtype).tiny))
    if cfg.discrete:
        x_in, y_out = xi_fit[:, :-1], eta[:, 1:]
        wr_b = w[:, :-1] & w[:, 1:] & m[:, 1:]
        mu_r, valid_r = nu[:, :-1], m[:, :-1] & m[:, 1:]
        wr = wr_b.astype(dtype)
        noise_r = rms(y_out, wr) * (1 + chart_gain)
    elif cfg.derivative == "exact":
        f = lambda x, p: system(0.0, x, _args_at(cfg, shared_args, p))  # noqa: E731
        xs = Y.reshape(N * L, n)
        ps = jnp.repeat(params, L)
        y_out = (jax.vmap(f)(xs, ps) @ P.T).reshape(N, L, d)
        x_in, wr, mu_r, valid_r = xi_fit, wf, nu, m
        noise_r = rms(y_out, wr) * (1 + chart_gain)
    else:
        y_out, valid = fd_derivative(eta, m, dt, cfg.derivative)
        x_in, wr, mu_r, valid_r = xi_fit, (valid & w).astype(dtype), nu, valid
        # A difference stencil rounds at eps × Σ|coefficients| × |η| / dt.
        gain = float(np.abs(_FD6 if cfg.derivative == "fd6" else _FD4_FORWARD).sum())
        noise_r = rms(y_out, wr) * (1 + chart_gain) + gain * rms(eta, wr) / dt
    # The dynamics fit runs after the manifold fit (under `vmap` their batched LAPACK
    # kernels side by side can deadlock XLA's CPU runtime).
    x_in, y_out, _ = jax.lax.optimization_barrier((x_in, y_out, fw.c))
    phi_r = feats.polynomial(table_r, x_in, mu_r)
    # (For a map the inputs are the samples 0..L−2: pad the mask to the sample axis.)
    valid_in = jnp.pad(valid_r, ((0, 0), (0, 1))) if cfg.discrete else valid_r
    prec_r = precision(table_r, noise_r, peak(y_out, valid_r), valid_in, 1)
    fr = fit_ridge(phi_r, y_out, wr, feats.degrees(table_r), cfg.dyn_orders, dyn_ridges,
                   cfg.folds, prec_r)
    Rc = unscale(fr.c, table_r)

    valid_eta = jnp.where(m[..., None], eta, jnp.nan)
    finite = jnp.all(jnp.isfinite(Wc)) & jnp.all(jnp.isfinite(Rc))
    cond = jnp.stack([fw.condition, fr.condition])
    degenerate = degenerate | (jnp.sum(wr) == 0)
    undetermined = fw.truncated | fr.truncated
    result = RESULTS.where(
        degenerate, RESULTS.degenerate_data,
        RESULTS.where(~finite, RESULTS.nonfinite,
                      RESULTS.where(~ok, RESULTS.singular,
                                    RESULTS.where(undetermined,
                                                  RESULTS.undetermined_coefficients,
                                                  RESULTS.successful))))
    return SSM(anchor=anchor, V=V, P=P, W=Wc, R=Rc, dt=dt, p_ref=p_ref, rates=rates,
               eig_parts=eig_parts, gap=gap, eta_min=jnp.nanmin(valid_eta, axis=(0, 1)),
               eta_max=jnp.nanmax(valid_eta, axis=(0, 1)),
               eta_scale=jnp.sqrt(jnp.max(jnp.where(m, jnp.sum(eta * eta, -1), 0.0))),
               order=fw.order, dynamics_order=fr.order, ridge=fw.ridge,
               dynamics_ridge=fr.ridge, cv_error=jnp.stack([fw.cv_error, fr.cv_error]),
               condition=cond, determined=fw.determined, dynamics_determined=fr.determined,
               result=result,
               manifold_table=tuple(map(tuple, table_w.tolist())),
               dynamics_table=tuple(map(tuple, table_r.tolist())), discrete=cfg.discrete,
               delays=cfg.delays)
