"""The system contract: Flow, Map, plain callables, Jacobians and stability conventions."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxdyn as jd


def linear(t, x, a):
    return a @ x


def test_plain_callable_is_a_flow_and_systems_pass_through():
    flow = jd.Flow(linear)
    assert not flow.discrete and jd.Map(linear).discrete
    from jaxdyn._system import as_system, is_discrete

    assert isinstance(as_system(linear), jd.Flow) and as_system(flow) is flow
    assert not is_discrete(linear) and is_discrete(jd.Map(linear))
    model = jd.rnn.GRU(2, 3, 1, key=jr.PRNGKey(0))
    assert as_system(model) is model and is_discrete(model)
    with pytest.raises(ValueError, match="system"):
        as_system("lorenz")


def test_residual_is_f_for_flows_and_F_minus_x_for_maps():
    A = jnp.array([[0.5, 1.0], [0.0, -2.0]])
    x = jnp.array([1.0, 2.0])
    np.testing.assert_allclose(jd.residual(linear, x, A), A @ x)
    np.testing.assert_allclose(jd.residual(jd.Map(linear), x, A), A @ x - x)


def test_jacobians_of_a_linear_system_are_its_matrices():
    A = jnp.array([[0.5, 1.0], [0.0, -2.0]])
    x = jnp.array([1.0, 2.0])
    np.testing.assert_allclose(jd.jacobian(linear, x, A), A)
    np.testing.assert_allclose(jd.jacobian(jd.Map(linear), x, A), A)  # of F, not F - x
    dA = jd.args_jacobian(linear, x, A)  # d(Ax)_i / dA_jk = delta_ij x_k
    assert dA.shape == (2, 2, 2)
    np.testing.assert_allclose(dA[0, 0], x)
    np.testing.assert_allclose(dA[0, 1], 0.0)
    tree = jd.args_jacobian(lambda t, y, p: p["a"] * y + p["b"], x,
                            {"a": jnp.asarray(2.0), "b": jnp.ones(2)})
    np.testing.assert_allclose(tree["a"], x)
    np.testing.assert_allclose(tree["b"], jnp.eye(2))


def test_stability_in_each_systems_own_sense():
    eig = jnp.array([-0.5 + 1j, 0.5, -2.0])
    flow, map_ = jd.Flow(linear), jd.Map(linear)
    assert int(jd.n_unstable(flow, eig)) == 1 and not bool(jd.is_stable(flow, eig))
    assert int(jd.n_unstable(map_, eig)) == 2  # |-0.5+1j| > 1 and |-2| > 1
    np.testing.assert_allclose(jd.growth_rates(flow, eig), [-0.5, 0.5, -2.0])
    np.testing.assert_allclose(jd.growth_rates(map_, eig), np.log(np.abs(np.asarray(eig))))
    assert bool(jd.is_stable(map_, jnp.array([0.9, -0.5j])))
    assert not bool(jd.is_stable(flow, jnp.array([0.0, -1.0])))  # marginal is not stable


@pytest.mark.parametrize("discrete", [False, True])
def test_nonfinite_eigenvalues_are_never_counted_stable(discrete):
    system = jd.Map(linear) if discrete else jd.Flow(linear)
    # The eigenvalues of an all-NaN Jacobian (what LAPACK returns) and of a Jacobian with one
    # NaN entry: stable directions would have been counted, 0 unstable, before.
    all_nan = jnp.linalg.eigvals(jnp.full((3, 3), jnp.nan))
    assert bool(jnp.all(jnp.isnan(all_nan)))
    assert int(jd.n_unstable(system, all_nan)) == -1
    assert not bool(jd.is_stable(system, all_nan))
    one = jnp.array([-0.1 + 0.2j, jnp.nan + 0j, -0.3 + 0j])  # the others stable (both)
    assert int(jd.n_unstable(system, one)) == -1 and not bool(jd.is_stable(system, one))
    assert int(jd.n_unstable(system, one, tol=10.0)) == -1
    # An infinite eigenvalue: Re λ = −inf would pass `Re λ < 0`.
    inf = jnp.array([-jnp.inf + 0j, -0.5 + 0j])
    assert int(jd.n_unstable(system, inf)) == -1 and not bool(jd.is_stable(system, inf))
    # Row by row over a stack, under jit.
    stack = jnp.stack([jnp.array([0.1 + 0j, -0.2 + 0j, 0.3 + 0j]), one, all_nan])
    counts = jax.jit(lambda e: jd.n_unstable(system, e))(stack)
    assert counts.tolist() == [0 if discrete else 2, -1, -1]
    assert jax.jit(lambda e: jd.is_stable(system, e))(stack).tolist() == [discrete, False,
                                                                          False]


def test_jacobian_under_jit_vmap_and_grad():
    model = jd.rnn.CTRNN(2, 5, 1, key=jr.PRNGKey(1))
    xs = jr.normal(jr.PRNGKey(2), (4, 5))
    u = jnp.ones(2)
    batched = jax.jit(jax.vmap(lambda x: jd.jacobian(model, x, u)))(xs)
    for i in range(4):
        np.testing.assert_allclose(batched[i], jd.jacobian(model, xs[i], u), rtol=1e-12)

    def spectral_abscissa(m):
        return jnp.max(jnp.linalg.eigvals(jd.jacobian(m, xs[0], u)).real)

    grads = eqx.filter_grad(spectral_abscissa)(model)
    assert all(np.all(np.isfinite(np.asarray(g)))
               for g in jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array)))


def test_piecewise_constant_input_validation_and_lookup():
    u = jd.PiecewiseConstant(jnp.arange(3.0)[:, None], dt=2.0, t0=1.0)
    np.testing.assert_allclose([float(u(t)[0]) for t in (0.0, 1.0, 2.9, 3.0, 5.0, 9.0)],
                               [0, 0, 0, 1, 2, 2])
    with pytest.raises(ValueError, match="dt"):
        jd.PiecewiseConstant(jnp.ones((3, 1)), dt=0.0)
    with pytest.raises(ValueError, match="values"):
        jd.PiecewiseConstant(jnp.ones((0, 1)), dt=1.0)


def test_jacobian_checks_its_state():
    f = jd.Flow(lambda t, x, a: jnp.stack([x[0] * x[1], x[1] ** 2, x[2]]))
    with pytest.raises(ValueError, match="`x` must be a 1-D state"):
        jd.jacobian(f, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="`x` must be finite"):
        jd.jacobian(f, jnp.array([1.0, jnp.nan, 0.0]))
    # Integers are states too: they are taken as floats.
    np.testing.assert_array_equal(jd.jacobian(f, jnp.array([1, 2, 3])),
                                  jd.jacobian(f, jnp.array([1.0, 2.0, 3.0])))
    sized = jd.Flow(lambda t, x, a: -x, state_size=3)
    with pytest.raises(ValueError, match="state has size 3"):
        jd.jacobian(sized, jnp.ones(4))
    with pytest.raises(ValueError, match="state_size"):
        jd.Flow(lambda t, x, a: -x, state_size=0)


@pytest.mark.parametrize("name", ["ctrnn_rate", "ctrnn_voltage_relu", "vanilla_softplus",
                                  "gru", "gru_reset_before", "lstm"])
def test_closed_form_rnn_jacobians_equal_autodiff(name):
    k = jax.random.PRNGKey(0)
    model = {
        "ctrnn_rate": lambda: jd.rnn.CTRNN(3, 7, 2, key=k),
        "ctrnn_voltage_relu": lambda: jd.rnn.CTRNN(3, 7, 2, key=k, form="voltage",
                                                   nonlinearity="relu"),
        "vanilla_softplus": lambda: jd.rnn.VanillaRNN(3, 7, 2, key=k, nonlinearity="softplus"),
        "gru": lambda: jd.rnn.GRU(3, 7, 2, key=k),
        "gru_reset_before": lambda: jd.rnn.GRU(3, 7, 2, key=k, reset_after=False),
        "lstm": lambda: jd.rnn.LSTM(3, 7, 2, key=k),
    }[name]()
    x = jax.random.normal(jax.random.PRNGKey(1), (model.state_size,))
    u = jax.random.normal(jax.random.PRNGKey(2), (3,))
    auto = jax.jacfwd(lambda y: model(0.0, y, u))(x)
    np.testing.assert_allclose(jd.jacobian(model, x, u), auto, rtol=1e-12, atol=1e-14)
