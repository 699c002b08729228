"""`sin(πx)` and `cos(πx)` together, in vectorisable arithmetic.

XLA on CPU evaluates a float64 `sin` or `cos` through a scalar library call (about 5 ns per
element on the 2-core test machine, against about 0.3 ns for a multiply-add), and a vector
field such as the double gyre's needs five of them per evaluation: they were most of the cost
of an FTLE field. With the argument in units of π the range reduction is exact (`x − k/2`
for the nearest half-integer `k/2`), so one reduction, two short polynomials and a quadrant
swap give both values to within an ulp or two, in operations that XLA fuses and vectorises.
Integers give `sin = 0` and half-integers `cos = 0` exactly, which `jnp.sin(jnp.pi * x)`
does not.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

# Taylor coefficients of sin z / z and cos z in z² (|z| ≤ π/4: the first omitted terms are
# below 1e-19 relative).
SIN_TAYLOR = tuple((-1) ** j / math.factorial(2 * j + 1) for j in range(9))
COS_TAYLOR = tuple((-1) ** j / math.factorial(2 * j) for j in range(10))


def horner(coefficients, z2):
    acc = jnp.full_like(z2, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = acc * z2 + c
    return acc


def sincospi(x: ArrayLike) -> tuple[Array, Array]:
    """`(sin πx, cos πx)` for an array `x`, within 2 ulps, in operations XLA vectorises.

    Exact (positive) zeros at integers (sin) and half-integers (cos); accurate for |x| < 2⁵²,
    where the reduction `x − k/2` is exact. Integer input is taken as floating point.
    Differentiable (`d sin πx = π cos πx dx`). For `sin(ωt)` write `sincospi(ω / π * t)[0]`.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return _sincospi(x)


def quadrant_sincos(z: Array, k: Array, x: Array) -> tuple[Array, Array]:
    """`(sin, cos)` of `z + k π/2` from the reduced argument `|z| ≤ π/4` and the integer `k`
    (as floats): Taylor polynomials and a quadrant swap. `x` is the argument the values are
    returned for (their dtype and shape)."""
    z2 = z * z
    s = z * horner(SIN_TAYLOR, z2)
    c = horner(COS_TAYLOR, z2)
    q = k - 4 * jnp.floor(0.25 * k)  # the quadrant, 0..3
    odd = (q == 1) | (q == 3)
    sin = jnp.where(odd, c, s)
    cos = jnp.where(odd, s, c)
    sin = jnp.where(q >= 2, 0.0 - sin, sin)  # 0 − v: no negative zeros
    cos = jnp.where((q == 1) | (q == 2), 0.0 - cos, cos)
    # Divided by a 1 that XLA cannot fold away: XLA counts a division as expensive and so
    # stores `sin` and `cos` once, where it would recompute this cheap-looking polynomial
    # inside every fusion that reads it (six times per step of a state with two tangents).
    one = x * 0 + 1
    return sin / one, cos / one


@jax.custom_jvp
def _sincospi(x: Array) -> tuple[Array, Array]:
    k = jnp.round(2 * x)
    return quadrant_sincos(jnp.pi * (x - 0.5 * k), k, x)  # |π(x − k/2)| ≤ π/4


@_sincospi.defjvp
def _sincospi_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    s, c = _sincospi(x)
    return (s, c), (jnp.pi * c * dx, -jnp.pi * s * dx)
