"""Shared plumbing of the reference systems: parameter checks and the `args` convention."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array

from .._validate import describe


def state_dtype(x: Array) -> Any:
    """The floating dtype a system computes in: the state's, or the default float."""
    dtype = jnp.asarray(x).dtype
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.result_type(float)


def primary(args: Any, default: Array, x: Array | None, owner: str, what: str) -> Array:
    """The `args` convention: `args` overrides the stored primary parameter unless it is None.

    The value is cast to the state's float dtype (so float32 states give float32 outputs
    even when x64 is on). Its shape must match the stored default's; shapes are static, so
    this check also runs under `jit` and (per element) `vmap`.

    **Arguments:**

    - `args`: the caller's `args`, or None.
    - `default`: the stored parameter.
    - `x`: the state whose dtype to use, or None to keep the parameter's dtype.
    - `owner`, `what`: the system's name and what `args` means for it, for the error message.

    **Raises:** `ValueError` if `args` does not have the shape of `default`.
    """
    value = default if args is None else jnp.asarray(args)
    if value.shape != default.shape:
        want = "a scalar" if default.shape == () else f"shape {default.shape}"
        raise ValueError(
            f"{owner}: `args` is {what} and must be {want} (or None for the stored value); "
            f"got {describe(value)}."
        )
    dtype = default.dtype if x is None else state_dtype(x)
    if not jnp.issubdtype(value.dtype, jnp.inexact):
        value = value.astype(jnp.result_type(float))
    return value.astype(dtype)
