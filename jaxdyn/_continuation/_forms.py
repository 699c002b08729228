"""Multilinear forms of a vector field and the normal-form coefficients of its bifurcations.

The derivatives `B(u, v) = D²f(x)[u, v]` and `C(u, v, w) = D³f(x)[u, v, w]` come from nested
forward-mode autodiff (`jax.jvp` of `jax.jvp`); complex vectors are expanded into their real
and imaginary parts by multilinearity. Formulas follow Y. A. Kuznetsov, *Elements of Applied
Bifurcation Theory*, 3rd ed. (2004): §3.5 (fold), §3.5/§5.4 (Hopf, the first Lyapunov
coefficient ℓ₁), §4.5/§5.4 (flip).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array


def _real_form(f: Callable, x: Array, vecs: tuple[Array, ...]) -> Array:
    """`Dᵏf(x)[v₁, …, v_k]` for real vectors, by nested `jvp`."""
    if not vecs:
        return f(x)
    head, rest = vecs[0], vecs[1:]
    return jax.jvp(lambda y: _real_form(f, y, rest), (x,), (head,))[1]


def form(f: Callable, x: Array, *vecs: Array) -> Array:
    """The symmetric multilinear form `Dᵏf(x)[v₁, …, v_k]` for real vectors `vᵢ` (complex
    ones are expanded into real and imaginary parts by the callers)."""
    return _real_form(f, x, vecs)


def _complex(dtype):
    return jnp.complex128 if jnp.dtype(dtype) == jnp.float64 else jnp.complex64


def _dot(p: Array, v: Array) -> Array:
    """`⟨p, v⟩ = p̄ᵀ v`."""
    return jnp.sum(jnp.conj(p) * v)


def null_pair(a: Array) -> tuple[Array, Array]:
    """Unit right and left singular vectors of `a`'s smallest singular value, the left one
    scaled so that `⟨p, q⟩ = 1` where that is possible."""
    u, _, vh = jnp.linalg.svd(a)
    q, p = vh[-1], u[:, -1]
    s = _dot(p, q)
    return q, p / jnp.where(jnp.abs(s) > 0, s, 1.0)


def fold_coefficient(f: Callable, x: Array, jac: Array, shift: float) -> Array:
    """The fold's quadratic coefficient `a = ½⟨p, B(q, q)⟩`, with `(J − shift·I) q = 0`,
    `‖q‖ = 1`, `(J − shift·I)ᵀ p = 0`, `⟨p, q⟩ = 1` (shift 0 for flows, 1 for maps)."""
    q, p = null_pair(jac - shift * jnp.eye(jac.shape[0], dtype=jac.dtype))
    return 0.5 * jnp.real(_dot(p, form(f, x, q, q)))


def flip_coefficient(f: Callable, x: Array, jac: Array) -> Array:
    """The flip's cubic coefficient `c = ⅙⟨p, C(q,q,q)⟩ + ½⟨p, B(q, (I − J)⁻¹B(q,q))⟩` with
    `Jq = −q`: the normal form `η ↦ −η + cη³`; `c > 0` is supercritical (a stable period-2
    cycle is born as the fixed point loses stability)."""
    eye = jnp.eye(jac.shape[0], dtype=jac.dtype)
    q, p = null_pair(jac + eye)
    bqq = form(f, x, q, q)
    h = jnp.linalg.solve(eye - jac, bqq)
    return jnp.real(_dot(p, form(f, x, q, q, q)) / 6 + 0.5 * _dot(p, form(f, x, q, h)))


def _null(a: Array) -> Array:
    """A unit null vector of the complex matrix `a` (its smallest singular direction)."""
    _, _, vh = jnp.linalg.svd(a)
    return jnp.conj(vh[-1])


def hopf_coefficient(f: Callable, x: Array, jac: Array, omega: Array) -> Array:
    """The first Lyapunov coefficient ℓ₁ at a Hopf point with eigenvalues `±iω`:

    `ℓ₁ = Re[⟨p, C(q,q,q̄)⟩ − 2⟨p, B(q, J⁻¹B(q,q̄))⟩ + ⟨p, B(q̄, (2iω − J)⁻¹B(q,q))⟩] / (2ω)`

    with `Jq = iωq`, `‖q‖ = 1`, `Jᵀp = −iωp`, `⟨p, q⟩ = 1`. `ℓ₁ < 0`: supercritical (a stable
    cycle), `ℓ₁ > 0`: subcritical.
    """
    n = jac.shape[0]
    ctype = _complex(jac.dtype)
    eye = jnp.eye(n, dtype=ctype)
    cjac = jac.astype(ctype)
    iw = jnp.asarray(1j, ctype) * omega.astype(ctype)
    q = _null(cjac - iw * eye)
    q = q / jnp.linalg.norm(q).astype(ctype)
    p = _null(cjac.T + iw * eye)
    p = p / jnp.conj(_dot(p, q))
    # Every form is expanded into real directions by multilinearity and symmetry (q = u + iv),
    # which halves the nested derivatives a complex expansion would take.
    u, v = jnp.real(q), jnp.imag(q)
    b2 = lambda s_, t_: _real_form(f, x, (s_, t_))
    c3 = lambda r_, s_, t_: _real_form(f, x, (r_, s_, t_))
    buu, buv, bvv = b2(u, u), b2(u, v), b2(v, v)
    cplx = lambda re, im: re.astype(ctype) + jnp.asarray(1j, ctype) * im.astype(ctype)
    bqq = cplx(buu - bvv, 2 * buv)  # B(q, q)
    bqqb = buu + bvv  # B(q, q̄), real
    a = jnp.linalg.solve(jac, bqqb)
    b = jnp.linalg.solve(2 * iw * eye - cjac, bqq)
    bqa = cplx(b2(u, a), b2(v, a))  # B(q, a)
    br_, bi_ = jnp.real(b), jnp.imag(b)
    bqb = cplx(b2(u, br_) + b2(v, bi_), b2(u, bi_) - b2(v, br_))  # B(q̄, b)
    cuuv = c3(u, u, v)
    cqqqb = cplx(c3(u, u, u) + c3(u, v, v), cuuv + c3(v, v, v))  # C(q, q, q̄)
    total = _dot(p, cqqqb) - 2 * _dot(p, bqa) + _dot(p, bqb)
    return jnp.real(total) / (2 * omega)


def bialternate_sign(eigs: Array, discrete: bool) -> Array:
    """The sign of `∏_{i<j}(λᵢ + λⱼ)` (flows) or `∏_{i<j}(λᵢλⱼ − 1)` (maps): the determinant
    of the bialternate product, which changes sign where a pair of eigenvalues crosses the
    imaginary axis (the unit circle), i.e. at Hopf (Neimark–Sacker) points and at neutral
    saddles, but not where a complex pair turns into two real eigenvalues.

    For a real matrix the factors that involve a complex eigenvalue and anything but its own
    conjugate come in conjugate pairs, whose products are positive; so the sign is that of
    the factors over pairs of real eigenvalues and over conjugate pairs (`2 Re λ`, or
    `|μ|² − 1`): a count of negative real numbers, with no products that could overflow."""
    n = eigs.shape[0]
    re, im = jnp.real(eigs), jnp.imag(eigs)
    scale = 1e-10 * (1.0 + jnp.max(jnp.abs(eigs)))
    real = jnp.abs(im) <= scale
    upper = jnp.triu(jnp.ones((n, n), bool), k=1)
    both_real = upper & real[:, None] & real[None, :]
    if discrete:
        pair = re[:, None] * re[None, :] - 1
        conj = re * re + im * im - 1
    else:
        pair = re[:, None] + re[None, :]
        conj = 2 * re
    negative = jnp.sum(both_real & (pair < 0)) + jnp.sum((im > scale) & (conj < 0))
    return jnp.where(negative % 2 == 0, 1.0, -1.0).astype(re.dtype)
