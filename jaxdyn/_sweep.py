"""Sweeps: one jittable function over thousands of points, chunked, sharded and resumable.

`sweep(fn, params)` computes what `jax.vmap(fn)(params)` would, a chunk of points at a time:
each chunk is one call of the same compiled program, spread over every local device (a
`NamedSharding` over a 1-D mesh), and its output is copied to host memory, so the device's working
memory stays at one chunk's worth however many points there are. With several JAX processes
(`jax.distributed.initialize`), process `r` of `P` runs chunks `r, r + P, …` and the results
are gathered with JAX's own collectives. With `out=folder` every finished chunk is written
atomically; a rerun of the same sweep (the same traced program of `fn`, or the same `key=`, over
the same points) loads them instead of computing them again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Bool, PyTree

from ._chunk import memory_budget
from ._io import write_atomic
from ._progress import as_meter
from ._solution import RESULTS
from ._validate import check_int, check_positive, describe

_FORMAT = 2  # 2: a sweep is identified by its traced program (or `key`), not its source text
_AXIS = "points"
_STRUCTURE = "structure.pkl"  # the output PyTree structure of a batched sweep
_CPU_CAP, _ACCEL_CAP = 4096, 65536  # the largest default chunk per device
_PROBE = 8  # points per device in the compiled probe that sizes chunks from the memory budget
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")  # object addresses in reprs differ between processes


class SweepResult(eqx.Module):
    """The outcome of `jd.sweep`.

    **Fields:**

    - `values`: `fn`'s output for every point, each leaf with the points on axis 0 (NumPy
      arrays in host memory, in the order of `params`).
    - `result`: a `jd.RESULTS` per point: `successful`, or `nonfinite_output` where any
      floating-point leaf of `fn`'s output holds NaN or inf for that point. Statuses that `fn`
      itself returns (e.g. `FixedPoints.result`) stay in `values`.
    """

    values: PyTree
    result: RESULTS

    @property
    def ok(self) -> Bool[Any, " n"]:
        """True for the points whose output is finite."""
        return np.asarray(self.result._value) == RESULTS.successful._value


def grid_params(**axes: Any) -> dict[str, np.ndarray]:
    """The product grid of named 1-D axes as flat sweep points.

    `grid_params(w=ws, I=Is)` returns `{"w": ..., "I": ...}`, each of length
    `len(ws) * len(Is)`, with the last axis varying fastest (so a result reshapes to
    `(len(ws), len(Is))`). (For a grid of states, e.g. for `jd.ftle`, see `jd.grid`.)

    **Raises:** `ValueError` when no axis is given or an axis is not a non-empty 1-D array.
    """
    if not axes:
        raise ValueError("`grid_params` needs at least one named axis, e.g. "
                         "grid_params(w=np.linspace(0, 1, 10)).")
    arrays = []
    for name, values in axes.items():
        a = np.asarray(values)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"axis `{name}` of `grid_params` must be a non-empty 1-D array; "
                             f"got {describe(a)}.")
        arrays.append(a)
    mesh = np.meshgrid(*arrays, indexing="ij")
    return {name: m.reshape(-1) for name, m in zip(axes, mesh)}


def sweep(
    fn: Callable[[PyTree], PyTree],
    params: PyTree,
    *,
    chunk_size: int | None = None,
    budget: int | None = None,
    out: str | os.PathLike | None = None,
    key: str | None = None,
    progress: Any = True,
    batched: bool = False,
) -> SweepResult:
    """Evaluate `fn` at every point of `params`: `jax.vmap(fn)(params)`, computed in chunks.

    **Arguments:**

    - `fn`: a function of one point (a PyTree like `params` without its leading axis) that
      `jax.jit` and `jax.vmap` can trace, returning a PyTree of arrays: one call of
      `jd.fixed_points`, `jd.simulate`, `jd.train`, …
    - `params`: a PyTree of arrays sharing a leading axis, the sweep points (see `grid_params`
      for a product grid).
    - `chunk_size`: points per chunk. Default: as many as fit the memory budget (half the
      device memory; 2 GiB on a CPU), measured by compiling `fn` once on a few points, and at
      most 4,096 per CPU device or 65,536 per accelerator.
    - `budget`: the memory budget in bytes for the default chunk size.
    - `out`: a folder for a resumable sweep. Every finished chunk is written there atomically
      with a manifest that identifies the sweep by what determines its values: a hash of
      `params` (structure, shapes and values) and of the program `fn` traces to on one point
      (its jaxpr, with every constant it captures: closed-over arrays and Python numbers,
      `functools.partial` arguments, the helpers it calls), and `fn`'s output structure.
      Rerunning the same sweep loads the finished chunks and computes only the rest; a folder
      that holds another sweep raises `ValueError`, so that old and new results never mix.
    - `key`: a string that identifies `fn` in `out` in place of its traced program: for a
      function whose jaxpr differs between runs though its values do not, for `batched=True`
      (where `fn` is not traced, and `out` needs a `key`), or to decide yourself when finished
      chunks are reused (e.g. `key="ctrnn-fixed-points-v2"`; change it whenever `fn` changes).
      The points and the output structure are still checked. What the jaxpr cannot show, a
      host callback's Python code, is covered only by a `key`.
    - `progress`: `True` for a bar (points done, points per second, time left), `False`, or a
      progress meter (`jd.TqdmProgressMeter(...)`).
    - `batched`: `fn` takes a whole chunk (every leaf with `chunk_size` points on axis 0; the
      last chunk padded by repeating its last point) and returns arrays with the points on
      axis 0. For calls that batch themselves but cannot be traced, such as `jd.train` on a
      stack of networks; `sweep` then only chunks, resumes, splits over processes and shows
      progress (default chunk: all points at once). With `out`, pass a `key`.

    Chunks are spread over all local devices (a chunk is padded to a multiple of their number
    by repeating its last point). Under `jax.distributed` every process takes every `P`-th
    chunk and all processes receive the whole result; give every process the same `params`
    and, for `out`, a folder they share.

    **Returns:** a `SweepResult` with `values` (axis 0 = points) and a status per point. A
    point whose output is NaN is reported there and does not stop the sweep.

    With `out`, a chunk's file is written as soon as the chunk is finished, also when a later
    chunk raises, so that a rerun (after a passing failure, or with `fn` fixed under the same
    `key`) computes only the chunks that are missing.

    **Raises:** `ValueError` for `params` without a common leading axis, a `fn` that cannot be
    traced on one point (naming the point's leaves), a bad `chunk_size`, `budget` or `key`,
    `batched=True` with `out` but no `key`, or an `out` folder that holds a different sweep
    (naming what differs).
    """
    if not callable(fn):
        raise ValueError(f"`fn` must be a function of one sweep point; got {type(fn).__name__}.")
    leaves, treedef = _check_params(params)
    n = leaves[0].shape[0]
    if budget is not None:
        check_positive(budget, "budget")
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ValueError(f"`key` must be a non-empty string that names what `fn` computes; got "
                         f"{describe(key)}.")
    if batched and out is not None and key is None:
        raise ValueError("`out` with `batched=True` needs a `key`: a batched `fn` is not traced, "
                         "so nothing else tells whether the finished chunks in `out` were "
                         "computed by the same function. Pass e.g. key=\"train-seeds-v1\", and "
                         "change it whenever `fn` changes.")
    devices = jax.local_devices()
    out_def, program = None, None
    if batched:
        run = fn
    else:
        program, out_def = _trace(fn, jax.tree_util.tree_unflatten(
            treedef, [a[0] for a in leaves]))
        run = _Program(fn, devices)
    identity = None if out is None else _identity(program, out_def, key, leaves, treedef,
                                                  batched)
    folder, manifest = (None, None) if out is None else _open(out, identity, _name(fn))
    if manifest is not None and chunk_size not in (None, manifest["chunk_size"]):
        raise ValueError(f"`out` ({folder}) holds this sweep in chunks of "
                         f"{manifest['chunk_size']} points; got chunk_size={chunk_size}. Pass "
                         f"the same chunk_size, or none.")
    if manifest is not None:
        chunk = manifest["chunk_size"]
    elif chunk_size is not None:
        chunk = min(chunk_size, n)
    elif batched:
        chunk = n
    else:
        chunk = _default_chunk(run, leaves, treedef, n, len(devices), budget)
    if folder is not None and manifest is None:
        write_atomic(folder / "manifest.json",
                     json.dumps({"format": _FORMAT, "identity": identity, "points": n,
                                 "chunk_size": chunk, "function": _name(fn)}, indent=1))
    if batched and folder is not None and (folder / _STRUCTURE).exists():
        out_def = pickle.loads((folder / _STRUCTURE).read_bytes())

    n_chunks = math.ceil(n / chunk)
    rank, n_proc = jax.process_index(), jax.process_count()
    mine = list(range(rank, n_chunks, n_proc))
    slot = {i: k for k, i in enumerate(mine)}  # where chunk i sits in this process's buffers
    width = chunk if batched else -(-chunk // len(devices)) * len(devices)
    store = _Store(folder, len(mine) * chunk, chunk)
    done = set()
    if folder is not None and out_def is not None:
        done = {i for i in mine if store.load(i, slot[i])}
    size = lambda i: min(chunk, n - i * chunk)  # noqa: E731 (points in chunk i, unpadded)
    finished = sum(map(size, done))
    handle = as_meter(progress, "sweep", "point").open(sum(map(size, mine)), initial=finished)

    def finish(i: int, tree: PyTree) -> None:  # read chunk i back, keep it and write its file
        nonlocal out_def, finished
        if batched:
            tree = _check_batched_output(tree, width, out_def)
            if out_def is None:
                out_def = jax.tree_util.tree_structure(tree)
                if folder is not None:
                    write_atomic(folder / _STRUCTURE, pickle.dumps(out_def))
        store.save(i, slot[i], tree)
        done.add(i)
        finished += size(i)
        handle.update(finished, chunks=f"{len(done)}/{len(mine)}")

    try:
        # The chunk in flight. A finished one is written before the next is dispatched (a
        # dispatch can run a whole chunk: host callbacks on a CPU, a batched `fn`); one still
        # computing is read back once the next is queued, so that the device keeps working.
        pending = None
        for i in [i for i in mine if i not in done] + [None]:
            if pending is not None and _ready(pending[1]):
                finish(*pending)
                pending = None
            try:
                launched = None if i is None else (
                    i, run(_take(leaves, treedef, i * chunk, width, n)))
            except Exception:
                if pending is not None:  # write the chunk before it, then raise
                    finish(*pending)
                raise
            if pending is not None:
                finish(*pending)
            pending = launched
    finally:
        handle.close()

    results = store.buffers
    if n_proc > 1:
        results = _gather(results, len(mine), chunk, n_chunks, n_proc)
    values = jax.tree_util.tree_unflatten(out_def, [r[:n] for r in results])
    return SweepResult(values=values, result=_status(values, n))


def _trace(fn: Callable, point: PyTree):
    """`fn`'s program on one point (a `ClosedJaxpr`) and its output structure."""
    try:
        program, out_shape = jax.make_jaxpr(fn, return_shape=True)(point)
    except Exception as e:  # report which point the trace failed on, with its leaves
        raise ValueError(
            f"`fn` could not be traced on one point of `params` ({_describe_point(point)}): "
            f"{type(e).__name__}: {e}. A function that cannot be traced (a host loop such as "
            f"`jd.train`) can run with `batched=True` on whole chunks."
        ) from e
    for path, leaf in jax.tree_util.tree_leaves_with_path(out_shape):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            raise ValueError(f"`fn` must return a PyTree of arrays; its output at "
                             f"{jax.tree_util.keystr(path) or 'the root'} is {leaf!r}.")
    return program, jax.tree_util.tree_structure(out_shape)


def _ready(tree: PyTree) -> bool:
    """Whether every array of a chunk's output is computed (host arrays always are)."""
    return all(leaf.is_ready() for leaf in jax.tree_util.tree_leaves(tree)
               if isinstance(leaf, jax.Array))


def _check_batched_output(tree: PyTree, width: int, out_def) -> PyTree:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if getattr(leaf, "ndim", 0) < 1 or leaf.shape[0] != width:
            raise ValueError(
                f"with `batched=True`, `fn` must return arrays with the chunk's {width} points "
                f"on axis 0; its output at {jax.tree_util.keystr(path) or 'the root'} is "
                f"{describe(leaf)}.")
    if out_def is not None and jax.tree_util.tree_structure(tree) != out_def:
        raise ValueError("with `batched=True`, `fn` returned a different structure for this "
                         "chunk than for earlier ones.")
    return tree


def _check_params(params: PyTree):
    leaves_with_path = jax.tree_util.tree_leaves_with_path(params)
    if not leaves_with_path:
        raise ValueError("`params` must hold at least one array of sweep points; got "
                         f"{params!r}.")
    leaves, sizes = [], {}
    for path, leaf in leaves_with_path:
        name = f"params{jax.tree_util.keystr(path)}"
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            leaf = np.asarray(leaf)
            if leaf.dtype == object:
                raise ValueError(f"`{name}` must be an array; got {describe(leaf)}.")
        if leaf.ndim == 0:
            raise ValueError(f"`{name}` must have a leading axis of sweep points; got a "
                             f"scalar.")
        leaves.append(leaf)
        sizes[name] = leaf.shape[0]
    if len(set(sizes.values())) != 1:
        listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"every leaf of `params` must have the same number of points on axis "
                         f"0; got {listed}.")
    if next(iter(sizes.values())) == 0:
        raise ValueError("`params` holds no sweep points (its leading axis has length 0).")
    return leaves, jax.tree_util.tree_structure(params)


