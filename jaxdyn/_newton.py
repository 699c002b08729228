"""The globalised Newton core shared by fixed points, continuation correctors, bifurcation
refinement and reduced models.

One driver owns the loop. `newton_solve_batch(fn, x0s, args)` runs a strategy over a work
queue: one `lax.while_loop` steps `slots` problems together (a `vmap` of the strategy's
`step`), and a problem that finishes hands its slot to the next waiting one, so the total work
follows the mean number of iterations rather than the slowest problem. `newton_solve` is the
queue with one problem and one slot. Nothing raises inside: divergence, non-finite values and
stalls become the per-problem `RESULTS` status, and `x` is always the last finite iterate.

Strategies (`eqx.Module`s with `init` / `step`):

- `Newton`: Newton's step `J δ = −f` with a backtracking line search on q = ½‖f‖² (Dennis &
  Schnabel 1983, §6.3). One LU factorisation a step; fails fast where the Jacobian is singular
  or the Newton direction does not lower q.
- `LevenbergMarquardt`: damped Gauss–Newton steps `(JᵀJ + μI) δ = −Jᵀf`; robust far from a
  root, works for non-square `f` (least squares).
- `NewtonQ`: damped Newton on q with its exact Hessian, `(∇²q + μI) δ = −∇q`. Converges
  quadratically to every local minimum of q, including minima with q > 0: the *slow points*
  of Sussillo & Barak (2013).
- `Fallback(first, then)`: runs `first`; problems it leaves unresolved restart from its last
  iterate with `then` (by default `Fallback(Newton(), NewtonQ())`: cheap Newton steps for the
  starts that reach a root, exact-Hessian steps for the rest).

Every strategy converges in two tiers: the residual `‖f‖∞ ≤ tol`, then the step: iterations go
on until a Newton step is no larger than `tol` (relative to `max(1, ‖x‖∞)`) or no longer
lowers q (the rounding floor; such a step must still be below `√tol`). The size of that last
step is reported as `error`, an estimate of the distance to the exact root: near a singular
Jacobian a small residual can hide a large error in `x`, and it is this error that decides
which points are the same.

The implicit gradient is the usual one (`optimistix.ImplicitAdjoint` does the same), written as
an `eqx.filter_custom_vjp` so that the backward pass can drop problems that did not converge.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._progress import AbstractProgressMeter, NoProgressMeter
from ._solution import RESULTS

_ACCEPT = 1e-4  # smallest ratio of actual to predicted decrease that accepts a step
_PATIENCE = 5  # iterations in a row without progress before the iteration counts as stalled


class NewtonResult(eqx.Module):
    """The solution of one problem (or a batch, with the batch on axis 0 of every field).

    **Fields:**

    - `x`: the last accepted (always finite) iterate. When the solve is differentiated, `x`
      carries implicit-function-theorem gradients with respect to `args`.
    - `residual`: `‖f(x)‖∞`.
    - `q`: `½‖f(x)‖²`.
    - `error`: the size `‖δ‖∞` of the last Newton step, an estimate of the distance from `x`
      to the exact solution (of the root, or of the minimum of q for a slow point).
    - `converged`: `result == RESULTS.successful`: `residual ≤ tol`, and the last Newton step
      below `tol` (relative to `max(1, ‖x‖∞)`) or at the rounding floor below `√tol`.
    - `steps`: iterations taken (accepted and rejected trial steps).
    - `result`: a `RESULTS` item.
    """

    x: Float[Array, " n"]
    residual: Float[Array, ""]
    q: Float[Array, ""]
    error: Float[Array, ""]
    converged: Bool[Array, ""]
    steps: Int[Array, ""]
    result: RESULTS


class Problem(eqx.Module):
    """A residual `fn(x, args)` with an optional dense Jacobian `jac(x, args)` (default:
    forward-mode autodiff of `fn`). Systems with a cheap closed-form Jacobian (the RNN zoo)
    pass it here."""

    fn: Callable = eqx.field(static=True)
    jac: Callable | None = eqx.field(static=True, default=None)

    def jacobian(self, x: Array, args: PyTree) -> Array:
        if self.jac is not None:
            return self.jac(x, args)
        return jax.jacfwd(self.fn)(x, args)


class _State(eqx.Module):
    x: Array
    f: Array
    q: Array
    mu: Array
    nu: Array
    stall: Array
    steps: Array
    last_step: Array  # ‖δ‖∞ of the last step computed (the error estimate)
    done: Array
    result: RESULTS
    lin_result: RESULTS  # the last linear solve's status (reported if the problem never ends)


def _initial_state(problem: Problem, x: Array, args: PyTree, tol: Array) -> _State:
    f = problem.fn(x, args)
    q = 0.5 * jnp.sum(f**2)
    finite = jnp.all(jnp.isfinite(f))
    result = RESULTS.where(finite, RESULTS.successful, RESULTS.nonfinite)
    zero = jnp.zeros((), jnp.int32)
    inf = jnp.asarray(jnp.inf, q.dtype)
    exact = finite & jnp.all(f == 0)
    return _State(x=x, f=f, q=q, mu=-jnp.ones((), q.dtype), nu=jnp.asarray(2.0, q.dtype),
                  stall=zero, steps=zero, last_step=jnp.where(exact, 0.0, inf),
                  done=exact | ~finite, result=result,
                  lin_result=RESULTS.successful)


def _advance(state: _State, x_try, f_try, q_try, accept, size, tol, *, slow=False,
             failed=False, fail_result=RESULTS.stagnated, stalled=False,
             stall_result=RESULTS.stagnated, **extra) -> _State:
    """The shared end of every strategy's step: take or reject the trial point, then decide
    whether the problem is finished and with which status.

    `size` is `‖δ‖∞` of the (undamped where possible) step just computed. A problem whose
    residual is below `tol` goes on until that step is below `tol·max(1, ‖x‖∞)` (so that `x`
    is as accurate as the residual promises) or no longer lowers q (the rounding floor).
    """
    x = jnp.where(accept, x_try, state.x)
    f = jnp.where(accept, f_try, state.f)
    q = jnp.where(accept, q_try, state.q)
    small_res = jnp.max(jnp.abs(f)) <= tol
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(x)))
    exact = accept & (q == 0)
    polished = small_res & (size <= tol * scale)
    # Steps that no longer lower q with a small residual have met the rounding floor; they
    # must be small, though (below √tol), or the residual only looks small (f = eˣ, x → −∞).
    floor = small_res & (~accept | (q > 0.9 * state.q)) & (size <= jnp.sqrt(tol) * scale)
    converged = polished | floor | exact
    size = jnp.where(exact, 0.0, size)
    result = RESULTS.where(
        converged, RESULTS.successful,
        RESULTS.where(slow, RESULTS.slow_point,
                      RESULTS.where(failed, fail_result,
                                    RESULTS.where(stalled, stall_result, RESULTS.successful))))
    done = converged | slow | failed | stalled
    return eqx.tree_at(
        lambda s: (s.x, s.f, s.q, s.steps, s.last_step, s.done, s.result,
                   *(getattr(s, k) for k in extra)),
        state,
        (x, f, q, state.steps + 1, size, done, result, *extra.values()),
    )


class AbstractNewtonStrategy(eqx.Module):
    """An iteration for `fn(x, args) = 0`, run by `newton_solve_batch`.

    Final subclasses implement `step(problem, state, args, tol) -> state`, which must end in
    the shared `_advance`.
    """

    def init(self, problem: Problem, x: Array, args: PyTree, tol: Array) -> _State:
        return _initial_state(problem, x, args, tol)

    @abc.abstractmethod
    def step(self, problem: Problem, state: _State, args: PyTree, tol: Array) -> _State:
        """One iteration from `state`."""

    def stages(self) -> tuple[AbstractNewtonStrategy, ...]:
        """The strategies run one after the other (see `Fallback`); one for a plain one."""
        return (self,)


class Newton(AbstractNewtonStrategy):
    """Newton's method with a backtracking line search on q = ½‖f‖².

    Each step solves `J δ = −f` (one LU factorisation; `J` from the problem's Jacobian, in
    closed form for the RNN zoo) and halves the step length from 1 until q falls by the
    Armijo condition `q(x + αδ) ≤ (1 − 2·10⁻⁴α) q(x)`. The Newton direction always lowers q
    where `J` is invertible, so the iteration stops only at a root, at a singular Jacobian,
    or where rounding defeats the search: those problems end `stagnated` (or `singular`),
    ready to be handed to a strategy that reports slow points (`Fallback`).

    **Arguments:**

    - `linear_solver`: a lineax solver for `J δ = −f` (default `lx.LU()`).
    - `max_backtracks`: step halvings before the search gives up (default 12).

    Reference: J. E. Dennis and R. B. Schnabel, "Numerical Methods for Unconstrained
    Optimization and Nonlinear Equations", Prentice-Hall 1983, §6.3.
    """

    linear_solver: lx.AbstractLinearSolver = lx.LU()
    max_backtracks: int = eqx.field(static=True, default=12)

    def step(self, problem, state, args, tol):
        x, q = state.x, state.q
        jac = problem.jacobian(x, args)
        sol = lx.linear_solve(lx.MatrixLinearOperator(jac), -state.f, self.linear_solver,
                              throw=False)
        delta = sol.value
        solved = jnp.all(jnp.isfinite(delta)) & (sol.result == lx.RESULTS.successful)
        delta = jnp.where(solved, delta, 0.0)

        def trial(alpha):
            f = problem.fn(x + alpha * delta, args)
            qq = 0.5 * jnp.sum(f**2)
            ok = jnp.isfinite(qq) & (qq <= (1.0 - 2.0 * _ACCEPT * alpha) * q)
            return f, qq, ok

        def more(c):
            alpha, _, _, ok, k = c
            return ~ok & (k < self.max_backtracks)

        def halve(c):
            alpha, _, _, _, k = c
            alpha = 0.5 * alpha
            f, qq, ok = trial(alpha)
            return alpha, f, qq, ok, k + 1

        one = jnp.ones((), q.dtype)
        f1, q1, ok1 = trial(one)
        alpha, f_try, q_try, ok, _ = jax.lax.while_loop(more, halve, (one, f1, q1, ok1, 0))
        accept = solved & ok
        size = jnp.where(solved, jnp.max(jnp.abs(delta)), jnp.inf)
        # A linear solve that failed says so; a non-finite step means a singular Jacobian;
        # otherwise the line search found no decrease of q.
        lin_ok = sol.result == lx.RESULTS.successful
        fail_result = RESULTS.where(
            lin_ok, RESULTS.where(solved, RESULTS.stagnated, RESULTS.singular),
            RESULTS.promote(sol.result))
        return _advance(state, x + alpha * delta, f_try, q_try, accept, size, tol,
                        failed=~accept, fail_result=fail_result)


class AbstractDampedNewton(AbstractNewtonStrategy):
    """A damped Newton strategy for q(x) = ½‖f(x)‖² on a local quadratic model
    `q + gᵀδ + ½δᵀAδ`, solving `(A + μI) δ = −g` with lineax and adapting the damping `μ`
    from the ratio of actual to predicted decrease (Levenberg 1944; Marquardt 1963; the update
    of Nielsen 1999). Final subclasses provide `model`, the gradient and Hessian of the model.
    """

    linear_solver: eqx.AbstractVar[lx.AbstractLinearSolver]
    tau: eqx.AbstractVar[float]
    reports_slow_points: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def model(self, problem: Problem, x: Array, args: PyTree) -> tuple[Array, Array, Callable]:
        """Return `(f(x), ∇q(x), v ↦ A v)` for the model Hessian `A`."""

    def step(self, problem, state, args, tol):
        x, q = state.x, state.q
        eps = jnp.finfo(x.dtype).eps
        f, g, matvec = self.model(problem, x, args)
        g_ok = jnp.all(jnp.isfinite(g))
        g = jnp.where(g_ok, g, 0.0)

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
        sol = lx.linear_solve(operator, -g, self.linear_solver, throw=False)
        delta = sol.value
        pred = 0.5 * (mu * jnp.sum(delta**2) - jnp.sum(g * delta))
        delta_ok = jnp.all(jnp.isfinite(delta))
        delta = jnp.where(delta_ok, delta, 0.0)
        x_try = x + delta
        f_try = problem.fn(x_try, args)
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
        size = jnp.where(delta_ok, jnp.max(jnp.abs(delta)), jnp.inf)
        scale = jnp.maximum(1.0, jnp.max(jnp.abs(x)))
        tiny = size <= jnp.sqrt(eps) * scale
        idle = jnp.where(accept, q - q_try <= 8 * eps * q, delta_ok & tiny)
        stall = jnp.where(idle, state.stall + 1, 0)
        slow = jnp.zeros((), bool)
        if self.reports_slow_points:
            # A minimum of q away from a root: the gradient vanishes relative to f, or the
            # exact-Hessian steps have shrunk below tol.
            slow = g_ok & ((jnp.max(jnp.abs(g)) <= tol * jnp.max(jnp.abs(f)))
                           | (accept & (size <= tol * scale)))
        # A failed linear solve (an indefinite damped model) only rejects the step and raises
        # the damping; its status is kept in case the problem never finishes.
        stall_result = RESULTS.slow_point if self.reports_slow_points else RESULTS.stagnated
        return _advance(state, x_try, f_try, q_try, accept & ~slow & g_ok, size, tol,
                        slow=slow & (jnp.max(jnp.abs(f)) > tol), failed=~g_ok,
                        fail_result=RESULTS.nonfinite, stalled=stall >= _PATIENCE,
                        stall_result=stall_result, mu=mu_new, nu=nu_new, stall=stall,
                        lin_result=RESULTS.promote(sol.result))


class LevenbergMarquardt(AbstractDampedNewton):
    """Levenberg–Marquardt: damped Gauss–Newton steps `(JᵀJ + μI) δ = −Jᵀf`.

    Newton's method on `f(x) = 0` far from trouble, gradient descent on q when the Jacobian
    is singular or the start is far. Stalling away from a root is reported as
    `RESULTS.stagnated`. Works for non-square `f` too (least squares).

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
    reports_slow_points: ClassVar[bool] = False

    def model(self, problem, x, args):
        f, jvp = jax.linearize(lambda y: problem.fn(y, args), x)
        vjp = jax.linear_transpose(jvp, x)
        (g,) = vjp(f)
        return f, g, lambda v: vjp(jvp(v))[0]


