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


def describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)} and dtype {getattr(x, 'dtype', '?')}"
    return f"{type(x).__name__} {x!r}"


def as_float_array(x: Any, name: str) -> jax.Array:
    """Convert `x` to a floating JAX array (integers become the default float dtype)."""
    try:
        arr = jnp.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be a numeric array; got {describe(x)} ({e}).") from None
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
        raise ValueError(f"`{name}` must be {want}; got {describe(arr)}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got {describe(arr)}.")
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
                    f"{describe(a)}."
                )


def check_positive(value: Any, name: str, *, allow_none: bool = False) -> None:
    """Raise unless a concrete `value` is finite and > 0 everywhere."""
    if value is None:
        if allow_none:
            return
        raise ValueError(f"`{name}` must be a positive number; got None.")
    if is_concrete(value):
        a = np.asarray(value)
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)) or not np.all(
                a > 0):
            raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}.")


def _owner(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def check_int(value: Any, name: str, *, minimum: int = 1, owner: str | None = None) -> int:
    """A Python int ≥ `minimum` (a static option, never traced); `owner` names the function
    or class in the message."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{_owner(owner)}`{name}` must be an integer >= {minimum}; got "
                         f"{value!r}.")
    if value < minimum:
        raise ValueError(f"{_owner(owner)}`{name}` must be an integer >= {minimum}; got "
                         f"{value}.")
    return int(value)


def check_number(value: Any, name: str, *, low: float = 0.0, high: float = float("inf"),
                 open_low: bool = False, owner: str | None = None) -> float:
    """A finite Python number in `[low, high]` (or `(low, high]` with `open_low`)."""
    import numbers

    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        lo = "(" if open_low else "["
        raise ValueError(f"{_owner(owner)}`{name}` must be a finite number in {lo}{low}, "
                         f"{high}]; got {value!r}.")
    return float(value)


def check_values(values: Any, name: str, *, low: float = 0.0) -> tuple[float, ...]:
    """A non-empty sequence of finite numbers >= `low`, as a tuple."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise ValueError(f"`{name}` must be a non-empty sequence of numbers; got {values!r}.")
    return tuple(check_number(v, f"{name}[{i}]", low=low) for i, v in enumerate(values))


def check_nonnegative(value: Any, name: str) -> None:
    """Raise unless a concrete `value` is finite and >= 0 everywhere (a traced one passes)."""
    if is_concrete(value):
        a = np.asarray(value)
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)) or np.any(
                a < 0):
            raise ValueError(f"`{name}` must be a finite number >= 0; got {value!r}.")


def check_tolerance(value: Any, name: str) -> None:
    """A tolerance: a concrete value must be finite and > 0 (a traced one passes)."""
    if value is None:
        raise ValueError(f"`{name}` must be a positive number; got None.")
    if is_concrete(value):
        a = np.asarray(value)
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)) or not np.all(
                a > 0):
            raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}.")


def real_array(value: Any, name: str, owner: str, *, shape: tuple[int, ...] | None = (),
               positive: bool = False, nonzero: bool = False) -> jax.Array:
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
            f"{owner}: `{name}` must be a real number or array; got {describe(value)}."
        ) from None
    if not jnp.issubdtype(arr.dtype, jnp.number) or jnp.issubdtype(
        arr.dtype, jnp.complexfloating
    ):
        raise ValueError(f"{owner}: `{name}` must be real; got {describe(arr)}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if shape is not None and arr.shape != shape:
        want = "a scalar" if shape == () else f"an array of shape {shape}"
        raise ValueError(f"{owner}: `{name}` must be {want}; got {describe(arr)}.")
    if is_concrete(arr):
        a = np.asarray(arr)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{owner}: `{name}` must be finite; got {value!r}.")
        if positive and not np.all(a > 0):
            raise ValueError(f"{owner}: `{name}` must be > 0; got {value!r}.")
        if nonzero and not np.all(a != 0):
            raise ValueError(f"{owner}: `{name}` must be nonzero; got {value!r}.")
    return arr


def promote_scalars(tree: Any) -> Any:
    """Python and NumPy numbers in `tree` become JAX arrays: under `jit` a Python float is a
    static value (a recompile for every new value), and an array can be differentiated and
    batched."""
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a) if isinstance(a, (int, float, np.ndarray, np.generic))
        and not isinstance(a, bool) else a, tree)


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
        arg_desc = describe(args) if args is not None else "None"
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
