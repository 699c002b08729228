"""Training: the loss against a hand computation, traced hyperparameters, stacks of networks,
divergence, and errors. (Accuracy of the recipes: tests/test_recipes.py.)"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import jaxdyn as jd
from jaxdyn.tasks import FlipFlop, Integrator, PerceptualDecisionMaking

TINY = dict(batch_size=8, learning_rate=1e-2, progress=False)


def tiny_models(keys, task=None, n_hidden=8):
    task = FlipFlop() if task is None else task
    return eqx.filter_vmap(lambda k: jd.rnn.GRU(task.n_in, n_hidden, task.n_out, key=k))(keys)


def leaves(tree):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


# -- the loss against a hand computation ------------------------------------------------------

def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def hand_loss(model, trial, noise, *, activity_reg, weight_reg, decision_weight):
    """The training loss of a GRU on a choice task, written out in NumPy: the GRU recursion
    with the noise added to each update, the readout, the weighted cross-entropy and the two
    penalties."""
    W_ih, W_hh = np.asarray(model.W_ih), np.asarray(model.W_hh)
    b_ih, b_hh = np.asarray(model.b_ih), np.asarray(model.b_hh)
    W_out, b_out = np.asarray(model.W_out), np.asarray(model.b_out)
    u = np.asarray(trial.inputs)
    B, T, _ = u.shape
    H = model.n_hidden
    h = np.zeros((B, H))
    states, outs = [], []
    for t in range(T):
        gi = u[:, t] @ W_ih.T + b_ih
        gh = h @ W_hh.T + b_hh
        r = _sigmoid(gi[:, :H] + gh[:, :H])
        z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h + noise[:, t]
        states.append(h)
        outs.append(h @ W_out.T + b_out)
    logits = np.stack(outs, axis=1)
    logp = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    labels = np.asarray(trial.labels)
    ce = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    w = np.asarray(trial.mask) * np.where(np.asarray(trial.decision), decision_weight, 1.0)
    loss = np.sum(w * ce) / np.sum(w)
    return (loss + activity_reg * np.mean(np.stack(states, 1) ** 2)
            + weight_reg * np.sum(W_hh**2))


def first_step_data(task, key, batch_size, hidden, noise_std):
    """The trial and the (scaled) noise of step 0, drawn as `train` draws them."""
    trial = task.sample(jr.fold_in(key, 0), batch_size)
    keys = jr.split(jr.fold_in(key, jnp.asarray(-1)), batch_size)
    noise = np.stack([np.asarray(jr.normal(k, (task.n_steps, hidden), jnp.float64))
                      for k in keys]) * noise_std
    return trial, noise


def test_loss_and_sgd_step_match_a_hand_computation():
    task = PerceptualDecisionMaking(dt=200.0, timing={"fixation": 200, "stimulus": 600,
                                                      "decision": 200})
    model = jd.rnn.GRU(task.n_in, 6, task.n_out, key=jr.PRNGKey(0))
    opts = dict(activity_reg=0.3, weight_reg=0.02, decision_weight=4.0)
    key, lr, noise_std = jr.PRNGKey(5), 0.1, 0.2
    trained, hist = jd.train(model, task, key, steps=1, batch_size=5, progress=False,
                             optimizer=optax.sgd(lr), noise_std=noise_std, **opts)
    trial, noise = first_step_data(task, key, 5, 6, noise_std)
    loss0 = hand_loss(model, trial, noise, **opts)
    assert float(hist.loss[0]) == pytest.approx(loss0, rel=1e-12)
    # The SGD step moved each weight by −lr times the derivative of the hand loss.
    for field, idx in (("W_hh", (3, 2)), ("W_out", (1, 4)), ("b_ih", (7,))):
        eps = 1e-6
        bump = lambda d: eqx.tree_at(lambda m: getattr(m, field), model,
                                     getattr(model, field).at[idx].add(d))
        fd = (hand_loss(bump(eps), trial, noise, **opts)
              - hand_loss(bump(-eps), trial, noise, **opts)) / (2 * eps)
        step = float(getattr(trained, field)[idx] - getattr(model, field)[idx])
        assert step == pytest.approx(-lr * fd, rel=1e-6, abs=1e-12)


def test_filter_spec_keeps_frozen_leaves_bit_equal():
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(0))
    spec = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    spec = eqx.tree_at(lambda m: (m.W_out, m.b_out), spec, (False, False))
    trained, _ = jd.train(model, task, jr.PRNGKey(1), steps=5, filter_spec=spec, **TINY)
    np.testing.assert_array_equal(np.asarray(trained.W_out), np.asarray(model.W_out))
    np.testing.assert_array_equal(np.asarray(trained.b_out), np.asarray(model.b_out))
    assert not np.array_equal(np.asarray(trained.W_hh), np.asarray(model.W_hh))
    # A CTRNN's time constants are fixed by default.
    ct = jd.rnn.CTRNN(task.n_in, 8, task.n_out, key=jr.PRNGKey(0), dt=task.dt, tau=5 * task.dt)
    ct2, _ = jd.train(ct, task, jr.PRNGKey(1), steps=3, **TINY)
    assert float(ct2.tau) == float(ct.tau) and float(ct2.dt) == float(ct.dt)
    assert not np.array_equal(np.asarray(ct2.W), np.asarray(ct.W))


# -- traced hyperparameters and stacks ---------------------------------------------------------

class CountingIntegrator(jd.tasks.AbstractRegressionTask):
    """The Integrator task, counting how often `sample` is traced (once per compilation)."""

    inner: Integrator
    counter: dict = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple = eqx.field(static=True)
    output_names: tuple = eqx.field(static=True)

    def __init__(self, inner, counter):
        self.inner, self.counter = inner, counter
        self.dt, self.n_steps = inner.dt, inner.n_steps
        self.input_names, self.output_names = inner.input_names, inner.output_names

    def sample(self, key, batch_size):
        self.counter["traces"] = self.counter.get("traces", 0) + 1
        return self.inner.sample(key, batch_size)

    def __hash__(self):
        return 0

    def __eq__(self, other):
        return isinstance(other, CountingIntegrator)


def test_stack_with_one_value_per_network_equals_separate_runs_without_retracing():
    counter = {}
    task = CountingIntegrator(Integrator(), counter)
    keys = jr.split(jr.PRNGKey(3), 4)
    train_keys = jr.split(jr.PRNGKey(4), 4)
    noise = jnp.array([0.0, 0.05, 0.1, 0.2])
    act = jnp.array([0.0, 1e-3, 1e-2, 1e-1])
    dw = jnp.array([1.0, 2.0, 0.5, 1.0])
    stack = tiny_models(keys, task)
    kw = dict(steps=6, log_every=3, batch_size=4, progress=False)
    stacked, hist = jd.train(stack, task, train_keys, noise_std=noise, activity_reg=act,
                             weight_reg=1e-3, decision_weight=dw, **kw)
    traces = counter["traces"]
    for i in range(4):
        single = jd.rnn.GRU(task.n_in, 8, task.n_out, key=keys[i])
        trained, h = jd.train(single, task, train_keys[i], noise_std=float(noise[i]),
                              activity_reg=float(act[i]), weight_reg=1e-3,
                              decision_weight=float(dw[i]), **kw)
        np.testing.assert_allclose(np.asarray(h.loss), np.asarray(hist.loss[i]), rtol=1e-10)
        for a, b in zip(leaves(trained), leaves(stacked)):
            np.testing.assert_allclose(a, b[i], rtol=1e-9, atol=1e-12)
    # The single runs compiled one program (the unbatched one) and no other.
    assert counter["traces"] == traces + 1
    # New values for every hyperparameter: no new trace.
    jd.train(stack, task, train_keys, noise_std=0.3, activity_reg=0.5, weight_reg=0.1,
             decision_weight=3.0, learning_rate=jnp.linspace(1e-3, 1e-2, 4), grad_clip=None,
             **kw)
    assert counter["traces"] == traces + 1


def test_a_diverging_network_is_frozen_while_the_others_train():
    task = Integrator()
    keys = jr.split(jr.PRNGKey(0), 3)
    stack = eqx.filter_vmap(lambda k: jd.rnn.VanillaRNN(task.n_in, 8, task.n_out, key=k,
                                                        nonlinearity="relu"))(keys)
    bad = stack.W.at[1].set(1e3 * jnp.eye(8))  # network 1 overflows within a trial
    stack = eqx.tree_at(lambda m: m.W, stack, bad)
    kw = dict(steps=8, log_every=4, batch_size=4, grad_clip=None, progress=False)
    trained, hist = jd.train(stack, task, keys, **kw)
    assert hist.diverged_at.tolist() == [-1, 0, -1]
    assert [int(v) for v in hist.result._value] == [RESULTS_OK, RESULTS_DIVERGED, RESULTS_OK]
    assert np.all(np.isnan(np.asarray(hist.loss[1])))
    np.testing.assert_array_equal(np.asarray(trained.W[1]), np.asarray(stack.W[1]))
    for i in (0, 2):
        single = jax.tree_util.tree_map(lambda a: a[i] if eqx.is_array(a) else a, stack)
        t1, h1 = jd.train(single, task, keys[i], **kw)
        np.testing.assert_allclose(np.asarray(h1.loss), np.asarray(hist.loss[i]), rtol=1e-10)
        np.testing.assert_allclose(np.asarray(t1.W), np.asarray(trained.W[i]), rtol=1e-9)
    # A single network raises.
    single = jax.tree_util.tree_map(lambda a: a[1] if eqx.is_array(a) else a, stack)
    with pytest.raises(jd.TrainingDiverged, match="non-finite at step 0"):
        jd.train(single, task, keys[1], **kw)


RESULTS_OK = jd.RESULTS.successful._value
RESULTS_DIVERGED = jd.RESULTS.diverged._value


def test_vmapped_seeds_equal_sequential_runs():
    task = FlipFlop()
    keys = jr.split(jr.PRNGKey(0), 5)
    train_keys = jr.split(jr.PRNGKey(1), 5)
    lrs = jnp.linspace(1e-3, 2e-2, 5)
    stacked, hist = jd.train(tiny_models(keys), task, train_keys, steps=8, log_every=4,
                             **{**TINY, "learning_rate": lrs})
    assert hist.loss.shape == (5, 8) and hist.diverged_at.shape == (5,)
    for i in range(5):
        single = jd.rnn.GRU(task.n_in, 8, task.n_out, key=keys[i])
        trained, h = jd.train(single, task, train_keys[i], steps=8, log_every=4,
                              **{**TINY, "learning_rate": float(lrs[i])})
        np.testing.assert_allclose(np.asarray(h.loss), np.asarray(hist.loss[i]), rtol=1e-9,
                                   atol=1e-12)
        for a, b in zip(leaves(trained), leaves(stacked)):
            np.testing.assert_allclose(a, b[i], rtol=1e-9, atol=1e-12)


def test_training_lowers_the_loss_and_reports_history():
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(0))
    _, hist = jd.train(model, task, jr.PRNGKey(1), steps=60, log_every=30, **TINY)
    loss = np.asarray(hist.loss)
    assert loss.shape == (60,) and np.all(np.isfinite(loss))
    assert loss[-10:].mean() < loss[:10].mean()
    assert int(hist.diverged_at) == -1 and int(hist.result._value) == RESULTS_OK
    assert hist.plot() is not None


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=-3), "batch_size"),
        (dict(steps=0), "steps"),
        (dict(learning_rate=jnp.ones(3)), "learning_rate"),
        (dict(learning_rate=-1e-3), "learning_rate"),
        (dict(learning_rate=float("nan")), "learning_rate"),
        (dict(grad_clip=-1.0), "grad_clip"),
        (dict(grad_clip=0.0), "grad_clip"),
        (dict(decision_weight=-2.0), "decision_weight"),
        (dict(weight_reg=-0.1), "weight_reg"),
        (dict(activity_reg=-0.1), "activity_reg"),
        (dict(noise_std=-0.1), "noise_std"),
        (dict(noise_std=jnp.ones(2)), "noise_std"),
        (dict(optimizer=optax.sgd(0.1), learning_rate=1e-2), "learning_rate"),
        (dict(optimizer=optax.sgd(0.1), grad_clip=None), "grad_clip"),
        (dict(optimizer="adam"), "optimizer"),
        (dict(progress="yes"), "progress"),
    ],
)
def test_bad_options(kwargs, match):
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 4, task.n_out, key=jr.PRNGKey(0))
    kwargs.setdefault("progress", False)
    with pytest.raises(ValueError, match=match):
        jd.train(model, task, jr.PRNGKey(0), **kwargs)


def test_size_mismatch_names_both_sizes_in_train_and_evaluate():
    task = PerceptualDecisionMaking()
    for fn in (lambda m: jd.train(m, task, jr.PRNGKey(0), progress=False),
               lambda m: jd.evaluate(m, task, jr.PRNGKey(0))):
        with pytest.raises(ValueError, match=r"takes 5 inputs.*provides 3"):
            fn(jd.rnn.GRU(5, 4, 3, key=jr.PRNGKey(0)))
        with pytest.raises(ValueError, match=r"has 2 outputs.*expects 3"):
            fn(jd.rnn.GRU(3, 4, 2, key=jr.PRNGKey(0)))
        with pytest.raises(ValueError, match="dt"):
            fn(jd.rnn.CTRNN(3, 4, 3, key=jr.PRNGKey(0), dt=20.0))
        with pytest.raises(ValueError, match="jaxdyn RNN"):
            fn(jd.Flow(lambda t, x, a: x))


def test_unknown_task_and_mismatched_key_batch():
    model = jd.rnn.GRU(3, 4, 3, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="NoSuchTask"):
        jd.train(model, "NoSuchTask", jr.PRNGKey(0), progress=False)
    models = tiny_models(jr.split(jr.PRNGKey(0), 3))
    with pytest.raises(ValueError, match="batch of 4 keys"):
        jd.train(models, FlipFlop(), jr.split(jr.PRNGKey(0), 4), progress=False)


def test_train_by_task_name_with_a_progress_meter():
    model = jd.rnn.GRU(7, 4, 3, key=jr.PRNGKey(0))
    _, hist = jd.train(model, "ContextDecisionMaking", jr.PRNGKey(0), steps=2, batch_size=4,
                       progress=jd.TqdmProgressMeter(desc="cdm"))
    assert np.all(np.isfinite(np.asarray(hist.loss)))


@pytest.mark.parametrize("name, minimum", [("flipflop", 0.99), ("integrator", 0.99),
                                           ("angular", 0.99), ("pdm", 0.85)])
def test_committed_networks_perform(trained_network, name, minimum):
    model, task = trained_network(name)
    assert model.W_out.dtype == jnp.float64
    assert float(jd.evaluate(model, task, jr.PRNGKey(11), 512)) >= minimum


def test_evaluate_under_filter_vmap_equals_loop(trained_network):
    model, task = trained_network("pdm")
    stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]) if eqx.is_array(x) else x,
                                     model)
    keys = jr.split(jr.PRNGKey(0), 2)
    accs = eqx.filter_vmap(lambda m, k: jd.evaluate(m, task, k, 64))(stacked, keys)
    for i in range(2):
        np.testing.assert_allclose(accs[i], jd.evaluate(model, task, keys[i], 64))
