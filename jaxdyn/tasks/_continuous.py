"""Continuous-memory tasks whose trained networks form point, line and ring attractors."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import PRNGKeyArray

from .._validate import check_choice, check_int, check_number
from ._base import (
    AbstractRegressionTask,
    Trial,
    check_batch_size,
    regression_trial,
)
from ._epochs import Schedule, Timing, check_dt, make_timing, max_steps, sample_schedule, to_steps


def _single_epoch(duration: Any, dt: float) -> int:
    duration = check_number(duration, "duration", open_low=True)
    n = to_steps(duration, dt)
    if n < 1:
        raise ValueError(f"`duration` must last at least one step of dt = {dt} ms (durations "
                         f"are floored to whole steps); got {duration!r}.")
    return n


def _whole(b: int, n: int) -> Schedule:
    return Schedule(("trial",), jnp.full((b, 1), n, dtype=jnp.int32), n)


class FlipFlop(AbstractRegressionTask):
    """The n-bit flip-flop: each output holds the sign of the last pulse on its input
    (Sussillo & Barak 2013).

    Inputs and outputs are `n_bits` channels. At every step each input channel carries a pulse
    with probability `p`, of sign ±1 with equal probability, else 0. The target of a channel is
    the sign of its most recent pulse (including the current step), 0 before its first pulse.
    One epoch, `"trial"`; every step is weighted and scored. A trained network has `2^n_bits`
    stable fixed points at the corners of a cube. (The setup of Golub & Sussillo 2018 pulses
    every bit at step 0, with p = 0.5; by default this version starts at 0 and uses rarer
    pulses, so that the outputs must be held longer. `initial_pulse=True` restores the pulse
    at step 0.)

    **Arguments (keyword-only):** `n_bits` (3), `p` (0.05), `initial_pulse` (False),
    `duration` (1000 ms), `dt` (10 ms): 100 steps.

    `info`: `n_pulses` `[B, n_bits]`.
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    n_bits: int = eqx.field(static=True)
    p: float = eqx.field(static=True)
    initial_pulse: bool = eqx.field(static=True)

    def __init__(self, *, n_bits: int = 3, p: float = 0.05, initial_pulse: bool = False,
                 duration: float = 1000.0, dt: float = 10.0):
        self.dt = check_dt(dt)
        self.n_steps = _single_epoch(duration, self.dt)
        self.n_bits = check_int(n_bits, "n_bits", minimum=1)
        self.p = check_number(p, "p", high=1.0)
        self.initial_pulse = check_choice(initial_pulse, "initial_pulse", (False, True))
        self.input_names = tuple(f"pulse{i + 1}" for i in range(self.n_bits))
        self.output_names = tuple(f"bit{i + 1}" for i in range(self.n_bits))

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_pulse, k_sign = jr.split(key)
        shape = (b, self.n_steps, self.n_bits)
        pulse = jr.bernoulli(k_pulse, self.p, shape)
        if self.initial_pulse:
            pulse = pulse.at[:, 0, :].set(True)
        sign = jnp.where(jr.bernoulli(k_sign, 0.5, shape), 1.0, -1.0)
        inputs = jnp.where(pulse, sign, 0.0).astype(jnp.result_type(float))
        t = jnp.arange(self.n_steps)[None, :, None]
        last = jax.lax.cummax(jnp.where(pulse, t, -1), axis=1)
        held = jnp.take_along_axis(inputs, jnp.maximum(last, 0), axis=1)
        targets = jnp.where(last >= 0, held, 0.0)
        info = {"n_pulses": jnp.sum(pulse, axis=1).astype(jnp.int32)}
        return regression_trial(_whole(b, self.n_steps), inputs, targets, info, self.dt)


