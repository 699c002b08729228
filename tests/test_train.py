"""Training: accuracy of every architecture, vmapped seeds, checkpoints, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn.tasks import ContextDecisionMaking, FlipFlop, Integrator, PerceptualDecisionMaking

H = 64


def build(arch, task, key, n_hidden=H):
    """The five architectures of the acceptance criteria (CTRNNs with tau = 2 dt)."""
    ct = dict(dt=task.dt, tau=2 * task.dt)
    if arch == "ctrnn_tanh":
        return jd.rnn.CTRNN(task.n_in, n_hidden, task.n_out, key=key, **ct)
    if arch == "ctrnn_relu":
        return jd.rnn.CTRNN(task.n_in, n_hidden, task.n_out, key=key, nonlinearity="relu", **ct)
    if arch == "scaled_ctrnn":
        return jd.rnn.scaled_ctrnn(task.n_in, n_hidden, task.n_out, key=key, g=1.0, **ct)
    if arch == "lstm":
        return jd.rnn.LSTM(task.n_in, n_hidden, task.n_out, key=key)
    return jd.rnn.GRU(task.n_in, n_hidden, task.n_out, key=key)


# (steps, learning rate, decision weight) per architecture and task, batch 64, float32.
RECIPES = {
    ("PerceptualDecisionMaking", "ctrnn_tanh"): (1000, 3e-3, 5.0),
    ("PerceptualDecisionMaking", "ctrnn_relu"): (800, 1e-2, 5.0),
    ("PerceptualDecisionMaking", "scaled_ctrnn"): (1000, 3e-3, 5.0),
    ("PerceptualDecisionMaking", "lstm"): (1000, 3e-3, 5.0),
    ("PerceptualDecisionMaking", "gru"): (400, 1e-2, 1.0),
    ("ContextDecisionMaking", "ctrnn_tanh"): (1500, 3e-3, 10.0),
    ("ContextDecisionMaking", "ctrnn_relu"): (1500, 3e-3, 10.0),
    ("ContextDecisionMaking", "scaled_ctrnn"): (2000, 3e-3, 10.0),
    ("ContextDecisionMaking", "lstm"): (2000, 3e-3, 10.0),
    ("ContextDecisionMaking", "gru"): (1500, 3e-3, 10.0),
}


@pytest.fixture
def float32():
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


def decision_accuracy(task, model, key, n=2000):
    """Accuracy (NeuroGym's decision-epoch rule) on trials whose answer is defined by the
    stimulus: for PerceptualDecisionMaking, coherence-0 trials have a coin-flip ground truth and
    cap any network at about 89 % overall, so they are left out."""
    trial = task.sample(key, n)
    _, out = jax.vmap(lambda u: model.run(None, u))(trial.inputs)
    ok = np.asarray(task.correct(out, trial))
    if "coherence" in trial.info:
        ok = ok[np.asarray(trial.info["coherence"]) > 0]
    return ok.mean()


@pytest.mark.slow
@pytest.mark.parametrize("task_name, arch", sorted(RECIPES))
def test_architectures_reach_90_percent(float32, task_name, arch):
    task = jd.tasks.get_task(task_name)
    steps, lr, dw = RECIPES[task_name, arch]
    model = build(arch, task, jr.PRNGKey(0))
    trained, hist = jd.train(model, task, jr.PRNGKey(1), steps=steps, batch_size=64,
                             learning_rate=lr, decision_weight=dw, progress=False,
                             log_every=steps)
    assert np.all(np.isfinite(np.asarray(hist.loss)))
    acc = decision_accuracy(task, trained, jr.PRNGKey(99))
    assert acc >= 0.90, f"{arch} on {task_name}: accuracy {acc:.3f}"
    assert float(jd.evaluate(trained, task, jr.PRNGKey(5), 256)) > 0.5


@pytest.mark.slow
def test_gru_solves_flipflop_and_integrator(float32):
    for task, steps in ((FlipFlop(), 1500), (Integrator(), 800)):
        model = jd.rnn.GRU(task.n_in, 32, task.n_out, key=jr.PRNGKey(0))
        trained, _ = jd.train(model, task, jr.PRNGKey(1), steps=steps, batch_size=64,
                              learning_rate=1e-2, progress=False, log_every=steps)
        trial = task.sample(jr.PRNGKey(7), 256)
        _, out = jax.vmap(lambda u: trained.run(None, u))(trial.inputs)
        mse = float(task.loss(out, trial))
        assert mse < 0.05, f"{type(task).__name__}: MSE {mse:.4f}"


TINY = dict(batch_size=8, learning_rate=1e-2, progress=False)


def tiny_models(keys):
    task = FlipFlop()
    return eqx.filter_vmap(lambda k: jd.rnn.GRU(task.n_in, 8, task.n_out, key=k))(keys)


def test_vmapped_seeds_equal_sequential_runs():
    task = FlipFlop()
    keys = jr.split(jr.PRNGKey(0), 16)
    train_keys = jr.split(jr.PRNGKey(1), 16)
    lrs = jnp.linspace(1e-3, 2e-2, 16)
    models = tiny_models(keys)
    stacked, hist = jd.train(models, task, train_keys, steps=12, log_every=6,
                             **{**TINY, "learning_rate": lrs})
    assert hist.loss.shape == (16, 12)
    for i in range(16):
        single = jd.rnn.GRU(task.n_in, 8, task.n_out, key=keys[i])
        trained, h = jd.train(single, task, train_keys[i], steps=12, log_every=6,
                              **{**TINY, "learning_rate": float(lrs[i])})
        np.testing.assert_allclose(np.asarray(h.loss), np.asarray(hist.loss[i]), rtol=1e-9,
                                   atol=1e-12)
        for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(trained, eqx.is_array)),
                        jax.tree_util.tree_leaves(eqx.filter(stacked, eqx.is_array))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), rtol=1e-9, atol=1e-12)


def test_training_lowers_the_loss_and_reports_history():
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(0))
    trained, hist = jd.train(model, task, jr.PRNGKey(1), steps=60, log_every=30, **TINY)
    loss = np.asarray(hist.loss)
    assert loss.shape == (60,) and np.all(np.isfinite(loss))
    assert loss[-10:].mean() < loss[:10].mean()
    assert hist.plot() is not None
    # tau and dt of a CTRNN are not trained
    ct = jd.rnn.CTRNN(task.n_in, 8, task.n_out, key=jr.PRNGKey(0), dt=task.dt, tau=5 * task.dt)
    ct2, _ = jd.train(ct, task, jr.PRNGKey(1), steps=5, **TINY)
    assert float(ct2.tau) == float(ct.tau) and float(ct2.dt) == float(ct.dt)
    assert not np.array_equal(np.asarray(ct2.W), np.asarray(ct.W))


def test_checkpoint_resume_matches_uninterrupted_run(tmp_path):
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(0))
    full, hist_full = jd.train(model, task, jr.PRNGKey(1), steps=20, log_every=5, **TINY)
    ckpt = tmp_path / "run"
    jd.train(model, task, jr.PRNGKey(1), steps=10, log_every=5, checkpoint_dir=ckpt, **TINY)
    assert (ckpt / "checkpoint.eqx").exists()
    resumed, hist = jd.train(model, task, jr.PRNGKey(1), steps=20, log_every=5,
                             checkpoint_dir=ckpt, **TINY)
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(hist.loss), np.asarray(hist_full.loss))
    assert not list(ckpt.glob("*.tmp"))


def test_checkpoint_and_model_files_round_trip_bit_exact(tmp_path):
    from jaxdyn._checkpoint import load_checkpoint, save_checkpoint

    model = jd.rnn.LSTM(3, 5, 2, key=jr.PRNGKey(4))
    tree = (model, np.arange(6.0))
    save_checkpoint(tmp_path / "c.eqx", tree, 17, (np.arange(5.0),))
    loaded, step, extra = load_checkpoint(tmp_path / "c.eqx", tree)
    assert step == 17
    np.testing.assert_array_equal(extra[0], np.arange(5.0))
    for a, b in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    ct = jd.rnn.CTRNN(2, 4, 1, key=jr.PRNGKey(2), nonlinearity="relu", form="voltage", tau=7.0)
    jd.save_model(tmp_path / "m.eqx", ct, nonlinearity="relu", form="voltage")
    back = jd.load_model(tmp_path / "m.eqx")
    assert back.nonlinearity == "relu" and back.form == "voltage"
    for a, b in zip(jax.tree_util.tree_leaves(ct), jax.tree_util.tree_leaves(back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    task = Integrator()
    model = jd.rnn.VanillaRNN(task.n_in, 8, task.n_out, key=jr.PRNGKey(0), nonlinearity="relu")
    model = eqx.tree_at(lambda m: m.W, model, 1e3 * jnp.eye(8))  # overflows within a trial
    with pytest.raises(jd.TrainingDiverged, match="non-finite at step 0"):
        jd.train(model, task, jr.PRNGKey(1), steps=10, batch_size=4, grad_clip=None,
                 progress=False, checkpoint_dir=tmp_path)
    from jaxdyn._checkpoint import load_checkpoint
    from jaxdyn._train import trainable

    params, _ = eqx.partition(model, trainable(model))
    from jaxdyn._train import _default_optimizer

    like = (params, _default_optimizer(None).init(params))
    (saved, _), step, _ = load_checkpoint(tmp_path / "checkpoint.eqx", like)
    assert step == 0
    np.testing.assert_array_equal(np.asarray(saved.W), np.asarray(model.W))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=-3), "batch_size"),
        (dict(steps=0), "steps"),
        (dict(learning_rate=jnp.ones(3)), "learning_rate"),
    ],
)
def test_bad_options(kwargs, match):
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 4, task.n_out, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match=match):
        jd.train(model, task, jr.PRNGKey(0), progress=False, **kwargs)


def test_size_mismatch_names_both_sizes():
    task = PerceptualDecisionMaking()
    with pytest.raises(ValueError, match=r"takes 5 inputs.*provides 3"):
        jd.train(jd.rnn.GRU(5, 4, 3, key=jr.PRNGKey(0)), task, jr.PRNGKey(0), progress=False)
    with pytest.raises(ValueError, match=r"has 2 outputs.*expects 3"):
        jd.train(jd.rnn.GRU(3, 4, 2, key=jr.PRNGKey(0)), task, jr.PRNGKey(0), progress=False)
    with pytest.raises(ValueError, match="dt"):
        jd.train(jd.rnn.CTRNN(3, 4, 3, key=jr.PRNGKey(0), dt=20.0), task, jr.PRNGKey(0),
                 progress=False)


def test_unknown_task_and_mismatched_key_batch():
    model = jd.rnn.GRU(3, 4, 3, key=jr.PRNGKey(0))
    with pytest.raises(ValueError, match="NoSuchTask"):
        jd.train(model, "NoSuchTask", jr.PRNGKey(0), progress=False)
    models = tiny_models(jr.split(jr.PRNGKey(0), 3))
    with pytest.raises(ValueError, match="batch of 4 keys"):
        jd.train(models, FlipFlop(), jr.split(jr.PRNGKey(0), 4), progress=False)


def test_train_by_task_name_and_context_task_runs():
    model = jd.rnn.GRU(7, 4, 3, key=jr.PRNGKey(0))
    _, hist = jd.train(model, "ContextDecisionMaking", jr.PRNGKey(0), steps=2, batch_size=4,
                       progress=False)
    assert np.all(np.isfinite(np.asarray(hist.loss)))
    assert isinstance(ContextDecisionMaking(), jd.tasks.AbstractTask)


@pytest.mark.parametrize("name, minimum", [("flipflop", 0.95), ("integrator", 0.9),
                                           ("angular", 0.99), ("pdm", 0.8)])
def test_committed_networks_perform(trained_network, name, minimum):
    model, task = trained_network(name)
    assert model.W_out.dtype == jnp.float64
    assert float(jd.evaluate(model, task, jr.PRNGKey(11), 256)) >= minimum


def test_per_network_gain_and_learning_rate():
    task = FlipFlop()
    keys = jr.split(jr.PRNGKey(3), 4)
    gains = jnp.array([0.5, 1.0, 1.5, 2.0])
    models = eqx.filter_vmap(lambda k, g: jd.rnn.scaled_ctrnn(
        task.n_in, 16, task.n_out, key=k, g=g, dt=task.dt, tau=5 * task.dt))(keys, gains)
    std = jnp.std(models.W, axis=(1, 2)) * jnp.sqrt(16.0)
    np.testing.assert_allclose(np.asarray(std / gains), 1.0, atol=0.25)
    trained, hist = jd.train(models, task, keys, steps=4, batch_size=4, progress=False,
                             learning_rate=jnp.array([1e-3, 2e-3, 3e-3, 4e-3]))
    assert hist.loss.shape == (4, 4) and trained.W.shape == (4, 16, 16)


def test_evaluate_under_filter_vmap_equals_loop(trained_network):
    model, task = trained_network("pdm")
    stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]) if eqx.is_array(x) else x,
                                     model)
    keys = jr.split(jr.PRNGKey(0), 2)
    accs = eqx.filter_vmap(lambda m, k: jd.evaluate(m, task, k, 64))(stacked, keys)
    for i in range(2):
        np.testing.assert_allclose(accs[i], jd.evaluate(model, task, keys[i], 64))
