"""Train one RNN, or many at once, on a cognitive task.

`train(model, task, key)` trains one network. Give it a stacked batch of models (built with
`eqx.filter_vmap` from many keys) and a batch of keys, and it trains all of them in one compiled
program, each network on its own stream of trials, optionally with its own learning rate.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._checkpoint import load_checkpoint, save_checkpoint
from ._validate import check_int


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the last good parameters were kept (and checkpointed)."""


class History(eqx.Module):
    """What happened during training.

    **Fields:** `loss` and `accuracy` (on each step's training batch), shape `[steps]`, or
    `[n_models, steps]` for a batch of networks; `steps`, the number of steps run.
    """

    loss: Float[Array, "... steps"]
    accuracy: Float[Array, "... steps"]
    steps: int = eqx.field(static=True)

    def plot(self, ax=None, smooth: int = 10):
        """Loss and accuracy against the step (one line per network)."""
        from .plot import plot_history

        return plot_history(self, ax=ax, smooth=smooth)


def trainable(model: Any) -> Any:
    """The default filter of parameters to train: every floating array except a CTRNN's
    time constants (`tau`, `dt`), which are fixed properties of the model."""
    mask = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    for name in ("tau", "dt"):
        if isinstance(getattr(model, name, None), jax.Array):
            mask = eqx.tree_at(lambda m, n=name: getattr(m, n), mask, replace=False)
    return mask


