"""Continuation: equilibria branches, special points against closed forms (float64), branch
switching, two-parameter curves, vmap over a second parameter, implicit gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn import systems

jax.config.update("jax_enable_x64", True)

CUSP_ARGS = jnp.array([0.0, 1.0])
first = lambda a: a[0]  # noqa: E731
second = lambda a: a[1]  # noqa: E731


def _kind(branch, name):
    return np.flatnonzero(np.asarray(branch.special.of_kind(name)))


@pytest.fixture(scope="module")
def cusp_branch():
    return jd.continuation(systems.cusp(), jnp.array([-1.0]), -1.0, CUSP_ARGS, parameter=first,
                           bounds=(-2.0, 2.0), tests=(jd.Fold(),))


def test_cusp_folds(cusp_branch):
    br = cusp_branch
    assert br.result == jd.RESULTS.successful
    assert bool(jnp.all(br.status._value[br.valid] == jd.RESULTS.successful._value))
    folds = _kind(br, "fold")
    assert len(folds) == 2
    x = np.asarray(br.special.x[folds, 0])
    p = np.asarray(br.special.p[folds])
    order = np.argsort(x)
    np.testing.assert_allclose(x[order], [-0.5773502692, 0.5773502692], atol=1e-10)
    np.testing.assert_allclose(p[order], [0.3849001795, -0.3849001795], atol=1e-10)
    # The quadratic coefficient a = ½ f_xx = −3x at the fold.
    np.testing.assert_allclose(np.asarray(br.special.coefficient[folds])[order],
                               [math.sqrt(3), -math.sqrt(3)], rtol=1e-8)
    # Stability: the middle branch (between the folds) is unstable, the outer ones stable.
    valid = np.asarray(br.valid)
    x_all = np.asarray(br.x[:, 0])[valid]
    stable = np.asarray(br.stable)[valid]
    inner = np.abs(x_all) < 0.57
    outer = np.abs(x_all) > 0.59
    assert not stable[inner].any() and stable[outer].all()
    assert np.all(np.asarray(br.n_unstable)[valid][inner] == 1)
    # The points lie on the branch: a + x − x³ = 0.
    p_all = np.asarray(br.p)[valid]
    assert np.max(np.abs(p_all + x_all - x_all**3)) < 1e-9
    assert p_all.min() < -2.0 + 0.2 and p_all.max() > 2.0 - 0.2


def test_cusp_fold_curve(cusp_branch):
    curve = jd.bifurcation_curve(systems.cusp(), cusp_branch, 0, parameter2=second,
                                 bounds2=(-1.0, 2.0), ds_max=0.05)
    assert curve.result == jd.RESULTS.successful  # both ends leave `bounds2`
    valid = np.asarray(curve.valid)
    a, b = np.asarray(curve.p)[valid], np.asarray(curve.p2)[valid]
    assert curve.kind == "fold" and valid.sum() > 20
    assert b.min() < 0.05 and b.max() > 1.9
    np.testing.assert_allclose(4 * b**3, 27 * a**2, atol=1e-9)
    cusps = _kind(curve, "cusp")
    assert len(cusps) == 1
    np.testing.assert_allclose([curve.special.p[cusps[0]], curve.special.p2[cusps[0]]],
                               [0.0, 0.0], atol=1e-10)
    assert "cusp" in repr(curve)


@pytest.mark.slow
@pytest.mark.parametrize("n, fold", [(10, 3.4986839366), (50, 3.5131277926)])
def test_bratu_fold(n, fold):
    br = jd.continuation(systems.bratu(n), jnp.zeros(n), 0.5, bounds=(0.0, 4.0),
                         tests=(jd.Fold(),), ds_max=0.5, direction="forward", max_steps=60)
    folds = _kind(br, "fold")
    assert len(folds) == 1
    assert abs(float(br.special.p[folds[0]]) - fold) < 1e-8
    # Below the fold the lower branch is stable, past it the upper branch is unstable.
    assert bool(br.stable[1]) and not bool(br.stable[br.count - 1])


@pytest.fixture(scope="module")
def lorenz_branches():
    lorenz = systems.lorenz()
    trivial = jd.continuation(lorenz, jnp.zeros(3), 0.5, bounds=(0.0, 30.0), ds_max=1.0,
                              tests=(jd.BranchPoint(), jd.Fold()))
    other = jd.switch_branch(lorenz, trivial, int(_kind(trivial, "branch point")[0]),
                             bounds=(0.0, 30.0), ds_max=1.0)
    return trivial, other


def test_lorenz_branch_point(lorenz_branches):
    trivial, _ = lorenz_branches
    bps = _kind(trivial, "branch point")
    assert len(bps) == 1 and len(_kind(trivial, "fold")) == 0
    assert abs(float(trivial.special.p[bps[0]]) - 1.0) < 1e-10
    np.testing.assert_allclose(trivial.x[trivial.valid], 0.0, atol=1e-12)


def test_lorenz_switch_and_hopf(lorenz_branches):
    _, other = lorenz_branches
    valid = np.asarray(other.valid)
    x, rho = np.asarray(other.x)[valid], np.asarray(other.p)[valid]
    # The C± branch: x = y = ±√(β(ρ − 1)), z = ρ − 1.
    np.testing.assert_allclose(x[:, 2], rho - 1, atol=1e-9)
    np.testing.assert_allclose(x[:, 0] ** 2, 8 / 3 * (rho - 1), atol=1e-8)
    assert (x[:, 0] > 0.1).any() and (x[:, 0] < -0.1).any()  # both halves of the pitchfork
    hopfs = _kind(other, "hopf")
    assert len(hopfs) == 2  # one on C+, one on C−
    np.testing.assert_allclose(other.special.p[hopfs], 470 / 19, atol=1e-10)
    np.testing.assert_allclose(other.special.omega[hopfs], 9.6245300637, atol=1e-9)
    assert np.all(np.asarray(other.special.coefficient[hopfs]) > 0)  # subcritical
    # The branch point the new branch passes through is reported, no spurious fold.
    assert len(_kind(other, "fold")) == 0
    assert len(_kind(other, "branch point")) == 1


def test_brusselator_hopf():
    br = jd.continuation(systems.brusselator(a=2.0), jnp.array([2.0, 1.0]), 2.0,
                         bounds=(0.0, 8.0), tests=(jd.Hopf(),))
    hopfs = _kind(br, "hopf")
    assert len(hopfs) == 1
    assert abs(float(br.special.p[hopfs[0]]) - 5.0) < 1e-10
    assert abs(float(br.special.omega[hopfs[0]]) - 2.0) < 1e-10
    np.testing.assert_allclose(br.special.x[hopfs[0]], [2.0, 2.5], atol=1e-10)


def test_hopf_first_lyapunov_coefficient():
    # The normal form is scaled so that its `l1` is the first Lyapunov coefficient.
    br = jd.continuation(systems.hopf(mu=-1.0, omega=2.0, l1=-0.7), jnp.zeros(2), -1.0,
                         bounds=(-1.0, 1.0), tests=(jd.Hopf(),))
    (h,) = _kind(br, "hopf")
    assert abs(float(br.special.p[h])) < 1e-10
    assert abs(float(br.special.omega[h]) - 2.0) < 1e-10
    assert abs(float(br.special.coefficient[h]) + 0.7) < 1e-8


def _beer_fold(w):
    beer = systems.beer_ctrnn(1, W=jnp.reshape(w, (1, 1)), theta=jnp.array([-3.0]))
    br = jd.continuation(beer, jnp.array([0.0]), 0.0, jnp.array([0.0]), parameter=first,
                         bounds=(-8.0, 4.0), tests=(jd.Fold(),), ds_max=0.5)
    return br.special.p[:2]


def test_beer_folds_and_gradient():
    p = np.sort(np.asarray(_beer_fold(6.0)))
    # I + θ = ±2 ln((√w + √(w−4))/2) − (w ± √(w(w−4)))/2, θ = −3.
    np.testing.assert_allclose(p - 3.0, [-3.4150929106, -2.5849070894], atol=1e-10)

    def exact(w, s):
        return s * 2 * jnp.log((jnp.sqrt(w) + jnp.sqrt(w - 4)) / 2) - (
            w + s * jnp.sqrt(w * (w - 4))) / 2

    grads = jax.jit(jax.jacrev(_beer_fold))(6.0)
    h = 1e-4
    fd = (_beer_fold(6.0 + h) - _beer_fold(6.0 - h)) / (2 * h)
    np.testing.assert_allclose(grads, fd, atol=1e-6)
    want = sorted(float(jax.grad(exact)(6.0, s)) for s in (1.0, -1.0))
    np.testing.assert_allclose(sorted(np.asarray(grads)), want, atol=1e-8)


def test_logistic_flip_and_period_doubling():
    logistic = systems.logistic()
    br = jd.continuation(logistic, jnp.array([0.5]), 2.0, bounds=(1.5, 3.7), ds_max=0.05,
                         tests=(jd.Flip(),))
    (flip,) = _kind(br, "flip")
    assert abs(float(br.special.p[flip]) - 3.0) < 1e-10
    assert abs(float(br.special.x[flip, 0]) - 2 / 3) < 1e-10
    assert abs(float(br.special.coefficient[flip]) - 9.0) < 1e-6  # c = a² + b, supercritical
    period2 = jd.switch_branch(logistic, br, int(flip), bounds=(1.5, 3.7), ds_max=0.05,
                               tests=(jd.Flip(), jd.Fold()))
    assert period2.period == 2
    flips = _kind(period2, "flip")
    assert len(flips) >= 1
    np.testing.assert_allclose(period2.special.p[flips], 1 + math.sqrt(6), atol=1e-10)
    assert len(_kind(period2, "fold")) == 0
    valid = np.asarray(period2.valid)
    x, r = np.asarray(period2.x[:, 0])[valid], np.asarray(period2.p)[valid]
    # Period-2 points: r x (1 − x) is the other point of the orbit, and F(F(x)) = x.
    fx = r * x * (1 - x)
    np.testing.assert_allclose(r * fx * (1 - fx), x, atol=1e-9)
    assert np.any(np.abs(fx - x) > 0.1)


def test_neimark_sacker_map():
    def rotate(t, x, mu):
        c, s = jnp.cos(0.7), jnp.sin(0.7)
        y = (1 + mu) * jnp.stack([c * x[0] - s * x[1], s * x[0] + c * x[1]])
        return y - (x[0] ** 2 + x[1] ** 2) * y

    br = jd.continuation(jd.Map(rotate), jnp.zeros(2), -0.5, bounds=(-0.5, 0.5),
                         tests=(jd.NeimarkSacker(),))
    (ns,) = _kind(br, "neimark-sacker")
    assert abs(float(br.special.p[ns])) < 1e-10
    assert abs(float(br.special.omega[ns]) - 0.7) < 1e-10


def test_bogdanov_takens_on_fold_and_hopf_curves():
    # x' = y, y' = a + b x + x² − x y: folds on a = b²/4, Hopf on a = 0 (b < 0), BT at (0, 0).
    bt = jd.Flow(lambda t, x, a: jnp.stack([x[1], a[0] + a[1] * x[0] + x[0] ** 2
                                            - x[0] * x[1]]))
    br = jd.continuation(bt, jnp.array([-2.0, 0.0]), None, jnp.array([-2.0, -1.0]),
                         parameter=first, bounds=(-3.0, 3.0), tests=(jd.Fold(), jd.Hopf()))
    (fold,), (hopf,) = _kind(br, "fold"), _kind(br, "hopf")
    np.testing.assert_allclose([br.special.p[fold], br.special.p[hopf]], [0.25, 0.0],
                               atol=1e-10)
    assert abs(float(br.special.omega[hopf]) - 1.0) < 1e-10
    for index in (fold, hopf):
        curve = jd.bifurcation_curve(bt, br, int(index), parameter2=second,
                                     bounds=(-3.0, 3.0), bounds2=(-2.0, 2.0))
        (k,) = _kind(curve, "bogdanov-takens")
        np.testing.assert_allclose([curve.special.p[k], curve.special.p2[k]], [0.0, 0.0],
                                   atol=1e-10)
        valid = np.asarray(curve.valid)
        a, b = np.asarray(curve.p)[valid], np.asarray(curve.p2)[valid]
        if curve.kind == "fold":
            np.testing.assert_allclose(a, b**2 / 4, atol=1e-9)
        else:
            np.testing.assert_allclose(a, 0.0, atol=1e-9)


@pytest.mark.slow
def test_vmap_over_second_parameter_equals_separate_calls():
    cusp = systems.cusp()
    bs = jnp.linspace(0.5, 2.0, 256)

    def run(b):
        return jd.continuation(cusp, jnp.array([-1.5]), -1.0, jnp.stack([jnp.asarray(-1.0), b]),
                               parameter=first, bounds=(-2.0, 2.0), tests=(jd.Fold(),),
                               max_steps=200)

    batch = jax.vmap(run)(bs)
    assert batch.p.shape == (256, 401) and batch.special.p.shape[0] == 256
    exact = 2 * (np.asarray(bs) / 3) ** 1.5
    folds = np.sort(np.asarray(batch.special.p[:, :2]), axis=1)
    np.testing.assert_allclose(folds, np.stack([-exact, exact], 1), atol=1e-10)
    for i in range(256):
        single = run(bs[i])
        np.testing.assert_allclose(batch.special.p[i], single.special.p, atol=1e-12)
        np.testing.assert_array_equal(batch.special.kind[i], single.special.kind)
        np.testing.assert_array_equal(batch.valid[i], single.valid)


def test_start_far_from_equilibrium(cusp_branch):
    cusp = systems.cusp()
    with pytest.raises(ValueError, match="not close to an equilibrium"):
        jd.continuation(cusp, jnp.array([1e6]), -1.0, CUSP_ARGS, parameter=first,
                        bounds=(-2.0, 2.0), tests=(jd.Fold(),))
    br = jd.continuation(cusp, jnp.array([1e6]), -1.0, CUSP_ARGS, parameter=first,
                         bounds=(-2.0, 2.0), tests=(jd.Fold(),), throw=False)
    assert br.result == jd.RESULTS.continuation_start
    assert int(br.status._value[0]) == jd.RESULTS.continuation_start._value
    assert int(br.count) == 0 and not bool(np.any(br.special.valid))


def test_bad_input():
    cusp = systems.cusp()
    x0 = jnp.array([-1.0])
    with pytest.raises(ValueError, match="parameter"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS)
    with pytest.raises(ValueError, match="`ds`"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=first, ds=0.0)
    with pytest.raises(ValueError, match="`ds_min`"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=first, ds_min=0.5, ds_max=0.1)
    with pytest.raises(ValueError, match="`bounds`"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=first, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="x0"):
        jd.continuation(cusp, jnp.zeros(2), -1.0, CUSP_ARGS, parameter=first)
    with pytest.raises(ValueError, match="Flip"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=first, tests=(jd.Flip(),))
    with pytest.raises(ValueError, match="direction"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=first, direction="up")
    with pytest.raises(ValueError, match="`p0` must not be NaN"):
        jd.continuation(cusp, x0, float("nan"), CUSP_ARGS, parameter=first)
    with pytest.raises(ValueError, match="structure and shapes"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=jnp.array([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="does not depend"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=lambda a: 1.0 + 0 * a[0])


def test_branch_plot_and_repr(cusp_branch):
    ax = cusp_branch.plot(coordinate=0)
    assert len(ax.lines) >= 3  # stable, unstable, stable, special points
    assert any(t.get_text() == "LP" for t in ax.texts)
    text = repr(cusp_branch)
    assert "fold" in text and "0.3849001795" in text
    with pytest.raises(ValueError, match="branch point"):
        jd.switch_branch(systems.cusp(), cusp_branch, 0)
    with pytest.raises(ValueError, match="not a valid special point"):
        jd.bifurcation_curve(systems.cusp(), cusp_branch, 5, parameter2=second)


def test_discrete_rnn_pitchfork_and_float32():
    # h ↦ tanh(w h): a pitchfork at w = 1; at w = 2 the nonzero fixed points are ±0.9575040241.
    rnn = jd.Map(lambda t, h, w: jnp.tanh(w * h))
    br = jd.continuation(rnn, jnp.zeros(1), 0.5, bounds=(0.0, 2.5), tests=(jd.BranchPoint(),),
                         ds_max=0.1)
    (bp,) = _kind(br, "branch point")
    assert abs(float(br.special.p[bp]) - 1.0) < 1e-10
    other = jd.switch_branch(rnn, br, int(bp), bounds=(0.0, 2.5), ds_max=0.1,
                             tests=(jd.BranchPoint(),))
    valid = np.asarray(other.valid)
    h, w = np.asarray(other.x[:, 0])[valid], np.asarray(other.p)[valid]
    np.testing.assert_allclose(np.tanh(w * h), h, atol=1e-10)
    assert np.all(np.asarray(other.stable)[valid][np.abs(h) > 0.1])  # the new branches are stable
    at2 = np.interp(2.0, w[h > 0][np.argsort(w[h > 0])], h[h > 0][np.argsort(w[h > 0])])
    assert abs(at2 - 0.9575040241) < 1e-3  # linear interpolation between branch points
    # float32 in, float32 out, with float32 tolerances.
    br32 = jd.continuation(rnn, jnp.zeros(1, jnp.float32), 0.5, bounds=(0.0, 2.5),
                           tests=(jd.BranchPoint(),), ds_max=0.1)
    assert br32.x.dtype == jnp.float32 and br32.p.dtype == jnp.float32
    (bp32,) = _kind(br32, "branch point")
    assert abs(float(br32.special.p[bp32]) - 1.0) < 1e-4


# --- statuses: a branch cut short by a budget says so ----------------------------------------


def _codes(result):
    return np.asarray(result._value).tolist()


def test_truncated_branch_statuses(cusp_branch):
    R = jd.RESULTS
    ok = R.successful._value
    # The fixture's program (the steps are traced): 500 steps of 0.001 reach neither bound.
    cut = jd.continuation(systems.cusp(), jnp.array([-1.0]), -1.0, CUSP_ARGS, parameter=first,
                          bounds=(-2.0, 2.0), tests=(jd.Fold(),), ds=1e-3, ds_max=1e-3)
    assert cut.result == R.continuation_max_steps
    assert _codes(cut.ends) == [R.continuation_max_steps._value] * 2
    assert "max_steps" in repr(cut) and "backward and forward ends" in repr(cut)
    # The fixture's branch left its bounds both ways: it ended normally.
    assert cusp_branch.result == R.successful and _codes(cusp_branch.ends) == [ok, ok]


def test_statuses_under_jit_and_vmap():
    R = jd.RESULTS

    def run(x0, p0, low, high, ds_max):
        return jd.continuation(systems.cusp(), x0[None], p0, CUSP_ARGS, parameter=first,
                               bounds=(low, high), tests=(jd.Fold(),), ds_max=ds_max,
                               max_steps=40, max_points=25, max_events=1, throw=False)

    # x0, p0, bounds, ds_max of: a branch that leaves narrow bounds both ways; one cut short
    # by its 25-point buffer going forward; two folds going forward with one slot; one fold
    # each way (each direction fits, the two together do not); a traced start outside its
    # bounds (eagerly a ValueError).
    cases = np.array([[-1.3, -1.0, -1.2, -0.8, 0.1], [-1.3, -1.0, -2.0, 2.0, 0.05],
                      [-0.76, 0.3, -0.5, 0.5, 0.2], [0.0, 0.0, -0.5, 0.5, 0.2],
                      [-1.3, -1.0, -0.9, 2.0, 0.1]])
    batch = jax.jit(jax.vmap(run))(*jnp.asarray(cases.T))
    np.testing.assert_array_equal(batch.result == R.continuation_max_points,
                                  [False, True, False, False, False])
    ok, events = R.successful._value, R.continuation_max_events._value
    assert _codes(batch.result) == [ok, R.continuation_max_points._value, events, events,
                                    R.continuation_outside_bounds._value]
    assert _codes(batch.ends) == [[ok, ok], [ok, R.continuation_max_points._value],
                                  [ok, events], [ok, ok],
                                  [R.continuation_outside_bounds._value] * 2]
    assert list(np.asarray(batch.special.valid).sum(axis=1)) == [0, 0, 1, 1, 0]
    p = np.asarray(batch.p[0])[np.asarray(batch.valid[0])]
    assert p.min() < -1.2 and p.max() > -0.8 and int(batch.count[4]) == 0
    for i, word in enumerate(("", "max_points", "max_events", "max_events",
                              "outside `bounds`")):
        one = jax.tree_util.tree_map(lambda a, i=i: a[i], batch)
        assert word in R[one.result]
        assert ("status:" in repr(one)) == bool(word)


def test_closed_branch_ends_once_round():
    # x² + p² = 1: a circle of equilibria with folds at p = ±1, followed once round (the
    # backward direction, which would go round the other way, is dropped).
    circle = jd.Flow(lambda t, x, p: x**2 + p**2 - 1)
    br = jd.continuation(circle, jnp.array([1.0]), 0.0, bounds=(-2.0, 2.0), tests=(jd.Fold(),),
                         max_steps=100)
    assert br.result == jd.RESULTS.successful
    assert _codes(br.ends) == [jd.RESULTS.successful._value] * 2
    n = int(br.count)
    np.testing.assert_allclose(br.x[n - 1], br.x[0])  # the last point is the start
    assert float(br.p[n - 1]) == float(br.p[0]) == 0.0
    assert np.all(np.isnan(np.asarray(br.p)[n:]))
    np.testing.assert_allclose(np.sort(np.asarray(br.special.p[_kind(br, "fold")])),
                               [-1.0, 1.0], atol=1e-10)
    x, p = np.asarray(br.x[:n, 0]), np.asarray(br.p[:n])
    np.testing.assert_allclose(x**2 + p**2, 1.0, atol=1e-9)
    angle = np.unwrap(np.arctan2(p, x))
    assert abs(abs(angle[-1] - angle[0]) - 2 * np.pi) < 1e-9  # once round, not more


def test_bad_selector_start_and_switch_step(cusp_branch, lorenz_branches):
    cusp, x0 = systems.cusp(), jnp.array([-1.0])
    # JAX clamps indices: a[5] of a pair would silently continue a[1].
    for selector in (lambda a: a[5], lambda a: a[-3], lambda a: jnp.take(a, 2)):
        with pytest.raises(ValueError, match="`parameter` must select an existing element"):
            jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=selector)
    with pytest.raises(ValueError, match="`parameter` must select"):  # also while tracing
        jax.jit(lambda a: jd.continuation(cusp, x0, -1.0, a, parameter=lambda a: a[5]))(
            CUSP_ARGS)
    with pytest.raises(ValueError, match="`parameter2` must select an existing element"):
        jd.bifurcation_curve(cusp, cusp_branch, 0, parameter2=lambda a: a[2])
    with pytest.raises(ValueError, match=r"`p0` \(the starting parameter\) must lie within "
                                         r"`bounds` \[0, 1\].*; got -1"):
        jd.continuation(cusp, x0, -1.0, CUSP_ARGS, parameter=first, bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="`p2`.*`bounds2`"):
        jd.bifurcation_curve(cusp, cusp_branch, 0, parameter2=second, bounds2=(2.0, 3.0))
    with pytest.raises(ValueError, match="fold's parameter.*`bounds`"):
        jd.bifurcation_curve(cusp, cusp_branch, 0, parameter2=second, bounds=(1.0, 2.0))
    trivial, _ = lorenz_branches
    bp = int(_kind(trivial, "branch point")[0])
    for h in (0.0, float("inf")):
        with pytest.raises(ValueError, match="`h`.*finite and nonzero"):
            jd.switch_branch(systems.lorenz(), trivial, bp, h=h)
    with pytest.raises(ValueError, match="branch point's parameter.*`bounds`"):
        jd.switch_branch(systems.lorenz(), trivial, bp, bounds=(2.0, 30.0))
