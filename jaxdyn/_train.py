"""Train one RNN, or many at once, on a cognitive task.

`train(model, task, key)` trains one network. Give it a stacked batch of models (built with
`eqx.filter_vmap` from many keys) and a batch of keys, and it trains all of them in one compiled
program, each network on its own stream of trials, each with its own hyperparameters if wanted.
Every hyperparameter a user sweeps (learning rate, clipping, noise, regularisation, decision
weight) is a traced value: a new value, or one value per network, reuses the compiled program.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from ._checkpoint import checkpoint_path, fingerprint, load_checkpoint, save_checkpoint
from ._progress import as_meter
from ._solution import RESULTS
from ._validate import check_int, check_nonnegative, check_positive, is_concrete

_UNSET: Any = type("Default", (), {"__repr__": lambda self: "<default>"})()
DEFAULTS = {"steps": 1000, "batch_size": 32, "learning_rate": 1e-2, "grad_clip": 1.0,
            "lr_decay": "cosine"}
_DECAYS = ("cosine", None)


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the last good parameters were kept (and checkpointed)."""


class History(eqx.Module):
    """What happened during training.

    **Fields:**

    - `loss`, `accuracy`: on each step's training batch, shape `[steps]`, or
      `[n_models, steps]` for a batch of networks (NaN after a network diverged).
    - `result`: per network, `RESULTS.successful` or `RESULTS.diverged` (the network's loss
      became non-finite; it kept its last good parameters and stopped training).
    - `diverged_at`: per network, the step whose loss was non-finite, or −1.
    - `steps`: the number of steps run.
    """

    loss: Float[Array, "... steps"]
    accuracy: Float[Array, "... steps"]
    result: RESULTS
    diverged_at: Int[Array, " *models"]
    steps: int = eqx.field(static=True)

    def plot(self, ax=None, smooth: int = 10):
        """Loss and accuracy against the step (one line per network)."""
        from .plot import plot_history

        return plot_history(self, ax=ax, smooth=smooth)


class Hyperparameters(eqx.Module):
    """The traced hyperparameters of a run, scalars or one value per network (see `train`)."""

    learning_rate: Array
    grad_clip: Array
    decay_steps: Array
    noise_std: Array
    activity_reg: Array
    weight_reg: Array
    decision_weight: Array


class _Config(eqx.Module):
    """Everything static about a run: one compiled program per distinct config."""

    task: Any = eqx.field(static=True)
    optimizer: Any = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    batched: bool = eqx.field(static=True)
    default_optimizer: bool = eqx.field(static=True)


class _State(eqx.Module):
    params: Any
    opt_state: Any
    alive: Array
    hyper: Hyperparameters


def trainable(model: Any) -> Any:
    """The default filter of parameters to train: every floating array except the model's
    `fixed_fields` (a CTRNN's time constants `tau` and `dt`)."""
    mask = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    for name in model.fixed_fields:
        mask = eqx.tree_at(lambda m, n=name: getattr(m, n), mask, replace=False)
    return mask


def check_compatible(model: Any, task: Any) -> None:
    """Raise a `ValueError` unless `model` is a jaxdyn RNN whose sizes (and, for a CTRNN, Euler
    step) match `task`."""
    from .rnn import CTRNN, AbstractRNN

    if not isinstance(model, AbstractRNN):
        raise ValueError(f"`model` must be a jaxdyn RNN (jd.rnn.CTRNN, GRU, LSTM, VanillaRNN); "
                         f"got {type(model).__name__}.")
    if model.n_in != task.n_in:
        raise ValueError(f"`model` takes {model.n_in} inputs but the task "
                         f"{type(task).__name__} provides {task.n_in}; build the model with "
                         f"n_in={task.n_in}.")
    if isinstance(model, CTRNN) and is_concrete(model.dt) and not np.allclose(
            np.asarray(model.dt), task.dt):
        raise ValueError(f"`model` steps dt={np.unique(np.asarray(model.dt)).tolist()} ms but the "
                         f"task {type(task).__name__} has dt={task.dt} ms; build the CTRNN with "
                         f"dt={task.dt} (and a time constant tau > dt) so its Euler step matches "
                         f"the task's time step.")
    if model.n_out != task.n_out:
        raise ValueError(f"`model` has {model.n_out} outputs but the task "
                         f"{type(task).__name__} expects {task.n_out}; build the model with "
                         f"n_out={task.n_out}.")


