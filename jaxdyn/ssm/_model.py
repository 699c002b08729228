"""The `SSM` module: a fitted spectral-submanifold reduced model, and its reduced system."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._integrate import AbstractIntegrator, Trajectory, make_integrator
from .._solution import RESULTS
from .._system import AbstractFlow, AbstractMap
from .._validate import check_int, check_state
from . import _features as feats


class SSM(eqx.Module):
    """A spectral-submanifold (SSM) reduced model fitted from trajectories (see `ssm.fit`).

    The chart and manifold are `η = P (y − y*)` and `y = y* + V η + W φ(η, μ)`, with `y` the
    (delay-embedded) observable, `y*` the anchor fixed point and `μ = p − p_ref` the centred
    scalar parameter of a parameter-dependent model. The reduced dynamics is
    `η' = R φ_R(η, μ)` for a flow and `η_{k+1} = R φ_R(η_k, μ)` for a map. A ring model
    (`ssm.fit_ring`) uses the periodic chart `θ = atan2` of two principal directions around a
    centre instead, with Fourier features for `W` and `R` (`θ' = R φ_R(θ)`, or
    `θ_{k+1} = θ_k + R φ_R(θ_k)` for a map).

    **Fields:**

    - `anchor`: `y*`, `[n]`; `V`: the tangent basis `[n, d]`; `P`: the chart `[d, n]`
      (`[2, n]` for a ring) with `P V = I`.
    - `W`: manifold coefficients `[p_W, n]`; `R`: reduced-dynamics coefficients `[p_R, d]`.
    - `dt`: the sampling step of the data (1 for a map).
    - `p_ref`: the reference parameter (the anchor's); the model depends on
      `p − p_ref`.
    - `rates`: growth rates of the anchor's Jacobian (`Re λ` for a flow, `log|μ|` for a
      map), slowest first by `|rate|`; NaN when the chart came from data.
    - `eig_parts`: real and imaginary parts `[2, m]` of the anchor Jacobian's eigenvalues in
      the same order (NaN for a data chart); `eigvals` gives them as complex numbers.
    - `gap`: the spectral gap `|rate_{d+1}| / |rate_d|` (NaN for a data chart).
    - `eta_min`, `eta_max`: the range of the reduced coordinates over the data `[d]` (all
      valid samples, the transient included).
    - `eta_scale`: the largest `‖η‖` in the data (predictions stop growing past 10×).
    - `order`, `dynamics_order`: the chosen polynomial orders (cross-validated when asked,
      lowered where the data cannot determine the higher degrees; coefficients of
      higher-degree features are zero).
    - `ridge`, `dynamics_ridge`: the chosen ridge strengths.
    - `cv_error`: the cross-validation error of the manifold and of the dynamics (NaN when no
      cross-validation ran), `[2]`.
    - `condition`: the condition numbers of the fitted feature matrices, each feature scaled
      to unit root-mean-square (manifold, dynamics), `[2]`.
    - `determined`, `dynamics_determined`: `[p_W]` and `[p_R]` booleans, true for each
      coefficient that was fitted and that the data determine at the working precision: its
      rounding-level uncertainty, carried over the whole range of the data (the transient
      included), changes the model by less than 1 % of the data's size. Coefficients above
      the final order are false (and zero).
    - `result`: a `jd.RESULTS` item: `successful`; `undetermined_coefficients` (some
      coefficients were below what the data determine at the working precision, e.g. after
      a long `transient` that leaves data far smaller than the rest; the fit dropped the
      degrees from the lowest such one up, and `order` / `dynamics_order` are the degrees
      kept); `degenerate_data` (no samples were left to fit, or the fitted samples do not
      move in the chart: all equal, all zero); `singular` (a chart could not be formed:
      the chosen `dim` splits a complex-conjugate pair, or the eigenvector basis is
      singular); or `nonfinite`.
    - static: `manifold_table`, `dynamics_table` (exponent tables, see `_features`),
      `discrete`, `delays`, `periodic`, `fourier_order`.
    """

    anchor: Float[Array, " n"]
    V: Float[Array, "n d"]
    P: Float[Array, "d n"]
    W: Float[Array, "pw n"]
    R: Float[Array, "pr d"]
    dt: Float[Array, ""]
    p_ref: Float[Array, ""]
    rates: Float[Array, " m"]
    eig_parts: Float[Array, "2 m"]
    gap: Float[Array, ""]
    eta_min: Float[Array, " d"]
    eta_max: Float[Array, " d"]
    eta_scale: Float[Array, ""]
    order: Int[Array, ""]
    dynamics_order: Int[Array, ""]
    ridge: Float[Array, ""]
    dynamics_ridge: Float[Array, ""]
    cv_error: Float[Array, " 2"]
    condition: Float[Array, " 2"]
    determined: Bool[Array, " pw"]
    dynamics_determined: Bool[Array, " pr"]
    result: RESULTS
    manifold_table: tuple = eqx.field(static=True)
    dynamics_table: tuple = eqx.field(static=True)
    discrete: bool = eqx.field(static=True)
    delays: int = eqx.field(static=True, default=1)
    periodic: bool = eqx.field(static=True, default=False)
    fourier_order: int = eqx.field(static=True, default=0)

    # ---- shapes -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """The SSM dimension `d` (1 for a ring)."""
        return 1 if self.periodic else self.V.shape[1]

    @property
    def eigvals(self) -> Array:
        """The anchor Jacobian's eigenvalues, slowest first (NaN for a data chart)."""
        return jax.lax.complex(self.eig_parts[0], self.eig_parts[1])

    @property
    def parametric(self) -> bool:
        """Whether the coefficients depend on the scalar parameter."""
        return bool(np.asarray(self.manifold_table)[:, -1].any()
                    or np.asarray(self.dynamics_table)[:, -1].any())

    def _mu(self, p):
        if not self.parametric:
            return None
        if p is None:
            raise ValueError("this SSM depends on a parameter: pass `p`.")
        return jnp.asarray(p, self.W.dtype) - self.p_ref

    # ---- chart and manifold -------------------------------------------------------------
    def reduce(self, y: Float[Array, "... n"]) -> Float[Array, "... d"]:
        """Reduced coordinates `η = P (y − y*)` of (delay-embedded) observables `y`
        (`θ ∈ (−π, π]` for a ring)."""
        y = jnp.asarray(y, self.P.dtype)
        eta = (y - _bc(self.anchor, y.ndim)) @ self.P.T
        if self.periodic:
            return jnp.arctan2(eta[..., 1], eta[..., 0])[..., None]
        return eta

    def lift(self, eta: Float[Array, "... d"], p: ArrayLike | None = None) -> Float[Array, "... n"]:
        """The manifold point `y* + V η + W φ(η, μ)` over reduced coordinates `eta`."""
        eta = jnp.asarray(eta, self.W.dtype)
        if self.periodic:
            out = feats.fourier(eta[..., 0], self.fourier_order) @ self.W
        else:
            phi = feats.polynomial(np.asarray(self.manifold_table), eta, self._mu(p))
            out = eta @ self.V.T + phi @ self.W
        return out + _bc(self.anchor, out.ndim)

    def vector_field(self, eta: Float[Array, "... d"], p: ArrayLike | None = None):
        """The reduced dynamics at `eta`: `η'` for a flow, the next `η` for a map; `p` is the
        parameter of a parameter-dependent model."""
        eta = jnp.asarray(eta, self.R.dtype)
        if self.periodic:
            step = feats.fourier(eta[..., 0], self.fourier_order) @ self.R
            return eta + step if self.discrete else step
        return feats.polynomial(np.asarray(self.dynamics_table), eta, self._mu(p)) @ self.R

    def velocity(self, eta: Float[Array, "... d"], p: ArrayLike | None = None):
        """The reduced rate of change: `R(η)` for a flow, `R(η) − η` per step for a map."""
        out = self.vector_field(eta, p)
        return out - jnp.asarray(eta, out.dtype) if self.discrete else out

    @property
    def system(self) -> ReducedFlow | ReducedMap:
        """The reduced dynamics as a jaxdyn system on `η` whose `args` is the parameter `p`
        (ignored by a model without one), ready for `jd.fixed_points`, `jd.simulate` and
        `jd.continuation`."""
        return ReducedMap(self) if self.discrete else ReducedFlow(self)

    # ---- prediction ---------------------------------------------------------------------
    def predict(self, y0: ArrayLike, T: int, p: ArrayLike | None = None, *,
                reduced: bool = False, integrator: AbstractIntegrator | None = None,
                rtol: float | None = None, atol: float | None = None,
                max_steps: int | None = None) -> Trajectory:
        """Reduced simulation from `y0`, lifted: `T` samples `dt` apart.

        **Arguments:**

        - `y0`: the initial (delay-embedded) observable, `[n]`.
        - `T`: the number of samples (a Python int).
        - `p`: the parameter of a parameter-dependent model.
        - `reduced`: return the reduced trajectory `η` instead of the lifted one.
        - `integrator`: how the reduced flow is integrated (a `jd.Adaptive` or
          `jd.FixedStep`; ignored for a map), or its shortcuts:
        - `rtol`, `atol`: tolerances of the adaptive Tsit5 integration (default 1e-9 and
          1e-12 in float64, 1e-5 and 1e-8 in float32).
        - `max_steps`: integrator steps allowed (default `64 T`).

        **Returns:** a `jd.Trajectory` (`xs [T, n]`, or `[T, d]` with `reduced=True`). Its
        `result` is `RESULTS.nonfinite_state` when the reduced state left 10× the data
        range (polynomial models may blow up in finite time; lower the order then); the
        rows after that are not valid.

        **Raises:** `ValueError` for a `y0` of the wrong shape or `T < 2`.
        """
        T = check_int(T, "T", minimum=2)
        y0 = check_state(y0, "y0", size=self.anchor.shape[0])
        integ = prediction_integrator(self, T, y0.dtype, integrator, rtol, atol, max_steps)
        return _predict(self, y0, T, p, integ, reduced)

    # ---- analysis -----------------------------------------------------------------------
    def fixed_points(self, eta0s: ArrayLike, p: ArrayLike | None = None, **kwargs):
        """Fixed points of the reduced dynamics from starts `eta0s [k, d]`, through
        `jd.fixed_points` (keyword arguments pass on to it)."""
        from .._fixed_points import fixed_points

        p = None if not self.parametric else jnp.asarray(p, self.R.dtype)
        if p is None:
            kwargs.pop("args_axis", None)
        return fixed_points(self.system, eta0s, p, **kwargs)

    def normal_form(self, observable: int = 0, **kwargs):
        """The cubic normal form and backbone of a 2-D oscillatory SSM (`ssm.normal_form`)."""
        from ._normal_form import normal_form

        return normal_form(self, observable=observable, **kwargs)

    def plot(self, trajectories=None, ax=None, **kwargs):
        """The manifold over data in a 3-D PCA view (`d ≤ 2`) and the reduced phase portrait
        (`jaxdyn.ssm.plot_ssm`)."""
        from ._plot import plot_ssm

        return plot_ssm(self, trajectories=trajectories, ax=ax, **kwargs)

    def __repr__(self) -> str:
        try:
            res = RESULTS[self.result]
            kind = "map" if self.discrete else "flow"
            chart = "ring (periodic)" if self.periodic else (
                "Jacobian" if np.isfinite(np.asarray(self.gap)) else "data (SVD)")
            lines = [f"SSM(dim {self.dim} in {self.anchor.shape[0]}-D observables, {kind}, "
                     f"{chart} chart" + (", parameter-dependent" if self.parametric else "")]
            lines.append(f"  manifold order {int(self.order)}, dynamics order "
                         f"{int(self.dynamics_order)}, ridge {float(self.ridge):.3g} / "
                         f"{float(self.dynamics_ridge):.3g}")
            if np.isfinite(np.asarray(self.gap)):
                lines.append(f"  slow rates {np.round(np.asarray(self.rates)[:self.dim], 6)}, "
                             f"spectral gap {float(self.gap):.3g}")
            lines.append(f"  condition {np.round(np.asarray(self.condition), 3)}; status: "
                         f"{res or 'successful'}")
            return "\n".join(lines) + ")"
        except Exception:  # traced or batched
            return eqx.tree_pformat(self)


