"""Shared test helpers: tree comparison and central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np


def tree_allclose(a, b, rtol=1e-7, atol=1e-9):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb:
        return False
    return all(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
               for x, y in zip(la, lb))


def central_jacobian(f, x, eps=1e-6):
    """Central finite-difference Jacobian of f: R^n -> R^m at x (float64)."""
    x = jnp.asarray(x, dtype=jnp.float64)
    cols = []
    for i in range(x.shape[0]):
        e = jnp.zeros_like(x).at[i].set(eps)
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    return jnp.stack(cols, axis=-1)
