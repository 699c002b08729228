"""The continuation driver: pseudo-arclength steps along `H(y) = 0` in one `lax.while_loop`
over fixed-size buffers, with test functions evaluated at every point and their sign changes
recorded as events; the events are then located, all at once, by `vmap`.

Each step predicts `y + ds·τ` along the unit tangent `τ`, corrects by Newton on the bordered
system `(H(y), τᵀ(y − y_pred)) = 0` (the shared Newton core), and takes the new tangent from
`[H_y; τᵀ] τ' = (0, 1)`. The step grows after an easy correction and halves after a failed
one (or a tangent turning by more than `max_angle`); below `ds_min` the branch ends with a
status. The branch ends normally where it leaves the parameter `bounds` or closes on itself
(a step passes the start again, in the start's direction); running out of `max_steps` or of
`max_points` first, or finding more sign changes than `max_events` slots, gives a status of
its own. Reference: E. L. Allgower and K. Georg, *Introduction to Numerical Continuation
Methods*, SIAM (2003), ch. 2, 6; H. B. Keller (1977).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._newton import Newton, newton_solve
from .._solution import RESULTS, code, from_code
from ._curves import AbstractCurve
from ._tests import AbstractTestFunction, PointInfo


class Options(eqx.Module):
    """The traced step-control options (a new value does not recompile)."""

    ds: Array
    ds_min: Array
    ds_max: Array
    lower: Array  # bounds on the parameters, shape (n_params,)
    upper: Array
    tol: Array
    refine_tol: Array
    cos_min: Array


class Raw(eqx.Module):
    """The buffers one direction of continuation fills."""

    y: Array  # [M, m+1]
    eigs: Array  # [M, n]
    tests: Array  # [M, k]
    ds: Array  # [M]
    count: Array  # points stored
    result: RESULTS  # why this direction stopped (or that events were dropped)
    closed: Array  # the direction came back to its start (a closed curve)
    event_test: Array  # [K] index into `tests`, −1 empty
    event_index: Array  # [K] the point before the sign change
    steps: Array


def _corrector(y, a):
    curve, data, tau, y_pred = a
    return jnp.concatenate([curve.residual(y, data), jnp.dot(tau, y - y_pred)[None]])


def _sort_eigs(eigs: Array, discrete: bool) -> Array:
    rate = jnp.abs(eigs) if discrete else jnp.real(eigs)
    return eigs[jnp.argsort(-rate)]


def observe(curve: AbstractCurve, y: Array, tau_ref: Array, data: PyTree,
            tests: tuple[AbstractTestFunction, ...]):
    """The tangent, eigenvalues and test values at a point `y` of the curve."""
    hy = jax.jacfwd(curve.residual)(y, data)
    rhs = jnp.zeros(y.shape[0], y.dtype).at[-1].set(1.0)
    tau = jnp.linalg.solve(jnp.concatenate([hy, tau_ref[None]]), rhs)
    tau = tau / jnp.linalg.norm(tau)
    jac = curve.jacobian_from(hy, y)
    eigs = _sort_eigs(jnp.linalg.eigvals(jac), curve.system.discrete)
    info = PointInfo(y=y, tau=tau, hy=hy, jac=jac, eigs=eigs)
    values = [t.value(curve, info, data) for t in tests]
    # The last entry: the sign of det [H_y; τᵀ], which flips only at branch points.
    values.append(jnp.linalg.slogdet(jnp.concatenate([hy, tau[None]]))[0].real)
    # And the number of unstable eigenvalues, which a Hopf (Neimark–Sacker) point changes by
    # two and a neutral saddle leaves alone.
    rate = jnp.log(jnp.abs(eigs)) if curve.system.discrete else jnp.real(eigs)
    # (NaN where an eigenvalue is not finite: no crossing is read from an unknown count.)
    count = jnp.sum(rate > 0).astype(y.dtype)
    values.append(jnp.where(jnp.all(jnp.isfinite(rate)), count, jnp.nan))
    return tau, eigs, jnp.stack(values).astype(y.dtype), info


def trace(curve: AbstractCurve, y0: Array, tau0: Array, data0: PyTree,
          tests: tuple[AbstractTestFunction, ...], opts: Options, *, max_points: int,
          max_steps: int, corrector_steps: int, max_events: int,
          start_ok: Array) -> Raw:
    """Follow the curve from the point `y0` (on it) along `tau0`."""
    n = curve.size
    q = curve.n_params
    k = len(tests)
    dtype = y0.dtype
    tau0 = tau0 / jnp.linalg.norm(tau0)
    _, eigs0, values0, _ = observe(curve, y0, tau0, data0, tests)
    neig = eigs0.shape[0]

    def put(buf, i, v):
        return buf.at[i].set(v)

    ybuf = jnp.full((max_points, y0.shape[0]), jnp.nan, dtype).at[0].set(y0)
    ebuf = jnp.full((max_points, neig), jnp.nan, eigs0.dtype).at[0].set(eigs0)
    tbuf = jnp.full((max_points, k + 2), jnp.nan, dtype).at[0].set(values0)
    dbuf = jnp.full((max_points,), jnp.nan, dtype).at[0].set(0.0)
    carry0 = dict(i=jnp.asarray(1), it=jnp.asarray(0), y=y0, tau=tau0, ds=opts.ds,
                  data=data0, values=values0, done=~start_ok,
                  result=RESULTS.successful, ybuf=ybuf, ebuf=ebuf, tbuf=tbuf, dbuf=dbuf,
                  ev_test=jnp.full((max_events,), -1), ev_index=jnp.zeros((max_events,), int),
                  ev_n=jnp.asarray(0), dropped=jnp.asarray(False),
                  far=jnp.zeros((), dtype), closed=jnp.asarray(False))

    def cond(c):
        return ~c["done"]

    def body(c):
        y, tau, ds = c["y"], c["tau"], c["ds"]
        y_pred = y + ds * tau
        sol = newton_solve(_corrector, y_pred, (curve, c["data"], tau, y_pred),
                           tol=opts.tol, max_steps=corrector_steps, solver=Newton())
        y_new = sol.x
        tau_new, eigs, values, _ = observe(curve, y_new, tau, c["data"], tests)
        finite = jnp.all(jnp.isfinite(tau_new)) & jnp.all(jnp.isfinite(y_new))
        cos = jnp.dot(tau_new, tau)
        close = jnp.linalg.norm(y_new - y) <= 2 * ds
        ok = sol.converged & finite & (cos >= opts.cos_min) & close
        # A closed curve: the accepted chord `y → y_new` passes the start again, in the
        # start's direction, after the branch has been more than two steps away from it. The
        # curve lies within the chord's sagitta (about |d|·max_angle/8), so a quarter of the
        # step is a safe margin. The closing point is the start itself, so that no stretch of
        # the loop (nor its special points) is traced twice.
        d = y_new - y
        step2 = jnp.dot(d, d)
        step = jnp.sqrt(step2)
        along = jnp.dot(y0 - y, d) / jnp.where(step2 > 0, step2, 1.0)
        gap = jnp.linalg.norm(y0 - (y + along * d))
        closes = (ok & (c["far"] > 2 * step) & (along >= -0.05) & (along <= 1.05)
                  & (gap <= 0.25 * step) & (jnp.dot(d, tau0) >= 0.5 * step))
        y_new = jnp.where(closes, y0, y_new)
        tau_new = jnp.where(closes, tau0, tau_new)
        eigs = jnp.where(closes, eigs0, eigs)
        values = jnp.where(closes, values0, values)
        far = jnp.where(ok, jnp.maximum(c["far"], jnp.linalg.norm(y_new - y0)), c["far"])
        i = c["i"]
        # Record an accepted point.
        ybuf = jnp.where(ok, put(c["ybuf"], i, y_new), c["ybuf"])
        ebuf = jnp.where(ok, put(c["ebuf"], i, eigs), c["ebuf"])
        tbuf = jnp.where(ok, put(c["tbuf"], i, values), c["tbuf"])
        dbuf = jnp.where(ok, put(c["dbuf"], i, ds), c["dbuf"])
        # Events: a sign change of a test function between the last point and this one.
        ev_test, ev_index, ev_n = c["ev_test"], c["ev_index"], c["ev_n"]
        dropped = c["dropped"]
        regular = values[k] * c["values"][k] > 0
        crossed = values[k + 1] != c["values"][k + 1]
        for t in range(k):
            fire = ok & (jnp.sign(values[t]) * jnp.sign(c["values"][t]) < 0)
            if tests[t].regular_only:
                fire = fire & regular
            if tests[t].crossing_only:
                fire = fire & crossed
            room = ev_n < max_events
            slot = jnp.minimum(ev_n, max_events - 1)
            ev_test = jnp.where(fire & room, ev_test.at[slot].set(t), ev_test)
            ev_index = jnp.where(fire & room, ev_index.at[slot].set(i - 1), ev_index)
            ev_n = ev_n + (fire & room).astype(ev_n.dtype)
            dropped = dropped | (fire & ~room)
        # Step-size control.
        easy = sol.steps <= 3
        grown = jnp.minimum(jnp.where(easy, 1.5 * ds, ds), opts.ds_max)
        new_ds = jnp.where(ok, grown, 0.5 * ds)
        too_small = ~ok & (new_ds < opts.ds_min)
        ps = y_new[n:n + q]
        outside = ok & (jnp.any(ps < opts.lower) | jnp.any(ps > opts.upper))
        i_new = i + ok.astype(i.dtype)
        it = c["it"] + 1
        full = i_new >= max_points
        out_of_steps = it >= max_steps
        done = too_small | outside | closes | full | out_of_steps
        # Leaving the bounds or closing ends the branch normally, even on its last step or
        # slot; a budget that runs out first cuts it short. When the steps and the buffer
        # run out together (every step accepted: the default `max_points`), `max_steps` is
        # the budget to raise.
        ended = outside | closes
        result = RESULTS.where(
            too_small, RESULTS.continuation_step_min,
            RESULTS.where(out_of_steps & ~ended, RESULTS.continuation_max_steps,
                          RESULTS.where(full & ~ended, RESULTS.continuation_max_points,
                                        RESULTS.successful)))
        data = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b),
                                      curve.update_data(y_new, c["data"]), c["data"])
        return dict(i=i_new, it=it, y=jnp.where(ok, y_new, y),
                    tau=jnp.where(ok, tau_new, tau), ds=new_ds, data=data,
                    values=jnp.where(ok, values, c["values"]), done=done, result=result,
                    ybuf=ybuf, ebuf=ebuf, tbuf=tbuf, dbuf=dbuf, ev_test=ev_test,
                    ev_index=ev_index, ev_n=ev_n, dropped=dropped, far=far,
                    closed=c["closed"] | closes)

    c = jax.lax.while_loop(cond, body, carry0)
    # Dropped events are reported where the branch itself ended normally (a cut-short
    # branch keeps the status that says so; raising its budget shows the rest).
    rc = code(c["result"])
    rc = jnp.where((rc == code(RESULTS.successful)) & c["dropped"],
                   code(RESULTS.continuation_max_events), rc)
    return Raw(y=c["ybuf"], eigs=c["ebuf"], tests=c["tbuf"], ds=c["dbuf"], count=c["i"],
               result=from_code(rc), closed=c["closed"], event_test=c["ev_test"],
               event_index=c["ev_index"], steps=c["it"])
