"""Lyapunov spectra: jaxdyn against a NumPy/SciPy QR implementation, in the same process.

The peer is the textbook recipe a user writes with SciPy: the state and its n tangent vectors
(the variational equations, `J V` from the closed-form Jacobian, vectorised NumPy) integrated
by `solve_ivp` (DOP853, the same rtol/atol), re-orthonormalised by `numpy.linalg.qr` every
`interval` = 0.5 time units and the logs of |R_jj| accumulated. jaxdyn:
`jd.lyapunov_spectrum` (adaptive Tsit5 with the tangents' error controlled, re-orthonormalised
as often as the spread of the exponents requires, the trace identity computed alongside).

Problems (float64, rtol = atol = 1e-8):

1. Lorenz (σ = 10, ρ = 28, β = 8/3) from (1, 1, 1), transient 50, T = 1000.
2. 32 Lorenz spectra over ρ ∈ [25, 35] (T = 200, transient 20): one vmapped jaxdyn call
   against the SciPy loop (2 sampled, scaled to 32).
3. A 16-unit tanh CTRNN (g = 3, τ = 1; it settles on a limit cycle, λ1 ≈ 0) from a random
   state, transient 20, T = 200.

Reported: warm time (compile apart), the exponents, their distance to the published Lorenz
spectrum (0.9056, 0, −14.5723) and the trace identity |Σλ − ⟨tr J⟩| (for Lorenz ⟨tr J⟩ =
−(σ + 1 + β) exactly).

    python benchmarks/lyapunov.py [--T 1000]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, time_jax

RTOL = ATOL = 1e-8
PUBLISHED = np.array([0.9056, 0.0, -14.5723])
SIGMA, BETA = 10.0, 8.0 / 3.0


def scipy_spectrum(rhs, x0, T, transient, interval=0.5):
    """The QR method with `solve_ivp` (DOP853) on the state with n tangents: exponents and the
    mean trace identity error is left to the caller (SciPy gives no trace quadrature)."""
    from scipy.integrate import solve_ivp

    n = x0.size
    z = np.concatenate([x0, np.eye(n).ravel()])
    logs = np.zeros(n)
    steps = int(round((transient + T) / interval))
    skip = int(round(transient / interval))
    for i in range(steps):
        sol = solve_ivp(rhs, (0.0, interval), z, method="DOP853", rtol=RTOL, atol=ATOL)
        zf = sol.y[:, -1]
        Q, R = np.linalg.qr(zf[n:].reshape(n, n))
        d = np.diag(R)
        Q = Q * np.sign(d)
        if i >= skip:
            logs += np.log(np.abs(d))
        z = np.concatenate([zf[:n], Q.ravel()])
    return logs / T


def lorenz_rhs(rho):
    def rhs(t, z):
        x, y, w = z[:3]
        V = z[3:].reshape(3, 3)
        J = np.array([[-SIGMA, SIGMA, 0.0], [rho - w, -1.0, -x], [y, x, -BETA]])
        f = np.array([SIGMA * (y - x), x * (rho - w) - y, x * y - BETA * w])
        return np.concatenate([f, (J @ V).ravel()])

    return rhs


def ctrnn_rhs(W):
    def rhs(t, z):
        n = W.shape[0]
        x = z[:n]
        V = z[n:].reshape(n, n)
        h = np.tanh(W @ x)
        J = -np.eye(n) + (1 - h * h)[:, None] * W
        return np.concatenate([-x + h, (J @ V).ravel()])

    return rhs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=float, default=1000.0)
    a = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    import jaxdyn as jd

    print(machine())
    print(f"float64, rtol = atol = {RTOL:g}")
    lor = jd.systems.lorenz()
    x0 = jnp.ones(3)
    trace = -(SIGMA + 1 + BETA)

    # 1. One Lorenz spectrum.
    c, w, s = time_jax(lambda: jd.lyapunov_spectrum(lor, x0, None, a.T, transient=50.0),
                       repeats=2)
    lam = np.asarray(s.exponents)
    print(f"Lorenz, T = {a.T:g}, transient 50:")
    print(f"  jaxdyn : compile+first {c:6.2f} s, warm {w:6.2f} s, λ = {np.round(lam, 4)}, "
          f"|λ − published|max {np.max(np.abs(lam - PUBLISHED)):.4f}, |Σλ − tr J| "
          f"{abs(lam.sum() - trace):.1e} ({int(s.reorthonormalisations)} QR steps)")
    t = time.perf_counter()
    lam_s = scipy_spectrum(lorenz_rhs(28.0), np.ones(3), a.T, 50.0)
    ws = time.perf_counter() - t
    print(f"  SciPy  : {ws:6.2f} s, λ = {np.round(lam_s, 4)}, |λ − published|max "
          f"{np.max(np.abs(lam_s - PUBLISHED)):.4f}, |Σλ − tr J| {abs(lam_s.sum() - trace):.1e}"
          f"  -> jaxdyn {ws / w:.1f}x faster")

    # 2. 32 spectra in one call.
    rhos = jnp.linspace(25.0, 35.0, 32)
    batch = jax.jit(jax.vmap(lambda r: jd.lyapunov_spectrum(lor, x0, r, 200.0,
                                                            transient=20.0).exponents))
    c, w, lams = time_jax(lambda: batch(rhos), repeats=2)
    t = time.perf_counter()
    for r in (25.0, 35.0):
        scipy_spectrum(lorenz_rhs(r), np.ones(3), 200.0, 20.0)
    ws = (time.perf_counter() - t) / 2 * 32
    print(f"32 Lorenz spectra over ρ ∈ [25, 35], T = 200: jaxdyn vmapped {w:6.2f} s "
          f"(compile+first {c:.1f} s); SciPy loop {ws:6.1f} s (2 sampled, scaled) -> "
          f"{ws / w:.1f}x")

    # 3. A chaotic 16-unit CTRNN.
    n = 16
    W = np.random.default_rng(0).normal(size=(n, n)) * 3.0 / np.sqrt(n)
    Wj = jnp.asarray(W)
    net = jd.Flow(lambda t, x, _: -x + jnp.tanh(Wj @ x))
    xn = np.random.default_rng(1).normal(size=n)
    c, w, s = time_jax(lambda: jd.lyapunov_spectrum(net, jnp.asarray(xn), None, 200.0,
                                                    transient=20.0), repeats=2)
    lam = np.asarray(s.exponents)
    t = time.perf_counter()
    lam_s = scipy_spectrum(ctrnn_rhs(W), xn, 200.0, 20.0)
    ws = time.perf_counter() - t
    print(f"CTRNN n = 16 (g = 3), T = 200: jaxdyn warm {w:6.2f} s (compile+first {c:.1f} s), "
          f"λ1 {lam[0]:.4f}, Σλ {lam.sum():.4f} vs ⟨tr J⟩ {float(s.mean_trace):.4f}; SciPy "
          f"{ws:6.2f} s, λ1 {lam_s[0]:.4f}, Σλ {lam_s.sum():.4f} -> {ws / w:.1f}x; "
          f"max |Δλ| {np.max(np.abs(lam - lam_s)):.3f}")


if __name__ == "__main__":
    main()