class NewtonQ(AbstractDampedNewton):
    """Damped Newton on q = ½‖f‖² with its exact Hessian: `(∇²q + μI) δ = −∇q`.

    Finds roots of `f` and slow points, the local minima of q with q > 0, both with quadratic
    convergence. A point where `‖∇q‖∞ ≤ tol·‖f‖∞`, where the Newton steps on q shrink below
    `tol`, or where q stops decreasing, is reported as `RESULTS.slow_point` unless
    `‖f‖∞ ≤ tol`.

    **Arguments:** as `LevenbergMarquardt`.

    Reference: D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics in
    high-dimensional recurrent neural networks", Neural Computation 25(3), 2013.
    """

    linear_solver: lx.AbstractLinearSolver = lx.Cholesky()
    tau: float = 1e-3
    reports_slow_points: ClassVar[bool] = True

    def model(self, problem, x, args):
        def grad_q(y):
            r = problem.fn(y, args)
            _, vjp = jax.vjp(lambda z: problem.fn(z, args), y)
            return vjp(r)[0], r

        g, hvp, f = jax.linearize(grad_q, x, has_aux=True)
        return f, g, hvp


class Fallback(AbstractNewtonStrategy):
    """Run `first`; problems it does not resolve (neither converged nor a slow point) restart
    from its last iterate with `then`. Steps add up.

    **Arguments:**

    - `first`: the cheap strategy (default `Newton()`).
    - `then`: the robust one (default `NewtonQ()`, which also reports slow points).
    """

    first: AbstractNewtonStrategy = Newton()
    then: AbstractNewtonStrategy = NewtonQ()

    def stages(self):
        return self.first.stages() + self.then.stages()

    def step(self, problem, state, args, tol):
        raise ValueError("`Fallback` is run stage by stage by `newton_solve_batch`.")


