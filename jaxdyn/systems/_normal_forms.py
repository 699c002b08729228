"""Normal forms of the codimension-one and -two local bifurcations: saddle-node, pitchfork,
cusp and Hopf."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._system import AbstractFlow
from .._validate import real_array
from ._common import primary


class SaddleNode(AbstractFlow):
    """The saddle-node normal form; see `jaxdyn.systems.saddle_node`."""

    r: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 1

    def __call__(self, t, x, args):
        """`r + x²` with `r = args` unless `args` is None."""
        r = primary(args, self.r, x, "saddle_node", "r")
        return r + x * x

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "2 1"]:
        """The equilibria `−√(−r)` (stable) and `+√(−r)` (unstable), as rows of a `(2, 1)`
        array; NaN for `r > 0`, where there are none."""
        r = primary(args, self.r, None, "saddle_node", "r")
        root = jnp.sqrt(-r)
        return jnp.stack([-root, root])[:, None]


def saddle_node(r: ArrayLike = -1.0) -> SaddleNode:
    """The saddle-node (fold) normal form `ẋ = r + x²`, a 1-D flow.

    For `r < 0` a stable equilibrium `−√(−r)` and an unstable one `+√(−r)`; they collide at
    the fold `r = 0` and vanish for `r > 0`. `args` is r (a scalar), overriding the stored `r`
    when not None.

    **Arguments:**

    - `r`: the unfolding parameter (default −1), the primary parameter.

    **Returns:** a `Flow` on the 1-D state `(x,)`.

    **Raises:** `ValueError` if `r` is not a finite real scalar.

    Reference: S. H. Strogatz, *Nonlinear Dynamics and Chaos* (1994), §3.1.
    """
    return SaddleNode(r=real_array(r, "r", "saddle_node"))


class Pitchfork(AbstractFlow):
    """The pitchfork normal form; see `jaxdyn.systems.pitchfork`."""

    r: Float[Array, ""]
    subcritical: bool = eqx.field(static=True)

    @property
    def state_size(self) -> int:
        return 1

    def __call__(self, t, x, args):
        """`rx − x³` (supercritical) or `rx + x³` (subcritical), with `r = args` unless None."""
        r = primary(args, self.r, x, "pitchfork", "r")
        cubic = x * x * x
        return r * x + cubic if self.subcritical else r * x - cubic

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "3 1"]:
        """The equilibria `0, −√(±r), +√(±r)` (`+r` supercritical, `−r` subcritical), as rows
        of a `(3, 1)` array; the outer pair is NaN where it does not exist."""
        r = primary(args, self.r, None, "pitchfork", "r")
        root = jnp.sqrt(-r if self.subcritical else r)
        return jnp.stack([jnp.zeros_like(r), -root, root])[:, None]


def pitchfork(r: ArrayLike = 1.0, *, subcritical: bool = False) -> Pitchfork:
    """The pitchfork normal form `ẋ = rx − x³` (or `ẋ = rx + x³` when `subcritical`), 1-D.

    Supercritical: the origin is stable for `r < 0` and for `r > 0` hands its stability to the
    pair `±√r`. Subcritical: the unstable pair `±√(−r)` (for `r < 0`) closes onto the origin at
    `r = 0`. `args` is r (a scalar), overriding the stored `r` when not None.

    **Arguments:**

    - `r`: the unfolding parameter (default 1), the primary parameter.
    - `subcritical`: use the subcritical form (default False, supercritical).

    **Returns:** a `Flow` on the 1-D state `(x,)`.

    **Raises:** `ValueError` if `r` is not a finite real scalar or `subcritical` not a bool.

    Reference: S. H. Strogatz, *Nonlinear Dynamics and Chaos* (1994), §3.4.
    """
    if not isinstance(subcritical, bool):
        raise ValueError(f"pitchfork: `subcritical` must be True or False; got {subcritical!r}.")
    return Pitchfork(r=real_array(r, "r", "pitchfork"), subcritical=subcritical)


class Cusp(AbstractFlow):
    """The cusp normal form; see `jaxdyn.systems.cusp`."""

    a: Float[Array, ""]
    b: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 1

    def _ab(self, args, x):
        ab = primary(args, jnp.stack([self.a, self.b]), x, "cusp", "the pair (a, b)")
        return ab[0], ab[1]

    def __call__(self, t, x, args):
        """`a + bx − x³` with `(a, b) = args` unless `args` is None."""
        a, b = self._ab(args, x)
        return a + b * x - x * x * x

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "3 1"]:
        """The real roots of `a + bx − x³`, ascending, as rows of a `(3, 1)` array.

        Three roots (a double one on the fold curve) when `4b³ ≥ 27a²` and `b > 0`,
        by the trigonometric formula; otherwise one, by Cardano's formula, and two NaN rows.
        """
        a, b = self._ab(args, None)
        three = (4 * b * b * b >= 27 * a * a) & (b > 0)
        # Both branches are evaluated, so each is fed safe values for the other's regime: this
        # keeps the result (and its gradient) free of NaN from the branch not taken.
        b3 = jnp.where(three, b, jnp.ones_like(b))
        c = jnp.where(three, 1.5 * a / b3 * jnp.sqrt(3 / b3), jnp.zeros_like(b))
        phi = jnp.arccos(jnp.clip(c, -1.0, 1.0)) / 3
        k = jnp.arange(3, dtype=b.dtype)
        trig = 2 * jnp.sqrt(b3 / 3) * jnp.cos(phi - 2 * math.pi * k / 3)
        d = jnp.where(three, jnp.ones_like(b), a * a / 4 - b * b * b / 27)
        sd = jnp.sqrt(jnp.maximum(d, 0))
        one = jnp.cbrt(a / 2 + sd) + jnp.cbrt(a / 2 - sd)
        nan = jnp.full((2,), jnp.nan, b.dtype)
        roots = jnp.where(three, trig, jnp.concatenate([one[None], nan]))
        return jnp.sort(roots)[:, None]


def cusp(a: ArrayLike = 0.0, b: ArrayLike = 1.0) -> Cusp:
    """The cusp normal form `ẋ = a + bx − x³`, a 1-D flow with two parameters.

    Three equilibria inside the cusp `27a² < 4b³` (two stable, one unstable between them),
    one outside; the two fold curves `a = ±2(b/3)^{3/2}` meet at the cusp point `a = b = 0`.
    `args` is the pair `(a, b)` (an array of length 2), overriding both stored parameters when
    not None.

    **Arguments:**

    - `a`: the asymmetry parameter a (default 0).
    - `b`: the splitting parameter b (default 1).

    **Returns:** a `Flow` on the 1-D state `(x,)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar.

    Reference: Y. A. Kuznetsov, *Elements of Applied Bifurcation Theory*, 3rd ed. (2004), §8.2.
    """
    return Cusp(a=real_array(a, "a", "cusp"), b=real_array(b, "b", "cusp"))


class Hopf(AbstractFlow):
    """The Hopf normal form; see `jaxdyn.systems.hopf`."""

    mu: Float[Array, ""]
    omega: Float[Array, ""]
    l1: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 2

    def __call__(self, t, x, args):
        """`(μx − ωy + s r²x, ωx + μy + s r²y)`, `s = ωℓ₁/2`, with `μ = args` unless None."""
        mu = primary(args, self.mu, x, "hopf", "mu")
        omega, l1 = self.omega.astype(mu.dtype), self.l1.astype(mu.dtype)
        u, v = x
        cubic = 0.5 * omega * l1 * (u * u + v * v)
        return jnp.stack([mu * u - omega * v + cubic * u, omega * u + mu * v + cubic * v])

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "1 2"]:
        """The only equilibrium, the origin, as a `(1, 2)` array."""
        mu = primary(args, self.mu, None, "hopf", "mu")
        return jnp.zeros((1, 2), mu.dtype)

    def cycle_radius(self, args: ArrayLike | None = None) -> Array:
        """The radius `√(−2μ/(ωℓ₁))` of the limit cycle (period `2π/ω`); NaN where μℓ₁ > 0,
        where there is no cycle (`args`: μ)."""
        mu = primary(args, self.mu, None, "hopf", "mu")
        return jnp.sqrt(-2 * mu / (self.omega * self.l1))


def hopf(mu: ArrayLike = 0.1, omega: ArrayLike = 1.0, l1: ArrayLike = -1.0) -> Hopf:
    """The Hopf normal form in Cartesian coordinates, a 2-D flow:

    `ẋ = μx − ωy + s(x² + y²)x`, `ẏ = ωx + μy + s(x² + y²)y`, with `s = ωℓ₁/2`.

    The origin has eigenvalues `μ ± iω`. In polar form `ṙ = μr + sr³`, `θ̇ = ω`, so a cycle of
    radius `√(−μ/s)` and period `2π/ω` is born at μ = 0: stable for μ > 0 when ℓ₁ < 0
    (supercritical), unstable for μ < 0 when ℓ₁ > 0 (subcritical). The cubic coefficient is
    scaled so that `l1` *is* the first Lyapunov coefficient in the standard normalisation
    (`Aq = iωq`, `|q| = 1`, `⟨p, q⟩ = 1`; `ℓ₁ = Re⟨p, C(q, q, q̄)⟩ / (2ω)` here), the value a
    continuation code reports at the Hopf point. `args` is μ (a scalar), overriding the
    stored `mu` when not None.

    **Arguments:**

    - `mu`: the unfolding parameter μ (default 0.1), the primary parameter.
    - `omega`: the angular frequency ω (default 1, > 0).
    - `l1`: the first Lyapunov coefficient ℓ₁ (default −1: supercritical).

    **Returns:** a `Flow` on `(x, y)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar or `omega <= 0`.

    Reference: Y. A. Kuznetsov, *Elements of Applied Bifurcation Theory*, 3rd ed. (2004),
    §3.4–3.5.
    """
    return Hopf(mu=real_array(mu, "mu", "hopf"),
                omega=real_array(omega, "omega", "hopf", positive=True),
                l1=real_array(l1, "l1", "hopf"))
