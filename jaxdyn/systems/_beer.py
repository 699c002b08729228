"""Beer's small continuous-time recurrent neural networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._system import AbstractFlow
from .._validate import check_int, real_array
from ._common import primary

# Default weights, W[i, j] = w_ji (from neuron j to neuron i). One neuron with a strong
# self-excitation (w > 4 = 1/σ'(0)) is bistable over a range of inputs; the two-neuron circuit
# (self-excitation 4.5, cross-coupling ±1) is a center-crossing oscillator.
_DEFAULT_W = {1: [[6.0]], 2: [[4.5, 1.0], [-1.0, 4.5]]}


class BeerCTRNN(AbstractFlow):
    """Beer's CTRNN; see `jaxdyn.systems.beer_ctrnn`."""

    W: Float[Array, "n n"]
    theta: Float[Array, " n"]
    tau: Float[Array, " n"]
    I: Float[Array, " n"]  # noqa: E741 (Beer's notation for the external input)

    @property
    def state_size(self) -> int:
        return self.W.shape[0]

    def __call__(self, t, x, args):
        """`(−y + W σ(y + θ) + I) / τ` with the input `I = args` unless `args` is None."""
        inp = primary(args, self.I, x, "beer_ctrnn", "the external input vector I")
        dt = inp.dtype
        rates = jax.nn.sigmoid(x + self.theta.astype(dt))
        return (-x + self.W.astype(dt) @ rates + inp) / self.tau.astype(dt)

    def center(self) -> Float[Array, " n"]:
        """The point `y = −θ` where every neuron sits at the steepest point of its sigmoid.

        With center-crossing biases (`θ_i = −½ Σ_j w_ji`) and zero input it is an equilibrium,
        with Jacobian `(W/4 − 1) / τ` (row i divided by τ_i), since `σ'(0) = 1/4`.
        """
        return -self.theta


def beer_ctrnn(
    n: int = 2,
    *,
    W: ArrayLike | None = None,
    theta: ArrayLike | None = None,
    tau: ArrayLike | None = None,
    I: ArrayLike | None = None,  # noqa: E741 (Beer's notation)
) -> BeerCTRNN:
    """Beer's continuous-time recurrent neural network (CTRNN) of `n` neurons, a flow:

    `τ_i ẏ_i = −y_i + Σ_j w_ji σ(y_j + θ_j) + I_i`, with `σ(x) = 1/(1 + e^{−x})`.

    Stored as `W[i, j] = w_ji` (the weight from neuron j to neuron i), so the vector field is
    `(−y + W σ(y + θ) + I) / τ`. Default weights (used when `W` is None):

    - `n = 1`: `w₁₁ = 6`, `θ = −3`: bistable (two stable equilibria around the unstable center
      `y = 3`) for inputs between the two folds, including `I = 0`.
    - `n = 2`: `w₁₁ = w₂₂ = 4.5`, `w₂₁ = 1`, `w₁₂ = −1`, `θ = (−2.75, −1.75)`: the center is an
      unstable focus (eigenvalues `0.125 ± 0.25i`) surrounded by a stable limit cycle.

    Both defaults are center-crossing: `θ_i = −½ Σ_j w_ji`, also the default `theta` for a
    given `W`. `args` is the external input vector `I` (shape `(n,)`), overriding the stored
    `I` when not None; `center()` returns `−θ`.

    **Arguments:**

    - `n`: the number of neurons (default 2); without `W` it must be 1 or 2.
    - `W`: the weights, shape `(n, n)`, `W[i, j] = w_ji` (default above).
    - `theta`: the biases θ, shape `(n,)` (default center-crossing).
    - `tau`: the time constants τ, shape `(n,)`, all > 0 (default ones).
    - `I`: the stored external input, shape `(n,)` (default zeros).

    **Returns:** a `Flow` on the neuron states `y` of shape `(n,)`.

    **Raises:** `ValueError` if `n` is not a positive integer (1 or 2 without `W`), if an array
    has the wrong shape or is not finite, or if a time constant is not positive.

    Reference: R. D. Beer, "On the dynamics of small continuous-time recurrent neural
    networks", Adaptive Behavior 3 (1995).
    """
    n = check_int(n, "n", owner="beer_ctrnn")
    if W is None:
        if n not in _DEFAULT_W:
            raise ValueError(
                f"beer_ctrnn: default weights exist for n = 1 or 2; got n={n}. Pass `W` of "
                f"shape ({n}, {n}) for a larger circuit."
            )
        W = np.asarray(_DEFAULT_W[n])
    W = real_array(W, "W", "beer_ctrnn", shape=(n, n))
    dtype = W.dtype
    theta = -0.5 * jnp.sum(W, axis=1) if theta is None else theta
    tau = jnp.ones(n, dtype) if tau is None else tau
    inputs = jnp.zeros(n, dtype) if I is None else I
    return BeerCTRNN(W=W, theta=real_array(theta, "theta", "beer_ctrnn", shape=(n,)),
                     tau=real_array(tau, "tau", "beer_ctrnn", shape=(n,), positive=True),
                     I=real_array(inputs, "I", "beer_ctrnn", shape=(n,)))
