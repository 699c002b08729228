"""Tests of jaxdyn.tasks: trial statistics, NeuroGym conventions, scoring, jit/vmap, errors.

Every sample is drawn through one jitted function with one batch size, so each task instance
compiles once; the variants used by several tests are shared below.
"""

import math
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from helpers import tree_allclose

from jaxdyn import tasks
from jaxdyn.tasks._epochs import to_steps

B = 1000
TASKS = {name: cls() for name, cls in tasks.TASKS.items()}
REGRESSION = [n for n, t in TASKS.items() if t.kind == "regression"]
TWO_CHOICE = ["PerceptualDecisionMaking", "ContextDecisionMaking", "IntervalDiscrimination",
              "DelayComparison", "MultiSensoryIntegration"]
PDM_CLEAN = tasks.PerceptualDecisionMaking(sigma=0.0)
CDM_CLEAN = tasks.ContextDecisionMaking(sigma=0.0, timing={"delay": 500})


@eqx.filter_jit
def _sample(task, key):
    return task.sample(key, B)


@eqx.filter_jit
def _score(task, outputs, trial, **kwargs):
    return task.score(outputs, trial, **kwargs)


@eqx.filter_jit
def _loss(task, outputs, trial):
    return task.loss(outputs, trial)


def sample(task, seed=0):
    """A jitted batch of `B` trials."""
    return _sample(task, jr.key(seed))


def numpy(trial):
    """The trial with numpy leaves, for cheap indexing in tests."""
    return jax.tree_util.tree_map(np.asarray, trial)


def score(task, outputs, trial, **kwargs):
    return float(_score(task, outputs, trial, **kwargs))


def epoch_counts(trial):
    """Steps per epoch, `[B, E]`."""
    e = np.asarray(trial.epoch)
    return np.stack([(e == i).sum(-1) for i in range(len(trial.epoch_names))], axis=-1)


def oracle(trial):
    return 10.0 * trial.targets if trial.labels is not None else trial.targets


# ---------------------------------------------------------------- shapes, jit, vmap


@pytest.mark.parametrize("name", list(TASKS))
def test_shapes_and_dtypes(name):
    task = TASKS[name]
    assert isinstance(task, tasks.AbstractTask)
    trial = numpy(sample(task))
    T = task.n_steps
    assert trial.inputs.shape == (B, T, task.n_in)
    assert trial.targets.shape == (B, T, task.n_out)
    assert trial.mask.shape == trial.decision.shape == trial.epoch.shape == (B, T)
    assert trial.inputs.dtype == trial.targets.dtype == trial.mask.dtype == np.float64
    assert trial.decision.dtype == bool and trial.epoch.dtype == np.int32
    assert all(v.shape[0] == B for v in trial.info.values())
    assert np.all(np.isfinite(trial.inputs)) and np.all(np.isfinite(trial.targets))
    pad = ~trial.valid
    assert np.all(trial.inputs[pad] == 0) and np.all(trial.mask[pad] == 0)
    assert np.all(trial.mask[trial.valid] == 1)
    assert trial.valid.sum(1).max() == T  # the fixed length is reached by the longest trials
    if task.kind == "choice":
        assert trial.labels.shape == (B, T) and trial.labels.dtype == np.int32
        assert np.array_equal(trial.targets, np.eye(task.n_out)[trial.labels])
        assert trial.info["ground_truth"].dtype == np.int32
    else:
        assert trial.labels is None


@pytest.mark.parametrize("name", list(TASKS))
def test_vmap_over_keys_equals_loop(name):
    task = TASKS[name]
    keys = jr.split(jr.key(3), 2)
    batched = eqx.filter_jit(jax.vmap(lambda k: task.sample(k, B)))(keys)
    looped = [_sample(task, k) for k in keys]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *looped)
    assert tree_allclose(batched, stacked, rtol=1e-12, atol=1e-12)
    assert not np.array_equal(looped[0].inputs, looped[1].inputs)


# ---------------------------------------------------------------- epochs and timing


