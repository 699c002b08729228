"""Dynamical Similarity Analysis against dsa-metric (PyPI `dsa-metric`, imported as `DSA`).

Problem: 10 networks (random tanh RNNs of 64 units, two families of connectivity gain, 1.1
and 1.6, five seeds each), 50 trajectories × 200 steps each (noisy, from random states),
float32. DSA with n_delays 10, rank 50, Procrustes by Adam (1,500 steps, lr 5e-3).

- one distance (networks 0 and 5), angular score, and the eigenvalue ("wasserstein") score;
- the 10 × 10 pairwise matrix, both scores: jaxdyn `dsa.pairwise` (one compiled call) against
  `DSA(list_of_networks, ...).fit_score()`.

Both sides start from the trajectories (the operator fits are included). Reported: compile
(first call) and best warm wall time of jaxdyn (`--repeats` warm calls), dsa-metric's wall
time (one call: it has no compilation), the ratio, the distances, the correlation of the
matrices, and the ratio of each jaxdyn Procrustes distance to dsa-metric's (below 1: a lower
minimum of the same objective). The load average is printed before and after, and a markdown
section for `benchmarks/RESULTS.md` at the end. dsa-metric runs in this process on torch CPU
(its `DSA` casts to float32) with one intra-op thread (`--torch-threads`; on a shared
2-core machine two threads made it 10-20× slower); it is skipped with a note when missing.

    python benchmarks/dsa.py [--networks 10] [--iters 1500] [--n-starts 16] [--repeats 3]
                             [--no-peer-pairwise]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, time_jax


def networks(P, K=50, T=200, n=64, seed=0):
    """[P, K, T, n] trajectories of random tanh RNNs x ← tanh(W x) + 0.1 ξ."""
    out = []
    for p in range(P):
        rng = np.random.default_rng(seed + p)
        gain = 1.1 if p < P // 2 else 1.6
        W = gain * rng.standard_normal((n, n)) / np.sqrt(n)
        x = rng.standard_normal((K, n))
        traj = []
        for _ in range(T):
            x = np.tanh(x @ W.T) + 0.1 * rng.standard_normal((K, n))
            traj.append(x)
        out.append(np.stack(traj, 1))
    return np.stack(out).astype(np.float32)


def load() -> str:
    import os

    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=10)
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--n-starts", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-peer-pairwise", action="store_true")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch intra-op threads for dsa-metric (1: its fastest setting on a "
                         "shared 2-core machine; with 2 it slowed 10-20x under load)")
    a = ap.parse_args()
    import jaxdyn.dsa as dsa

    Xs = networks(a.networks)
    P = a.networks
    kw = dict(n_delays=10, rank=50)
    opt = dict(iters=a.iters, lr=5e-3, n_starts=a.n_starts)
    i, j = 0, P // 2
    print(machine())
    problem = (f"{P} networks × {Xs.shape[1]} trajectories × {Xs.shape[2]} steps × "
               f"{Xs.shape[3]} units, float32; n_delays 10, rank 50; dsa-metric: Adam "
               f"{a.iters} steps at lr 5e-3; jaxdyn: {a.n_starts} starts, at most {a.iters} "
               "Barzilai–Borwein steps each")
    print(problem)
    load0 = load()
    print("before:", load0)
    Xd = jnp.asarray(Xs)
    res = {}
    for score in ("angular", "wasserstein"):
        one = lambda s=score: dsa.distance(Xd[i], Xd[j], score=s, **kw, **opt)
        res["one", score] = time_jax(one, repeats=a.repeats)
        allp = lambda s=score: dsa.pairwise(Xd, score=s, **kw, **opt)
        res["all", score] = time_jax(allp, repeats=max(1, a.repeats - 1))
    fit = lambda: dsa.fit_operator(Xd, **kw).A
    c, w, _ = time_jax(fit, repeats=a.repeats)
    print(f"jaxdyn fit of {P} operators: compile+first {c:.2f} s, warm {w:.2f} s")

    try:
        import torch
        from DSA import DSA
        torch.set_num_threads(a.torch_threads)
        threads = torch.get_num_threads()
    except ImportError:
        DSA = None
        print("dsa-metric not installed (pip install dsa-metric): peer skipped")

    n_pairs = P * (P - 1) // 2
    rows = []
    for score in ("angular", "wasserstein"):
        c1, w1, d1 = res["one", score]
        c2, w2, D = res["all", score]
        D = np.asarray(D)
        print(f"\n[{score}] jaxdyn one distance: {float(d1):.5f}, warm {w1:.3f} s "
              f"(compile+first {c1:.2f} s); pairwise {P}x{P}: warm {w2:.2f} s, "
              f"{w2 / n_pairs * 1e3:.1f} ms per pair (compile+first {c2:.2f} s)")
        row = dict(score=score, c1=c1, w1=w1, d1=float(d1), c2=c2, w2=w2)
        rows.append(row)
        if DSA is None:
            continue
        torch.manual_seed(0)
        t = time.perf_counter()
        pd = DSA(Xs[i], Xs[j], score_method=score, iters=a.iters, lr=5e-3, **kw).fit_score()
        tp = time.perf_counter() - t
        row.update(p1=tp, pd1=float(pd))
        print(f"  dsa-metric one distance: {float(pd):.5f}, {tp:.2f} s -> ratio "
              f"{tp / w1:.1f}x; jaxdyn/peer distance {float(d1) / float(pd):.4f}")
        if a.no_peer_pairwise:
            continue
        torch.manual_seed(0)
        t = time.perf_counter()
        PD = np.asarray(DSA(list(Xs), score_method=score, iters=a.iters, lr=5e-3,
                            **kw).fit_score())
        tp = time.perf_counter() - t
        iu = np.triu_indices(P, 1)
        r = D[iu] / PD[iu]
        corr = np.corrcoef(D[iu], PD[iu])[0, 1]
        diff = np.abs(D - PD).max()
        row.update(p2=tp, corr=corr, rmin=r.min(), rmed=np.median(r), rmax=r.max(), diff=diff)
        print(f"  dsa-metric pairwise: {tp:.1f} s ({tp / n_pairs:.2f} s per pair) -> "
              f"ratio {tp / w2:.1f}x; corr {corr:.5f}; jaxdyn/peer per pair: min "
              f"{r.min():.4f} median {np.median(r):.4f} max {r.max():.4f}; max |diff| "
              f"{diff:.2e}")
    load1 = load()
    print("after:", load1)
    print(markdown(rows, problem, P, n_pairs, load0, load1, None if DSA is None else threads))


def markdown(rows, problem, P, n_pairs, load0, load1, threads) -> str:
    """The results as a section of `benchmarks/RESULTS.md`."""
    peer = threads is not None
    out = ["", "## Dynamical Similarity Analysis (`dsa.py`)", "",
           f"{problem}. Both from the trajectories (operator fits included); jaxdyn warm "
           f"(best of repeats, compile apart), dsa-metric 2.0.2 one call in the same process "
           f"(torch CPU, {threads} threads). Machine shared with other jobs: {load0} before, "
           f"{load1} after (2 cores).", "",
           "| task | score | jaxdyn warm | jaxdyn compile+first | dsa-metric | ratio | "
           "distances |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        s = r["score"]
        if peer and "p1" in r:
            p1 = f"{r['p1']:.2f} s"
            ratio = f"{r['p1'] / r['w1']:.0f}×"
            dist = f"jaxdyn {r['d1']:.5f}, dsa-metric {r['pd1']:.5f}"
        else:
            p1 = ratio = "—"
            dist = f"jaxdyn {r['d1']:.5f}"
        out.append(f"| one distance | {s} | {r['w1'] * 1e3:.0f} ms | {r['c1']:.1f} s | {p1} | "
                   f"{ratio} | {dist} |")
        if peer and "p2" in r:
            p2 = f"{r['p2']:.1f} s ({r['p2'] / n_pairs:.2f} s/pair)"
            ratio = f"{r['p2'] / r['w2']:.0f}×"
            if s == "wasserstein":
                dist = f"max abs diff {r['diff']:.1e}; corr {r['corr']:.6f}"
            else:
                dist = (f"corr {r['corr']:.4f}; jaxdyn/dsa-metric per pair min "
                        f"{r['rmin']:.3f}, median {r['rmed']:.3f}, max {r['rmax']:.3f}")
        else:
            p2 = ratio = dist = "—"
        out.append(f"| {P}×{P} pairwise | {s} | {r['w2']:.2f} s "
                   f"({r['w2'] / n_pairs * 1e3:.0f} ms/pair) | {r['c2']:.1f} s | {p2} | "
                   f"{ratio} | {dist} |")
    return "\n".join(out)


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", False)
    main()
