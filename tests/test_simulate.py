import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxdyn as jd

from .helpers import central_jacobian


def lorenz_fn(t, x, args):
    sigma, rho, beta = 10.0, 28.0 if args is None else args, 8.0 / 3.0
    return jnp.stack([sigma * (x[1] - x[0]), x[0] * (rho - x[2]) - x[1], x[0] * x[1] - beta * x[2]])


LORENZ = jd.Flow(lorenz_fn)


def test_lorenz_matches_scipy_dop853():
    scipy_integrate = pytest.importorskip("scipy.integrate")
    ref = scipy_integrate.solve_ivp(lambda t, x: np.asarray(lorenz_fn(t, x, None)), (0.0, 1.0),
                                    [1.0, 1.0, 1.0], method="DOP853", rtol=1e-12, atol=1e-12)
    traj = jd.simulate(LORENZ, jnp.ones(3), None, 1.0, ts=jnp.array([0.0, 1.0]),
                       solver="dopri8", rtol=1e-12, atol=1e-12)
    assert bool(traj.success)
    np.testing.assert_allclose(np.asarray(traj.xs[-1]), ref.y[:, -1], rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.asarray(traj.xs[0]), np.ones(3))


def test_fixed_step_rk4_converges_at_fourth_order():
    exact = jd.simulate(LORENZ, jnp.ones(3), None, 0.5, ts=jnp.array([0.5]), solver="dopri8",
                        rtol=1e-13, atol=1e-13).xs[-1]
    errs = [float(jnp.linalg.norm(jd.simulate(LORENZ, jnp.ones(3), None, 0.5, dt=dt).xs[-1]
                                  - exact)) for dt in (1e-2, 5e-3)]
    assert 14.0 < errs[0] / errs[1] < 18.0  # 2**4 = 16


def test_default_saveat_and_fixed_step_grid():
    traj = jd.simulate(LORENZ, jnp.ones(3), None, 2.0)
    assert traj.xs.shape == (101, 3) and np.isclose(float(traj.ts[-1]), 2.0)
    traj = jd.simulate(LORENZ, jnp.ones(3), None, 1.0, dt=0.01)
    assert traj.xs.shape == (101, 3)
    np.testing.assert_allclose(np.asarray(traj.ts), np.linspace(0, 1, 101), atol=1e-12)


def test_map_iterates_with_scan():
    logistic = jd.Map(lambda k, x, r: r * x * (1 - x))
    traj = jd.simulate(logistic, jnp.array([0.2]), 3.7, 50)
    x, ref = 0.2, [0.2]
    for _ in range(50):
        x = 3.7 * x * (1 - x)
        ref.append(x)
    np.testing.assert_allclose(np.asarray(traj.xs[:, 0]), ref, rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(traj.ts), np.arange(51))


def test_vmap_over_x0_and_args_equals_loop():
    x0s = jnp.array([[1.0, 1.0, 1.0], [0.5, -1.0, 20.0], [-3.0, 2.0, 10.0]])
    rhos = jnp.array([10.0, 28.0, 35.0])
    run = jax.jit(jax.vmap(lambda x0, rho: jd.simulate(LORENZ, x0, rho, 1.0, dt=1e-2).xs))
    batched = run(x0s, rhos)
    for i in range(3):
        single = jd.simulate(LORENZ, x0s[i], rhos[i], 1.0, dt=1e-2).xs
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(single), rtol=1e-12)


@pytest.mark.parametrize("path", [dict(dt=0.1), dict(), dict(dt=0.1, ts=jnp.linspace(0, 1, 5)),
                                  dict(map=True)])
def test_no_recompile_for_new_values(path):
    """New values of x0, args and t1 reuse the compiled program: the vector field is traced
    once for the pre-tracing shape check and once per compilation, whatever the values."""
    traces = []

    def f(t, x, rho):
        traces.append(1)
        return jnp.stack([10.0 * (x[1] - x[0]), x[0] * (rho - x[2]) - x[1],
                          x[0] * x[1] - 8.0 / 3.0 * x[2]])

    path = dict(path)
    system = jd.Map(lambda k, x, r: x + 1e-3 * f(k, x, r)) if path.pop("map", False) \
        else jd.Flow(f)
    t1 = 20 if system.discrete else 1.0
    jd.simulate(system, jnp.ones(3), 28.0, t1, **path)
    first = len(traces)
    for k, rho in enumerate((20.0, 35.0, 1.5)):
        jd.simulate(system, (2.0 + k) * jnp.ones(3), rho, t1, **path)
        # Only the pre-tracing shape check evaluates f again: one trace per call.
        assert len(traces) - first == k + 1