def test_step_rule_and_duration_bounds():
    assert to_steps(750, 100) == 7 and to_steps(83, 80) == 1 and to_steps(300, 80) == 3
    assert to_steps(0.3, 0.1) == 3 and to_steps(0, 100) == 0
    assert tasks.Uniform(300, 600).bounds(80) == (3, 7)
    assert tasks.Uniform(800, 1500).bounds(80) == (10, 18)
    assert tasks.Uniform(800, 1500).bounds(100) == (8, 14)
    assert tasks.TruncExp(600, 300, 3000).bounds(100) == (3, 29)
    assert tasks.Choice([100, 250]).bounds(100) == (1, 2)
    steps = jax.jit(lambda k: tasks.Uniform(300, 600).sample(k, (20000,), 80))(jr.key(0))
    freq = np.bincount(np.asarray(steps), minlength=8)[3:] / 20000
    assert np.allclose(freq, np.array([20, 80, 80, 80, 40]) / 300, atol=0.015)


FIXED_EPOCHS = {
    "PerceptualDecisionMaking": (1, 20, 0, 1),
    "DelayComparison": (5, 5, 10, 5, 1),
    "MultiSensoryIntegration": (3, 7, 1),
    "GoNoGo": (0, 5, 5, 5),
}


@pytest.mark.parametrize("name", list(FIXED_EPOCHS))
def test_fixed_epoch_lengths(name):
    trial = sample(TASKS[name])
    assert np.all(epoch_counts(trial) == np.array(FIXED_EPOCHS[name]))
    assert TASKS[name].n_steps == sum(FIXED_EPOCHS[name])


def test_variable_epoch_lengths():
    c = epoch_counts(sample(TASKS["ContextDecisionMaking"]))
    assert np.all(c[:, [0, 1, 3]] == [3, 7, 1]) and TASKS["ContextDecisionMaking"].n_steps == 40
    assert c[:, 2].min() >= 3 and c[:, 2].max() <= 29
    # the floored truncated exponential: P(k) ∝ F((k+1)·100) − F(k·100) on [300, 3000)
    edges = np.clip(np.arange(3, 31) * 100.0, 300, 3000)
    p = np.diff(-np.exp(-edges / 600))
    p /= p.sum()
    k = np.arange(3, 30)
    mean = (k * p).sum()
    sd = math.sqrt((k ** 2 * p).sum() - mean ** 2)
    assert abs(c[:, 2].mean() - mean) < 4 * sd / math.sqrt(B)
    c = epoch_counts(sample(TASKS["IntervalDiscrimination"]))
    assert np.all(c[:, [0, 4, 5]] == [3, 6, 3])
    assert c[:, [1, 3]].min() == 3 and c[:, [1, 3]].max() == 7
    assert c[:, 2].min() == 10 and c[:, 2].max() == 18
    assert TASKS["IntervalDiscrimination"].n_steps == 44
    c = epoch_counts(sample(TASKS["ReadySetGo"]))
    assert np.all(c[:, [0, 2]] == 1) and np.all(c[:, 3] == 2 * c[:, 1])
    assert c[:, 1].min() == 10 and c[:, 1].max() == 18 and TASKS["ReadySetGo"].n_steps == 56


def test_timing_and_dt_options():
    task = tasks.PerceptualDecisionMaking(dt=20, timing={"stimulus": 1000, "delay": 200})
    assert task.n_steps == 5 + 50 + 10 + 5
    assert [d.bounds(task.dt) for _, d in task.timing] == [(5, 5), (50, 50), (10, 10), (5, 5)]
    task = tasks.PerceptualDecisionMaking(timing={"delay": ("uniform", (100, 300))})
    assert task.n_steps == 1 + 20 + 2 + 1
    task = tasks.GoNoGo(timing={"delay": tasks.Choice((200, 400))})
    assert task.n_steps == 14
    assert set(np.unique(epoch_counts(sample(task))[:, 2])) == {2, 4}


# ---------------------------------------------------------------- trial statistics


def _freqs(values, allowed):
    values = np.asarray(values)
    assert np.all(np.isin(values, allowed)), f"unexpected values {set(values.tolist())}"
    return np.array([np.mean(values == a) for a in allowed])


