"""Starts for fixed-point searches: states sampled from trajectories, plus noise."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from ._validate import as_float_array, check_int, is_concrete


def sample_states(
    key: PRNGKeyArray,
    source: Any,
    x0: ArrayLike | None = None,
    args: PyTree = None,
    *,
    n: int,
    noise: ArrayLike = 0.0,
    t1: ArrayLike | None = None,
    inputs: ArrayLike | None = None,
    burn_in: int = 0,
    **simulate_kwargs: Any,
) -> Float[Array, "n dim"]:
    """Starts for `fixed_points`: states sampled from trajectories, plus Gaussian noise.

    **Arguments:**

    - `key`: a PRNG key.
    - `source`: where the states come from: an RNN model driven by `inputs` (with its `run`
      method), any system simulated from `x0` with `jd.simulate` up to `t1`, or states already
      computed (a `jd.Trajectory` or an array `[..., T, dim]`).
    - `x0`: initial states for the simulation, `[dim]` or `[B, dim]` (an RNN: default zeros).
    - `args`: the system's arguments during the simulation.
    - `n`: how many states to draw (uniformly, with replacement, over all finite states).
    - `noise`: the standard deviation of the Gaussian noise added to each state.
    - `t1`: the final time of the simulation (flows and maps without `inputs`).
    - `inputs`: an RNN's input sequences, `[T, n_in]` or `[B, T, n_in]`.
    - `burn_in`: the number of initial time points of every trajectory to skip.
    - `**simulate_kwargs`: passed to `jd.simulate` (e.g. `dt`, `n_save`).

    **Returns:** an array `[n, dim]`.

    **Raises:** `ValueError` for `n < 1`, `noise < 0`, a missing `t1`/`inputs`, or no finite
    state to sample from.
    """
    from ._simulate import Trajectory, simulate

    n = check_int(n, "n")
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if is_concrete(noise) and np.any(np.asarray(noise) < 0):
        raise ValueError(f"`noise` must be >= 0; got {noise!r}.")
    if isinstance(source, Trajectory):
        states = source.xs
    elif hasattr(source, "shape") or isinstance(source, (list, tuple)):
        states = as_float_array(source, "source")
    elif inputs is not None:
        if not hasattr(source, "run"):
            raise ValueError("`inputs` drive an RNN model (an object with a `run` method); "
                             f"got {type(source).__name__}.")
        inputs = as_float_array(inputs, "inputs")
        u = inputs if inputs.ndim == 3 else inputs[None]
        start = source.init_state() if x0 is None else jnp.asarray(x0)
        start = jnp.broadcast_to(start, (u.shape[0], source.state_size))
        states = jax.vmap(lambda xi, ui: source.run(xi, ui)[0])(start, u)
    else:
        if x0 is None or t1 is None:
            raise ValueError("to simulate `source`, pass `x0` and `t1` (or `inputs` for an "
                             "RNN, or precomputed states as `source`).")
        x0 = as_float_array(x0, "x0")
        sim = lambda x: simulate(source, x, args, t1, **simulate_kwargs).xs
        states = sim(x0) if x0.ndim == 1 else jax.vmap(sim)(x0)
    if states.ndim >= 2 and burn_in:
        states = states[..., burn_in:, :]
    pool = states.reshape(-1, states.shape[-1])
    finite = jnp.all(jnp.isfinite(pool), axis=-1)
    if not isinstance(finite, jax.core.Tracer) and not bool(jnp.any(finite)):
        raise ValueError("`source` has no finite state to sample from.")
    k_idx, k_noise = jax.random.split(key)
    weight = finite.astype(pool.dtype)
    idx = jax.random.choice(k_idx, pool.shape[0], (n,), p=weight / jnp.sum(weight))
    return pool[idx] + noise * jax.random.normal(k_noise, (n, pool.shape[-1]), pool.dtype)
