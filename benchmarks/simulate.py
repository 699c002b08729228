"""Simulation throughput: 10,000 Lorenz trajectories, t in [0, 10], fixed-step RK4, 1,000 steps.

jaxdyn (one vmapped, jitted call) against a vectorised NumPy RK4 on the same batch and against
SciPy `solve_ivp` (RK45, rtol 1e-6, atol 1e-8) in a Python loop over a sample of trajectories,
scaled to the full batch. Prints trajectories per second and the ratios; compile time apart.

    python benchmarks/simulate.py [--n 10000] [--x64]
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, time_call, time_jax

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0


def numpy_lorenz(x):
    return np.stack([SIGMA * (x[:, 1] - x[:, 0]), x[:, 0] * (RHO - x[:, 2]) - x[:, 1],
                     x[:, 0] * x[:, 1] - BETA * x[:, 2]], axis=1)


def numpy_rk4(x, dt, n_steps):
    for _ in range(n_steps):
        k1 = numpy_lorenz(x)
        k2 = numpy_lorenz(x + 0.5 * dt * k1)
        k3 = numpy_lorenz(x + 0.5 * dt * k2)
        k4 = numpy_lorenz(x + dt * k3)
        x = x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--scipy-sample", type=int, default=20)
    parser.add_argument("--x64", action="store_true", help="run everything in float64")
    opts = parser.parse_args()
    if opts.x64:
        jax.config.update("jax_enable_x64", True)
    import jaxdyn as jd

    dtype = np.float64 if opts.x64 else np.float32
    n, t1, n_steps = opts.n, 10.0, 1000
    dt = t1 / n_steps
    rng = np.random.default_rng(0)
    x0 = (np.array([1.0, 1.0, 20.0]) + rng.normal(size=(n, 3))).astype(dtype)

    lorenz = jd.systems.lorenz()
    run = jax.jit(jax.vmap(
        lambda x: jd.simulate(lorenz, x, None, t1, dt=dt, n_save=2).xs[-1]))
    compile_s, jd_s, jd_out = time_jax(run, jnp.asarray(x0))
    np_s, np_out = time_call(numpy_rk4, x0.copy(), dtype(dt), n_steps)

    print(f"machine: {machine()}; dtype {np.dtype(dtype).name}")
    print(f"jaxdyn  vmapped RK4 : {n / jd_s:12.0f} traj/s  ({jd_s:.3f} s warm, "
          f"{compile_s:.2f} s first call incl. compile)")
    print(f"NumPy   vectorised  : {n / np_s:12.0f} traj/s  ({np_s:.3f} s)  "
          f"-> jaxdyn is {np_s / jd_s:.1f}x faster")
    diff = np.abs(np.asarray(jd_out) - np_out)
    ok = np.isfinite(np_out).all(axis=1)
    print(f"  agreement with NumPy RK4 at t=10 (chaotic, {np.dtype(dtype).name}): "
          f"median |diff| {np.median(diff[ok]):.2e}")
    try:
        from scipy.integrate import solve_ivp
    except ImportError:
        print("SciPy not installed: skipping the solve_ivp baseline", file=sys.stderr)
        return
    m = opts.scipy_sample

    def scipy_loop():
        for i in range(m):
            solve_ivp(lambda t, x: numpy_lorenz(x[None])[0], (0.0, t1), x0[i].astype(float),
                      method="RK45", rtol=1e-6, atol=1e-8)

    sp_s, _ = time_call(scipy_loop)
    sp_rate = m / sp_s
    print(f"SciPy   solve_ivp loop: {sp_rate:10.0f} traj/s  ({m} trajectories in {sp_s:.2f} s, "
          f"scaled to {n}: {n / sp_rate:.1f} s)  -> jaxdyn is {(n / sp_rate) / jd_s:.0f}x faster")


if __name__ == "__main__":
    main()
