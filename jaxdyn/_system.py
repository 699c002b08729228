"""The system contract: a system is `f(t, x, args)`, in continuous or discrete time.

Every analysis in jaxdyn takes a *system*. A `Flow` means `dx/dt = f(t, x, args)`; a `Map`
means `x_{k+1} = f(k, x, args)`. A plain callable passed where a system is expected is taken as
a `Flow`. RNN models subclass `AbstractFlow` or `AbstractMap` directly, with `args` their input.

Equilibrium analyses evaluate at `t = 0` and assume autonomy. Stability is read in the
system's own sense: `Re λ < 0` for a flow, `|μ| < 1` for a map.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree


class AbstractSystem(eqx.Module):
    """A dynamical system `f(t, x, args)` acting on a 1-D state `x`.

    Subclasses set the class variable `discrete` (through `AbstractFlow` / `AbstractMap`),
    declare `state_size` (the length of `x`, or None when any length works) and implement
    `__call__(t, x, args)`, which returns the time derivative (flows) or the next state
    (maps), an array of the same shape as `x`.
    """

    discrete: eqx.AbstractClassVar[bool]

    @property
    @abc.abstractmethod
    def state_size(self) -> int | None:
        """The length of the state `x`, or None when the system takes any length."""

    @abc.abstractmethod
    def __call__(self, t: ArrayLike, x: Float[Array, " n"], args: PyTree) -> Float[Array, " n"]:
        """Evaluate the vector field (flow) or the update (map) at time `t`."""


class AbstractFlow(AbstractSystem):
    """A continuous-time system `dx/dt = f(t, x, args)`."""

    discrete: ClassVar[bool] = False


class AbstractMap(AbstractSystem):
    """A discrete-time system `x_{k+1} = f(k, x, args)`."""

    discrete: ClassVar[bool] = True


class AbstractJacobianSystem(AbstractSystem):
    """A system that also supplies its state Jacobian in closed form (the RNN zoo).

    `jd.jacobian` uses `state_jacobian` instead of autodiff; tests check the two agree.
    """

    @abc.abstractmethod
    def state_jacobian(self, x: Float[Array, " n"], args: PyTree) -> Float[Array, "n n"]:
        """`∂f/∂x` at `(x, args)`: of the vector field for a flow, of the update for a map."""


class Flow(AbstractFlow):
    """Wrap a function `f(t, x, args)` as a continuous-time system `dx/dt = f(t, x, args)`.

    **Arguments:**

    - `fn`: the vector field, in diffrax's convention `fn(t, x, args) -> dx/dt`.
    - `state_size`: the length of the state, if fixed (then calls check `x0` against it).
    """

    fn: Callable[[Any, Array, Any], Array]
    size: int | None = eqx.field(static=True)

    def __init__(self, fn: Callable[[Any, Array, Any], Array], *, state_size: int | None = None):
        self.fn = fn
        self.size = None if state_size is None else _check_size(state_size)

    @property
    def state_size(self) -> int | None:
        return self.size

    def __call__(self, t, x, args):
        return self.fn(t, x, args)


class Map(AbstractMap):
    """Wrap a function `f(k, x, args)` as a discrete-time system `x_{k+1} = f(k, x, args)`.

    **Arguments:**

    - `fn`: the update, `fn(k, x, args) -> x_next`.
    - `state_size`: the length of the state, if fixed.
    """

    fn: Callable[[Any, Array, Any], Array]
    size: int | None = eqx.field(static=True)

    def __init__(self, fn: Callable[[Any, Array, Any], Array], *, state_size: int | None = None):
        self.fn = fn
        self.size = None if state_size is None else _check_size(state_size)

    @property
    def state_size(self) -> int | None:
        return self.size

    def __call__(self, t, x, args):
        return self.fn(t, x, args)


def _check_size(state_size: Any) -> int:
    from ._validate import check_int

    return check_int(state_size, "state_size")


def as_system(system: Any, name: str = "system") -> AbstractSystem:
    """Return `system` as an `AbstractSystem`: systems pass through, callables become `Flow`s.

    **Raises:** `ValueError` if `system` is neither a system nor callable.
    """
    if isinstance(system, AbstractSystem):
        return system
    if callable(system):
        return Flow(system)
    raise ValueError(
        f"`{name}` must be a jaxdyn system (jd.Flow, jd.Map, an RNN model) or a callable "
        f"f(t, x, args); got an object of type {type(system).__name__}."
    )


def is_discrete(system: Any) -> bool:
    """Whether `system` is a map (discrete time); plain callables are flows."""
    return as_system(system).discrete


def residual(system: Any, x: Float[Array, " n"], args: PyTree = None, t: ArrayLike = 0.0):
    """The equilibrium residual: `f(t, x, args)` for a flow, `F(t, x, args) − x` for a map."""
    system = as_system(system)
    out = system(t, x, args)
    return out - x if system.discrete else out


def jacobian(
    system: Any, x: Float[Array, " n"], args: PyTree = None, t: ArrayLike = 0.0
) -> Float[Array, "n n"]:
    """State Jacobian `∂f/∂x` at `(t, x, args)`, by forward-mode autodiff.

    For a flow this is the Jacobian of the vector field; for a map, of the update `F` (not of
    `F − x`), so its eigenvalues are the multipliers that decide stability.

    **Arguments:**

    - `system`: a `Flow`, a `Map`, an RNN model, or a callable `f(t, x, args)` (a flow).
    - `x`: the state, shape `(n,)`.
    - `args`: the system's arguments (an RNN's input vector).
    - `t`: the time (default 0).

    **Returns:** an `(n, n)` array.

    **Raises:** `ValueError` for an `x` that is not a 1-D floating array (of the system's
    state size, when it declares one).

    The RNN zoo supplies its Jacobian in closed form (a row scaling of the weights: `O(n²)`
    where autodiff costs a matrix product); every other system goes through `jax.jacfwd`.
    """
    from ._validate import check_state

    system = as_system(system)
    x = check_state(x, "x", size=system.state_size)
    if isinstance(system, AbstractJacobianSystem):
        return system.state_jacobian(x, args)
    return jax.jacfwd(lambda y: system(t, y, args))(x)


def args_jacobian(
    system: Any, x: Float[Array, " n"], args: PyTree, t: ArrayLike = 0.0
) -> PyTree:
    """Jacobian of `f(t, x, args)` with respect to `args` (for an RNN: the input Jacobian ∂F/∂u).

    **Returns:** a PyTree shaped like `args` whose leaves have shape `(n, *leaf.shape)`; for an
    input vector of size `m`, an `(n, m)` array.
    """
    system = as_system(system)
    return jax.jacfwd(lambda a: system(t, x, a))(args)


def growth_rates(system: Any, eigvals: Array) -> Array:
    """Eigenvalues as growth rates in the system's own sense: `Re λ` for a flow,
    `log|μ|` for a map. A direction is unstable where the rate is positive; a NaN eigenvalue
    gives a NaN rate, which is neither."""
    if as_system(system).discrete:
        return jnp.log(jnp.abs(eigvals))
    return jnp.real(eigvals)


def n_unstable(system: Any, eigvals: Array, tol: float = 0.0) -> Array:
    """Number of unstable directions (`Re λ > tol` for a flow, `|μ| > 1 + tol` for a map),
    over the last axis of `eigvals`.

    **Returns:** an integer array; −1 where any eigenvalue is NaN or infinite (the
    eigenvalues of a Jacobian that could not be evaluated), as in `FixedPoints.n_unstable`:
    such a point is never counted as having no unstable direction.
    """
    if as_system(system).discrete:
        count = jnp.sum(jnp.abs(eigvals) > 1.0 + tol, axis=-1)
    else:
        count = jnp.sum(jnp.real(eigvals) > tol, axis=-1)
    return jnp.where(_all_finite(eigvals), count, -1)


def is_stable(system: Any, eigvals: Array) -> Array:
    """Linear stability: every `Re λ < 0` (flow) or every `|μ| < 1` (map), over the last
    axis of `eigvals`; False where any eigenvalue is NaN or infinite."""
    if as_system(system).discrete:
        inside = jnp.all(jnp.abs(eigvals) < 1.0, axis=-1)
    else:
        inside = jnp.all(jnp.real(eigvals) < 0.0, axis=-1)
    return inside & _all_finite(eigvals)


def _all_finite(eigvals: Array) -> Array:
    return jnp.all(jnp.isfinite(eigvals), axis=-1)
