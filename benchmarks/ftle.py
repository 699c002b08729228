"""FTLE fields: the double gyre against numbacs, and a plane of a 128-unit RNN.

Double gyre (A = 0.1, ε = 0.25, ω = 2π/10) on [0, 2] × [0, 1], t0 = 0, T = +15 and −15, a
401 × 201 grid, at numbacs' default tolerances (DOP853, rtol 1e-6, atol 1e-8; here diffrax's
Dopri8 at the same tolerances):

- jaxdyn `method="grid"`: flow map of every grid point, central differences (numbacs' recipe);
- jaxdyn `method="autodiff"`: the exact flow-map gradient (state + 2 tangents per point, the
  tangents' error controlled as well as the state's);
- both again on the double gyre written the plain way, a `jd.Flow` with `jnp.sin`/`jnp.cos`
  (jaxdyn evaluates its float64 sin/cos by vectorised kernels);
- numbacs `flowmap_grid_2D` + `ftle_grid_2D`, when installed (it needs a Fortran compiler:
  `apt-get install gfortran`, then `pip install numbacs`); skipped with a note otherwise.

Reported: compile (first call) and best warm wall time of each, the ratio to numbacs, the
exact/grid cost ratio, and the median relative difference of the fields on interior points
(numbacs sets its boundary rows to 0). Then a 201 × 201 plane (top-2 principal components of
trajectories) of a random 128-unit GRU with a constant input, T = 20 iterates, in-plane
stretching; `--big` runs 2,000 × 2,000 under a 4 GB budget and reports the peak resident memory.

    python benchmarks/ftle.py [--nx 401 --ny 201] [--T 15] [--no-rnn] [--big]
        [--reference PATH]     # with numbacs: save a subsampled reference field (.npz)
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, time_jax

RTOL, ATOL = 1e-6, 1e-8


def plain_double_gyre():
    """The double gyre as a user writes it: `jnp.sin`, `jnp.cos`, no `sincospi`."""
    import math

    import jaxdyn as jd

    def f(t, z, eps):
        a = eps * jnp.sin(0.2 * math.pi * t)
        b = 1 - 2 * a
        g = a * z[0] ** 2 + b * z[0]
        return jnp.stack([-0.1 * math.pi * jnp.sin(math.pi * g) * jnp.cos(math.pi * z[1]),
                          0.1 * math.pi * jnp.cos(math.pi * g) * jnp.sin(math.pi * z[1])
                          * (2 * a * z[0] + b)])

    return jd.Flow(f)


def jaxdyn_fields(nx, ny, T, method, plain=False):
    import jaxdyn as jd

    dg = plain_double_gyre() if plain else jd.systems.double_gyre()
    g = jd.grid([(0.0, 2.0), (0.0, 1.0)], (nx, ny))
    eps = jnp.asarray(0.25)

    def run():
        return [jd.ftle(dg, g, eps, 0.0, s * T, method=method, solver="dopri8", rtol=RTOL,
                        atol=ATOL).ftle for s in (1.0, -1.0)]

    return time_jax(run, repeats=3)


def numbacs_fields(nx, ny, T):
    """(first-call seconds, best warm seconds, [forward, backward]) or None if missing."""
    try:
        from numbacs.diagnostics import ftle_grid_2D
        from numbacs.flows import get_predefined_flow
        from numbacs.integration import flowmap_grid_2D
    except ImportError:
        return None
    x = np.linspace(0.0, 2.0, nx)
    y = np.linspace(0.0, 1.0, ny)
    dx, dy = x[1] - x[0], y[1] - y[0]
    setups = [get_predefined_flow("double_gyre", int_direction=s)[:2] for s in (1.0, -1.0)]

    def run():
        out = []
        for (funcptr, params), s in zip(setups, (1.0, -1.0)):
            fm = flowmap_grid_2D(funcptr, 0.0, s * T, x, y, params, rtol=RTOL, atol=ATOL)
            out.append(ftle_grid_2D(fm, s * T, dx, dy))
        return out

    t = time.perf_counter()
    out = run()
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - t)
    return first, best, out


def numbacs_convention(f):
    """numbacs' output convention: boundary rows and columns 0, and 0 where λ_max ≤ 1."""
    f = np.maximum(np.nan_to_num(np.asarray(f)), 0.0)
    f[[0, -1], :] = 0.0
    f[:, [0, -1]] = 0.0
    return f


def median_rel(a, b):
    a, b = np.asarray(a)[1:-1, 1:-1], np.asarray(b)[1:-1, 1:-1]
    keep = np.abs(b) > 1e-3
    return float(np.median(np.abs(a[keep] - b[keep]) / np.abs(b[keep])))