def test_pdm_statistics_and_ground_truth():
    trial = numpy(sample(TASKS["PerceptualDecisionMaking"], 1))
    cohs = np.array([0, 6.4, 12.8, 25.6, 51.2])
    assert np.allclose(_freqs(trial.info["coherence"], cohs), 0.2, atol=0.045)
    assert np.allclose(_freqs(trial.info["ground_truth"], [1, 2]), 0.5, atol=0.05)
    # noise: std sigma/sqrt(dt) = 0.1 on the stimulus channels, only in the stimulus epoch
    stim = trial.epoch == 1
    x, gt, coh = trial.inputs, trial.info["ground_truth"], trial.info["coherence"]
    mean = 0.5 + np.where(np.arange(1, 3)[None, :] == gt[:, None], 1, -1) * coh[:, None] / 200
    resid = x[..., 1:] - mean[:, None, :]
    assert abs(resid[stim].std() - 0.1) < 0.003 and abs(resid[stim].mean()) < 0.003
    assert np.all(x[~stim][:, 1:] == 0)
    assert np.array_equal(x[..., 0], (trial.epoch == 0).astype(float))  # NeuroGym 2.x
    # the label is the side whose evidence is larger
    clean = numpy(sample(PDM_CLEAN, 2))
    first = clean.inputs[:, 1]  # first stimulus step
    g = clean.info["ground_truth"]
    pos = clean.info["coherence"] > 0
    assert np.all(np.argmax(first[pos, 1:], axis=-1) + 1 == g[pos])
    assert np.all(first[~pos, 1] == first[~pos, 2])
    assert np.all(clean.labels[clean.decision] == np.repeat(g, clean.decision.sum(1)))
    assert np.all(clean.labels[~clean.decision] == 0)
    # NeuroGym 0.1: fixation input on until the decision epoch
    old = numpy(sample(tasks.PerceptualDecisionMaking(version="0.1")))
    assert np.array_equal(old.inputs[..., 0], 1.0 - old.decision)


def test_cdm_statistics_and_context():
    trial = numpy(sample(TASKS["ContextDecisionMaking"], 1))
    info = trial.info
    assert np.allclose(_freqs(info["context"], [0, 1]), 0.5, atol=0.05)
    for k in ("coherence_mod1", "coherence_mod2"):
        assert np.allclose(_freqs(info[k], [5, 15, 50]), 1 / 3, atol=0.05)
    assert np.allclose(_freqs(info["other_choice"], [1, 2]), 0.5, atol=0.05)
    relevant = np.where(info["context"] == 0, info["choice_mod1"], info["choice_mod2"])
    irrelevant = np.where(info["context"] == 0, info["choice_mod2"], info["choice_mod1"])
    assert np.array_equal(relevant, info["ground_truth"])
    assert np.array_equal(irrelevant, info["other_choice"])
    x = trial.inputs
    cue = np.stack([info["context"] == 0, info["context"] == 1], -1).astype(float)
    assert np.array_equal(x[..., 5:], trial.valid[..., None] * cue[:, None, :])
    assert np.array_equal(x[..., 0], (trial.epoch == 0).astype(float))
    stim = trial.epoch == 1
    side = np.stack([info["choice_mod1"] == 1, info["choice_mod1"] == 2,
                     info["choice_mod2"] == 1, info["choice_mod2"] == 2], -1)
    coh = np.repeat(np.stack([info["coherence_mod1"], info["coherence_mod2"]], -1), 2, axis=-1)
    resid = x[..., 1:5] - (0.5 + np.where(side, 1, -1) * coh / 200)[:, None, :]
    assert abs(resid[stim].std() - 0.1) < 0.003 and np.all(x[..., 1:5][~stim] == 0)
    # noise-free evidence: each modality favours its own choice by coh/100
    clean = numpy(sample(CDM_CLEAN, 2))
    first, ic = clean.inputs[:, 3], clean.info
    for m, sl in ((1, slice(1, 3)), (2, slice(3, 5))):
        diff = first[:, sl][:, 0] - first[:, sl][:, 1]
        sign = np.where(ic[f"choice_mod{m}"] == 1, 1, -1)
        assert np.allclose(diff, sign * ic[f"coherence_mod{m}"] / 100)
    # NeuroGym 0.1 (here with an implicit context): noise on every channel in the stimulus
    # epoch, fixation on until the decision epoch, no cue channels and a fixed context
    task = tasks.ContextDecisionMaking(version="0.1", context="implicit", implicit_modality=1)
    assert task.n_in == 5 and task.input_names[-1] == "stim2_mod2"
    old = numpy(sample(task, 3))
    so = old.epoch == 1
    assert abs((old.inputs[..., 0][so] - 1).std() - 0.1) < 0.01
    assert np.all(old.inputs[..., 0][(old.epoch == 0) | (old.epoch == 2)] == 1)
    assert np.all(old.inputs[..., 0][old.decision] == 0)
    assert np.all(old.info["context"] == 1)
    assert np.array_equal(old.info["choice_mod2"], old.info["ground_truth"])


