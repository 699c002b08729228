"""Continuation: jaxdyn (`jd.continuation`, `jd.switch_branch`) against jaxcont 0.4.0.

Four problems whose special points are known exactly, float64, both libraries in this process
on the same vector field (jaxcont gets `f(u, p, args)` built from the same jaxdyn system):

1. cusp `x' = a + bx − x³`, b = 1, in a from x0 = −1 at a = −1 over [−2, 2]: folds at
   a = ±2/(3√3) = ±0.3849001795. jaxdyn with its default tests (fold, branch point, Hopf) and
   with `tests=(jd.Fold(),)`; jaxcont with `events=[Fold(), Hopf()]` and `[Fold()]`.
2. Bratu, N = 50 interior points (`jd.systems.bratu(50)`, args = λ), from u = 0 at λ = 0.5
   forward, ds_max 0.5, 150 steps: fold at λ = 3.5131277926 (the discrete problem's).
3. Lorenz (σ = 10, β = 8/3) in ρ: from the origin at ρ = 0.5, branch point at ρ = 1; jaxdyn
   switches onto C± there (`jd.switch_branch`) and finds the Hopf points at
   ρ = 470/19 = 24.7368421053, ω = √(β(σ + ρ)) = 9.6245300637. jaxcont has no branch point
   test and no branch switching: it follows the origin branch with Fold/Hopf events, and C+
   from the closed-form equilibrium at ρ = 10 (jaxdyn also does this C+ run, for a per-branch
   comparison).
4. 256 cusp diagrams, b in linspace(0.5, 2, 256), fold detection: jaxdyn one `jax.jit(
   jax.vmap(...))` call; jaxcont has no events under `vmap` (it raises NotImplementedError),
   so it runs serially — a sample of them is timed and scaled to 256 — and, for reference, its
   `vmap` without events (branches only). Folds checked against a = ±2(b/3)^{3/2}.

Step settings are shared where they correspond: ds, ds_min, ds_max, max_steps (jaxdyn's is
per direction, jaxcont's counts every step of its one direction), corrector tolerance 1e-10
(jaxdyn: ‖f‖∞; jaxcont `newton_tol`: the 2-norm of f and the arclength equation), 8 Newton
iterations per corrector (jaxdyn `corrector_steps`, jaxcont `newton_max_iter`). jaxcont locates
its events to a fixed 1e-6 on its augmented residual (`detect_events(..., tolerance=1e-6)`
inside `jaxcont.continuation`; not settable); jaxdyn's `refine_tol` is 1e-12.

Timing: jaxdyn's first call (compile included) and the median of warm calls
(`block_until_ready`); jaxcont's first call and the median of repeated calls. jaxcont's
`continuation` builds a new closure `f(u, p)` on every call and passes it as a static argument
of its jitted loop, and its event location (`fold_point`, `hopf_point`) runs eagerly, so each
call traces and compiles again: its repeated-call time is what a user gets. Its jitted loop
called directly with one fixed `f` (no events, no retrace) is reported as a floor.

AUTO-07p is checked for (`auto` on PATH, an `auto` Python module) and compared against only if
present (it is installed from source; there is no pip or apt package here).

    python benchmarks/continuation.py [--quick] [--only cusp,bratu,lorenz,batch] [--sample 16]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shutil
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import block, machine

TOL = 1e-10
NEWTON = 8
CUSP_FOLD = 2.0 / (3.0 * math.sqrt(3.0))
BRATU50_FOLD = 3.5131277926
SIGMA, BETA = 10.0, 8.0 / 3.0
LORENZ_HOPF = 470.0 / 19.0
LORENZ_OMEGA = math.sqrt(BETA * (SIGMA + LORENZ_HOPF))


# --- timing -------------------------------------------------------------------------------


def time_median(fn, *args, repeats=3):
    """(first-call seconds, median warm seconds, result); every call blocked until ready."""
    t = time.perf_counter()
    out = block(fn(*args))
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = block(fn(*args))
        times.append(time.perf_counter() - t)
    return first, statistics.median(times), out


def fmt_t(s):
    if s is None:
        return "—"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s" if s < 100 else f"{s:,.0f} s"


def fmt_err(e):
    return "—" if e is None or not np.isfinite(e) else f"{e:.1e}"


# --- jaxdyn -------------------------------------------------------------------------------


def jd_points(branch, kind):
    """Sorted parameter values of the valid special points of `kind` (one branch)."""
    sp = branch.special
    mask = np.asarray(sp.of_kind(kind))
    return np.sort(np.asarray(sp.p)[mask])


def jd_span(branch):
    p = np.asarray(branch.p)[np.asarray(branch.valid)]
    return f"{p.size} points, p in [{p.min():.4g}, {p.max():.4g}]"


def jc_span(result):
    p = np.asarray(result.branch.params)
    return f"{p.size} points, p in [{p.min():.4g}, {p.max():.4g}]"


def jd_summary(branch):
    sp = branch.special
    valid = np.asarray(sp.valid)
    names = sp.names
    p = np.asarray(sp.p)[valid]
    return ", ".join(f"{n} {v:.10f}" for n, v in zip(names, p)) or "none"


# --- jaxcont ------------------------------------------------------------------------------


def jaxcont_module():
    try:
        import jaxcont
    except ImportError:
        return None
    return jaxcont


def jc_settings(jc, ds, ds_min, ds_max, max_steps):
    return jc.ContinuationPar(ds=ds, ds_min=ds_min, ds_max=ds_max, max_steps=max_steps,
                              newton_tol=TOL, newton_max_iter=NEWTON)


def jc_points(result, kind):
    return np.sort(np.array([e.p for e in result.events if e.kind == kind]))


def jc_summary(result):
    return ", ".join(f"{e.kind} {e.p:.10f}" + ("" if e.info.get("converged", True)
                                               else " (not converged)")
                     for e in result.events) or "none"


def jc_floor(jc_f, u0, p0, p_end, args, ds, ds_min, ds_max, max_steps, repeats):
    """jaxcont's jitted pseudo-arclength loop called directly with one fixed f(u, p): its
    cached-compile cost, without events (the lower bound of a jaxcont run)."""
    from jaxcont.core.scan_continuation import pseudo_arclength_scan
    from jaxcont.solvers.protocols import Dense

    rhs = lambda u, p: jc_f(u, p, args)
    dt = jnp.float64

    def run():
        return pseudo_arclength_scan(rhs, u0, jnp.asarray(p0, dt), jnp.asarray(p_end, dt),
                                     jnp.asarray(ds, dt), jnp.asarray(ds_min, dt),
                                     jnp.asarray(ds_max, dt), jnp.asarray(TOL, dt), max_steps,
                                     jnp.asarray(NEWTON), Dense(), jnp.asarray(True))

    return time_median(run, repeats=repeats)


# --- report -------------------------------------------------------------------------------


ROWS = []  # (problem, run, first, warm, located, max error, ratio text)
NOTES = []  # sentences for the markdown section
LOAD = []  # 1-minute load averages at the start and end of the run


def row(problem, run, first, warm, located, err, ratio=""):
    ROWS.append((problem, run, first, warm, located, err, ratio))
    print(f"  {run:<46} first {fmt_t(first):>9}, warm {fmt_t(warm):>9}  | {located}"
          f"{'' if err is None else f'  (max |err| {fmt_err(err)})'}"
          f"{'' if not ratio else f'  [{ratio}]'}")


def ratio(peer, ours):
    r = peer / ours
    if r >= 1:
        return f"jaxdyn {r:,.0f}× faster warm" if r >= 10 else f"jaxdyn {r:.1f}× faster warm"
    return f"jaxdyn {1 / r:.1f}× slower warm"


def max_err(found, exact):
    found, exact = np.asarray(found), np.asarray(exact)
    if found.shape != exact.shape:
        return float("nan")
    return float(np.max(np.abs(found - exact)))


# --- problems -----------------------------------------------------------------------------


def cusp_problem(jc, reps, jreps):
    import jaxdyn as jd

    print("\n1. cusp x' = a + bx - x^3, b = 1, a from -1 over [-2, 2]; "
          f"exact folds a = ±{CUSP_FOLD:.10f}")
    sys_ = jd.systems.cusp()
    exact = np.array([-CUSP_FOLD, CUSP_FOLD])
    x0, args = jnp.array([-1.0]), jnp.array([0.0, 1.0])
    step = dict(ds=0.01, ds_min=1e-6, ds_max=0.1, max_steps=500)
    out = {}
    for label, tests in (("default tests", None), ("Fold only", (jd.Fold(),)),
                         ("tests=() (no detection)", ())):
        def run(tests=tests):
            return jd.continuation(sys_, x0, -1.0, args, parameter=lambda a: a[0],
                                   bounds=(-2.0, 2.0), tests=tests, tol=TOL,
                                   corrector_steps=NEWTON, **step)
        first, warm, br = time_median(run, repeats=jreps)
        folds = jd_points(br, "fold")
        out[label] = warm
        row("cusp", f"jaxdyn, {label}", first, warm, f"{jd_span(br)}; {jd_summary(br)}",
            max_err(folds, exact) if tests != () else None)
    if jc is None:
        return
    f = lambda u, p, b: sys_(0.0, u, jnp.stack([p, b]))
    prob = jc.bif_problem(f, x0, -1.0, args=jnp.asarray(1.0))
    st = jc_settings(jc, **step)
    for label, events, ours in (("[Fold, Hopf]", [jc.Fold(), jc.Hopf()], out["default tests"]),
                                ("[Fold]", [jc.Fold()], out["Fold only"])):
        run = lambda events=events: jc.continuation(prob, jc.PseudoArclength(),
                                                    p_span=(-1.0, 2.0), settings=st,
                                                    events=events)
        first, warm, res = time_median(run, repeats=reps)
        row("cusp", f"jaxcont, events {label}", first, warm,
            f"{jc_span(res)}; {jc_summary(res)}",
            max_err(jc_points(res, "fold"), exact), ratio(warm, ours))
    first, warm, _ = jc_floor(f, x0, -1.0, 2.0, jnp.asarray(1.0), **step, repeats=jreps)
    row("cusp", "jaxcont loop floor (fixed f, no events)", first, warm, "—", None,
        ratio(warm, out["tests=() (no detection)"]) + " vs jaxdyn tests=()")


def bratu_problem(jc, reps, jreps):
    import jaxdyn as jd

    print(f"\n2. Bratu N = 50, λ from 0.5 forward, ds_max 0.5, 150 steps; exact fold "
          f"λ = {BRATU50_FOLD:.10f}")
    sys_ = jd.systems.bratu(50)
    x0 = jnp.zeros(50)
    step = dict(ds=0.01, ds_min=1e-6, ds_max=0.5, max_steps=150)

    def run(tests=None):
        return jd.continuation(sys_, x0, 0.5, bounds=(0.0, 4.0), direction="forward",
                               tests=tests, tol=TOL, corrector_steps=NEWTON, **step)

    first, warm, br = time_median(run, repeats=reps)
    ours = warm
    row("Bratu N=50", "jaxdyn, default tests", first, warm,
        f"{jd_span(br)}; {jd_summary(br)}",
        max_err(jd_points(br, "fold"), [BRATU50_FOLD]))
    NOTES.append("Bratu's reference λ* = 3.5131277926 is given to 10 decimals, so errors "
                 "near 1e-11 are its rounding.")
    first, warm, br = time_median(lambda: run((jd.Fold(),)), repeats=jreps)
    fold_only = warm
    row("Bratu N=50", "jaxdyn, Fold only", first, warm, f"{jd_span(br)}; {jd_summary(br)}",
        max_err(jd_points(br, "fold"), [BRATU50_FOLD]))
    NOTES.append(f"Bratu N = 50: jaxdyn's default tests (fold, branch point, Hopf) take "
                 f"{ours / fold_only:.1f}× its Fold-only run: the extra test functions are "
                 f"evaluated at every point; only the fold fires and is located.")
    first, warm, br = time_median(lambda: run(()), repeats=jreps)
    bare = warm
    row("Bratu N=50", "jaxdyn, tests=() (no detection)", first, warm, jd_span(br), None)
    if jc is None:
        return
    f = lambda u, lam, _: sys_(0.0, u, lam)
    prob = jc.bif_problem(f, x0, 0.5)
    st = jc_settings(jc, **step)
    for label, events, against in (("[Fold, Hopf]", [jc.Fold(), jc.Hopf()], ours),
                                   ("[Fold]", [jc.Fold()], fold_only)):
        run = lambda events=events: jc.continuation(prob, jc.PseudoArclength(),
                                                    p_span=(0.5, 4.0), settings=st,
                                                    events=events)
        first, warm, res = time_median(run, repeats=reps)
        row("Bratu N=50", f"jaxcont, events {label}", first, warm,
            f"{jc_span(res)}; {jc_summary(res)}",
            max_err(jc_points(res, "fold"), [BRATU50_FOLD]), ratio(warm, against))
    first, warm, _ = jc_floor(f, x0, 0.5, 4.0, None, **step, repeats=jreps)
    row("Bratu N=50", "jaxcont loop floor (fixed f, no events)", first, warm, "—", None,
        ratio(warm, bare) + " vs jaxdyn tests=()")


def lorenz_problem(jc, reps, jreps):
    import jaxdyn as jd

    print(f"\n3. Lorenz σ = 10, β = 8/3 in ρ, bounds (0, 30), ds_max 1: branch point ρ = 1, "
          f"Hopf ρ = {LORENZ_HOPF:.10f}, ω = {LORENZ_OMEGA:.10f}")
    sys_ = jd.systems.lorenz()
    step = dict(ds=0.01, ds_min=1e-6, ds_max=1.0, max_steps=500)
    opts = dict(bounds=(0.0, 30.0), tol=TOL, corrector_steps=NEWTON, **step)
    x0 = jnp.zeros(3)

    def origin():
        return jd.continuation(sys_, x0, 0.5, **opts)

    first, warm, br0 = time_median(origin, repeats=jreps)
    t_origin = warm
    row("Lorenz", "jaxdyn, origin branch (default tests)", first, warm,
        f"{jd_span(br0)}; {jd_summary(br0)}",
        max_err(jd_points(br0, "branch point"), [1.0]))
    bp = np.flatnonzero(np.asarray(br0.special.of_kind("branch point")))
    if bp.size == 0:
        print("  jaxdyn found no branch point on the origin branch; no switch")
    else:
        i = int(bp[0])
        first, warm, br1 = time_median(lambda: jd.switch_branch(sys_, br0, i, **opts),
                                       repeats=jreps)
        hopf = np.asarray(br1.special.of_kind("hopf"))
        omega = np.asarray(br1.special.omega)[hopf]
        hp = np.asarray(br1.special.p)[hopf]
        row("Lorenz", "jaxdyn, switch_branch at ρ = 1 (C+ and C-)", first, warm,
            f"{jd_span(br1)}; {jd_summary(br1)}; ω {np.round(omega, 10).tolist()}",
            max(max_err(hp, [LORENZ_HOPF] * len(hp)), max_err(omega, [LORENZ_OMEGA] * len(hp)))
            if hp.size else float("nan"))
        if np.any(np.asarray(br1.special.of_kind("fold"))):
            print("  note: jaxdyn also reports a 'fold' at ρ = 1 on the switched branch "
                  "(the pitchfork's turning point in ρ), besides the branch point")
    r0 = math.sqrt(BETA * 9.0)
    xc = jnp.array([r0, r0, 9.0])

    def cplus(tests=None):
        return jd.continuation(sys_, xc, 10.0, direction="forward", tests=tests, **opts)

    first, warm, br2 = time_median(cplus, repeats=jreps)
    t_cplus = warm
    hopf = np.asarray(br2.special.of_kind("hopf"))
    row("Lorenz", "jaxdyn, C+ from ρ = 10 forward", first, warm,
        f"{jd_span(br2)}; {jd_summary(br2)}; ω "
        f"{np.round(np.asarray(br2.special.omega)[hopf], 10).tolist()}; "
        f"ℓ1 {', '.join(f'{v:.6g}' for v in np.asarray(br2.special.coefficient)[hopf])}",
        max(max_err(np.asarray(br2.special.p)[hopf], [LORENZ_HOPF]),
            max_err(np.asarray(br2.special.omega)[hopf], [LORENZ_OMEGA])))
    first, warm, br3 = time_median(lambda: cplus(()), repeats=jreps)
    bare = warm
    row("Lorenz", "jaxdyn, C+ from ρ = 10, tests=()", first, warm, jd_span(br3), None)
    if jc is None:
        return
    f = lambda u, rho, _: sys_(0.0, u, rho)
    st = jc_settings(jc, **step)
    ev = [jc.Fold(), jc.Hopf()]
    prob0 = jc.bif_problem(f, x0, 0.5)
    first, warm, res0 = time_median(lambda: jc.continuation(
        prob0, jc.PseudoArclength(), p_span=(0.5, 30.0), settings=st, events=ev), repeats=reps)
    row("Lorenz", "jaxcont, origin branch, events [Fold, Hopf]", first, warm,
        f"{jc_span(res0)}; {jc_summary(res0)} (no branch-point test)", None,
        ratio(warm, t_origin))
    probc = jc.bif_problem(f, xc, 10.0)
    first, warm, resc = time_median(lambda: jc.continuation(
        probc, jc.PseudoArclength(), p_span=(10.0, 30.0), settings=st, events=ev),
        repeats=reps)
    hopfs = [e for e in resc.events if e.kind == "hopf"]
    l1_jc = [e.info.get("l1", float("nan")) for e in hopfs]
    row("Lorenz", "jaxcont, C+ from ρ = 10, events [Fold, Hopf]", first, warm,
        f"{jc_span(resc)}; {jc_summary(resc)}; ω "
        f"{[round(e.info.get('omega0', float('nan')), 10) for e in hopfs]}; "
        f"ℓ1 {', '.join(f'{v:.6g}' for v in l1_jc)}",
        max(max_err([e.p for e in hopfs], [LORENZ_HOPF]),
            max_err([e.info.get("omega0") for e in hopfs], [LORENZ_OMEGA])),
        ratio(warm, t_cplus))
    l1_jd = np.asarray(br2.special.coefficient)[hopf]
    if hopfs and l1_jd.size:
        note = (f"ℓ1 jaxdyn / jaxcont = {l1_jd[0] / hopfs[0].info['l1']:.6f}; "
                f"{l1_normalisation(jc)}")
        print(f"  {note}")
        NOTES.append(f"Lorenz: jaxcont has no branch-point test and no branch switching, so "
                     f"its C+ run starts from the closed-form equilibrium at ρ = 10. {note} "
                     f"(jaxdyn uses that normalisation).")
    first, warm, _ = jc_floor(f, xc, 10.0, 30.0, None, **step, repeats=jreps)
    row("Lorenz", "jaxcont loop floor, C+ (fixed f, no events)", first, warm, "—", None,
        ratio(warm, bare) + " vs jaxdyn tests=()")


def l1_normalisation(jc):
    """jaxcont's ℓ1 on `jd.systems.hopf(l1=-0.7)`, whose ℓ1 in Kuznetsov's normalisation
    (Aq = iωq, ⟨q, q⟩ = 1, ⟨p, q⟩ = 1) is −0.7 by construction."""
    import jaxdyn as jd

    nf = jd.systems.hopf(mu=-1.0, omega=2.0, l1=-0.7)
    g = lambda u, mu, _: nf(0.0, u, mu)
    u, p, q1, q2, w, _ = jc.hopf_point(g, jnp.zeros(2), 0.01)
    l1 = float(jc.lyapunov_coefficient(g, u, p, q1, q2, w))
    return (f"on the Hopf normal form with ℓ1 = -0.7 (Kuznetsov's normalisation) jaxcont "
            f"reports {l1:.6g}")


def batch_problem(jc, reps, jreps, sample):
    import jaxdyn as jd

    n = 256
    print(f"\n4. {n} cusp diagrams, b in linspace(0.5, 2, {n}), fold detection, 200 steps; "
          "exact folds a = ±2(b/3)^(3/2)")
    sys_ = jd.systems.cusp()
    bs = jnp.linspace(0.5, 2.0, n)
    exact = 2.0 * (np.asarray(bs) / 3.0) ** 1.5
    x0 = jnp.array([-1.5])
    step = dict(ds=0.01, ds_min=1e-6, ds_max=0.1, max_steps=200)

    @jax.jit
    @jax.vmap
    def diagrams(b):
        return jd.continuation(sys_, x0, -1.0, jnp.stack([jnp.asarray(-1.0), b]),
                               parameter=lambda a: a[0], bounds=(-2.0, 2.0),
                               tests=(jd.Fold(),), tol=TOL, corrector_steps=NEWTON, **step)

    first, warm, brs = time_median(diagrams, bs, repeats=jreps)
    ours = warm
    sp = brs.special
    mask = np.asarray(sp.of_kind("fold"))
    counts = mask.sum(1)
    p = np.sort(np.where(mask, np.asarray(sp.p), np.nan), axis=1)[:, :2]
    two = counts == 2
    err = float(np.max(np.abs(p[two] - np.stack([-exact, exact], 1)[two]))) if two.any() \
        else float("nan")
    row(f"{n} cusps", "jaxdyn, one jit(vmap) call, tests (Fold,)", first, warm,
        f"2 folds on {int(two.sum())}/{n} diagrams; {n / warm:,.0f} diagrams/s", err)
    if jc is None:
        return
    f = lambda u, a, b: sys_(0.0, u, jnp.stack([a, b]))
    st = jc_settings(jc, **step)
    idx = np.unique(np.linspace(0, n - 1, sample).round().astype(int))

    def one(b):
        prob = jc.bif_problem(f, x0, -1.0, args=b)
        return jc.continuation(prob, jc.PseudoArclength(), p_span=(-1.0, 2.0), settings=st,
                               events=[jc.Fold()])

    t = time.perf_counter()
    one(bs[idx[0]])
    first = time.perf_counter() - t
    t = time.perf_counter()
    res = [one(bs[i]) for i in idx]
    per = (time.perf_counter() - t) / len(idx)
    found = [jc_points(r, "fold") for r in res]
    ok = [k for k, fp in enumerate(found) if fp.size == 2]
    err = max((max_err(found[k], [-exact[idx[k]], exact[idx[k]]]) for k in ok),
              default=float("nan"))
    total = per * n
    NOTES.append(f"{n} cusps: jaxcont raises NotImplementedError for events under `vmap`, so "
                 f"its diagrams run serially: {len(idx)} timed ({per:.2f} s each, every call "
                 f"recompiling) and scaled to {n}.")
    row(f"{n} cusps", f"jaxcont, serial with [Fold] ({len(idx)} timed, ×{n / len(idx):.0f})",
        first, total, f"2 folds on {len(ok)}/{len(idx)} sampled; {1 / per:.2f} diagrams/s",
        err, ratio(total, ours))

    def branches(b):
        prob = jc.bif_problem(f, x0, -1.0, args=b)
        r = jc.continuation(prob, jc.PseudoArclength(), p_span=(-1.0, 2.0), settings=st)
        return r.branch.params, r.branch.valid

    try:
        first, warm, _ = time_median(jax.vmap(branches), bs, repeats=1)
        row(f"{n} cusps", "jaxcont, vmap without events (branches only)", first, warm,
            "no special points (events unsupported under vmap)", None, ratio(warm, ours))
    except Exception as err:  # noqa: BLE001 - report whatever the peer raises
        print(f"  jaxcont vmap without events failed: {type(err).__name__}: {err}")


# --- main ---------------------------------------------------------------------------------


def auto_status():
    exe = shutil.which("auto") or shutil.which("auto-07p")
    mod = importlib.util.find_spec("auto") is not None
    if exe or mod:
        return f"AUTO-07p found ({exe or 'python module auto'}), not wired into this script"
    return ("AUTO-07p: not available (no `auto` on PATH, no `auto` Python module; it is built "
            "from source, no pip/apt package here) — not compared")


def markdown(jc_version, quick):
    lines = ["## Continuation (`continuation.py`)", "",
             "Machine: 2-core CPU, float64, JAX " + jax.__version__ + f"; jaxcont {jc_version}."
             " Same vector field for both (jaxcont's `f(u, p, args)` calls the jaxdyn system);"
             " ds / ds_min / ds_max / max steps shared, corrector tolerance 1e-10 and 8 Newton"
             " iterations for both (jaxcont locates events to its fixed 1e-6). Warm = median of"
             " repeated calls; first call includes compilation. jaxcont retraces and recompiles"
             " on every call (a new closure is a static argument of its jitted loop, and its"
             " event location runs eagerly), so its repeated-call time is what a user gets; its"
             " loop called directly with a fixed `f` and no events is shown as a floor."
             f" AUTO-07p is not installed (source build only), not compared. Other jobs shared"
             f" the cores (1-minute load average {min(LOAD):.1f}–{max(LOAD):.1f}), so timings"
             f" are noisy."
             + (" Run with `--quick`." if quick else ""), "",
             "| problem | run | warm | first call | located (max error vs exact) | ratio |",
             "| --- | --- | --- | --- | --- | --- |"]
    for problem, run, first, warm, located, err, r in ROWS:
        located = located.replace("|", "/")
        lines.append(f"| {problem} | {run} | {fmt_t(warm)} | {fmt_t(first)} | {located}"
                     f"{'' if err is None else f' ({fmt_err(err)})'} | {r or '—'} |")
    floors = [f"{r[0]}: {r[6].replace(' vs jaxdyn tests=()', '')}" for r in ROWS
              if "floor" in r[1]]
    notes = NOTES + ([f"Loop floors, jaxcont's jitted loop (one fixed `f`, no events) against "
                      f"jaxdyn `tests=()`, which still computes every point's eigenvalues "
                      f"(stability) inside its loop: {'; '.join(floors)}."] if floors else [])
    return "\n".join(lines + ([""] + [f"- {t}" for t in notes] if notes else []))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller peer sample")
    ap.add_argument("--only", default="cusp,bratu,lorenz,batch")
    ap.add_argument("--sample", type=int, default=None,
                    help="jaxcont serial runs timed in problem 4 (default 16, quick 4)")
    a = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    reps, jreps = (1, 3) if a.quick else (3, 5)
    sample = a.sample or (4 if a.quick else 16)
    only = set(a.only.split(","))
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.1f} (other jobs share the cores)")
    jc = jaxcont_module()
    version = "missing"
    if jc is None:
        print("jaxcont: not installed (`pip install jaxcont==0.4.0`); jaxdyn only")
    else:
        version = jc.__version__
        print(f"jaxcont {version}" + ("" if version == "0.4.0" else " (written against 0.4.0)"))
    print(auto_status())
    print(f"float64; corrector tol {TOL:g}, {NEWTON} Newton iterations; warm = median of "
          f"{jreps} (jaxdyn) / {reps} (jaxcont) repeated calls")
    t0 = time.perf_counter()
    LOAD.append(os.getloadavg()[0])
    if "cusp" in only:
        cusp_problem(jc, reps, jreps)
    if "bratu" in only:
        bratu_problem(jc, reps, jreps)
    if "lorenz" in only:
        lorenz_problem(jc, reps, jreps)
    if "batch" in only:
        batch_problem(jc, reps, jreps, sample)
    LOAD.append(os.getloadavg()[0])
    print(f"\nSummary (total run {time.perf_counter() - t0:.0f} s, load average at end "
          f"{LOAD[-1]:.1f})")
    w = [12, 48, 10, 10, 12, 26]
    head = ("problem", "run", "warm", "first", "max |err|", "ratio")
    print("  ".join(h.ljust(k) for h, k in zip(head, w)))
    for problem, run, first, warm, _, err, r in ROWS:
        cells = (problem, run, fmt_t(warm), fmt_t(first), "—" if err is None else fmt_err(err),
                 r or "—")
        print("  ".join(c.ljust(k) for c, k in zip(cells, w)))
    print("\n--- markdown for RESULTS.md ---\n")
    print(markdown(version, a.quick))


if __name__ == "__main__":
    main()
