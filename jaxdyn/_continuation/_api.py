"""Entry points: `continuation`, `switch_branch` and `bifurcation_curve`."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify
from jaxtyping import ArrayLike, PyTree

from .._newton import Newton, newton_solve
from .._solution import RESULTS
from .._system import AbstractMap, AbstractSystem, as_system
from .._validate import check_int, check_state, describe, is_concrete
from ._branch import Branch
from ._curves import Embedding, EquilibriumCurve, FoldCurve, HopfCurve
from ._engine import Options, _corrector
from ._follow import follow, nodiff, start_status
from ._forms import form
from ._tests import (
    KIND_NAMES,
    AbstractTestFunction,
    BogdanovTakens,
    BranchPoint,
    Cusp,
    Flip,
    Fold,
    Hopf,
    NeimarkSacker,
)

# --- options ------------------------------------------------------------------------------


def _default_tests(discrete: bool) -> tuple[AbstractTestFunction, ...]:
    if discrete:
        return (Fold(), BranchPoint(), Flip(), NeimarkSacker())
    return (Fold(), BranchPoint(), Hopf())


def _check_tests(tests, curve_type, discrete: bool, default) -> tuple:
    if tests is None:
        return default
    if isinstance(tests, AbstractTestFunction):
        tests = (tests,)
    tests = tuple(tests)
    for t in tests:
        if not isinstance(t, AbstractTestFunction):
            raise ValueError(f"`tests` must hold test functions such as jd.Fold(), jd.Hopf(); "
                             f"got {describe(t)}.")
        if curve_type not in t.curves or discrete not in t.discrete:
            where = "a map" if discrete else "a flow"
            raise ValueError(f"`tests`: {type(t).__name__}() does not apply to this curve "
                             f"of {where}.")
    return tests


def _number(value: Any, name: str) -> Any:
    if not is_concrete(value):
        return value
    arr = np.asarray(value)
    if arr.shape != () or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"`{name}` must be a real scalar; got {describe(value)}.")
    if np.isnan(arr):
        raise ValueError(f"`{name}` must not be NaN.")
    return float(arr)


def _options(dtype, ds, ds_min, ds_max, bounds, tol, refine_tol, max_angle,
             n_params: int = 1, bounds2=None) -> Options:
    ds, ds_min, ds_max = (_number(v, k) for v, k in
                          ((ds, "ds"), (ds_min, "ds_min"), (ds_max, "ds_max")))
    for v, k in ((ds, "ds"), (ds_min, "ds_min"), (ds_max, "ds_max")):
        if isinstance(v, float) and not (v > 0 and math.isfinite(v)):
            raise ValueError(f"`{k}` must be a positive finite step; got {v}.")
    if isinstance(ds_min, float) and isinstance(ds_max, float) and ds_min > ds_max:
        raise ValueError(f"`ds_min` ({ds_min}) must not exceed `ds_max` ({ds_max}).")
    if isinstance(ds, float) and isinstance(ds_max, float) and ds > ds_max:
        raise ValueError(f"`ds` ({ds}) must not exceed `ds_max` ({ds_max}).")
    if isinstance(ds, float) and isinstance(ds_min, float) and ds < ds_min:
        raise ValueError(f"`ds` ({ds}) must not be below `ds_min` ({ds_min}).")
    lows, highs = [], []
    for b, name in ((bounds, "bounds"), (bounds2, "bounds2"))[:n_params]:
        b = (-math.inf, math.inf) if b is None else b
        if not isinstance(b, (tuple, list)) or len(b) != 2:
            raise ValueError(f"`{name}` must be a pair (low, high); got {b!r}.")
        lo, hi = _number(b[0], name), _number(b[1], name)
        if isinstance(lo, float) and isinstance(hi, float) and not lo < hi:
            raise ValueError(f"`{name}` must have low < high; got {b!r}.")
        lows.append(lo)
        highs.append(hi)
    f64 = jnp.dtype(dtype) == jnp.float64
    tol = (1e-10 if f64 else 1e-5) if tol is None else _number(tol, "tol")
    refine_tol = (1e-12 if f64 else 1e-5) if refine_tol is None else \
        _number(refine_tol, "refine_tol")
    for v, k in ((tol, "tol"), (refine_tol, "refine_tol")):
        if isinstance(v, float) and not v > 0:
            raise ValueError(f"`{k}` must be positive; got {v}.")
    angle = _number(max_angle, "max_angle")
    if isinstance(angle, float) and not 0 < angle < math.pi / 2:
        raise ValueError(f"`max_angle` must be in (0, π/2) radians; got {angle}.")
    arr = lambda v: jnp.asarray(v, dtype)
    return Options(ds=arr(ds), ds_min=arr(ds_min), ds_max=arr(ds_max),
                   lower=jnp.stack([arr(v) for v in lows]),
                   upper=jnp.stack([arr(v) for v in highs]), tol=arr(tol),
                   refine_tol=arr(refine_tol), cos_min=jnp.cos(arr(angle)))


def _check_inside(value: Any, bounds: Any, name: str, bounds_name: str) -> None:
    """Raise if the concrete start `value` lies outside the concrete `bounds` (a traced one
    is reported by the branch's status, `continuation_outside_bounds`)."""
    lo, hi = (-math.inf, math.inf) if bounds is None else bounds
    if not all(is_concrete(v) for v in (value, lo, hi)):
        return
    v, lo, hi = float(np.asarray(value)), float(np.asarray(lo)), float(np.asarray(hi))
    if not lo <= v <= hi:
        raise ValueError(f"{name} must lie within `{bounds_name}` [{lo:g}, {hi:g}] (the "
                         f"branch stops where it leaves them); got {v:g}. Start inside "
                         f"`{bounds_name}`, or widen them.")


def _check_indices(selector: Any, base: PyTree, args: PyTree, name: str) -> None:
    """Raise if the selector `selector` indexes `args` out of range.

    JAX clamps an out-of-range index (`a[5]` of a length-2 array reads `a[1]`), so such a
    selector would silently continue another parameter. `checkify`'s index checks see every
    gather and dynamic slice the selector makes, however it is written (`a[5]`, `a[-3]`,
    `jnp.take`, a row of a dict entry). They run on zeros shaped like `args`: a selector's
    indices depend on the shapes only, and a concrete stand-in keeps the check concrete under
    a user's `vmap`; under a user's `jit`, where operations are staged, the checked selector
    is compiled and run on the spot. A selector whose check still cannot be concrete (it
    closes over traced values) is not checked here."""
    checked = checkify.checkify(lambda a: jnp.asarray(selector(a)),
                                errors=checkify.index_checks)

    def stand_in():
        return jax.tree_util.tree_map(lambda b: jnp.zeros(jnp.shape(b), jnp.result_type(b)),
                                      base)

    try:
        try:
            message = checked(stand_in())[0].get()
        except jax.errors.ConcretizationTypeError:
            with jax.ensure_compile_time_eval():
                message = jax.jit(checked)(stand_in())[0].get()
    except Exception:  # the selector already ran on `args`: this is an extra check only
        return
    if message is not None:
        raise ValueError(f"`{name}` must select an existing element of `args` "
                         f"({describe(args)}); it indexes out of range: {message.strip()} "
                         f"(JAX would clamp the index and continue another entry.)")


def _embedding(args: PyTree, p0: Any, parameter: Any, dtype, name: str = "parameter"):
    """The embedding of one parameter into `args`, and the parameter's start value."""
    if p0 is not None:
        _number(p0, "p0" if name == "parameter" else "p2")
    leaves = jax.tree_util.tree_leaves(args)
    scalar = args is None or (len(leaves) == 1 and jnp.ndim(leaves[0]) == 0
                              and not isinstance(args, (tuple, list, dict, eqx.Module)))
    if parameter is None:
        if not scalar:
            raise ValueError(
                f"`args` is a PyTree ({describe(args)}), so the continuation parameter must "
                f"be chosen: pass `{name}=` a selector such as `lambda a: a[0]`, or a "
                f"direction shaped like `args`.")
        if p0 is None:
            if args is None:
                raise ValueError("`p0` (the starting parameter value) is required.")
            p0 = args  # a scalar `args` is the parameter's start
        return Embedding(None, (), jnp.zeros((1,), dtype)), jnp.asarray(p0, dtype)
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise ValueError(f"`args` must hold floating arrays to be continued in; got "
                             f"{describe(leaf)}.")
    base = jax.tree_util.tree_map(jnp.asarray, args)
    if callable(parameter):
        try:
            value, grad = jax.value_and_grad(lambda a: jnp.asarray(parameter(a)))(base)
        except (TypeError, ValueError, IndexError, KeyError) as err:
            raise ValueError(f"`{name}` must map `args` to one real scalar (e.g. "
                             f"`lambda a: a[0]`); calling it failed: {err!r}") from err
        _check_indices(parameter, base, args, name)
        norm2 = sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grad))
        if is_concrete(norm2) and float(norm2) == 0.0:
            raise ValueError(f"`{name}` does not depend on `args`.")
        direction = jax.tree_util.tree_map(lambda g: g / norm2.astype(g.dtype), grad)
        start = value if p0 is None else p0
        return (Embedding(base, (direction,), jnp.asarray(value, dtype)[None]),
                jnp.asarray(start, dtype))
    same = jax.tree_util.tree_structure(parameter) == jax.tree_util.tree_structure(base) and \
        all(jnp.shape(d) == jnp.shape(b) for d, b in zip(jax.tree_util.tree_leaves(parameter),
                                                       jax.tree_util.tree_leaves(base)))
    if not same:
        raise ValueError(f"`{name}` must be a selector function or a direction with the "
                         f"structure and shapes of `args`; got {describe(parameter)} for args "
                         f"{describe(args)}.")
    direction = jax.tree_util.tree_map(lambda d, b: jnp.asarray(d, b.dtype), parameter, base)
    start = jnp.asarray(0.0 if p0 is None else p0, dtype)
    return Embedding(base, (direction,), start[None]), start