def _key_batch(key: Any) -> int | None:
    """Number of networks a key batch stands for, or None for a single key."""
    key = jnp.asarray(key) if not hasattr(key, "dtype") else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return None if key.ndim == 0 else int(key.shape[0])
    if key.shape == (2,):
        return None
    if key.ndim == 2 and key.shape[1] == 2:
        return int(key.shape[0])
    raise ValueError(f"`key` must be a PRNG key or a batch of keys; got shape {key.shape}.")


def run_batch(model, inputs, key=None, noise_std=0.0):
    """`model.run` from the zero state over a batch of input sequences `[B, T, n_in]`, each
    trial with its own noise key (no noise without a key)."""
    x0 = model.init_state()
    if key is None:
        return jax.vmap(lambda u: model.run(x0, u))(inputs)
    keys = jr.split(key, inputs.shape[0])
    return jax.vmap(lambda u, k: model.run(x0, u, key=k, noise_std=noise_std))(inputs, keys)


def _loss_and_metrics(params, static, trial, key, hyper: Hyperparameters, task):
    """The task's loss (decision steps weighted by `decision_weight`) plus the activity and
    weight penalties, and the task's score."""
    model = eqx.combine(params, static)
    # The hyperparameters in the model's dtype (they are arrays of the default float dtype).
    dt = model.W_out.dtype
    mask = trial.mask.astype(dt) * jnp.where(trial.decision,
                                              hyper.decision_weight.astype(dt), 1.0)
    trial = eqx.tree_at(lambda t: (t.mask, t.inputs, t.targets), trial,
                        (mask, trial.inputs.astype(dt), trial.targets.astype(dt)))
    states, outputs = run_batch(model, trial.inputs, key, hyper.noise_std.astype(dt))
    rates = jax.vmap(jax.vmap(model.rates))(states)
    loss = (task.loss(outputs, trial) + hyper.activity_reg.astype(dt) * jnp.mean(rates**2)
            + hyper.weight_reg.astype(dt) * jnp.sum(model.recurrent_weights**2))
    return loss, task.score(outputs, trial)


def _cosine_decay(decay_steps) -> optax.GradientTransformation:
    """Scale updates by `½(1 + cos(π·min(k, K)/K))` at step k of K = `decay_steps` (1 when K is
    infinite): the learning rate falls from its value to 0 over the run."""

    def init(params):
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        k = state.count.astype(decay_steps.dtype)
        factor = 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.minimum(k, decay_steps) / decay_steps))
        factor = jnp.where(jnp.isfinite(decay_steps), factor, 1.0)
        updates = jax.tree_util.tree_map(lambda u: (u * factor).astype(u.dtype), updates)
        return updates, optax.ScaleByScheduleState(count=state.count + 1)

    return optax.GradientTransformation(init, update)


def _like_params(updates, params):
    """Updates in the dtype of their parameters (the traced hyperparameters may be wider)."""
    return jax.tree_util.tree_map(lambda u, p: u.astype(p.dtype), updates, params)


@functools.cache
def _default_optimizer() -> optax.GradientTransformation:
    """Global-norm clipping, Adam, then a cosine decay of the learning rate over the run, with
    the learning rate, the clipping threshold and the decay length in the optimiser state (so
    all three are traced, per network, and changeable on resume); no clipping is a threshold
    of infinity, no decay a length of infinity. Built once, so every run shares compiled
    programs."""

    def build(learning_rate, max_norm, decay_steps):
        return optax.chain(optax.clip_by_global_norm(max_norm), optax.scale_by_adam(),
                           _cosine_decay(decay_steps), optax.scale(-learning_rate),
                           optax.stateless(_like_params))

    return optax.inject_hyperparams(build)(learning_rate=0.0, max_norm=jnp.inf,
                                           decay_steps=jnp.inf)


