"""Perceptual decisions from noisy evidence: PDM, context-dependent DM, multisensory integration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import PRNGKeyArray

from .._validate import check_choice, check_int, check_number, check_values
from ._base import (
    AbstractChoiceTask,
    Trial,
    check_batch_size,
    choice_trial,
    noise_std,
    ring,
)
from ._epochs import Timing, TruncExp, check_dt, make_timing, max_steps, sample_schedule

_VERSIONS = ("2", "0.1")


def _fixed(key, values, batch_size):
    values = jnp.asarray(values, dtype=jnp.result_type(float))
    return values[_ints(key, batch_size, values.shape[0])]


def _ints(key, batch_size, n):
    return jr.randint(key, (batch_size,), 0, n, dtype=jnp.int32)


class PerceptualDecisionMaking(AbstractChoiceTask):
    """Two-alternative forced choice on noisy evidence (random-dot motion; Britten et al. 1992).

    NeuroGym counterpart: `PerceptualDecisionMaking-v0`. Inputs `[fixation, stim_1..stim_n]`;
    outputs `[fixate, choice_1..choice_n]`. Each trial draws a ground truth uniformly and a
    coherence from `cohs`; during the stimulus epoch channel `i` is
    `cos(θ_i − θ_gt)·coh/200 + 0.5` plus Gaussian noise of std `sigma/√dt` (0.5 ± coh/200 for
    two choices). The label is the chosen side (1 + gt) during the decision epoch, 0 elsewhere.
    Epochs (ms): fixation 100, stimulus 2000, delay 0, decision 100 (22 steps at dt = 100).

    `version="2"` (default, NeuroGym ≥ 2.1) sets the fixation input to 1 in the fixation epoch
    only; `version="0.1"` (NeuroGym 0.1 to 2.0) keeps it at 1 through fixation, stimulus and
    delay, and 0 in the decision epoch (the "go" signal).

    **Arguments (keyword-only):**

    - `dt`: step in ms (default 100).
    - `timing`: dict overriding epoch durations in ms (keys fixation, stimulus, delay,
      decision; values numbers, `Uniform`, `TruncExp`, `Choice`).
    - `cohs`: coherences (percent); default (0, 6.4, 12.8, 25.6, 51.2).
    - `sigma`: noise scale; the per-step std is `sigma/√dt`.
    - `dim_ring`: number of choices (default 2).
    - `version`: `"2"` or `"0.1"`, as above.

    `info`: `ground_truth` (1..dim_ring), `coherence`.
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)
    cohs: tuple[float, ...] = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    dim_ring: int = eqx.field(static=True)
    version: str = eqx.field(static=True)

    def __init__(self, *, dt: float = 100.0, timing: Mapping[str, Any] | None = None,
                 cohs=(0.0, 6.4, 12.8, 25.6, 51.2), sigma: float = 1.0, dim_ring: int = 2,
                 version: str = "2"):
        self.dt = check_dt(dt)
        self.timing = make_timing(
            {"fixation": 100, "stimulus": 2000, "delay": 0, "decision": 100}, timing, self.dt)
        self.n_steps = max_steps(self.timing, self.dt)
        self.cohs = check_values(cohs, "cohs")
        self.sigma = check_number(sigma, "sigma")
        self.dim_ring = check_int(dim_ring, "dim_ring", minimum=2)
        self.version = check_choice(version, "version", _VERSIONS)
        n = self.dim_ring
        self.input_names = ("fixation", *(f"stim{i + 1}" for i in range(n)))
        self.output_names = ("fixate", *(f"choice{i + 1}" for i in range(n)))

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_t, k_gt, k_coh, k_noise = jr.split(key, 4)
        s = sample_schedule(k_t, self.timing, self.dt, b, self.n_steps)
        gt = _ints(k_gt, b, self.dim_ring)
        coh = _fixed(k_coh, self.cohs, b)
        fix_on = ("fixation",) if self.version == "2" else ("fixation", "stimulus", "delay")
        fix = s.mask(*fix_on)[..., None].astype(coh.dtype)
        noise = noise_std(self.sigma, self.dt) * jr.normal(
            k_noise, (b, self.n_steps, self.dim_ring), coh.dtype)
        stim = ring(gt, coh, self.dim_ring)[:, None, :] + noise
        stim = jnp.where(s.mask("stimulus")[..., None], stim, 0.0)
        decision = s.mask("decision")
        labels = jnp.where(decision, 1 + gt[:, None], 0)
        info = {"ground_truth": 1 + gt, "coherence": coh}
        return choice_trial(s, jnp.concatenate([fix, stim], axis=-1), labels, decision, info,
                            self.n_out, self.dt)