def test_msi_statistics():
    trial = numpy(sample(TASKS["MultiSensoryIntegration"], 1))
    info = trial.info
    assert np.allclose(_freqs(info["coherence"], [5, 15, 50]), 1 / 3, atol=0.05)
    assert np.all((info["proportion"] >= 0) & (info["proportion"] <= 1))
    assert abs(info["proportion"].mean() - 0.5) < 0.05
    assert np.allclose(info["coherence_mod1"] + info["coherence_mod2"], info["coherence"])
    stim = trial.epoch == 1
    fix = trial.inputs[..., 0]
    assert abs((fix[stim] - 1).std() - 0.1) < 0.005  # NeuroGym adds noise to fixation too
    assert np.all(fix[trial.decision] == 0)
    side = np.where(np.arange(2)[None, :] == info["ground_truth"][:, None] - 1, 1, -1)
    mean = 0.5 + np.concatenate([side * info["coherence_mod1"][:, None],
                                 side * info["coherence_mod2"][:, None]], -1) / 200
    resid = trial.inputs[..., 1:] - mean[:, None, :]
    assert abs(resid[stim].std() - 0.1) < 0.003 and np.all(trial.inputs[..., 1:][~stim] == 0)


def test_delay_comparison_ground_truth():
    task = TASKS["DelayComparison"]
    trial = numpy(sample(task, 1))
    f1, f2, gt = trial.info["f1"], trial.info["f2"], trial.info["ground_truth"]
    assert np.array_equal(gt == 1, f1 > f2)
    assert np.allclose(_freqs(gt, [1, 2]), 0.5, atol=0.05)
    pairs = {tuple(sorted(p)) for p in task.vpairs}
    assert {tuple(sorted(p)) for p in zip(f1.tolist(), f2.tolist())} == pairs
    x = trial.inputs[..., 1]
    enc1, enc2 = (1 + (f1 - 10) / 24) / 2, (1 + (f2 - 10) / 24) / 2
    assert abs((x[:, 5:10] - enc1[:, None]).std() - 0.1) < 0.005
    assert abs((x[:, 20:25] - enc2[:, None]).mean()) < 0.005
    assert np.all(x[:, 10:20] == 0) and np.all(x[:, :5] == 0)


def test_interval_discrimination_ground_truth():
    trial = numpy(sample(TASKS["IntervalDiscrimination"], 1))
    c = epoch_counts(trial)
    gt = trial.info["ground_truth"]
    assert np.array_equal(gt == 1, c[:, 1] > c[:, 3])
    assert np.allclose(trial.info["duration1"], c[:, 1] * 80)
    # ties (equal floored durations) are labelled 2, as in NeuroGym
    p = np.array([20, 80, 80, 80, 40]) / 300
    assert abs(np.mean(gt == 2) - (1 + (p ** 2).sum()) / 2) < 0.05
    assert np.array_equal(trial.inputs[..., 1], (trial.epoch == 1).astype(float))
    assert np.array_equal(trial.inputs[..., 2], (trial.epoch == 3).astype(float))
    assert np.array_equal(trial.inputs[..., 0], (trial.valid & ~trial.decision).astype(float))


