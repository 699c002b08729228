"""Working memory over a delay: parametric comparison and go/no-go."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import PRNGKeyArray

from .._validate import check_number
from ._base import (
    AbstractChoiceTask,
    Trial,
    check_batch_size,
    choice_trial,
    noise_std,
)
from ._epochs import Timing, check_dt, make_timing, max_steps, sample_schedule


def _check_pairs(vpairs: Any) -> tuple[tuple[float, float], ...]:
    try:
        pairs = tuple((float(a), float(b)) for a, b in vpairs)
    except (TypeError, ValueError):
        raise ValueError(f"`vpairs` must be a sequence of (f1, f2) number pairs; got "
                         f"{vpairs!r}.") from None
    if not pairs:
        raise ValueError("`vpairs` must hold at least one pair; got ().")
    for i, (a, b) in enumerate(pairs):
        check_number(a, f"vpairs[{i}][0]")
        check_number(b, f"vpairs[{i}][1]")
        if a == b:
            raise ValueError(f"`vpairs[{i}]` must hold two different frequencies; got {(a, b)}.")
    if len({v for p in pairs for v in p}) < 2:
        raise ValueError(f"`vpairs` must span a range of frequencies; got {pairs}.")
    return pairs


class DelayComparison(AbstractChoiceTask):
    """Parametric working memory: hold a vibration frequency over a delay and compare it with
    a second one (Romo, Brody, Hernández & Lemus 1999).

    NeuroGym counterpart: `DelayComparison-v0`. Inputs `[fixation, stimulus]`; outputs
    `[fixate, choice1, choice2]`. Each trial draws a pair from `vpairs` and an order: `f1`
    is shown in stimulus1 and `f2` in stimulus2, each encoded as
    `(1 + (f − f_min)/(f_max − f_min))/2` in [0.5, 1] (min and max over all pairs). Noise of
    std `sigma/√dt` is added to both input channels (fixation included, as in NeuroGym) during
    both stimulus epochs. The fixation input is 1 until the decision epoch; the label there is
    1 if `f1 > f2`, else 2. (NeuroGym labels by the pair's order, which is the same for its
    default pairs, all listed larger first; here the label follows the values for any pairs.)
    Epochs (ms): fixation 500, stimulus1 500, delay 1000, stimulus2 500, decision 100:
    26 steps at dt = 100.

    **Arguments (keyword-only):** `dt` (100), `timing`, `vpairs` (((18, 10), (22, 14),
    (26, 18), (30, 22), (34, 26)) Hz), `sigma` (1).

    `info`: `ground_truth` (1 or 2), `f1`, `f2` (Hz).
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)
    vpairs: tuple[tuple[float, float], ...] = eqx.field(static=True)
    sigma: float = eqx.field(static=True)

    def __init__(self, *, dt: float = 100.0, timing: Mapping[str, Any] | None = None,
                 vpairs=((18, 10), (22, 14), (26, 18), (30, 22), (34, 26)), sigma: float = 1.0):
        self.dt = check_dt(dt)
        self.timing = make_timing({"fixation": 500, "stimulus1": 500, "delay": 1000,
                                   "stimulus2": 500, "decision": 100}, timing, self.dt)
        self.n_steps = max_steps(self.timing, self.dt)
        self.vpairs = _check_pairs(vpairs)
        self.sigma = check_number(sigma, "sigma")
        self.input_names = ("fixation", "stimulus")
        self.output_names = ("fixate", "choice1", "choice2")

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_t, k_pair, k_order, k_noise = jr.split(key, 4)
        s = sample_schedule(k_t, self.timing, self.dt, b, self.n_steps)
        pairs = jnp.asarray(self.vpairs, dtype=jnp.result_type(float))
        pair = pairs[jr.randint(k_pair, (b,), 0, pairs.shape[0], dtype=jnp.int32)]
        swap = jr.bernoulli(k_order, 0.5, (b,))
        f1 = jnp.where(swap, pair[:, 1], pair[:, 0])
        f2 = jnp.where(swap, pair[:, 0], pair[:, 1])
        lo, hi = jnp.min(pairs), jnp.max(pairs)

        def encode(f):
            return (1 + (f - lo) / (hi - lo)) / 2

        in1, in2 = s.mask("stimulus1"), s.mask("stimulus2")
        decision = s.mask("decision")
        stim = jnp.where(in1, encode(f1)[:, None], 0.0) + jnp.where(in2, encode(f2)[:, None], 0.0)
        inputs = jnp.stack([(s.valid() & ~decision).astype(stim.dtype), stim], axis=-1)
        noise = noise_std(self.sigma, self.dt) * jr.normal(k_noise, inputs.shape, stim.dtype)
        inputs = inputs + jnp.where((in1 | in2)[..., None], noise, 0.0)
        gt = jnp.where(f1 > f2, 1, 2).astype(jnp.int32)
        labels = jnp.where(decision, gt[:, None], 0)
        info = {"ground_truth": gt, "f1": f1, "f2": f2}
        return choice_trial(s, inputs, labels, decision, info, self.n_out, self.dt)


class GoNoGo(AbstractChoiceTask):
    """Go/no-go with a delay: respond after the delay only if the stimulus was "go"
    (Zhang, Yan, Wang & Li 2019, eLife, as in NeuroGym).

    NeuroGym counterpart: `GoNogo-v0`. Inputs `[fixation, nogo, go]`; outputs
    `[fixate, go]` (action 0 is fixate/withhold, 1 is go). Each trial is go or no-go with
    probability 1/2; the matching cue channel is 1 during the stimulus epoch; no noise. The
    fixation input is 1 until the decision epoch. The label is 1 over the decision epoch on go
    trials and 0 everywhere on no-go trials, so a no-go trial is correct iff the network does
    not respond during the decision epoch. Epochs (ms): fixation 0, stimulus 500, delay 500,
    decision 500: 15 steps at dt = 100.

    **Arguments (keyword-only):** `dt` (100), `timing`.

    `info`: `ground_truth` (1 = go, 0 = no-go).
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)

    def __init__(self, *, dt: float = 100.0, timing: Mapping[str, Any] | None = None):
        self.dt = check_dt(dt)
        self.timing = make_timing({"fixation": 0, "stimulus": 500, "delay": 500,
                                   "decision": 500}, timing, self.dt)
        self.n_steps = max_steps(self.timing, self.dt)
        self.input_names = ("fixation", "nogo", "go")
        self.output_names = ("fixate", "go")

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_t, k_gt = jr.split(key)
        s = sample_schedule(k_t, self.timing, self.dt, b, self.n_steps)
        gt = jr.randint(k_gt, (b,), 0, 2, dtype=jnp.int32)
        decision = s.mask("decision")
        cue = gt[:, None] == jnp.arange(2, dtype=jnp.int32)[None, :]
        cue = cue[:, None, :] & s.mask("stimulus")[..., None]
        inputs = jnp.concatenate([(s.valid() & ~decision)[..., None], cue], axis=-1)
        inputs = inputs.astype(jnp.result_type(float))
        labels = jnp.where(decision, gt[:, None], 0)
        return choice_trial(s, inputs, labels, decision, {"ground_truth": gt}, self.n_out,
                            self.dt)