def _statics(max_steps, max_points, max_events, corrector_steps):
    max_steps = check_int(max_steps, "max_steps")
    max_points = max_steps + 1 if max_points is None else check_int(max_points, "max_points",
                                                                       minimum=2)
    return (max_steps, max_points, check_int(max_events, "max_events"),
            check_int(corrector_steps, "corrector_steps"))


def _direction(direction) -> bool:
    if direction in ("both", 0):
        return True
    if direction in (1, "forward"):
        return False
    raise ValueError(f"`direction` must be 'both' or 'forward' (in the direction of "
                     f"increasing parameter); got {direction!r}.")


# --- equilibria ---------------------------------------------------------------------------


def _start_residual(x, a):
    curve, p = a
    return curve.equation(x, p)


@eqx.filter_jit
def _run_equilibria(curve, x0, p0, tests, opts, both, statics):
    max_steps, max_points, max_events, corrector_steps = statics
    frozen = nodiff(curve)
    p = p0[None]
    start = newton_solve(_start_residual, jax.lax.stop_gradient(x0),
                         (frozen, jax.lax.stop_gradient(p)), tol=opts.tol,
                         max_steps=4 * corrector_steps, solver=Newton())
    y0 = jnp.concatenate([start.x, p])
    ref = jnp.zeros_like(y0).at[curve.size].set(1.0)
    return follow(curve, y0, ref, start_status(start.converged, p, opts), tests, opts,
                  both=both, max_points=max_points, max_steps=max_steps,
                  corrector_steps=corrector_steps, max_events=max_events,
                  refine_steps=4 * corrector_steps, kind="equilibria")