def newton_solve(
    fn: Callable[[Array, PyTree], Array],
    x0: Float[Array, " n"],
    args: PyTree = None,
    *,
    tol: Any,
    max_steps: int = 100,
    solver: AbstractNewtonStrategy | None = None,
    jac: Callable | None = None,
) -> NewtonResult:
    """Solve `fn(x, args) = 0` from `x0` by a globalised Newton method.

    The work queue of `newton_solve_batch` with one problem; `vmap` it for batches, or call
    `newton_solve_batch`. Gradients of `x` with respect to `args` (every inexact array in the
    PyTree, e.g. `(model, input)`) follow from the implicit function theorem,
    `dx/dθ = −(∂f/∂x)⁻¹ ∂f/∂θ`, without differentiating through the iterations; they are
    zero for problems that did not converge. Put everything to be differentiated in `args`,
    not in a closure of `fn`.

    **Arguments:**

    - `fn`: the residual `fn(x, args) -> f`, a 1-D array (same size as `x` for gradients).
    - `x0`: the start, shape `(n,)`.
    - `args`: a PyTree passed to `fn`.
    - `tol`: convergence when `‖f(x)‖∞ ≤ tol` (may be a traced scalar); the iteration then
      polishes `x` until a step is below `tol` (see the module docstring).
    - `max_steps`: the bound on iterations (a Python int).
    - `solver`: a strategy; default `LevenbergMarquardt()` (any residual, square or not).
    - `jac`: an optional dense Jacobian `jac(x, args)` of `fn`.

    **Returns:** a `NewtonResult`.
    """
    # One problem needs no queue: each stage runs its steps in a plain loop (the same
    # iterates as the queue with one slot, at a fraction of the compile time).
    solver = LevenbergMarquardt() if solver is None else solver
    problem = Problem(fn, jac)
    tol = jnp.asarray(tol, x0.dtype)
    nondiff = jax.tree_util.tree_map(
        lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, args)
    state, steps = None, jnp.zeros((), jnp.int32)
    for stage in solver.stages():
        start = jax.lax.stop_gradient(x0) if state is None else state.x
        fresh = stage.init(problem, start, nondiff, tol)
        if state is not None:
            resolved = _resolved(state)
            fresh = eqx.tree_at(lambda st: st.done, fresh, fresh.done | resolved)
        run = jax.lax.while_loop(lambda st: ~st.done & (st.steps < max_steps),
                                 lambda st, stage=stage: stage.step(problem, st, nondiff, tol),
                                 fresh)
        steps = steps + run.steps  # zero for a problem an earlier stage resolved
        if state is not None:
            run = jax.tree_util.tree_map(lambda old, new: jnp.where(resolved, old, new),
                                         state, run)
        state = run
    batched = jax.tree_util.tree_map(lambda a: a[None], state)
    out = _finish(fn, args, None, batched, steps[None])
    return jax.tree_util.tree_map(lambda a: a[0], out)


