"""Fixed Runge–Kutta steps: one step of a tableau, and runs of steps (saved or final)."""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._tableau import Tableau


def rk_step(f: Callable, tableau: Tableau, t: Array, y: Array, h: Array) -> Array:
    """One explicit Runge–Kutta step of size `h` from `(t, y)` for `y' = f(t, y)`."""
    ks = [f(t, y)]
    for ci, row in zip(tableau.c, tableau.a):
        yi = y + h * sum(a * k for a, k in zip(row, ks) if a != 0.0)
        ks.append(f(t + ci * h, yi))
    return y + h * sum(bi * k for bi, k in zip(tableau.b, ks) if bi != 0.0)


def n_steps(length: ArrayLike, dt: float) -> Array:
    """Steps of size `dt` that cover `length` (a last partial step counts, up to rounding)."""
    return jnp.ceil(length / dt - 1e-9).astype(jnp.int32)


def count_steps(length: float, dt: float) -> int:
    """`n_steps` of concrete values, as a Python int (at least 1)."""
    return max(1, int(math.ceil(length / dt - 1e-9)))


def run_steps(f: Callable, tableau: Tableau, y0: Array, t0: Array, length: Array, dt: float,
              max_steps: int) -> Array:
    """`y(t0 + length)` by steps of `dt` (the last one shortened to end at `t0 + length`);
    `length` may be traced, at most `max_steps · dt`. Reverse-mode differentiable (the loop is
    checkpointed)."""
    dtype = y0.dtype
    steps = n_steps(length, dt)
    end = t0 + length

    def body(carry):
        i, y = carry
        t = t0 + i.astype(dtype) * dt
        return i + 1, rk_step(f, tableau, t, y, jnp.minimum(jnp.asarray(dt, dtype), end - t))

    _, y = eqxi.while_loop(lambda c: c[0] < steps, body, (jnp.asarray(0, jnp.int32), y0),
                           max_steps=max_steps, kind="checkpointed")
    return y


def saved_steps(f: Callable, tableau: Tableau, y0: Array, t0: Array, t1: Array, dt: Array,
                n_save: int, stride: int) -> tuple[Array, Array]:
    """`(ts, ys)`: `n_save · stride` steps of `dt` from `t0` (the last shortened to end at
    `t1`), saving `y0` and every `stride`-th state (`n_save + 1` rows)."""
    dtype = y0.dtype

    def save_block(y, i):
        def inner(y, j):
            t = t0 + (i * stride + j) * dt
            return rk_step(f, tableau, t, y, jnp.minimum(dt, t1 - t)), None

        y, _ = jax.lax.scan(inner, y, jnp.arange(stride, dtype=dtype))
        return y, y

    _, ys = jax.lax.scan(save_block, y0, jnp.arange(n_save, dtype=dtype))
    ys = jnp.concatenate([y0[None], ys], axis=0)
    ts = jnp.minimum(t0 + dt * stride * jnp.arange(n_save + 1, dtype=dtype), t1)
    return ts, ys