def continuation(
    system: Any,
    x0: ArrayLike,
    p0: ArrayLike | None = None,
    args: PyTree = None,
    *,
    parameter: Any = None,
    bounds: tuple = (-math.inf, math.inf),
    ds: Any = 0.01,
    ds_min: Any = 1e-6,
    ds_max: Any = 0.1,
    direction: Any = "both",
    max_steps: int = 500,
    max_points: int | None = None,
    tests: Any = None,
    tol: Any = None,
    refine_tol: Any = None,
    max_angle: Any = 0.5,
    max_events: int = 8,
    corrector_steps: int = 8,
    throw: bool = True,
) -> Branch:
    """Continue a branch of equilibria (fixed points, for a map) in one parameter, detecting
    and locating its bifurcations, in one traced call.

    Pseudo-arclength continuation: a tangent predictor, a bordered Newton corrector with
    autodiff Jacobians (the shared Newton core), an adaptive step, both directions from the
    start. The whole sweep is one `lax.while_loop` over fixed-size buffers; test functions are
    evaluated at every point inside the loop, and each sign change is located afterwards by
    Newton on a minimally augmented system, all events at once. So `jax.vmap` over starting
    points, over a second parameter or over stacked networks gives many diagrams in one call.

    **Arguments:**

    - `system`: a `jd.Flow`, `jd.Map`, RNN model or callable `f(t, x, args)` (a flow).
    - `x0`: a state at (or near: it is corrected first) an equilibrium at `p0`.
    - `p0`: the starting parameter value. With a selector `parameter` it defaults to the
      selector's value at `args`; with a scalar `args` and no `parameter`, to `args`.
    - `args`: the system's `args`. When `parameter` is None, `args` *is* the parameter (a
      scalar; pass None and give `p0`).
    - `parameter`: for a PyTree `args` (an RNN's input vector, `cusp`'s pair), which scalar
      to continue in: a selector such as `lambda a: a[0]` (the `args` at `p` then have that
      entry set to `p`), or a direction `d` shaped like `args` (the `args` at `p` are
      `args + (p − p0)·d`, e.g. one input channel of a network).
    - `bounds`: `(low, high)` bounds on the parameter; the branch stops past them (or where
      it closes on itself), which is its normal end. `p0` must lie within them.
    - `ds`, `ds_min`, `ds_max`: the initial, smallest and largest arclength step.
    - `direction`: "both" (default) or "forward" (increasing parameter at the start).
    - `max_steps`: continuation steps per direction (accepted or rejected); a direction
      that uses them all before its normal end is cut short (`continuation_max_steps`).
    - `max_points`: buffer size per direction (default `max_steps + 1`); a direction that
      fills it first is cut short (`continuation_max_points`).
    - `tests`: the test functions (default: `Fold(), BranchPoint(), Hopf()` for flows,
      `Fold(), BranchPoint(), Flip(), NeimarkSacker()` for maps; `()` for none).
    - `tol`: the corrector's tolerance on `‖f‖∞` (default 1e-10 in float64, 1e-5 in
      float32); `refine_tol`: that of the special points (default 1e-12 / 1e-5).
    - `max_angle`: the largest turn of the tangent in one step (radians).
    - `max_events`: special-point slots; a branch that crosses more special points drops
      the rest (`continuation_max_events`).
    - `corrector_steps`: Newton iterations per corrector before the step is halved.
    - `throw`: raise (eagerly, or as a runtime error under `jit`) when Newton does not
      converge from `x0`; with `throw=False` the branch is empty and its `result` says why.

    **Returns:** a `Branch`, with its special points in `branch.special`; `branch.result`
    (and `branch.ends`, per direction) says whether it ended normally or was cut short.

    **Raises:** `ValueError` for a PyTree `args` without `parameter`, a selector that indexes
    `args` out of range, `ds ≤ 0`, `ds_min > ds_max`, bounds with `low ≥ high`, a start `p0`
    outside `bounds`, a state of the wrong size, or a test that does not apply to the
    system.

    References: E. L. Allgower and K. Georg, *Introduction to Numerical Continuation
    Methods* (2003); W. Govaerts, *Numerical Methods for Bifurcations of Dynamical
    Equilibria* (2000); Y. A. Kuznetsov, *Elements of Applied Bifurcation Theory* (2004).
    """
    system = as_system(system)
    x0 = check_state(x0, "x0", size=system.state_size)
    dtype = x0.dtype
    embed, p_start = _embedding(args, p0, parameter, dtype)
    opts = _options(dtype, ds, ds_min, ds_max, bounds, tol, refine_tol, max_angle)
    tests = _check_tests(tests, EquilibriumCurve, system.discrete,
                         _default_tests(system.discrete))
    _check_inside(p_start, bounds, "`p0` (the starting parameter)", "bounds")
    both = _direction(direction)
    statics = _statics(max_steps, max_points, max_events, corrector_steps)
    curve = EquilibriumCurve(system=system, embed=embed, size=x0.shape[0])
    branch = _run_equilibria(curve, x0, p_start, tests, opts, both, statics)
    return _maybe_throw(branch, throw)


