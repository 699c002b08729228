"""The trial batch every task returns, and the task interface: sample, loss, score, plot."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._validate import check_choice, check_int
from ._epochs import Schedule


class Trial(eqx.Module):
    """A batch of `B` trials of one task, each `T` steps long (padded to the task's fixed length).

    **Fields:**

    - `inputs`: `[B, T, n_in]` network inputs (zero on padding).
    - `targets`: `[B, T, n_out]` float targets: the one-hot of `labels` for choice tasks, the
      continuous target for regression tasks.
    - `labels`: `[B, T]` int class per step for choice tasks (NeuroGym's ground truth: 0 =
      fixate, 1..n_choices = choices; 0 on padding); `None` for regression tasks.
    - `mask`: `[B, T]` float loss weights (1 on the steps that count, 0 on padding).
    - `decision`: `[B, T]` bool, the epoch in which responses are scored.
    - `epoch`: `[B, T]` int, index into `epoch_names` of each step; −1 on padding.
    - `info`: dict of per-trial arrays (leading axis `B`), e.g. `"ground_truth"`,
      `"coherence"`, `"context"`.
    - `epoch_names`: the names of the epochs, in order (static).
    - `dt`: the step length in ms (static).

    `valid` (`epoch >= 0`), `lengths` and `in_epoch(*names)` are derived from `epoch`.
    """

    inputs: Float[Array, "B T n_in"]
    targets: Float[Array, "B T n_out"]
    labels: Int[Array, "B T"] | None
    mask: Float[Array, "B T"]
    decision: Bool[Array, "B T"]
    epoch: Int[Array, "B T"]
    info: dict[str, Array]
    epoch_names: tuple[str, ...] = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    @property
    def valid(self) -> Bool[Array, "B T"]:
        """True on the steps of each trial, False on its padding."""
        return self.epoch >= 0

    @property
    def lengths(self) -> Int[Array, " B"]:
        """The number of steps of each trial (before padding)."""
        return jnp.sum(self.valid, axis=-1)

    def in_epoch(self, *names: str) -> Bool[Array, "B T"]:
        """True on the steps of any of the epochs `names`."""
        for name in names:
            check_choice(name, "epoch name", self.epoch_names)
        out = jnp.zeros(self.epoch.shape, dtype=bool)
        for name in names:
            out = out | (self.epoch == self.epoch_names.index(name))
        return out


def check_batch_size(batch_size: Any) -> int:
    """A Python int >= 1 (the batch is a static shape)."""
    return check_int(batch_size, "batch_size", minimum=1)


def check_outputs(outputs: Any, trial: Trial) -> Array:
    shape = getattr(outputs, "shape", None)
    if shape != trial.targets.shape:
        raise ValueError(
            f"`outputs` must have the shape of `trial.targets`, [B, T, n_out] = "
            f"{tuple(trial.targets.shape)}; got {shape if shape is not None else type(outputs)}."
        )
    return jnp.asarray(outputs)


def choice_trial(schedule: Schedule, inputs: Array, labels: Array, decision: Array,
                 info: dict[str, Array], n_out: int, dt: float) -> Trial:
    """Assemble a choice-task `Trial`: zero the padding, one-hot targets, unit loss weights."""
    valid = schedule.valid()
    labels = jnp.where(valid, labels, 0).astype(jnp.int32)
    return Trial(
        inputs=jnp.where(valid[..., None], inputs, 0).astype(inputs.dtype),
        targets=jax.nn.one_hot(labels, n_out, dtype=inputs.dtype),
        labels=labels,
        mask=valid.astype(inputs.dtype),
        decision=decision & valid,
        epoch=schedule.index(),
        info=info,
        epoch_names=schedule.names,
        dt=dt,
    )


def regression_trial(schedule: Schedule, inputs: Array, targets: Array, info: dict[str, Array],
                     dt: float) -> Trial:
    """Assemble a regression-task `Trial`: zero the padding; every trial step is weighted and
    scored."""
    valid = schedule.valid()
    return Trial(
        inputs=jnp.where(valid[..., None], inputs, 0).astype(inputs.dtype),
        targets=jnp.where(valid[..., None], targets, 0).astype(inputs.dtype),
        labels=None,
        mask=valid.astype(inputs.dtype),
        decision=valid,
        epoch=schedule.index(),
        info=info,
        epoch_names=schedule.names,
        dt=dt,
    )


class AbstractTask(eqx.Module):
    """A cognitive task: a generator of trial batches with its loss, score and plot.

    Subclasses are either choice tasks (`kind = "choice"`: cross-entropy on `labels`, accuracy
    as NeuroGym defines it) or regression tasks (`kind = "regression"`: MSE on `targets`).
    Every option is static, so `sample` jits and vmaps over keys; all trials of a task have
    `n_steps` steps.
    """

    dt: eqx.AbstractVar[float]
    n_steps: eqx.AbstractVar[int]
    input_names: eqx.AbstractVar[tuple[str, ...]]
    output_names: eqx.AbstractVar[tuple[str, ...]]
    kind: eqx.AbstractClassVar[str]

    @property
    def n_in(self) -> int:
        """The number of input channels."""
        return len(self.input_names)

    @property
    def n_out(self) -> int:
        """The number of output units (fixation + choices for a choice task)."""
        return len(self.output_names)

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` independent trials.

        **Arguments:**

        - `key`: a PRNG key.
        - `batch_size`: the number of trials `B`, a Python int >= 1.

        **Returns:** a `Trial` with arrays `[B, n_steps, ...]`.

        **Raises:** `ValueError` when `batch_size` is not an int >= 1.
        """

    @abc.abstractmethod
    def loss(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, ""]:
        """The training loss of network `outputs` on `trial`, averaged over masked steps."""

    @abc.abstractmethod
    def score(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, ""]:
        """A performance in [0, 1] (1 = perfect)."""

    def plot(self, trial: Trial, outputs: Array | None = None, index: int = 0, ax: Any = None):
        """Plot one trial: its inputs (top) and targets, with outputs if given (bottom).
        See `jaxdyn.plot.plot_trial`."""
        from ..plot import plot_trial

        return plot_trial(self, trial, outputs, index=index, ax=ax)


class AbstractChoiceTask(AbstractTask):
    """A task whose outputs are fixation + choice units, trained with cross-entropy on labels.

    `info["ground_truth"]` is each trial's correct action in the decision epoch (1..n_choices;
    0 where withholding is correct, as for a GoNoGo no-go trial).
    """

    kind: ClassVar[str] = "choice"

    def loss(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, ""]:
        """Cross-entropy of `softmax(outputs)` against `trial.labels`, weighted by `trial.mask`
        and divided by the sum of the weights (NeuroGym's supervised loss over every step).

        **Raises:** `ValueError` when `outputs` is not `[B, T, n_out]`.
        """
        outputs = check_outputs(outputs, trial)
        logp = jax.nn.log_softmax(outputs, axis=-1)
        ce = -jnp.take_along_axis(logp, trial.labels[..., None], axis=-1)[..., 0]
        return jnp.sum(trial.mask * ce) / jnp.maximum(jnp.sum(trial.mask), 1)

    def correct(self, outputs: Float[Array, "B T n_out"], trial: Trial, *, rule: str = "first",
                fixation: str = "ignore") -> Bool[Array, " B"]:
        """Whether each trial is answered correctly. The action at a step is the argmax over all
        output units (0 = fixate).

        **Arguments:**

        - `outputs`: network outputs `[B, T, n_out]`.
        - `trial`: the `Trial` they answer.
        - `rule`: `"first"` (default; NeuroGym's environment performance): the response is the
          first non-fixate action in the decision epoch, and the trial is correct iff it equals
          `info["ground_truth"]`, or iff there is none when the ground truth is 0 (no-go).
          Responses before the decision epoch are ignored. Tasks with a response window
          (`info["window"]`, ReadySetGo) also require the response to fall in it.
          `"last"` (NeuroGym's supervised examples): correct iff the action at the trial's last
          step equals its label (meaningless for ReadySetGo, whose last label is 0).
        - `fixation`: `"ignore"` (default; NeuroGym's `abort=False`), `"abort"` (NeuroGym's
          `abort=True`: a non-fixate action in the fixation epoch fails the trial) or
          `"strict"` (any non-fixate action before the decision epoch fails it, as in
          Yang et al. 2019).

        **Returns:** a `[B]` bool array.
        """
        check_choice(rule, "rule", ("first", "last"))
        check_choice(fixation, "fixation", ("ignore", "abort", "strict"))
        outputs = check_outputs(outputs, trial)
        action = jnp.argmax(outputs, axis=-1).astype(jnp.int32)
        if rule == "first":
            responded = trial.decision & (action != 0)
            any_response = jnp.any(responded, axis=-1)
            k = jnp.argmax(responded, axis=-1)[:, None]
            response = jnp.where(any_response, jnp.take_along_axis(action, k, -1)[:, 0], 0)
            ok = response == trial.info["ground_truth"]
            if "window" in trial.info:
                in_window = jnp.take_along_axis(trial.info["window"], k, -1)[:, 0]
                ok = ok & (~any_response | in_window)
        else:
            last = (trial.lengths - 1)[:, None]
            ok = (jnp.take_along_axis(action, last, -1) == jnp.take_along_axis(
                trial.labels, last, -1))[:, 0]
        if fixation == "abort":
            if "fixation" in trial.epoch_names:
                ok = ok & ~jnp.any(trial.in_epoch("fixation") & (action != 0), axis=-1)
        elif fixation == "strict":
            onset = jnp.argmax(trial.decision, axis=-1)[:, None]
            before = (jnp.arange(action.shape[-1])[None, :] < onset) & trial.valid
            ok = ok & ~jnp.any(before & (action != 0), axis=-1)
        return ok

    def score(self, outputs: Float[Array, "B T n_out"], trial: Trial, *, rule: str = "first",
              fixation: str = "ignore") -> Float[Array, ""]:
        """The fraction of correct trials, `mean(correct(outputs, trial, rule=..., fixation=...))`
        (see `correct` for the rules; the defaults are NeuroGym's environment performance)."""
        ok = self.correct(outputs, trial, rule=rule, fixation=fixation)
        return jnp.mean(ok.astype(trial.mask.dtype))


class AbstractRegressionTask(AbstractTask):
    """A task with continuous targets, trained with the masked mean squared error."""

    kind: ClassVar[str] = "regression"

    def error(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, " B"]:
        """Per-trial mean squared error over masked steps and output channels."""
        outputs = check_outputs(outputs, trial)
        se = jnp.mean((outputs - trial.targets) ** 2, axis=-1)
        return jnp.sum(trial.mask * se, axis=-1) / jnp.maximum(jnp.sum(trial.mask, axis=-1), 1)

    def loss(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, ""]:
        """Mean squared error over masked steps (weighted by `trial.mask`) and channels.

        **Raises:** `ValueError` when `outputs` is not `[B, T, n_out]`.
        """
        outputs = check_outputs(outputs, trial)
        se = jnp.mean((outputs - trial.targets) ** 2, axis=-1)
        return jnp.sum(trial.mask * se) / jnp.maximum(jnp.sum(trial.mask), 1)

    def score(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, ""]:
        """The coefficient of determination, clipped to [0, 1]: `1 − SSE / SST` over masked
        steps, with SST the squared deviation of the targets from their masked mean per
        channel. A perfect output scores 1; any constant output scores at most about 0 (the
        "chance" level of a regression task)."""
        outputs = check_outputs(outputs, trial)
        w = trial.mask[..., None]
        mean = jnp.sum(w * trial.targets, axis=(0, 1)) / jnp.maximum(jnp.sum(w, axis=(0, 1)), 1)
        sse = jnp.sum(w * (outputs - trial.targets) ** 2)
        sst = jnp.sum(w * (trial.targets - mean[None, None, :]) ** 2)
        r2 = 1 - sse / jnp.maximum(sst, jnp.finfo(sst.dtype).tiny)
        return jnp.clip(r2, 0.0, 1.0)


def noise_std(sigma: float, dt: float) -> float:
    """NeuroGym's input noise: `sigma / sqrt(dt)` with `dt` in ms (0.1 for sigma 1, dt 100)."""
    return sigma / float(np.sqrt(dt))


def ring(choice: Int[Array, " B"], coherence: Float[Array, " B"], n: int) -> Float[Array, "B n"]:
    """NeuroGym's ring stimulus `cos(θ_i − θ_choice)·coh/200 + 0.5`, θ_i = 2πi/n (0-based
    `choice`): 0.5 ± coh/200 on two channels."""
    theta = (2 * jnp.pi / n) * jnp.arange(n, dtype=coherence.dtype)
    return jnp.cos(theta[None, :] - theta[choice][:, None]) * (coherence[:, None] / 200) + 0.5