def newton_solve_batch(
    fn: Callable[[Array, PyTree], Array],
    x0s: Float[Array, "batch n"],
    args: PyTree = None,
    *,
    args_axes: Any = None,
    tol: Any,
    max_steps: int = 100,
    solver: AbstractNewtonStrategy | None = None,
    slots: int | None = None,
    progress: AbstractProgressMeter = NoProgressMeter(),
    jac: Callable | None = None,
) -> NewtonResult:
    """Solve `fn(x, args) = 0` from a batch of starts, `slots` problems at a time from a
    work queue.

    A plain `vmap` runs every problem for as many iterations as the slowest one needs. Here
    one `lax.while_loop` steps `slots` problems together; a problem that finishes writes its
    result and its slot takes the next waiting start. The work then follows the *mean*
    number of iterations, the working memory that of `slots` problems. The results equal
    those of `newton_solve` on each start.

    **Arguments:** as `newton_solve`, plus

    - `x0s`: starts, `[batch, n]`.
    - `args_axes`: which parts of `args` are batched, as `in_axes` of `eqx.filter_vmap`: a
      prefix of `args` with `None` (shared by all starts, the default) or `0` (one per start
      on axis 0), e.g. `(None, 0)` for `args = (model, inputs)`.
    - `slots`: problems in flight (default: the whole batch).
    - `progress`: a progress meter over finished problems (default none).

    **Returns:** a `NewtonResult` whose fields carry the batch on axis 0.
    """
    solver = LevenbergMarquardt() if solver is None else solver
    problem = Problem(fn, jac)
    batch = x0s.shape[0]
    slots = batch if slots is None else max(1, min(int(slots), batch))
    tol = jnp.asarray(tol, x0s.dtype)
    nondiff = jax.tree_util.tree_map(
        lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, args)
    states = None
    steps = jnp.zeros(batch, jnp.int32)
    for k, stage in enumerate(solver.stages()):
        start = jax.lax.stop_gradient(x0s) if states is None else states.x
        todo = None if states is None else ~_resolved(states)
        states = _queue(problem, stage, start, nondiff, args_axes, tol, max_steps, slots,
                        progress, todo, states)
        steps = steps + states.steps
    return _finish(fn, args, args_axes, states, steps)


