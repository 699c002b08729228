"""Sweeps: 10⁵ equilibrium problems, chunked `jd.sweep` against one-shot `vmap` and a Python
loop; throughput, peak memory, and scaling over forced host devices.

The problem: Beer's one-neuron CTRNN τ y' = −y + w σ(y − 3) + I over a 316 × 316 grid of
(w, I) ∈ [4, 8] × [−6, 2] (99,856 points), each solved by `jd.fixed_points` from 3 starts
(float64). Every configuration runs in its own subprocess, so that its peak resident memory
(`ru_maxrss`) is its own; the times are warm (a first call compiles and is reported apart).

    python benchmarks/sweep.py [--side 316] [--devices 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
import jaxdyn as jd
from jaxdyn.systems import beer_ctrnn

mode, side, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def equilibria(p):
    system = beer_ctrnn(1, W=p["w"][None, None], theta=jnp.array([-3.0]))
    x0s = jnp.array([[-6.0], [3.0], [10.0]])
    fps = jd.fixed_points(system, x0s, p["I"][None], linearise=False, tol=1e-10)
    return {"y": fps.x[:, 0], "converged": fps.converged}

params = jd.grid_params(w=np.linspace(4.0, 8.0, side), I=np.linspace(-6.0, 2.0, side))
n = side * side

def run():
    if mode == "vmap":
        out = jax.jit(jax.vmap(equilibria))(jax.tree_util.tree_map(jnp.asarray, params))
        return jax.tree_util.tree_map(np.asarray, out)
    if mode == "loop":  # a Python loop over 500 points, scaled to the sweep
        f = jax.jit(equilibria)
        for i in range(500):
            jax.block_until_ready(f({k: jnp.asarray(v[i]) for k, v in params.items()}))
        return None
    return jd.sweep(equilibria, params, chunk_size=chunk, progress=False).values

t = time.perf_counter(); out = run(); first = time.perf_counter() - t
t = time.perf_counter(); out = run(); warm = time.perf_counter() - t
if mode == "loop":
    warm *= n / 500
converged = None if out is None else float(np.mean(out["converged"]))
print(json.dumps(dict(first=first, warm=warm, n=n, converged=converged,
                      devices=jax.local_device_count(),
                      peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def child(mode: str, side: int, chunk: int, devices: int = 1) -> dict:
    env = dict(os.environ)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(side), str(chunk)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=316)
    parser.add_argument("--devices", default="1,2,4")
    opts = parser.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))
    from _common import machine

    print(f"machine: {machine()}; {opts.side}² = {opts.side**2} points, 3 starts each, float64")
    rows = []
    base = child("vmap", opts.side, 0)
    rows.append(("one-shot jit(vmap)", base))
    for chunk in (4096, 16384):
        rows.append((f"jd.sweep, chunk {chunk}", child("sweep", opts.side, chunk)))
    rows.append(("Python loop over points (500 sampled, scaled)", child("loop", opts.side, 0)))
    for d in [int(d) for d in opts.devices.split(",") if int(d) > 1]:
        rows.append((f"jd.sweep, chunk 16384, {d} forced host devices",
                     child("sweep", opts.side, 16384, d)))
    print()
    print("| configuration | warm (s) | points / s | vs one-shot vmap | compile + first (s) "
          "| peak RSS (MiB) | converged starts |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, r in rows:
        conv = "—" if r["converged"] is None else f"{100 * r['converged']:.1f} %"
        print(f"| {label} | {r['warm']:.2f} | {r['n'] / r['warm']:,.0f} | "
              f"{base['warm'] / r['warm']:.2f}× | {r['first']:.2f} | {r['peak_mib']:.0f} | "
              f"{conv} |")


if __name__ == "__main__":
    main()
