"""The one-dimensional Bratu problem, discretised by finite differences."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._system import AbstractFlow
from .._validate import check_int, real_array
from ._common import primary

#: The fold of the continuum Bratu problem: `λ* = θ²/(2 cosh²(θ/4))` with `(θ/4) tanh(θ/4) = 1`.
BRATU_CRITICAL_LAMBDA = 3.513830719125161


class Bratu(AbstractFlow):
    """The discretised Bratu problem as a flow; see `jaxdyn.systems.bratu`."""

    lam: Float[Array, ""]
    n: int = eqx.field(static=True)

    @property
    def state_size(self) -> int:
        return self.n

    @property
    def h(self) -> float:
        """The grid spacing `1/(n + 1)`."""
        return 1.0 / (self.n + 1)

    def grid(self) -> Float[Array, " n"]:
        """The interior grid points `x_i = i h`, `i = 1..n`."""
        return self.h * jnp.arange(1, self.n + 1, dtype=self.lam.dtype)

    def laplacian(self) -> Float[Array, "n n"]:
        """The matrix `A = tridiag(1, −2, 1) / h²` of the Dirichlet Laplacian (dense)."""
        n, dtype = self.n, self.lam.dtype
        off = jnp.eye(n, k=1, dtype=dtype) + jnp.eye(n, k=-1, dtype=dtype)
        return (off - 2 * jnp.eye(n, dtype=dtype)) / (self.h * self.h)

    def __call__(self, t, x, args):
        """`A u + λ e^u` with `λ = args` unless `args` is None (the stencil, not a matmul)."""
        lam = primary(args, self.lam, x, "bratu", "lam")
        padded = jnp.pad(x, 1)  # the boundary values u(0) = u(1) = 0
        lap = (padded[:-2] - 2 * x + padded[2:]) / (self.h * self.h)
        return lap + lam * jnp.exp(x)


def bratu(n: int = 32, lam: ArrayLike = 1.0) -> Bratu:
    """The 1-D Bratu problem `u'' + λ e^u = 0` on (0, 1), `u(0) = u(1) = 0`, as a flow.

    Central differences on `n` interior points (`h = 1/(n + 1)`) give the system
    `du/dt = A u + λ e^u` with `A = tridiag(1, −2, 1)/h²` (`laplacian()`), whose equilibria are
    the discrete Bratu solutions. For `0 < λ < λ*` there are two, a stable lower one and an
    unstable upper one, which meet in a fold at `λ*`; in the continuum limit
    `λ* = 3.51383…` (`BRATU_CRITICAL_LAMBDA`), approached at rate O(h²). The continuum
    solutions are `u(x) = −2 ln(cosh((x − ½)θ/2) / cosh(θ/4))` with `θ = √(2λ) cosh(θ/4)`.
    `args` is λ (a scalar), overriding the stored `lam` when not None.

    **Arguments:**

    - `n`: the number of interior grid points (default 32, >= 1); the state size.
    - `lam`: the parameter λ (default 1), the primary parameter.

    **Returns:** a `Flow` on the grid values `u` of shape `(n,)`.

    **Raises:** `ValueError` if `n` is not an integer >= 1, or `lam` not a finite real scalar.

    Reference: G. Bratu (1914); J. Jacobsen & K. Schmitt, "The Liouville–Bratu–Gelfand
    problem for radial operators", J. Differential Equations 184 (2002).
    """
    return Bratu(lam=real_array(lam, "lam", "bratu"), n=check_int(n, "n", owner="bratu"))
