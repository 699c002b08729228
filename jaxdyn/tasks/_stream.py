"""Trials laid end to end and cut into windows: NeuroGym's `Dataset` scheme as a task."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_int
from ._base import AbstractChoiceTask, AbstractTask, Trial, check_batch_size, check_outputs


class Stream(AbstractTask):
    """Windows of `seq_len` steps cut from a stream of trials of `task` laid end to end.

    Each row of a batch concatenates whole trials of `task` (their padding removed) and keeps
    `seq_len` steps starting at a random step inside the first trial, as NeuroGym's `Dataset`
    does. The network runs from the zero state at the start of a row, so its state carries
    over from one trial to the next and the moment of the answer cannot be told from the
    start of the sequence. Training on windows keeps networks from solving a task by counting
    steps from trial onset (a "clock"), which separate, identically timed trials from a zero
    state invite at small learning rates.

    The loss is `task`'s on every step of the window; the score is the fraction of decision
    steps answered with the right label (the accuracy NeuroGym's supervised examples report).
    Evaluate trained networks on `task` itself.

    **Arguments:**

    - `task`: a choice task (`jaxdyn.tasks`).
    - `seq_len`: steps per window (default 100, NeuroGym's tutorial value).

    **Raises:** `ValueError` for a regression task or `seq_len` < 1.
    """

    task: AbstractChoiceTask = eqx.field(static=True)
    seq_len: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    kind: ClassVar[str] = "choice"

    def __init__(self, task: Any, seq_len: int = 100):
        if not isinstance(task, AbstractChoiceTask):
            raise ValueError(f"`task` must be a choice task (PerceptualDecisionMaking, ...); got "
                             f"{type(task).__name__}.")
        self.task = task
        self.seq_len = self.n_steps = check_int(seq_len, "seq_len")
        self.dt = task.dt
        self.input_names, self.output_names = task.input_names, task.output_names

    def _trials_per_row(self) -> int:
        shortest = max(1, sum(d.bounds(self.dt)[0] for _, d in self.task.timing))
        # The window may start anywhere in the first trial, then must be filled.
        return math.ceil((self.seq_len + self.task.n_steps) / shortest) + 1

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` windows of `seq_len` steps (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k = self._trials_per_row()
        k_trials, k_offset = jr.split(key)
        trials = self.task.sample(k_trials, b * k)
        i32 = jnp.int32
        lengths = trials.lengths.reshape(b, k).astype(i32)
        ends = jnp.cumsum(lengths, axis=1)
        starts = ends - lengths
        offset = jr.randint(k_offset, (b,), 0, 2**30, dtype=i32) % lengths[:, 0]
        pos = offset[:, None] + jnp.arange(self.seq_len, dtype=i32)[None, :]
        which = jax.vmap(lambda e, p: jnp.searchsorted(e, p, side="right"))(ends, pos)
        which = which.astype(i32)
        step = pos - jnp.take_along_axis(starts, which, axis=1)
        row = jnp.arange(b, dtype=i32)[:, None] * k + which

        def take(a):
            return a[row, step]

        labels = take(trials.labels)
        mask = jnp.ones(labels.shape, trials.mask.dtype)
        return Trial(inputs=take(trials.inputs), targets=take(trials.targets), labels=labels,
                     mask=mask, decision=take(trials.decision), epoch=take(trials.epoch),
                     info={"trial_start": step == 0}, epoch_names=trials.epoch_names,
                     dt=trials.dt)

    def loss(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, ""]:
        """`task`'s cross-entropy over every step of the windows."""
        return self.task.loss(outputs, trial)

    def score(self, outputs: Float[Array, "B T n_out"], trial: Trial) -> Float[Array, ""]:
        """The fraction of decision steps whose most active output is the label."""
        outputs = check_outputs(outputs, trial)
        right = (jnp.argmax(outputs, axis=-1) == trial.labels) & trial.decision
        return jnp.sum(right) / jnp.maximum(jnp.sum(trial.decision), 1)
