"""A user's vector field with its float64 `sin` and `cos` in vectorised arithmetic.

XLA on CPU evaluates a float64 `sin` or `cos` by a scalar library call (about 7 ns per element
on the 2-core test machine, against under half a nanosecond for both by a short polynomial in
vector registers), and a field such as the double gyre needs five per evaluation: a user's
`jnp.sin` made the FTLE field several times slower than the built-in field written with
`jd.systems.sincospi`. The integrators therefore evaluate a system through its traced program
(`jax.make_jaxpr`) with each `sin`/`cos` primitive replaced by `sincos` below: the argument
reduced by `π/2` in three parts (Cody–Waite), the Taylor polynomials of `sincospi`, a quadrant
swap. Checked against mpmath to 2 ulps for |x| < 10⁸; beyond, the reduction's error grows to
about one ulp of `x`, the size of the argument's own rounding. Everything else in the program
(nested `jit`s are entered; other higher-order primitives are kept whole) is bound as it was.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from .._system import AbstractFlow, AbstractJacobianSystem, AbstractMap, AbstractSystem
from ..systems._trig import quadrant_sincos

# π/2 = C1 + C2 + C3: C1 and C2 rounded to 27 significant bits, so that k·C1 and k·C2 are
# exact for |k| < 2²⁶; C3 the rest to double precision (the sum is off π/2 by ~1e-34).
_C1 = 1.570796325802803
_C2 = 9.920935739593517e-10
_C3 = 5.721188726109832e-18


@jax.custom_jvp
def sincos(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(sin x, cos x)` of a float array, to 2 ulps for |x| < 10⁸, in vectorisable arithmetic."""
    k = jnp.round(x * (2 / jnp.pi))
    return quadrant_sincos(((x - k * _C1) - k * _C2) - k * _C3, k, x)  # |z| ≤ π/4


@sincos.defjvp
def _sincos_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    s, c = sincos(x)
    return (s, c), (c * dx, -s * dx)


_CALLS = ("pjit", "jit", "closed_call", "core_call")


def _evaluate(jaxpr, consts, *args):
    """Evaluate `jaxpr` with `sin` and `cos` replaced by `sincos` (as `jax.core.eval_jaxpr`
    does, entering nested calls)."""
    env = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for var, val in zip(jaxpr.constvars, consts):
        env[var] = val
    for var, val in zip(jaxpr.invars, args):
        env[var] = val
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name in ("sin", "cos") and jnp.issubdtype(invals[0].dtype, jnp.floating):
            s, c = sincos(invals[0])
            outvals = [s if name == "sin" else c]
        elif name in _CALLS and isinstance(eqn.params.get("jaxpr"), jcore.ClosedJaxpr):
            inner = eqn.params["jaxpr"]
            outvals = _evaluate(inner.jaxpr, inner.consts, *invals)
        else:
            bound = eqn.primitive.get_bind_params(eqn.params)
            # JAX before 0.5 returns `(subfuns, params)`, later the params alone.
            subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
            out = eqn.primitive.bind(*subfuns, *invals, **params)
            outvals = out if eqn.primitive.multiple_results else [out]
        for var, val in zip(eqn.outvars, outvals):
            env[var] = val
    return [read(v) for v in jaxpr.outvars]


def _call(system: AbstractSystem, t, x, args):
    dynamic, static = eqx.partition((system, t, x, args), eqx.is_array)
    leaves, tree = jax.tree_util.tree_flatten(dynamic)

    def run(*flat):
        s, t_, x_, a_ = eqx.combine(jax.tree_util.tree_unflatten(tree, flat), static)
        return s(t_, x_, a_)

    closed, shape = jax.make_jaxpr(run, return_shape=True)(*leaves)
    out = _evaluate(closed.jaxpr, closed.consts, *leaves)
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), out)


def _call_wrapped(self, t, x, args):
    return _call(self.system, t, x, args)


# The same wrapper as a flow and as a map (`discrete` is a class variable of each).
class _FastTrigFlow(AbstractFlow):
    system: AbstractSystem
    state_size = property(lambda self: self.system.state_size)
    __call__ = _call_wrapped


class _FastTrigMap(AbstractMap):
    system: AbstractSystem
    state_size = property(lambda self: self.system.state_size)
    __call__ = _call_wrapped


def vectorised_trig(system: AbstractSystem, dtype) -> AbstractSystem:
    """`system` with its float64 `sin`/`cos` evaluated by `sincos`, on CPU (where XLA calls a
    scalar library routine); unchanged elsewhere, in float32 (which XLA vectorises itself),
    and for the RNN zoo (closed-form Jacobians, no trigonometry)."""
    if (jnp.dtype(dtype) != jnp.float64 or jax.default_backend() != "cpu"
            or isinstance(system, (AbstractJacobianSystem, _FastTrigFlow, _FastTrigMap))):
        return system
    return _FastTrigMap(system) if system.discrete else _FastTrigFlow(system)
