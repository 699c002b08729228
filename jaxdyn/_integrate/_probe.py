"""Reverse-mode derivatives of adaptive trajectories, with steps that control a probe tangent.

`simulate` reports states, so its adaptive steps control the state's error alone. Its
reverse-mode derivatives, though, are tangents: differentiating through those steps gives the
derivative of the numerical flow map, and where the state settles on a fixed point its error
estimate vanishes, the steps grow until `e^{hλ}` is badly approximated, and the derivative is
wrong (by a factor 10⁹ for `x' = A x` from its equilibrium over `t = 10`). So the backward pass
does not reuse the forward steps: it integrates again, the state with one fixed probe tangent
whose error the controller also sees (a vector with a component along every direction), and
differentiates that integration. The forward pass costs what it did; a gradient costs one
more integration, of about twice the work per step, before the usual backward sweep.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .._inputs import bind_args
from .._solution import RESULTS, code
from ._controller import BlockNorm, TangentScaled
from ._tangent import TangentFlow, pack


def _solve(diff, dt0, solver, controller, max_steps, probe: bool):
    system, x0, args, t0, t1, ts = diff
    n = x0.shape[0]
    # Under jit a traced t1 may not be after t0: integrate nothing and say so.
    forward = t1 > t0
    t1 = jnp.where(forward, t1, t0 + 1)
    ts = jnp.where(forward, ts, t0)
    if probe:
        flow = TangentFlow(system, args, t0, jnp.ones((), x0.dtype), n, 1, False)
        term = diffrax.ODETerm(lambda s, z, _: flow(s - t0, z))
        y0 = pack(x0, direction(n, x0.dtype)[:, None], None)
        inner = eqx.tree_at(lambda c: c.norm, controller, BlockNorm(n, 1))
        controller = TangentScaled(inner, n, 1)
    else:
        term = diffrax.ODETerm(bind_args(system, args))
        y0 = x0
    sol = diffrax.diffeqsolve(term, solver, t0, t1, dt0, y0, args=args,
                              saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller,
                              max_steps=max_steps, throw=False)
    result = RESULTS.where(forward, RESULTS.promote(sol.result), RESULTS.invalid_time_span)
    xs = jnp.where(forward, sol.ys[:, :n], jnp.nan)
    return sol.ts, xs, code(result), sol.stats["num_steps"]


def solve_states(diff, dt0, solver, controller, max_steps):
    """`(ts, xs, status code, steps)` of `diffeqsolve` on `diff = (system, x0, args, t0, t1,
    ts)`, saved at `ts`; derivatives through its own steps."""
    return _solve(diff, dt0, solver, controller, max_steps, False)


@eqx.filter_custom_vjp
def probed_states(diff, dt0, solver, controller, max_steps):
    """As `solve_states`, with reverse-mode derivatives through an integration whose steps
    also control a probe tangent."""
    return _solve(diff, dt0, solver, controller, max_steps, False)


@probed_states.def_fwd
def _probed_fwd(perturbed, diff, dt0, solver, controller, max_steps):
    return _solve(diff, dt0, solver, controller, max_steps, False), None


@probed_states.def_bwd
def _probed_bwd(residuals, grad_obj, perturbed, diff, dt0, solver, controller, max_steps):
    g = grad_obj[1]
    if g is None:
        return jax.tree_util.tree_map(lambda _: None, diff)
    _, vjp = eqx.filter_vjp(
        lambda d: _solve(d, dt0, solver, controller, max_steps, True)[1], diff)
    (grad,) = vjp(g)
    return grad


def direction(n: int, dtype) -> jax.Array:
    """The probe: a fixed vector of unit RMS size with entries spread over [−1, 1] (none
    zero), so that it has a component along every direction of a generic Jacobian."""
    v = jnp.cos(1.0 + 2.399963 * jnp.arange(n, dtype=dtype))
    v = jnp.where(jnp.abs(v) < 0.1, 0.1 + jnp.abs(v), v)
    return v / jnp.sqrt(jnp.mean(v * v))
