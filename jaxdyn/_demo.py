"""`jaxdyn demo`: a random CTRNN, simulated and linearised, on an embedded default."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np


def run_demo(out: Path, *, n_hidden: int = 64, g: float = 1.5, seed: int = 0,
             n_traj: int = 8) -> dict:
    """Build a scaled random CTRNN, simulate `n_traj` trajectories of its autonomous flow,
    linearise it at the origin, find its fixed and slow points from states along the
    trajectories, and write `demo.png` and `summary.json` into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import jaxdyn as jd

    from ._io import write_atomic

    start = time.perf_counter()
    k_model, k_x0 = jr.split(jr.PRNGKey(seed))
    model = jd.rnn.scaled_ctrnn(1, n_hidden, 1, key=k_model, g=g, tau=10.0, dt=1.0)
    u = jnp.zeros(1)
    x0s = 0.5 * jr.normal(k_x0, (n_traj, n_hidden))
    simulate = jax.vmap(lambda x0: jd.simulate(model, x0, u, 200.0, n_save=401))
    traj = simulate(x0s)
    jac = jd.jacobian(model, jnp.zeros(n_hidden), u)
    eig = np.asarray(jnp.linalg.eigvals(jac))
    n_unstable = int(jd.n_unstable(model, eig))
    starts = jd.sample_states(jr.PRNGKey(seed + 1), traj, n=64, noise=0.1)
    fps = jd.fixed_points(model, starts, u).unique()
    keep = np.asarray(fps.valid & fps.converged)
    fp_x = np.asarray(fps.x)[keep]
    fp_unstable = np.asarray(fps.n_unstable)[keep]
    n_slow = int(np.asarray(fps.valid & fps.slow).sum())
    elapsed = time.perf_counter() - start

    xs = np.asarray(traj.xs)
    flat = xs.reshape(-1, n_hidden)
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    pcs = (xs - mean) @ vt[:2].T
    explained = float((s[:2] ** 2).sum() / (s**2).sum())

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2))
    for p in pcs:
        ax0.plot(p[:, 0], p[:, 1], lw=0.8)
        ax0.plot(p[0, 0], p[0, 1], "k.", ms=4)
    if len(fp_x):
        fp_pc = (fp_x - mean) @ vt[:2].T
        for sel, style, label in ((fp_unstable == 0, dict(c="k"), "stable"),
                                  (fp_unstable > 0, dict(facecolors="w", edgecolors="k"),
                                   "unstable")):
            if sel.any():
                ax0.scatter(fp_pc[sel, 0], fp_pc[sel, 1], s=40, zorder=3,
                            label=f"{label} fixed point", **style)
        ax0.legend(loc="upper left", fontsize=8)
    ax0.set(xlabel="PC 1", ylabel="PC 2",
            title=f"{n_traj} trajectories, N={n_hidden}, g={g} ({explained:.0%} var.)")
    tau = float(model.tau)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax1.plot((-1 + g * np.cos(theta)) / tau, g * np.sin(theta) / tau, "k--", lw=0.8,
             label="circular law, radius g/τ")
    ax1.scatter(eig.real, eig.imag, s=8, c=np.where(eig.real > 0, "tab:red", "tab:blue"))
    ax1.axvline(0, color="grey", lw=0.5)
    ax1.set(xlabel="Re λ", ylabel="Im λ", title=f"Jacobian at the origin: {n_unstable} unstable")
    ax1.set_aspect("equal")
    ax1.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_atomic(out / "demo.png", buf.getvalue())

    summary = {
        "model": "scaled CTRNN (rate form, tanh)",
        "n_hidden": n_hidden,
        "g": g,
        "seed": seed,
        "trajectories": n_traj,
        "all_integrations_succeeded": bool(np.all(np.asarray(traj.success))),
        "unstable_directions_at_origin": n_unstable,
        "max_real_eigenvalue_at_origin": float(eig.real.max()),
        "fixed_points": int(len(fp_x)),
        "fixed_point_unstable_directions": sorted(int(k) for k in fp_unstable),
        "slow_points": n_slow,
        "variance_in_2_pcs": explained,
        "final_state_norm_mean": float(np.linalg.norm(xs[:, -1], axis=-1).mean()),
        "seconds": round(elapsed, 3),
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    return summary