def _maybe_throw(branch: Branch, throw: bool) -> Branch:
    if not throw:
        return branch
    failed = jnp.any(branch.result._value == RESULTS.continuation_start._value)
    if is_concrete(failed):
        if bool(failed):
            raise ValueError(RESULTS[RESULTS.continuation_start] + " (Pass throw=False to "
                             "get the empty branch instead.)")
        return branch
    return eqx.error_if(branch, failed, RESULTS[RESULTS.continuation_start])


# --- branch switching ---------------------------------------------------------------------


class _Twice(AbstractMap):
    """The second iterate `F∘F` of a map (its fixed points are period-2 points of `F`)."""

    system: AbstractSystem

    @property
    def state_size(self):
        return self.system.state_size

    def __call__(self, t, x, args):
        return self.system(t, self.system(t, x, args), args)


@eqx.filter_jit
def _run_switch(curve, y_star, secant, h, tests, opts, statics, period):
    max_steps, max_points, max_events, corrector_steps = statics
    frozen = nodiff(curve)
    y_star = jax.lax.stop_gradient(y_star)
    hy = jax.jacfwd(frozen.residual)(y_star, None)
    u, _, vh = jnp.linalg.svd(hy)
    phi = vh[-2:]  # an orthonormal basis of the two-dimensional null space
    psi = u[:, -1]  # the left null vector
    t1 = phi.T @ (phi @ secant)
    t1 = t1 / jnp.linalg.norm(t1)
    other = phi[jnp.argmin(jnp.abs(phi @ t1))]
    t2 = other - jnp.dot(other, t1) * t1
    t2 = t2 / jnp.linalg.norm(t2)
    # The algebraic branching equation c11 α² + 2 c12 αβ + c22 β² = 0 in the basis (t1, t2);
    # (1, 0) is the known branch, so the other one is (c22, −2 c12).
    res = lambda y: frozen.residual(y, None)
    c12 = jnp.dot(psi, form(res, y_star, t1, t2))
    c22 = jnp.dot(psi, form(res, y_star, t2, t2))
    alpha, beta = c22, -2 * c12
    degenerate = jnp.hypot(alpha, beta) < 1e-12
    alpha, beta = jnp.where(degenerate, 0.0, alpha), jnp.where(degenerate, 1.0, beta)
    tangent = alpha * t1 + beta * t2
    tangent = tangent / jnp.linalg.norm(tangent)
    guess = y_star + h * tangent
    sol = newton_solve(_corrector, guess, (frozen, None, tangent, guess), tol=opts.tol,
                       max_steps=4 * corrector_steps, solver=Newton())
    start = start_status(sol.converged, y_star[curve.size:], opts)
    # h = 0 would start on the branch point itself, where the two branches cannot be told
    # apart (concrete values raise before).
    start = RESULTS.where((h == 0) | ~jnp.isfinite(h), RESULTS.continuation_switch_step,
                          start)
    return follow(curve, sol.x, tangent, start, tests, opts, both=True,
                  max_points=max_points, max_steps=max_steps, corrector_steps=corrector_steps,
                  max_events=max_events, refine_steps=4 * corrector_steps,
                  kind="equilibria", period=period)


