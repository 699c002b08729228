"""Continuous-time RNN (rate or voltage form) and its scaled random variant."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._system import AbstractFlow, Map
from .._validate import check_choice, check_positive
from ._base import (
    NONLINEARITIES,
    AbstractRNN,
    check_nonlinearity,
    check_sizes,
    linear_init,
    nonlinearity_derivative,
    recurrent_init,
)


class CTRNN(AbstractRNN, AbstractFlow):
    """A continuous-time recurrent network; as a system it is the flow of its ODE.

    Two forms are in use, and the state that analyses see differs:

    - `form="rate"` (NeuroGym/Yang-lab tutorials, the DSA literature): the state is the rate
      `h`, `τ dh/dt = −h + φ(W h + B u + b)`, read out from `h`.
    - `form="voltage"` (Mante et al. 2013; Sussillo & Barak 2013): the state is the current
      `x`, `τ dx/dt = −x + W φ(x) + B u + b`, read out from the rates `φ(x)`.

    `step` (used by `run` and by training) is the forward-Euler map with `α = dt/τ`:
    `x ← x + α·τ·f(x, u)`; with `dt = τ` the rate form is the vanilla RNN `h ← φ(W h + B u + b)`.
    `as_map()` returns that Euler map as a `jd.Map` for discrete-time analyses.

    **Arguments:**

    - `n_in`, `n_hidden`, `n_out`: input, hidden and output sizes.
    - `key`: a PRNG key for the initial weights.
    - `tau`, `dt`: time constant and Euler step, in the task's time unit (ms); defaults
      100 and 20 (α = 0.2).
    - `nonlinearity`: `"tanh"` (default), `"relu"`, `"softplus"` or `"sigmoid"`.
    - `form`: `"rate"` (default) or `"voltage"`.
    - `init`: recurrent initialisation, `"orthogonal"` (default), `"normal"` (N(0, g²/N)),
      `"identity"` or `"uniform"`.
    - `g`: gain of the recurrent initialisation.

    Input weights `B` and the readout are initialised as PyTorch's `nn.Linear`; the bias `b`
    starts at zero.
    """

    W: Float[Array, "n n"]
    B: Float[Array, "n n_in"]
    b: Float[Array, " n"]
    W_out: Float[Array, "n_out n"]
    b_out: Float[Array, " n_out"]
    tau: Float[Array, ""]
    dt: Float[Array, ""]
    n_in: int = eqx.field(static=True)
    n_hidden: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    nonlinearity: str = eqx.field(static=True)
    form: str = eqx.field(static=True)
    fixed_fields: ClassVar[tuple[str, ...]] = ("tau", "dt")

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        n_out: int,
        *,
        key: PRNGKeyArray,
        tau: ArrayLike = 100.0,
        dt: ArrayLike = 20.0,
        nonlinearity: str = "tanh",
        form: str = "rate",
        init: str = "orthogonal",
        g: float = 1.0,
    ):
        self.n_in, self.n_hidden, self.n_out = check_sizes(n_in, n_hidden, n_out)
        check_positive(tau, "tau")
        check_positive(dt, "dt")
        self.nonlinearity = check_nonlinearity(nonlinearity)
        self.form = check_choice(form, "form", ("rate", "voltage"))
        kw, kin, kout = jr.split(key, 3)
        dtype = jnp.result_type(float)
        self.W = recurrent_init(kw, n_hidden, init, g, dtype)
        self.B, _ = linear_init(kin, n_hidden, n_in, dtype)
        self.b = jnp.zeros(n_hidden, dtype)
        self.W_out, self.b_out = linear_init(kout, n_out, n_hidden, dtype)
        self.tau = jnp.asarray(tau, dtype)
        self.dt = jnp.asarray(dt, dtype)

    @property
    def state_size(self) -> int:
        return self.n_hidden

    @property
    def recurrent_weights(self) -> Array:
        return self.W

    def config(self) -> dict:
        return {"nonlinearity": self.nonlinearity, "form": self.form,
                "tau": np.asarray(self.tau).tolist(), "dt": np.asarray(self.dt).tolist()}

    @property
    def alpha(self) -> Array:
        """The Euler step in units of τ, `dt/τ`."""
        return self.dt / self.tau

    @property
    def noise_scale(self) -> Array:
        return jnp.sqrt(2.0 * self.alpha)

    def _drive(self, x: Array, u: Array) -> Array:
        """`τ·dx/dt + x`: the quantity the state relaxes to."""
        phi = NONLINEARITIES[self.nonlinearity]
        if self.form == "rate":
            return phi(self.W @ x + self.B @ u + self.b)
        return self.W @ phi(x) + self.B @ u + self.b

    def __call__(self, t, x, args):
        """The vector field `dx/dt` at input `args` (the input vector `u`)."""
        return (self._drive(x, args) - x) / self.tau

    def step(self, x, u):
        return x + self.alpha * (self._drive(x, u) - x)

    def state_jacobian(self, x, args):
        """`∂(dx/dt)/∂x = (D − I)/τ`, with `D = diag(φ'(a)) W` (rate form, `a = Wx + Bu + b`)
        or `W diag(φ'(x))` (voltage form)."""
        if self.form == "rate":
            a = self.W @ x + self.B @ args + self.b
            d = nonlinearity_derivative(self.nonlinearity, a)[:, None] * self.W
        else:
            d = self.W * nonlinearity_derivative(self.nonlinearity, x)[None, :]
        return (d - jnp.eye(x.shape[0], dtype=d.dtype)) / self.tau

    def rates(self, x):
        return x if self.form == "rate" else NONLINEARITIES[self.nonlinearity](x)

    def as_map(self) -> Map:
        """The Euler discretisation `x ← x + (dt/τ)(−x + …)` as a discrete-time system."""
        return Map(_EulerStep(self))


class _EulerStep(eqx.Module):
    model: CTRNN

    def __call__(self, t, x, u):
        return self.model.step(x, u)


def scaled_ctrnn(
    n_in: int,
    n_hidden: int,
    n_out: int,
    *,
    key: PRNGKeyArray,
    g: float = 1.5,
    init: str = "normal",
    **kwargs,
) -> CTRNN:
    """The scaled random ("vanilla") CTRNN of the chaotic-network and DSA literature: a
    rate-form tanh `CTRNN` with recurrent weights drawn from N(0, g²/N).

    For large N the autonomous network is chaotic when `g > 1` (Sompolinsky, Crisanti &
    Sommers 1988). `init="orthogonal"` instead draws `g` times a random orthogonal matrix
    (`WᵀW = g²I`), the same spectral radius without the random-matrix spread. Other keyword
    arguments go to `CTRNN`.

    **Returns:** a `CTRNN`.

    **Raises:** `ValueError` as `CTRNN` does.
    """
    kwargs.setdefault("nonlinearity", "tanh")
    return CTRNN(n_in, n_hidden, n_out, key=key, init=init, g=g, **kwargs)
