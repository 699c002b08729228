"""Argument checks that run in Python, before tracing, and raise readable `ValueError`s.

Each check names the argument, says what was given and what is expected. Value checks
(finiteness, signs) only run on concrete values: inside a user's `jit` the arguments are
tracers, and those checks are skipped rather than forcing a host round-trip.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when every leaf of `x` is a concrete value (no tracer)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)} and dtype {getattr(x, 'dtype', '?')}"
    return f"{type(x).__name__} {x!r}"


def as_float_array(x: Any, name: str) -> jax.Array:
    """Convert `x` to a floating JAX array (integers become the default float dtype)."""
    try:
        arr = jnp.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be a numeric array; got {_describe(x)} ({e}).") from None
    if not jnp.issubdtype(arr.dtype, jnp.inexact):
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_state(x: Any, name: str = "x0", *, ndim: int = 1, size: int | None = None) -> jax.Array:
    """A finite floating state array of rank `ndim` whose last axis has length `size`."""
    arr = as_float_array(x, name)
    if arr.ndim != ndim:
        want = "a 1-D state vector of shape (n,)" if ndim == 1 else f"a {ndim}-D array"
        if ndim == 2:
            want = "a 2-D array of shape (batch, n)"
        raise ValueError(f"`{name}` must be {want}; got {_describe(arr)}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got {_describe(arr)}.")
    if size is not None and arr.shape[-1] != size:
        raise ValueError(
            f"`{name}` has last dimension {arr.shape[-1]}, but the system's state has size "
            f"{size}; expected shape (..., {size})."
        )
    check_finite(arr, name)
    return arr


def check_finite(x: Any, name: str) -> None:
    """Raise if a concrete `x` holds NaN or infinity."""
    if is_concrete(x):
        for leaf in jax.tree_util.tree_leaves(x):
            a = np.asarray(leaf)
            if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
                bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
                raise ValueError(
                    f"`{name}` must be finite; got {bad} non-finite value(s) (NaN or inf) in "
                    f"{_describe(a)}."
                )


def check_positive(value: Any, name: str, *, allow_none: bool = False) -> None:
    """Raise unless a concrete `value` is > 0 everywhere."""
    if value is None:
        if allow_none:
            return
        raise ValueError(f"`{name}` must be a positive number; got None.")
    if is_concrete(value):
        a = np.asarray(value)
        if not np.issubdtype(a.dtype, np.number) or not np.all(a > 0):
            raise ValueError(f"`{name}` must be > 0; got {value!r}.")


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """A Python int ≥ `minimum` (a static option, never traced)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """Raise unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}; got {value!r}.")
    return value


def check_system_output(system: Any, x: jax.Array, args: Any, *, t: Any = 0.0,
                        name: str = "x0", args_name: str = "args") -> None:
    """Trace `system(t, x, args)` abstractly and check that it returns the shape of `x`.

    A shape error raised inside the system (a state or input of the wrong size meeting a weight
    matrix) is re-raised as a `ValueError` that names the arguments.
    """
    try:
        out = eqx.filter_eval_shape(lambda s, tt, xx, aa: s(tt, xx, aa), system, t, x, args)
    except (TypeError, ValueError) as e:
        arg_desc = _describe(args) if args is not None else "None"
        raise ValueError(
            f"the system could not be evaluated with `{name}` of shape {tuple(x.shape)} and "
            f"`{args_name}` {arg_desc}: {str(e).splitlines()[0]}. Check that `{name}` has the "
            f"system's state size and `{args_name}` the shape it expects (for an RNN: the "
            f"input vector of size n_in)."
        ) from None
    shape = getattr(out, "shape", None)
    if shape != x.shape:
        raise ValueError(
            f"the system returns shape {shape} for `{name}` of shape {tuple(x.shape)}; "
            f"expected `{name}` to have the system's state shape {shape}."
        )