def _finish(fn, args, args_axes, states: _State, steps: Array) -> NewtonResult:
    """The `NewtonResult` of a batch of final states, with implicit gradients."""
    residual = jnp.max(jnp.abs(states.f), axis=-1)
    # Out of steps: say so, or pass on the failure of the last linear solve that kept the
    # iteration from moving.
    unfinished = jax.vmap(lambda lin: RESULTS.where(
        lin == RESULTS.successful, RESULTS.nonlinear_max_steps_reached, lin))(states.lin_result)
    result = jax.vmap(lambda d, c, u: RESULTS.where(d, c, u))(states.done, states.result,
                                                             unfinished)
    converged = jnp.asarray(result._value == RESULTS.successful._value)
    x = eqx.filter_vmap(lambda a, xi, c: _implicit(a, xi, fn, c), in_axes=(args_axes, 0, 0))(
        args, states.x, converged)
    return NewtonResult(x=x, residual=residual, q=states.q, error=states.last_step,
                        converged=converged, steps=steps, result=result)


def _resolved(states: _State) -> Array:
    ok = (RESULTS.successful._value, RESULTS.slow_point._value)
    code = states.result._value
    return states.done & ((code == ok[0]) | (code == ok[1]))


def _take(tree: PyTree, axes: Any, i: Array) -> PyTree:
    take = lambda a: a[i] if eqx.is_array(a) else a
    return jax.tree_util.tree_map(
        lambda ax, sub: sub if ax is None else jax.tree_util.tree_map(take, sub),
        axes, tree, is_leaf=lambda z: z is None)


