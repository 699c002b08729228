"""Interval timing: compare two intervals, or measure one and reproduce it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from .._validate import check_number
from ._base import AbstractChoiceTask, Trial, check_batch_size, choice_trial
from ._epochs import (
    Schedule,
    Timing,
    Uniform,
    check_dt,
    make_timing,
    max_steps,
    sample_durations,
    sample_schedule,
)


class IntervalDiscrimination(AbstractChoiceTask):
    """Which of two sequential stimuli lasted longer (Genovesio, Tsujimoto & Wise 2009).

    NeuroGym counterpart: `IntervalDiscrimination-v0`. Inputs `[fixation, stim1, stim2]`;
    outputs `[fixate, choice1, choice2]`. Channel `stim1` is 1 during the first stimulus,
    `stim2` during the second; no noise. The fixation input is 1 until the decision epoch.
    The label in the decision epoch is 1 if the first stimulus lasted more steps than the
    second, else 2 (NeuroGym compares the floored durations, so ties, about 23 % of trials at
    the defaults, are labelled 2). Epochs (ms): fixation 300, stim1 U(300, 600), delay1
    U(800, 1500), stim2 U(300, 600), delay2 500, decision 300: 28 to 44 steps at dt = 80,
    padded to 44.

    **Arguments (keyword-only):** `dt` (80), `timing` (keys fixation, stim1, delay1, stim2,
    delay2, decision).

    `info`: `ground_truth` (1 or 2), `duration1`, `duration2` (ms, on the step grid).
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)

    def __init__(self, *, dt: float = 80.0, timing: Mapping[str, Any] | None = None):
        self.dt = check_dt(dt)
        self.timing = make_timing(
            {"fixation": 300, "stim1": Uniform(300, 600), "delay1": Uniform(800, 1500),
             "stim2": Uniform(300, 600), "delay2": 500, "decision": 300}, timing, self.dt)
        self.n_steps = max_steps(self.timing, self.dt)
        self.input_names = ("fixation", "stim1", "stim2")
        self.output_names = ("fixate", "choice1", "choice2")

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        s = sample_schedule(key, self.timing, self.dt, b, self.n_steps)
        d1 = s.durations[:, s.names.index("stim1")]
        d2 = s.durations[:, s.names.index("stim2")]
        gt = jnp.where(d1 > d2, 1, 2).astype(jnp.int32)
        decision = s.mask("decision")
        f = jnp.result_type(float)
        inputs = jnp.stack([s.valid() & ~decision, s.mask("stim1"), s.mask("stim2")], axis=-1)
        labels = jnp.where(decision, gt[:, None], 0)
        info = {"ground_truth": gt, "duration1": d1.astype(f) * self.dt,
                "duration2": d2.astype(f) * self.dt}
        return choice_trial(s, inputs.astype(f), labels, decision, info, self.n_out, self.dt)


class ReadySetGo(AbstractChoiceTask):
    """Measure the interval between "ready" and "set", then respond "go" after `gain` times
    that interval (Jazayeri & Shadlen 2010; Remington et al. 2018).

    NeuroGym counterpart: `ReadySetGo-v0`. Inputs `[fixation, ready, set]`; outputs
    `[fixate, go]`. Epochs: fixation 100 ms (1 step at dt = 80), measure U(800, 1500) ms
    (10 to 18 steps), set 83 ms (1 step), production `2·gain·measure`; the ready pulse
    (83 ms, 1 step) overlaps the start of the measure epoch. The fixation input is 1 until the
    production epoch. The label is 1 (go) at production step `floor(gain·measure/dt)` and 0
    elsewhere, exactly as NeuroGym (whose label is one set-duration later than the reward
    optimum). Trials are 32 to 56 steps at the defaults, padded to 56.

    Scoring (`rule="first"`) follows NeuroGym's reward: the decision epoch is the production
    epoch, and a trial is correct iff the first "go" in it comes at a time `t` (step·dt) with
    `|t − end_of_measure − gain·measure| <= prod_margin·gain·measure + 25` ms; this window is
    `info["window"]`.

    **Arguments (keyword-only):** `dt` (80), `timing` (keys fixation, ready, measure, set),
    `gain` (1), `prod_margin` (0.2).

    `info`: `ground_truth` (always 1), `measure` (ms), `production` (ms), `window` `[B, T]`.
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)
    gain: float = eqx.field(static=True)
    prod_margin: float = eqx.field(static=True)

    def __init__(self, *, dt: float = 80.0, timing: Mapping[str, Any] | None = None,
                 gain: float = 1.0, prod_margin: float = 0.2):
        self.dt = check_dt(dt)
        self.timing = make_timing(
            {"fixation": 100, "ready": 83, "measure": Uniform(800, 1500), "set": 83}, timing,
            self.dt, required=("measure",))
        self.gain = check_number(gain, "gain", open_low=True)
        self.prod_margin = check_number(prod_margin, "prod_margin")
        if math.floor(2 * self.gain * dict(self.timing)["measure"].bounds(self.dt)[0]) < 1:
            raise ValueError(f"`gain` = {gain!r} leaves an empty production epoch; use a larger "
                             f"gain or a longer measure.")
        fix, _, measure, set_ = (d.bounds(self.dt)[1] for _, d in self.timing)
        self.n_steps = fix + measure + set_ + math.floor(2 * self.gain * measure)
        self.input_names = ("fixation", "ready", "set")
        self.output_names = ("fixate", "go")

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        d = sample_durations(key, self.timing, self.dt, b)
        measure = d["measure"]
        f = jnp.result_type(float)
        # A small tolerance keeps gain·measure exact when it is a whole number of steps.
        production = jnp.floor(self.gain * (1 + 1e-9) * measure.astype(f)).astype(jnp.int32)
        total = jnp.floor(2 * self.gain * (1 + 1e-9) * measure.astype(f)).astype(jnp.int32)
        s = Schedule(("fixation", "measure", "set", "production"),
                     {"fixation": d["fixation"], "measure": measure, "set": d["set"],
                      "production": total}, self.n_steps)
        t = jnp.arange(self.n_steps, dtype=jnp.int32)[None, :]
        ready_on = s.start("measure")[:, None]
        ready = (t >= ready_on) & (t < ready_on + d["ready"][:, None])
        decision = s.mask("production")
        inputs = jnp.stack([s.valid() & ~decision, ready & s.valid(), s.mask("set")], axis=-1)
        go = s.start("production")[:, None] + production[:, None]
        labels = jnp.where(decision & (t == go), 1, 0)
        measure_ms = measure.astype(f) * self.dt
        prod_ms = self.gain * measure_ms
        lag = (t - s.end("measure")[:, None]).astype(f) * self.dt - prod_ms[:, None]
        window = decision & (jnp.abs(lag) <= (self.prod_margin * prod_ms + 25)[:, None])
        info = {"ground_truth": jnp.ones((b,), jnp.int32), "measure": measure_ms,
                "production": prod_ms, "window": window}
        return choice_trial(s, inputs.astype(f), labels, decision, info, self.n_out, self.dt)
