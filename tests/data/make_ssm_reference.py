"""Make `ssm_reference.npz`: SSMLearnPy on the 2-DOF oscillator of the SSM tests and benchmark.

The system is q'' = −K q − C q' − (0.5 q1³, 0) with K = [[2, −1], [−1, 2]] and
C = 0.01 I + 0.01 K, state (q1, q2, v1, v2). Eight trajectories start near the slow mode
(amplitudes 0.3–0.8, with a 5 % fast-mode component, so they start slightly off the SSM),
t ∈ [0, 120] with dt = 0.05, integrated with SciPy's DOP853 at rtol 1e-12. SSMLearnPy
(github haller-group/SSMLearnPy, which needs numpy < 2 and setuptools < 81, so it lives in
its own environment) fits a 2-D SSM to the first six: linear (SVD) chart, manifold degree 3,
reduced dynamics degree 5, then predicts them (`SSMLearn.predict`, RK45 at its default
tolerances).

Saved (small: the data themselves are regenerated from `x0` by the tests): the initial
states, every 40th sample of the data (to check the regeneration), SSMLearnPy's chart,
coefficients and exponents, its geometry (lift of reduce) and full predictions at every 40th
sample, and the per-trajectory NMTE of its predictions (paper definition and its own).

Run with the SSMLearnPy environment (see benchmarks/ssm.py):

    PYTHONPATH=/path/to/SSMLearnPy /tmp/ssmlearn-venv/bin/python tests/data/make_ssm_reference.py
    ... make_ssm_reference.py --bench DATA.npz OUT.json   # time a fit + predict on given data
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

K = np.array([[2.0, -1.0], [-1.0, 2.0]])
C = 0.01 * np.eye(2) + 0.01 * K
DT, T1, STRIDE = 0.05, 120.0, 40
AMPS = np.linspace(0.3, 0.8, 8)


def field(t, s):
    q, v = s[:2], s[2:]
    return np.concatenate([v, -K @ q - C @ v - np.array([0.5 * q[0] ** 3, 0.0])])


def initial_states() -> np.ndarray:
    """Slow-mode starts (q along (1, 1)) at amplitudes 0.3–0.8 and spread phases, plus a fast
    (1, −1) component of 5 % of the amplitude."""
    x0 = []
    for i, a in enumerate(AMPS):
        ph, ps = 0.7 * i, 1.3 * i
        slow = a * np.array([np.cos(ph), np.cos(ph), -np.sin(ph), -np.sin(ph)])
        fast = 0.05 * a * np.array([np.cos(ps), -np.cos(ps), -1.732 * np.sin(ps),
                                    1.732 * np.sin(ps)])
        x0.append(slow + fast)
    return np.asarray(x0)


def simulate(x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, T1 + DT / 2, DT)
    xs = [solve_ivp(field, (0.0, T1), s, method="DOP853", t_eval=t, rtol=1e-12,
                    atol=1e-14).y.T for s in x0]
    return t, np.stack(xs)


def nmte_paper(ref: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(pred - ref, axis=1)) / np.max(np.linalg.norm(ref, axis=1)))


def run_ssmlearnpy(t: np.ndarray, xs: np.ndarray):
    """Fit on every trajectory of `xs` [n, T, 4] and predict them; returns the model, its
    geometry and full predictions [n, T, 4], and the fit and prediction wall times."""
    from ssmlearnpy import SSMLearn

    tic = time.perf_counter()
    model = SSMLearn(t=[t] * len(xs), x=[x.T for x in xs], ssm_dim=2, derive_embdedding=False,
                     dynamics_type="flow", error_metric="NMTE")
    model.get_reduced_coordinates("linearchart")
    model.get_parametrization(poly_degree=3)
    model.get_reduced_dynamics(poly_degree=5)
    fit_s = time.perf_counter() - tic
    tic = time.perf_counter()
    model.predict()
    predict_s = time.perf_counter() - tic
    geometry = np.stack([g.T for g in model.geometry_predictions["observables"]])
    full = np.stack([p.T for p in model.predictions["observables"]])
    return model, geometry, full, fit_s, predict_s


def reference(out: Path) -> None:
    x0 = initial_states()
    t, xs = simulate(x0)
    train = xs[:6]
    model, geometry, full, fit_s, predict_s = run_ssmlearnpy(t, train)
    own = [float(e) for e in model.predictions["errors"]]
    paper = [nmte_paper(r, p) for r, p in zip(train, full)]
    np.savez_compressed(
        out, x0=x0, dt=DT, t1=T1, stride=STRIDE, data_sub=xs[:, ::STRIDE],
        chart=model.encoder.matrix_representation,
        manifold_coefficients=model.decoder.map_info["coefficients"],
        manifold_exponents=model.decoder.map_info["exponents"],
        dynamics_coefficients=model.reduced_dynamics.map_info["coefficients"],
        dynamics_exponents=model.reduced_dynamics.map_info["exponents"],
        geometry_sub=geometry[:, ::STRIDE], prediction_sub=full[:, ::STRIDE],
        nmte_paper=np.asarray(paper), nmte_ssmlearnpy=np.asarray(own),
        eigenvalues=model.reduced_dynamics.map_info["eigenvalues_linear_part"])
    print(f"NMTE (paper) {np.round(paper, 4)} mean {np.mean(paper):.4f}; fit {fit_s:.3f} s, "
          f"predict {predict_s:.2f} s; wrote {out} ({out.stat().st_size / 1024:.0f} KB)")


def bench(data: Path, out: Path, repeats: int = 3) -> None:
    """Time SSMLearnPy's fit and prediction on the trajectories in `data` (key `xs`)."""
    z = np.load(data)
    t, xs = z["t"], z["xs"]
    best_fit, best_pred = np.inf, np.inf
    for _ in range(repeats):
        _, _, full, fit_s, predict_s = run_ssmlearnpy(t, xs)
        best_fit, best_pred = min(best_fit, fit_s), min(best_pred, predict_s)
    paper = [nmte_paper(r, p) for r, p in zip(xs, full)]
    out.write_text(json.dumps({"fit_s": best_fit, "predict_s": best_pred, "nmte": paper}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bench":
        bench(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        reference(Path(__file__).with_name("ssm_reference.npz"))
