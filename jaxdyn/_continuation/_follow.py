"""One curve followed in one or both directions, its events located and the two halves
joined into a `Branch` (shared by equilibria, branch switching and two-parameter curves)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._solution import RESULTS, code, first_failure, from_code
from ._branch import Bifurcations, Branch
from ._curves import AbstractCurve, Embedding, HopfCurve
from ._engine import Options, Raw, _sort_eigs, observe, trace
from ._tests import AbstractTestFunction


def nodiff(tree: PyTree) -> PyTree:
    """`tree` with every inexact array behind `stop_gradient` (the loop is not differentiated;
    the located special points carry implicit gradients instead)."""
    return jax.tree_util.tree_map(
        lambda a: jax.lax.stop_gradient(a) if eqx.is_inexact_array(a) else a, tree)


def orient(curve: AbstractCurve, y: Array, data: PyTree, ref: Array) -> Array:
    """The unit null vector of `H_y` at `y`, oriented along `ref`."""
    hy = jax.jacfwd(curve.residual)(y, data)
    tau = jnp.linalg.svd(hy)[2][-1]
    s = jnp.sign(jnp.dot(tau, ref))
    return tau * jnp.where(s == 0, 1.0, s)


def start_status(converged: Array, ps: Array, opts: Options) -> RESULTS:
    """The status of a start with parameters `ps`: `continuation_outside_bounds` outside the
    bounds (only reachable with traced values: concrete ones raise before), else
    `continuation_start` where the starting Newton solve did not converge."""
    outside = jnp.any(ps < opts.lower) | jnp.any(ps > opts.upper)
    return RESULTS.where(outside, RESULTS.continuation_outside_bounds,
                         RESULTS.where(converged, RESULTS.successful,
                                       RESULTS.continuation_start))


def _locate(curve: AbstractCurve, raws: Raw, tests: tuple[AbstractTestFunction, ...],
            opts: Options, max_steps: int) -> dict:
    """Locate every recorded event of every lane (`raws` is batched over the directions).

    The slots run one after another (`lax.map`), each through a `lax.switch` on the test that
    fired there, so a slot costs one locating solve and an empty slot nothing. (Under a
    user's `vmap` the switch becomes a select and every branch is evaluated.)"""
    n, q = curve.size, curve.n_params
    lanes, slots = raws.event_test.shape
    m = raws.y.shape[1]
    dtype, ctype = raws.y.dtype, raws.eigs.dtype

    def located(test, t, lane, index):
        i0 = jnp.clip(index, 0, m - 2)
        yl, yr = raws.y[lane, i0], raws.y[lane, i0 + 1]
        vl, vr = raws.tests[lane, i0, t], raws.tests[lane, i0 + 1, t]
        den = vl - vr
        safe = jnp.where(den == 0, 1.0, den)
        theta = jnp.where(den == 0, 0.5, jnp.clip(vl / safe, 0.0, 1.0))
        guess = jax.lax.stop_gradient(yl + theta * (yr - yl))
        data = curve.initial_data(guess)
        _, _, _, info = observe(curve, guess, yr - yl, data, ())
        y, extra, sol = test.locate(curve, guess, info, opts.refine_tol, max_steps)
        x, ps = y[:n], y[n:n + q]
        jac = curve.state_jacobian(x, ps)
        eigs = jax.lax.stop_gradient(_sort_eigs(jnp.linalg.eigvals(jac),
                                                curve.system.discrete))
        coef = test.coefficient(curve, x, ps, jac, extra)
        near = jnp.linalg.norm(y - guess) <= 2 * jnp.linalg.norm(yr - yl) + 1e-6
        ok = sol.converged & test.accept(curve, y, extra) & near
        if isinstance(curve, HopfCurve):
            extra = jnp.where(curve.system.discrete,
                              jnp.arccos(jnp.clip(y[-1] / 2, -1.0, 1.0)),
                              jnp.sqrt(jnp.maximum(y[-1], 0.0)))
        return dict(kind=jnp.asarray(test.kind, jnp.int32), x=x, p=ps[0],
                    p2=ps[1] if q > 1 else jnp.full((), jnp.nan, dtype),
                    eigenvalues=eigs.astype(ctype), coefficient=coef.astype(dtype),
                    omega=extra.astype(dtype), residual=sol.residual.astype(dtype), ok=ok,
                    result=sol.result)

    def empty(lane, index):
        nan = jnp.full((), jnp.nan, dtype)
        return dict(kind=jnp.zeros((), jnp.int32), x=jnp.full((n,), jnp.nan, dtype), p=nan,
                    p2=nan, eigenvalues=jnp.full((raws.eigs.shape[-1],), jnp.nan, ctype),
                    coefficient=nan, omega=nan, residual=nan, ok=jnp.zeros((), bool),
                    result=RESULTS.successful)

    branches = [lambda lane, index, test=test, t=t: located(test, t, lane, index)
                for t, test in enumerate(tests)] + [empty]

    def slot(lane_k):
        lane, k = lane_k
        t = raws.event_test[lane, k]
        which = jnp.where(t >= 0, t, len(tests))
        return jax.lax.switch(which, branches, lane, raws.event_index[lane, k])

    lane_ids = jnp.repeat(jnp.arange(lanes), slots)
    slot_ids = jnp.tile(jnp.arange(slots), lanes)
    out = jax.lax.map(slot, (lane_ids, slot_ids))
    out = jax.tree_util.tree_map(lambda a: a.reshape((lanes, slots) + a.shape[1:]), out)
    out["index"] = raws.event_index
    return out


def follow(curve: AbstractCurve, y0: Array, ref: Array, start: RESULTS,
           tests: tuple[AbstractTestFunction, ...], opts: Options, *, both: bool,
           max_points: int, max_steps: int, corrector_steps: int, max_events: int,
           refine_steps: int, kind: str, period: int = 1) -> Branch:
    """Follow `curve` from `y0` along `ref` (and against it when `both`) and build the
    `Branch`; `start` is the status of the start (nothing is continued unless it is
    `successful`). The loop runs on a non-differentiable copy of the curve; special points are
    located on `curve` itself, so they carry implicit gradients."""
    start_code = code(start)
    ok_code = code(RESULTS.successful)
    start_ok = start_code == ok_code
    frozen = nodiff(curve)
    y0 = jax.lax.stop_gradient(y0)
    data0 = frozen.initial_data(y0)
    n, q = curve.size, curve.n_params
    signs = jnp.array([1.0, -1.0] if both else [1.0], y0.dtype)

    def lane(sign):
        tau0 = orient(frozen, y0, data0, sign * ref)
        return trace(frozen, y0, tau0, data0, tests, opts, max_points=max_points,
                     max_steps=max_steps, corrector_steps=corrector_steps,
                     max_events=max_events, start_ok=start_ok)

    raws = jax.vmap(lane)(signs)
    if both:
        # On a closed curve both directions go round the same loop: keep the one that
        # closed (the forward one when both did) and only the start of the other.
        closed = raws.closed
        drop = jnp.stack([closed[1] & ~closed[0], closed[0]])
        raws = eqx.tree_at(
            lambda r: (r.count, r.event_test, r.result), raws,
            (jnp.where(drop, 1, raws.count), jnp.where(drop[:, None], -1, raws.event_test),
             from_code(jnp.where(drop, ok_code, code(raws.result)))))
    events = _locate(curve, raws, tests, opts, refine_steps)
    lanes = code(raws.result)
    if both:
        y, eigs, ds, count, events = _join(raws, events, max_points)
        # The first failure: the forward direction's, else the backward one's.
        result = first_failure(lanes[0], lanes[1])
        ends = jnp.stack([lanes[1], lanes[0]])
        steps = raws.steps[0] + raws.steps[1]
    else:
        take = lambda a: a[0]
        y, eigs, ds = raws.y[0], raws.eigs[0], raws.ds[0]
        count = raws.count[0]
        events = jax.tree_util.tree_map(take, events)
        result = lanes[0]
        ends = jnp.stack([ok_code, lanes[0]])
        steps = raws.steps[0]
    # The two directions together may hold more special points than the `max_events`
    # slots of the branch.
    overflow = jnp.sum(events["ok"]) > max_events
    result = jnp.where((result == ok_code) & overflow,
                       code(RESULTS.continuation_max_events), result)
    result = from_code(jnp.where(start_ok, result, start_code))
    ends = from_code(jnp.where(start_ok, ends, start_code))
    count = jnp.where(start_ok, count, 0)
    special = _compact(events, max_events)
    special = eqx.tree_at(lambda s: s.valid, special, special.valid & start_ok)
    valid = jnp.arange(y.shape[0]) < count
    # Empty slots hold NaN (a dropped direction of a closed curve leaves points there).
    y = jnp.where(valid[:, None], y, jnp.nan)
    eigs = jnp.where(valid[:, None], eigs, jnp.nan)
    ds = jnp.where(valid, ds, jnp.nan)
    discrete = curve.system.discrete
    if discrete:
        n_unst = jnp.sum(jnp.abs(eigs) > 1.0, axis=-1)
    else:
        n_unst = jnp.sum(jnp.real(eigs) > 0.0, axis=-1)
    # A point whose eigenvalues are not all finite has no known stability (−1, not stable).
    n_unst = jnp.where(jnp.all(jnp.isfinite(eigs), axis=-1), n_unst, -1)
    nanp = jnp.full((y.shape[0],), jnp.nan, y.dtype)
    return Branch(x=y[:, :n], p=y[:, n], p2=y[:, n + 1] if q > 1 else nanp, valid=valid,
                  stable=valid & (n_unst == 0), n_unstable=jnp.where(valid, n_unst, -1),
                  eigenvalues=eigs, ds=ds,
                  status=jax.vmap(lambda v: RESULTS.where(v, RESULTS.successful, result))(valid),
                  special=special, result=result, ends=ends, steps=steps,
                  embed=curve.embed, kind=kind, discrete=discrete, period=period)


def _join(raws: Raw, events: dict, m: int):
    """Join the backward half (reversed) and the forward half into one curve, valid points
    first."""
    cn, cp = raws.count[1], raws.count[0]
    shift = m - cn

    def cat(a):
        both = jnp.concatenate([a[1][::-1], a[0][1:]])
        return jnp.roll(both, -shift, axis=0)

    y, eigs, ds = cat(raws.y), cat(raws.eigs), cat(raws.ds)
    ds = ds.at[cn - 1].set(0.0)
    count = cn + cp - 1
    fwd = jax.tree_util.tree_map(lambda a: a[0], events)
    bwd = jax.tree_util.tree_map(lambda a: a[1], events)
    fwd["index"] = cn - 1 + fwd["index"]
    bwd["index"] = cn - 2 - bwd["index"]
    joined = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), fwd, bwd)
    return y, eigs, ds, count, joined


def _compact(events: dict, slots: int) -> Bifurcations:
    """The located events, valid ones first in branch order, in `slots` slots."""
    ok = events["ok"]
    order = jnp.argsort(jnp.where(ok, events["index"], jnp.iinfo(jnp.int32).max),
                        stable=True)[:slots]
    ev = jax.tree_util.tree_map(lambda a: a[order], events)
    ok = ev["ok"]

    def blank(a):
        mask = ok.reshape(ok.shape + (1,) * (a.ndim - 1))
        if jnp.issubdtype(a.dtype, jnp.inexact):
            return jnp.where(mask, a, jnp.nan)
        return jnp.where(mask, a, 0)

    result = ev["result"]
    return Bifurcations(kind=blank(ev["kind"]), x=blank(ev["x"]), p=blank(ev["p"]),
                        p2=blank(ev["p2"]), eigenvalues=blank(ev["eigenvalues"]),
                        coefficient=blank(ev["coefficient"]), omega=blank(ev["omega"]),
                        residual=blank(ev["residual"]), index=jnp.where(ok, ev["index"], -1),
                        valid=ok, result=result)


__all__ = ["Embedding", "follow", "nodiff", "orient", "start_status"]
