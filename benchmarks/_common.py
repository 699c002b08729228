"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import platform
import time

import jax


def block(tree):
    return jax.tree_util.tree_map(
        lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def time_jax(fn, *args, repeats: int = 3):
    """(compile-and-first-call seconds, best warm seconds, result) of a jitted call."""
    t = time.perf_counter()
    out = block(fn(*args))
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = block(fn(*args))
        best = min(best, time.perf_counter() - t)
    return first, best, out


def time_call(fn, *args, repeats: int = 1):
    """Best wall time of a plain Python call."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, out


def machine() -> str:
    import os

    return (f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}; "
            f"JAX {jax.__version__} on {jax.default_backend()}")