def _bc(a, ndim: int):
    """`a [n]` with leading unit axes up to rank `ndim` (rank promotion is explicit)."""
    return a.reshape((1,) * (ndim - 1) + a.shape)


class ReducedFlow(AbstractFlow):
    """The reduced flow `η' = R(η, p)` of an `SSM` as a jaxdyn system (`args` = `p`)."""

    model: SSM

    @property
    def state_size(self) -> int:
        return self.model.dim

    def __call__(self, t, x, args):
        return self.model.vector_field(x, args)


class ReducedMap(AbstractMap):
    """The reduced map `η_{k+1} = R(η_k, p)` of an `SSM` as a jaxdyn system (`args` = `p`)."""

    model: SSM

    @property
    def state_size(self) -> int:
        return self.model.dim

    def __call__(self, t, x, args):
        return self.model.vector_field(x, args)


class _Guarded(AbstractFlow):
    """The reduced flow, frozen past `bound` so that a blow-up costs no steps."""

    model: SSM
    bound: Array

    @property
    def state_size(self) -> int:
        return self.model.dim

    def __call__(self, t, x, args):
        v = self.model.vector_field(x, args)
        return jnp.where(jnp.sum(x * x) < self.bound**2, v, jnp.zeros_like(v))


class _GuardedMap(AbstractMap):
    model: SSM
    bound: Array

    @property
    def state_size(self) -> int:
        return self.model.dim

    def __call__(self, t, x, args):
        nxt = self.model.vector_field(x, args)
        return jnp.where(jnp.sum(x * x) < self.bound**2, nxt, x)