def _queue(problem, solver, x0s, args, args_axes, tol, max_steps, slots, meter, todo,
           previous):
    """Run `solver` over the starts `x0s[todo]` (all when `todo` is None), `slots` at a time.

    Returns the final `_State` of every start, batched on axis 0; starts not in `todo` keep
    `previous`, with zero steps."""
    batch = x0s.shape[0]
    if todo is None:
        order, count = jnp.arange(batch), jnp.asarray(batch)
    else:
        (order,) = jnp.nonzero(todo, size=batch, fill_value=0)
        count = jnp.sum(todo)
    init = eqx.filter_vmap(lambda x, a: solver.init(problem, x, a, tol), in_axes=(0, args_axes))
    step = eqx.filter_vmap(lambda st, a: solver.step(problem, st, a, tol),
                           in_axes=(0, args_axes))

    def start(pos):
        """Fresh states for queue positions `pos` (clipped into range)."""
        i = order[jnp.clip(pos, 0, batch - 1)]
        return init(x0s[i], _take(args, args_axes, i))

    def body(carry):
        states, pos, nxt, out, finished_total = carry
        active = pos >= 0
        slot_args = _take(args, args_axes, order[jnp.clip(pos, 0, batch - 1)])
        frozen = states.done | (states.steps >= max_steps) | ~active
        stepped = step(states, slot_args)
        states = jax.tree_util.tree_map(
            lambda old, new: jnp.where(_bcast(frozen, new), old, new), states, stepped)
        finished = active & (states.done | (states.steps >= max_steps))
        target = jnp.where(finished, order[jnp.clip(pos, 0, batch - 1)], batch)
        out = jax.tree_util.tree_map(lambda buf, v: buf.at[target].set(v, mode="drop"), out,
                                     states)
        new_pos = nxt + jnp.cumsum(finished) - 1
        refill = finished & (new_pos < count)
        states = jax.tree_util.tree_map(
            lambda old, new: jnp.where(_bcast(refill, new), new, old), states, start(new_pos))
        pos = jnp.where(finished, jnp.where(refill, new_pos, -1), pos)
        finished_total = finished_total + jnp.sum(finished)
        meter.report(finished_total, batch)
        return states, pos, nxt + jnp.sum(finished), out, finished_total

    first = jnp.arange(slots)
    states = start(first)
    pos = jnp.where(first < count, first, -1)
    if previous is None:
        out = jax.tree_util.tree_map(lambda a: jnp.zeros((batch,) + a.shape[1:], a.dtype),
                                     states)
    else:
        out = eqx.tree_at(lambda s: s.steps, previous, jnp.zeros_like(previous.steps))
    carry = (states, pos, jnp.minimum(jnp.asarray(slots), count), out,
             jnp.asarray(batch) - count)
    _, _, _, out, _ = jax.lax.while_loop(lambda c: jnp.any(c[1] >= 0), body, carry)
    return out


def _bcast(mask, like):
    return mask.reshape(mask.shape + (1,) * (jnp.ndim(like) - 1))


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
