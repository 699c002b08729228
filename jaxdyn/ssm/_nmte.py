"""`ssm.nmte`: the normalised mean trajectory error of an SSM's predictions."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._integrate import AbstractIntegrator
from .._validate import as_float_array, check_choice, describe
from ._data import check_mask, check_trajectories, embed
from ._model import SSM, _predict, prediction_integrator


def nmte(model: SSM, trajectories: Any, *, mask: Any = None, params: Any = None,
         definition: str = "paper", integrator: AbstractIntegrator | None = None,
         rtol: float | None = None, atol: float | None = None) -> jax.Array:
    """Normalised mean trajectory error of `model`'s predictions of `trajectories`.

    Each trajectory is predicted from its first sample (reduced, simulated over the
    trajectory's valid length, lifted) and compared with the data in the model's centred
    (and delay-embedded) observables `y − y*`:
    `NMTE = mean_t ‖ŷ(t) − y(t)‖ / max_t ‖y(t)‖` (SSMLearn's definition, as in the paper).
    `definition="ssmlearnpy"` divides by `max_t ‖y(t)‖²` instead, as SSMLearnPy's `nmte`
    does (for comparisons only). A prediction that blows up scores `inf`.

    **Arguments:**

    - `model`: a fitted `SSM`.
    - `trajectories`: `[n_traj, T, n_obs]` samples `model.dt` apart (raw observables; they
      are delay-embedded as in the fit).
    - `mask`: `[n_traj, T]` valid leading samples (ragged lengths).
    - `params`: `[n_traj]` parameters, for a parameter-dependent model.
    - `definition`: `"paper"` (default) or `"ssmlearnpy"`.
    - `integrator`, `rtol`, `atol`: how the reduced flow is integrated, as in `SSM.predict`.

    **Returns:** the NMTE of each trajectory, `[n_traj]`.

    **Raises:** `ValueError` for data that are not a finite `[n_traj, T, n_obs]` array of the
    model's observable size, a bad mask or `params`, or an unknown `definition`.

    Reference: M. Cenedese et al., Nature Communications 13:872 (2022), Methods.
    """
    X = check_trajectories(trajectories)
    n_obs = model.anchor.shape[-1] // model.delays
    if X.shape[-1] != n_obs:
        raise ValueError(f"`trajectories` must have {n_obs} observables (the model's); got "
                         f"{describe(X)}.")
    if X.shape[1] < model.delays + 1:
        raise ValueError(f"trajectories of {X.shape[1]} samples are shorter than the delay "
                         f"window ({model.delays}) plus one.")
    mask = check_mask(mask, X.shape[:2])
    definition = check_choice(definition, "definition", ("paper", "ssmlearnpy"))
    if model.parametric:
        if params is None:
            raise ValueError("this model is parameter-dependent: pass `params` [n_traj].")
        params = as_float_array(params, "params").astype(X.dtype)
        if params.shape != X.shape[:1]:
            raise ValueError(f"`params` must have shape ({X.shape[0]},); got "
                             f"{describe(params)}.")
    else:
        params = jnp.zeros(X.shape[0], X.dtype)
    squared = jnp.asarray(definition == "ssmlearnpy")
    T = X.shape[1] - model.delays + 1
    integ = prediction_integrator(model, T, X.dtype, integrator, rtol, atol, None)
    return _nmte(model, X, mask, params, squared, integ)


@eqx.filter_jit
def _nmte(model, X, mask, params, squared, integ):
    Y, m = embed(X, model.delays, mask)
    T = Y.shape[1]

    def one(y, valid, p):
        traj = _predict(model, y[0], T, p, integ, False)
        ref = y - model.anchor[None, :]
        err = jnp.linalg.norm(traj.xs - y, axis=-1)
        size = jnp.max(jnp.where(valid, jnp.linalg.norm(ref, axis=-1), 0.0))
        size = jnp.where(squared, size * size, size)
        bad = ~jnp.all(jnp.where(valid, jnp.isfinite(err), True))
        mean = jnp.sum(jnp.where(valid, err, 0.0)) / jnp.sum(valid.astype(err.dtype))
        return jnp.where(bad, jnp.inf, mean / size)

    return jax.vmap(one)(Y, m, params)
