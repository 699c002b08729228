"""Tests of the RNN zoo against NumPy references of the published equations, autodiff
Jacobians against finite differences, and jit / vmap / grad / simulate of every model."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn.rnn import CTRNN, GRU, LSTM, VanillaRNN, scaled_ctrnn

from .helpers import central_jacobian, tree_allclose

N_IN, N_H, N_OUT, T = 3, 8, 2, 12

MAKERS = {
    "ctrnn_tanh": lambda k: CTRNN(N_IN, N_H, N_OUT, key=k),
    "ctrnn_relu": lambda k: CTRNN(N_IN, N_H, N_OUT, key=k, nonlinearity="relu"),
    "ctrnn_voltage": lambda k: CTRNN(N_IN, N_H, N_OUT, key=k, form="voltage"),
    "scaled_ctrnn": lambda k: scaled_ctrnn(N_IN, N_H, N_OUT, key=k),
    "vanilla": lambda k: VanillaRNN(N_IN, N_H, N_OUT, key=k),
    "gru": lambda k: GRU(N_IN, N_H, N_OUT, key=k),
    "gru_cho": lambda k: GRU(N_IN, N_H, N_OUT, key=k, reset_after=False),
    "lstm": lambda k: LSTM(N_IN, N_H, N_OUT, key=k, forget_bias=1.0),
}
NAMES = list(MAKERS)


def _model(name, seed=0):
    return MAKERS[name](jr.PRNGKey(seed))


def _state(model, seed=1):
    return 0.5 * jr.normal(jr.PRNGKey(seed), (model.state_size,))


def _inputs(seed=2, T=T):
    return jr.normal(jr.PRNGKey(seed), (T, N_IN))


@eqx.filter_jit
def _run(model, x0, inputs):
    return model.run(x0, inputs)


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# ---------------------------------------------------------------------------------------------
# Equations against independent NumPy references


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_ctrnn_euler_with_dt_equal_tau_is_vanilla_rnn(nonlinearity):
    ct = CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), tau=10.0, dt=10.0, nonlinearity=nonlinearity)
    ct = eqx.tree_at(lambda m: m.b, ct, 0.1 * jr.normal(jr.PRNGKey(5), (N_H,)))
    van = VanillaRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(1), nonlinearity=nonlinearity)
    van = eqx.tree_at(lambda m: (m.W, m.B, m.b, m.W_out, m.b_out), van,
                      (ct.W, ct.B, ct.b, ct.W_out, ct.b_out))
    x, u = _state(ct), _inputs()[0]
    np.testing.assert_allclose(ct.step(x, u), van.step(x, u), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ct.as_map()(0.0, x, u), van(0.0, x, u), rtol=1e-13, atol=1e-14)
    assert tree_allclose(_run(ct, x, _inputs()), _run(van, x, _inputs()), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("form", ["rate", "voltage"])
def test_ctrnn_step_matches_numpy(form):
    m = CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), tau=50.0, dt=5.0, form=form)
    m = eqx.tree_at(lambda m: m.b, m, 0.1 * jr.normal(jr.PRNGKey(5), (N_H,)))
    x, u = _np(_state(m)), _np(_inputs()[0])
    W, B, b, a = _np(m.W), _np(m.B), _np(m.b), 5.0 / 50.0
    if form == "rate":
        want = x + a * (-x + np.tanh(W @ x + B @ u + b))
        rates = x
    else:
        want = x + a * (-x + W @ np.tanh(x) + B @ u + b)
        rates = np.tanh(x)
    np.testing.assert_allclose(m.step(jnp.asarray(x), jnp.asarray(u)), want, rtol=1e-13)
    np.testing.assert_allclose(m(0.0, jnp.asarray(x), jnp.asarray(u)), (want - x) / (a * 50.0),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m.readout(jnp.asarray(x)), _np(m.W_out) @ rates + _np(m.b_out),
                               rtol=1e-13)


def _gru_numpy(m, h, u, reset_after):
    H = m.n_hidden
    W_ih, W_hh, b_ih, b_hh = _np(m.W_ih), _np(m.W_hh), _np(m.b_ih), _np(m.b_hh)
    W_ir, W_iz, W_in = W_ih[:H], W_ih[H:2 * H], W_ih[2 * H:]
    W_hr, W_hz, W_hn = W_hh[:H], W_hh[H:2 * H], W_hh[2 * H:]
    b_ir, b_iz, b_in = b_ih[:H], b_ih[H:2 * H], b_ih[2 * H:]
    b_hr, b_hz, b_hn = b_hh[:H], b_hh[H:2 * H], b_hh[2 * H:]
    r = _sigmoid(W_ir @ u + b_ir + W_hr @ h + b_hr)
    z = _sigmoid(W_iz @ u + b_iz + W_hz @ h + b_hz)
    if reset_after:  # PyTorch / Keras reset_after=True
        n = np.tanh(W_in @ u + b_in + r * (W_hn @ h + b_hn))
    else:  # Cho et al. 2014
        n = np.tanh(W_in @ u + b_in + W_hn @ (r * h) + b_hn)
    return (1.0 - z) * n + z * h


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_step_matches_numpy(reset_after):
    m = GRU(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), reset_after=reset_after)
    h, u = _state(m), _inputs()[0]
    want = _gru_numpy(m, _np(h), _np(u), reset_after)
    np.testing.assert_allclose(m.step(h, u), want, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m(0.0, h, u), want, rtol=1e-13, atol=1e-15)
    # The two forms are different maps.
    other = GRU(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), reset_after=not reset_after)
    assert not np.allclose(other.step(h, u), want, atol=1e-6)


def test_lstm_step_matches_numpy():
    m = LSTM(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), forget_bias=1.0)
    x, u = _state(m), _inputs()[0]
    H = N_H
    h, c = _np(x[:H]), _np(x[H:])
    gates = _np(m.W_ih) @ _np(u) + _np(m.b_ih) + _np(m.W_hh) @ h + _np(m.b_hh)
    i, f = _sigmoid(gates[:H]), _sigmoid(gates[H:2 * H])
    g, o = np.tanh(gates[2 * H:3 * H]), _sigmoid(gates[3 * H:])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    np.testing.assert_allclose(m.step(x, u), np.concatenate([h_new, c_new]), rtol=1e-13,
                               atol=1e-15)
    np.testing.assert_allclose(m.readout(x), _np(m.W_out) @ h + _np(m.b_out), rtol=1e-13)
    # forget_bias shifts only the forget-gate block of b_ih.
    base = LSTM(N_IN, N_H, N_OUT, key=jr.PRNGKey(0))
    np.testing.assert_allclose(m.b_ih - base.b_ih,
                               np.concatenate([np.zeros(H), np.ones(H), np.zeros(2 * H)]))


def test_vanilla_step_matches_numpy():
    m = VanillaRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), nonlinearity="relu")
    h, u = _state(m), _inputs()[0]
    want = np.maximum(_np(m.W) @ _np(h) + _np(m.B) @ _np(u) + _np(m.b), 0.0)
    np.testing.assert_allclose(m.step(h, u), want, rtol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_run_matches_python_loop(name):
    m = _model(name)
    x0, inputs = _state(m), _inputs()
    states, outputs = _run(m, x0, inputs)
    assert states.shape == (T, m.state_size) and outputs.shape == (T, N_OUT)
    x, xs, ys = x0, [], []
    for u in inputs:
        x = m.step(x, u)
        xs.append(x)
        ys.append(m.readout(x))
    np.testing.assert_allclose(states, np.stack(xs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(outputs, np.stack(ys), rtol=1e-12, atol=1e-14)
    # x0=None starts from zeros.
    assert tree_allclose(m.run(None, inputs), _run(m, jnp.zeros(m.state_size), inputs))


# ---------------------------------------------------------------------------------------------
# Jacobians


@pytest.mark.parametrize("name", ["gru", "gru_cho", "lstm", "vanilla", "ctrnn_voltage"])
def test_jacobian_matches_finite_differences(name):
    m = _model(name)
    x, u = _state(m), _inputs()[0]
    J = jd.jacobian(m, x, u)
    J_fd = central_jacobian(lambda y: m(0.0, y, u), x)
    assert J.shape == (m.state_size, m.state_size)
    np.testing.assert_allclose(J, J_fd, atol=1e-6, rtol=0)
    Ju = jd.args_jacobian(m, x, u)
    Ju_fd = central_jacobian(lambda v: m(0.0, x, v), u)
    np.testing.assert_allclose(Ju, Ju_fd, atol=1e-6, rtol=0)


@pytest.mark.parametrize("form", ["rate", "voltage"])
def test_ctrnn_jacobian_analytic(form):
    m = CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), tau=20.0, form=form)
    x, u = _state(m), _inputs()[0]
    W, B, b = _np(m.W), _np(m.B), _np(m.b)
    if form == "rate":
        dphi = 1.0 - np.tanh(W @ _np(x) + B @ _np(u) + b) ** 2
        want = (-np.eye(N_H) + dphi[:, None] * W) / 20.0
    else:
        dphi = 1.0 - np.tanh(_np(x)) ** 2
        want = (-np.eye(N_H) + W * dphi[None, :]) / 20.0
    np.testing.assert_allclose(jd.jacobian(m, x, u), want, rtol=1e-12, atol=1e-15)
    # The Euler map's Jacobian is I + dt·J.
    np.testing.assert_allclose(jd.jacobian(m.as_map(), x, u), np.eye(N_H) + 20.0 * want,
                               rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# jit, vmap, grad, simulate for every model


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager(name):
    m = _model(name)
    x, u = _state(m), _inputs()[0]
    step = eqx.filter_jit(lambda m, x, u: m(0.0, x, u))
    np.testing.assert_allclose(step(m, x, u), m(0.0, x, u), rtol=1e-13, atol=1e-15)
    states, _ = m.run(x, _inputs())
    np.testing.assert_allclose(_run(m, x, _inputs())[0], states, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_states(name):
    m = _model(name)
    xs = 0.5 * jr.normal(jr.PRNGKey(3), (5, m.state_size))
    u = _inputs()[0]
    batched = jax.vmap(m, in_axes=(None, 0, None))(0.0, xs, u)
    np.testing.assert_allclose(batched, np.stack([m(0.0, x, u) for x in xs]), rtol=1e-13,
                               atol=1e-15)
    runs = jax.vmap(lambda x: m.run(x, _inputs()))(xs)
    for k in range(xs.shape[0]):
        single = _run(m, xs[k], _inputs())
        assert tree_allclose(jax.tree_util.tree_map(lambda a: a[k], runs), single)


@pytest.mark.parametrize("name", NAMES)
def test_filter_vmap_over_stacked_models(name):
    keys = jr.split(jr.PRNGKey(7), 3)
    stacked = eqx.filter_vmap(MAKERS[name])(keys)
    assert stacked.W_out.shape == (3, N_OUT, N_H)
    x0, inputs = _state(_model(name)), _inputs()
    runs = eqx.filter_vmap(lambda m: m.run(x0, inputs))(stacked)
    for k, key in enumerate(keys):
        single = MAKERS[name](key)
        assert tree_allclose(jax.tree_util.tree_map(lambda a: a[k], runs), _run(single, x0, inputs),
                             rtol=1e-12, atol=1e-13)
    J = eqx.filter_vmap(lambda m: jd.jacobian(m, x0, inputs[0]))(stacked)
    np.testing.assert_allclose(J[1], jd.jacobian(MAKERS[name](keys[1]), x0, inputs[0]),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_grad_wrt_parameters_is_finite(name):
    m = _model(name)
    x0, inputs = _state(m), _inputs()
    target = jnp.sin(jnp.arange(T * N_OUT, dtype=float)).reshape(T, N_OUT)

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(model):
        _, y = model.run(x0, inputs)
        return jnp.mean((y - target) ** 2)

    g = grad(m)
    leaves = jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_inexact_array))
    assert leaves and all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert float(jnp.abs(g.W_out).sum()) > 0
    recurrent = g.W if hasattr(g, "W") else g.W_hh
    assert float(jnp.abs(recurrent).sum()) > 0
    # A directional derivative against central differences.
    direction = jr.normal(jr.PRNGKey(9), recurrent.shape)
    where = (lambda mm: mm.W) if hasattr(m, "W") else (lambda mm: mm.W_hh)

    def loss_at(eps):
        mm = eqx.tree_at(where, m, where(m) + eps * direction)
        return jnp.mean((mm.run(x0, inputs)[1] - target) ** 2)

    fd = (loss_at(1e-6) - loss_at(-1e-6)) / 2e-6
    np.testing.assert_allclose(jnp.sum(recurrent * direction), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_simulate(name):
    m = _model(name)
    x0, u = _state(m), _inputs()[0]
    n_steps = 6
    states, _ = _run(m, x0, jnp.tile(u, (n_steps, 1)))
    if isinstance(m, CTRNN):
        assert not m.discrete
        # Forward Euler with the model's dt is exactly the model's own step.
        traj = jd.simulate(m, x0, u, n_steps * m.dt, dt=m.dt, solver="euler")
        np.testing.assert_allclose(traj.xs[1:], states, rtol=1e-12, atol=1e-14)
        if name == "ctrnn_tanh":
            # The adaptive solve of the ODE agrees with a fine fixed-step RK4 solve.
            t1 = 2.0 * m.tau
            adaptive = jd.simulate(m, x0, u, t1, rtol=1e-10, atol=1e-12)
            fine = jd.simulate(m, x0, u, t1, dt=t1 / 100, n_save=2)
            assert bool(adaptive.success)
            np.testing.assert_allclose(adaptive.xs[-1], fine.xs[-1], atol=1e-8)
        # The Euler map as a jd.Map.
        traj_map = jd.simulate(m.as_map(), x0, u, n_steps)
        np.testing.assert_allclose(traj_map.xs[1:], states, rtol=1e-12, atol=1e-14)
    else:
        assert m.discrete
        traj = jd.simulate(m, x0, u, n_steps)
        assert traj.xs.shape == (n_steps + 1, m.state_size)
        np.testing.assert_allclose(traj.xs[0], x0)
        np.testing.assert_allclose(traj.xs[1:], states, rtol=1e-12, atol=1e-14)
    assert bool(traj.success)


def test_simulate_vmaps_over_stacked_models():
    keys = jr.split(jr.PRNGKey(4), 3)
    stacked = eqx.filter_vmap(lambda k: CTRNN(N_IN, N_H, N_OUT, key=k))(keys)
    x0, u = _state(_model("ctrnn_tanh")), _inputs()[0]
    xs = eqx.filter_vmap(lambda m: jd.simulate(m, x0, u, 100.0, dt=20.0).xs)(stacked)
    single = jd.simulate(CTRNN(N_IN, N_H, N_OUT, key=keys[2]), x0, u, 100.0, dt=20.0).xs
    np.testing.assert_allclose(xs[2], single, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Initialisation


def test_scaled_ctrnn_weight_scale():
    g, n = 1.5, 400
    m = scaled_ctrnn(1, n, 1, key=jr.PRNGKey(0), g=g)
    assert m.nonlinearity == "tanh" and m.form == "rate"
    np.testing.assert_allclose(float(jnp.std(m.W)), g / np.sqrt(n), rtol=0.02)
    assert abs(float(jnp.mean(m.W))) < 5 * g / n


def test_orthogonal_init():
    g = 1.3
    for m in (scaled_ctrnn(N_IN, 16, N_OUT, key=jr.PRNGKey(0), g=g, init="orthogonal"),
              CTRNN(N_IN, 16, N_OUT, key=jr.PRNGKey(1), g=g)):
        np.testing.assert_allclose(m.W.T @ m.W, g**2 * np.eye(16), atol=1e-12)
    m = GRU(N_IN, 16, N_OUT, key=jr.PRNGKey(2), init="orthogonal")
    for k in range(3):
        block = m.W_hh[16 * k:16 * (k + 1)]
        np.testing.assert_allclose(block.T @ block, np.eye(16), atol=1e-12)


def test_identity_init():
    m = VanillaRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), init="identity", g=0.9)
    np.testing.assert_allclose(m.W, 0.9 * np.eye(N_H))


def test_default_dtype_is_float64_under_x64():
    for name in NAMES:
        m = _model(name)
        for leaf in jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_inexact_array)):
            assert leaf.dtype == jnp.float64, name


# ---------------------------------------------------------------------------------------------
# Noise


@pytest.mark.parametrize("name", ["ctrnn_tanh", "gru", "lstm"])
def test_noise(name):
    m = _model(name)
    x0, inputs = _state(m), _inputs()
    clean = m.run(x0, inputs)
    noisy = m.run(x0, inputs, key=jr.PRNGKey(0), noise_std=0.1)
    assert not np.allclose(noisy[0], clean[0])
    assert tree_allclose(m.run(x0, inputs, key=jr.PRNGKey(0), noise_std=0.0), clean,
                         rtol=0, atol=0)
    # Reproducible from the key, different across keys.
    assert tree_allclose(m.run(x0, inputs, key=jr.PRNGKey(0), noise_std=0.1), noisy)
    assert not np.allclose(m.run(x0, inputs, key=jr.PRNGKey(1), noise_std=0.1)[0], noisy[0])


def test_noise_scale():
    m = CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), tau=100.0, dt=20.0)
    np.testing.assert_allclose(m.noise_scale, np.sqrt(2 * 0.2))
    # The first noisy state differs from the clean one by noise_scale·noise_std·ξ.
    x0, inputs = _state(m), _inputs()
    key = jr.PRNGKey(3)
    xi = jr.normal(key, (T, N_H))
    noisy = m.run(x0, inputs, key=key, noise_std=0.5)[0]
    np.testing.assert_allclose(noisy[0] - m.step(x0, inputs[0]), np.sqrt(0.4) * 0.5 * xi[0],
                               rtol=1e-12, atol=1e-14)
    assert float(_model("gru").noise_scale) == 1.0


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("cls", [CTRNN, VanillaRNN, GRU, LSTM])
def test_bad_sizes(cls):
    with pytest.raises(ValueError, match="n_hidden"):
        cls(N_IN, 0, N_OUT, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="n_in"):
        cls(-1, N_H, N_OUT, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="n_out"):
        cls(N_IN, N_H, 2.5, key=jr.PRNGKey(0))


@pytest.mark.parametrize("cls", [CTRNN, VanillaRNN, GRU, LSTM])
def test_unknown_init(cls):
    with pytest.raises(ValueError, match="init"):
        cls(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), init="xavier")


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_ctrnn_bad_time_constants(bad):
    with pytest.raises(ValueError, match="tau"):
        CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), tau=bad)
    with pytest.raises(ValueError, match="dt"):
        CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), dt=bad)


def test_bad_options():
    with pytest.raises(ValueError, match="nonlinearity"):
        CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), nonlinearity="sin")
    with pytest.raises(ValueError, match="nonlinearity"):
        VanillaRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), nonlinearity="sin")
    with pytest.raises(ValueError, match="form"):
        CTRNN(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), form="current")
    with pytest.raises(ValueError, match="g"):
        scaled_ctrnn(N_IN, N_H, N_OUT, key=jr.PRNGKey(0), g=0.0)


@pytest.mark.parametrize("name", ["ctrnn_tanh", "vanilla", "lstm"])
def test_run_bad_shapes(name):
    m = _model(name)
    x0 = _state(m)
    with pytest.raises(ValueError, match="inputs"):
        m.run(x0, jnp.zeros((T, N_IN + 1)))
    with pytest.raises(ValueError, match="inputs"):
        m.run(x0, jnp.zeros(N_IN))
    with pytest.raises(ValueError, match="x0"):
        m.run(jnp.zeros(m.state_size + 1), _inputs())
    with pytest.raises(ValueError, match="x0"):
        m.run(jnp.zeros((1, m.state_size)), _inputs())


@pytest.mark.parametrize("name", ["ctrnn_tanh", "gru", "lstm"])
def test_simulate_errors(name):
    m = _model(name)
    x0, u = _state(m), _inputs()[0]
    with pytest.raises(ValueError, match="x0"):
        jd.simulate(m, jnp.zeros(m.state_size + 1), u, 5.0)
    with pytest.raises(ValueError, match="x0"):
        jd.simulate(m, jnp.zeros((2, m.state_size)), u, 5.0)
    with pytest.raises(ValueError, match="args"):
        jd.simulate(m, x0, jnp.zeros(2), 5.0)
    with pytest.raises(ValueError, match="x0"):
        jd.simulate(m, x0.at[0].set(jnp.nan), u, 5.0)
    with pytest.raises(ValueError, match="t1"):
        jd.simulate(m, x0, u, 0.0)
    with pytest.raises(ValueError, match="t1"):
        jd.simulate(m, x0, u, 3.0, t0=5.0)
    with pytest.raises(ValueError, match="dt"):
        jd.simulate(m, x0, u, 5.0, dt=0.0)
    with pytest.raises(ValueError, match="dt"):
        jd.simulate(m, x0, u, 5.0, dt=-1.0)
