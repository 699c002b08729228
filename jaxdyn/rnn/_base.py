"""The shared shape of every RNN model: a system with an input, a readout, and `run`."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._system import AbstractJacobianSystem
from .._validate import check_choice, check_int, check_positive

NONLINEARITIES = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
}


def nonlinearity_derivative(name: str, a: Array) -> Array:
    """The elementwise derivative φ'(a) of the nonlinearity `name` (φ'(0) = 0 for ReLU, as
    autodiff has it)."""
    if name == "tanh":
        return 1.0 - jnp.tanh(a) ** 2
    if name == "relu":
        return (a > 0).astype(a.dtype)
    s = jax.nn.sigmoid(a)
    return s if name == "softplus" else s * (1.0 - s)


class AbstractRNN(AbstractJacobianSystem):
    """A recurrent network that is also a system `f(t, x, u)` with its input `u` as `args`.

    Final subclasses provide `step(x, u)` (one discrete update of the state), `rates(x)` (the
    activity that the readout sees), `state_size`, `noise_scale`, `state_jacobian(x, u)`
    (the closed-form Jacobian of the system, which `jd.jacobian` and the fixed-point solver
    use), `config()`, `recurrent_weights` and `fixed_fields` (array fields that training
    leaves alone, such as a CTRNN's time constants). The readout is linear:
    `y = W_out · rates(x) + b_out`.
    """

    n_in: eqx.AbstractVar[int]
    n_hidden: eqx.AbstractVar[int]
    n_out: eqx.AbstractVar[int]
    W_out: eqx.AbstractVar[Float[Array, "n_out n_hidden"]]
    b_out: eqx.AbstractVar[Float[Array, " n_out"]]
    fixed_fields: eqx.AbstractClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def config(self) -> dict:
        """The constructor options that shape this model, besides its sizes and key, as plain
        JSON values: `type(model)(n_in, n_hidden, n_out, key=k, **model.config())` builds a
        model of the same structure (what `save_model` records)."""

    @property
    @abc.abstractmethod
    def recurrent_weights(self) -> Float[Array, "m n_hidden"]:
        """The recurrent weight matrix (the one `train(..., weight_reg=...)` penalises)."""

    @property
    @abc.abstractmethod
    def state_size(self) -> int:
        """Length of the state vector `x` that every analysis sees."""

    @abc.abstractmethod
    def step(self, x: Float[Array, " n"], u: Float[Array, " n_in"]) -> Float[Array, " n"]:
        """One discrete update `x_{k+1}` of the network driven by input `u`."""

    @abc.abstractmethod
    def rates(self, x: Float[Array, " n"]) -> Float[Array, " n_hidden"]:
        """The hidden activity read out by `W_out`."""

    @property
    @abc.abstractmethod
    def noise_scale(self) -> Array:
        """Factor applied to `noise_std` in `run` (√(2α) for a CTRNN, 1 for a discrete RNN)."""

    def readout(self, x: Float[Array, " n"]) -> Float[Array, " n_out"]:
        """The network's output `W_out · rates(x) + b_out`."""
        return self.W_out @ self.rates(x) + self.b_out

    def init_state(self) -> Float[Array, " n"]:
        """The zero state, in the dtype of the weights."""
        return jnp.zeros(self.state_size, dtype=self.W_out.dtype)

    def run(
        self,
        x0: Float[Array, " n"] | None,
        inputs: Float[Array, "T n_in"],
        *,
        key: PRNGKeyArray | None = None,
        noise_std: ArrayLike = 0.0,
    ) -> tuple[Float[Array, "T n"], Float[Array, "T n_out"]]:
        """Run the network over an input sequence with `lax.scan`.

        **Arguments:**

        - `x0`: the initial state, shape `(state_size,)`; `None` means zeros.
        - `inputs`: the input sequence, shape `[T, n_in]`.
        - `key`, `noise_std`: optional private noise added to every update,
          `x ← step(x, u) + noise_scale · noise_std · ξ` with ξ standard normal (for a CTRNN
          `noise_scale = √(2·dt/τ)`, so the continuous-time limit is an Ornstein–Uhlenbeck
          drive of standard deviation `noise_std`).

        **Returns:** `(states, outputs)`, shapes `[T, state_size]` and `[T, n_out]`;
        `states[k]` is the state after input `k`.
        """
        if getattr(inputs, "ndim", None) != 2 or inputs.shape[-1] != self.n_in:
            raise ValueError(
                f"`inputs` must have shape (T, n_in) = (T, {self.n_in}); got shape "
                f"{getattr(inputs, 'shape', type(inputs).__name__)}."
            )
        if x0 is None:
            x0 = self.init_state()
        elif getattr(x0, "shape", None) != (self.state_size,):
            raise ValueError(
                f"`x0` must have shape ({self.state_size},) (the state size); got shape "
                f"{getattr(x0, 'shape', type(x0).__name__)}."
            )
        x0 = jnp.asarray(x0, dtype=self.W_out.dtype)
        inputs = jnp.asarray(inputs, dtype=self.W_out.dtype)
        if key is None:
            noise = jnp.zeros((inputs.shape[0], self.state_size), x0.dtype)
        else:
            noise = jr.normal(key, (inputs.shape[0], self.state_size), x0.dtype)
        # A scalar, or one value per unit (a vector tau), in the state's dtype.
        scale = jnp.asarray(self.noise_scale * noise_std, x0.dtype)

        def body(x, u_xi):
            u, xi = u_xi
            x = self.step(x, u) + scale * xi
            return x, (x, self.readout(x))

        _, (states, outputs) = jax.lax.scan(body, x0, (inputs, noise))
        return states, outputs


def check_sizes(n_in: int, n_hidden: int, n_out: int) -> tuple[int, int, int]:
    """Validate the three layer sizes of a network."""
    return (check_int(n_in, "n_in"), check_int(n_hidden, "n_hidden"),
            check_int(n_out, "n_out"))


def check_nonlinearity(nonlinearity: str) -> str:
    return check_choice(nonlinearity, "nonlinearity", tuple(NONLINEARITIES))


def uniform(key: PRNGKeyArray, shape: tuple[int, ...], bound: float, dtype=None) -> Array:
    """U(−bound, bound): PyTorch's default for `nn.Linear` and recurrent layers."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jr.uniform(key, shape, dtype, -bound, bound)


def recurrent_init(key: PRNGKeyArray, n: int, init: str, g: float, dtype=None) -> Array:
    """An `n × n` recurrent matrix: `"orthogonal"` (scaled by `g`), `"normal"`
    (N(0, g²/n), the scaled random networks of Sompolinsky et al. 1988), `"identity"`
    (`g·I`, Le et al. 2015) or `"uniform"` (U(±g/√n), PyTorch's default when g = 1)."""
    check_choice(init, "init", ("orthogonal", "normal", "identity", "uniform"))
    check_positive(g, "g")
    dtype = jnp.result_type(float) if dtype is None else dtype
    if init == "orthogonal":
        return g * jax.nn.initializers.orthogonal()(key, (n, n), dtype)
    if init == "normal":
        return (g / math.sqrt(n)) * jr.normal(key, (n, n), dtype)
    if init == "identity":
        return g * jnp.eye(n, dtype=dtype)
    return uniform(key, (n, n), g / math.sqrt(n), dtype)


def linear_init(key: PRNGKeyArray, n_out: int, n_in: int, dtype=None) -> tuple[Array, Array]:
    """Weight and bias of a linear layer, U(±1/√n_in) as PyTorch's `nn.Linear`."""
    kw, kb = jr.split(key)
    bound = 1.0 / math.sqrt(n_in)
    return uniform(kw, (n_out, n_in), bound, dtype), uniform(kb, (n_out,), bound, dtype)
