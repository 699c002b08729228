"""The saddle-node cascade of a context-dependent decision network, in the full network and
in its parameter-dependent 1-D SSM reduced model (Marraffa, Krause, Mante & Haller 2025,
arXiv:2510.13519). `docs/ssm_cdm.md` walks through the same computation with its numbers.

`tests/data/cdm.eqx`: a 32-unit tanh rate CTRNN (dt = 100 ms, τ = 200 ms) trained on
`ContextDecisionMaking` with `jd.tasks.recipe` (accuracy 0.93). Its input in context 1 with
the stimulus channels off (the delay epoch: only the `context1` cue is on), plus
modality-1 evidence of signed coherence `c` (the task's ring stimulus without its 0.5
baseline: `stim1_mod1 − stim2_mod1 = c/100`), is the parameter. Along `c` the equilibria
undergo four folds, c ≈ −5.858, −5.542, −0.036, 8.983: 1, 3, 5, 3 and 1 equilibria between
them (up to three coexisting stable states). A parameter-dependent 1-D SSM fitted to
relaxations at 12 values of `c` reproduces the folds within 0.06 and the counts.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxdyn as jd
import jaxdyn.ssm as ssm

DATA = Path(__file__).parent / "data"

# context1 cue on, every other input off; `D` moves modality 1 by one unit of coherence.
U0 = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
D = np.array([0.0, 1 / 200, -1 / 200, 0.0, 0.0, 0.0, 0.0])
BOUNDS = (-10.0, 12.0)  # the range of c analysed (and covered by the SSM's data)
FOLD_TOL = 0.15
COUNT_AT = (-8.0, -5.7, -3.0, 4.0, 11.0)


def _load_cdm():
    model = jd.load_model(DATA / "cdm.eqx")
    return jax.tree_util.tree_map(
        lambda x: x.astype("float64") if hasattr(x, "dtype") and x.dtype.kind == "f" else x,
        model)


def _crossings(p, c):
    """How many times the branch (parameter values `p` along arclength) crosses `c`."""
    s = np.sign(np.asarray(p) - c)
    return int(np.sum(s[1:] != s[:-1]))


@pytest.mark.slow
def test_cdm_fold_cascade_full_network_and_1d_ssm():
    model = _load_cdm()
    u0, d = jnp.asarray(U0), jnp.asarray(D)

    # A stable state at c = 0: where the network settles from rest.
    rest = jd.simulate(model, model.init_state(), u0, 30000.0, dt=25.0, n_save=2).xs[-1]

    # The full network along c: one connected branch through all of them, four folds.
    full = jd.continuation(model, rest, 0.0, u0, parameter=d, bounds=BOUNDS, ds=0.5,
                           ds_max=2.0, max_steps=300, tests=(jd.Fold(),))
    sp = full.special
    folds_full = np.sort(np.asarray(sp.p)[np.asarray(sp.of_kind("fold"))])
    assert folds_full.size == 4
    # Stable and saddle segments alternate: 3 stable segments, 2 saddle segments.
    valid = np.asarray(full.valid)
    p_full, x_full = np.asarray(full.p)[valid], np.asarray(full.x)[valid]
    nu_full = np.asarray(full.n_unstable)[valid]
    assert set(nu_full.tolist()) == {0, 1}
    assert int(np.sum(nu_full[1:] != nu_full[:-1])) == 4
    # The SSM's anchor: the saddle point of the branch farthest from a fold (the largest
    # unstable eigenvalue: the widest spectral gap), at its own parameter value.
    growth = np.asarray(full.eigenvalues.real).max(axis=1)[valid]
    a = int(np.argmax(np.where(nu_full == 1, growth, -np.inf)))
    anchor, p_anchor = jnp.asarray(x_full[a]), float(p_full[a])

    # Relaxations onto the slow manifold at 12 values of c, from perturbed branch points.
    on = x_full[np.abs(p_full) < 12.0]
    on = jnp.asarray(on[:: max(1, len(on) // 16)])
    cs = np.arange(-10.0, 13.0, 2.0)
    x0 = (on[None] + 0.05 * jr.normal(jr.PRNGKey(0), (cs.size,) + on.shape)).reshape(
        -1, on.shape[1])
    c = jnp.repeat(jnp.asarray(cs), on.shape[0])
    data = jax.vmap(lambda x, ci: jd.simulate(model, x, u0 + ci * d, 6000.0, dt=25.0,
                                              n_save=121).xs)(x0, c)

    # A parameter-dependent 1-D SSM anchored at the saddle (its unstable mode is the chart).
    m = ssm.fit(data, 1, 10, params=c, param_order=2, system=model, fixed_point=anchor,
                param_ref=p_anchor, args=lambda p: u0 + p * d, dt=50.0,
                transient=2000.0)
    assert m.result == jd.RESULTS.successful
    assert m.parametric and float(m.gap) > 5.0
    # The 1-D manifold persists across the range: the reduced model predicts the on-manifold
    # part (after the transient) of every trajectory, at every c, within a few per cent.
    err = np.asarray(ssm.nmte(m, data[:, 40:], params=c))
    assert np.all(np.isfinite(err)) and err.max() < 0.08

    # The reduced dynamics along c: the same four folds.
    red = jd.continuation(m.system, jnp.zeros(1), p_anchor, bounds=BOUNDS, ds=0.1, ds_max=0.5,
                          max_steps=400, tests=(jd.Fold(),))
    rsp = red.special
    folds_red = np.sort(np.asarray(rsp.p)[np.asarray(rsp.of_kind("fold"))])
    assert folds_red.size == 4
    # The two closest folds are 0.32 apart, so a tolerance below half of that pairs each
    # reduced fold with exactly one full fold; 0.15 is also 1 % of the cascade's span.
    np.testing.assert_allclose(folds_red, folds_full, atol=FOLD_TOL)
    eta_folds = np.asarray(rsp.x)[np.asarray(rsp.of_kind("fold")), 0]
    assert np.all((eta_folds > float(m.eta_min[0])) & (eta_folds < float(m.eta_max[0])))

    # Equilibria per c: crossings of both branches, and sign changes of the reduced vector
    # field R(η, c) over the fitted interval of η.
    p_red = np.asarray(red.p)[np.asarray(red.valid)]
    expected = [1, 3, 5, 3, 1]
    assert [_crossings(p_full, ci) for ci in COUNT_AT] == expected
    assert [_crossings(p_red, ci) for ci in COUNT_AT] == expected
    # (within the η that the data at neighbouring c cover after the transient: the fit is
    # supported there; at the edge of all the data, η ≈ 1.42, the order-10 polynomial has a
    # spurious zero for c < −5.5, where no trajectory at those c goes).
    on_manifold = np.asarray(m.reduce(data[:, 40:]))[..., 0]
    zeros = []
    for ci in COUNT_AT:
        near = on_manifold[np.abs(np.asarray(c) - ci) <= 2.0]
        eta = jnp.linspace(near.min(), near.max(), 4001)[:, None]
        zeros.append(_crossings(np.asarray(m.vector_field(eta, ci))[:, 0], 0.0))
    assert zeros == expected