def test_fixed_step_that_does_not_divide_the_span_ends_at_t1():
    decay = jd.Flow(lambda t, x, a: -x)
    traj = jd.simulate(decay, jnp.ones(1), None, 1.0, dt=0.3)
    np.testing.assert_allclose(np.asarray(traj.ts), [0.0, 0.3, 0.6, 0.9, 1.0], atol=1e-12)
    # RK4 with a last step of 0.1: the exact e^{-1} to the method's accuracy.
    assert abs(float(traj.xs[-1, 0]) - np.exp(-1.0)) < 1e-4
    assert bool(traj.success) and int(traj.result._value) == 0


def test_nonfinite_states_are_a_status_on_every_path():
    blowup = jd.Flow(lambda t, x, a: x**2)
    for kwargs in (dict(dt=0.01), dict(dt=0.01, ts=jnp.linspace(0.0, 2.0, 5))):
        traj = jd.simulate(blowup, jnp.ones(1), None, 2.0, **kwargs)
        assert not bool(traj.success)
        assert int(traj.result._value) == jd.RESULTS.nonfinite_state._value
    growth = jd.Map(lambda k, x, a: x * x + 1.0)
    traj = jd.simulate(growth, jnp.array([2.0]), None, 30)
    assert int(traj.result._value) == jd.RESULTS.nonfinite_state._value


def test_traced_backwards_span_is_a_status_not_an_integration():
    decay = jd.Flow(lambda t, x, a: -x)
    traj = jax.jit(lambda t1: jd.simulate(decay, jnp.ones(1), None, t1))(-1.0)
    assert not bool(traj.success)
    assert int(traj.result._value) == jd.RESULTS.invalid_time_span._value
    assert bool(jnp.all(jnp.isnan(traj.xs)))
    ok = jax.jit(lambda t1: jd.simulate(decay, jnp.ones(1), None, t1))(1.0)
    assert bool(ok.success) and abs(float(ok.xs[-1, 0]) - np.exp(-1.0)) < 1e-6


def test_grad_through_simulate_matches_finite_differences():
    def final(x0):
        return jd.simulate(LORENZ, x0, None, 0.3, ts=jnp.array([0.3]), rtol=1e-12,
                           atol=1e-12).xs[-1]

    x0 = jnp.array([1.0, 1.0, 1.0])
    auto = jax.jacrev(final)(x0)
    fd = central_jacobian(final, x0, eps=1e-5)
    np.testing.assert_allclose(np.asarray(auto), np.asarray(fd), rtol=1e-5, atol=1e-6)


def test_piecewise_constant_euler_equals_rnn_run():
    model = jd.rnn.CTRNN(2, 6, 1, key=jr.PRNGKey(0), tau=50.0, dt=10.0)
    inputs = jr.normal(jr.PRNGKey(1), (12, 2))
    states, _ = model.run(None, inputs)
    traj = jd.simulate(model, jnp.zeros(6), jd.PiecewiseConstant(inputs, dt=10.0), 120.0,
                       dt=10.0, solver="euler")
    np.testing.assert_allclose(np.asarray(traj.xs[1:]), np.asarray(states), rtol=1e-10,
                               atol=1e-12)


def test_args_as_function_of_time():
    decay = jd.Flow(lambda t, x, a: -x + a)
    traj = jd.simulate(decay, jnp.zeros(1), lambda t: jnp.array([jnp.sin(t)]), 5.0,
                       rtol=1e-10, atol=1e-10)
    t = np.asarray(traj.ts)
    exact = 0.5 * (np.sin(t) - np.cos(t) + np.exp(-t))
    np.testing.assert_allclose(np.asarray(traj.xs[:, 0]), exact, atol=1e-8)


