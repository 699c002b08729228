"""Classic low-dimensional flows: Lorenz, Rössler, Van der Pol, Duffing, double gyre,
Brusselator."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._system import AbstractFlow
from .._validate import real_array
from ._common import primary
from ._trig import sincospi


class Lorenz(AbstractFlow):
    """The Lorenz system; see `jaxdyn.systems.lorenz`."""

    sigma: Float[Array, ""]
    rho: Float[Array, ""]
    beta: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 3

    def __call__(self, t, x, args):
        """`(σ(y − x), x(ρ − z) − y, xy − βz)` with `ρ = args` unless `args` is None."""
        rho = primary(args, self.rho, x, "lorenz", "rho")
        sigma, beta = self.sigma.astype(rho.dtype), self.beta.astype(rho.dtype)
        u, v, w = x
        return jnp.stack([sigma * (v - u), u * (rho - w) - v, u * v - beta * w])

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "3 3"]:
        """The origin and `C± = (±√(β(ρ−1)), ±√(β(ρ−1)), ρ−1)`, as rows; C± are NaN for ρ < 1.

        **Arguments:** `args`: ρ (None: the stored value).

        **Returns:** a `(3, 3)` array, rows origin, C+, C−.
        """
        rho = primary(args, self.rho, None, "lorenz", "rho")
        r = jnp.sqrt(self.beta.astype(rho.dtype) * (rho - 1))
        z = rho - 1
        zero = jnp.zeros_like(rho)
        return jnp.stack([jnp.stack([zero, zero, zero]), jnp.stack([r, r, z]),
                          jnp.stack([-r, -r, z])])


def lorenz(sigma: ArrayLike = 10.0, rho: ArrayLike = 28.0, beta: ArrayLike = 8.0 / 3.0) -> Lorenz:
    """The Lorenz system `ẋ = σ(y − x)`, `ẏ = x(ρ − z) − y`, `ż = xy − βz`, a 3-D flow.

    The defaults are Lorenz's chaotic parameters. `args` is ρ (a scalar), overriding the
    stored `rho` when not None: `lorenz()(t, x, 20.0) == lorenz(rho=20.0)(t, x, None)`.
    `equilibria(args)` gives the closed-form equilibria.

    **Arguments:**

    - `sigma`: the Prandtl number σ (default 10).
    - `rho`: the Rayleigh number ρ (default 28), the primary parameter.
    - `beta`: the geometric factor β (default 8/3).

    **Returns:** a `Flow` on `(x, y, z)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar.

    Reference: E. N. Lorenz, "Deterministic nonperiodic flow", J. Atmos. Sci. 20 (1963).
    """
    return Lorenz(sigma=real_array(sigma, "sigma", "lorenz"), rho=real_array(rho, "rho", "lorenz"),
                  beta=real_array(beta, "beta", "lorenz"))


class Rossler(AbstractFlow):
    """The Rössler system; see `jaxdyn.systems.rossler`."""

    a: Float[Array, ""]
    b: Float[Array, ""]
    c: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 3

    def __call__(self, t, x, args):
        """`(−y − z, x + ay, b + z(x − c))` with `c = args` unless `args` is None."""
        c = primary(args, self.c, x, "rossler", "c")
        a, b = self.a.astype(c.dtype), self.b.astype(c.dtype)
        u, v, w = x
        return jnp.stack([-v - w, u + a * v, b + w * (u - c)])

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "2 3"]:
        """The two equilibria `(az, −z, z)`, `z = (c ∓ √(c² − 4ab)) / (2a)` (NaN if c² < 4ab).

        **Arguments:** `args`: c (None: the stored value).

        **Returns:** a `(2, 3)` array, the equilibrium near the origin first.
        """
        c = primary(args, self.c, None, "rossler", "c")
        a, b = self.a.astype(c.dtype), self.b.astype(c.dtype)
        root = jnp.sqrt(c * c - 4 * a * b)
        z = jnp.stack([c - root, c + root]) / (2 * a)
        return jnp.stack([a * z, -z, z], axis=-1)


def rossler(a: ArrayLike = 0.2, b: ArrayLike = 0.2, c: ArrayLike = 5.7) -> Rossler:
    """The Rössler system `ẋ = −y − z`, `ẏ = x + ay`, `ż = b + z(x − c)`, a 3-D flow.

    The defaults give Rössler's chaotic attractor. `args` is `c` (a scalar), overriding the
    stored `c` when not None.

    **Arguments:**

    - `a`, `b`: the parameters a, b (default 0.2, 0.2); `a` must be nonzero.
    - `c`: the parameter c (default 5.7), the primary parameter.

    **Returns:** a `Flow` on `(x, y, z)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar, or `a` is 0.

    Reference: O. E. Rössler, "An equation for continuous chaos", Phys. Lett. A 57 (1976).
    """
    return Rossler(a=real_array(a, "a", "rossler", nonzero=True),
                   b=real_array(b, "b", "rossler"), c=real_array(c, "c", "rossler"))


class VanDerPol(AbstractFlow):
    """The Van der Pol oscillator; see `jaxdyn.systems.van_der_pol`."""

    mu: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 2

    def __call__(self, t, x, args):
        """`(y, μ(1 − x²)y − x)` with `μ = args` unless `args` is None."""
        mu = primary(args, self.mu, x, "van_der_pol", "mu")
        u, v = x
        return jnp.stack([v, mu * (1 - u * u) * v - u])

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "1 2"]:
        """The only equilibrium, the origin, as a `(1, 2)` array."""
        mu = primary(args, self.mu, None, "van_der_pol", "mu")
        return jnp.zeros((1, 2), mu.dtype)


def van_der_pol(mu: ArrayLike = 1.0) -> VanDerPol:
    """The Van der Pol oscillator `ẋ = y`, `ẏ = μ(1 − x²)y − x`, a 2-D flow.

    For μ > 0 the origin is unstable and a stable limit cycle surrounds it; the origin goes
    through a Hopf bifurcation at μ = 0. `args` is μ (a scalar), overriding the stored `mu`
    when not None.

    **Arguments:**

    - `mu`: the damping parameter μ (default 1), the primary parameter.

    **Returns:** a `Flow` on `(x, y)`.

    **Raises:** `ValueError` if `mu` is not a finite real scalar.

    Reference: B. van der Pol, "On relaxation-oscillations", Phil. Mag. 2 (1926).
    """
    return VanDerPol(mu=real_array(mu, "mu", "van_der_pol"))


class Duffing(AbstractFlow):
    """The forced Duffing oscillator; see `jaxdyn.systems.duffing`."""

    delta: Float[Array, ""]
    alpha: Float[Array, ""]
    beta: Float[Array, ""]
    gamma: Float[Array, ""]
    omega: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 2

    @property
    def period(self) -> Array:
        """The forcing period `2π/ω` (the stroboscopic / Poincaré-map time step)."""
        return 2 * math.pi / self.omega

    def __call__(self, t, x, args):
        """`(v, −δv − αx − βx³ + γ cos ωt)` with `γ = args` unless `args` is None."""
        gamma = primary(args, self.gamma, x, "duffing", "gamma (the forcing amplitude)")
        dt = gamma.dtype
        delta, alpha, beta = (p.astype(dt) for p in (self.delta, self.alpha, self.beta))
        u, v = x
        force = gamma * jnp.cos(self.omega.astype(dt) * t)
        return jnp.stack([v, -delta * v - alpha * u - beta * u * u * u + force])


def duffing(delta: ArrayLike = 0.3, alpha: ArrayLike = -1.0, beta: ArrayLike = 1.0,
            gamma: ArrayLike = 0.5, omega: ArrayLike = 1.2) -> Duffing:
    """The forced Duffing oscillator `ẍ + δẋ + αx + βx³ = γ cos(ωt)` as a 2-D flow on `(x, ẋ)`.

    Time-dependent (periodically forced); the defaults (a double well, α < 0 < β) give the
    classic chaotic response. `args` is the forcing amplitude γ (a scalar), overriding the
    stored `gamma` when not None. `period` is the forcing period 2π/ω.

    **Arguments:**

    - `delta`: damping δ (default 0.3).
    - `alpha`: linear stiffness α (default −1).
    - `beta`: cubic stiffness β (default 1).
    - `gamma`: forcing amplitude γ (default 0.5), the primary parameter.
    - `omega`: forcing frequency ω (default 1.2, > 0).

    **Returns:** a `Flow` on `(x, v)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar or `omega <= 0`.

    Reference: G. Duffing (1918); J. Guckenheimer & P. Holmes, *Nonlinear Oscillations,
    Dynamical Systems, and Bifurcations of Vector Fields* (1983), §2.2.
    """
    return Duffing(delta=real_array(delta, "delta", "duffing"),
                   alpha=real_array(alpha, "alpha", "duffing"),
                   beta=real_array(beta, "beta", "duffing"),
                   gamma=real_array(gamma, "gamma", "duffing"),
                   omega=real_array(omega, "omega", "duffing", positive=True))


class DoubleGyre(AbstractFlow):
    """The time-periodic double gyre; see `jaxdyn.systems.double_gyre`."""

    A: Float[Array, ""]
    epsilon: Float[Array, ""]
    omega: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 2

    def _coefficients(self, t, args, x):
        eps = primary(args, self.epsilon, x, "double_gyre", "epsilon")
        # sin(ωt) as sin(π·(ω/π)t): sincospi is vectorised where XLA's float64 sin is not.
        s = eps * sincospi(self.omega.astype(eps.dtype) / jnp.pi * t)[0]
        return self.A.astype(eps.dtype), s

    def stream_function(self, t, x, args=None) -> Array:
        """`ψ(t, x, y) = A sin(π f(x, t)) sin(π y)`, `f = ε sin(ωt) x² + (1 − 2ε sin(ωt)) x`."""
        A, s = self._coefficients(t, args, x)
        u, v = x
        f = s * u * u + (1 - 2 * s) * u
        return A * sincospi(f)[0] * sincospi(v)[0]

    def __call__(self, t, x, args):
        """The velocity `(−∂ψ/∂y, ∂ψ/∂x)` with `ε = args` unless `args` is None."""
        A, s = self._coefficients(t, args, x)
        u, v = x
        f = s * u * u + (1 - 2 * s) * u
        dfdx = 2 * s * u + 1 - 2 * s
        sin_f, cos_f = sincospi(f)
        sin_v, cos_v = sincospi(v)
        return jnp.stack([-jnp.pi * A * sin_f * cos_v, jnp.pi * A * cos_f * sin_v * dfdx])


def double_gyre(A: ArrayLike = 0.1, epsilon: ArrayLike = 0.25,
                omega: ArrayLike = 0.2 * math.pi) -> DoubleGyre:
    """The time-periodic double gyre, a 2-D incompressible flow on `[0, 2] × [0, 1]`.

    `u = −πA sin(πf) cos(πy)`, `v = πA cos(πf) sin(πy) ∂f/∂x` with
    `f(x, t) = ε sin(ωt) x² + (1 − 2ε sin(ωt)) x`: two counter-rotating gyres whose dividing
    line oscillates about `x = 1` with amplitude ~ε and period `2π/ω`. The standard test case
    for finite-time Lyapunov exponents and Lagrangian coherent structures. `args` is ε (a
    scalar), overriding the stored `epsilon` when not None. `stream_function(t, x, args)`
    returns ψ.

    **Arguments:**

    - `A`: velocity amplitude (default 0.1).
    - `epsilon`: oscillation amplitude ε (default 0.25), the primary parameter.
    - `omega`: angular frequency ω (default 2π/10).

    **Returns:** a time-dependent `Flow` on `(x, y)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar.

    Reference: S. C. Shadden, F. Lekien & J. E. Marsden, "Definition and properties of
    Lagrangian coherent structures from finite-time Lyapunov exponents in two-dimensional
    aperiodic flows", Physica D 212 (2005).
    """
    return DoubleGyre(A=real_array(A, "A", "double_gyre"),
                      epsilon=real_array(epsilon, "epsilon", "double_gyre"),
                      omega=real_array(omega, "omega", "double_gyre"))


class Brusselator(AbstractFlow):
    """The Brusselator; see `jaxdyn.systems.brusselator`."""

    a: Float[Array, ""]
    b: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 2

    def __call__(self, t, x, args):
        """`(a − (b + 1)x + x²y, bx − x²y)` with `b = args` unless `args` is None."""
        b = primary(args, self.b, x, "brusselator", "b")
        a = self.a.astype(b.dtype)
        u, v = x
        uuv = u * u * v
        return jnp.stack([a - (b + 1) * u + uuv, b * u - uuv])

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "1 2"]:
        """The unique equilibrium `(a, b/a)` as a `(1, 2)` array (`args`: b)."""
        b = primary(args, self.b, None, "brusselator", "b")
        a = self.a.astype(b.dtype)
        return jnp.stack([a, b / a])[None]

    def hopf_parameter(self) -> Array:
        """The value `b = 1 + a²` at which the equilibrium loses stability in a Hopf
        bifurcation (supercritical), with eigenvalues `±i·a` there."""
        return 1 + self.a * self.a


def brusselator(a: ArrayLike = 1.0, b: ArrayLike = 3.0) -> Brusselator:
    """The Brusselator `ẋ = a − (b + 1)x + x²y`, `ẏ = bx − x²y`, a 2-D flow.

    Its equilibrium `(a, b/a)` is stable for `b < 1 + a²` and goes through a supercritical Hopf
    bifurcation at `b = 1 + a²`; the defaults (a = 1, b = 3) are past it, on a limit cycle.
    `args` is b (a scalar), overriding the stored `b` when not None.

    **Arguments:**

    - `a`: the parameter a (default 1, > 0).
    - `b`: the parameter b (default 3), the primary parameter.

    **Returns:** a `Flow` on `(x, y)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar or `a <= 0`.

    Reference: I. Prigogine & R. Lefever, "Symmetry breaking instabilities in dissipative
    systems. II", J. Chem. Phys. 48 (1968).
    """
    return Brusselator(a=real_array(a, "a", "brusselator", positive=True),
                       b=real_array(b, "b", "brusselator"))
