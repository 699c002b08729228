"""Model files and checkpoints: lossless round trips, refusals that name the file, and
checkpoints bound to the run that wrote them."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn._checkpoint import load_checkpoint, save_checkpoint
from jaxdyn.tasks import FlipFlop, Integrator

TINY = dict(batch_size=8, learning_rate=1e-2, progress=False)

# Every architecture and every structural option, built with non-default values.
MODELS = {
    "ctrnn_rate_tanh": lambda k: jd.rnn.CTRNN(2, 5, 3, key=k),
    "ctrnn_voltage_relu": lambda k: jd.rnn.CTRNN(2, 5, 3, key=k, form="voltage",
                                                 nonlinearity="relu", tau=7.0, dt=3.0),
    "ctrnn_softplus_vector_tau": lambda k: jd.rnn.CTRNN(
        2, 5, 3, key=k, nonlinearity="softplus", tau=jnp.linspace(20.0, 60.0, 5), dt=10.0),
    "ctrnn_sigmoid": lambda k: jd.rnn.CTRNN(2, 5, 3, key=k, nonlinearity="sigmoid"),
    "vanilla_tanh": lambda k: jd.rnn.VanillaRNN(2, 5, 3, key=k),
    "vanilla_relu": lambda k: jd.rnn.VanillaRNN(2, 5, 3, key=k, nonlinearity="relu"),
    "gru_reset_after": lambda k: jd.rnn.GRU(2, 5, 3, key=k),
    "gru_reset_before": lambda k: jd.rnn.GRU(2, 5, 3, key=k, reset_after=False),
    "lstm": lambda k: jd.rnn.LSTM(2, 5, 3, key=k, forget_bias=1.0),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_round_trips_from_the_file_alone(tmp_path, name):
    model = MODELS[name](jr.PRNGKey(3))
    # Perturb every array so that nothing can come back from a default constructor.
    model = jax.tree_util.tree_map(
        lambda a: a * 1.37 + 0.01 if eqx.is_inexact_array(a) else a, model)
    jd.save_model(tmp_path / "m.eqx", model)
    back = jd.load_model(tmp_path / "m.eqx")
    assert type(back) is type(model) and back.config() == model.config()
    for a, b in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    inputs = jr.normal(jr.PRNGKey(0), (12, 2))
    for a, b in zip(model.run(None, inputs), back.run(None, inputs)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_float32_model_stays_float32(tmp_path):
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a,
        jd.rnn.GRU(2, 4, 1, key=jr.PRNGKey(0), reset_after=False))
    jd.save_model(tmp_path / "m.eqx", model)
    back = jd.load_model(tmp_path / "m.eqx")
    assert back.W_hh.dtype == jnp.float32 and not back.reset_after


def test_save_model_refusals(tmp_path):
    stack = eqx.filter_vmap(lambda k: jd.rnn.GRU(2, 4, 1, key=k))(jr.split(jr.PRNGKey(0), 3))
    with pytest.raises(ValueError, match="stack of 3"):
        jd.save_model(tmp_path / "s.eqx", stack)
    with pytest.raises(ValueError, match="jaxdyn.rnn model"):
        jd.save_model(tmp_path / "s.eqx", jd.Flow(lambda t, x, a: x))
    with pytest.raises(TypeError):  # options come from the model, not from the caller
        jd.save_model(tmp_path / "s.eqx", jd.rnn.GRU(2, 4, 1, key=jr.PRNGKey(0)),
                      reset_after=False)
    assert not list(tmp_path.iterdir())


def test_save_model_replaces_only_model_files(tmp_path):
    gru, lstm = jd.rnn.GRU(2, 4, 1, key=jr.PRNGKey(0)), jd.rnn.LSTM(2, 3, 1, key=jr.PRNGKey(1))
    path = tmp_path / "m.eqx"
    jd.save_model(path, gru)
    jd.save_model(path, lstm)  # a model file is replaced, as is an empty file
    assert type(jd.load_model(path)) is jd.rnn.LSTM
    (tmp_path / "empty.eqx").touch()
    jd.save_model(tmp_path / "empty.eqx", gru)
    assert type(jd.load_model(tmp_path / "empty.eqx")) is jd.rnn.GRU
    save_checkpoint(tmp_path / "c.eqx", gru, 3, {"model": "a"})
    (tmp_path / "notes.txt").write_text("results of the long run\n")
    np.save(tmp_path / "data.npy", np.arange(5.0))
    (tmp_path / "log.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    kept = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    for name, match in (("c.eqx", "a jaxdyn checkpoint, not a model file"),
                        ("notes.txt", "not a jaxdyn model file"),
                        ("data.npy", "not a jaxdyn model file"),
                        ("log.jsonl", "not a jaxdyn model file")):
        with pytest.raises(ValueError, match=rf"`path` \('.*{name}'\) exists and is {match}"):
            jd.save_model(tmp_path / name, gru)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        jd.save_model(tmp_path / "folder", gru)
    # Nothing was touched, and no temporary file was left behind.
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir() if f.is_file()} == kept


def test_bad_model_files_name_the_file(tmp_path):
    jd.save_model(tmp_path / "good.eqx", jd.rnn.LSTM(2, 4, 1, key=jr.PRNGKey(0)))
    data = (tmp_path / "good.eqx").read_bytes()
    (tmp_path / "short.eqx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="short.eqx.*truncated or corrupted"):
        jd.load_model(tmp_path / "short.eqx")
    (tmp_path / "junk.eqx").write_bytes(b"\x00\x01 not a model\n" + data)
    with pytest.raises(ValueError, match="junk.eqx.*not a jaxdyn model file"):
        jd.load_model(tmp_path / "junk.eqx")
    header, payload = data.split(b"\n", 1)
    for field, value, match in (("class", "Transformer", "Transformer"),
                                ("format", 99, "format 99.*newer"),
                                ("kind", "checkpoint", "checkpoint file")):
        import json

        h = json.loads(header)
        h[field] = value
        (tmp_path / "x.eqx").write_bytes(json.dumps(h).encode() + b"\n" + payload)
        with pytest.raises(ValueError, match=match):
            jd.load_model(tmp_path / "x.eqx")


def test_checkpoint_round_trip_and_identity(tmp_path):
    tree = (jd.rnn.LSTM(3, 5, 2, key=jr.PRNGKey(4)), np.arange(6.0))
    run = {"model": "a", "task": "b", "key": "c", "batch_size": "8"}
    save_checkpoint(tmp_path / "c.eqx", tree, 17, run, (np.arange(5.0),))
    loaded, step, extra = load_checkpoint(tmp_path / "c.eqx", tree, run)
    assert step == 17
    np.testing.assert_array_equal(extra[0], np.arange(5.0))
    for a, b in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="c.eqx.*another training run.*task"):
        load_checkpoint(tmp_path / "c.eqx", tree, {**run, "task": "other"})
    data = (tmp_path / "c.eqx").read_bytes()
    (tmp_path / "t.eqx").write_bytes(data[:-40])
    with pytest.raises(ValueError, match="t.eqx.*truncated or corrupted"):
        load_checkpoint(tmp_path / "t.eqx", tree, run)


class _StopAt(jd.AbstractProgressMeter):
    """A progress meter that interrupts training once `at` steps are done (a stand-in for a
    kill)."""

    at: int

    def open(self, total, initial=0):
        return _Stopper(self.at)


class _Stopper:
    def __init__(self, at):
        self.at = at

    def update(self, done, **postfix):
        if done >= self.at:
            raise KeyboardInterrupt

    def close(self):
        pass


def test_interrupted_run_resumes_bit_exactly(tmp_path):
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(0))
    kw = dict(steps=20, log_every=5, batch_size=8, learning_rate=1e-2)
    full, hist_full = jd.train(model, task, jr.PRNGKey(1), progress=False, **kw)
    ckpt = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        jd.train(model, task, jr.PRNGKey(1), checkpoint_dir=ckpt, progress=_StopAt(10), **kw)
    resumed, hist = jd.train(model, task, jr.PRNGKey(1), checkpoint_dir=ckpt, progress=False,
                             **kw)
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(hist.loss), np.asarray(hist_full.loss))
    assert not list(ckpt.glob("*.tmp"))


def test_resume_refuses_another_run_and_fewer_steps(tmp_path):
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(0))
    jd.train(model, task, jr.PRNGKey(1), steps=10, log_every=5, checkpoint_dir=tmp_path, **TINY)
    other = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(7))
    with pytest.raises(ValueError, match="another training run.*model"):
        jd.train(other, task, jr.PRNGKey(1), steps=20, checkpoint_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match="another training run.*key"):
        jd.train(model, task, jr.PRNGKey(2), steps=20, checkpoint_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match="another training run.*task"):
        jd.train(model, FlipFlop(p=0.2), jr.PRNGKey(1), steps=20, checkpoint_dir=tmp_path,
                 **TINY)
    with pytest.raises(ValueError, match="holds 10 steps.*steps=5"):
        jd.train(model, task, jr.PRNGKey(1), steps=5, checkpoint_dir=tmp_path, **TINY)


def test_resume_takes_the_new_learning_rate(tmp_path):
    task = FlipFlop()
    model = jd.rnn.GRU(task.n_in, 8, task.n_out, key=jr.PRNGKey(0))
    kw = dict(batch_size=8, progress=False, log_every=5)
    for run in ("a", "b"):
        with pytest.raises(KeyboardInterrupt):
            jd.train(model, task, jr.PRNGKey(1), steps=10, learning_rate=1e-2,
                     checkpoint_dir=tmp_path / run, **{**kw, "progress": _StopAt(5)})
    same, h_same = jd.train(model, task, jr.PRNGKey(1), steps=10, learning_rate=1e-2,
                            checkpoint_dir=tmp_path / "a", **kw)
    lower, h_lower = jd.train(model, task, jr.PRNGKey(1), steps=10, learning_rate=1e-4,
                              checkpoint_dir=tmp_path / "b", **kw)
    np.testing.assert_array_equal(h_same.loss[:6], h_lower.loss[:6])  # same run up to step 5
    assert not np.array_equal(np.asarray(same.W_hh), np.asarray(lower.W_hh))
    # The smaller rate moved the weights less over the resumed steps.
    from jaxdyn._train import _default_optimizer, trainable

    params, _ = eqx.partition(model, trainable(model))
    like = (params, _default_optimizer().init(params), jnp.asarray(True))
    (_, opt_state, _), step, _ = load_checkpoint(tmp_path / "b" / "checkpoint.eqx", like)
    assert step == 10
    assert float(opt_state.hyperparams["learning_rate"]) == pytest.approx(1e-4)


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    task = Integrator()
    model = jd.rnn.VanillaRNN(task.n_in, 8, task.n_out, key=jr.PRNGKey(0), nonlinearity="relu")
    model = eqx.tree_at(lambda m: m.W, model, 1e3 * jnp.eye(8))  # overflows within a trial
    with pytest.raises(jd.TrainingDiverged, match="non-finite at step 0"):
        jd.train(model, task, jr.PRNGKey(1), steps=10, batch_size=4, grad_clip=None,
                 progress=False, checkpoint_dir=tmp_path)
    from jaxdyn._train import _default_optimizer, trainable

    params, _ = eqx.partition(model, trainable(model))
    like = (params, _default_optimizer().init(params), jnp.asarray(True))
    (saved, _, _), step, _ = load_checkpoint(tmp_path / "checkpoint.eqx", like)
    assert step == 0
    np.testing.assert_array_equal(np.asarray(saved.W), np.asarray(model.W))
