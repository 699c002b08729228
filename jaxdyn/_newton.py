"""The globalised Newton core shared by fixed points, continuation correctors, bifurcation
refinement and reduced models.

One problem at a time: `newton_solve(fn, x0, args)` drives a damped-Newton strategy
(`init` / `step`, with termination folded into the state) in a single `lax.while_loop` and
returns a `NewtonResult` with a per-problem status; nothing raises inside traced code. Callers
`vmap` it over starts, inputs or models, or use `newton_solve_batch`, which runs the same
strategy over a work queue so that one slow start does not hold the others back.

Both strategies minimise q(x) = ½‖f(x)‖² by damped Newton steps on a local quadratic model
`q + gᵀδ + ½δᵀAδ`, solving `(A + μI) δ = −g` with lineax and adapting the damping `μ` from the
ratio of actual to predicted decrease (Levenberg 1944; Marquardt 1963; the update of
Nielsen 1999). They differ in the model Hessian `A`:

- `LevenbergMarquardt`: `A = JᵀJ` (Gauss–Newton). Near a regular root the step is Newton's
  step on `f = 0` and convergence is quadratic; a singular Jacobian costs only damping.
- `NewtonQ`: `A = ∇²q`, the exact Hessian of q. It converges quadratically to every local
  minimum of q, including minima with q > 0: the *slow points* of Sussillo & Barak (2013).

Why not `optimistix.root_find`: its solvers stop on the size of the last step, while callers
here need a residual test, a slow-point status and the last finite iterate. The implicit
gradient is the usual one (`optimistix.ImplicitAdjoint` does the same), written as an
`eqx.filter_custom_vjp` so that the backward pass can drop problems that did not converge.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Bool, Float, Int, PyTree

_ACCEPT = 1e-4  # smallest ratio of actual to predicted decrease that accepts a step
_PATIENCE = 5  # iterations in a row without progress before the iteration counts as stalled


class RESULTS(eqx.Enumeration):
    """Per-problem outcome of `newton_solve`."""

    successful = ""
    max_steps_reached = (
        "The solver ran out of steps before ‖f(x)‖∞ ≤ tol. Raise `max_steps`, loosen `tol`, "
        "or use method='q' to also accept slow points."
    )
    slow_point = (
        "The solver reached a local minimum of q = ½‖f(x)‖² with q > 0 (a slow point), not "
        "a root."
    )
    stagnated = (
        "No step decreases ‖f(x)‖ any more: the iterate is at a minimum of ‖f‖ that is not a "
        "root, or the Jacobian is singular there. Try other starts, or method='q' to report "
        "such points as slow points."
    )
    nonfinite = (
        "The residual or its derivatives are not finite at the current iterate; the last "
        "finite iterate is returned."
    )


class NewtonResult(eqx.Module):
    """The solution of one problem.

    **Fields:**

    - `x`: the last accepted (always finite) iterate. When the solve is differentiated, `x`
      carries implicit-function-theorem gradients with respect to `args`.
    - `residual`: `‖f(x)‖∞`.
    - `q`: `½‖f(x)‖²`.
    - `converged`: `residual ≤ tol`.
    - `steps`: iterations taken (accepted and rejected trial steps).
    - `result`: a `RESULTS` item.
    """

    x: Float[Array, " n"]
    residual: Float[Array, ""]
    q: Float[Array, ""]
    converged: Bool[Array, ""]
    steps: Int[Array, ""]
    result: RESULTS


class _State(eqx.Module):
    x: Array
    f: Array
    q: Array
    mu: Array
    nu: Array
    stall: Array
    steps: Array
    done: Array
    result: RESULTS


class AbstractDampedNewton(eqx.Module):
    """A damped Newton strategy for q(x) = ½‖f(x)‖², run by `newton_solve`.

    Final subclasses provide `model`, the gradient and Hessian of the local quadratic model,
    and `stall_result`, the status reported when q stops decreasing away from a root.
    """

    linear_solver: eqx.AbstractVar[lx.AbstractLinearSolver]
    tau: eqx.AbstractVar[float]
    stall_result: eqx.AbstractClassVar[RESULTS]

    @abc.abstractmethod
    def model(self, fn: Callable, x: Array, args: PyTree) -> tuple[Array, Array, Callable]:
        """Return `(f(x), ∇q(x), v ↦ A v)` for the model Hessian `A`."""

    def reports_slow_points(self) -> bool:
        return self.stall_result == RESULTS.slow_point

    def init(self, fn: Callable, x: Array, args: PyTree, tol: Array) -> _State:
        # Only one evaluation of f: the damping is set by the first step, from the model it
        # builds anyway (so that refilling a slot of `newton_solve_batch` is cheap).
        f = fn(x, args)
        q = 0.5 * jnp.sum(f**2)
        finite = jnp.all(jnp.isfinite(f))
        conv = finite & (jnp.max(jnp.abs(f)) <= tol)
        result = RESULTS.where(finite, RESULTS.successful, RESULTS.nonfinite)
        zero = jnp.zeros((), jnp.int32)
        return _State(x=x, f=f, q=q, mu=-jnp.ones((), q.dtype), nu=jnp.asarray(2.0, q.dtype),
                      stall=zero, steps=zero, done=conv | ~finite, result=result)

    def step(self, fn: Callable, state: _State, args: PyTree, tol: Array) -> _State:
        x, q = state.x, state.q
        eps = jnp.finfo(x.dtype).eps
        f, g, matvec = self.model(fn, x, args)
        g_ok = jnp.all(jnp.isfinite(g))
        g = jnp.where(g_ok, g, 0.0)
        slow = g_ok & (jnp.max(jnp.abs(g)) <= tol * jnp.max(jnp.abs(f)))
        slow = slow & self.reports_slow_points()

        # Initial damping: τ times the model's curvature along the gradient (a scale-free
        # stand-in for τ·max diag A that also works matrix-free).
        gg = jnp.sum(g**2)
        curv = jnp.abs(jnp.sum(g * matvec(g))) / jnp.where(gg > 0, gg, 1.0)
        mu0 = self.tau * jnp.where(jnp.isfinite(curv) & (curv > 0), curv, 1.0)
        mu = jnp.where(state.mu < 0, mu0, state.mu)
        operator = lx.FunctionLinearOperator(
            lambda v: matvec(v) + mu * v, jax.ShapeDtypeStruct(x.shape, x.dtype),
            lx.positive_semidefinite_tag,
        )
        delta = lx.linear_solve(operator, -g, self.linear_solver, throw=False).value
        pred = 0.5 * (mu * jnp.sum(delta**2) - jnp.sum(g * delta))
        delta_ok = jnp.all(jnp.isfinite(delta))
        delta = jnp.where(delta_ok, delta, 0.0)
        x_try = x + delta
        f_try = fn(x_try, args)
        q_try = 0.5 * jnp.sum(f_try**2)
        ok = delta_ok & jnp.all(jnp.isfinite(f_try)) & jnp.isfinite(q_try) & (pred > 0)
        rho = jnp.where(ok, (q - q_try) / jnp.where(ok, pred, 1.0), -jnp.inf)
        accept = ok & (rho > _ACCEPT)

        shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        mu_floor = eps * jnp.maximum(mu0, 1.0)
        mu_new = jnp.where(accept, mu * shrink, jnp.maximum(mu * state.nu, mu_floor))
        mu_new = jnp.where(jnp.isfinite(mu_new), mu_new, jnp.finfo(x.dtype).max)
        nu_new = jnp.where(accept, 2.0, jnp.minimum(2.0 * state.nu, 2.0**60))
        # No progress: an accepted step that barely lowers q, or a rejected step so short
        # (relative size √eps) that only a stationary point of q can explain the rejection.
        tiny = jnp.max(jnp.abs(delta)) <= jnp.sqrt(eps) * (jnp.max(jnp.abs(x)) + jnp.sqrt(eps))
        idle = jnp.where(accept, q - q_try <= 8 * eps * q, delta_ok & tiny)
        stall = jnp.where(idle, state.stall + 1, 0)

        x_new = jnp.where(accept, x_try, x)
        f_new = jnp.where(accept, f_try, state.f)
        q_new = jnp.where(accept, q_try, q)
        conv = jnp.max(jnp.abs(f_new)) <= tol
        stalled = stall >= _PATIENCE
        result = RESULTS.where(
            conv, RESULTS.successful,
            RESULTS.where(slow, RESULTS.slow_point,
                          RESULTS.where(~g_ok, RESULTS.nonfinite,
                                        RESULTS.where(stalled, self.stall_result,
                                                      RESULTS.successful))))
        done = conv | slow | ~g_ok | stalled
        # A problem already found slow (or non-finite) at this iterate does not move.
        halt = slow | ~g_ok
        return _State(
            x=jnp.where(halt, x, x_new), f=jnp.where(halt, state.f, f_new),
            q=jnp.where(halt, q, q_new), mu=mu_new, nu=nu_new, stall=stall,
            steps=state.steps + 1, done=done, result=result,
        )


class LevenbergMarquardt(AbstractDampedNewton):
    """Levenberg–Marquardt: damped Gauss–Newton steps `(JᵀJ + μI) δ = −Jᵀf`.

    The default root finder: Newton's method on `f(x) = 0` far from trouble, gradient descent
    on q when the Jacobian is singular or the start is far. Stalling away from a root is
    reported as `RESULTS.stagnated`. Works for non-square `f` too (least squares).

    **Arguments:**

    - `linear_solver`: a lineax solver for the damped system `(A + μI) δ = −g`; `lx.Cholesky()`
      (default, dense). A matrix-free one such as `lx.CG(rtol, atol, max_steps)` never forms
      `A`, but CG on `JᵀJ` sees the squared condition number: it suits well-conditioned
      problems, and stalls on e.g. random chaotic networks.
    - `tau`: the initial damping relative to the curvature along the gradient (default 1e-3).

    Reference: Levenberg (1944); Marquardt (1963); the damping update of H. B. Nielsen,
    "Damping parameter in Marquardt's method", IMM-REP-1999-05, DTU.
    """

    linear_solver: lx.AbstractLinearSolver = lx.Cholesky()
    tau: float = 1e-3
    stall_result: ClassVar[RESULTS] = RESULTS.stagnated

    def model(self, fn, x, args):
        f, jvp = jax.linearize(lambda y: fn(y, args), x)
        vjp = jax.linear_transpose(jvp, x)
        (g,) = vjp(f)
        return f, g, lambda v: vjp(jvp(v))[0]


class NewtonQ(AbstractDampedNewton):
    """Damped Newton on q = ½‖f‖² with its exact Hessian: `(∇²q + μI) δ = −∇q`.

    Finds roots of `f` and slow points, the local minima of q with q > 0, both with quadratic
    convergence. A point where `‖∇q‖∞ ≤ tol·‖f‖∞`, or where q stops decreasing, is reported as
    `RESULTS.slow_point` unless `‖f‖∞ ≤ tol`.

    **Arguments:** as `LevenbergMarquardt`.

    Reference: D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics in
    high-dimensional recurrent neural networks", Neural Computation 25(3), 2013.
    """

    linear_solver: lx.AbstractLinearSolver = lx.Cholesky()
    tau: float = 1e-3
    stall_result: ClassVar[RESULTS] = RESULTS.slow_point

    def model(self, fn, x, args):
        def grad_q(y):
            r = fn(y, args)
            _, vjp = jax.vjp(lambda z: fn(z, args), y)
            return vjp(r)[0], r

        g, hvp, f = jax.linearize(grad_q, x, has_aux=True)
        return f, g, hvp


def newton_solve(
    fn: Callable[[Array, PyTree], Array],
    x0: Float[Array, " n"],
    args: PyTree = None,
    *,
    tol: Any,
    max_steps: int = 100,
    solver: AbstractDampedNewton | None = None,
) -> NewtonResult:
    """Solve `fn(x, args) = 0` from `x0` by a globalised Newton method.

    A single problem in a single `lax.while_loop`; `vmap` it for batches. Nothing raises
    inside: divergence, non-finite values and stalls become the `result` status, and `x` is
    always the last finite iterate. Gradients of `x` with respect to `args` (every inexact
    array in the PyTree, e.g. `(model, input)`) follow from the implicit function theorem,
    `dx/dθ = −(∂f/∂x)⁻¹ ∂f/∂θ`, without differentiating through the iterations; they are
    zero for problems that did not converge. Put everything to be differentiated in `args`,
    not in a closure of `fn`.

    **Arguments:**

    - `fn`: the residual `fn(x, args) -> f`, a 1-D array (same size as `x` for gradients).
      Continuation correctors pass an augmented system here.
    - `x0`: the start, shape `(n,)`.
    - `args`: a PyTree passed to `fn`.
    - `tol`: convergence when `‖f(x)‖∞ ≤ tol` (may be a traced scalar).
    - `max_steps`: the bound on iterations (a Python int).
    - `solver`: `LevenbergMarquardt()` (default) or `NewtonQ()`.

    **Returns:** a `NewtonResult`.
    """
    solver = LevenbergMarquardt() if solver is None else solver
    tol = jnp.asarray(tol, x0.dtype)
    args_nd = jax.tree_util.tree_map(
        lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, args)
    state = solver.init(fn, jax.lax.stop_gradient(x0), args_nd, tol)
    state = jax.lax.while_loop(
        lambda s: ~s.done & (s.steps < max_steps),
        lambda s: solver.step(fn, s, args_nd, tol),
        state,
    )
    result = RESULTS.where(state.done, state.result, RESULTS.max_steps_reached)
    converged = result == RESULTS.successful
    x = _implicit(args, state.x, fn, converged)
    residual = jnp.max(jnp.abs(state.f))
    return NewtonResult(x=x, residual=residual, q=state.q, converged=converged,
                        steps=state.steps, result=result)


def newton_solve_batch(
    fn: Callable[[Array, PyTree], Array],
    x0s: Float[Array, "batch n"],
    args: PyTree = None,
    *,
    args_axes: Any = None,
    tol: Any,
    max_steps: int = 100,
    solver: AbstractDampedNewton | None = None,
    slots: int | None = None,
    progress: bool = False,
) -> NewtonResult:
    """`newton_solve` for a batch of starts, `slots` problems at a time from a work queue.

    A plain `vmap` of `newton_solve` runs every problem for as many iterations as the slowest
    one needs. Here one `lax.while_loop` steps `slots` problems together (a `vmap` of the
    strategy's `step`); a problem that finishes writes its result and its slot takes the next
    waiting start. The work is then about the *mean* number of iterations, the working memory
    that of `slots` problems. The results equal those of `newton_solve` on each start.

    **Arguments:** as `newton_solve`, plus

    - `x0s`: starts, `[batch, n]`.
    - `args_axes`: which parts of `args` are batched, as `in_axes` of `eqx.filter_vmap`: a
      prefix of `args` with `None` (shared by all starts, the default) or `0` (one per start
      on axis 0), e.g. `(None, 0)` for `args = (model, inputs)`.
    - `slots`: problems in flight (default: the whole batch, a plain `vmap`).
    - `progress`: a tqdm bar over finished problems (through a host callback).

    **Returns:** a `NewtonResult` whose fields carry the batch on axis 0.
    """
    solver = LevenbergMarquardt() if solver is None else solver
    batch = x0s.shape[0]
    slots = batch if slots is None else max(1, min(int(slots), batch))
    tol = jnp.asarray(tol, x0s.dtype)
    nondiff = jax.tree_util.tree_map(
        lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, args)
    x0s = jax.lax.stop_gradient(x0s)

    def args_of(i):
        take = lambda a: a[i] if eqx.is_array(a) else a
        return jax.tree_util.tree_map(
            lambda ax, sub: sub if ax is None else jax.tree_util.tree_map(take, sub),
            args_axes, nondiff, is_leaf=lambda z: z is None)

    init = eqx.filter_vmap(lambda x, a: solver.init(fn, x, a, tol), in_axes=(0, args_axes))
    step = eqx.filter_vmap(lambda st, a: solver.step(fn, st, a, tol), in_axes=(0, args_axes))

    def body(carry):
        states, idx, nxt, out, finished_total = carry
        slot_args = args_of(jnp.clip(idx, 0))
        frozen = states.done | (states.steps >= max_steps)
        stepped = step(states, slot_args)
        states = jax.tree_util.tree_map(
            lambda old, new: jnp.where(_bcast(frozen, new), old, new), states, stepped)
        finished = (idx >= 0) & (states.done | (states.steps >= max_steps))
        target = jnp.where(finished, idx, batch)  # out of range: dropped by the scatter
        out = jax.tree_util.tree_map(lambda buf, v: buf.at[target].set(v, mode="drop"), out,
                                     _summary(states))
        new_idx = nxt + jnp.cumsum(finished) - 1
        refill = finished & (new_idx < batch)
        fresh = init(x0s[jnp.clip(new_idx, 0, batch - 1)], args_of(jnp.clip(new_idx, 0,
                                                                          batch - 1)))
        states = jax.tree_util.tree_map(
            lambda old, new: jnp.where(_bcast(refill, new), new, old), states, fresh)
        idx = jnp.where(finished, jnp.where(refill, new_idx, -1), idx)
        finished_total = finished_total + jnp.sum(finished)
        if progress:
            jax.debug.callback(functools.partial(_progress, total=batch), finished_total)
        return states, idx, nxt + jnp.sum(finished), out, finished_total

    first = jnp.arange(slots)
    states = init(x0s[:slots], args_of(first))
    empty = _summary(jax.tree_util.tree_map(
        lambda a: jnp.zeros((batch,) + a.shape[1:], a.dtype), states))
    carry = (states, first, jnp.asarray(slots), empty, jnp.asarray(0))
    _, _, _, (x, f, q, steps, done, code), _ = jax.lax.while_loop(
        lambda c: jnp.any(c[1] >= 0), body, carry)
    result = jax.vmap(lambda d, c: RESULTS.where(d, c, RESULTS.max_steps_reached))(done, code)
    converged = result == RESULTS.successful
    x = eqx.filter_vmap(lambda a, xi, c: _implicit(a, xi, fn, c), in_axes=(args_axes, 0, 0))(
        args, x, converged)
    return NewtonResult(x=x, residual=jnp.max(jnp.abs(f), axis=-1), q=q, converged=converged,
                        steps=steps, result=result)


def _summary(states: _State):
    return (states.x, states.f, states.q, states.steps, states.done, states.result)


def _bcast(mask, like):
    return mask.reshape(mask.shape + (1,) * (jnp.ndim(like) - 1))


def _progress(done, total: int):
    from tqdm.auto import tqdm

    done = int(done)
    bar = _BAR.get("bar")
    if bar is None or bar.n > done:
        bar = _BAR["bar"] = tqdm(total=total, desc="fixed points")
    bar.update(done - bar.n)
    if done >= total:
        bar.close()
        _BAR.pop("bar", None)


_BAR: dict[str, Any] = {}


@eqx.filter_custom_vjp
def _implicit(args, x, fn, converged):
    return x


@_implicit.def_fwd
def _implicit_fwd(perturbed, args, x, fn, converged):
    return x, None


@_implicit.def_bwd
def _implicit_bwd(residuals, x_bar, perturbed, args, x, fn, converged):
    # dL/dθ = λᵀ ∂f/∂θ with (∂f/∂x)ᵀ λ = −x̄; problems that did not converge (or whose
    # Jacobian is singular) contribute nothing rather than NaN.
    jac = jax.jacfwd(fn)(x, args)
    solution = lx.linear_solve(lx.MatrixLinearOperator(jac.T), -x_bar,
                               lx.AutoLinearSolver(well_posed=None), throw=False)
    lam = solution.value
    good = converged & jnp.all(jnp.isfinite(lam))
    lam = jnp.where(good, lam, 0.0)
    # Perturbed scalars can arrive as Python-like literals; make them arrays so that
    # `filter_vjp` differentiates them.
    args = jax.tree_util.tree_map(lambda p, a: jnp.asarray(a) if p else a, perturbed, args)
    _, vjp = eqx.filter_vjp(lambda a: fn(x, a), args)
    (grads,) = vjp(lam)
    return jax.tree_util.tree_map(lambda p, g: g if p else None, perturbed, grads,
                                  is_leaf=lambda z: z is None)