def test_gonogo_and_readysetgo_layout():
    trial = numpy(sample(TASKS["GoNoGo"], 1))
    gt, x = trial.info["ground_truth"], trial.inputs
    assert np.allclose(_freqs(gt, [0, 1]), 0.5, atol=0.05)
    assert np.all(x[:, 0:5, 1] == (gt == 0)[:, None]) and np.all(x[:, 0:5, 2] == gt[:, None])
    assert np.all(trial.labels[:, 10:] == gt[:, None]) and np.all(trial.labels[:, :10] == 0)
    trial = numpy(sample(TASKS["ReadySetGo"], 1))
    c, x, lab = epoch_counts(trial), trial.inputs, trial.labels
    b = np.arange(B)
    assert np.all(x[b, 1, 1] == 1) and np.all(x[:, :, 1].sum(1) == 1)  # ready after fixation
    set_at = 1 + c[:, 1]
    assert np.all(x[b, set_at, 2] == 1) and np.all(x[:, :, 2].sum(1) == 1)
    go = set_at + 1 + c[:, 1]
    assert np.all(lab[b, go] == 1) and np.all(lab.sum(1) == 1)
    assert np.all(trial.info["window"][b, go])
    assert np.allclose(trial.info["measure"], c[:, 1] * 80)


def test_flipflop_target_is_last_pulse():
    trial = numpy(sample(TASKS["FlipFlop"], 1))
    x, y = trial.inputs, trial.targets
    ref = np.zeros_like(x)
    state = np.zeros((x.shape[0], x.shape[2]))
    for t in range(x.shape[1]):
        state = np.where(x[:, t] != 0, x[:, t], state)
        ref[:, t] = state
    assert np.array_equal(y, ref)
    assert set(np.unique(x)) == {-1.0, 0.0, 1.0}
    assert abs(np.mean(x != 0) - 0.05) < 0.005 and abs(np.mean(x[x != 0])) < 0.05
    assert np.array_equal(trial.info["n_pulses"], (x != 0).sum(1))
    first = numpy(sample(tasks.FlipFlop(p=0.5, initial_pulse=True, duration=640)))
    assert first.inputs.shape[1] == 64 and np.all(first.inputs[:, 0] != 0)
    assert np.all(first.targets != 0)


def test_integrator_target_is_running_integral():
    trial = numpy(sample(TASKS["Integrator"], 1))
    x, y = trial.inputs, trial.targets
    assert np.allclose(y, np.cumsum(x, axis=1))
    assert abs(x.std() - 0.1) < 0.002 and abs(y[:, -1, 0].std() - 1.0) < 0.08
    drift = numpy(sample(tasks.Integrator(sigma=0.0, bias=2.0)))
    b = drift.info["bias"]
    assert np.allclose(drift.targets[:, -1, 0], b) and np.all(np.abs(b) <= 2)
    assert np.allclose(drift.targets[:, 49, 0], b / 2)


def test_angular_integration_heading():
    task = TASKS["AngularIntegration"]
    trial = numpy(sample(task, 1))
    x, y = trial.inputs, trial.targets
    th0 = trial.info["theta0"]
    heading = th0[:, None] + np.cumsum(x[..., 0], axis=1) * task.dt / 1000
    assert np.allclose(y, np.stack([np.cos(heading), np.sin(heading)], -1))
    assert np.allclose(trial.info["heading"], heading)
    assert np.allclose(x[:, :10, 1:], np.stack([np.cos(th0), np.sin(th0)], -1)[:, None])
    assert np.all(x[:, :10, 0] == 0) and np.all(x[:, 10:, 1:] == 0)
    assert abs(x[:, 10:, 0].std() - 2.0) < 0.1
    # OU velocity: lag-1 autocorrelation exp(-dt/tau)
    w = x[:, 10:, 0]
    r = np.mean(w[:, 1:] * w[:, :-1]) / np.mean(w ** 2)
    assert abs(r - math.exp(-0.1)) < 0.02


# ---------------------------------------------------------------- loss and score


@pytest.mark.parametrize("name", list(TASKS))
def test_oracle_scores_one(name):
    task = TASKS[name]
    trial = sample(task, 7)
    out = oracle(trial)
    assert score(task, out, trial) == 1.0
    assert float(_loss(task, out, trial)) < 1e-3
    if task.kind == "choice":
        assert score(task, out, trial, fixation="strict") == 1.0
        assert score(task, out, trial, rule="last") == 1.0
    else:
        assert float(_loss(task, out, trial)) == 0.0


