"""Test functions: the scalars whose sign change along a curve brackets a special point, and
how each special point is then located by Newton on a minimally augmented system.

On a branch of equilibria: `Fold` (the tangent's parameter component), `BranchPoint` (the
determinant of the bordered Jacobian `[H_y; τᵀ]`), `Hopf` (flows) and `NeimarkSacker` (maps)
(the sign of the bialternate-product determinant), `Flip` (maps; `det(J + I)`). On a fold
curve: `Cusp` (the fold's quadratic coefficient) and `BogdanovTakens` (`⟨w, v⟩`); on a Hopf
curve: `BogdanovTakens` (`κ = ω²` through zero).

Every test is evaluated at each accepted point inside the traced loop; a sign change between
two points records an event, and the events are refined after the loop, in one `vmap`.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._newton import LevenbergMarquardt, Newton, NewtonResult, newton_solve
from ._curves import (
    AbstractCurve,
    EquilibriumCurve,
    FoldCurve,
    HopfCurve,
    bordered_g,
    pair_matrix,
)
from ._forms import (
    bialternate_sign,
    flip_coefficient,
    fold_coefficient,
    form,
    hopf_coefficient,
)

#: The name of each bifurcation kind code (`Bifurcations.kind`); 0 marks an empty slot.
KIND_NAMES = ("", "fold", "hopf", "branch point", "flip", "neimark-sacker", "cusp",
              "bogdanov-takens")


class PointInfo(eqx.Module):
    """What the test functions see at an accepted point."""

    y: Array
    tau: Array
    hy: Array  # ∂H/∂y, m × (m+1)
    jac: Array  # the system's state Jacobian
    eigs: Array


class AbstractTestFunction(eqx.Module):
    """A test function for one kind of special point.

    Final subclasses set `kind` and implement `value` (evaluated at every point), `locate`
    (Newton on a minimally augmented system from a guess between two bracketing points) and
    optionally `coefficient` (the normal-form coefficient at the located point).
    """

    kind: ClassVar[int]
    curves: ClassVar[tuple[type, ...]]
    discrete: ClassVar[tuple[bool, ...]] = (False, True)
    # Fire only where the branch stays regular (`det [H_y; τᵀ]` keeps its sign): a branch
    # that bends through a branch point (a pitchfork's) turns in the parameter there
    # without a fold.
    regular_only: ClassVar[bool] = False
    # Fire only where the number of unstable eigenvalues changes (Hopf, Neimark–Sacker: the
    # bialternate product also changes sign at neutral saddles, where none crosses).
    crossing_only: ClassVar[bool] = False

    @abc.abstractmethod
    def value(self, curve: AbstractCurve, info: PointInfo, data: PyTree) -> Array:
        """The test function at a point."""

    @abc.abstractmethod
    def locate(self, curve: AbstractCurve, y: Array, info: PointInfo, tol: Array,
               max_steps: int) -> tuple[Array, Array, NewtonResult]:
        """Newton from the guess `y`: returns the located `y`, an extra scalar (ω for Hopf,
        the angle θ for Neimark–Sacker, else NaN) and the Newton result."""

    def coefficient(self, curve: AbstractCurve, x: Array, ps: Array, jac: Array,
                    extra: Array) -> Array:
        """The normal-form coefficient at the located point (NaN when none is defined)."""
        return jnp.full((), jnp.nan, x.dtype)

    def accept(self, curve: AbstractCurve, y: Array, extra: Array) -> Array:
        """Whether a located point is a genuine one of this kind (e.g. κ > 0 for Hopf)."""
        return jnp.ones((), bool)


def _nan(like: Array) -> Array:
    return jnp.full((), jnp.nan, like.dtype)


def _sign_det(a: Array) -> Array:
    return jnp.linalg.slogdet(a)[0].real


# --- equilibria: fold and flip share the minimally augmented system (f, g) -----------------


def _singular_residual(z, a):
    curve, b, c, shift = a
    n = curve.size
    x, ps = z[:n], z[n:]
    jac = curve.state_jacobian(x, ps)
    g = bordered_g(jac - shift * jnp.eye(n, dtype=jac.dtype), b, c)
    return jnp.concatenate([curve.equation(x, ps), g[0]])


def _locate_singular(curve, y, info, tol, max_steps, shift):
    n = curve.size
    mat = info.jac - shift * jnp.eye(n, dtype=info.jac.dtype)
    u, _, vh = jnp.linalg.svd(mat)
    b, c = jax.lax.stop_gradient((u[:, -1:], vh[-1][:, None]))
    sol = newton_solve(_singular_residual, y, (curve, b, c, jnp.asarray(shift, y.dtype)),
                       tol=tol, max_steps=max_steps, solver=Newton())
    return sol.x, _nan(y), sol


class Fold(AbstractTestFunction):
    """A fold (saddle-node, limit point): the branch turns back in the parameter; one real
    eigenvalue through 0 (a multiplier through +1 for maps). Located on `(f, g)` with `g`
    the bordered test function of `J` (`J − I`); its coefficient is the quadratic normal-form
    coefficient `a = ½⟨p, B(q, q)⟩`."""

    kind: ClassVar[int] = 1
    curves: ClassVar[tuple[type, ...]] = (EquilibriumCurve,)
    regular_only: ClassVar[bool] = True

    def value(self, curve, info, data):
        return info.tau[curve.size]

    def locate(self, curve, y, info, tol, max_steps):
        return _locate_singular(curve, y, info, tol, max_steps,
                                1.0 if curve.system.discrete else 0.0)

    def coefficient(self, curve, x, ps, jac, extra):
        return fold_coefficient(lambda z: curve.field(z, ps), x, jac,
                                1.0 if curve.system.discrete else 0.0)


class Flip(AbstractTestFunction):
    """A flip (period doubling) of a map: a multiplier through −1. Located on `(F − x, g)`
    with `g` the bordered test function of `J + I`; its coefficient is the cubic normal-form
    coefficient `c` of `η ↦ −η + cη³` (`c > 0`: supercritical)."""

    kind: ClassVar[int] = 4
    curves: ClassVar[tuple[type, ...]] = (EquilibriumCurve,)
    discrete: ClassVar[tuple[bool, ...]] = (True,)

    def value(self, curve, info, data):
        return _sign_det(info.jac + jnp.eye(info.jac.shape[0], dtype=info.jac.dtype))

    def locate(self, curve, y, info, tol, max_steps):
        return _locate_singular(curve, y, info, tol, max_steps, -1.0)

    def coefficient(self, curve, x, ps, jac, extra):
        return flip_coefficient(lambda z: curve.field(z, ps), x, jac)


# --- branch points ------------------------------------------------------------------------


def _bp_residual(z, a):
    curve, b, c = a
    hy = jax.jacfwd(lambda w: curve.residual(w, None))(z)
    # `H_y` is m × (m+1), bordered by b (m × 1) and c ((m+1) × 2): G (1 × 2) vanishes at a
    # simple branch point, where `H_y` has a two-dimensional null space.
    g = bordered_g(hy, b, c)
    return jnp.concatenate([curve.residual(z, None), g.reshape(-1)])


class BranchPoint(AbstractTestFunction):
    """A branch point: another branch of equilibria crosses this one (transcritical, or a
    pitchfork in a symmetric system); `H_y` loses rank. Detected by the sign of
    `det [H_y; τᵀ]`, located by Gauss–Newton on `(H, G)` with `G` the 1 × 2 block of the
    bordered `H_y`. Switch onto the other branch with `jd.switch_branch`."""

    kind: ClassVar[int] = 3
    curves: ClassVar[tuple[type, ...]] = (EquilibriumCurve,)

    def value(self, curve, info, data):
        return _sign_det(jnp.concatenate([info.hy, info.tau[None]]))

    def locate(self, curve, y, info, tol, max_steps):
        u, _, vh = jnp.linalg.svd(info.hy)
        b, c = jax.lax.stop_gradient((u[:, -1:], vh[-2:].T))
        sol = newton_solve(_bp_residual, y, (curve, b, c), tol=tol, max_steps=max_steps,
                           solver=LevenbergMarquardt())
        return sol.x, _nan(y), sol


# --- Hopf and Neimark–Sacker: a complex pair on the imaginary axis / unit circle -----------


def _pair_residual(z, a):
    curve, b, c = a
    n = curve.size
    x, p, kappa = z[:n], z[n:n + 1], z[n + 1]
    mat = pair_matrix(curve.state_jacobian(x, p), kappa, curve.system.discrete)
    g = bordered_g(mat, b, c)
    return jnp.concatenate([curve.equation(x, p), g.reshape(-1)])


def _locate_pair(curve, y, info, tol, max_steps, discrete):
    eigs = info.eigs
    complex_ = jnp.abs(jnp.imag(eigs)) > 1e-8 * (1 + jnp.abs(eigs))
    if discrete:
        dist = jnp.abs(jnp.abs(eigs) - 1)
    else:
        dist = jnp.abs(jnp.real(eigs))
    k = jnp.argmin(jnp.where(complex_, dist, jnp.inf))
    lam = eigs[k]
    kappa0 = jnp.where(discrete, 2 * jnp.real(lam) / jnp.maximum(jnp.abs(lam), 1e-30),
                       jnp.imag(lam) ** 2)
    kappa0 = kappa0.astype(y.dtype)
    z0 = jnp.concatenate([y, kappa0[None]])
    u, _, vh = jnp.linalg.svd(pair_matrix(info.jac, kappa0, discrete))
    b, c = jax.lax.stop_gradient((u[:, -2:], vh[-2:].T))
    sol = newton_solve(_pair_residual, z0, (curve, b, c), tol=tol, max_steps=max_steps,
                       solver=LevenbergMarquardt())
    kappa = sol.x[-1]
    found = jnp.any(complex_)
    if discrete:
        extra = jnp.arccos(jnp.clip(kappa / 2, -1.0, 1.0))
    else:
        extra = jnp.sqrt(jnp.maximum(kappa, 0.0))
    extra = jnp.where(found, extra, jnp.nan)
    return sol.x[:-1], extra, sol


class Hopf(AbstractTestFunction):
    """A Hopf point of a flow: a complex pair `±iω` crosses the imaginary axis. Detected by
    the bialternate-product sign, located by Gauss–Newton on `(f, G)` with `G` the 2 × 2
    block of the bordered `J² + κI` (`κ = ω²`); neutral saddles (κ < 0) are discarded. Its
    coefficient is the first Lyapunov coefficient ℓ₁ (`ℓ₁ > 0`: subcritical)."""

    kind: ClassVar[int] = 2
    curves: ClassVar[tuple[type, ...]] = (EquilibriumCurve,)
    discrete: ClassVar[tuple[bool, ...]] = (False,)
    crossing_only: ClassVar[bool] = True

    def value(self, curve, info, data):
        return bialternate_sign(info.eigs, False)

    def locate(self, curve, y, info, tol, max_steps):
        return _locate_pair(curve, y, info, tol, max_steps, False)

    def coefficient(self, curve, x, ps, jac, extra):
        return hopf_coefficient(lambda z: curve.field(z, ps), x, jac, extra)

    def accept(self, curve, y, extra):
        return jnp.isfinite(extra) & (extra > 0)


class NeimarkSacker(AbstractTestFunction):
    """A Neimark–Sacker point of a map: a complex pair `e^{±iθ}` crosses the unit circle.
    Located like `Hopf`, with the matrix `J² − κJ + I` (`κ = 2 cos θ`); the reported extra
    value is θ. (No normal-form coefficient is computed.)"""

    kind: ClassVar[int] = 5
    curves: ClassVar[tuple[type, ...]] = (EquilibriumCurve,)
    discrete: ClassVar[tuple[bool, ...]] = (True,)
    crossing_only: ClassVar[bool] = True

    def value(self, curve, info, data):
        return bialternate_sign(info.eigs, True)

    def locate(self, curve, y, info, tol, max_steps):
        return _locate_pair(curve, y, info, tol, max_steps, True)

    def accept(self, curve, y, extra):
        return jnp.isfinite(extra) & (extra > 0) & (extra < jnp.pi)


# --- codimension two ----------------------------------------------------------------------


def _codim2_residual(z, a):
    test, curve, data = a
    return jnp.concatenate([curve.residual(z, data), test.smooth(curve, z, data)[None]])


class _AbstractCodim2(AbstractTestFunction):
    """A codimension-two point on a curve of codimension-one points: located by Newton on
    `(H, ψ)` with the smooth test function ψ."""

    @abc.abstractmethod
    def smooth(self, curve, y, data) -> Array:
        """The test function as a smooth function of `y` (for Newton)."""

    def value(self, curve, info, data):
        return self.smooth(curve, info.y, data)

    def locate(self, curve, y, info, tol, max_steps):
        data = jax.lax.stop_gradient(curve.initial_data(y))
        sol = newton_solve(_codim2_residual, y, (self, curve, data), tol=tol,
                           max_steps=max_steps, solver=Newton())
        return sol.x, _nan(y), sol


class Cusp(_AbstractCodim2):
    """A cusp on a fold curve: the fold's quadratic coefficient `⟨w, B(v, v)⟩` vanishes."""

    kind: ClassVar[int] = 6
    curves: ClassVar[tuple[type, ...]] = (FoldCurve,)

    def smooth(self, curve, y, data):
        n = curve.size
        x, ps = y[:n], y[n:n + 2]
        v, w = curve.null_vectors(y, data)
        return jnp.dot(w, form(lambda z: curve.field(z, ps), x, v, v))


class BogdanovTakens(_AbstractCodim2):
    """A Bogdanov–Takens point: a double zero eigenvalue. On a fold curve `⟨w, v⟩` (left and
    right null vectors) vanishes; on a Hopf curve `κ = ω²` passes through zero."""

    kind: ClassVar[int] = 7
    curves: ClassVar[tuple[type, ...]] = (FoldCurve, HopfCurve)
    discrete: ClassVar[tuple[bool, ...]] = (False,)

    def smooth(self, curve, y, data):
        if isinstance(curve, HopfCurve):
            return y[-1]
        v, w = curve.null_vectors(y, data)
        return jnp.dot(w, v) / (jnp.linalg.norm(w) * jnp.linalg.norm(v))
