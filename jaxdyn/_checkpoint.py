"""Atomic checkpoints of PyTrees (equinox leaf serialisation + a temporary file and a rename)."""

from __future__ import annotations

import os
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._io import write_atomic


def save_checkpoint(path: str | os.PathLike, tree: Any, step: int,
                    extra: tuple[np.ndarray, ...] = ()) -> None:
    """Write `(tree, step)` to `path` atomically: a reader sees the old file or the new one,
    never a half-written one. `extra` arrays (of any shape, e.g. a loss history) follow."""

    def write(f):
        eqx.tree_serialise_leaves(f, (tree, np.asarray(step, dtype=np.int64)))
        np.save(f, np.asarray(len(extra)))
        for a in extra:
            np.save(f, np.asarray(a), allow_pickle=False)

    write_atomic(path, write)


def load_checkpoint(path: str | os.PathLike, like: Any) -> tuple[Any, int, tuple]:
    """Read a checkpoint written by `save_checkpoint` into the structure of `like`.

    **Returns:** `(tree, step, extra)`.
    """
    with open(path, "rb") as f:
        tree, step = eqx.tree_deserialise_leaves(f, (like, np.asarray(0, dtype=np.int64)))
        extra = tuple(np.load(f, allow_pickle=False) for _ in range(int(np.load(f))))
    return tree, int(jnp.asarray(step)), extra


def _model_classes() -> dict[str, type]:
    from . import rnn

    return {c.__name__: c for c in (rnn.CTRNN, rnn.VanillaRNN, rnn.GRU, rnn.LSTM)}


def save_model(path: str | os.PathLike, model: Any, **constructor_kwargs: Any) -> None:
    """Save an RNN model to one file: a JSON header (class and constructor arguments) and the
    model's arrays, written atomically.

    **Arguments:**

    - `path`: the file to write.
    - `model`: a `jaxdyn.rnn` model (a single one, not a stack).
    - `constructor_kwargs`: the keyword arguments that rebuild the model's structure (e.g.
      `nonlinearity="relu"`, `form="voltage"`); sizes are taken from the model.

    Reload with `load_model(path)`.
    """
    import json

    name = type(model).__name__
    if name not in _model_classes():
        raise ValueError(f"`model` must be a jaxdyn.rnn model {sorted(_model_classes())}; got "
                         f"{name}.")
    header = {"class": name, "n_in": model.n_in, "n_hidden": model.n_hidden,
              "n_out": model.n_out, "kwargs": constructor_kwargs,
              "dtype": str(model.W_out.dtype)}

    def write(f):
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, model)

    write_atomic(path, write)


def load_model(path: str | os.PathLike) -> Any:
    """Load a model written by `save_model`, in the dtype it was saved in."""
    import json

    import jax
    import jax.random as jr

    with open(path, "rb") as f:
        header = json.loads(f.readline().decode())
        cls = _model_classes()[header["class"]]
        template = cls(header["n_in"], header["n_hidden"], header["n_out"],
                       key=jr.PRNGKey(0), **header["kwargs"])
        dtype = jnp.dtype(header["dtype"])
        template = jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, template)
        return eqx.tree_deserialise_leaves(f, template)
