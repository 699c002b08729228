"""Model files and training checkpoints: a JSON header line, then the PyTree's leaves
(equinox serialisation), written atomically (a temporary file and a rename).

A model file records the class and every constructor option that shapes the model
(`AbstractRNN.config()`), so `load_model(path)` needs nothing but the file. A checkpoint
records which run it belongs to (a fingerprint of the initial model, the task, the key and the
batch size), so that a run never resumes from another run's checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._io import write_atomic

FORMAT = 1  # the file format written here; files of a newer format are refused
_HEADER_LIMIT = 1 << 26  # the longest header line read when telling whether a file is a model


def _model_classes() -> dict[str, type]:
    from . import rnn

    return {c.__name__: c for c in (rnn.CTRNN, rnn.VanillaRNN, rnn.GRU, rnn.LSTM)}


def _write(path: str | os.PathLike, header: dict, tree: Any, extra=()) -> None:
    def write(f: BinaryIO):
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, tree)
        for a in extra:
            np.save(f, np.asarray(a), allow_pickle=False)

    write_atomic(path, write)


def _read_header(f: BinaryIO, path: Any, kind: str) -> dict:
    line = f.readline()
    try:
        header = json.loads(line.decode())
        if not isinstance(header, dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{str(path)!r} is not a jaxdyn {kind} file: its first line is not "
                         f"the JSON header that `save_{kind}` writes.") from None
    fmt = header.get("format", 0)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise ValueError(f"{str(path)!r} was written in {kind} file format {fmt!r}, newer than "
                         f"this jaxdyn reads ({FORMAT}); upgrade jaxdyn to read it.")
    if header.get("kind", kind) != kind:
        raise ValueError(f"{str(path)!r} is a jaxdyn {header['kind']} file, not a {kind} file.")
    return header


def _corrupt(path: Any, kind: str, e: Exception) -> ValueError:
    return ValueError(f"{str(path)!r} is truncated or corrupted: its {kind} data could not be "
                      f"read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}).")


def save_model(path: str | os.PathLike, model: Any) -> None:
    """Save an RNN model to one file, written atomically: a JSON header (class, sizes, dtype
    and every constructor option that shapes the model, from `model.config()`) and the
    model's arrays.

    **Arguments:**

    - `path`: the file to write. An existing jaxdyn model file there (or an empty file) is
      replaced; any other file is not, so that a mistyped path cannot destroy other data.
    - `model`: a single `jaxdyn.rnn` model (not a stack: save each network of a stack apart,
      e.g. `jax.tree_util.tree_map(lambda a: a[i], stack)`).

    Reload with `load_model(path)`.

    **Raises:** `ValueError` for a model that is not a `jaxdyn.rnn` model, or a stack, and
    for a `path` that is a folder or an existing file other than a jaxdyn model file (one
    whose first line is not the JSON header of a model; a checkpoint is not a model file).
    """
    name = type(model).__name__
    if name not in _model_classes() or type(model) is not _model_classes()[name]:
        raise ValueError(f"`model` must be a jaxdyn.rnn model {sorted(_model_classes())}; got "
                         f"{name}.")
    if model.W_out.ndim != 2:
        raise ValueError(f"`model` is a stack of {model.W_out.shape[0]} networks (its W_out has "
                         f"shape {tuple(model.W_out.shape)}); save one network per file.")
    header = {"format": FORMAT, "kind": "model", "class": name, "n_in": model.n_in,
              "n_hidden": model.n_hidden, "n_out": model.n_out, "kwargs": model.config(),
              "dtype": str(model.W_out.dtype)}
    _check_replaceable(path)
    _write(path, header, model)


def _check_replaceable(path: str | os.PathLike) -> None:
    """Raise unless `path` is free, an empty file, or a jaxdyn model file (which
    `save_model` replaces)."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if path.is_dir():
        raise ValueError(f"`path` ({str(path)!r}) is a folder; `save_model` writes a file. "
                         f"Pass a file name, e.g. {str(path / 'model.eqx')!r}.")
    try:
        with open(path, "rb") as f:
            first = f.read(1)
            if not first:
                return  # an empty file holds nothing to lose
            line = first + f.readline(_HEADER_LIMIT) if first == b"{" else b""
    except OSError as e:
        raise ValueError(f"`path` ({str(path)!r}) exists and could not be read to tell "
                         f"whether it is a jaxdyn model file that `save_model` may replace "
                         f"({e}).") from None
    header = None
    try:
        header = json.loads(line.decode())
    except (ValueError, UnicodeDecodeError):
        pass
    kind = header.get("kind") if isinstance(header, dict) else None
    if kind == "model":
        return
    what = ("a jaxdyn checkpoint, not a model file" if kind == "checkpoint" else
            "not a jaxdyn model file (its first line is not the JSON header of one)")
    raise ValueError(f"`path` ({str(path)!r}) exists and is {what}; `save_model` replaces only "
                     f"model files. Pass another path, or delete the file first.")


