"""Fixed points against closed forms and published values; vmap, jit, grad, errors, unique."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn import RESULTS
from jaxdyn._fixed_points import MARGINAL, NONFINITE, SADDLE, STABLE, UNSTABLE
from jaxdyn.rnn import VanillaRNN

H_STAR = 0.9575040241


def tanh_map():
    return jd.Map(lambda t, h, w: jnp.tanh(w * h))


def fpf_map(n):
    """The test network of Golub & Sussillo (2018): h → tanh(h W) with
    W[i] = −roll(linspace(−1, 1, n), −i)."""
    base = np.linspace(-1.0, 1.0, n)
    W = jnp.asarray(-np.stack([np.roll(base, -i) for i in range(n)]))
    return jd.Map(lambda t, h, W: jnp.tanh(h @ W)), W


def grid(n, m=3):
    axes = jnp.meshgrid(*[jnp.linspace(-1.0, 1.0, m)] * n)
    return jnp.stack(axes, -1).reshape(-1, n)


def lorenz(t, x, args):
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0
    return jnp.stack([sigma * (x[1] - x[0]), x[0] * (rho - x[2]) - x[1],
                      x[0] * x[1] - beta * x[2]])


def small_rnn(seed=0, n=6):
    return VanillaRNN(2, n, 1, key=jax.random.PRNGKey(seed), init="normal", g=1.2)


def valid_sorted(u):
    keep = np.asarray(u.valid)
    order = np.argsort(np.asarray(u.x)[keep][:, 0])
    return {k: np.asarray(getattr(u, k))[keep][order]
            for k in ("x", "stability", "n_unstable", "eigvals")}


@pytest.mark.parametrize("method", ["newton", "q"])
def test_scalar_tanh(method):
    fps = jd.fixed_points(tanh_map(), jnp.linspace(-2.0, 2.0, 9)[:, None], jnp.asarray(2.0),
                          method=method)
    assert bool(jnp.all(fps.converged))
    u = valid_sorted(fps.unique(1e-6))
    np.testing.assert_allclose(u["x"][:, 0], [-H_STAR, 0.0, H_STAR], atol=1e-10)
    assert list(u["stability"]) == [STABLE, UNSTABLE, STABLE]
    # Multipliers: 2(1 − h*²) at ±h*, and 2 at the origin.
    np.testing.assert_allclose(np.abs(u["eigvals"][:, 0]), [2 * (1 - H_STAR**2), 2.0,
                                                            2 * (1 - H_STAR**2)], rtol=1e-8)


def test_fpf_network_n2():
    system, W = fpf_map(2)
    u = jd.fixed_points(system, grid(2), W).unique(1e-3)
    assert int(u.valid.sum()) == 3
    s = valid_sorted(u)
    np.testing.assert_allclose(s["x"], [[-0.957504, 0.957504], [0.0, 0.0],
                                        [0.957504, -0.957504]], atol=1e-6)
    # The origin has multipliers 2 and 0: a saddle.
    assert list(s["stability"]) == [STABLE, SADDLE, STABLE]
    np.testing.assert_allclose(np.abs(s["eigvals"][[0, 2], 0]), 0.166, atol=1e-3)


def test_fpf_network_n3():
    system, W = fpf_map(3)
    u = jd.fixed_points(system, grid(3), W).unique(1e-3)
    s = valid_sorted(u)
    np.testing.assert_allclose(s["x"], [[-0.949796, 0.425502, 0.879894], [0.0, 0.0, 0.0],
                                        [0.949796, -0.425502, -0.879894]], atol=1e-6)
    # The non-zero points are marginally unstable (|λ|max ≈ 1.006); the origin has two
    # multipliers of modulus √3 and one of 0.
    np.testing.assert_allclose(np.abs(s["eigvals"][[0, 2], 0]), 1.006, atol=1e-3)
    assert list(s["stability"]) == [SADDLE, SADDLE, SADDLE]
    assert list(s["n_unstable"]) == [1, 2, 1]


def test_lorenz_equilibria_labelled():
    x0s = jd.sample_states(jax.random.PRNGKey(0), jd.Flow(lorenz), jnp.array([1.0, 1.0, 1.0]),
                           t1=20.0, n=48, noise=2.0, n_save=400)
    fps = jd.fixed_points(lorenz, x0s, method="q")
    s = valid_sorted(fps.unique(1e-6))
    c = np.sqrt(8.0 / 3.0 * 27.0)
    np.testing.assert_allclose(s["x"], [[-c, -c, 27.0], [0.0, 0.0, 0.0], [c, c, 27.0]],
                               atol=1e-9)
    assert list(s["n_unstable"]) == [2, 1, 2]
    assert list(s["stability"]) == [SADDLE, SADDLE, SADDLE]
    np.testing.assert_allclose(np.sort(s["eigvals"][1].real),
                               np.sort([-8.0 / 3.0, -11 / 2 - np.sqrt(1201) / 2,
                                        -11 / 2 + np.sqrt(1201) / 2]), rtol=1e-10)


def test_linearisation_fields():
    model = small_rnn()
    u = jnp.array([0.3, -0.2])
    fps = jd.fixed_points(model, 0.5 * grid(6, 2)[:16], u)
    i = int(np.argmax(np.asarray(fps.converged)))
    np.testing.assert_allclose(fps.jacobian[i], jd.jacobian(model, fps.x[i], u), rtol=1e-12)
    np.testing.assert_allclose(fps.input_jacobian[i], jd.args_jacobian(model, fps.x[i], u),
                               rtol=1e-12)
    assert fps.input_jacobian.shape == (16, 6, 2)
    eye = jnp.einsum("kij,kil->kjl", fps.left_eigvecs.conj(), fps.eigvecs)
    np.testing.assert_allclose(eye, jnp.broadcast_to(jnp.eye(6), eye.shape), atol=1e-8)
    rates = np.log(np.abs(np.asarray(fps.eigvals)))
    assert np.all(np.diff(rates, axis=-1) <= 1e-12)  # sorted, most unstable first
    np.testing.assert_array_equal(fps.n_unstable, np.sum(rates > 1.5e-8, axis=-1))
    assert fps.args.shape == (16, 2)


def test_vmap_over_inputs_equals_loop_and_jit():
    model = small_rnn()
    x0s = 0.5 * grid(6, 2)[:8]
    us = jnp.array([[0.0, 0.0], [0.5, -0.3], [-1.0, 0.2]])
    batched = jax.vmap(lambda u: jd.fixed_points(model, x0s, u))(us)
    jitted = jax.jit(lambda x, u: jd.fixed_points(model, x, u))
    for k, u in enumerate(us):
        single = jd.fixed_points(model, x0s, u)
        np.testing.assert_allclose(batched.x[k], single.x, atol=1e-12)
        np.testing.assert_array_equal(batched.stability[k], single.stability)
        np.testing.assert_allclose(jitted(x0s, u).x, single.x, atol=1e-12)


def test_stacked_models_and_batched_args():
    models = [small_rnn(s) for s in range(3)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *models)
    x0s = 0.5 * grid(6, 2)[:8]
    u = jnp.array([0.1, 0.2])
    fps = eqx.filter_vmap(lambda m: jd.fixed_points(m, x0s, u))(stacked)
    for k, m in enumerate(models):
        np.testing.assert_allclose(fps.x[k], jd.fixed_points(m, x0s, u).x, atol=1e-12)
    # One input per start (args_axis=0) equals one call per start.
    us = jnp.outer(jnp.linspace(-0.5, 0.5, 8), jnp.array([1.0, -1.0]))
    per = jd.fixed_points(models[0], x0s, us, args_axis=0)
    for i in (0, 5):
        one = jd.fixed_points(models[0], x0s[i:i + 1], us[i])
        np.testing.assert_allclose(per.x[i], one.x[0], atol=1e-12)
    np.testing.assert_allclose(per.args, us)


def test_chunking_does_not_change_results():
    model = small_rnn()
    x0s = 0.5 * grid(6, 2)[:20]
    a = jd.fixed_points(model, x0s, jnp.zeros(2))
    b = jd.fixed_points(model, x0s, jnp.zeros(2), chunk_size=7)
    # Equal up to rounding (batched matrix products round differently per chunk size).
    np.testing.assert_array_equal(a.converged, b.converged)
    np.testing.assert_allclose(a.x, b.x, atol=1e-6)


def test_no_recompile_for_new_values():
    traces = []

    def f(t, x, w):
        traces.append(1)
        return jnp.tanh(w * x) - x

    x0s = jnp.linspace(-2.0, 2.0, 5)[:, None]
    jd.fixed_points(f, x0s, jnp.asarray(2.0), tol=1e-10)
    first = len(traces)
    jd.fixed_points(f, x0s + 0.1, jnp.asarray(3.0), tol=1e-9)
    assert len(traces) - first <= 1  # only the pre-tracing shape check evaluates f again


def test_grad_wrt_input_and_weight_matches_central_differences():
    model = small_rnn(n=4)
    u0 = jnp.array([0.4, -0.3])
    start = jd.fixed_points(model, jnp.zeros((1, 4)), u0)
    assert bool(start.converged[0])
    x0 = start.x[0]

    # A tight tol keeps the finite differences free of solver noise (error ~ tol / eps).
    def coord(model, u):
        return jd.fixed_points(model, x0[None], u, tol=1e-14).x[0, 1]

    eps = 1e-5
    g_u = jax.grad(coord, argnums=1)(model, u0)
    for j in range(2):
        e = jnp.zeros(2).at[j].set(eps)
        fd = (coord(model, u0 + e) - coord(model, u0 - e)) / (2 * eps)
        assert abs(float(g_u[j]) - float(fd)) < 1e-6
    g_m = eqx.filter_grad(coord)(model, u0)
    bump = lambda d: eqx.tree_at(lambda m: m.W, model, model.W.at[2, 1].add(d))
    fd = (coord(bump(eps), u0) - coord(bump(-eps), u0)) / (2 * eps)
    assert abs(float(g_m.W[2, 1]) - float(fd)) < 1e-6


def test_grad_of_eigenvalue_matches_central_differences():
    model = small_rnn(n=4)
    start = jd.fixed_points(model, jnp.zeros((1, 4)), jnp.array([0.5, 0.5]))
    assert bool(start.converged[0])
    x0 = start.x

    def spectral_radius(scale):
        m = eqx.tree_at(lambda m: m.W, model, scale * model.W)
        fps = jd.fixed_points(m, x0, jnp.array([0.5, 0.5]), tol=1e-14)
        return jnp.max(jnp.abs(fps.eigvals[0]))

    eps = 1e-5
    fd = (spectral_radius(1.0 + eps) - spectral_radius(1.0 - eps)) / (2 * eps)
    assert abs(float(jax.grad(spectral_radius)(1.0)) - float(fd)) < 1e-6


def test_divergent_and_singular_problems_are_finite_and_unconverged():
    no_root = lambda t, x, a: x**2 + 1.0
    x0s = jnp.array([[0.0], [0.7], [-3.0]])
    for method in ("newton", "q"):
        fps = jax.jit(lambda x: jd.fixed_points(no_root, x, method=method))(x0s)
        assert not bool(jnp.any(fps.converged))
        assert bool(jnp.all(jnp.isfinite(fps.x))) and bool(jnp.all(jnp.isfinite(fps.q)))
    slow = jd.fixed_points(no_root, x0s, method="q")
    assert bool(jnp.all(slow.slow)) and bool(jnp.all(slow.resolved))
    np.testing.assert_allclose(slow.q, 0.5, atol=1e-12)
    runaway = jd.fixed_points(lambda t, x, a: jnp.exp(x), jnp.ones((2, 1)), max_steps=20)
    assert not bool(jnp.any(runaway.converged)) and bool(jnp.all(jnp.isfinite(runaway.x)))
    nan_start = jd.fixed_points(lambda t, x, a: jnp.sqrt(x) - 2.0, jnp.array([[-1.0], [1.0]]))
    assert not bool(nan_start.converged[0]) and bool(nan_start.converged[1])
    assert int(nan_start.result._value[0]) == RESULTS.nonfinite._value
    assert bool(jnp.all(jnp.isfinite(nan_start.x)))


def test_bad_input_raises():
    model = small_rnn()
    u = jnp.zeros(2)
    with pytest.raises(ValueError, match="x0s"):
        jd.fixed_points(model, jnp.zeros((4, 5)), u)
    with pytest.raises(ValueError, match="x0s"):
        jd.fixed_points(model, jnp.zeros((0, 6)), u)
    with pytest.raises(ValueError, match="x0s"):
        jd.fixed_points(model, jnp.full((2, 6), jnp.nan), u)
    with pytest.raises(ValueError, match="x0s"):
        jd.fixed_points(model, jnp.zeros(6), u)
    for tol in (0.0, -1.0):
        with pytest.raises(ValueError, match="tol"):
            jd.fixed_points(model, jnp.zeros((2, 6)), u, tol=tol)
    with pytest.raises(ValueError, match="method"):
        jd.fixed_points(model, jnp.zeros((2, 6)), u, method="adam")
    with pytest.raises(ValueError, match="args"):
        jd.fixed_points(model, jnp.zeros((2, 6)), jnp.zeros((3, 2)), args_axis=0)
    with pytest.raises(ValueError, match="args"):
        jd.fixed_points(model, jnp.zeros((2, 6)), jnp.zeros(5))
    with pytest.raises(ValueError, match="x0s"):
        jd.fixed_points(lorenz, jnp.zeros((2, 2)))


def test_unique_under_jit_keeps_lowest_q():
    fps = jd.fixed_points(tanh_map(), jnp.linspace(-2.0, 2.0, 9)[:, None], jnp.asarray(2.0))
    # A perturbed copy of a point with a larger q must lose to the original.
    fps = eqx.tree_at(lambda f: (f.x, f.q), fps,
                      (fps.x.at[0, 0].add(1e-9), fps.q.at[0].set(1.0)))
    u = jax.jit(lambda f: f.unique(1e-6, size=5))(fps)
    assert u.x.shape == (5, 1) and u.valid.shape == (5,)
    assert int(u.valid.sum()) == 3
    assert bool(jnp.all(jnp.isnan(u.x[~u.valid])))
    assert float(jnp.max(u.q[u.valid])) < 1e-20
    assert bool(jnp.all(jnp.diff(u.q[u.valid]) >= 0))  # in order of increasing q
    small = fps.unique(1e-6, size=2)
    assert int(small.valid.sum()) == 2


def test_linearise_later_and_float32():
    model = small_rnn()
    x0s = 0.5 * grid(6, 2)[:10]
    full = jd.fixed_points(model, x0s, jnp.zeros(2))
    bare = jd.fixed_points(model, x0s, jnp.zeros(2), linearise=False)
    assert bare.eigvals is None and bare.stability is None
    late = bare.unique(1e-6).linearise(model)
    ref = full.unique(1e-6)
    np.testing.assert_allclose(late.eigvals[late.valid], ref.eigvals[ref.valid], rtol=1e-10)
    np.testing.assert_array_equal(late.stability, ref.stability)
    m32 = jd.Map(lambda t, h, w: jnp.tanh(w * h))
    f32 = jd.fixed_points(m32, jnp.linspace(-2, 2, 5, dtype=jnp.float32)[:, None],
                          jnp.float32(2.0))
    assert f32.x.dtype == jnp.float32 and bool(jnp.all(f32.converged))
    assert f32.jacobian.dtype == jnp.float32


def test_sample_states_sources():
    model = small_rnn()
    key = jax.random.PRNGKey(0)
    inputs = jnp.ones((4, 20, 2)) * 0.1
    s = jd.sample_states(key, model, inputs=inputs, n=30, noise=0.0)
    states = jax.vmap(lambda u: model.run(None, u)[0])(inputs).reshape(-1, 6)
    assert s.shape == (30, 6)
    assert all(bool(jnp.any(jnp.all(jnp.abs(states - row[None]) < 1e-12, axis=-1))) for row in s)
    traj = jd.simulate(jd.Flow(lorenz), jnp.ones(3), None, 5.0)
    assert jd.sample_states(key, traj, n=7, noise=1.0).shape == (7, 3)
    assert jd.sample_states(key, traj.xs, n=7, burn_in=10).shape == (7, 3)
    batch = jd.sample_states(key, lorenz, jnp.ones((2, 3)), t1=2.0, n=5)
    assert batch.shape == (5, 3) and bool(jnp.all(jnp.isfinite(batch)))
    with pytest.raises(ValueError, match="noise"):
        jd.sample_states(key, traj, n=3, noise=-1.0)
    with pytest.raises(ValueError, match="t1"):
        jd.sample_states(key, lorenz, jnp.ones(3), n=3)


def test_plot_and_summary():
    import matplotlib.axes

    model = small_rnn()
    x0s = jd.sample_states(jax.random.PRNGKey(0), model, inputs=jnp.zeros((2, 30, 2)) + 0.3,
                           n=12, noise=0.3)
    fps = jd.fixed_points(model, x0s, jnp.zeros(2), method="q")
    trajectories = jax.vmap(lambda x: model.run(x, jnp.zeros((30, 2)))[0])(x0s[:3])
    ax = fps.plot(trajectories=trajectories)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert isinstance(fps.unique(1e-6).plot(), matplotlib.axes.Axes)
    bare = jd.fixed_points(model, x0s, jnp.zeros(2), linearise=False)
    assert isinstance(bare.plot(trajectories=trajectories[0]), matplotlib.axes.Axes)
    assert isinstance(jd.fixed_points(tanh_map(), jnp.ones((2, 1)), 2.0).plot(),
                      matplotlib.axes.Axes)
    text = repr(fps)
    assert text.startswith("FixedPoints(12 points") and "distinct fixed points" in text
    names = jd.FixedPoints.stability_names
    assert names[STABLE] == "stable" and names[MARGINAL] == "marginal"
    assert names[NONFINITE] == "non-finite"


def test_unique_under_vmap_and_grad_against_the_closed_form():
    x0s = jnp.linspace(-2.0, 2.0, 9)[:, None]

    def count(w):
        u = jd.fixed_points(tanh_map(), x0s, w).unique()
        return jnp.sum(u.valid & u.converged)

    # tanh(w h) = h has one fixed point for w <= 1 and three for w > 1.
    np.testing.assert_array_equal(jax.vmap(count)(jnp.array([0.5, 2.0])), [1, 3])

    def positive_point(w):
        u = jd.fixed_points(tanh_map(), x0s, w).unique()
        return jnp.max(jnp.where(u.valid, u.x[:, 0], -jnp.inf))

    w = 2.0
    h = H_STAR
    # h = tanh(w h)  =>  dh/dw = h (1 − h²) / (1 − w (1 − h²)).
    exact = h * (1 - h**2) / (1 - w * (1 - h**2))
    assert float(jax.grad(positive_point)(w)) == pytest.approx(exact, rel=1e-8)


def test_unique_merges_by_error_or_by_a_given_distance():
    fps = jd.fixed_points(tanh_map(), jnp.linspace(-2.0, 2.0, 9)[:, None], jnp.asarray(2.0))
    assert int(fps.unique().valid.sum()) == 3
    assert bool(jnp.all(fps.error[fps.converged] < 1e-10))
    # Every start points at the representative of its point.
    reps = np.asarray(fps.point)
    np.testing.assert_allclose(np.asarray(fps.x)[reps], np.asarray(fps.x), atol=1e-12)
    # A distance larger than the gap between the points merges them all into the lowest-q one.
    assert int(fps.unique(3.0).valid.sum()) == 1
    for bad in (-1.0, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tol"):
            fps.unique(bad)
    with pytest.raises(ValueError, match="size"):
        fps.unique(size=0)


def test_nonfinite_jacobian_is_labelled_so():
    # f(x) = x·√|x| has a root at 0 where f is differentiable, but autodiff of √|x| gives NaN.
    f = jd.Flow(lambda t, x, a: x * jnp.sqrt(jnp.abs(x)) - 0.0)
    fps = jd.fixed_points(f, jnp.array([[0.0]]))
    assert bool(fps.converged[0])
    assert int(fps.stability[0]) == NONFINITE and int(fps.n_unstable[0]) == -1
    assert bool(jnp.all(jnp.isnan(fps.eigvals[0])))


@pytest.mark.parametrize("method", ["auto", "newton", "q", "lm", jd.Fallback(jd.Newton(),
                                                                             jd.NewtonQ())])
def test_methods_by_name_and_object(method):
    fps = jd.fixed_points(tanh_map(), jnp.linspace(-2.0, 2.0, 5)[:, None], jnp.asarray(2.0),
                          method=method)
    u = valid_sorted(fps.unique())
    np.testing.assert_allclose(u["x"][:, 0], [-H_STAR, 0.0, H_STAR], atol=1e-10)


def test_progress_meter_object():
    fps = jd.fixed_points(tanh_map(), jnp.linspace(-2.0, 2.0, 5)[:, None], jnp.asarray(2.0),
                          progress=jd.TqdmProgressMeter(desc="fp"), chunk_size=2)
    assert bool(jnp.all(fps.converged))
    with pytest.raises(ValueError, match="progress"):
        jd.fixed_points(tanh_map(), jnp.ones((2, 1)), 2.0, progress="yes")


@pytest.mark.slow
def test_committed_flipflop_network_has_eight_stable_points(trained_network):
    model, task = trained_network("flipflop")
    trial = task.sample(jax.random.PRNGKey(0), 64)
    x0s = jd.sample_states(jax.random.PRNGKey(1), model, inputs=trial.inputs, n=512, noise=0.1)
    u = jd.fixed_points(model, x0s, jnp.zeros(task.n_in)).unique()
    conv = u.valid & u.converged
    stable = conv & (u.stability == STABLE)
    assert int(stable.sum()) == 8
    signs = np.sign(np.asarray(jax.vmap(model.readout)(u.x[stable])))
    assert len({tuple(s) for s in signs}) == 8  # one memory per corner of the cube
    assert int((conv & (u.stability == SADDLE)).sum()) >= 1


@pytest.mark.slow
def test_committed_integrator_has_a_line_of_slow_points(trained_network):
    model, task = trained_network("integrator")
    trial = task.sample(jax.random.PRNGKey(0), 64)
    x0s = jd.sample_states(jax.random.PRNGKey(1), model, inputs=trial.inputs, n=256,
                           noise=0.02)
    u = jd.fixed_points(model, x0s, jnp.zeros(task.n_in)).unique()
    keep = np.asarray(u.valid)
    slow = np.asarray(u.slow)[keep]
    assert keep.sum() >= 5 and slow.sum() >= 3
    mult = np.abs(np.asarray(u.eigvals)[keep])
    # One multiplier at 1 (the direction along the line; exactly so at the slow points), the
    # others well inside the unit disc.
    assert np.all(np.abs(mult[slow, 0] - 1.0) < 0.01)
    assert np.all(np.abs(mult[:, 0] - 1.0) < 0.1)
    assert np.all(mult[:, 1] < 0.9)
    # The points spread along the line that holds the integral: across the output range, and
    # mostly along one direction.
    pts = np.asarray(u.x)[keep]
    assert np.ptp(np.asarray(jax.vmap(model.readout)(jnp.asarray(pts)))) > 2.0
    sv = np.linalg.svd(pts - pts.mean(0), compute_uv=False)
    assert sv[0] ** 2 / np.sum(sv**2) > 0.8
