"""Fixed points and slow points of a system from a batch of starts, with their linearisation.

`fixed_points` solves `f(x) = 0` for a flow and `F(x) − x = 0` for a map with the Newton
core (`_newton.py`). The default strategy takes cheap Newton steps (one LU a step, with the
closed-form Jacobian of the RNN zoo) for the starts that reach a root, and hands the rest to
damped Newton on q = ½‖f‖² with its exact Hessian, which converges to the local minima of q:
the slow points of Sussillo & Barak (2013). Every point is polished until its last Newton
step, reported as `error`, is below the tolerance or at the rounding floor; points whose
distance is within their errors are the same point. The resolved starts are grouped into
distinct points on device, and each distinct point is linearised once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int, PyTree

from ._chunk import memory_budget, resolve_chunk_size
from ._newton import (
    AbstractNewtonStrategy,
    Fallback,
    LevenbergMarquardt,
    Newton,
    NewtonQ,
    newton_solve_batch,
)
from ._progress import as_meter
from ._solution import RESULTS
from ._system import as_system, jacobian, residual
from ._validate import (
    check_int,
    check_positive,
    check_state,
    check_system_output,
    check_tolerance,
    is_concrete,
    promote_scalars,
)

STABLE, SADDLE, UNSTABLE, MARGINAL, NONFINITE = 0, 1, 2, 3, 4
_METHODS = {"auto": lambda: Fallback(Newton(), NewtonQ()), "newton": Newton,
            "lm": LevenbergMarquardt, "q": NewtonQ}
_MERGE = 10.0  # points closer than this many times their summed errors are one point
_POLISH = 8  # the most undamped Newton steps that finish a slow point


class FixedPoints(eqx.Module):
    """Fixed (and slow) points found from a batch of starts, one row per start.

    **Fields** (leading axis `k`, one entry per start, or per slot after `unique`):

    - `x`: the points, `[k, n]` (always finite; NaN only in padding slots of `unique`).
    - `q`: `½‖f(x)‖²`; `residual`: `‖f(x)‖∞` (`f(x) = F(x) − x` for a map).
    - `error`: an estimate of `‖x − x*‖∞`, the distance to the exact fixed point (or to the
      exact minimum of q for a slow point): the size of the last Newton step.
    - `converged`: `residual ≤ tol`; `result`: the solver's `RESULTS` status per point
      (`result == RESULTS.slow_point` marks slow points; see the `slow` property).
    - `steps`: Newton iterations used.
    - `point`: for a resolved start, the index of the start that represents its distinct
      point (itself for the representatives, the start with the lowest q of each group);
      −1 for an unresolved start. `unique()` returns the representatives.
    - `jacobian`: `∂f/∂x` at `x` (for a map, of the update `F`), `[k, n, n]`.
    - `eigvals`: its eigenvalues, `[k, n]`, sorted from the most unstable (largest `Re λ`
      for a flow, largest `|μ|` for a map).
    - `eigvecs`, `left_eigvecs`: right eigenvectors (columns) and left ones, normalised so
      that `left_eigvecs[i].conj().T @ eigvecs[i] = I`.
    - `n_unstable`: unstable directions (`Re λ > marginal_tol`, or `log|μ| > marginal_tol`).
    - `stability`: an int label, `FixedPoints.stability_names[label]`: stable (0),
      saddle (1), unstable (2, every direction unstable), marginal (3: no unstable direction
      but at least one within `marginal_tol` of neutral), non-finite (4: the Jacobian is not
      finite there, so nothing can be said).
    - `input_jacobian`: `∂f/∂args` at `x` (for an RNN, `∂F/∂u`, `[k, n, n_in]`); keep large
      parameters (weight matrices) inside the system, not in `args`, or this gets large.
    - `args`: the arguments of each point (shared `args` are repeated on the leading axis).
    - `valid`: `True` on real entries; `False` on the padding that `unique` adds.

    The linearisation is computed once per distinct point and repeated for the starts that
    reached it. Its fields are `None` when `fixed_points(..., linearise=False)` was used;
    `linearise(system)` fills them in.
    """

    x: Float[Array, "k n"]
    q: Float[Array, " k"]
    residual: Float[Array, " k"]
    error: Float[Array, " k"]
    converged: Bool[Array, " k"]
    steps: Int[Array, " k"]
    result: RESULTS
    point: Int[Array, " k"]
    args: PyTree
    valid: Bool[Array, " k"]
    jacobian: Float[Array, "k n n"] | None = None
    eigvals: Complex[Array, "k n"] | None = None
    eigvecs: Complex[Array, "k n n"] | None = None
    left_eigvecs: Complex[Array, "k n n"] | None = None
    n_unstable: Int[Array, " k"] | None = None
    stability: Int[Array, " k"] | None = None
    input_jacobian: PyTree = None
    discrete: bool = eqx.field(static=True, default=False)

    stability_names: ClassVar[tuple[str, ...]] = ("stable", "saddle", "unstable", "marginal",
                                                  "non-finite")

    @property
    def slow(self) -> Bool[Array, " k"]:
        """Slow points: local minima of q with q > 0 (found by `method="q"` or `"auto"`)."""
        return jnp.asarray(self.result._value == RESULTS.slow_point._value) & self.valid

    @property
    def resolved(self) -> Bool[Array, " k"]:
        """Converged fixed points or reported slow points."""
        return (self.converged | self.slow) & self.valid

    def unique(self, tol: ArrayLike | None = None, *, size: int | None = None) -> FixedPoints:
        """The distinct resolved points, each once (the lowest-q member of each group).

        Two points are the same when `‖x_i − x_j‖∞ ≤ max(tol, 10·(error_i + error_j))` and
        their `args` agree within that distance; unresolved starts are dropped. With
        `tol=None` (default) the grouping follows each point's own error and is the one
        `fixed_points` computed (`point`); a `tol` also merges points that far apart.

        **Arguments:**

        - `tol`: an extra merge distance (∞-norm; may be traced), or None.
        - `size`: the length of the output buffer (a Python int, default `k`). If there are
          more distinct points, the lowest-q `size` of them are kept.

        **Returns:** a `FixedPoints` of length `size`: the distinct points first, in order of
        increasing q, then padding with `valid = False` and NaN entries. Works under `jit`,
        `vmap` and `grad` (the output shape does not depend on the data).

        **Raises:** `ValueError` for a `tol` that is not a positive finite number, or a
        `size` < 1.
        """
        size = self.x.shape[0] if size is None else check_int(size, "size")
        if tol is None:
            return _select(self, self.point == _rows(self.x.shape[0]), size)
        check_tolerance(tol, "tol")
        return _select(self, _group(self, jnp.asarray(tol, self.x.dtype)) ==
                       _rows(self.x.shape[0]), size)

    def linearise(self, system: Any, *, marginal_tol: ArrayLike | None = None) -> FixedPoints:
        """Fill in `jacobian`, eigen-decomposition, `n_unstable`, `stability` and
        `input_jacobian` at every valid point of `system` (see `fixed_points`)."""
        system = as_system(system)
        mtol = _marginal_tol(marginal_tol, self.x.dtype)
        return _linearise_rows(system, self, self.valid & jnp.all(jnp.isfinite(self.x), -1),
                               mtol)

    def manifolds(self, system: Any, *, neutral_tol: ArrayLike | None = None,
                  tol: ArrayLike = 0.05, size: int = 8):
        """Group the distinct points into manifolds of fixed points (continuous attractors)
        and isolated points.

        A trained network's line, ring or plane attractor comes out of a fixed-point search
        as many points, each with as many neutral directions as the attractor has
        dimensions. Two points are joined when the segment between them stays on the
        manifold: the velocity along it, seen from the linearisation at each end, is what a
        transverse offset of at most `tol × length` would give (neutral directions carry
        none), and one end at least has a neutral direction (a growth rate within
        `neutral_tol` of zero). Points joined directly or through other members are one
        manifold; the rest are isolated points. This is the slowness test of
        `ssm.classify` (same default `tol`) applied to the points themselves. Works on the
        rows that represent distinct points (`unique()` or the raw result); needs the
        linearisation.

        **Arguments:**

        - `system`: the system the points belong to (evaluated along the segments, with
          each point's own `args`).
        - `neutral_tol`: growth rates within this of zero are neutral (default √eps, the
          default `marginal_tol`: the exact continua of saturated gates, slow points). An
          approximate continuous attractor of a trained network has slightly negative or
          positive rates along it: pass a tolerance between those and the transverse rates,
          e.g. 0.05 per step.
        - `tol`: the largest slowness of a joining segment (default 0.05: a ring is joined
          when neighbouring points are less than 0.4 rad apart; may be traced). Trained
          approximate attractors drift off a straight segment more: 0.15 joins the committed
          Integrator's points.
        - `size`: manifold slots in the result (a Python int, default 8).

        **Returns:** a `FixedPointManifolds`: per row `label` (the manifold, −1 if none),
        `isolated`, `neutral`; per manifold `dim`, `n_members`, `centre`, `axes`, `extent`,
        `transverse_rate`, `stable`, `closed` (a ring), `slowness`. Works under `jit` and
        `vmap`; `plot(fps)` draws it.

        **Raises:** `ValueError` without the linearisation, for a system of the other kind
        (flow/map), or for bad tolerances.
        """
        from ._manifolds import find_manifolds

        return find_manifolds(self, system, neutral_tol=neutral_tol, tol=tol, size=size)

    def plot(self, ax=None, trajectories=None, **kwargs):
        """Fixed points over trajectories in a PCA projection, coloured by stability, with
        unstable directions drawn (see `jaxdyn.plot.plot_fixed_points`)."""
        from .plot import plot_fixed_points

        return plot_fixed_points(self, ax=ax, trajectories=trajectories, **kwargs)

    def __repr__(self) -> str:
        try:
            valid = np.asarray(self.valid)
            conv = np.asarray(self.converged) & valid
            slow = np.asarray(self.slow) & valid
            reps = (np.asarray(self.point) == np.arange(len(valid))) & valid
        except Exception:  # traced: fall back to the PyTree repr
            return eqx.tree_pformat(self)
        lines = [f"FixedPoints({int(valid.sum())} points of dimension {self.x.shape[-1]}: "
                 f"{int(conv.sum())} converged, {int(slow.sum())} slow, "
                 f"{int((valid & ~conv & ~slow).sum())} unresolved; "
                 f"{int((reps & conv).sum())} distinct fixed points, "
                 f"{int((reps & slow).sum())} distinct slow points"]
        if self.stability is not None:
            lab = np.asarray(self.stability)[conv & reps]
            counts = ", ".join(f"{int((lab == i).sum())} {name}"
                               for i, name in enumerate(self.stability_names)
                               if (lab == i).any() or i < 3)
            lines.append(f"  distinct fixed points: {counts}")
        if conv.any():
            lines.append(f"  max residual {float(np.max(np.asarray(self.residual)[conv])):.3g}, "
                         f"max error {float(np.max(np.asarray(self.error)[conv])):.3g} "
                         f"(converged points)")
        return "\n".join(lines) + ")"


def fixed_points(
    system: Any,
    x0s: ArrayLike,
    args: PyTree = None,
    *,
    method: str | AbstractNewtonStrategy = "auto",
    tol: ArrayLike | None = None,
    max_steps: int = 100,
    args_axis: int | None = None,
    chunk_size: int | None = None,
    linearise: bool = True,
    marginal_tol: ArrayLike | None = None,
    progress: Any = False,
) -> FixedPoints:
    """Find the fixed points (and slow points) of `system` from a batch of starts `x0s`.

    Every start runs its own Newton iteration (status per start, no exceptions in traced
    code), `chunk_size` starts at a time from a work queue, so that the total work follows
    the mean number of iterations rather than the slowest start. Each result is polished
    until its last Newton step (`error`) is below `tol` or at the rounding floor; resolved
    starts are then grouped into distinct points by their errors (`point`, `unique()`), and
    each distinct point is linearised once. For many inputs or many networks in one call,
    `vmap` this function: `jax.vmap(lambda u: jd.fixed_points(model, x0s, u))(us)`, or
    `eqx.filter_vmap(lambda m: jd.fixed_points(m, x0s, u))(stacked_models)`. `x` is
    differentiable (implicit function theorem) with respect to `args` and to the arrays of
    `system` (e.g. an RNN's weights), so `jax.grad` of a loss on `x`, `eigvals` or `jacobian`
    works without differentiating through the iterations.

    **Arguments:**

    - `system`: a `jd.Flow`, `jd.Map`, an RNN model or a callable `f(t, x, args)` (a flow).
      Evaluated at `t = 0`.
    - `x0s`: starts, `[batch, n]` (e.g. from `sample_states`).
    - `args`: the system's arguments (an RNN's constant input), shared by all starts, or one
      per start along axis 0 of every leaf when `args_axis=0`.
    - `method`: a strategy object or its name: `"auto"` (default,
      `jd.Fallback(jd.Newton(), jd.NewtonQ())`: Newton steps, then damped Newton on q for
      the starts that do not reach a root, which reports slow points), `"newton"`
      (`jd.Newton()`: roots only), `"q"` (`jd.NewtonQ()`: every start on q), `"lm"`
      (`jd.LevenbergMarquardt()`), or a configured strategy (another `tau`, a lineax
      `linear_solver`).
    - `tol`: converged when `‖f(x)‖∞ ≤ tol`, then polished until the Newton step is below
      `tol`; default `eps^(2/3)` of the dtype (≈ 4e-11 in float64, 2e-5 in float32).
    - `max_steps`: the bound on iterations per start (and per stage of `Fallback`).
    - `args_axis`: `None` (shared `args`) or `0` (batched `args`).
    - `chunk_size`: starts in flight at once (and points linearised at once); default 32 on
      CPU, else the larger of 1,024 and an eighth of the batch, at most what fits in
      `jaxdyn`'s memory budget (half the accelerator's memory, 2 GiB on CPU).
    - `linearise`: compute the Jacobians, eigen-decompositions and stability labels (default).
    - `marginal_tol`: growth rates within this of zero count as neutral (default √eps).
    - `progress`: `True` for a progress bar over finished starts, or a progress meter.

    **Returns:** a `FixedPoints` with one entry per start.

    **Raises:** `ValueError` for `x0s` that is not `[batch, n]` with the system's state size,
    an empty batch, non-finite starts, `tol <= 0`, `args` the system cannot take, or an
    unknown `method`.

    Reference: D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics in
    high-dimensional recurrent neural networks", Neural Computation 25(3), 2013; M. D. Golub
    and D. Sussillo, "FixedPointFinder", JOSS 3(31):1003, 2018.
    """
    system = as_system(system)
    x0s = check_state(x0s, "x0s", ndim=2, size=system.state_size)
    solver = _solver(method)
    if tol is None:
        tol = float(jnp.finfo(x0s.dtype).eps) ** (2 / 3)
    check_tolerance(tol, "tol")
    max_steps = check_int(max_steps, "max_steps")
    batch, n = x0s.shape
    args = promote_scalars(args)
    if args_axis not in (None, 0):
        raise ValueError(f"`args_axis` must be None (shared args) or 0 (one per start); "
                         f"got {args_axis!r}.")
    if args_axis == 0:
        leaves = jax.tree_util.tree_leaves(args)
        bad = [tuple(np.shape(a)) for a in leaves if np.ndim(a) == 0 or np.shape(a)[0] != batch]
        if not leaves or bad:
            raise ValueError(f"with `args_axis=0`, every leaf of `args` needs a leading axis "
                             f"of length {batch} (the batch of `x0s`); got shapes {bad}.")
        args = jax.tree_util.tree_map(jnp.asarray, args)
        first = jax.tree_util.tree_map(lambda a: a[0], args)
    else:
        first = args
    check_system_output(system, x0s[0], first, name="x0s", args_name="args")
    itemsize = jnp.dtype(x0s.dtype).itemsize
    per_item = (8 + (12 if linearise else 0)) * n * n * itemsize + 64 * n * itemsize
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    chunk = resolve_chunk_size(batch, chunk_size=chunk_size, bytes_per_item=per_item)
    if chunk_size is None:
        # Few slots keep the queue's total work near the mean iteration count; accelerators
        # need wide batches to be busy, CPUs do not.
        chunk = min(chunk, 32 if jax.default_backend() == "cpu" else max(1024, batch // 8))
    if linearise:
        out_bytes = batch * n * n * itemsize * 5
        if out_bytes > memory_budget(0.9):
            raise ValueError(
                f"the linearisation of {batch} points of dimension {n} needs about "
                f"{out_bytes / 2**30:.1f} GiB of output; pass `linearise=False`, then call "
                f"`fps.unique(size=m).linearise(system)` on the distinct points."
            )
    mtol = _marginal_tol(marginal_tol, x0s.dtype)
    meter = as_meter(progress, "fixed points", "start")
    fps = _find(system, x0s, args, jnp.asarray(tol, x0s.dtype), args_axis=args_axis,
                solver=solver, max_steps=max_steps, chunk=chunk, meter=meter)
    if not linearise:
        return fps
    reps = fps.point == _rows(batch)
    if is_concrete(reps):
        # Called eagerly: the number of distinct points is known, so only they are linearised,
        # in a buffer of that size (rounded up to a power of two to share compilations).
        distinct = int(np.sum(np.asarray(reps)))
        return _linearise_distinct(system, fps, mtol, 1 << max(distinct - 1, 0).bit_length())
    return _linearise_shared(system, fps, mtol, min(chunk, 16))


def _solver(method: Any) -> AbstractNewtonStrategy:
    if isinstance(method, AbstractNewtonStrategy):
        return method
    if isinstance(method, str) and method in _METHODS:
        return _METHODS[method]()
    raise ValueError(f"`method` must be one of {tuple(_METHODS)} or a strategy such as "
                     f"jd.NewtonQ(); got {method!r}.")


def _marginal_tol(marginal_tol, dtype) -> Array:
    if marginal_tol is None:
        return jnp.asarray(float(jnp.finfo(dtype).eps) ** 0.5, dtype)
    check_positive(marginal_tol, "marginal_tol")
    return jnp.asarray(marginal_tol, dtype)


def _residual(x, system_and_args):
    system, args = system_and_args
    return residual(system, x, args)


def _residual_jacobian(x, system_and_args):
    system, args = system_and_args
    jac = jacobian(system, x, args)
    return jac - jnp.eye(x.shape[0], dtype=jac.dtype) if system.discrete else jac


@eqx.filter_jit
def _find(system, x0s, args, tol, *, args_axis, solver, max_steps, chunk, meter):
    """Solve from every start and group the resolved starts into distinct points."""
    r = newton_solve_batch(_residual, x0s, (system, args), args_axes=(None, args_axis),
                           tol=tol, max_steps=max_steps, solver=solver, slots=chunk,
                           progress=meter, jac=_residual_jacobian)
    k = x0s.shape[0]
    if args_axis is None:
        args = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (k,) + jnp.shape(a)), args)
    fps = FixedPoints(x=r.x, q=r.q, residual=r.residual, error=r.error, converged=r.converged,
                      steps=r.steps, result=r.result, point=-jnp.ones(k, jnp.int32), args=args,
                      valid=jnp.ones(k, bool), discrete=system.discrete)
    zero = jnp.zeros((), x0s.dtype)
    point = _group(fps, zero)
    # Slow points: finish the representatives of the first grouping (their duplicates follow
    # them), then group the representatives again with their new errors.
    reps = point == _rows(k)
    fps = _polish_slow(system, fps, reps, tol, min(chunk, 16))
    regroup = _group(eqx.tree_at(lambda f: f.valid, fps, reps), zero)
    return eqx.tree_at(lambda f: f.point, fps,
                       jnp.where(point >= 0, regroup[jnp.clip(point, 0)], -1))


def _share(fps: FixedPoints, lin: dict, index) -> FixedPoints:
    """Every row gets the linearisation `lin[index[row]]` (padding where `index` < 0)."""
    ok = index >= 0
    lin = {name: jax.tree_util.tree_map(lambda a: _mask(a[jnp.clip(index, 0)], ok), val)
           for name, val in lin.items()}
    return eqx.tree_at(lambda f: [getattr(f, name) for name in lin], fps, list(lin.values()),
                       is_leaf=lambda z: z is None)


@eqx.filter_jit
def _linearise_distinct(system, fps: FixedPoints, mtol, size: int) -> FixedPoints:
    """Linearise the `size` (or fewer) distinct points, then share with the rows."""
    k = fps.x.shape[0]
    reps = (fps.point == _rows(k)) & jnp.all(jnp.isfinite(fps.x), -1)
    # Padding entries point past the end: they are dropped when the slots are written.
    (idx,) = jnp.nonzero(reps, size=size, fill_value=k)
    take = jnp.clip(idx, 0, k - 1)
    lin = jax.vmap(lambda i: _linearise_point(system, *_row(fps, i), mtol))(take)
    # The position of each row's representative among the linearised points.
    slot = jnp.full(k, -1, jnp.int32).at[idx].set(_rows(size), mode="drop")
    return _share(fps, lin, jnp.where(fps.point >= 0, slot[jnp.clip(fps.point, 0)], -1))


@eqx.filter_jit
def _linearise_shared(system, fps: FixedPoints, mtol, chunk: int) -> FixedPoints:
    """Inside a user's `jit`/`vmap`/`grad`, where the number of distinct points is not known:
    linearise the representative rows (chunks past them are skipped), then share."""
    k = fps.x.shape[0]
    reps = (fps.point == _rows(k)) & jnp.all(jnp.isfinite(fps.x), -1)
    lin = _linearise_rows(system, fps, reps, mtol, chunk=chunk)
    index = jnp.where(fps.point >= 0, fps.point, -1)
    return _share(fps, {name: getattr(lin, name) for name in _LIN}, index)


_LIN = ("jacobian", "eigvals", "eigvecs", "left_eigvecs", "n_unstable", "stability",
        "input_jacobian")


def _lin_fields(fps: FixedPoints) -> list:
    return [getattr(fps, name) for name in _LIN]


def _linearise_point(system, x, u, mtol) -> dict:
    """Jacobian, sorted eigen-decomposition with left eigenvectors, and stability at `x`."""
    jac = jacobian(system, x, u)
    safe = jnp.where(jnp.all(jnp.isfinite(jac)), jac, 0.0)
    # Eigenvector derivatives assume distinct eigenvalues; without them no gradient could
    # flow through a FixedPoints at all (its eigenvectors are always computed).
    w, v = jax.lax.linalg.eig(safe, compute_left_eigenvectors=False, enable_eigvec_derivs=True)
    # A failed eigen-decomposition of a finite matrix is no more a stable point than a
    # non-finite Jacobian is.
    finite = jnp.all(jnp.isfinite(jac)) & jnp.all(jnp.isfinite(w))
    rates = jnp.log(jnp.abs(w)) if system.discrete else jnp.real(w)
    order = jnp.argsort(-rates)
    w, v, rates = w[order], v[:, order], rates[order]
    left = jnp.linalg.inv(v).conj().T
    n_unst = jnp.sum(rates > mtol)
    n_center = jnp.sum(jnp.abs(rates) <= mtol)
    label = jnp.where(n_unst == 0, jnp.where(n_center > 0, MARGINAL, STABLE),
                      jnp.where(n_unst == x.shape[0], UNSTABLE, SADDLE))
    nan = jnp.asarray(jnp.nan, w.dtype)
    if any(eqx.is_inexact_array(a) for a in jax.tree_util.tree_leaves(u)):
        input_jac = eqx.filter_jacfwd(lambda a: system(0.0, x, a))(u)
    else:
        input_jac = None
    return dict(jacobian=jac, eigvals=jnp.where(finite, w, nan),
                eigvecs=jnp.where(finite, v, nan), left_eigvecs=jnp.where(finite, left, nan),
                n_unstable=jnp.where(finite, n_unst, -1),
                stability=jnp.where(finite, label, NONFINITE), input_jacobian=input_jac)


def _map_rows(one, rows, k: int, chunk: int) -> dict:
    """`one(i)` for every row `i` where `rows` is True, `chunk` rows at a time, scattered back
    into row order; the other rows are padding (NaN, −1, False).

    Chunks past the last selected row are skipped: a batch of 1,024 starts with 5 distinct
    points pays for one chunk (`cond` keeps this reverse-differentiable)."""
    (idx,) = jnp.nonzero(rows, size=k, fill_value=0)
    count = jnp.sum(rows)
    shapes = jax.eval_shape(one, 0)
    n_chunks = -(-k // chunk)

    def body(_, i):
        pos = i * chunk + jnp.arange(chunk)
        take = idx[jnp.clip(pos, 0, k - 1)]
        skip = lambda: jax.tree_util.tree_map(
            lambda s: jnp.full((chunk,) + s.shape, _fill(s.dtype), s.dtype), shapes)
        return None, jax.lax.cond(i * chunk < count, lambda: jax.vmap(one)(take), skip)

    _, vals = jax.lax.scan(body, None, jnp.arange(n_chunks))
    pos = jnp.arange(n_chunks * chunk)
    target = jnp.where(pos < count, idx[jnp.clip(pos, 0, k - 1)], k)
    # The buffers start as padding, so only the selected rows are written.
    return jax.tree_util.tree_map(
        lambda s, v: jnp.full((k,) + s.shape, _fill(s.dtype), s.dtype).at[target].set(
            v.reshape((n_chunks * chunk,) + s.shape), mode="drop"), shapes, vals)


def _row(fps: FixedPoints, i):
    """The finite state (zeros in place of non-finite ones) and the args of row `i`."""
    x = fps.x[i]
    return (jnp.where(jnp.all(jnp.isfinite(x)), x, 0.0),
            jax.tree_util.tree_map(lambda a: a[i], fps.args))


@eqx.filter_jit
def _linearise_rows(system, fps: FixedPoints, rows, mtol, chunk: int = 16) -> FixedPoints:
    """Linearise the rows where `rows` is True, `chunk` at a time; other rows are padding
    (NaN, −1)."""
    rows = rows & jnp.all(jnp.isfinite(fps.x), -1)
    out = _map_rows(lambda i: _linearise_point(system, *_row(fps, i), mtol), rows,
                    fps.x.shape[0], chunk)
    return eqx.tree_at(lambda f: [getattr(f, name) for name in out], fps, list(out.values()),
                       is_leaf=lambda z: z is None)


def _polish_slow(system, fps: FixedPoints, rows, tol, chunk: int) -> FixedPoints:
    """Finish the slow points with undamped Newton steps on ∇q = 0, and report as `error` the
    size of the last Newton step `‖(∇²q)⁻¹∇q‖∞` from the final point.

    The damped iteration that finds a slow point stops once ∇q is small relative to f, but q
    is flat near a slow point (its Hessian's smallest eigenvalue is often 1e-4 of the
    largest), so a small gradient can sit far from the minimum, and the damped step is then
    much shorter than that distance. The exact-Hessian step measures it: in float32 it
    predicts the distance to the float64 minimum to a few per cent. Steps are taken while they
    lower ‖∇q‖ (at most `_POLISH` of them); where rounding stops them, the rejected step is
    the size of the rounding scatter, and it is reported, so that two starts that stopped on
    either side of one minimum are merged by `unique()`. Only the slow points where `rows` is
    True are finished."""
    rows = rows & fps.slow & jnp.all(jnp.isfinite(fps.x), -1)

    def one(i):
        x, a = _row(fps, i)

        def grad_q(y):
            f, vjp = jax.vjp(lambda z: _residual(z, (system, a)), y)
            return vjp(f)[0]

        def newton(y):
            # One evaluation of ∇q gives both the gradient and, differentiated, the Hessian.
            hess, g = jax.jacfwd(lambda z: (lambda v: (v, v))(grad_q(z)), has_aux=True)(y)
            d = jnp.linalg.solve(0.5 * (hess + hess.T), -g)
            return jnp.sqrt(jnp.sum(g**2)), jnp.where(jnp.all(jnp.isfinite(d)), d, jnp.inf)

        def body(carry):
            y, gnorm, d, _, n = carry
            gnew, dnew = newton(y + d)
            better = jnp.all(jnp.isfinite(d)) & (gnew < gnorm)
            small = jnp.max(jnp.abs(dnew)) <= tol * jnp.maximum(1.0, jnp.max(jnp.abs(y + d)))
            return (jnp.where(better, y + d, y), jnp.where(better, gnew, gnorm),
                    jnp.where(better, dnew, d), ~better | small, n + 1)

        gnorm, d = newton(x)
        y, _, d, _, _ = jax.lax.while_loop(
            lambda c: ~c[3] & (c[4] < _POLISH), body,
            (x, gnorm, d, ~jnp.all(jnp.isfinite(d)), 0))
        f = _residual(y, (system, a))
        return dict(x=y, error=jnp.max(jnp.abs(d)), q=0.5 * jnp.sum(f**2),
                    residual=jnp.max(jnp.abs(f)))

    out = _map_rows(one, rows, fps.x.shape[0], chunk)
    # A singular Hessian gives no estimate: the row keeps the iteration's own.
    keep = rows & jnp.isfinite(out["error"])
    error = jnp.where(keep, out["error"], fps.error)
    x = jnp.where(keep[:, None], jax.lax.stop_gradient(out["x"]), fps.x)
    return eqx.tree_at(lambda f: (f.x, f.error, f.q, f.residual), fps,
                       (x, error, jnp.where(keep, out["q"], fps.q),
                        jnp.where(keep, out["residual"], fps.residual)))


def _fill(dtype):
    """The padding value of a dtype: NaN for floats, −1 for ints, False for bools."""
    if jnp.issubdtype(dtype, jnp.inexact):
        return jnp.nan
    return False if dtype == jnp.bool_ else -1


def _mask(a, ok):
    """Padding values where `ok` is False: NaN for floats, −1 for ints, False for bools."""
    ok = ok.reshape(ok.shape + (1,) * (a.ndim - 1))
    return jnp.where(ok, a, jnp.asarray(_fill(a.dtype), a.dtype))


def _rows(k: int) -> Int[Array, " k"]:
    return jnp.arange(k, dtype=jnp.int32)


def _args_features(fps: FixedPoints) -> Float[Array, "k d"]:
    """The inexact arrays of every row's `args`, flattened (`[k, 0]` when there are none)."""
    k = fps.x.shape[0]
    flat = [jnp.reshape(a, (k, -1)).astype(fps.x.dtype)
            for a in jax.tree_util.tree_leaves(fps.args) if eqx.is_inexact_array(a)]
    return jnp.concatenate(flat, axis=1) if flat else jnp.zeros((k, 0), fps.x.dtype)