def load_model(path: str | os.PathLike) -> Any:
    """Load a model written by `save_model`, in the dtype it was saved in.

    **Raises:** `ValueError` naming the file if it is not a model file, was written by a newer
    jaxdyn, holds an unknown class, or is truncated or corrupted.
    """
    import jax.random as jr

    with open(path, "rb") as f:
        header = _read_header(f, path, "model")
        classes = _model_classes()
        if header.get("class") not in classes:
            raise ValueError(f"{str(path)!r} holds a model of class {header.get('class')!r}; "
                             f"this jaxdyn knows {sorted(classes)}.")
        try:
            template = classes[header["class"]](header["n_in"], header["n_hidden"],
                                                header["n_out"], key=jr.PRNGKey(0),
                                                **header.get("kwargs", {}))
            dtype = jnp.dtype(header["dtype"])
        except (KeyError, TypeError) as e:
            raise _corrupt(path, "model", e) from None
        template = jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, template)
        try:
            return eqx.tree_deserialise_leaves(f, template)
        except Exception as e:  # a short or mangled payload raises many kinds of errors
            raise _corrupt(path, "model", e) from None


def fingerprint(model: Any, task: Any, key: Any, batch_size: int) -> dict[str, str]:
    """What identifies a training run: hashes of the initial model (structure and values),
    the task, the key, and the batch size."""

    def digest(*parts) -> str:
        h = hashlib.sha256()
        for p in parts:
            h.update(p if isinstance(p, bytes) else str(p).encode())
        return h.hexdigest()[:16]

    leaves, treedef = jax.tree_util.tree_flatten(eqx.filter(model, eqx.is_array))
    model_hash = digest(str(treedef), *(np.asarray(a).tobytes() for a in leaves))
    key_data = jax.random.key_data(key) if jnp.issubdtype(
        jnp.asarray(key).dtype, jax.dtypes.prng_key) else key
    return {"model": model_hash, "task": digest(repr(task)),
            "key": digest(np.asarray(key_data).tobytes()), "batch_size": str(batch_size)}


def save_checkpoint(path: str | os.PathLike, tree: Any, step: int, run: dict[str, str],
                    extra: tuple[np.ndarray, ...] = ()) -> None:
    """Write `tree` after `step` training steps of the run `run` (a `fingerprint`) to `path`
    atomically: a reader sees the old file or the new one, never a half-written one. `extra`
    arrays (e.g. a loss history) follow."""
    header = {"format": FORMAT, "kind": "checkpoint", "step": int(step), "run": run,
              "n_extra": len(extra)}
    _write(path, header, tree, extra)


def load_checkpoint(path: str | os.PathLike, like: Any,
                    run: dict[str, str] | None = None) -> tuple[Any, int, tuple]:
    """Read a checkpoint written by `save_checkpoint` into the structure of `like`.

    **Returns:** `(tree, step, extra)`.

    **Raises:** `ValueError` naming the file if it belongs to another run than `run`, is not a
    checkpoint, or is truncated or corrupted.
    """
    with open(path, "rb") as f:
        header = _read_header(f, path, "checkpoint")
        if run is not None and header.get("run") != run:
            old = header.get("run") or {}
            differ = [k for k in run if old.get(k) != run[k]] or ["format"]
            raise ValueError(
                f"the checkpoint {str(path)!r} belongs to another training run (its "
                f"{', '.join(differ)} differ{'s' if len(differ) == 1 else ''}: the initial model, "
                f"task, key and batch size must match to resume). Pass another "
                f"`checkpoint_dir`, or delete the file to start afresh.")
        try:
            tree = eqx.tree_deserialise_leaves(f, like)
            extra = tuple(np.load(f, allow_pickle=False) for _ in range(header["n_extra"]))
            step = int(header["step"])
        except Exception as e:
            raise _corrupt(path, "checkpoint", e) from None
    return tree, step, extra


def checkpoint_path(checkpoint_dir: str | os.PathLike) -> Path:
    """The checkpoint file of a run in `checkpoint_dir`."""
    return Path(checkpoint_dir) / "checkpoint.eqx"