def _check_compatible(model: Any, task: Any) -> None:
    for attr in ("n_in", "n_out", "run"):
        if not hasattr(model, attr):
            raise ValueError(f"`model` must be a jaxdyn RNN (with n_in, n_out and run); got "
                             f"{type(model).__name__}.")
    if model.n_in != task.n_in:
        raise ValueError(f"`model` takes {model.n_in} inputs but the task "
                         f"{type(task).__name__} provides {task.n_in}; build the model with "
                         f"n_in={task.n_in}.")
    model_dt = getattr(model, "dt", None)
    if isinstance(model_dt, jax.Array) and not np.allclose(np.asarray(model_dt), task.dt):
        raise ValueError(f"`model` steps dt={np.unique(np.asarray(model_dt)).tolist()} ms but the "
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


def _run_batch(model, inputs, key=None, noise_std=0.0):
    """`model.run` from the zero state over a batch of input sequences `[B, T, n_in]`, each
    trial with its own noise key."""
    x0 = model.init_state()
    if key is None:
        return jax.vmap(lambda u: model.run(x0, u))(inputs)
    keys = jr.split(key, inputs.shape[0])
    return jax.vmap(lambda u, k: model.run(x0, u, key=k, noise_std=noise_std))(inputs, keys)


def _loss_and_metrics(params, static, trial, key, cfg: _Config):
    model = eqx.combine(params, static)
    task = cfg.task
    if cfg.decision_weight != 1.0:
        mask = trial.mask * jnp.where(trial.decision, cfg.decision_weight, 1.0)
        trial = eqx.tree_at(lambda t: t.mask, trial, mask.astype(trial.mask.dtype))
    states, outputs = _run_batch(model, trial.inputs, key, cfg.noise_std)
    loss = task.loss(outputs, trial)
    if cfg.activity_reg:
        rates = jax.vmap(jax.vmap(model.rates))(states)
        loss = loss + cfg.activity_reg * jnp.mean(rates**2)
    if cfg.weight_reg:
        loss = loss + cfg.weight_reg * sum(jnp.sum(w**2) for w in _recurrent_weights(model))
    return loss, task.score(outputs, trial)


def _recurrent_weights(model):
    return [getattr(model, n) for n in ("W", "W_hh") if hasattr(model, n)]


@functools.cache
def _default_optimizer(grad_clip: float | None) -> optax.GradientTransformation:
    """Adam after global-norm clipping, with the learning rate in the optimiser state (so it can
    differ per network and a second call reuses the compiled program). Cached per `grad_clip`."""

    def build(learning_rate):
        adam = optax.adam(learning_rate)
        return optax.chain(optax.clip_by_global_norm(grad_clip), adam) if grad_clip else adam

    return optax.inject_hyperparams(build)(learning_rate=0.0)


class _Config(eqx.Module):
    """Everything static about a training run: one compiled program per distinct config."""

    task: Any = eqx.field(static=True)
    optimizer: Any = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    noise_std: float = eqx.field(static=True)
    activity_reg: float = eqx.field(static=True)
    weight_reg: float = eqx.field(static=True)
    decision_weight: float = eqx.field(static=True)
    batched: bool = eqx.field(static=True)


def _step(params, opt_state, alive, static, key, step, cfg: _Config):
    trial = cfg.task.sample(jr.fold_in(key, step), cfg.batch_size)
    grad_fn = eqx.filter_value_and_grad(_loss_and_metrics, has_aux=True)
    (loss, acc), grads = grad_fn(params, static, trial, jr.fold_in(key, -1 - step), cfg)
    updates, new_opt = cfg.optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    # From the first non-finite loss on, a network keeps its last good parameters for the rest
    # of the chunk; the host then stops the run and reports the step.
    alive = alive & jnp.isfinite(loss)
    keep = lambda new, old: jnp.where(alive, new, old)  # noqa: E731
    params = jax.tree_util.tree_map(keep, new_params, params)
    opt_state = jax.tree_util.tree_map(keep, new_opt, opt_state)
    return params, opt_state, alive, loss, acc


@eqx.filter_jit
def _run_chunk(params, opt_state, static, key, start, length: int, cfg: _Config):
    step = _step
    if cfg.batched:
        step = eqx.filter_vmap(_step, in_axes=(eqx.if_array(0), eqx.if_array(0), 0,
                                               eqx.if_array(0), 0, None, None))
    alive = jnp.ones(key.shape[:1] if cfg.batched else (), dtype=bool)

    def body(carry, k):
        p, s, a = carry
        p, s, a, loss, acc = step(p, s, a, static, key, k, cfg)
        return (p, s, a), (loss, acc)

    (params, opt_state, _), (loss, acc) = jax.lax.scan(body, (params, opt_state, alive),
                                                       start + jnp.arange(length))
    return params, opt_state, loss, acc


def train(
    model: Any,
    task: Any,
    key: PRNGKeyArray,
    *,
    steps: int = 1000,
    batch_size: int = 32,
    learning_rate: ArrayLike = 1e-3,
    optimizer: optax.GradientTransformation | None = None,
    grad_clip: float | None = 1.0,
    noise_std: float = 0.0,
    activity_reg: float = 0.0,
    weight_reg: float = 0.0,
    decision_weight: float = 1.0,
    filter_spec: Any = None,
    log_every: int = 50,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[Any, History]:
    """Train an RNN (or a stacked batch of RNNs) on a task with an optax optimiser.

    Each step samples a fresh batch of trials from `task` (network `i` uses the stream of
    `key[i]`), runs the network with `model.run` (its discrete update: the Euler map for a
    CTRNN), and takes a gradient step on the task's masked loss (cross-entropy on the choice
    labels, or MSE on continuous targets) plus optional regularisers. Steps run inside
    `lax.scan`, `log_every` at a time; the progress bar shows loss and accuracy in between.

    **Arguments:**

    - `model`: a jaxdyn RNN, or a stacked batch of them (`eqx.filter_vmap` over a
      constructor) — then `key` must be a batch of as many keys.
    - `task`: a `jaxdyn.tasks` task (or its name, e.g. `"PerceptualDecisionMaking"`).
    - `key`: a PRNG key, or a batch of keys (one per network).
    - `steps`, `batch_size`: gradient steps and trials per step.
    - `learning_rate`: Adam's learning rate; for a batch of networks, a scalar or one value
      per network (an array of shape `[n_models]`).
    - `optimizer`: an optax transformation replacing the default
      `clip_by_global_norm(grad_clip) → adam(learning_rate)`.
    - `grad_clip`: global-norm gradient clipping of the default optimiser (`None`: off).
    - `noise_std`: private noise of the network during training (see `AbstractRNN.run`).
    - `activity_reg`: weight of the mean squared rate; `weight_reg`: of the sum of squared
      recurrent weights.
    - `decision_weight`: loss weight of the decision-epoch steps relative to the others (1 =
      NeuroGym's plain cross-entropy over all steps). Tasks whose decision is one step of many
      (ContextDecisionMaking) learn to answer much faster with a weight of 5–20, as NeuroGym's
      examples do with class weights.
    - `filter_spec`: which leaves to train (default `trainable(model)`: all floating arrays
      but a CTRNN's `tau` and `dt`).
    - `log_every`: steps per compiled chunk between progress updates and checkpoints.
    - `checkpoint_dir`: if given, a checkpoint is written atomically there after every chunk,
      and a run that finds one resumes from it.
    - `progress`: show a progress bar.

    **Returns:** `(trained_model, history)`.

    **Raises:** `ValueError` for sizes that do not match the task, `batch_size`/`steps` < 1 or
    keys that do not match the model batch; `TrainingDiverged` if the loss becomes NaN (the
    last good parameters are kept in the checkpoint).
    """
    if isinstance(task, str):
        from .tasks import get_task

        task = get_task(task)
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    log_every = check_int(log_every, "log_every")
    n_models = _key_batch(key)
    _check_compatible(model, task)
    if n_models is not None:
        leading = {x.shape[0] if x.ndim else None
                   for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))}
        if leading != {n_models}:
            raise ValueError(f"`key` is a batch of {n_models} keys, so `model` must be a stack "
                             f"of {n_models} models (eqx.filter_vmap over a constructor); its "
                             f"arrays have leading sizes {sorted(s for s in leading if s)}.")
    lr = jnp.asarray(learning_rate, dtype=jnp.result_type(float))
    if lr.ndim > (0 if n_models is None else 1) or (lr.ndim == 1 and lr.shape[0] != n_models):
        raise ValueError(f"`learning_rate` must be a scalar or have shape ({n_models},) (one per "
                         f"network); got shape {lr.shape}.")
    default_opt = optimizer is None
    if default_opt:
        optimizer = _default_optimizer(grad_clip)
    if filter_spec is None:
        filter_spec = trainable(model)
    params, static = eqx.partition(model, filter_spec)

    def init_opt(p, lr_i):
        state = optimizer.init(p)
        if default_opt:
            state.hyperparams["learning_rate"] = jnp.asarray(lr_i, dtype=lr.dtype)
        return state

    if n_models is None:
        opt_state = init_opt(params, lr)
    else:
        lrs = jnp.broadcast_to(lr, (n_models,))
        opt_state = eqx.filter_vmap(init_opt, in_axes=(eqx.if_array(0), 0))(params, lrs)

    cfg = _Config(task=task, optimizer=optimizer, batch_size=batch_size,
                  noise_std=float(noise_std), activity_reg=float(activity_reg),
                  weight_reg=float(weight_reg), decision_weight=float(decision_weight),
                  batched=n_models is not None)

    shape = (steps,) if n_models is None else (n_models, steps)
    hist_loss = np.full(shape, np.nan)
    hist_acc = np.full(shape, np.nan)
    done = 0
    ckpt = Path(checkpoint_dir) / "checkpoint.eqx" if checkpoint_dir is not None else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if ckpt.exists():
            (params, opt_state), done, (old_loss, old_acc) = load_checkpoint(
                ckpt, (params, opt_state))
            done = min(done, steps)
            hist_loss[..., :done] = old_loss[..., :done]
            hist_acc[..., :done] = old_acc[..., :done]

    bar = _progress_bar(steps, done, progress)
    try:
        while done < steps:
            length = min(log_every, steps - done)
            new_params, new_opt, loss, acc = _run_chunk(params, opt_state, static, key,
                                                        jnp.asarray(done), length, cfg)
            loss, acc = np.asarray(loss), np.asarray(acc)
            if n_models is not None:
                loss, acc = loss.T, acc.T
            bad = ~np.isfinite(loss)
            first_bad = int(np.argmax(bad.any(axis=0) if bad.ndim == 2 else bad)) if bad.any() \
                else None
            stop = first_bad if first_bad is not None else length
            hist_loss[..., done:done + stop] = loss[..., :stop]
            hist_acc[..., done:done + stop] = acc[..., :stop]
            params, opt_state = new_params, new_opt
            if first_bad is not None:
                done += first_bad
                if ckpt is not None:
                    save_checkpoint(ckpt, (params, opt_state), done, (hist_loss, hist_acc))
                where = f" in network(s) {np.nonzero(bad.any(axis=1))[0].tolist()}" \
                    if bad.ndim == 2 else ""
                raise TrainingDiverged(
                    f"the loss became non-finite at step {done}{where}; training stopped with "
                    f"the last good parameters"
                    + (f" (saved in {ckpt})" if ckpt is not None else "")
                    + ". Lower the learning rate, enable grad_clip, or add weight_reg.")
            done += length
            if ckpt is not None:
                save_checkpoint(ckpt, (params, opt_state), done, (hist_loss, hist_acc))
            if bar is not None:
                bar.update(length)
                bar.set_postfix(loss=f"{np.nanmean(loss[..., -1]):.4f}",
                                acc=f"{np.nanmean(acc[..., -1]):.3f}")
    finally:
        if bar is not None:
            bar.close()
    model = eqx.combine(params, static)
    return model, History(loss=jnp.asarray(hist_loss), accuracy=jnp.asarray(hist_acc),
                          steps=steps)


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step",
                mininterval=0.5, leave=False)


@eqx.filter_jit
def evaluate(model: Any, task: Any, key: PRNGKeyArray, batch_size: int = 256) -> Array:
    """Accuracy of a trained network on a fresh batch of `batch_size` trials (the task's
    `score`: NeuroGym's decision-epoch accuracy for choice tasks). `eqx.filter_vmap` over
    stacked models and keys evaluates many networks at once."""
    trial = task.sample(key, batch_size)
    _, outputs = _run_batch(model, trial.inputs)
    return task.score(outputs, trial)