def prediction_integrator(model: SSM, T: int, dtype, integrator, rtol, atol, max_steps):
    """The integrator of `predict` and `nmte`: tolerances tight enough that the prediction
    error is the model's, not the integrator's (and that float32 can meet)."""
    single = jnp.finfo(dtype).bits < 64
    if integrator is None and not model.discrete:
        max_steps = 64 * T if max_steps is None else max_steps
    return make_integrator(model.system, integrator, dtype, rtol=rtol, atol=atol,
                           max_steps=max_steps, rtol_default=1e-5 if single else 1e-9,
                           atol_default=1e-8 if single else 1e-12)


@eqx.filter_jit
def _predict(model: SSM, y0, T: int, p, integrator, reduced: bool):
    eta0 = model.reduce(y0)
    p = None if not model.parametric else jnp.asarray(p, y0.dtype)
    bound = 10.0 * model.eta_scale
    if model.periodic:
        bound = jnp.asarray(jnp.inf, y0.dtype)
    if model.discrete:
        traj = integrator.trajectory(_GuardedMap(model, bound), eta0, p, 0, T - 1)
    else:
        ts = model.dt * jnp.arange(T, dtype=y0.dtype)
        traj = integrator.trajectory(_Guarded(model, bound), eta0, p, ts[0], ts[-1], ts=ts)
    eta = traj.xs
    escaped = jnp.sum(eta * eta, axis=-1) >= bound**2
    bad = jnp.any(escaped) | ~jnp.all(jnp.isfinite(eta))
    result = RESULTS.where(bad & (traj.result == RESULTS.successful),
                           RESULTS.nonfinite_state, traj.result)
    xs = eta if reduced else model.lift(eta, p)
    first_bad = jnp.cumsum(escaped | ~jnp.all(jnp.isfinite(eta), -1)) > 0
    xs = jnp.where(first_bad[:, None], jnp.nan, xs)
    return Trajectory(ts=traj.ts, xs=xs, success=result == RESULTS.successful, result=result,
                      steps=traj.steps)