class ContextDecisionMaking(AbstractChoiceTask):
    """Context-dependent decision: two modalities of evidence, a context cue says which one
    counts (Mante, Sussillo, Shenoy & Newsome 2013).

    NeuroGym counterpart: `ContextDecisionMaking-v0`. Inputs `[fixation, stim1_mod1..stimn_mod1,
    stim1_mod2..stimn_mod2, context1, context2]`; outputs `[fixate, choice_1..choice_n]`. Each
    trial draws the ground truth `gt` and an `other_choice` uniformly (they may be equal), a
    context and independent coherences for the two modalities from `cohs`; the relevant
    modality (1 in context 0, 2 in context 1) points to `gt`, the other to `other_choice`,
    each as NeuroGym's ring stimulus `cos(θ_i − θ_choice)·coh/200 + 0.5` plus noise
    `sigma/√dt` during the stimulus epoch. The context channel is 1 over the whole trial.
    Epochs (ms): fixation 300, stimulus 750 (7 steps), delay TruncExp(600, 300, 3000),
    decision 100: 14 to 40 steps at dt = 100, padded to 40.

    - `context="explicit"` (default): the context cue channels are present and the context is
      drawn uniformly from {0, 1} (NeuroGym 2.x `use_expl_context=True`; NeuroGym 0.1's
      `ContextDecisionMaking`). `context="implicit"`: no cue channels, the context is always
      `implicit_modality` (NeuroGym 2.x's constructor default; 0.1's
      `SingleContextDecisionMaking`).
    - `version="2"` (default): fixation input 1 in the fixation epoch only; noise on the
      stimulus channels only. `version="0.1"`: fixation input 1 until the decision epoch; noise
      on every input channel (fixation and context included) during the stimulus epoch.

    **Arguments (keyword-only):** `dt` (100), `timing`, `cohs` ((5, 15, 50)), `sigma` (1),
    `dim_ring` (2), `context`, `implicit_modality` (0 or 1), `version`.

    `info`: `ground_truth` (1..dim_ring), `other_choice`, `context` (0 or 1),
    `coherence_mod1`, `coherence_mod2`, `choice_mod1`, `choice_mod2` (the side each modality
    points to).
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)
    cohs: tuple[float, ...] = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    dim_ring: int = eqx.field(static=True)
    context: str = eqx.field(static=True)
    implicit_modality: int = eqx.field(static=True)
    version: str = eqx.field(static=True)

    def __init__(self, *, dt: float = 100.0, timing: Mapping[str, Any] | None = None,
                 cohs=(5.0, 15.0, 50.0), sigma: float = 1.0, dim_ring: int = 2,
                 context: str = "explicit", implicit_modality: int = 0, version: str = "2"):
        self.dt = check_dt(dt)
        self.timing = make_timing({"fixation": 300, "stimulus": 750,
                                   "delay": TruncExp(600, 300, 3000), "decision": 100},
                                  timing, self.dt)
        self.n_steps = max_steps(self.timing, self.dt)
        self.cohs = check_values(cohs, "cohs")
        self.sigma = check_number(sigma, "sigma")
        self.dim_ring = check_int(dim_ring, "dim_ring", minimum=2)
        self.context = check_choice(context, "context", ("explicit", "implicit"))
        self.implicit_modality = check_choice(implicit_modality, "implicit_modality", (0, 1))
        self.version = check_choice(version, "version", _VERSIONS)
        n = self.dim_ring
        names = ["fixation"] + [f"stim{i + 1}_mod{m}" for m in (1, 2) for i in range(n)]
        if self.context == "explicit":
            names += ["context1", "context2"]
        self.input_names = tuple(names)
        self.output_names = ("fixate", *(f"choice{i + 1}" for i in range(n)))

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_t, k_gt, k_other, k_ctx, k_c1, k_c2, k_noise = jr.split(key, 7)
        s = sample_schedule(k_t, self.timing, self.dt, b, self.n_steps)
        n = self.dim_ring
        gt, other = _ints(k_gt, b, n), _ints(k_other, b, n)
        if self.context == "explicit":
            ctx = _ints(k_ctx, b, 2)
        else:
            ctx = jnp.full((b,), self.implicit_modality, dtype=jnp.int32)
        choice1 = jnp.where(ctx == 0, gt, other)
        choice2 = jnp.where(ctx == 0, other, gt)
        coh1, coh2 = _fixed(k_c1, self.cohs, b), _fixed(k_c2, self.cohs, b)
        stim_ep = s.mask("stimulus")[..., None].astype(coh1.dtype)
        stim = jnp.concatenate([ring(choice1, coh1, n), ring(choice2, coh2, n)], axis=-1)
        stim = stim_ep * stim[:, None, :]
        fix_on = ("fixation",) if self.version == "2" else ("fixation", "stimulus", "delay")
        parts = [s.mask(*fix_on)[..., None].astype(stim.dtype), stim]
        if self.context == "explicit":
            cue = ctx[:, None] == jnp.arange(2, dtype=jnp.int32)[None, :]
            parts.append((s.valid()[..., None] & cue[:, None, :]).astype(stim.dtype))
        inputs = jnp.concatenate(parts, axis=-1)
        # NeuroGym 2.x adds noise to the stimulus channels only, 0.1 to every channel.
        noisy = jnp.asarray([self.version == "0.1" or 1 <= i <= 2 * n for i in range(self.n_in)],
                            dtype=stim.dtype)
        noise = noise_std(self.sigma, self.dt) * jr.normal(
            k_noise, (b, self.n_steps, self.n_in), stim.dtype)
        noise = stim_ep * noise * noisy[None, None, :]
        inputs = inputs + noise
        decision = s.mask("decision")
        labels = jnp.where(decision, 1 + gt[:, None], 0)
        info = {"ground_truth": 1 + gt, "other_choice": 1 + other, "context": ctx,
                "coherence_mod1": coh1, "coherence_mod2": coh2, "choice_mod1": 1 + choice1,
                "choice_mod2": 1 + choice2}
        return choice_trial(s, inputs, labels, decision, info, self.n_out, self.dt)


class MultiSensoryIntegration(AbstractChoiceTask):
    """Multisensory integration: two modalities carry the same evidence, split by a random
    proportion (Raposo, Sheppard, Schrater & Churchland 2012).

    NeuroGym counterpart: `MultiSensoryIntegration-v0`. Inputs `[fixation, stim1_mod1..,
    stim1_mod2..]`; outputs `[fixate, choice_1..choice_n]`. Each trial draws `gt`, a coherence
    `coh` from `cohs` and a proportion `p ~ U(0, 1)`; modality 1 has coherence `coh·p`,
    modality 2 `coh·(1 − p)`, both pointing to `gt` as ring stimuli
    `cos(θ_i − θ_gt)·coh_m/200 + 0.5`. Noise of std `sigma/√dt` is added to every input channel
    (fixation included, as in NeuroGym) during the stimulus epoch. The fixation input is 1
    until the decision epoch. Epochs (ms): fixation 300, stimulus 750 (7 steps), decision 100:
    11 steps at dt = 100.

    **Arguments (keyword-only):** `dt` (100), `timing`, `cohs` ((5, 15, 50)), `sigma` (1),
    `dim_ring` (2).

    `info`: `ground_truth` (1..dim_ring), `coherence`, `proportion` (p), `coherence_mod1`,
    `coherence_mod2`.
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)
    cohs: tuple[float, ...] = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    dim_ring: int = eqx.field(static=True)

    def __init__(self, *, dt: float = 100.0, timing: Mapping[str, Any] | None = None,
                 cohs=(5.0, 15.0, 50.0), sigma: float = 1.0, dim_ring: int = 2):
        self.dt = check_dt(dt)
        self.timing = make_timing({"fixation": 300, "stimulus": 750, "decision": 100}, timing,
                                  self.dt)
        self.n_steps = max_steps(self.timing, self.dt)
        self.cohs = check_values(cohs, "cohs")
        self.sigma = check_number(sigma, "sigma")
        self.dim_ring = check_int(dim_ring, "dim_ring", minimum=2)
        n = self.dim_ring
        self.input_names = ("fixation", *(f"stim{i + 1}_mod{m}" for m in (1, 2)
                                          for i in range(n)))
        self.output_names = ("fixate", *(f"choice{i + 1}" for i in range(n)))

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_t, k_gt, k_coh, k_p, k_noise = jr.split(key, 5)
        s = sample_schedule(k_t, self.timing, self.dt, b, self.n_steps)
        n = self.dim_ring
        gt = _ints(k_gt, b, n)
        coh = _fixed(k_coh, self.cohs, b)
        p = jr.uniform(k_p, (b,), dtype=coh.dtype)
        coh1, coh2 = coh * p, coh * (1 - p)
        stim_ep = s.mask("stimulus")[..., None].astype(coh.dtype)
        stim = jnp.concatenate([ring(gt, coh1, n), ring(gt, coh2, n)], axis=-1)
        fix = s.mask("fixation", "stimulus")[..., None].astype(coh.dtype)
        inputs = jnp.concatenate([fix, stim_ep * stim[:, None, :]], axis=-1)
        noise = noise_std(self.sigma, self.dt) * jr.normal(
            k_noise, (b, self.n_steps, self.n_in), coh.dtype)
        inputs = inputs + stim_ep * noise
        decision = s.mask("decision")
        labels = jnp.where(decision, 1 + gt[:, None], 0)
        info = {"ground_truth": 1 + gt, "coherence": coh, "proportion": p,
                "coherence_mod1": coh1, "coherence_mod2": coh2}
        return choice_trial(s, inputs, labels, decision, info, self.n_out, self.dt)