def _describe_point(point: PyTree) -> str:
    parts = [f"params{jax.tree_util.keystr(p)}: {describe(x)}"
             for p, x in jax.tree_util.tree_leaves_with_path(point)]
    return "; ".join(parts)


def _name(fn: Callable) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or \
        type(fn).__qualname__
    return f"{module}.{name}".lstrip(".")


def _identity(program, out_def, key: str | None, leaves: list, treedef,
              batched: bool) -> dict:
    """What identifies a sweep in its folder: hashes of the points (structure, shapes, values),
    of `fn`'s traced program (jaxpr text and constants) or else its `key`, and of its output
    structure."""
    points = _digest(str(treedef), *leaves)
    output = None if out_def is None else _digest(str(out_def))
    if key is not None or program is None:
        return {"batched": batched, "points": points, "key": key, "program": None,
                "output": output}
    consts = [jax.random.key_data(c) if isinstance(c, jax.Array) and
              jnp.issubdtype(c.dtype, jax.dtypes.prng_key) else c for c in program.consts]
    return {"batched": batched, "points": points, "key": None,
            "program": _digest(str(program.jaxpr), *consts), "output": output}


def _digest(text: str, *arrays) -> str:
    """A SHA-256 of `text` (object addresses removed: they differ between processes) and of
    the arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256(_ADDRESS.sub("0x", text).encode())
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"|{a.dtype}{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _open(out, identity: dict, name: str):
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`out` must be a folder; {folder} is a file.")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.json"
    if not path.exists():
        if any(folder.glob("chunk_*.npz")):
            raise ValueError(f"`out` ({folder}) holds chunk files but no manifest; it is not a "
                             f"sweep folder this call can resume. Use an empty folder.")
        return folder, None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"`out`: the manifest {path} cannot be read ({e}).") from e
    differs = _difference(manifest, identity, name)
    if differs is not None:
        raise ValueError(
            f"`out` ({folder}) holds another sweep (of {manifest.get('function', '?')} over "
            f"{manifest.get('points', '?')} points): {differs}. Its finished chunks would mix "
            f"with this sweep's values; pass a new `out` folder, or delete {folder} to start "
            f"again.")
    return folder, manifest


def _difference(manifest: dict, identity: dict, name: str) -> str | None:
    """What differs between the sweep in a manifest and this one, in words; None if nothing."""
    fmt = manifest.get("format")
    old = manifest.get("identity")
    if fmt != _FORMAT or not isinstance(old, dict):
        return (f"it was written in sweep format {fmt!r}, which identifies a sweep otherwise "
                f"than this jaxdyn (format {_FORMAT}) does, so it cannot be matched to this one")
    if old.get("batched") != identity["batched"]:
        return (f"it was run with batched={old.get('batched')}, this call has "
                f"batched={identity['batched']}")
    if old.get("points") != identity["points"]:
        return "its `params` differ from this call's (in structure, shapes or values)"
    if old.get("key") != identity["key"]:
        if identity["key"] is None:
            return (f"it was written with key={old.get('key')!r} and this call passes no "
                    f"`key`")
        if old.get("key") is None:
            return (f"it was identified by the traced program of its `fn` and this call "
                    f"passes key={identity['key']!r}")
        return f"it was written with key={old.get('key')!r}, this call passes {identity['key']!r}"
    if old.get("program") != identity["program"]:
        return (f"`fn` ({name}) traces to another program than the function that wrote it: "
                f"its jaxpr or its constants differ (a changed closed-over value, "
                f"`functools.partial` argument, called helper or option)")
    if old.get("output") != identity["output"]:
        return f"`fn` ({name}) returns another structure than the function that wrote it"
    return None


class _Program:
    """One compiled program for a chunk: `vmap(fn)`, its points split over the devices.

    The chunk is placed with a `NamedSharding` over a 1-D mesh of the local devices and the
    output is constrained to the same sharding, so XLA's partitioner gives each device its
    slice of points (`shard_map` would hand `fn` device-local types that some solvers reject).
    A hashable `fn` (a plain function) shares its compilation between sweeps through JAX's
    cache; another callable compiles once per sweep."""

    def __init__(self, fn: Callable, devices: list):
        self.sharding = None if len(devices) == 1 else NamedSharding(
            Mesh(np.asarray(devices), (_AXIS,)), PartitionSpec(_AXIS))
        try:
            hash(fn)
        except TypeError:
            self.fn, self.jitted = None, jax.jit(lambda chunk: _batched(fn, self.sharding,
                                                                        chunk))
        else:
            self.fn, self.jitted = fn, _batched_jit

    def _args(self, chunk):
        if self.sharding is not None:
            chunk = jax.device_put(chunk, self.sharding)
        return (chunk,) if self.fn is None else (self.fn, self.sharding, chunk)

    def __call__(self, chunk):
        return self.jitted(*self._args(chunk))

    def lower(self, chunk):
        return self.jitted.lower(*self._args(chunk))


def _batched(fn: Callable, sharding, chunk):
    out = jax.vmap(fn)(chunk)
    if sharding is not None:
        out = jax.lax.with_sharding_constraint(out, sharding)
    return out


_batched_jit = jax.jit(_batched, static_argnums=(0, 1))


def _take(leaves: list, treedef, start: int, width: int, n: int) -> PyTree:
    """The `width` points from `start` on, padded by repeating the last point."""
    idx = np.minimum(np.arange(start, start + width), n - 1)
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(np.asarray(a)[idx])
                                                  if isinstance(a, np.ndarray) else a[idx]
                                                  for a in leaves])


def _default_chunk(run, leaves, treedef, n: int, n_devices: int, budget) -> int:
    """Points per chunk from the memory that the compiled program needs for a few points."""
    probe = _PROBE * n_devices
    sample = _take(leaves, treedef, 0, probe, n)
    try:
        stats = run.lower(sample).compile().memory_analysis()
        per_point = (stats.temp_size_in_bytes + stats.argument_size_in_bytes +
                     stats.output_size_in_bytes) / probe
    except Exception:  # a backend without memory analysis
        per_point = None
    # Past a few thousand points per device a chunk gains little throughput and loses
    # resume granularity and progress updates (accelerators want wider batches than CPUs).
    cap = (_CPU_CAP if jax.default_backend() == "cpu" else _ACCEL_CAP) * n_devices
    if not per_point:
        return min(n, cap)
    budget = memory_budget() if budget is None else int(budget)
    largest = max(n_devices, min(cap, int(budget // (per_point * 1.25))))
    n_chunks = math.ceil(n / min(n, largest))
    return math.ceil(n / n_chunks)


class _Store:
    """Host buffers for this process's chunks (allocated from the first chunk seen), and
    their files in the sweep folder."""

    def __init__(self, folder, rows: int, chunk: int):
        self.folder, self.rows, self.chunk = folder, rows, chunk
        self.buffers: list[np.ndarray] | None = None

    def _put(self, slot: int, arrays: list) -> None:
        if self.buffers is None:
            self.buffers = [np.empty((self.rows,) + a.shape[1:], a.dtype) for a in arrays]
        for buf, a in zip(self.buffers, arrays):
            buf[slot * self.chunk:(slot + 1) * self.chunk] = a

    def save(self, i: int, slot: int, tree: PyTree) -> None:
        arrays = [np.asarray(a)[:self.chunk] for a in jax.tree_util.tree_leaves(tree)]
        self._put(slot, arrays)
        if self.folder is not None:
            named = {f"leaf_{j}": a for j, a in enumerate(arrays)}
            write_atomic(self.folder / f"chunk_{i:06d}.npz", lambda f: np.savez(f, **named))

    def load(self, i: int, slot: int) -> bool:
        """Fill chunk `i` from its file; False when there is none (or it cannot be read)."""
        path = self.folder / f"chunk_{i:06d}.npz"
        if not path.exists():
            return False
        try:
            with np.load(path) as data:
                arrays = [data[f"leaf_{j}"] for j in range(len(data.files))]
        except Exception:  # unreadable: compute the chunk again
            return False
        if any(a.shape[0] != self.chunk for a in arrays) or (
                self.buffers is not None and
                [(a.shape[1:], a.dtype) for a in arrays] !=
                [(b.shape[1:], b.dtype) for b in self.buffers]):
            return False
        self._put(slot, arrays)
        return True


def _gather(results: list, per_process: int, chunk: int, n_chunks: int, n_proc: int) -> list:
    """Every process's chunks to every process, back in chunk order."""
    from jax.experimental import multihost_utils

    width = math.ceil(n_chunks / n_proc)
    out = []
    for buf in results:
        local = np.zeros((width, chunk) + buf.shape[1:], buf.dtype)
        local[:per_process] = buf.reshape((per_process, chunk) + buf.shape[1:])
        every = np.asarray(multihost_utils.process_allgather(local))  # (P, width, chunk, …)
        # Chunk i was run by process i % P as its (i // P)-th.
        order = every.transpose((1, 0) + tuple(range(2, every.ndim)))
        out.append(order.reshape((width * n_proc * chunk,) + buf.shape[1:])[:n_chunks * chunk])
    return out


def _status(values: PyTree, n: int) -> RESULTS:
    """`nonfinite_output` for the points where a floating-point leaf holds NaN or inf."""
    bad = np.zeros(n, bool)
    for leaf in jax.tree_util.tree_leaves(values):
        if np.issubdtype(leaf.dtype, np.inexact):
            bad |= ~np.all(np.isfinite(leaf.reshape(n, -1)), axis=1)
    code = np.where(bad, RESULTS.nonfinite_output._value, RESULTS.successful._value)
    item = RESULTS.successful
    return eqx.tree_at(lambda r: r._value, item, jnp.asarray(code, item._value.dtype))
