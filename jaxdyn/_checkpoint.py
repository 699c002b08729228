"""Atomic checkpoints of PyTrees (equinox leaf serialisation + a temporary file and a rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np


def save_checkpoint(path: str | os.PathLike, tree: Any, step: int) -> None:
    """Write `(tree, step)` to `path` atomically: a reader sees the old file or the new one,
    never a half-written one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            eqx.tree_serialise_leaves(f, (tree, np.asarray(step, dtype=np.int64)))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, like: Any) -> tuple:
    """Read a checkpoint written by `save_checkpoint` into the structure of `like`.

    **Returns:** the leaves of `like` (a tuple), followed by the step.
    """
    tree, step = eqx.tree_deserialise_leaves(path, (like, np.asarray(0, dtype=np.int64)))
    tree = tuple(np.asarray(x) if isinstance(y, np.ndarray) else x for x, y in zip(tree, like))
    return (*tree, int(jnp.asarray(step)))
