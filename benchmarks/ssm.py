"""SSM reduced models: jaxdyn against SSMLearnPy on the 2-DOF oscillator, and many networks.

Problem (the SSM issue's): q'' = −K q − C q' − (0.5 q1³, 0), K = [[2, −1], [−1, 2]],
C = 0.01 I + 0.01 K; 8 trajectories started near the slow mode (amplitudes 0.3–0.8; initial
states from tests/data/ssm_reference.npz), t ∈ [0, 120], dt 0.05; the first 6 are fitted and
predicted: 2-D SSM, manifold degree 3, reduced dynamics degree 5.

- SSMLearnPy (github haller-group/SSMLearnPy; not on PyPI; it needs numpy < 2 and
  setuptools < 81, so it runs in its own environment, through a subprocess running
  tests/data/make_ssm_reference.py --bench on the same data file): SVD chart, ridge fits,
  `predict()` (RK45 at SciPy's default tolerances, one trajectory at a time). Set
  SSMLEARNPY_PYTHON (default /tmp/ssmlearn-venv/bin/python) and SSMLEARNPY_SRC (a source
  checkout, put on PYTHONPATH; default /tmp/ssmlearnpy-src). Skipped with a note if missing.
- jaxdyn, the same recipe (`chart="svd"`, `free_linear=True`, `derivative="fd4"`), and the
  recommended one (oblique chart from the Jacobian at the fixed point, exact derivatives);
  prediction = `ssm.nmte` (reduced Tsit5 at rtol 1e-9, all trajectories in one call).

Reported: warm fit and fit + prediction times (compile apart), the ratio, and the NMTE
(paper definition: mean ‖error‖ / max ‖x‖) of each. Then 256 random tanh networks
(x⁺ = tanh(W x), N = 16, symmetric W, gain 0.9), 8 trajectories × 100 steps each: 1-D SSMs (order 3,
Jacobian chart) in one vmapped `ssm.fit` call against a loop of warm single calls.

    python benchmarks/ssm.py [--networks 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, time_jax

jax.config.update("jax_enable_x64", True)

ROOT = Path(__file__).resolve().parents[1]
K = np.array([[2.0, -1.0], [-1.0, 2.0]])


def two_dof_data():
    import jaxdyn as jd

    Kj = jnp.asarray(K)
    C = 0.01 * jnp.eye(2) + 0.01 * Kj

    def f(t, s, args):
        q, v = s[:2], s[2:]
        return jnp.concatenate([v, -Kj @ q - C @ v - jnp.stack([0.5 * q[0] ** 3, 0.0 * q[0]])])

    x0 = jnp.asarray(np.load(ROOT / "tests/data/ssm_reference.npz")["x0"])
    ts = jnp.arange(2401.0) * 0.05
    xs = jax.vmap(lambda s: jd.simulate(jd.Flow(f), s, None, 120.0, ts=ts, solver="dopri8",
                                        rtol=1e-12, atol=1e-14, max_steps=50_000).xs)(x0)
    return np.asarray(ts), np.asarray(xs), jd.Flow(f)


def run_peer(ts, train):
    python = os.environ.get("SSMLEARNPY_PYTHON", "/tmp/ssmlearn-venv/bin/python")
    src = os.environ.get("SSMLEARNPY_SRC", "/tmp/ssmlearnpy-src")
    if not Path(python).exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data.npz", Path(tmp) / "out.json"
        np.savez(data, t=ts, xs=train)
        env = dict(os.environ, PYTHONPATH=src)
        proc = subprocess.run([python, str(ROOT / "tests/data/make_ssm_reference.py"), "--bench",
                               str(data), str(out)], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print("SSMLearnPy failed:", proc.stderr.strip().splitlines()[-1:])
            return None
        return json.loads(out.read_text())


def jaxdyn_runs(train, system):
    import jaxdyn.ssm as ssm

    recipes = {
        "same recipe (SVD chart, free linear part, findiff stencil)":
            dict(chart="svd", free_linear=True, derivative="fd4"),
        "oblique Jacobian chart, exact derivatives": dict(system=system),
    }
    X = jnp.asarray(train)
    rows = []
    for name, kw in recipes.items():
        fit = jax.jit(lambda d, kw=kw: ssm.fit(d, 2, 3, dynamics_order=5, dt=0.05, **kw))
        pred = jax.jit(lambda m, d: ssm.nmte(m, d))
        c_fit, w_fit, model = time_jax(fit, X)
        c_pred, w_pred, err = time_jax(pred, model, X)
        rows.append((name, c_fit + c_pred, w_fit, w_pred, np.asarray(err)))
    return rows


def networks(n_net: int):
    import jaxdyn as jd
    import jaxdyn.ssm as ssm

    key = jax.random.PRNGKey(0)
    N, n_traj, T = 16, 8, 100
    kw, kx = jax.random.split(key)
    # Symmetric weights: real eigenvalues, so a 1-D slow subspace never splits a complex pair.
    A = jax.random.normal(kw, (n_net, N, N))
    Ws = 0.9 * (A + jnp.swapaxes(A, 1, 2)) / (2 * np.sqrt(2 * N))
    rnn = jd.Map(lambda k, x, W: jnp.tanh(W @ x))
    x0 = jax.random.normal(kx, (n_net, n_traj, N))

    def data(W, x0s):
        return jax.vmap(lambda x: jd.simulate(rnn, x, W, T - 1).xs)(x0s)

    D = jax.jit(jax.vmap(data))(Ws, x0)
    one = jax.jit(lambda d, W: ssm.fit(d, 1, 3, system=rnn, args=W, transient=5.0))
    many = jax.jit(jax.vmap(lambda d, W: ssm.fit(d, 1, 3, system=rnn, args=W, transient=5.0)))
    c_many, w_many, batched = time_jax(many, D, Ws)
    one(D[0], Ws[0]).W.block_until_ready()
    t = time.perf_counter()
    for i in range(n_net):
        one(D[i], Ws[i]).W.block_until_ready()
    loop = time.perf_counter() - t
    ok = int(np.sum(np.asarray(batched.result._value) == 0))
    return c_many, w_many, loop, ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", type=int, default=256)
    opts = parser.parse_args()
    print(machine())
    ts, xs, system = two_dof_data()
    train = xs[:6]
    peer = run_peer(ts, train)
    rows = jaxdyn_runs(train, system)
    print("\n2-DOF oscillator, 6 trajectories x 2,401 samples, 2-D SSM (3 / 5)")
    print("| implementation | fit (s) | fit + predict (s) | ratio | NMTE mean (paper) |")
    print("| --- | --- | --- | --- | --- |")
    if peer is not None:
        total = peer["fit_s"] + peer["predict_s"]
        print(f"| SSMLearnPy | {peer['fit_s']:.3f} | {total:.2f} | — | "
              f"{np.mean(peer['nmte']):.4f} |")
    else:
        total = None
        print("| SSMLearnPy | not installed (see the docstring) | | | |")
    for name, compile_s, w_fit, w_pred, err in rows:
        ratio = f"{total / (w_fit + w_pred):.1f}×" if total else "—"
        print(f"| jaxdyn, {name} (compile {compile_s:.1f} s) | {w_fit:.3f} | "
              f"{w_fit + w_pred:.3f} | {ratio} | {err.mean():.4f} |")
    c_many, w_many, loop, ok = networks(opts.networks)
    print(f"\n{opts.networks} tanh networks (N=16), 1-D SSMs: one vmapped call {w_many:.3f} s "
          f"(compile {c_many:.1f} s), loop of warm single calls {loop:.2f} s, "
          f"ratio {loop / w_many:.1f}×; {ok} of {opts.networks} fits successful")


if __name__ == "__main__":
    main()