@pytest.mark.parametrize("name", TWO_CHOICE + ["GoNoGo"])
def test_constant_output_scores_chance(name):
    task = TASKS[name]
    trial = sample(task, 8)
    gt = np.asarray(trial.info["ground_truth"])
    const = jnp.zeros_like(trial.targets).at[..., 1].set(1.0)  # always choice 1 / go
    assert score(task, const, trial) == pytest.approx(np.mean(gt == 1))
    assert 0.3 < score(task, const, trial) < 0.75
    fixate = jnp.zeros_like(trial.targets).at[..., 0].set(1.0)
    assert score(task, fixate, trial) == pytest.approx(np.mean(gt == 0))


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_constant_scores_zero(name):
    task = TASKS[name]
    trial = sample(task, 8)
    w = np.asarray(trial.mask)[..., None]
    mean = (w * np.asarray(trial.targets)).sum((0, 1)) / w.sum((0, 1))
    const = jnp.broadcast_to(jnp.asarray(mean), trial.targets.shape)
    assert score(task, const, trial) == pytest.approx(0.0, abs=1e-9)
    noisy = trial.targets + 0.1 * jr.normal(jr.key(0), trial.targets.shape)
    assert 0.5 < score(task, noisy, trial) < 1.0
    mse = float(np.mean((np.asarray(noisy) - np.asarray(trial.targets)) ** 2))
    assert float(_loss(task, noisy, trial)) == pytest.approx(mse, rel=1e-9)
    assert float(jnp.mean(task.error(noisy, trial))) == pytest.approx(mse, rel=1e-9)


def test_choice_loss_is_masked_cross_entropy():
    task = TASKS["ContextDecisionMaking"]
    trial = sample(task, 0)
    out = jr.normal(jr.key(1), trial.targets.shape)
    logp = np.asarray(jax.nn.log_softmax(out))
    lab, m = np.asarray(trial.labels), np.asarray(trial.mask)
    ce = -np.take_along_axis(logp, lab[..., None], -1)[..., 0]
    assert float(_loss(task, out, trial)) == pytest.approx((m * ce).sum() / m.sum(), rel=1e-10)
    g = eqx.filter_jit(jax.grad(task.loss))(out, trial)
    assert np.all(np.asarray(g)[~np.asarray(trial.valid)] == 0)
    assert np.all(np.isfinite(np.asarray(g)))


def test_scoring_rules():
    task = TASKS["PerceptualDecisionMaking"]
    trial = sample(task, 0)
    out = oracle(trial)
    # break fixation at step 0 (the fixation epoch) in every trial
    broken = out.at[:, 0].set(jnp.array([0.0, 10.0, 0.0]))
    assert score(task, broken, trial) == 1.0
    assert score(task, broken, trial, fixation="abort") == 0.0
    # a response during the stimulus epoch: ignored by NeuroGym, fails the strict rule
    early = out.at[:, 5].set(jnp.array([0.0, 10.0, 0.0]))
    assert score(task, early, trial, fixation="abort") == 1.0
    assert score(task, early, trial, fixation="strict") == 0.0
    # the choice in the decision epoch counts
    wrong = out[..., jnp.array([0, 2, 1])]
    assert score(task, wrong, trial) == 0.0 and score(task, wrong, trial, rule="last") == 0.0
    assert task.correct(out[:4], jax.tree_util.tree_map(lambda a: a[:4], trial)).shape == (4,)
    # ReadySetGo: a go at the start of production is outside the window; the label step is in it
    rsg = TASKS["ReadySetGo"]
    tr = sample(rsg, 0)
    start = np.asarray(tr.decision).argmax(1)
    early_go = jnp.zeros_like(tr.targets).at[..., 0].set(1.0)
    early_go = early_go.at[jnp.arange(B), start, 1].set(5.0)
    assert score(rsg, early_go, tr) == 0.0
    assert score(rsg, oracle(tr), tr) == 1.0


# ---------------------------------------------------------------- errors, registry, plot