def rnn_plane(n_grid, budget, n=128, T=20):
    import equinox as eqx

    import jaxdyn as jd

    key = jax.random.PRNGKey(0)
    model = jd.rnn.GRU(3, n, 3, key=key)
    model = eqx.tree_at(lambda m: m.W_hh, model, 2.0 * model.W_hh)  # richer dynamics
    # float32, the default precision of a user's network.
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, model)
    u = jnp.array([0.0, 0.5, 0.5], model.W_hh.dtype)
    starts = jax.random.uniform(jax.random.PRNGKey(1), (16, n), minval=-0.5, maxval=0.5,
                                dtype=model.W_hh.dtype)
    xs = jax.vmap(lambda x: jd.simulate(model, x, u, 50).xs)(starts).reshape(-1, n)
    mean = xs.mean(0)
    pcs = jnp.linalg.svd(xs - mean, full_matrices=False)[2][:2]
    p = jd.plane(mean, pcs, [(-2.0, 2.0), (-2.0, 2.0)], (n_grid, n_grid))

    def run():
        return jd.ftle(model, p, u, 0, T, stretching="plane", budget=budget,
                       progress=n_grid > 500).ftle

    return time_jax(run, repeats=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nx", type=int, default=401)
    ap.add_argument("--ny", type=int, default=201)
    ap.add_argument("--T", type=float, default=15.0)
    ap.add_argument("--no-rnn", action="store_true")
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--reference", default=None)
    a = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    print(machine())
    print(f"double gyre {a.nx} x {a.ny}, t0 = 0, T = ±{a.T:g}, rtol {RTOL:g}, atol {ATOL:g}")
    cg, wg, grid_fields = jaxdyn_fields(a.nx, a.ny, a.T, "grid")
    print(f"  jaxdyn grid     : compile+first {cg:7.2f} s, warm {wg:7.3f} s")
    ca, wa, exact_fields = jaxdyn_fields(a.nx, a.ny, a.T, "autodiff")
    print(f"  jaxdyn autodiff : compile+first {ca:7.2f} s, warm {wa:7.3f} s "
          f"({wa / wg:.2f}x the grid field)")
    cpg, wpg, plain_grid = jaxdyn_fields(a.nx, a.ny, a.T, "grid", plain=True)
    print(f"  plain jnp.sin field, grid     : compile+first {cpg:7.2f} s, warm {wpg:7.3f} s "
          f"({wpg / wg:.2f}x the built-in field); median rel. diff to it "
          f"{max(median_rel(p, b) for p, b in zip(plain_grid, grid_fields)):.2e}")
    cpa, wpa, plain_exact = jaxdyn_fields(a.nx, a.ny, a.T, "autodiff", plain=True)
    print(f"  plain jnp.sin field, autodiff : compile+first {cpa:7.2f} s, warm {wpa:7.3f} s "
          f"({wpa / wa:.2f}x the built-in field); median rel. diff to it "
          f"{max(median_rel(p, b) for p, b in zip(plain_exact, exact_fields)):.2e}")
    for s, fg, fe in zip(("+", "-"), grid_fields, exact_fields):
        nb = numbacs_convention(fg)
        print(f"  T {s}: grid field in numbacs' convention: range [{nb.min():.4f}, "
              f"{nb.max():.4f}], mean {nb.mean():.5f} (numbacs 0.2.0 on this problem: "
              f"[0, 0.3815], mean 0.15175); exact vs grid median rel. diff "
              f"{median_rel(fg, fe):.2e}")
    peer = numbacs_fields(a.nx, a.ny, a.T)
    if peer is None:
        print("  numbacs        : not installed (needs gfortran); skipped")
    else:
        cn, wn, nb = peer
        print(f"  numbacs        : first {cn:7.2f} s, warm {wn:7.3f} s; jaxdyn grid is "
              f"{wn / wg:.2f}x faster warm (plain jnp.sin field: {wn / wpg:.2f}x)")
        for s, fg, fp, fn in zip(("+", "-"), grid_fields, plain_grid, nb):
            print(f"  T {s}: jaxdyn grid vs numbacs median rel. diff {median_rel(fg, fn):.2e} "
                  f"(plain field {median_rel(fp, fn):.2e})")
        if a.reference:
            sx, sy = max(1, a.nx // 40), max(1, a.ny // 20)
            np.savez(a.reference, x=np.linspace(0, 2, a.nx)[::sx], y=np.linspace(0, 1, a.ny)[::sy],
                     forward=np.asarray(nb[0])[::sx, ::sy], backward=np.asarray(nb[1])[::sx, ::sy],
                     T=a.T, rtol=RTOL, atol=ATOL)
            print(f"  wrote {a.reference}")
    if a.no_rnn:
        return
    c, w, f = rnn_plane(201, None)
    print(f"GRU-128 plane 201 x 201, T = 20, in-plane: compile+first {c:.2f} s, warm {w:.3f} s, "
          f"FTLE range [{np.nanmin(f):.3f}, {np.nanmax(f):.3f}]")
    if a.big:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        c, w, f = rnn_plane(2000, 4 * 2**30)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"GRU-128 plane 2000 x 2000 (4 GB budget): {w:.1f} s, peak RSS {peak:.2f} GiB "
              f"(was {before:.2f} GiB before)")


if __name__ == "__main__":
    main()