class Integrator(AbstractRegressionTask):
    """Integrate white noise: the output is the running sum of the input (a line attractor;
    Seung 1996).

    The input is the increment of a scaled Brownian motion with drift: with `Δ = dt/duration`,
    `u_k = b·Δ + sigma·√Δ·ξ_k`, ξ_k ~ N(0, 1), and a per-trial drift `b ~ U(−bias, bias)`.
    The target is the running integral `y_k = Σ_{j<=k} u_j`, so that
    `y(t) ≈ b·t/duration + sigma·W(t/duration)`: at the end of a trial its standard deviation
    is `sigma` whatever `dt`. One epoch, `"trial"`; every step is weighted and scored.

    **Arguments (keyword-only):** `sigma` (1), `bias` (0), `duration` (1000 ms), `dt` (10 ms):
    100 steps, per-step input std 0.1.

    `info`: `bias` (the drift b).
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    bias: float = eqx.field(static=True)
    duration: float = eqx.field(static=True)

    def __init__(self, *, sigma: float = 1.0, bias: float = 0.0, duration: float = 1000.0,
                 dt: float = 10.0):
        self.dt = check_dt(dt)
        self.n_steps = _single_epoch(duration, self.dt)
        self.duration = float(duration)
        self.sigma = check_number(sigma, "sigma")
        self.bias = check_number(bias, "bias")
        self.input_names = ("input",)
        self.output_names = ("integral",)

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_bias, k_noise = jr.split(key)
        delta = self.dt / self.duration
        drift = jr.uniform(k_bias, (b,), minval=-self.bias, maxval=self.bias)
        xi = jr.normal(k_noise, (b, self.n_steps, 1), drift.dtype)
        inputs = drift[:, None, None] * delta + self.sigma * math.sqrt(delta) * xi
        targets = jnp.cumsum(inputs, axis=1)
        return regression_trial(_whole(b, self.n_steps), inputs, targets, {"bias": drift},
                                self.dt)


class AngularIntegration(AbstractRegressionTask):
    """Integrate an angular velocity into a heading on the circle (a ring attractor; cf. head
    direction cells, Cueva, Wang, Chin & Wei 2020).

    Inputs `[velocity, cue_cos, cue_sin]`; outputs `[cos θ, sin θ]`. Each trial starts at a
    heading θ0 ~ U(0, 2π) that the cue channels show as `(cos θ0, sin θ0)` during the cue
    epoch, with zero velocity. In the integration epoch the angular velocity ω (rad/s, the
    input) is a stationary Ornstein–Uhlenbeck process of standard deviation `sigma` and time
    constant `tau` (exactly discretised: `ω_k = a·ω_{k−1} + sigma·√(1 − a²)·ξ_k`,
    `a = exp(−dt/tau)`), and the heading is `θ_k = θ0 + Σ_{j<=k} ω_j·dt/1000`. The target is
    `(cos θ_k, sin θ_k)` at every step.

    **Arguments (keyword-only):** `timing` (cue 100 ms, integration 900 ms), `sigma`
    (2 rad/s), `tau` (100 ms), `dt` (10 ms): 100 steps.

    `info`: `theta0`, `heading` `[B, T]` (θ_k, unwrapped).
    """

    dt: float = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_names: tuple[str, ...] = eqx.field(static=True)
    timing: Timing = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    tau: float = eqx.field(static=True)

    def __init__(self, *, timing: Mapping[str, Any] | None = None, sigma: float = 2.0,
                 tau: float = 100.0, dt: float = 10.0):
        self.dt = check_dt(dt)
        self.timing = make_timing({"cue": 100, "integration": 900}, timing, self.dt,
                                  required=("cue", "integration"))
        self.n_steps = max_steps(self.timing, self.dt)
        self.sigma = check_number(sigma, "sigma")
        self.tau = check_number(tau, "tau", open_low=True)
        self.input_names = ("velocity", "cue_cos", "cue_sin")
        self.output_names = ("cos", "sin")

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Trial:
        """Draw `batch_size` trials (see `AbstractTask.sample`)."""
        b = check_batch_size(batch_size)
        k_t, k_theta, k_w0, k_noise = jr.split(key, 4)
        s = sample_schedule(k_t, self.timing, self.dt, b, self.n_steps)
        theta0 = jr.uniform(k_theta, (b,), maxval=2 * jnp.pi)
        a = math.exp(-self.dt / self.tau)
        w0 = self.sigma * jr.normal(k_w0, (b,), theta0.dtype)
        xi = self.sigma * math.sqrt(1 - a * a) * jr.normal(k_noise, (self.n_steps, b),
                                                           theta0.dtype)

        def step(w, x):
            w = a * w + x
            return w, w

        _, w = jax.lax.scan(step, w0, xi)
        omega = jnp.where(s.mask("integration"), w.T, 0.0)
        heading = theta0[:, None] + jnp.cumsum(omega, axis=1) * (self.dt / 1000)
        cue = jnp.where(s.mask("cue")[..., None],
                        jnp.stack([jnp.cos(theta0), jnp.sin(theta0)], axis=-1)[:, None, :], 0.0)
        inputs = jnp.concatenate([omega[..., None], cue], axis=-1)
        targets = jnp.stack([jnp.cos(heading), jnp.sin(heading)], axis=-1)
        info = {"theta0": theta0, "heading": heading}
        return regression_trial(s, inputs, targets, info, self.dt)