def test_piecewise_adaptive_respects_jumps():
    decay = jd.Flow(lambda t, x, a: a - x)
    u = jd.PiecewiseConstant(jnp.array([[1.0], [0.0]]), dt=1.0)
    traj = jd.simulate(decay, jnp.zeros(1), u, 2.0, ts=jnp.array([1.0, 2.0]), rtol=1e-10,
                       atol=1e-12)
    x1 = 1 - np.exp(-1.0)
    np.testing.assert_allclose(np.asarray(traj.xs[:, 0]), [x1, x1 * np.exp(-1.0)], atol=1e-8)


def test_failure_is_a_status_not_an_exception():
    blowup = jd.Flow(lambda t, x, a: x**2)
    traj = jax.jit(lambda x0: jd.simulate(blowup, x0, None, 2.0, max_steps=50))(jnp.ones(1))
    assert not bool(traj.success)
    assert int(traj.result._value) != jd.RESULTS.successful._value


def test_stacked_models_simulate():
    keys = jr.split(jr.PRNGKey(0), 3)
    models = eqx.filter_vmap(lambda k: jd.rnn.VanillaRNN(1, 4, 1, key=k))(keys)
    xs = eqx.filter_vmap(lambda m: jd.simulate(m, jnp.ones(4), jnp.zeros(1), 5).xs)(models)
    assert xs.shape == (3, 6, 4)


def test_plot_returns_axes():
    traj = jd.simulate(LORENZ, jnp.ones(3), None, 1.0)
    assert traj.plot() is not None
    assert traj.plot(dims=(2,)) is not None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x0=jnp.ones(2)), "x0"),
        (dict(x0=jnp.ones((2, 3))), "x0"),
        (dict(x0=jnp.array([1.0, jnp.nan, 1.0])), "x0.*finite"),
        (dict(t1=0.0), "t1"),
        (dict(t1=-1.0), "t1"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-0.1), "dt"),
        (dict(dt=float("inf")), "dt"),
        (dict(dt=float("nan")), "dt"),
        (dict(rtol=-1e-6), "rtol"),
        (dict(atol=-1e-8), "atol"),
        (dict(rtol=0.0, atol=0.0), "rtol"),
        (dict(t1=float("inf")), "t1"),
        (dict(solver="rk45"), "solver"),
        (dict(t1=None), "t1"),
    ],
)
def test_bad_input_raises(kwargs, match):
    call = dict(x0=jnp.ones(3), t1=1.0)
    call.update(kwargs)
    x0, t1 = call.pop("x0"), call.pop("t1")
    with pytest.raises(ValueError, match=match):
        jd.simulate(LORENZ, x0, None, t1, **call)


def test_bad_args_for_rnn_names_args():
    model = jd.rnn.VanillaRNN(3, 5, 1, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="args"):
        jd.simulate(model, jnp.zeros(5), jnp.zeros(2), 10)
    with pytest.raises(ValueError, match="x0"):
        jd.simulate(model, jnp.zeros(4), jnp.zeros(3), 10)


def test_not_a_system():
    with pytest.raises(ValueError, match="system"):
        jd.simulate(3.0, jnp.ones(3), None, 1.0)


@pytest.mark.parametrize("solver", ["rk4", "tsit5", "euler", "heun"])
def test_fixed_step_scan_equals_diffrax_on_the_grid(solver):
    grid = jnp.linspace(0.0, 0.5, 51)
    fast = jd.simulate(LORENZ, jnp.ones(3), None, 0.5, dt=0.01, solver=solver)
    via_diffrax = jd.simulate(LORENZ, jnp.ones(3), None, 0.5, dt=0.01, solver=solver, ts=grid)
    np.testing.assert_allclose(np.asarray(fast.xs), np.asarray(via_diffrax.xs), rtol=1e-10,
                               atol=1e-10)
    strided = jd.simulate(LORENZ, jnp.ones(3), None, 0.5, dt=0.01, solver=solver, n_save=6)
    np.testing.assert_allclose(np.asarray(strided.xs), np.asarray(fast.xs[::10]), rtol=1e-12)


def test_fixed_step_n_save_must_divide_steps():
    with pytest.raises(ValueError, match="n_save"):
        jd.simulate(LORENZ, jnp.ones(3), None, 1.0, dt=0.01, n_save=7)