def _set_hyperparams(opt_state, hyper: Hyperparameters):
    """Put the learning rate, clipping threshold and decay length into a default optimiser's
    state."""
    hp = dict(opt_state.hyperparams)
    for name, value in (("learning_rate", hyper.learning_rate), ("max_norm", hyper.grad_clip),
                        ("decay_steps", hyper.decay_steps)):
        hp[name] = value.astype(hp[name].dtype)
    return opt_state._replace(hyperparams=hp)


def _step(state: _State, static, key, step, cfg: _Config):
    trial = cfg.task.sample(jr.fold_in(key, step), cfg.batch_size)
    grad_fn = eqx.filter_value_and_grad(_loss_and_metrics, has_aux=True)
    (loss, acc), grads = grad_fn(state.params, static, trial, jr.fold_in(key, -1 - step),
                                 state.hyper, cfg.task)
    # optax mixes Python floats and int32 step counts (Adam's bias correction), which a user's
    # strict dtype promotion would refuse; its promotion rules are its own business.
    with jax.numpy_dtype_promotion("standard"):
        updates, new_opt = cfg.optimizer.update(grads, state.opt_state, state.params)
    new_params = eqx.apply_updates(state.params, updates)
    # From the first non-finite loss on, a network keeps its last good parameters.
    alive = state.alive & jnp.isfinite(loss)
    keep = lambda new, old: jnp.where(alive, new, old)  # noqa: E731
    state = _State(params=jax.tree_util.tree_map(keep, new_params, state.params),
                   opt_state=jax.tree_util.tree_map(keep, new_opt, state.opt_state),
                   alive=alive, hyper=state.hyper)
    return state, jnp.where(state.alive, loss, jnp.nan), jnp.where(state.alive, acc, jnp.nan)


@eqx.filter_jit
def _run_chunk(state: _State, static, key, start, length: int, cfg: _Config):
    step = _step
    if cfg.batched:
        step = eqx.filter_vmap(_step, in_axes=(eqx.if_array(0), None, 0, None, None))

    def body(s, k):
        s, loss, acc = step(s, static, key, k, cfg)
        return s, (loss, acc)

    state, (loss, acc) = jax.lax.scan(body, state, start + jnp.arange(length))
    return state, loss, acc


def _hyperparameters(n_models, **values) -> Hyperparameters:
    """Check each hyperparameter (a scalar, or one value per network) and make it an array."""
    dtype = jnp.result_type(float)
    out = {}
    for name, value in values.items():
        a = jnp.asarray(value, dtype)
        if a.ndim > (0 if n_models is None else 1) or (a.ndim == 1 and a.shape[0] != n_models):
            raise ValueError(f"`{name}` must be a scalar or have shape ({n_models},) (one per "
                             f"network); got shape {a.shape}.")
        out[name] = a if n_models is None else jnp.broadcast_to(a, (n_models,))
    return Hyperparameters(**out)


def _prepare(model, task, key, *, steps, batch_size, learning_rate, optimizer, grad_clip,
             lr_decay, noise_std, activity_reg, weight_reg, decision_weight, log_every):
    """Validate every argument before anything is traced; return the config and the
    hyperparameters."""
    if isinstance(task, str):
        from .tasks import get_task

        task = get_task(task)
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    check_int(log_every, "log_every")
    n_models = _key_batch(key)
    check_compatible(model, task)
    if n_models is not None:
        leading = {x.shape[0] if x.ndim else None
                   for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))}
        if leading != {n_models}:
            raise ValueError(f"`key` is a batch of {n_models} keys, so `model` must be a stack "
                             f"of {n_models} models (eqx.filter_vmap over a constructor); its "
                             f"arrays have leading sizes {sorted(s for s in leading if s)}.")
    if optimizer is not None:
        given = [n for n, v in (("learning_rate", learning_rate), ("grad_clip", grad_clip),
                                ("lr_decay", lr_decay)) if v is not _UNSET]
        if given:
            raise ValueError(f"`optimizer` replaces the default clip → Adam, so "
                             f"{' and '.join(f'`{n}`' for n in given)} would be ignored; set "
                             f"them inside the optax optimizer instead.")
        if not isinstance(optimizer, optax.GradientTransformation):
            raise ValueError(f"`optimizer` must be an optax GradientTransformation; got "
                             f"{type(optimizer).__name__}.")
    learning_rate = DEFAULTS["learning_rate"] if learning_rate is _UNSET else learning_rate
    grad_clip = DEFAULTS["grad_clip"] if grad_clip is _UNSET else grad_clip
    lr_decay = DEFAULTS["lr_decay"] if lr_decay is _UNSET else lr_decay
    if lr_decay not in _DECAYS:
        raise ValueError(f"`lr_decay` must be one of {_DECAYS}; got {lr_decay!r}.")
    check_positive(learning_rate, "learning_rate")
    check_positive(grad_clip, "grad_clip", allow_none=True)
    for value, name in ((noise_std, "noise_std"), (activity_reg, "activity_reg"),
                        (weight_reg, "weight_reg"), (decision_weight, "decision_weight")):
        check_nonnegative(value, name)
    hyper = _hyperparameters(
        n_models, learning_rate=learning_rate,
        grad_clip=jnp.inf if grad_clip is None else grad_clip,
        decay_steps=steps if lr_decay == "cosine" else jnp.inf, noise_std=noise_std,
        activity_reg=activity_reg, weight_reg=weight_reg, decision_weight=decision_weight)
    cfg = _Config(task=task, optimizer=_default_optimizer() if optimizer is None else optimizer,
                  batch_size=batch_size, batched=n_models is not None,
                  default_optimizer=optimizer is None)
    return task, steps, n_models, hyper, cfg