def _special_index(branch: Branch, index: Any, kinds: tuple[str, ...]) -> int:
    special = branch.special
    if np.ndim(special.kind) != 1:
        raise ValueError("`branch` must be a single branch (index a batch of branches first).")
    index = check_int(index, "index", minimum=0)
    if index >= special.kind.shape[0] or not bool(special.valid[index]):
        raise ValueError(f"`index` {index} is not a valid special point of the branch "
                         f"(it has {int(np.sum(special.valid))}).")
    name = KIND_NAMES[int(special.kind[index])]
    if name not in kinds:
        raise ValueError(f"`index` {index} is a {name}; expected one of {kinds}.")
    return index


def switch_branch(
    system: Any,
    branch: Branch,
    index: int,
    *,
    h: Any = None,
    bounds: tuple = (-math.inf, math.inf),
    ds: Any = 0.01,
    ds_min: Any = 1e-6,
    ds_max: Any = 0.1,
    max_steps: int = 500,
    max_points: int | None = None,
    tests: Any = None,
    tol: Any = None,
    refine_tol: Any = None,
    max_angle: Any = 0.5,
    max_events: int = 8,
    corrector_steps: int = 8,
) -> Branch:
    """Continue the other branch through a special point of `branch`.

    At a branch point the two-dimensional null space of `H_y` holds both branches' tangents;
    the algebraic branching equation (from the second derivatives of `f`, by autodiff) picks
    the one that is not `branch`'s, and the new branch is continued in both directions from a
    point `h` along it. At a map's flip point the new branch is the period-2 branch: fixed
    points of `F∘F`, which branch off the period-1 branch there (`Branch.period == 2`).

    **Arguments:**

    - `system`: the system `branch` was computed for.
    - `branch`: a `Branch` from `jd.continuation`.
    - `index`: the slot in `branch.special` of a branch point (or a flip, for a map).
    - `h`: the distance along the new tangent of the first point (default `ds`; finite and
      nonzero, of either sign: both directions of the new branch are followed).
    - the other options as for `jd.continuation`.

    **Returns:** the new `Branch`.

    **Raises:** `ValueError` if `index` is not a valid branch point or flip, `h` is 0 or not
    finite, or the point lies outside `bounds`.

    Reference: Kuznetsov (2004), §10.2.2 (branch switching).
    """
    system = as_system(system)
    allowed = ("branch point", "flip") if system.discrete else ("branch point",)
    index = _special_index(branch, index, allowed)
    kind = KIND_NAMES[int(branch.special.kind[index])]
    x = branch.special.x[index]
    dtype = x.dtype
    opts = _options(dtype, ds, ds_min, ds_max, bounds, tol, refine_tol, max_angle)
    statics = _statics(max_steps, max_points, max_events, corrector_steps)
    h = _number(ds if h is None else h, "h")
    if isinstance(h, float) and not (h != 0 and math.isfinite(h)):
        raise ValueError(f"`h` (the distance of the first point along the new branch) must be "
                         f"finite and nonzero; got {h}. With h = 0 the new branch starts on "
                         f"the branch point itself and follows the old one.")
    _check_inside(branch.special.p[index], bounds,
                  f"The {kind}'s parameter (`branch.special.p[index]`)", "bounds")
    period = branch.period
    if kind == "flip":
        system = _Twice(system)
        period = 2 * period
    tests = _check_tests(tests, EquilibriumCurve, system.discrete,
                         _default_tests(system.discrete))
    curve = EquilibriumCurve(system=system, embed=branch.embed, size=x.shape[0])
    y_star = jnp.concatenate([x, branch.special.p[index][None]])
    i = int(branch.special.index[index])
    valid = np.asarray(branch.valid)
    j = min(i + 1, int(valid.sum()) - 1)
    secant = jnp.concatenate([branch.x[j] - branch.x[i], branch.p[j:j + 1] - branch.p[i:i + 1]])
    return _run_switch(curve, y_star, secant, jnp.asarray(h, dtype), tests, opts, statics,
                       period)


