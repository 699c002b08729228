"""Closed-form cubic normal form and backbone curve of a 2-D oscillatory SSM."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from .._validate import check_int
from . import _features as feats
from ._model import SSM


class NormalForm(eqx.Module):
    """The cubic normal form `ż = λ z + γ z²z̄` of a 2-D oscillatory reduced flow.

    In polar form `z = ρ e^{iθ}`: `ρ' = Re λ ρ + Re γ ρ³`, `θ' = Im λ + Im γ ρ²`. The modal
    coordinate `z` is the one of the phase plane of the chosen observable `y` and its rate
    `ẏ`: linear in `(y, ẏ)`, scaled so that `y = z + z̄` to linear order. So the amplitude of
    that observable is `a = 2ρ` to leading order and the backbone is
    `ω(a) = Im λ + (Im γ / 4) a²`, with damping `−(Re λ + (Re γ / 4) a²)`: for a mechanical
    system observed through a displacement, the backbone of its state `(y, ẏ)`, whatever
    the chart (delay coordinates or the full state).

    With damping (`Re λ ≠ 0`) the cubic coefficient depends on the coordinate: a resonant
    change `z → z + k z²z̄` shifts `γ` by `2 Re λ k`. A chart whose modal coordinate is a
    nonlinear function of `(y, ẏ)` (delay coordinates are: each is the observable a flow time
    later) gives a `γ` off by a term proportional to the damping; `chart_gamma` is that value
    (what this class reported before), kept for comparison.

    **Fields:**

    - `eigenvalue`: `λ` (the linear part's eigenvalue with `Im λ > 0`).
    - `gamma`: `γ`, the resonant cubic coefficient in the observable's phase-plane
      coordinate.
    - `coefficients`: `g_pq`, the coefficients of `z^p z̄^q` in `ż` in the chart's modal
      coordinate (`[M + 1, M + 1]`).
    - `chart_gamma`: the resonant cubic coefficient in the chart's own modal coordinate.
    - `observable`: the index of the observable that sets the amplitude (static).
    """

    eigenvalue: Complex[Array, ""]
    gamma: Complex[Array, ""]
    coefficients: Complex[Array, "m m"]
    chart_gamma: Complex[Array, ""]
    observable: int = eqx.field(static=True, default=0)

    @property
    def frequency_coefficient(self) -> Float[Array, ""]:
        """`Im γ / 4`: the backbone's frequency shift per squared amplitude."""
        return jnp.imag(self.gamma) / 4

    def backbone(self, amplitude: ArrayLike) -> tuple[Array, Array]:
        """`(frequency ω(a), damping rate)` at observable amplitudes `a`."""
        a = jnp.asarray(amplitude, jnp.real(self.gamma).dtype)
        rho2 = (a / 2) ** 2
        freq = jnp.imag(self.eigenvalue) + jnp.imag(self.gamma) * rho2
        damp = -(jnp.real(self.eigenvalue) + jnp.real(self.gamma) * rho2)
        return freq, damp

    def plot(self, amplitude_max: float = 1.0, ax=None, **kwargs):
        """Backbone curves: frequency and damping against amplitude."""
        from ._plot import plot_backbone

        return plot_backbone(self, amplitude_max=amplitude_max, ax=ax, **kwargs)

    def __repr__(self) -> str:
        try:
            lam, g = complex(self.eigenvalue), complex(self.gamma)
            return (f"NormalForm(λ = {lam.real:.6g} {lam.imag:+.6g}i, γ = {g.real:.6g} "
                    f"{g.imag:+.6g}i; ω(a) = {lam.imag:.6g} + {g.imag / 4:.6g} a², damping "
                    f"{-lam.real:.6g} + {-g.real / 4:.6g} a²)")
        except Exception:
            return eqx.tree_pformat(self)


def normal_form(model: SSM, *, observable: int = 0, p: ArrayLike | None = None) -> NormalForm:
    """The cubic normal form and backbone of a 2-D oscillatory SSM, in closed form.

    The fitted reduced flow is written in complex modal coordinates of its linear part
    (`η = v z + v̄ z̄`, with `v` scaled so that `observable`'s linear response is `z + z̄`);
    the coefficients `g_pq` of `z^p z̄^q` are read off exactly by a discrete Fourier transform
    on the torus `|z| = |z̄| = 1` (exact for a polynomial), and so are those of the
    observable on the manifold. A near-identity change of coordinates `z = ζ + h(ζ)` removes
    the quadratic and the non-resonant cubic terms, which gives the chart's resonant cubic
    coefficient `γ_c = g₂₁ + g₁₁g₂₀/λ + 2g₁₁g₂₀/λ̄ + |g₁₁|²/λ + 2|g₀₂|²/(2λ − λ̄)`. The
    modal coordinate of the observable's phase plane, `s = α y + β ẏ = ζ + k ζ²ζ̄ + …`
    (`β = 1/(λ − λ̄)`, `k = β (2λ c₂₁ + γ_c)` with `c₂₁` the `ζ²ζ̄` coefficient of the
    observable), then has `γ = γ_c + 2 Re λ k`: without this step a delay-embedded fit's
    backbone is off by a bias proportional to the damping (0.7 % at ζ = 0.02, 1.8 % at
    ζ = 0.05 for a Duffing oscillator). No optimisation is involved, so it vmaps over many
    models.

    **Arguments:**

    - `model`: a 2-D flow `SSM` whose linear part has a complex pair.
    - `observable`: the index of the (embedded) observable whose amplitude the backbone uses.
    - `p`: the parameter of a parameter-dependent model.

    **Returns:** a `NormalForm`.

    **Raises:** `ValueError` for a model that is not a 2-D flow, or a bad `observable`.

    Reference: J. Guckenheimer and P. Holmes, *Nonlinear Oscillations, Dynamical Systems, and
    Bifurcations of Vector Fields* (1983), §3.3; J. Axås, M. Cenedese and G. Haller, "Fast
    data-driven model reduction for nonlinear dynamical systems", Nonlinear Dynamics 111
    (2023) (the same cubic coefficient, fastSSM).
    """
    if model.dim != 2 or model.discrete or model.periodic:
        raise ValueError(f"`normal_form` needs a 2-D SSM of a flow; got dim={model.dim}, "
                         f"discrete={model.discrete}.")
    observable = check_int(observable, "observable", minimum=0)
    if observable >= model.anchor.shape[-1]:
        raise ValueError(f"`observable` must be < {model.anchor.shape[-1]}; got {observable}.")
    return _normal_form(model, observable, p)


@eqx.filter_jit
def _normal_form(model: SSM, observable: int, p) -> NormalForm:
    table = np.asarray(model.dynamics_table)
    table_w = np.asarray(model.manifold_table)
    dtype = model.R.dtype
    cdtype = jnp.complex128 if dtype == jnp.float64 else jnp.complex64
    mu = model._mu(p)
    mu_c = None if mu is None else jnp.asarray(mu, cdtype)
    # Linear part A (η' = A η + …) by differentiating at the origin.
    A = jax.jacfwd(lambda e: model.vector_field(e, p))(jnp.zeros(2, dtype))
    lam_all, vecs = jnp.linalg.eig(A)
    i = jnp.argmax(jnp.imag(lam_all))
    lam, v = lam_all[i], vecs[:, i]

    def obs(eta):
        # The observable over (complex) reduced coordinates, less its value at η = 0.
        lin = eta @ model.V[observable].astype(cdtype)
        return lin + feats.polynomial(table_w, eta, mu_c) @ model.W[:, observable].astype(
            cdtype)

    # Scale v so that the observable's linear response to z is 1: y_obs ≈ z + z̄ (the
    # linear part of the lift, with `free_linear` the fitted one).
    row = jax.jacfwd(lambda e: jnp.real(obs(e.astype(cdtype))))(jnp.zeros(2, dtype))
    v = v / (row.astype(cdtype) @ v)
    basis = jnp.stack([v, jnp.conj(v)], axis=1)
    w = jnp.linalg.inv(basis)[0]
    top = max(int(feats.degrees(table).max()), int(feats.degrees(table_w).max()), 3)
    m = top + 1
    ang = 2 * jnp.pi * jnp.arange(m, dtype=dtype) / m
    za = jnp.exp(1j * ang.astype(cdtype))
    a, b = jnp.meshgrid(za, za, indexing="ij")
    eta = a[..., None] * v[None, None, :] + b[..., None] * jnp.conj(v)[None, None, :]
    F = feats.polynomial(table, eta, mu_c) @ model.R.astype(cdtype) @ w
    # fft2 uses e^{-i k θ}: entry [p, q] is the coefficient of a^p b^q, i.e. of z^p z̄^q.
    g = jnp.fft.fft2(F) / (m * m)
    x = jnp.fft.fft2(obs(eta)) / (m * m)
    lamc = jnp.conj(lam)
    g20, g11, g02, g21, g12 = g[2, 0], g[1, 1], g[0, 2], g[2, 1], g[1, 2]
    # z = ζ + h(ζ) removes the quadratic terms and the non-resonant cubic ones.
    h20, h11, h02 = g20 / lam, g11 / lamc, g02 / (2 * lamc - lam)
    chart_gamma = (g21 + 2 * g20 * h11 + g11 * (jnp.conj(h11) + h20)
                   + 2 * g02 * jnp.conj(h02))
    h12 = (g12 + 2 * g20 * h02 + g11 * (jnp.conj(h20) + h11) + 2 * g02 * jnp.conj(h11)) / (
        2 * lamc)
    # The observable's ζ²ζ̄ coefficient, and that of its rate along the flow: the modal
    # coordinate s of the phase plane (y, ẏ) (linear in them, s = ζ + …) is ζ + k ζ²ζ̄ + …,
    # and a resonant change ζ → ζ + k ζ²ζ̄ shifts γ by 2 Re λ k.
    c21 = (x[2, 1] + 2 * x[2, 0] * h11 + x[1, 1] * (h20 + jnp.conj(h11))
           + 2 * x[0, 2] * jnp.conj(h02) + x[0, 1] * jnp.conj(h12))
    k = (2 * lam * c21 + chart_gamma) / (lam - lamc)
    gamma = chart_gamma + (2 * jnp.real(lam)).astype(cdtype) * k
    return NormalForm(eigenvalue=lam, gamma=gamma, coefficients=g, observable=observable,
                      chart_gamma=chart_gamma)
