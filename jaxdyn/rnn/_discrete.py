"""Discrete-time recurrent networks: vanilla RNN, GRU and LSTM, each a `jd.Map`."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._system import AbstractMap
from .._validate import check_choice
from ._base import (
    NONLINEARITIES,
    AbstractRNN,
    check_nonlinearity,
    check_sizes,
    linear_init,
    nonlinearity_derivative,
    recurrent_init,
    uniform,
)


def _gated_weights(key, n_gates: int, n_in: int, n_hidden: int, init: str):
    """Stacked gate weights `W_ih [G·H, n_in]`, `W_hh [G·H, H]`, `b_ih`, `b_hh`, drawn
    U(±1/√H) as PyTorch does; `init="orthogonal"` makes each recurrent block orthogonal."""
    check_choice(init, "init", ("uniform", "orthogonal"))
    dtype = jnp.result_type(float)
    k_ih, k_hh, k_bi, k_bh = jr.split(key, 4)
    bound = 1.0 / math.sqrt(n_hidden)
    G = n_gates * n_hidden
    W_ih = uniform(k_ih, (G, n_in), bound, dtype)
    if init == "orthogonal":
        keys = jr.split(k_hh, n_gates)
        W_hh = jnp.concatenate([recurrent_init(k, n_hidden, "orthogonal", 1.0, dtype)
                                for k in keys], axis=0)
    else:
        W_hh = uniform(k_hh, (G, n_hidden), bound, dtype)
    return W_ih, W_hh, uniform(k_bi, (G,), bound, dtype), uniform(k_bh, (G,), bound, dtype)


class VanillaRNN(AbstractRNN, AbstractMap):
    """The discrete vanilla (Elman) network `h ← φ(W h + B u + b)`, a `jd.Map` on `h`.

    Equals PyTorch's `nn.RNN` with `b = b_ih + b_hh`.

    **Arguments:**

    - `n_in`, `n_hidden`, `n_out`: input, hidden and output sizes.
    - `key`: PRNG key for the initial weights.
    - `nonlinearity`: `"tanh"` (default) or `"relu"` (also `"softplus"`, `"sigmoid"`).
    - `init`: recurrent initialisation, `"uniform"` (default, PyTorch's U(±g/√N)),
      `"orthogonal"`, `"normal"` (N(0, g²/N)) or `"identity"`; `g` its gain.
    """

    W: Float[Array, "n n"]
    B: Float[Array, "n n_in"]
    b: Float[Array, " n"]
    W_out: Float[Array, "n_out n"]
    b_out: Float[Array, " n_out"]
    n_in: int = eqx.field(static=True)
    n_hidden: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    nonlinearity: str = eqx.field(static=True)
    fixed_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, key: PRNGKeyArray,
                 nonlinearity: str = "tanh", init: str = "uniform", g: float = 1.0):
        self.n_in, self.n_hidden, self.n_out = check_sizes(n_in, n_hidden, n_out)
        self.nonlinearity = check_nonlinearity(nonlinearity)
        kw, kin, kout = jr.split(key, 3)
        dtype = jnp.result_type(float)
        self.W = recurrent_init(kw, n_hidden, init, g, dtype)
        self.B, self.b = linear_init(kin, n_hidden, n_in, dtype)
        self.W_out, self.b_out = linear_init(kout, n_out, n_hidden, dtype)

    @property
    def state_size(self) -> int:
        return self.n_hidden

    @property
    def noise_scale(self) -> Array:
        return jnp.asarray(1.0, self.W.dtype)

    @property
    def recurrent_weights(self) -> Array:
        return self.W

    def config(self) -> dict:
        return {"nonlinearity": self.nonlinearity}

    def __call__(self, t, x, args):
        return self.step(x, args)

    def step(self, x, u):
        return NONLINEARITIES[self.nonlinearity](self.W @ x + self.B @ u + self.b)

    def state_jacobian(self, x, args):
        """`∂h'/∂h = diag(φ'(W h + B u + b)) W`."""
        a = self.W @ x + self.B @ args + self.b
        return nonlinearity_derivative(self.nonlinearity, a)[:, None] * self.W

    def rates(self, x):
        return x


class GRU(AbstractRNN, AbstractMap):
    """A gated recurrent unit network, a `jd.Map` on the hidden state `h`.

    Gate rows are stacked in PyTorch's order (r, z, n):

    - `r = σ(W_ir u + b_ir + W_hr h + b_hr)`, `z = σ(W_iz u + b_iz + W_hz h + b_hz)`
    - `reset_after=True` (PyTorch; Keras's default since TF 2):
      `n = tanh(W_in u + b_in + r ⊙ (W_hn h + b_hn))`
    - `reset_after=False` (Cho et al. 2014): `n = tanh(W_in u + b_in + W_hn (r ⊙ h) + b_hn)`
    - `h' = (1 − z) ⊙ n + z ⊙ h`

    The two forms are different dynamical systems; `from_torch` needs `reset_after=True`.

    **Arguments:**

    - `n_in`, `n_hidden`, `n_out`: sizes; `key`: PRNG key.
    - `reset_after`: where the reset gate acts (default `True`, PyTorch's form).
    - `init`: `"uniform"` (PyTorch's U(±1/√H), default) or `"orthogonal"` recurrent blocks.

    Reference: Cho et al., "Learning phrase representations using RNN encoder–decoder", 2014.
    """

    W_ih: Float[Array, "3n n_in"]
    W_hh: Float[Array, "3n n"]
    b_ih: Float[Array, " 3n"]
    b_hh: Float[Array, " 3n"]
    W_out: Float[Array, "n_out n"]
    b_out: Float[Array, " n_out"]
    n_in: int = eqx.field(static=True)
    n_hidden: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    reset_after: bool = eqx.field(static=True)
    fixed_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, key: PRNGKeyArray,
                 reset_after: bool = True, init: str = "uniform"):
        self.n_in, self.n_hidden, self.n_out = check_sizes(n_in, n_hidden, n_out)
        self.reset_after = bool(reset_after)
        kg, kout = jr.split(key)
        self.W_ih, self.W_hh, self.b_ih, self.b_hh = _gated_weights(kg, 3, n_in, n_hidden, init)
        self.W_out, self.b_out = linear_init(kout, n_out, n_hidden)

    @property
    def state_size(self) -> int:
        return self.n_hidden

    @property
    def noise_scale(self) -> Array:
        return jnp.asarray(1.0, self.W_hh.dtype)

    @property
    def recurrent_weights(self) -> Array:
        return self.W_hh

    def config(self) -> dict:
        return {"reset_after": self.reset_after}

    def __call__(self, t, x, args):
        return self.step(x, args)

    def step(self, x, u):
        H = self.n_hidden
        gi = self.W_ih @ u + self.b_ih
        r = jax.nn.sigmoid(gi[:H] + self.W_hh[:H] @ x + self.b_hh[:H])
        z = jax.nn.sigmoid(gi[H:2 * H] + self.W_hh[H:2 * H] @ x + self.b_hh[H:2 * H])
        if self.reset_after:
            n = jnp.tanh(gi[2 * H:] + r * (self.W_hh[2 * H:] @ x + self.b_hh[2 * H:]))
        else:
            n = jnp.tanh(gi[2 * H:] + self.W_hh[2 * H:] @ (r * x) + self.b_hh[2 * H:])
        return (1.0 - z) * n + z * x

    def state_jacobian(self, x, args):
        """`∂h'/∂h = diag(1 − z) ∂n/∂h + diag(h − n) ∂z/∂h + diag(z)`, with the gate
        derivatives as row scalings of the recurrent blocks."""
        H = self.n_hidden
        W_r, W_z, W_n = self.W_hh[:H], self.W_hh[H:2 * H], self.W_hh[2 * H:]
        gi = self.W_ih @ args + self.b_ih
        gh = self.W_hh @ x + self.b_hh
        r = jax.nn.sigmoid(gi[:H] + gh[:H])
        z = jax.nn.sigmoid(gi[H:2 * H] + gh[H:2 * H])
        dr = (r * (1.0 - r))[:, None] * W_r
        if self.reset_after:
            n = jnp.tanh(gi[2 * H:] + r * gh[2 * H:])
            da = r[:, None] * W_n + gh[2 * H:][:, None] * dr
        else:
            n = jnp.tanh(gi[2 * H:] + W_n @ (r * x) + self.b_hh[2 * H:])
            da = W_n * r[None, :] + W_n @ (x[:, None] * dr)
        dn = (1.0 - n**2)[:, None] * da
        dz = (z * (1.0 - z))[:, None] * W_z
        return (1.0 - z)[:, None] * dn + (x - n)[:, None] * dz + jnp.diag(z)

    def rates(self, x):
        return x


class LSTM(AbstractRNN, AbstractMap):
    """A long short-term memory network, a `jd.Map` on the joined state `x = [h, c]`.

    The hidden state `h` and the cell state `c` are joined into one vector of size `2H` here,
    once, so every analysis sees an ordinary 1-D state. Gate rows in PyTorch's order
    (i, f, g, o): `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`; the readout sees `h`.

    **Arguments:**

    - `n_in`, `n_hidden`, `n_out`: sizes (the state has size `2·n_hidden`); `key`: PRNG key.
    - `init`: `"uniform"` (PyTorch's U(±1/√H), default) or `"orthogonal"` recurrent blocks.
    - `forget_bias`: added to the forget-gate bias at initialisation (default 0, as PyTorch;
      1 is the common choice of Gers et al. 2000 and Jozefowicz et al. 2015).

    Reference: Hochreiter & Schmidhuber 1997; with the forget gate of Gers, Schmidhuber &
    Cummins 2000.
    """

    W_ih: Float[Array, "4n n_in"]
    W_hh: Float[Array, "4n n"]
    b_ih: Float[Array, " 4n"]
    b_hh: Float[Array, " 4n"]
    W_out: Float[Array, "n_out n"]
    b_out: Float[Array, " n_out"]
    n_in: int = eqx.field(static=True)
    n_hidden: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    fixed_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, key: PRNGKeyArray,
                 init: str = "uniform", forget_bias: float = 0.0):
        self.n_in, self.n_hidden, self.n_out = check_sizes(n_in, n_hidden, n_out)
        kg, kout = jr.split(key)
        W_ih, W_hh, b_ih, b_hh = _gated_weights(kg, 4, n_in, n_hidden, init)
        self.W_ih, self.W_hh, self.b_hh = W_ih, W_hh, b_hh
        self.b_ih = b_ih.at[n_hidden:2 * n_hidden].add(forget_bias)
        self.W_out, self.b_out = linear_init(kout, n_out, n_hidden)

    @property
    def state_size(self) -> int:
        return 2 * self.n_hidden

    @property
    def noise_scale(self) -> Array:
        return jnp.asarray(1.0, self.W_hh.dtype)

    @property
    def recurrent_weights(self) -> Array:
        return self.W_hh

    def config(self) -> dict:
        return {}

    def split(self, x: Float[Array, " 2n"]) -> tuple[Array, Array]:
        """`(h, c)` from the joined state."""
        return x[: self.n_hidden], x[self.n_hidden:]

    def __call__(self, t, x, args):
        return self.step(x, args)

    def step(self, x, u):
        H = self.n_hidden
        h, c = self.split(x)
        gates = self.W_ih @ u + self.b_ih + self.W_hh @ h + self.b_hh
        i = jax.nn.sigmoid(gates[:H])
        f = jax.nn.sigmoid(gates[H:2 * H])
        g = jnp.tanh(gates[2 * H:3 * H])
        o = jax.nn.sigmoid(gates[3 * H:])
        c_new = f * c + i * g
        return jnp.concatenate([o * jnp.tanh(c_new), c_new])

    def state_jacobian(self, x, args):
        """The `2H × 2H` Jacobian of `[h', c']` with respect to `[h, c]`, from the gate
        derivatives (row scalings of the recurrent blocks)."""
        H = self.n_hidden
        h, c = self.split(x)
        gates = self.W_ih @ args + self.b_ih + self.W_hh @ h + self.b_hh
        i = jax.nn.sigmoid(gates[:H])
        f = jax.nn.sigmoid(gates[H:2 * H])
        g = jnp.tanh(gates[2 * H:3 * H])
        o = jax.nn.sigmoid(gates[3 * H:])
        c_new = f * c + i * g
        tc = jnp.tanh(c_new)
        W_i, W_f, W_g, W_o = (self.W_hh[k * H:(k + 1) * H] for k in range(4))
        dc_dh = ((c * f * (1 - f))[:, None] * W_f + (g * i * (1 - i))[:, None] * W_i
                 + (i * (1 - g**2))[:, None] * W_g)
        dc_dc = jnp.diag(f)
        dh_dh = (tc * o * (1 - o))[:, None] * W_o + (o * (1 - tc**2))[:, None] * dc_dh
        dh_dc = jnp.diag(o * (1 - tc**2) * f)
        return jnp.block([[dh_dh, dh_dc], [dc_dh, dc_dc]])

    def rates(self, x):
        return x[: self.n_hidden]
