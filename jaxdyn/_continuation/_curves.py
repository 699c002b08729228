"""The curves that continuation follows: `H(y) = 0` with `y ∈ R^{m+1}`, `H: R^{m+1} → R^m`.

- `EquilibriumCurve`: equilibria of a flow (`f(x, p) = 0`) or fixed points of a map
  (`F(x, p) − x = 0`), `y = (x, p)`.
- `FoldCurve`: folds in two parameters, `y = (x, p₁, p₂)`, by the minimally augmented system
  `(f, g)` where `g` is the bordered-matrix test function of `A = ∂f/∂x` (`J − I` for maps).
- `HopfCurve`: Hopf points of flows (Neimark–Sacker points of maps) in two parameters,
  `y = (x, p₁, p₂, κ)`, by the minimally augmented system of the matrix `J² + κI`
  (`J² − κJ + I` for maps) with two borders; `κ = ω²` (`κ = 2 cos θ`).

Each curve is an `eqx.Module` holding the system and the parameter embedding, so that the
corrector's residual is a plain function of `(y, curve)` (Newton's implicit gradients then see
every array). Reference for the minimally augmented systems: W. Govaerts, *Numerical Methods
for Bifurcations of Dynamical Equilibria*, SIAM (2000), ch. 3–4; Kuznetsov (2004), §10.2.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._system import AbstractJacobianSystem, AbstractSystem


class Embedding(eqx.Module):
    """How continuation parameters enter `args`: `args(p) = base + Σᵢ (pᵢ − offsetᵢ)·dᵢ`,
    or `args = p` itself when `base` is None (a scalar `args`)."""

    base: PyTree
    directions: tuple
    offsets: Array

    def __call__(self, ps: Array) -> PyTree:
        if self.base is None:
            return ps[0]
        shifts = ps - self.offsets.astype(ps.dtype)

        def leaf(b, *ds):
            out = b
            for s, d in zip(shifts, ds):
                out = out + s.astype(b.dtype) * d
            return out

        return jax.tree_util.tree_map(leaf, self.base, *self.directions)



def _bordered(a: Array, b: Array, c: Array) -> tuple[Array, Array]:
    """`[[A, B], [Cᵀ, 0]]` and the right-hand side `[0; I]`, for `A` of shape `(m, n)`,
    `B` `(m, k)` and `C` `(n, j)` with `m + k = n + j` (square or bordered rectangular)."""
    (m, k), j = b.shape, c.shape[1]
    mat = jnp.block([[a, b], [c.T, jnp.zeros((j, k), a.dtype)]])
    rhs = jnp.concatenate([jnp.zeros((m, j), a.dtype), jnp.eye(j, dtype=a.dtype)])
    return mat, rhs


def bordered_g(a: Array, b: Array, c: Array) -> Array:
    """The block `G` (`k × j`) of the solution of `[[A, B], [Cᵀ, 0]] [V; G] = [0; I]`: the
    minimally augmented test function. It vanishes exactly where the null space of `A` has
    dimension `j` (`k` for a square `A`; 2 for a bordered `m × (m+1)` Jacobian)."""
    mat, rhs = _bordered(a, b, c)
    return jnp.linalg.solve(mat, rhs)[a.shape[1]:]


def bordered_null(a: Array, b: Array, c: Array) -> tuple[Array, Array, Array]:
    """Solve `[[A, B], [Cᵀ, 0]] [V; G] = [0; I]` and the transposed system: returns `V`
    (`n × k`, `CᵀV = I`), `W` (`n × k`, `BᵀW = I`, `WᵀA = 0` at a singular `A`) and `G`
    (`k × k`), which vanishes exactly where `A` has a `k`-dimensional null space."""
    n = b.shape[0]
    m, rhs = _bordered(a, b, c)
    sol = jnp.linalg.solve(m, rhs)
    solt = jnp.linalg.solve(m.T, rhs)
    return sol[:n], solt[:n], sol[n:]


def pair_matrix(jac: Array, kappa: Array, discrete: bool) -> Array:
    """`J² + κI` (flows: singular with `κ = ω²` at a Hopf point) or `J² − κJ + I` (maps:
    singular with `κ = 2 cos θ` at a Neimark–Sacker point)."""
    eye = jnp.eye(jac.shape[0], dtype=jac.dtype)
    if discrete:
        return jac @ jac - kappa * jac + eye
    return jac @ jac + kappa * eye


def orthonormal(v: Array) -> Array:
    """An orthonormal basis (columns) of the span of `v`'s columns."""
    q, _ = jnp.linalg.qr(v)
    return q


