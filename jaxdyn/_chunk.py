"""Chunked `vmap`: map a function over a large batch in fixed-size chunks, under a memory budget.

`jax.vmap` over thousands of problems materialises every intermediate for the whole batch at
once (for Newton on an `n`-dimensional state: a few `n × n` matrices per problem). Running the
vmapped function chunk by chunk in a `lax.map` keeps the peak memory at one chunk's worth
while staying one compiled program, so the result still composes with `jit`, `vmap` and `grad`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._progress import as_meter

_DEFAULT_BUDGET = 2 * 1024**3  # bytes; used when the device does not report its memory


def memory_budget(fraction: float = 0.5) -> int:
    """A working-memory budget in bytes: `fraction` of the default device's memory limit when
    the device reports one (GPUs, TPUs), else 2 GiB (CPUs)."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # some backends do not implement memory_stats
        stats = {}
    limit = stats.get("bytes_limit")
    return int(fraction * limit) if limit else _DEFAULT_BUDGET


def resolve_chunk_size(batch: int, *, chunk_size: int | None = None,
                       bytes_per_item: int | None = None, budget: int | None = None) -> int:
    """The chunk size to use for `batch` problems.

    **Arguments:**

    - `batch`: the number of problems.
    - `chunk_size`: an explicit chunk size (wins when given).
    - `bytes_per_item`: an estimate of the working memory one problem needs.
    - `budget`: the memory budget in bytes (default `memory_budget()`).

    **Returns:** an int in `[1, batch]`; `batch` (no chunking) when neither `chunk_size` nor
    `bytes_per_item` is given.
    """
    if chunk_size is not None:
        return max(1, min(int(chunk_size), batch))
    if bytes_per_item is None or bytes_per_item <= 0:
        return max(batch, 1)
    budget = memory_budget() if budget is None else budget
    largest = max(1, min(batch, budget // int(bytes_per_item)))
    # Balance the chunks so that padding the last one wastes little work.
    n_chunks = math.ceil(batch / largest)
    return math.ceil(batch / n_chunks)


def chunked_vmap(
    fn: Callable,
    *args: Any,
    in_axes: int | None | Sequence[int | None] = 0,
    chunk_size: int | None = None,
    progress: Any = False,
    batched: bool = False,
) -> Any:
    """`jax.vmap(fn, in_axes)(*args)`, computed `chunk_size` problems at a time.

    The batch is padded up to a multiple of `chunk_size` by repeating its last problem (so the
    padding is as well-posed as real data), split into chunks that run one after another in a
    `lax.map`, and the padding is dropped from the output.

    **Arguments:**

    - `fn`: the function of one problem.
    - `*args`: its arguments; batched ones carry the batch on axis 0.
    - `in_axes`: as for `jax.vmap`, but only `0` (batched) or `None` (shared) per argument,
      either one value for all arguments or one per argument (a prefix over each PyTree).
    - `chunk_size`: problems per chunk; `None` runs the whole batch in one `vmap`.
    - `progress`: `True` for a bar that advances as chunks finish (through a host callback),
      or a progress meter (`jd.TqdmProgressMeter(desc=...)`).
    - `batched`: `fn` already takes a whole chunk (the batch on axis 0 of the batched
      arguments) and returns it on axis 0; it is then called per chunk, not `vmap`ped.

    **Returns:** the output of `fn`, with the batch on axis 0 of every leaf.

    **Raises:** `ValueError` if no argument is batched or the batched arguments disagree on
    the batch size.
    """
    if not isinstance(in_axes, (list, tuple)):
        in_axes = (in_axes,) * len(args)
    if len(in_axes) != len(args):
        raise ValueError(f"`in_axes` has {len(in_axes)} entries for {len(args)} arguments.")
    sizes = set()
    for a, ax in zip(args, in_axes):
        if ax is not None:
            sizes.update(leaf.shape[0] for leaf in jax.tree_util.tree_leaves(a))
    if len(sizes) != 1:
        raise ValueError(
            f"the batched arguments of `chunked_vmap` must share one leading batch size; "
            f"got sizes {sorted(sizes)}."
        )
    batch = sizes.pop()
    meter = as_meter(progress, "chunks", "chunk")
    size = resolve_chunk_size(batch, chunk_size=chunk_size)
    vfn = fn if batched else jax.vmap(fn, in_axes=tuple(in_axes))
    n_chunks = math.ceil(batch / size) if batch else 1
    if n_chunks == 1 and not meter.enabled:
        return vfn(*args)

    pad = n_chunks * size - batch

    def split(leaf):
        if pad:
            leaf = jnp.concatenate([leaf, jnp.repeat(leaf[-1:], pad, axis=0)], axis=0)
        return leaf.reshape((n_chunks, size) + leaf.shape[1:])

    batched = [jax.tree_util.tree_map(split, a) if ax is not None else None
               for a, ax in zip(args, in_axes)]

    def body(ib):
        i, chunk = ib
        call = [c if ax is not None else a for a, c, ax in zip(args, chunk, in_axes)]
        out = vfn(*call)
        meter.report(i + 1, n_chunks)
        return out

    out = jax.lax.map(body, (jnp.arange(n_chunks), batched))
    merge = lambda leaf: leaf.reshape((n_chunks * size,) + leaf.shape[2:])[:batch]
    return jax.tree_util.tree_map(merge, out)
