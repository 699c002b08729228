"""Lyapunov spectra by the QR method, re-orthonormalised as often as their spread requires,
with the trace identity as a self-check."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PyTree

from ._flowmap import _check_time
from ._inputs import args_at
from ._integrate import AbstractIntegrator, Adaptive, FixedStep, Span, make_integrator
from ._integrate._tangent import state_jacobian
from ._solution import RESULTS, code, from_code
from ._system import as_system
from ._validate import (
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
    check_state,
    check_system_output,
    promote_scalars,
)

# Digits (natural log) a re-orthonormalisation may lose: the tangents are orthonormalised
# before the smallest's part orthogonal to the others falls below e^-_TARGET of its size
# (aimed at), and an integration that lost more than e^-_REJECT is done again, shorter.
_TARGET = float(np.log(10.0))
_REJECT = 3 * _TARGET
# The most re-orthonormalisations in one record `interval` (a bound for the traced loop).
_MAX_QR = 10_000


class LyapunovSpectrum(eqx.Module):
    """Lyapunov exponents by the QR (Benettin) method, with their convergence history and
    the trace identity as a self-check.

    **Fields:**

    - `exponents`: the `k` largest exponents, in decreasing order (per unit time for a flow,
      per iterate for a map); NaN where `result` failed.
    - `history`: the running estimates at the end of each `interval`, `[N, k]`
      (`history[-1] == exponents`), to judge convergence.
    - `times`: the averaging time of each row of `history`, `[N]`.
    - `x`: the final state.
    - `mean_trace`: the time average of `tr J` along the same run (for a map: of
      `ln|det J|`), computed alongside as a quadrature independent of the tangents. For
      `k = n` the exponents must sum to it (Liouville's formula); NaN for `k < n`.
    - `identity_error`: `|Σ λ − mean_trace|` (NaN for `k < n`).
    - `reorthonormalisations`: how many QR steps the run took (transient included).
    - `result`: a `jd.RESULTS` status: `successful`; an integrator status; `nonfinite_state`
      (the state or tangents blew up); or `trace_identity_failed` (for `k = n`: the sum of
      the exponents is off the mean trace by more than the tolerance allows, so the
      tangents were not integrated accurately enough).
    """

    exponents: Float[Array, " k"]
    history: Float[Array, "N k"]
    times: Float[Array, " N"]
    x: Float[Array, " n"]
    mean_trace: Float[Array, ""]
    identity_error: Float[Array, ""]
    reorthonormalisations: Int[Array, ""]
    result: RESULTS

    @property
    def kaplan_yorke(self) -> Array:
        """The Kaplan–Yorke dimension `j + (λ_1 + … + λ_j) / |λ_{j+1}|`, with `j` the largest
        index whose partial sum is ≥ 0 (`k` when every partial sum is)."""
        lam = self.exponents
        s = jnp.cumsum(lam)
        j = jnp.sum(s >= 0)
        k = lam.shape[0]
        nxt = lam[jnp.clip(j, 0, k - 1)]
        frac = jnp.where(j > 0, s[jnp.clip(j - 1, 0, k - 1)], 0.0) / jnp.abs(nxt)
        return jnp.where(j >= k, jnp.asarray(k, lam.dtype), j.astype(lam.dtype) + frac)

    @property
    def success(self) -> Array:
        return self.result == RESULTS.successful

    def plot(self, ax=None, **kwargs):
        """The running estimates against the averaging time (see
        `jaxdyn.plot.plot_lyapunov`)."""
        from .plot import plot_lyapunov

        return plot_lyapunov(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        try:
            lam = np.asarray(self.exponents)
            ok = bool(self.result == RESULTS.successful)
            msg = "successful" if ok else RESULTS[self.result].split(":")[0].split(".")[0]
            tr = float(self.mean_trace)
        except Exception:
            return eqx.tree_pformat(self)
        check = ""
        if np.isfinite(tr):
            check = (f", sum {np.sum(lam):.6g} vs mean trace {tr:.6g} "
                     f"(off by {float(self.identity_error):.2g})")
        return f"LyapunovSpectrum({np.array2string(lam, precision=5)}{check}, {msg})"


def lyapunov_spectrum(
    system: Any,
    x0: ArrayLike,
    args: PyTree = None,
    T: float | None = None,
    *,
    t0: ArrayLike = 0.0,
    k: int | None = None,
    interval: float | None = None,
    transient: float = 0.0,
    integrator: AbstractIntegrator | None = None,
    solver: Any = None,
    dt: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int | None = None,
) -> LyapunovSpectrum:
    """The `k` largest Lyapunov exponents along the trajectory from `x0`, by the QR method.

    The state is integrated together with `k` tangent vectors (the variational equations,
    `J V` by autodiff, or the closed-form Jacobian of the RNN zoo); adaptive steps control the
    tangents' error as well as the state's. The tangents are re-orthonormalised by a QR
    decomposition as often as the spread of the exponents requires: each stretch of
    integration is sized so that the tangents lose about one decade of independence (it is
    done again, shorter, if they lost three), so float32 runs stay finite and right. The
    logarithms of `|R_jj|` are accumulated. Alongside, the time average of `tr J` is
    integrated (for a map, of `ln|det J|`): for `k = n` the exponents must sum to it, and a
    result where they do not, by more than the tolerance allows, gets the status
    `trace_identity_failed`. A `transient` is run first (re-orthonormalising, not
    accumulating) so that the state reaches the attractor and the tangents align. For a map,
    `T`, `interval` and `transient` count iterates, and the tangents are orthonormalised at
    every iterate. One compiled program; works under `jit`, `vmap` over `x0` or `args`, and
    `grad`.

    **Arguments:**

    - `system`: a `jd.Flow`, `jd.Map`, an RNN model, or a callable `f(t, x, args)`.
    - `x0`: the initial state `(n,)`.
    - `args`: the system's arguments.
    - `T`: the averaging time (after the transient), a positive number, rounded to a whole
      number of intervals.
    - `t0`: the initial time.
    - `k`: how many exponents (default all `n`).
    - `interval`: time between the rows of `history` (default 1; for a map 1 iterate).
    - `transient`: time discarded first (default 0).
    - `integrator`, or its shortcuts `solver`, `dt`, `rtol`, `atol`, `max_steps`: as in
      `jd.simulate` (`max_steps` per stretch between re-orthonormalisations). Default:
      adaptive Tsit5 at rtol = atol = 1e-8 in float64, 1e-5 and 1e-6 in float32.

    **Returns:** a `LyapunovSpectrum` (`exponents`, `history`, `times`, `x`, `mean_trace`,
    `identity_error`, `reorthonormalisations`, `result`).

    **Raises:** `ValueError` for a bad `x0`, `T` missing, zero, negative or not concrete,
    `k` not in `[1, n]`, a non-positive `interval` (not an integer for a map), a negative
    `transient`, `args` the system cannot take, or bad integrator options.

    Reference: G. Benettin, L. Galgani, A. Giorgilli & J.-M. Strelcyn, Meccanica 15 (1980);
    K. Geist, U. Parlitz & W. Lauterborn, Prog. Theor. Phys. 83 (1990) (re-orthonormalisation
    and its frequency); the sum rule: Liouville's formula, `d ln det V / dt = tr J`.
    """
    system = as_system(system)
    args = promote_scalars(args)
    x0 = check_state(x0, "x0", size=system.state_size)
    T = _check_time(T, system)
    if T < 0:
        raise ValueError(f"`T` must be > 0; got {T!r}.")
    n = x0.shape[0]
    k = n if k is None else check_int(k, "k")
    if k > n:
        raise ValueError(f"`k` must be at most the state size {n}; got {k}.")
    interval = 1.0 if interval is None else interval
    check_positive(interval, "interval")
    interval = float(interval)
    check_nonnegative(transient, "transient")
    transient = float(transient)
    if system.discrete and (interval != round(interval) or transient != round(transient)):
        raise ValueError(f"for a map, `interval` and `transient` count iterates and must be "
                         f"integers; got interval={interval!r}, transient={transient!r}.")
    n_avg = max(1, int(round(T / interval)))
    check_finite(t0, "t0")
    single = jnp.finfo(x0.dtype).bits < 64
    integ = make_integrator(system, integrator, x0.dtype, solver=solver, dt=dt, rtol=rtol,
                            atol=atol, max_steps=max_steps,
                            rtol_default=1e-5 if single else 1e-8,
                            atol_default=1e-6 if single else 1e-8)
    check_system_output(system, x0, args_at(args, t0), t=t0)
    # The most steps in one stretch (fixed steps, maps) bounds their traced loops.
    record = integ.span(max(interval, transient), x0.dtype)
    return _spectrum(system, x0, args, jnp.asarray(t0, x0.dtype), k, n_avg,
                     jnp.asarray(interval, x0.dtype), jnp.asarray(transient, x0.dtype), integ,
                     record.bound)


def _identity_tolerance(integ, dtype, scale):
    """How far `Σ λ` may be off the mean trace: ~ `rtol` per unit time for adaptive steps
    (each step's relative error is bounded by it), rounding for maps, a loose 1 % for fixed
    steps (whose error is the step's, not a tolerance)."""
    eps = jnp.finfo(dtype).eps
    if isinstance(integ, Adaptive):
        rel = 100 * jnp.maximum(integ.rtol.astype(dtype), 10 * eps)
    elif isinstance(integ, FixedStep):
        rel = jnp.asarray(1e-2, dtype)
    else:
        rel = jnp.asarray(1e4 * eps, dtype)
    return rel * (1 + scale)


@eqx.filter_jit
def _spectrum(system, x0, args, t0, k: int, n_avg: int, interval, transient, integ,
              bound: int | None):
    dtype = x0.dtype
    n = x0.shape[0]
    trace = k == n
    ok = code(RESULTS.successful)
    maps = system.discrete
    # The first stretch: about `_TARGET` over the spread of the Jacobian's growth rates at
    # `x0` (later stretches learn the spread as they go).
    J0 = state_jacobian(system, t0, x0, args_at(args, t0))
    rates = jnp.linalg.eigvals(J0)
    rates = (jnp.log(jnp.maximum(jnp.abs(rates), jnp.finfo(dtype).tiny)) if maps
             else jnp.real(rates)).astype(dtype)
    spread = jnp.max(rates) - jnp.min(rates)
    tau0 = jnp.where(spread > 0, _TARGET / jnp.where(spread > 0, spread, 1.0), interval)
    tau0 = jnp.minimum(tau0, interval)

    def stretch(carry, length):
        """Advance over `length`, re-orthonormalising; returns the carry and the stretch's
        sums of ln|R_jj| and of the trace quadrature."""

        def cond(c):
            done, rc = c[0], c[-1]
            return (done < length) & (rc == ok)

        def body(c):
            done, x, Q, t, tau, h, logs, qsum, nqr, rc = c
            remaining = length - done
            if maps:
                step = jnp.ones((), dtype)
            elif isinstance(integ, FixedStep):
                step = jnp.maximum(jnp.floor(tau / integ.dt), 1.0) * integ.dt
            else:
                step = tau
            step = jnp.minimum(step, remaining)
            # A last stretch shorter than rounding of `length` finishes the record.
            step = jnp.where(remaining - step <= 1e-9 * length, remaining, step)
            span = Span(step, jnp.ones((), dtype), bound=bound)
            out = integ.propagate(system, x[None], Q[None], args, t, span, trace=trace,
                                  h0=h)
            V = out.V[0]
            Qn, R = jnp.linalg.qr(V)
            d = jnp.abs(jnp.diagonal(R))
            lost = jnp.max(jnp.log(jnp.linalg.norm(V, axis=0)) - jnp.log(d))
            lost = jnp.where(jnp.isfinite(lost), lost, jnp.inf)
            r = code(out.result)[0]
            # Too much lost: the same stretch again, shorter (unless it cannot be shortened).
            shorter = (lost > _REJECT) & (step > 64 * jnp.finfo(dtype).eps * length) & (not maps)
            if isinstance(integ, FixedStep):
                shorter &= step > integ.dt
            shorter &= r == ok
            accept = ~shorter
            # Signs that keep R's diagonal positive: Q changes continuously between stretches.
            signs = jnp.where(jnp.diagonal(R) < 0, -1.0, 1.0).astype(dtype)
            logs_step = jnp.log(jnp.maximum(d, jnp.finfo(dtype).tiny))
            finite = jnp.all(jnp.isfinite(logs_step)) & jnp.all(jnp.isfinite(out.x))
            r = jnp.where((r == ok) & accept & ~finite, code(RESULTS.nonfinite_state), r)
            grow = jnp.clip(_TARGET / jnp.maximum(lost, 1e-3 * _TARGET), 0.2, 2.0)
            tau = jnp.where(jnp.isfinite(lost), step * grow, 0.2 * step)
            tau = jnp.minimum(jnp.maximum(tau, jnp.finfo(dtype).eps * length), interval)
            q = out.trace[0] if trace else jnp.zeros((), dtype)
            new = (done + step, out.x[0], Qn * signs[None, :], t + step, tau,
                   None if h is None else out.h,
                   logs + logs_step, qsum + q, nqr + 1, r)
            old = (done, x, Q, t, tau, h, logs, qsum, nqr, rc)
            return jax.tree_util.tree_map(lambda a, b: jnp.where(accept, a, b), new, old)

        x, Q, t, tau, h, nqr, rc = carry
        c0 = (jnp.zeros((), dtype), x, Q, t, tau, h, jnp.zeros((k,), dtype),
              jnp.zeros((), dtype), nqr, rc)
        c = eqxi.while_loop(cond, body, c0, max_steps=_MAX_QR, kind="checkpointed")
        _, x, Q, t, tau, h, logs, qsum, nqr, rc = c
        # Out of re-orthonormalisations before the record's end: say so.
        rc = jnp.where((rc == ok) & (c[0] < length), code(RESULTS.max_steps_reached), rc)
        return (x, Q, t, tau, h, nqr, rc), (logs, qsum)

    h0 = jnp.full((1,), jnp.nan, dtype) if isinstance(integ, Adaptive) else None
    # The batch-native loop takes a NaN first step as "choose one": see below.
    carry = (x0, jnp.eye(n, k, dtype=dtype), t0, tau0, h0, jnp.asarray(0, jnp.int32),
             jnp.asarray(ok, jnp.int32))
    # The transient and the records in one loop (one trace of the stretch), the transient's
    # sums dropped.
    lengths = jnp.concatenate([transient[None], jnp.full((n_avg,), interval, dtype)])
    carry, (logs, qsums) = jax.lax.scan(stretch, carry, lengths)
    logs, qsums = logs[1:], qsums[1:]
    x, _, _, _, _, nqr, rc = carry
    times = interval * jnp.arange(1, n_avg + 1, dtype=dtype)
    history = jnp.cumsum(logs, axis=0) / times[:, None]
    exponents = history[-1]
    if trace:
        mean_trace = jnp.sum(qsums) / times[-1]
        gap = jnp.abs(jnp.sum(exponents) - mean_trace)
        tol = _identity_tolerance(integ, dtype, jnp.sum(jnp.abs(exponents)))
        rc = jnp.where((rc == ok) & ~(gap <= tol), code(RESULTS.trace_identity_failed), rc)
    else:
        mean_trace = gap = jnp.asarray(jnp.nan, dtype)
    failed = (rc != ok) & (rc != code(RESULTS.trace_identity_failed))
    return LyapunovSpectrum(exponents=jnp.where(failed, jnp.nan, exponents), history=history,
                            times=times, x=x, mean_trace=mean_trace, identity_error=gap,
                            reorthonormalisations=nqr, result=from_code(rc))