def _initial_state(params, hyper: Hyperparameters, cfg: _Config, n_models) -> _State:
    def init(p, h):
        opt_state = cfg.optimizer.init(p)
        return _set_hyperparams(opt_state, h) if cfg.default_optimizer else opt_state

    if n_models is None:
        opt_state = init(params, hyper)
    else:
        opt_state = eqx.filter_vmap(init, in_axes=(eqx.if_array(0), 0))(params, hyper)
    alive = jnp.ones(() if n_models is None else (n_models,), bool)
    return _State(params=params, opt_state=opt_state, alive=alive, hyper=hyper)


def _resume(path, state: _State, run, steps, hist, cfg: _Config, n_models):
    """Load a checkpoint of the same run into `state` and `hist`; the hyperparameters of this
    call (learning rate, clipping, noise, penalties) replace the checkpoint's."""
    like = (state.params, state.opt_state, state.alive)
    (params, opt_state, alive), done, (loss, acc) = load_checkpoint(path, like, run)
    if done > steps:
        raise ValueError(f"the checkpoint {str(path)!r} holds {done} steps of training, more "
                         f"than `steps={steps}`; pass steps >= {done} to continue it, or another "
                         f"`checkpoint_dir`.")
    if cfg.default_optimizer:
        setter = _set_hyperparams if n_models is None else eqx.filter_vmap(
            _set_hyperparams, in_axes=(eqx.if_array(0), 0))
        opt_state = setter(opt_state, state.hyper)
    hist[0][..., :done] = loss[..., :done]
    hist[1][..., :done] = acc[..., :done]
    return _State(params=params, opt_state=opt_state, alive=alive, hyper=state.hyper), done


