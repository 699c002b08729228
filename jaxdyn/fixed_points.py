"""Fixed points and slow points of a system from a batch of starts, with their linearisation.

`fixed_points` solves `f(x) = 0` for a flow and `F(x) − x = 0` for a map with the globalised
Newton core (`_newton.py`): one `lax.while_loop` steps a slot of starts together, a finished
start hands its slot to the next waiting one, and the working memory stays within a budget.
`method="q"` minimises q = ½‖f(x)‖² with its exact Hessian instead, so that local minima with
q > 0, the slow points of Sussillo & Barak (2013), are reported too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int, PRNGKeyArray, PyTree

from ._chunk import chunked_vmap, memory_budget, resolve_chunk_size
from ._newton import (
    RESULTS,
    AbstractDampedNewton,
    LevenbergMarquardt,
    NewtonQ,
    newton_solve_batch,
)
from ._system import as_system, jacobian, residual
from ._validate import (
    as_float_array,
    check_int,
    check_positive,
    check_state,
    check_system_output,
    is_concrete,
)

STABLE, SADDLE, UNSTABLE, MARGINAL = 0, 1, 2, 3
_METHODS = {"newton": LevenbergMarquardt, "q": NewtonQ}


class FixedPoints(eqx.Module):
    """Fixed (and slow) points found from a batch of starts, one row per start.

    **Fields** (leading axis `k`, one entry per start, or per slot after `unique`):

    - `x`: the points, `[k, n]` (always finite; NaN only in padding slots of `unique`).
    - `q`: `½‖f(x)‖²`; `residual`: `‖f(x)‖∞` (`f(x) = F(x) − x` for a map).
    - `converged`: `residual ≤ tol`; `result`: the solver's `RESULTS` status per point
      (`result == RESULTS.slow_point` marks slow points; see the `slow` property).
    - `steps`: Newton iterations used.
    - `jacobian`: `∂f/∂x` at `x` (for a map, of the update `F`), `[k, n, n]`.
    - `eigvals`: its eigenvalues, `[k, n]`, sorted from the most unstable (largest `Re λ`
      for a flow, largest `|μ|` for a map).
    - `eigvecs`, `left_eigvecs`: right eigenvectors (columns) and left ones, normalised so
      that `left_eigvecs[i].conj().T @ eigvecs[i] = I`.
    - `n_unstable`: unstable directions (`Re λ > marginal_tol`, or `log|μ| > marginal_tol`).
    - `stability`: an int label, `FixedPoints.stability_names[label]`: stable (0),
      saddle (1), unstable (2, every direction unstable), marginal (3: no unstable direction
      but at least one within `marginal_tol` of neutral).
    - `input_jacobian`: `∂f/∂args` at `x` (for an RNN, `∂F/∂u`, `[k, n, n_in]`); keep large
      parameters (weight matrices) inside the system, not in `args`, or this gets large.
    - `args`: the arguments of each point (shared `args` are repeated on the leading axis).
    - `valid`: `True` on real entries; `False` on the padding that `unique` adds.

    The linearisation fields are `None` when `fixed_points(..., linearise=False)` was used;
    `linearise(system)` fills them in.
    """

    x: Float[Array, "k n"]
    q: Float[Array, " k"]
    residual: Float[Array, " k"]
    converged: Bool[Array, " k"]
    steps: Int[Array, " k"]
    result: RESULTS
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

    stability_names: ClassVar[tuple[str, ...]] = ("stable", "saddle", "unstable", "marginal")

    @property
    def slow(self) -> Bool[Array, " k"]:
        """Slow points: local minima of q with q > 0 (found by `method="q"`)."""
        return jnp.asarray(self.result._value == RESULTS.slow_point._value) & self.valid

    @property
    def resolved(self) -> Bool[Array, " k"]:
        """Converged fixed points or reported slow points."""
        return (self.converged | self.slow) & self.valid

    def unique(self, tol: ArrayLike = 1e-3, *, size: int | None = None) -> FixedPoints:
        """Deduplicate the resolved points on device, keeping the lowest-q member of each group.

        Points are visited in order of increasing q; one is kept unless a kept point lies
        within Euclidean distance `tol` of it (distance on `x` joined with the flattened
        `args`, so equal states under different inputs stay apart). Unresolved points
        (neither converged nor slow) are dropped.

        **Arguments:**

        - `tol`: the merge distance (may be traced).
        - `size`: the length of the output buffer (a Python int, default `k`). If there are
          more unique points, the lowest-q `size` of them are kept.

        **Returns:** a `FixedPoints` of length `size`: the unique points first, in order of
        increasing q, then padding with `valid = False` and NaN entries. Works under `jit`
        and `vmap` (the output shape does not depend on the data).
        """
        size = self.x.shape[0] if size is None else check_int(size, "size")
        return _unique(self, jnp.asarray(tol, self.x.dtype), size)

    def linearise(self, system: Any, *, marginal_tol: ArrayLike | None = None) -> FixedPoints:
        """Fill in `jacobian`, eigen-decomposition, `n_unstable`, `stability` and
        `input_jacobian` at every valid point of `system` (see `fixed_points`)."""
        system = as_system(system)
        mtol = _marginal_tol(marginal_tol, self.x.dtype)
        return _linearise_all(system, self, mtol)

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
        except Exception:  # traced: fall back to the PyTree repr
            return eqx.tree_pformat(self)
        lines = [f"FixedPoints({int(valid.sum())} points of dimension {self.x.shape[-1]}: "
                 f"{int(conv.sum())} converged, {int(slow.sum())} slow, "
                 f"{int((valid & ~conv & ~slow).sum())} unresolved"]
        if self.stability is not None:
            lab = np.asarray(self.stability)[conv]
            counts = ", ".join(f"{int((lab == i).sum())} {name}"
                               for i, name in enumerate(self.stability_names))
            lines.append(f"  converged points: {counts}")
        if conv.any():
            lines.append(f"  max residual of converged points: "
                         f"{float(np.max(np.asarray(self.residual)[conv])):.3g}")
        return "\n".join(lines) + ")"


def fixed_points(
    system: Any,
    x0s: ArrayLike,
    args: PyTree = None,
    *,
    method: str | AbstractDampedNewton = "newton",
    tol: ArrayLike | None = None,
    max_steps: int = 100,
    args_axis: int | None = None,
    chunk_size: int | None = None,
    linearise: bool = True,
    marginal_tol: ArrayLike | None = None,
    progress: bool = False,
) -> FixedPoints:
    """Find fixed points of `system` from a batch of starts `x0s`.

    Every start runs its own globalised Newton iteration (status per start, no exceptions in
    traced code). Starts run `chunk_size` at a time from a work queue, so that the total work
    follows the mean number of iterations rather than the slowest start. For many inputs or
    many networks in one call, `vmap` this function:
    `jax.vmap(lambda u: jd.fixed_points(model, x0s, u))(us)`, or
    `eqx.filter_vmap(lambda m: jd.fixed_points(m, x0s, u))(stacked_models)`.
    `x` is differentiable (implicit function theorem) with respect to `args` and to the
    arrays of `system` (e.g. an RNN's weights), so `jax.grad` of a loss on `x`, `eigvals` or
    `jacobian` works without differentiating through the iterations.

    **Arguments:**

    - `system`: a `jd.Flow`, `jd.Map`, an RNN model or a callable `f(t, x, args)` (a flow).
      Evaluated at `t = 0`.
    - `x0s`: starts, `[batch, n]` (e.g. from `sample_states`).
    - `args`: the system's arguments (an RNN's constant input), shared by all starts, or one
      per start along axis 0 of every leaf when `args_axis=0`.
    - `method`: `"newton"` (Levenberg–Marquardt on `f`, default), `"q"` (damped Newton on
      q = ½‖f‖² with its exact Hessian, reporting slow points), or a configured strategy,
      `jaxdyn.fixed_points.LevenbergMarquardt(...)` or `NewtonQ(...)` (e.g. another `tau`
      or a lineax `linear_solver`).
    - `tol`: converged when `‖f(x)‖∞ ≤ tol`; default `eps^(2/3)` of the dtype (≈ 4e-11 in
      float64, 2e-5 in float32).
    - `max_steps`: the bound on iterations per start.
    - `args_axis`: `None` (shared `args`) or `0` (batched `args`).
    - `chunk_size`: starts in flight at once (and points linearised at once); default 64 on
      CPU, else the larger of 1,024 and an eighth of the batch, at most what fits in
      `jaxdyn`'s memory budget (half the accelerator's memory, 2 GiB on CPU).
    - `linearise`: compute the Jacobians, eigen-decompositions and stability labels (default).
      For very large batches pass `False`, then `fps.unique(tol, size=m).linearise(system)`.
    - `marginal_tol`: growth rates within this of zero count as neutral (default √eps).
    - `progress`: show a progress bar over finished starts.

    **Returns:** a `FixedPoints` with one entry per start.

    **Raises:** `ValueError` for `x0s` that is not `[batch, n]` with the system's state size,
    an empty batch, non-finite starts, `tol <= 0`, `args` the system cannot take, or an
    unknown `method`.

    Reference: D. Sussillo and O. Barak, "Opening the black box: low-dimensional dynamics in
    high-dimensional recurrent neural networks", Neural Computation 25(3), 2013; M. D. Golub
    and D. Sussillo, "FixedPointFinder", JOSS 3(31):1003, 2018.
    """
    system = as_system(system)
    size = getattr(system, "state_size", None)
    x0s = check_state(x0s, "x0s", ndim=2, size=size if isinstance(size, int) else None)
    if isinstance(method, str):
        if method not in _METHODS:
            raise ValueError(f"`method` must be one of {tuple(_METHODS)} or a strategy "
                             f"such as LevenbergMarquardt(); got {method!r}.")
        solver = _METHODS[method]()
    elif isinstance(method, AbstractDampedNewton):
        solver = method
    else:
        raise ValueError(f"`method` must be one of {tuple(_METHODS)} or a strategy such as "
                         f"LevenbergMarquardt(); got {method!r}.")
    if tol is None:
        tol = float(jnp.finfo(x0s.dtype).eps) ** (2 / 3)
    check_positive(tol, "tol")
    max_steps = check_int(max_steps, "max_steps")
    batch, n = x0s.shape
    # Python and NumPy scalars become arrays, so that they can be differentiated and batched.
    args = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a) if isinstance(a, (int, float, np.ndarray, np.generic)) else a,
        args)
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
    try:
        check_system_output(system, x0s[0], first, name="x0s", args_name="args")
    except IndexError as e:
        raise ValueError(f"the system could not be evaluated with `x0s` of shape "
                         f"{tuple(x0s.shape)}: {e}. Check the trailing dimension of "
                         f"`x0s`.") from None
    itemsize = jnp.dtype(x0s.dtype).itemsize
    per_item = (8 + (12 if linearise else 0)) * n * n * itemsize + 64 * n * itemsize
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    chunk = resolve_chunk_size(batch, chunk_size=chunk_size, bytes_per_item=per_item)
    if chunk_size is None:
        # Few slots keep the queue's total work near the mean iteration count; accelerators
        # need wide batches to be busy, CPUs do not.
        chunk = min(chunk, 64 if jax.default_backend() == "cpu" else max(1024, batch // 8))
    if linearise:
        out_bytes = batch * n * n * itemsize * 5
        if out_bytes > memory_budget(0.9):
            raise ValueError(
                f"the linearisation of {batch} points of dimension {n} needs about "
                f"{out_bytes / 2**30:.1f} GiB of output; pass `linearise=False`, then call "
                f"`fps.unique(tol, size=m).linearise(system)` on the unique points."
            )
    mtol = _marginal_tol(marginal_tol, x0s.dtype)
    return _find(system, x0s, args, jnp.asarray(tol, x0s.dtype), mtol, args_axis=args_axis,
                 solver=solver, max_steps=max_steps, chunk=chunk, linearise=linearise,
                 progress=progress)


def _marginal_tol(marginal_tol, dtype) -> Array:
    if marginal_tol is None:
        return jnp.asarray(float(jnp.finfo(dtype).eps) ** 0.5, dtype)
    check_positive(marginal_tol, "marginal_tol")
    return jnp.asarray(marginal_tol, dtype)


def _residual(x, system_and_args):
    system, args = system_and_args
    return residual(system, x, args)


@eqx.filter_jit
def _find(system, x0s, args, tol, mtol, *, args_axis, solver, max_steps, chunk, linearise,
          progress):
    r = newton_solve_batch(_residual, x0s, (system, args), args_axes=(None, args_axis),
                           tol=tol, max_steps=max_steps, solver=solver, slots=chunk,
                           progress=progress)
    lin = None
    if linearise:
        lin = chunked_vmap(lambda x, u: _linearise_point(system, x, u, mtol), r.x, args,
                           in_axes=(0, args_axis), chunk_size=chunk)
    x, q, res, conv, steps, result = r.x, r.q, r.residual, r.converged, r.steps, r.result
    k = x0s.shape[0]
    if args_axis is None:
        args = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (k,) + jnp.shape(a)), args)
    lin = {} if lin is None else lin
    return FixedPoints(x=x, q=q, residual=res, converged=conv, steps=steps, result=result,
                       args=args, valid=jnp.ones(k, bool), discrete=system.discrete, **lin)


def _linearise_point(system, x, u, mtol) -> dict:
    """Jacobian, sorted eigen-decomposition with left eigenvectors, and stability at `x`."""
    jac = jacobian(system, x, u)
    # Eigenvector derivatives assume distinct eigenvalues; without them no gradient could
    # flow through a FixedPoints at all (its eigenvectors are always computed).
    w, v = jax.lax.linalg.eig(jac, compute_left_eigenvectors=False, enable_eigvec_derivs=True)
    rates = jnp.log(jnp.abs(w)) if system.discrete else jnp.real(w)
    order = jnp.argsort(-rates)
    w, v, rates = w[order], v[:, order], rates[order]
    left = jnp.linalg.inv(v).conj().T
    n_unst = jnp.sum(rates > mtol)
    n_center = jnp.sum(jnp.abs(rates) <= mtol)
    label = jnp.where(n_unst == 0, jnp.where(n_center > 0, MARGINAL, STABLE),
                      jnp.where(n_unst == x.shape[0], UNSTABLE, SADDLE))
    if any(eqx.is_inexact_array(a) for a in jax.tree_util.tree_leaves(u)):
        input_jac = eqx.filter_jacfwd(lambda a: system(0.0, x, a))(u)
    else:
        input_jac = None
    return dict(jacobian=jac, eigvals=w, eigvecs=v, left_eigvecs=left, n_unstable=n_unst,
                stability=label, input_jacobian=input_jac)


@eqx.filter_jit
def _linearise_all(system, fps: FixedPoints, mtol) -> FixedPoints:
    ok = fps.valid & jnp.all(jnp.isfinite(fps.x), axis=-1)
    x = jnp.where(ok[:, None], fps.x, 0.0)
    lin = jax.vmap(lambda xi, ui: _linearise_point(system, xi, ui, mtol))(x, fps.args)
    lin = {name: jax.tree_util.tree_map(lambda a: _mask(a, ok), val)
           for name, val in lin.items()}
    return eqx.tree_at(lambda f: [getattr(f, name) for name in lin], fps, list(lin.values()),
                       is_leaf=lambda z: z is None)


def _mask(a, ok):
    """Padding values where `ok` is False: NaN for floats, −1 for ints, False for bools."""
    ok = ok.reshape(ok.shape + (1,) * (a.ndim - 1))
    if jnp.issubdtype(a.dtype, jnp.inexact):
        fill = jnp.nan
    elif a.dtype == jnp.bool_:
        fill = False
    else:
        fill = -1
    return jnp.where(ok, a, jnp.asarray(fill, a.dtype))


@eqx.filter_jit
def _unique(fps: FixedPoints, tol, size: int) -> FixedPoints:
    k = fps.x.shape[0]
    cand = fps.resolved & jnp.all(jnp.isfinite(fps.x), axis=-1)
    order = jnp.argsort(jnp.where(cand, fps.q, jnp.inf))
    args_flat = [jnp.reshape(a, (k, -1)) for a in jax.tree_util.tree_leaves(fps.args)
                 if eqx.is_inexact_array(a)]
    feats = jnp.concatenate([fps.x] + [a.astype(fps.x.dtype) for a in args_flat], axis=1)
    feats = jnp.where(cand[:, None], feats, 0.0)[order]
    cand_sorted = cand[order]

    def visit(i, keep):
        near = keep & (jnp.sqrt(jnp.sum((feats - feats[i][None]) ** 2, axis=-1)) <= tol)
        return keep.at[i].set(cand_sorted[i] & ~jnp.any(near))

    keep = jax.lax.fori_loop(0, k, visit, jnp.zeros(k, bool))
    (pos,) = jnp.nonzero(keep, size=size, fill_value=0)
    idx = order[pos]
    ok = jnp.arange(size) < jnp.sum(keep)
    dynamic, static = eqx.partition(fps, eqx.is_array)
    taken = jax.tree_util.tree_map(lambda a: _mask(a[idx], ok), dynamic)
    out = eqx.combine(taken, static)
    result = jnp.where(ok, fps.result._value[idx], RESULTS.nonfinite._value)
    out = eqx.tree_at(lambda f: f.result._value, out, result)
    return eqx.tree_at(lambda f: f.valid, out, ok)


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
    from .simulate import Trajectory, simulate

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
    idx = jax.random.choice(k_idx, pool.shape[0], (n,), p=finite / jnp.sum(finite))
    return pool[idx] + noise * jax.random.normal(k_noise, (n, pool.shape[-1]), pool.dtype)