class AbstractCurve(eqx.Module):
    """A curve `H(y) = 0` through the state space of `system` and its parameters."""

    system: AbstractSystem
    embed: Embedding
    size: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def n_params(self) -> int:
        """Number of continuation parameters in `y`."""

    @abc.abstractmethod
    def residual(self, y: Array, data: PyTree) -> Array:
        """`H(y)`, of size `len(y) − 1`."""

    @abc.abstractmethod
    def initial_data(self, y: Array) -> PyTree:
        """Auxiliary data (borders) chosen at a point near the curve."""

    def update_data(self, y: Array, data: PyTree) -> PyTree:
        """Auxiliary data after a step is accepted at `y` (default: kept)."""
        return data

    # --- the underlying system ---------------------------------------------------------

    def field(self, x: Array, ps: Array) -> Array:
        """The system's right-hand side `f(0, x, args(p))` (the map itself for maps)."""
        return self.system(0.0, x, self.embed(ps))

    def equation(self, x: Array, ps: Array) -> Array:
        """The equilibrium equation: `f` for flows, `F − x` for maps."""
        out = self.field(x, ps)
        return out - x if self.system.discrete else out

    def state_jacobian(self, x: Array, ps: Array) -> Array:
        """`∂f/∂x` (of the map `F` for maps)."""
        args = self.embed(ps)
        if isinstance(self.system, AbstractJacobianSystem):
            return self.system.state_jacobian(x, args)
        return jax.jacfwd(lambda z: self.system(0.0, z, args))(x)

    def jacobian_from(self, hy: Array, y: Array) -> Array:
        """The state Jacobian at `y`, given `∂H/∂y` there (recomputed by default)."""
        n = self.size
        return self.state_jacobian(y[:n], y[n:n + self.n_params])

    def singular_matrix(self, jac: Array) -> Array:
        """`A` whose singularity is a fold: `J` (flows) or `J − I` (maps)."""
        if self.system.discrete:
            return jac - jnp.eye(jac.shape[0], dtype=jac.dtype)
        return jac


class EquilibriumCurve(AbstractCurve):
    """Equilibria (flows) or fixed points (maps) in one parameter: `y = (x, p)`."""

    size: int = eqx.field(static=True)

    @property
    def n_params(self) -> int:
        return 1

    def residual(self, y, data):
        return self.equation(y[: self.size], y[self.size:])

    def initial_data(self, y):
        return jnp.zeros((), y.dtype)

    def jacobian_from(self, hy, y):
        # H = f (flows) or F − x (maps): its x-block is the state Jacobian (minus I).
        jac = hy[:, : self.size]
        return jac + jnp.eye(self.size, dtype=jac.dtype) if self.system.discrete else jac


class FoldCurve(AbstractCurve):
    """Folds in two parameters: `y = (x, p₁, p₂)`, `H = (f, g)`; `data = (b, c)` borders."""

    size: int = eqx.field(static=True)

    @property
    def n_params(self) -> int:
        return 2

    def _a(self, y):
        x, ps = y[: self.size], y[self.size:]
        return self.singular_matrix(self.state_jacobian(x, ps))

    def residual(self, y, data):
        b, c = data
        g = bordered_g(self._a(y), b, c)
        return jnp.concatenate([self.equation(y[: self.size], y[self.size:]), g[0]])

    def initial_data(self, y):
        u, _, vh = jnp.linalg.svd(self._a(y))
        return u[:, -1:], vh[-1][:, None]

    def update_data(self, y, data):
        v, w, _ = bordered_null(self._a(y), *data)
        return w / jnp.linalg.norm(w), v / jnp.linalg.norm(v)

    def null_vectors(self, y, data):
        """Right and left null vectors `v` (`cᵀv = 1`), `w` (`bᵀw = 1`) of `A` at `y`."""
        v, w, _ = bordered_null(self._a(y), *data)
        return v[:, 0], w[:, 0]


_PAIRS = ((0, 3), (0, 1), (0, 2), (1, 2), (1, 3), (2, 3))


class HopfCurve(AbstractCurve):
    """Hopf (flows) or Neimark–Sacker (maps) points in two parameters: `y = (x, p₁, p₂, κ)`,
    `H = (f, two entries of G)`, `data = (B, C, pair)`."""

    size: int = eqx.field(static=True)

    @property
    def n_params(self) -> int:
        return 2

    def matrix(self, y):
        n = self.size
        x, ps, kappa = y[:n], y[n:n + 2], y[n + 2]
        return pair_matrix(self.state_jacobian(x, ps), kappa, self.system.discrete)

    def _g(self, y, b, c):
        return bordered_g(self.matrix(y), b, c).reshape(-1)

    def residual(self, y, data):
        b, c, pair = data
        g = self._g(y, b, c)
        n = self.size
        return jnp.concatenate([self.equation(y[:n], y[n:n + 2]), g[pair]])

    def initial_data(self, y):
        u, _, vh = jnp.linalg.svd(self.matrix(y))
        b, c = u[:, -2:], vh[-2:].T
        n = self.size
        fy = jax.jacfwd(lambda z: self.equation(z[:n], z[n:n + 2]))(y)
        gy = jax.jacfwd(lambda z: self._g(z, b, c))(y)
        scores = []
        for i, j in _PAIRS:
            full = jnp.concatenate([fy, gy[jnp.array([i, j])]])
            scores.append(jnp.linalg.svd(full, compute_uv=False)[-1])
        best = jnp.argmax(jnp.stack(scores))
        pair = jnp.asarray(_PAIRS, jnp.int32)[best]
        return b, c, pair

    def update_data(self, y, data):
        b, c, pair = data
        v, w, _ = bordered_null(self.matrix(y), b, c)
        return orthonormal(w), orthonormal(v), pair
