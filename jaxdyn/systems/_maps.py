"""Classic maps: logistic, Hénon, and a tanh recurrent network."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._system import AbstractMap
from .._validate import real_array
from ._common import primary


def _rounded(p: Array) -> Array:
    """`p`, rounded to working precision before it is used in an addition.

    XLA:CPU compiles with LLVM floating-point contraction always on, so `c − p·q` becomes one
    fused multiply-add with a single rounding instead of two. That is legal and slightly more
    accurate, but a chaotic orbit amplifies the last-bit difference and departs from the same
    recurrence evaluated step by step in NumPy or C after a few dozen steps. LLVM does not
    contract through a `select`, and this one is always true for a number (a NaN stays NaN
    either way), so the product is rounded on its own, as a reference implementation does.
    """
    return jnp.where(p == p, p, jnp.nan)


class Logistic(AbstractMap):
    """The logistic map; see `jaxdyn.systems.logistic`."""

    r: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 1

    def __call__(self, t, x, args):
        """`r x (1 − x)` with `r = args` unless `args` is None."""
        r = primary(args, self.r, x, "logistic", "r")
        return r * x * (1 - x)

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "2 1"]:
        """The fixed points `0` and `1 − 1/r` (the map's equilibria), as a `(2, 1)` array."""
        r = primary(args, self.r, None, "logistic", "r")
        return jnp.stack([jnp.zeros_like(r), 1 - 1 / r])[:, None]


def logistic(r: ArrayLike = 3.5) -> Logistic:
    """The logistic map `x ↦ r x (1 − x)` on a 1-D state.

    The fixed point `1 − 1/r` is stable for `1 < r < 3` and period-doubles at `r = 3`
    (multiplier `2 − r = −1`); the cascade accumulates at `r ≈ 3.5699`. The default r = 3.5
    is on the period-4 cycle. `args` is r (a scalar), overriding the stored `r` when not None.

    **Arguments:**

    - `r`: the growth rate (default 3.5), the primary parameter.

    **Returns:** a `Map` on `(x,)`.

    **Raises:** `ValueError` if `r` is not a finite real scalar, or is 0.

    Reference: R. M. May, "Simple mathematical models with very complicated dynamics",
    Nature 261 (1976).
    """
    return Logistic(r=real_array(r, "r", "logistic", nonzero=True))


class Henon(AbstractMap):
    """The Hénon map; see `jaxdyn.systems.henon`."""

    a: Float[Array, ""]
    b: Float[Array, ""]

    @property
    def state_size(self) -> int:
        return 2

    def __call__(self, t, x, args):
        """`(1 − a x² + y, b x)` with `a = args` unless `args` is None."""
        a = primary(args, self.a, x, "henon", "a")
        u, v = x
        # Evaluated exactly as written, left to right, two roundings per product and sum; see
        # `_rounded` for why the product is fenced.
        return jnp.stack([1.0 - _rounded(a * u * u) + v, self.b.astype(a.dtype) * u])

    def equilibria(self, args: ArrayLike | None = None) -> Float[Array, "2 2"]:
        """The two fixed points `(x, bx)`, `x = (−(1 − b) ± √((1 − b)² + 4a)) / (2a)`, as
        rows of a `(2, 2)` array (the one with `x > 0` first; NaN if none exist)."""
        a = primary(args, self.a, None, "henon", "a")
        b = self.b.astype(a.dtype)
        root = jnp.sqrt((1 - b) ** 2 + 4 * a)
        u = jnp.stack([-(1 - b) + root, -(1 - b) - root]) / (2 * a)
        return jnp.stack([u, b * u], axis=-1)


def henon(a: ArrayLike = 1.4, b: ArrayLike = 0.3) -> Henon:
    """The Hénon map `(x, y) ↦ (1 − a x² + y, b x)`.

    The defaults give Hénon's strange attractor. The map is evaluated in the order written
    (see the note in the source), so an orbit is bit-for-bit the one a plain float64 loop
    computes. `args` is a (a scalar), overriding the stored `a` when not None.

    **Arguments:**

    - `a`: the nonlinearity a (default 1.4, nonzero), the primary parameter.
    - `b`: the contraction b (default 0.3; the Jacobian determinant is −b).

    **Returns:** a `Map` on `(x, y)`.

    **Raises:** `ValueError` if a parameter is not a finite real scalar, or `a` is 0.

    Reference: M. Hénon, "A two-dimensional mapping with a strange attractor",
    Commun. Math. Phys. 50 (1976).
    """
    return Henon(a=real_array(a, "a", "henon", nonzero=True), b=real_array(b, "b", "henon"))


class TanhRNN(AbstractMap):
    """A tanh recurrent network as a map; see `jaxdyn.systems.tanh_rnn`."""

    W: Float[Array, "n n"]
    b: Float[Array, " n"]

    @property
    def state_size(self) -> int:
        return self.W.shape[0]

    def __call__(self, t, x, args):
        """`tanh(W x + b + u)` with `u = args`, or zero when `args` is None."""
        u = primary(args, jnp.zeros_like(self.b), x, "tanh_rnn", "the input vector u")
        return jnp.tanh(self.W.astype(u.dtype) @ x + self.b.astype(u.dtype) + u)


def tanh_rnn(W: ArrayLike, b: ArrayLike | None = None) -> TanhRNN:
    """The discrete-time tanh network `x ↦ tanh(W x + b + u)`, a map on `n = W.shape[0]`
    units: the smallest RNN, for tests with known Jacobian `diag(1 − x'²) W`.

    `args` is the input vector `u` (shape `(n,)`), added inside the tanh; None means zero.

    **Arguments:**

    - `W`: the recurrent weights, a square `(n, n)` array.
    - `b`: the bias, shape `(n,)` (default zero).

    **Returns:** a `Map` on the state `x` of shape `(n,)`.

    **Raises:** `ValueError` if `W` is not a finite real square matrix, or `b` not a finite
    vector of length n.

    Reference: J. L. Elman, "Finding structure in time", Cognitive Science 14 (1990).
    """
    W = real_array(W, "W", "tanh_rnn", shape=None)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(
            f"tanh_rnn: `W` must be a square (n, n) matrix with n >= 1; got shape {W.shape}."
        )
    n = W.shape[0]
    b = jnp.zeros(n, W.dtype) if b is None else real_array(b, "b", "tanh_rnn", shape=(n,))
    return TanhRNN(W=W, b=b)