def test_get_task_names():
    assert isinstance(tasks.get_task("PDM"), tasks.PerceptualDecisionMaking)
    assert isinstance(tasks.get_task("GoNogo-v0"), tasks.GoNoGo)
    assert tasks.get_task("perceptual_decision_making", dt=20).n_steps == 5 + 100 + 5
    assert tasks.get_task("rsg", gain=1.5).gain == 1.5
    assert set(tasks.TASKS) == {
        "PerceptualDecisionMaking", "ContextDecisionMaking", "IntervalDiscrimination",
        "DelayComparison", "MultiSensoryIntegration", "GoNoGo", "ReadySetGo", "FlipFlop",
        "Integrator", "AngularIntegration"}
    with pytest.raises(ValueError, match="unknown task 'Nope'.*PerceptualDecisionMaking"):
        tasks.get_task("Nope")
    with pytest.raises(ValueError, match="unknown task"):
        tasks.get_task(3)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, None])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        TASKS["PerceptualDecisionMaking"].sample(jr.key(0), batch_size)
    with pytest.raises(ValueError, match="batch_size"):
        TASKS["FlipFlop"].sample(jr.key(0), batch_size)


@pytest.mark.parametrize("kwargs, match", [
    ({"timing": {"stimulus": -100}}, "stimulus"),
    ({"timing": {"stim": 100}}, "unknown epoch"),
    ({"timing": {"decision": 50}}, "at least one step"),
    ({"timing": {"delay": ("uniform", (600, 300))}}, "low < high"),
    ({"timing": {"delay": "long"}}, "duration"),
    ({"timing": [100]}, "timing"),
    ({"dt": 0}, "dt"),
    ({"dt": float("nan")}, "dt"),
    ({"cohs": ()}, "cohs"),
    ({"cohs": (5, "x")}, "cohs"),
    ({"sigma": -1.0}, "sigma"),
    ({"version": "3"}, "version"),
    ({"dim_ring": 1}, "dim_ring"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tasks.PerceptualDecisionMaking(**kwargs)


def test_bad_options_other_tasks():
    with pytest.raises(ValueError, match="mean"):
        tasks.TruncExp(0, 300, 3000)
    with pytest.raises(ValueError, match="at least one value"):
        tasks.Choice(())
    with pytest.raises(ValueError, match="vpairs"):
        tasks.DelayComparison(vpairs=((10, 10),))
    with pytest.raises(ValueError, match="context"):
        tasks.ContextDecisionMaking(context="both")
    with pytest.raises(ValueError, match="`p`"):
        tasks.FlipFlop(p=1.5)
    with pytest.raises(ValueError, match="duration"):
        tasks.Integrator(duration=5.0)
    with pytest.raises(ValueError, match="gain"):
        tasks.ReadySetGo(gain=0.0)
    with pytest.raises(ValueError, match="integration"):
        tasks.AngularIntegration(timing={"integration": 0})
    task = TASKS["PerceptualDecisionMaking"]
    trial = sample(task)
    with pytest.raises(ValueError, match="outputs"):
        task.loss(trial.targets[..., :2], trial)
    with pytest.raises(ValueError, match="rule"):
        task.score(trial.targets, trial, rule="majority")
    with pytest.raises(ValueError, match="index"):
        task.plot(trial, index=B)


@pytest.mark.parametrize("name", ["ContextDecisionMaking", "ReadySetGo", "AngularIntegration"])
def test_plot_returns_axes(name):
    import matplotlib.axes

    task = TASKS[name]
    trial = sample(task)
    axes = task.plot(trial, outputs=oracle(trial), index=1)
    assert len(axes) == 2 and all(isinstance(a, matplotlib.axes.Axes) for a in axes)
    assert len(axes[0].lines) == task.n_in and len(axes[1].lines) == 2 * task.n_out


# ---------------------------------------------------------------- against NeuroGym itself


@pytest.fixture(scope="module")
def ngym():
    return pytest.importorskip("neurogym")


def _env(ngym, env_id, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = ngym.make(env_id, **kwargs).unwrapped
        env.reset(seed=0)
    return env


def test_neurogym_pdm(ngym):
    env = _env(ngym, "PerceptualDecisionMaking-v0", sigma=0.0)
    trial = numpy(sample(PDM_CLEAN, 0))
    for b in range(16):
        env.new_trial(ground_truth=trial.info["ground_truth"][b] - 1,
                      coh=trial.info["coherence"][b])
        assert np.allclose(env.ob, trial.inputs[b], atol=1e-6)
        assert np.array_equal(env.gt, trial.labels[b])
    noisy = _env(ngym, "PerceptualDecisionMaking-v0")
    resid = []
    for _ in range(100):
        tr = noisy.new_trial()
        mean = 0.5 + np.where(np.arange(2) == tr["ground_truth"], 1, -1) * tr["coh"] / 200
        resid.append(noisy.ob[1:21, 1:] - mean)
    assert abs(np.std(resid) - 0.1) < 0.01


def test_neurogym_cdm(ngym):
    env = _env(ngym, "ContextDecisionMaking-v0", use_expl_context=True, sigma=0.0,
               timing={"delay": 500})
    trial = numpy(sample(CDM_CLEAN, 0))
    for b in range(16):
        i = {k: v[b] for k, v in trial.info.items()}
        env.new_trial(ground_truth=i["ground_truth"], other_choice=i["other_choice"],
                      context=i["context"], coh_1=i["coherence_mod1"], coh_2=i["coherence_mod2"])
        assert np.allclose(env.ob, trial.inputs[b], atol=1e-6)
        assert np.array_equal(env.gt, trial.labels[b])
    env = _env(ngym, "ContextDecisionMaking-v0", use_expl_context=True)
    lengths = []
    for _ in range(1000):
        env.new_trial()
        lengths.append(len(env.ob))
    ours = numpy(sample(TASKS["ContextDecisionMaking"], 1)).valid.sum(1)
    assert min(lengths) >= 14 and max(lengths) <= 40
    assert abs(np.mean(lengths) - ours.mean()) < 0.7


def test_neurogym_fixed_layouts(ngym):
    cases = [("MultiSensoryIntegration-v0", tasks.MultiSensoryIntegration(sigma=0.0), True),
             ("DelayComparison-v0", tasks.DelayComparison(sigma=0.0), True),
             ("GoNogo-v0", TASKS["GoNoGo"], False)]
    for env_id, task, noisy in cases:
        env = _env(ngym, env_id, **({"sigma": 0.0} if noisy else {}))
        trial = numpy(sample(task, 0))
        for b in range(8):
            i = {k: v[b] for k, v in trial.info.items()}
            if env_id.startswith("Multi"):
                env.new_trial(ground_truth=i["ground_truth"] - 1, coh=i["coherence"],
                              coh_prop=i["proportion"])
            elif env_id.startswith("Delay"):
                pair = (i["f1"], i["f2"]) if i["ground_truth"] == 1 else (i["f2"], i["f1"])
                env.new_trial(ground_truth=i["ground_truth"], vpair=pair)
            else:
                env.new_trial(ground_truth=i["ground_truth"])
            assert np.allclose(env.ob, trial.inputs[b], atol=1e-6), env_id
            assert np.array_equal(env.gt, trial.labels[b]), env_id


def test_neurogym_timing_tasks(ngym):
    env = _env(ngym, "ReadySetGo-v0")
    trial = numpy(sample(TASKS["ReadySetGo"], 0))
    for _ in range(10):
        tr = env.new_trial()
        b = int(np.flatnonzero(trial.info["measure"] == tr["measure"])[0])
        n = int(trial.valid[b].sum())
        assert len(env.ob) == n
        assert np.array_equal(env.ob, trial.inputs[b, :n])
        assert np.array_equal(env.gt, trial.labels[b, :n])
    env = _env(ngym, "IntervalDiscrimination-v0")
    gts, lengths = [], []
    for _ in range(1000):
        gts.append(env.new_trial()["ground_truth"])
        lengths.append(len(env.ob))
    ours = numpy(sample(TASKS["IntervalDiscrimination"], 1))
    assert abs(np.mean(np.array(gts) == 2) - np.mean(ours.info["ground_truth"] == 2)) < 0.07
    assert abs(np.mean(lengths) - ours.valid.sum(1).mean()) < 0.5
