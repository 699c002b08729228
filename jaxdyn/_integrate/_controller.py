"""diffrax's step-size control measured on what is reported: the state and each tangent."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax.numpy as jnp


class BlockNorm(eqx.Module):
    """The step's error from the scaled error `(x, v_1, …, v_k, q)`: the largest RMS of the
    state's and each controlled tangent's block (`k = 0`: the state's alone)."""

    n: int = eqx.field(static=True)
    k: int = eqx.field(static=True)

    def __call__(self, r):
        n = self.n
        norm = jnp.sqrt(jnp.mean(r[:n] ** 2))
        for j in range(self.k):
            norm = jnp.maximum(norm, jnp.sqrt(jnp.mean(r[n * (j + 1): n * (j + 2)] ** 2)))
        return norm


class TangentScaled(diffrax.AbstractAdaptiveStepSizeController):
    """diffrax's PID controller with each tangent's absolute tolerance scaled by its RMS size
    (as in the batch-native loop): the error handed on is rescaled so that the inner
    controller's `err / (atol + rtol·|y|)` is `err / (atol·‖v‖ + rtol·|v|)` on tangents."""

    inner: diffrax.PIDController
    n: int = eqx.field(static=True)
    k: int = eqx.field(static=True)

    @property
    def rtol(self):
        return self.inner.rtol

    @property
    def atol(self):
        return self.inner.atol

    @property
    def norm(self):
        return self.inner.norm

    def wrap(self, direction):
        return eqx.tree_at(lambda c: c.inner, self, self.inner.wrap(direction))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        return self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order,
                        controller_state):
        n, k = self.n, self.k
        size = jnp.maximum(jnp.abs(y0), jnp.abs(y1_candidate))
        base = self.atol + self.rtol * size
        weight = jnp.ones_like(y0)
        for j in range(k):
            block = y0[n * (j + 1): n * (j + 2)]
            rms = jnp.maximum(jnp.sqrt(jnp.mean(block * block)), jnp.finfo(y0.dtype).tiny)
            weight = weight.at[n * (j + 1): n * (j + 2)].set(rms)
        mine = self.atol * weight + self.rtol * size
        y_error = jnp.where(jnp.isfinite(y_error), y_error * (base / mine), y_error)
        return self.inner.adapt_step_size(t0, t1, y0, y1_candidate, args, y_error, error_order,
                                          controller_state)