def _group(fps: FixedPoints, tol) -> Int[Array, " k"]:
    """For every resolved row, the index of the row that represents its distinct point; −1
    for the others.

    Rows are visited in order of increasing q; a row joins the first kept representative
    within `max(tol, 10·(error_i + error_rep))` (∞-norm over `x` and the flattened `args`),
    else it becomes a representative itself.
    """
    k = fps.x.shape[0]
    dtype = fps.x.dtype
    cand = fps.resolved & jnp.all(jnp.isfinite(fps.x), axis=-1)
    order = jnp.argsort(jnp.where(cand, fps.q, jnp.inf))
    feats = jnp.concatenate([fps.x, _args_features(fps)], axis=1)
    feats = jax.lax.stop_gradient(jnp.where(cand[:, None], feats, 0.0)[order])
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(feats), axis=1))
    floor = 100 * jnp.finfo(dtype).eps * scale
    err = jax.lax.stop_gradient(
        jnp.where(jnp.isfinite(fps.error), fps.error, jnp.inf)[order])
    err = jnp.maximum(err, floor)
    cand_sorted = cand[order]

    def visit(i, rep):
        dist = jnp.max(jnp.abs(feats - feats[i][None]), axis=-1)
        near = (rep == _rows(k)) & (dist <= jnp.maximum(tol, _MERGE * (err + err[i])))
        j = jnp.argmax(near).astype(jnp.int32)  # the lowest-q representative in reach
        i = jnp.asarray(i, jnp.int32)
        return rep.at[i].set(jnp.where(cand_sorted[i], jnp.where(jnp.any(near), j, i), -1))

    rep_sorted = jax.lax.fori_loop(0, k, visit, -jnp.ones(k, jnp.int32))
    # Back to row indices.
    rep_rows = jnp.where(rep_sorted >= 0, order[jnp.clip(rep_sorted, 0)], -1)
    return jnp.zeros(k, jnp.int32).at[order].set(rep_rows.astype(jnp.int32))


@eqx.filter_jit
def _select(fps: FixedPoints, keep, size: int) -> FixedPoints:
    """The rows where `keep`, in order of increasing q, padded to `size`."""
    keep = keep & fps.resolved
    order = jnp.argsort(jnp.where(keep, fps.q, jnp.inf))
    idx = order[:size] if size <= order.shape[0] else jnp.concatenate(
        [order, jnp.zeros(size - order.shape[0], order.dtype)])
    ok = jnp.arange(size) < jnp.minimum(jnp.sum(keep), size)
    dynamic, static = eqx.partition(fps, eqx.is_array)
    taken = jax.tree_util.tree_map(lambda a: _mask(a[idx], ok), dynamic)
    out = eqx.combine(taken, static)
    result = jnp.where(ok, fps.result._value[idx], RESULTS.nonfinite._value)
    out = eqx.tree_at(lambda f: f.result._value, out, result)
    out = eqx.tree_at(lambda f: f.point, out, jnp.where(ok, _rows(size), -1))
    return eqx.tree_at(lambda f: f.valid, out, ok)
