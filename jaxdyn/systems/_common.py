"""Shared plumbing of the reference systems: parameter checks and the `args` convention."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._validate import is_concrete


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def real_array(value: Any, name: str, owner: str, *, shape: tuple[int, ...] | None = (),
               positive: bool = False, nonzero: bool = False) -> Array:
    """A finite real floating array parameter of the given shape (a scalar by default).

    Integers become the default float dtype; float32 stays float32. Value checks (finite,
    positive) run only on concrete values, so a factory can be called inside `jit` or `grad`.

    **Raises:** `ValueError` naming `owner` and `name` for a non-numeric, complex, wrongly
    shaped, non-finite, (with `positive`) non-positive or (with `nonzero`) zero value.
    """
    try:
        arr = jnp.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{owner}: `{name}` must be a real number or array; got {_describe(value)}."
        ) from None
    if not jnp.issubdtype(arr.dtype, jnp.number) or jnp.issubdtype(
        arr.dtype, jnp.complexfloating
    ):
        raise ValueError(f"{owner}: `{name}` must be real; got {_describe(arr)}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if shape is not None and arr.shape != shape:
        want = "a scalar" if shape == () else f"an array of shape {shape}"
        raise ValueError(f"{owner}: `{name}` must be {want}; got {_describe(arr)}.")
    if is_concrete(arr):
        a = np.asarray(arr)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{owner}: `{name}` must be finite; got {value!r}.")
        if positive and not np.all(a > 0):
            raise ValueError(f"{owner}: `{name}` must be > 0; got {value!r}.")
        if nonzero and not np.all(a != 0):
            raise ValueError(f"{owner}: `{name}` must be nonzero; got {value!r}.")
    return arr


def count(value: Any, name: str, owner: str, *, minimum: int = 1) -> int:
    """A Python integer >= `minimum` (a static size, never traced).

    **Raises:** `ValueError` naming `owner` and `name` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{owner}: `{name}` must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{owner}: `{name}` must be an integer >= {minimum}; got {value}.")
    return int(value)


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
            f"got {_describe(value)}."
        )
    dtype = default.dtype if x is None else state_dtype(x)
    if not jnp.issubdtype(value.dtype, jnp.inexact):
        value = value.astype(jnp.result_type(float))
    return value.astype(dtype)
