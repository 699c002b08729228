"""Polynomial and Fourier feature maps of the reduced coordinates.

A polynomial feature map is a static exponent table `E [p, d + 1]`: each row is the
multi-index `α` of a monomial `η^α` and, in its last column, the power `k` of the scalar
parameter, so the feature is `η^α (μ − μ_ref)^k`. Rows are sorted by total degree in `η`, then
by parameter power, then in the order of scikit-learn's `PolynomialFeatures` (lexicographic,
descending in the first coordinate), so that an order-`m` model uses a leading block of the
table and coefficient arrays line up with SSMLearnPy's.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def _multi_indices(d: int, degree: int) -> list[tuple[int, ...]]:
    """Multi-indices of total degree `degree` in `d` variables, in scikit-learn's order."""
    out = []
    for combo in itertools.combinations_with_replacement(range(d), degree):
        alpha = [0] * d
        for i in combo:
            alpha[i] += 1
        out.append(tuple(alpha))
    return out


def exponents(d: int, low: int, high: int, param_order: int = 0,
              param_free: bool = False) -> np.ndarray:
    """The exponent table `[p, d + 1]` of the monomials of degree `low..high` in `η`.

    With `param_order > 0` every monomial is repeated with the parameter powers
    `0..param_order`; `param_free` adds the pure-parameter terms `μ^k`, `k = 1..param_order`
    (η-degree 0: a fixed point or manifold offset that moves with the parameter).
    """
    rows = []
    if param_free:
        rows += [(0,) * d + (k,) for k in range(1, param_order + 1)]
    for m in range(low, high + 1):
        for k in range(param_order + 1):
            rows += [alpha + (k,) for alpha in _multi_indices(d, m)]
    return np.asarray(rows, dtype=np.int32).reshape(-1, d + 1)


def degrees(table: np.ndarray) -> np.ndarray:
    """Total degree in `η` of each row of an exponent table."""
    return np.asarray(table)[:, :-1].sum(axis=1)


def _powers(z: Array, top: int) -> Array:
    """`[..., top + 1]` powers `z^0 .. z^top` by repeated products (complex inputs work)."""
    out = [jnp.ones_like(z)]
    for _ in range(top):
        out.append(out[-1] * z)
    return jnp.stack(out, axis=-1)


def polynomial(table: np.ndarray, eta: Array, mu: Array | None = None) -> Array:
    """The features `η^α μ^k` for every row of `table`, shape `[..., p]`.

    `eta` has shape `[..., d]`; `mu` (the centred parameter) is a scalar or has shape `[...]`,
    and is ignored when no row has a parameter power.
    """
    table = np.asarray(table)
    d = table.shape[1] - 1
    top = int(table.max()) if table.size else 0
    pw = _powers(eta, top)  # [..., d, top + 1]
    feats = jnp.ones(eta.shape[:-1] + (table.shape[0],), eta.dtype)
    for i in range(d):
        col = table[:, i]
        if col.any():
            feats = feats * pw[..., i, :][..., col]
    kcol = table[:, d]
    if kcol.any():
        if mu is None:
            raise ValueError("this model depends on a parameter; pass `p`.")
        mu = jnp.asarray(mu, eta.dtype)
        mu = jnp.broadcast_to(mu, eta.shape[:-1])
        feats = feats * _powers(mu, int(kcol.max()))[..., kcol]
    return feats


def fourier(theta: Array, order: int, constant: bool = True) -> Array:
    """`[1,] cos θ, sin θ, …, cos mθ, sin mθ` for `m = order`, shape `[..., 2m (+1)]`."""
    k = jnp.arange(1, order + 1, dtype=theta.dtype).reshape((1,) * theta.ndim + (order,))
    arg = theta[..., None] * k
    cs = jnp.stack([jnp.cos(arg), jnp.sin(arg)], axis=-1).reshape(theta.shape + (2 * order,))
    if constant:
        cs = jnp.concatenate([jnp.ones(theta.shape + (1,), theta.dtype), cs], axis=-1)
    return cs


def fourier_derivative(theta: Array, order: int, constant: bool = True) -> Array:
    """`d/dθ` of `fourier(θ, order, constant)`."""
    k = jnp.arange(1, order + 1, dtype=theta.dtype).reshape((1,) * theta.ndim + (order,))
    arg = theta[..., None] * k
    ds = jnp.stack([-k * jnp.sin(arg), k * jnp.cos(arg)], axis=-1).reshape(
        theta.shape + (2 * order,))
    if constant:
        ds = jnp.concatenate([jnp.zeros(theta.shape + (1,), theta.dtype), ds], axis=-1)
    return ds