def train(
    model: Any,
    task: Any,
    key: PRNGKeyArray,
    *,
    steps: int = DEFAULTS["steps"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: ArrayLike = _UNSET,
    optimizer: optax.GradientTransformation | None = None,
    grad_clip: ArrayLike | None = _UNSET,
    lr_decay: str | None = _UNSET,
    noise_std: ArrayLike = 0.0,
    activity_reg: ArrayLike = 0.0,
    weight_reg: ArrayLike = 0.0,
    decision_weight: ArrayLike = 1.0,
    filter_spec: Any = None,
    log_every: int = 50,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Any = True,
) -> tuple[Any, History]:
    """Train an RNN (or a stacked batch of RNNs) on a task with an optax optimiser.

    Each step samples a fresh batch of trials from `task` (network `i` uses the stream of
    `key[i]`), runs the network with `model.run` (its discrete update: the Euler map for a
    CTRNN), and takes a gradient step on the task's masked loss (cross-entropy on the choice
    labels, or MSE on continuous targets) plus optional penalties. Steps run inside
    `lax.scan`, `log_every` at a time; the progress bar shows loss and accuracy in between.

    The defaults (Adam at 1e-2 with a cosine decay over `steps`, clipping at 1, 1,000 steps of
    32 trials) train a GRU-64 on PerceptualDecisionMaking to ≈ 0.89 (the ceiling set by its
    coherence-0 trials) in about a second after compiling; `jaxdyn.tasks.recipe` gives tested
    settings per task and architecture. At Adam 1e-3 on separate, identically timed trials
    from a zero state, networks tend to learn a clock (counting steps from trial onset) and
    learn the choice slowly; the larger rate avoids that.

    Every numeric hyperparameter below is traced: a new value does not recompile, and for a
    stack of networks each may be a scalar or an array of one value per network. In a stack,
    a network whose loss becomes non-finite keeps its last good parameters, stops training
    and is reported in `History` (`result`, `diverged_at`) while the others train on.

    **Arguments:**

    - `model`: a jaxdyn RNN, or a stacked batch of them (`eqx.filter_vmap` over a
      constructor) — then `key` must be a batch of as many keys.
    - `task`: a `jaxdyn.tasks` task (or its name, e.g. `"PerceptualDecisionMaking"`).
    - `key`: a PRNG key, or a batch of keys (one per network).
    - `steps`, `batch_size`: gradient steps and trials per step.
    - `learning_rate`: Adam's learning rate (default 1e-2).
    - `optimizer`: an optax transformation replacing the default
      `clip_by_global_norm(grad_clip) → adam(learning_rate)` with its decay; then
      `learning_rate`, `grad_clip` and `lr_decay` may not be given.
    - `grad_clip`: the global-norm clipping threshold of the default optimiser (default 1;
      `None`: off).
    - `lr_decay`: `"cosine"` (default: the learning rate falls as `½(1 + cos(πk/steps))` to 0
      at the last step; resumed runs decay over the `steps` of the resuming call) or `None`
      (constant). For short runs (a few hundred steps) a constant rate learns more.
    - `noise_std`: private noise of the network during training (see `AbstractRNN.run`).
    - `activity_reg`: weight of the mean squared rate; `weight_reg`: of the sum of squared
      recurrent weights (`model.recurrent_weights`).
    - `decision_weight`: loss weight of the decision-epoch steps relative to the others (1 =
      NeuroGym's plain cross-entropy over all steps).
    - `filter_spec`: which leaves to train (default `trainable(model)`: all floating arrays
      but the model's `fixed_fields`, a CTRNN's `tau` and `dt`).
    - `log_every`: steps per compiled chunk between progress updates and checkpoints.
    - `checkpoint_dir`: if given, a checkpoint is written atomically there after every chunk,
      and a call of the same run (same initial model, task, key and batch size) resumes from
      it; the hyperparameters of the resuming call apply from then on.
    - `progress`: show a progress bar (`True`), or a progress meter.

    **Returns:** `(trained_model, history)`.

    **Raises:** `ValueError` for sizes that do not match the task, `batch_size`/`steps` < 1,
    keys that do not match the model batch, a negative or non-finite hyperparameter, an
    `optimizer` given with `learning_rate` or `grad_clip`, or a checkpoint of another run (or
    with more steps than `steps`); `TrainingDiverged` when a single network's loss (or every
    network's of a stack) becomes non-finite (the last good parameters are kept in the
    checkpoint).
    """
    task, steps, n_models, hyper, cfg = _prepare(
        model, task, key, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
        optimizer=optimizer, grad_clip=grad_clip, lr_decay=lr_decay, noise_std=noise_std,
        activity_reg=activity_reg, weight_reg=weight_reg, decision_weight=decision_weight,
        log_every=log_every)
    meter = as_meter(progress, "train", "step")
    params, static = eqx.partition(model, trainable(model) if filter_spec is None
                                   else filter_spec)
    state = _initial_state(params, hyper, cfg, n_models)
    shape = (steps,) if n_models is None else (n_models, steps)
    hist = (np.full(shape, np.nan), np.full(shape, np.nan))
    done, path, run = 0, None, None
    if checkpoint_dir is not None:
        path = checkpoint_path(checkpoint_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        run = fingerprint(model, task, key, batch_size)
        if path.exists():
            state, done = _resume(path, state, run, steps, hist, cfg, n_models)
    state, diverged_at = _loop(state, static, key, cfg, done, steps, log_every, hist, meter,
                               path, run)
    model = eqx.combine(state.params, static)
    diverged_at = jnp.asarray(diverged_at)
    result = jax.vmap(lambda d: RESULTS.where(d < 0, RESULTS.successful, RESULTS.diverged))(
        jnp.atleast_1d(diverged_at))
    if n_models is None:
        result = jax.tree_util.tree_map(lambda a: a[0], result)
    return model, History(loss=jnp.asarray(hist[0]), accuracy=jnp.asarray(hist[1]),
                          result=result, diverged_at=diverged_at, steps=steps)


def _loop(state, static, key, cfg, done, steps, log_every, hist, meter, path, run):
    """Run chunks of `log_every` steps from `done` to `steps`, recording the history and
    writing checkpoints; stop a network at its first non-finite loss."""
    hist_loss, hist_acc = hist
    batched = cfg.batched
    diverged_at = np.where(np.asarray(state.alive), -1, 0)  # resumed dead networks: unknown
    if batched:
        first_nan = np.argmax(np.isnan(hist_loss[:, :done]), axis=1) if done else None
        if first_nan is not None:
            diverged_at = np.where(np.asarray(state.alive), -1, first_nan)
    bar = meter.open(steps, done)
    try:
        while done < steps:
            length = min(log_every, steps - done)
            state, loss, acc = _run_chunk(state, static, key, jnp.asarray(done), length, cfg)
            loss, acc = np.asarray(loss), np.asarray(acc)
            if batched:
                loss, acc = loss.T, acc.T
            hist_loss[..., done:done + length] = loss
            hist_acc[..., done:done + length] = acc
            dead = ~np.isfinite(loss)
            newly = dead.any(axis=-1) & (np.asarray(diverged_at) < 0)
            first = done + np.argmax(dead, axis=-1)
            diverged_at = np.where(newly, first, diverged_at)
            if not batched and newly:
                # A single network stops at its last good step.
                done = int(first)
                hist_loss[done:], hist_acc[done:] = np.nan, np.nan
                _checkpoint(path, state, done, run, hist)
                raise TrainingDiverged(
                    f"the loss became non-finite at step {done}; training stopped with the "
                    f"last good parameters" + (f" (saved in {path})" if path else "")
                    + ". Lower the learning rate, keep grad_clip, or add weight_reg.")
            done += length
            _checkpoint(path, state, done, run, hist)
            if batched and not np.asarray(state.alive).any():
                raise TrainingDiverged(
                    f"the loss of every network became non-finite (at steps "
                    f"{np.asarray(diverged_at).tolist()}); training stopped with the last good "
                    f"parameters" + (f" (saved in {path})" if path else "")
                    + ". Lower the learning rates, keep grad_clip, or add weight_reg.")
            bar.update(done, loss=f"{np.nanmean(loss[..., -1]):.4f}",
                       acc=f"{np.nanmean(acc[..., -1]):.3f}")
    finally:
        bar.close()
    return state, diverged_at


def _checkpoint(path, state: _State, done, run, hist) -> None:
    if path is not None:
        save_checkpoint(path, (state.params, state.opt_state, state.alive), done, run, hist)


@eqx.filter_jit
def _evaluate(model, task, key, batch_size: int):
    trial = task.sample(key, batch_size)
    _, outputs = run_batch(model, trial.inputs)
    return task.score(outputs, trial)


def evaluate(model: Any, task: Any, key: PRNGKeyArray, batch_size: int = 256) -> Array:
    """Accuracy of a trained network on a fresh batch of `batch_size` trials (the task's
    `score`: NeuroGym's decision-epoch accuracy for choice tasks, R² for regression tasks).
    `eqx.filter_vmap` over stacked models and keys evaluates many networks at once.

    **Raises:** `ValueError` when the model does not fit the task (sizes, a CTRNN's `dt`) or
    `batch_size` < 1.
    """
    if isinstance(task, str):
        from .tasks import get_task

        task = get_task(task)
    check_compatible(model, task)
    return _evaluate(model, task, key, check_int(batch_size, "batch_size"))