# --- two-parameter curves -----------------------------------------------------------------


@eqx.filter_jit
def _run_codim2(curve, y0, tests, opts, statics, kind):
    max_steps, max_points, max_events, corrector_steps = statics
    frozen = nodiff(curve)
    data = frozen.initial_data(jax.lax.stop_gradient(y0))
    sol = newton_solve(_codim2_start, jax.lax.stop_gradient(y0),
                       (frozen, data, jax.lax.stop_gradient(y0)), tol=opts.tol,
                       max_steps=4 * corrector_steps, solver=Newton())
    ref = jnp.zeros_like(y0).at[curve.size + 1].set(1.0)
    start = start_status(sol.converged, y0[curve.size:curve.size + 2], opts)
    return follow(curve, sol.x, ref, start, tests, opts, both=True,
                  max_points=max_points, max_steps=max_steps, corrector_steps=corrector_steps,
                  max_events=max_events, refine_steps=4 * corrector_steps, kind=kind)


def _codim2_start(y, a):
    """Correct the start onto the curve with the second parameter held fixed."""
    curve, data, y0 = a
    n = curve.size
    return jnp.concatenate([curve.residual(y, data), (y[n + 1] - y0[n + 1])[None]])


def bifurcation_curve(
    system: Any,
    branch: Branch,
    index: int,
    *,
    parameter2: Any,
    p2: ArrayLike | None = None,
    bounds: tuple = (-math.inf, math.inf),
    bounds2: tuple = (-math.inf, math.inf),
    ds: Any = 0.01,
    ds_min: Any = 1e-6,
    ds_max: Any = 0.1,
    max_steps: int = 500,
    max_points: int | None = None,
    tests: Any = None,
    tol: Any = None,
    refine_tol: Any = None,
    max_angle: Any = 0.5,
    max_events: int = 8,
    corrector_steps: int = 8,
) -> Branch:
    """Continue a fold or a Hopf point (Neimark–Sacker for a map) of `branch` in two
    parameters, detecting cusp and Bogdanov–Takens points on the way.

    The fold curve solves the minimally augmented system `(f, g) = 0` in `(x, p, p2)`, the
    Hopf curve `(f, G) = 0` in `(x, p, p2, κ)` with `κ = ω²` (two entries of the bordered
    `J² + κI`); the borders are refreshed after every step. The result is a `Branch` of
    `kind` "fold" or "hopf" whose `p2` holds the second parameter.

    **Arguments:**

    - `system`, `branch`: the system and a branch from `jd.continuation` with a PyTree
      `args` (which holds both parameters).
    - `index`: the slot in `branch.special` of a fold or Hopf point.
    - `parameter2`: the second parameter: a selector on `args` (`lambda a: a[1]`) or a
      direction shaped like `args`.
    - `p2`: the second parameter's value at the point (a selector's value by default; 0 for a
      direction).
    - `bounds`, `bounds2`: bounds on the two parameters.
    - `tests`: default `Cusp(), BogdanovTakens()` on fold curves of flows, `Cusp()` for maps,
      `BogdanovTakens()` on Hopf curves.
    - the other options as for `jd.continuation`.

    **Returns:** a `Branch`.

    **Raises:** `ValueError` if `index` is not a valid fold/Hopf point, the branch's
    parameter is `args` itself (a scalar: there is no second parameter to vary),
    `parameter2` indexes `args` out of range, or the point lies outside `bounds` or `p2`
    outside `bounds2`.
    """
    system = as_system(system)
    allowed = ("fold", "neimark-sacker") if system.discrete else ("fold", "hopf")
    index = _special_index(branch, index, allowed)
    if branch.embed.base is None:
        raise ValueError("`branch` was continued in a scalar `args`; a two-parameter curve "
                         "needs `args` that hold both parameters (continue with a PyTree "
                         "`args` and a `parameter` selector).")
    sp = branch.special
    kind = KIND_NAMES[int(sp.kind[index])]
    x, p1 = sp.x[index], sp.p[index]
    dtype = x.dtype
    base = branch.embed(p1[None])
    embed2, p2_start = _embedding(base, p2, parameter2, dtype, name="parameter2")
    embed = Embedding(base, (branch.embed.directions[0], embed2.directions[0]),
                      jnp.stack([p1, embed2.offsets[0]]))
    opts = _options(dtype, ds, ds_min, ds_max, bounds, tol, refine_tol, max_angle,
                    n_params=2, bounds2=bounds2)
    _check_inside(p1, bounds, f"The {kind}'s parameter (`branch.special.p[index]`)",
                  "bounds")
    _check_inside(p2_start, bounds2, "`p2` (the second parameter's start)", "bounds2")
    statics = _statics(max_steps, max_points, max_events, corrector_steps)
    size = x.shape[0]
    if kind == "fold":
        curve = FoldCurve(system=system, embed=embed, size=size)
        default = (Cusp(),) if system.discrete else (Cusp(), BogdanovTakens())
        y0 = jnp.concatenate([x, p1[None], p2_start[None]])
    else:
        curve = HopfCurve(system=system, embed=embed, size=size)
        default = () if system.discrete else (BogdanovTakens(),)
        w = sp.omega[index]
        kappa = 2 * jnp.cos(w) if system.discrete else w * w
        y0 = jnp.concatenate([x, p1[None], p2_start[None], kappa[None]])
    tests = _check_tests(tests, type(curve), system.discrete, default)
    return _run_codim2(curve, y0, tests, opts, statics, "fold" if kind == "fold" else "hopf")
