"""The integrator family: how a system is advanced in time, passed in as an object.

Every analysis that advances a system in time (`simulate`, `flow_map`, `ftle`, `basins`,
`lyapunov_spectrum`, an SSM's `predict` and `nmte`) takes one of these, as diffrax takes a
solver and a step-size controller:

- `Adaptive`: an embedded Runge–Kutta pair with error control (Tsit5 by default). Flow maps
  step a whole batch in jaxdyn's batch-native loop (`_erk.py`); trajectories saved at given
  times, and solvers that are not explicit embedded pairs (implicit ones), go through
  `diffrax.diffeqsolve`. Both measure each step's error on what is reported: the state, and
  each tangent vector when tangents are integrated.
- `FixedStep`: a fixed step `dt` of an explicit Runge–Kutta tableau (RK4 by default) in a
  `lax` loop; any other diffrax solver with a constant step size.
- `Iterate`: a map's iterates (backward ones by Newton preimages).

Tolerances are arrays (traced): a new `rtol` does not compile the program again.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._inputs import PiecewiseConstant, args_at
from .._solution import RESULTS, code, first_failure, from_code
from .._system import AbstractSystem
from .._validate import check_int, check_nonnegative, check_positive, describe, is_concrete
from ._controller import BlockNorm, TangentScaled
from ._erk import embedded_pair, split
from ._fastmath import vectorised_trig
from ._rk import count_steps, n_steps, run_steps
from ._tableau import resolve_solver, tableau_of
from ._tangent import TangentFlow, is_split, map_step, pack, preimage, tangent_step, unpack
from ._trajectory import Trajectory, diffeqsolve_trajectory, fixed_trajectory, map_trajectory


class Span(eqx.Module):
    """An integration time: its length `|T|` and direction `±1` (arrays, so that a new value
    or the other direction does not recompile an adaptive integration), the most steps it
    may take for fixed steps and maps (static), and whether a map runs backward."""

    length: Float[Array, ""]
    sign: Float[Array, ""]
    bound: int | None = eqx.field(static=True, default=None)
    inverse: bool = eqx.field(static=True, default=False)


def _span(T: float, dtype, bound: int | None = None, inverse: bool = False) -> Span:
    return Span(jnp.asarray(abs(T), dtype), jnp.asarray(1.0 if T > 0 else -1.0, dtype), bound,
                inverse)


class Propagated(eqx.Module):
    """A batch advanced over a `Span`: final states `x` `[B, n]`, tangents `V` `[B, n, k]`,
    the trace quadrature `trace` `[B]` (∫ tr J dt for a flow, Σ ln|det J| for a map; None
    unless asked for), per-point `result`, attempted `steps`, and `h` the step each point
    would take next (adaptive steps; NaN otherwise)."""

    x: Float[Array, "B n"]
    V: Float[Array, "B n k"]
    trace: Float[Array, " B"] | None
    result: RESULTS
    steps: Int[Array, " B"]
    h: Float[Array, " B"]


def _finish(x, V, q, result_code, steps, h) -> Propagated:
    """A `Propagated` whose status also reports non-finite states, tangents or trace."""
    finite = jnp.all(jnp.isfinite(x), axis=1) & jnp.all(jnp.isfinite(V), axis=(1, 2))
    if q is not None:
        finite &= jnp.isfinite(q)
    ok = result_code == code(RESULTS.successful)
    result_code = jnp.where(ok & ~finite, code(RESULTS.nonfinite_state), result_code)
    return Propagated(x=x, V=V, trace=q, result=from_code(result_code), steps=steps, h=h)


class AbstractIntegrator(eqx.Module):
    """How a system is advanced in time. Final subclasses: `Adaptive`, `FixedStep` (flows) and
    `Iterate` (maps)."""

    discrete: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def check(self, dtype) -> None:
        """Raise a `ValueError` for options that cannot work in `dtype` (before tracing)."""

    @abc.abstractmethod
    def span(self, T: float, dtype) -> Span:
        """The `Span` of a concrete integration time `T` (negative: backward)."""

    @abc.abstractmethod
    def trajectory(self, system, x0, args, t0, t1, *, ts=None, n_save=None) -> Trajectory:
        """`simulate`'s trajectory from `x0` over `[t0, t1]` (validated arguments)."""

    @abc.abstractmethod
    def propagate(self, system, X0, V0, args, t0, span: Span, *, trace: bool = False,
                  width: int | None = None, h0: Array | None = None) -> Propagated:
        """Advance a batch of states `X0` `[B, n]` with tangents `V0` `[B, n, k]` over
        `span` from `t0` (inside a traced program)."""


# ---------------------------------------------------------------------------------------
# Adaptive steps
# ---------------------------------------------------------------------------------------

_TANGENTS = ("control", "ride")


class Adaptive(AbstractIntegrator):
    """Adaptive steps of an embedded Runge–Kutta pair, with error control on what is reported.

    **Arguments:**

    - `solver`: a diffrax solver or a name (`"tsit5"` (default), `"dopri5"`, `"dopri8"`,
      `"heun"`, `"kvaerno5"`). Explicit embedded pairs step batches of flow maps in jaxdyn's
      batch-native loop; other solvers (implicit ones) go through `diffrax.diffeqsolve`.
    - `rtol`, `atol`: relative and absolute tolerances (default 1e-6, 1e-8). Stored as arrays:
      sweeping them does not recompile.
    - `max_steps`: the most attempted steps per integration (default 100,000).
    - `tangents`: `"control"` (default): when tangent vectors are integrated (exact FTLE,
      flow-map Jacobians, Lyapunov spectra), each step's error is the largest of the state's
      and each tangent's, a tangent measured like a state after scaling it to unit RMS size
      (it obeys linear equations: only its relative error has a meaning); and the backward
      pass of a reverse-mode derivative of a saved trajectory (`jd.simulate`) integrates
      again with a probe tangent so controlled. `"ride"`: the state alone sets the steps and
      the tangents ride along (cheaper, but where the state settles at a fixed point its
      error vanishes, the steps grow without bound and the tangents are wrong).

    Reference: E. Hairer, S. P. Nørsett & G. Wanner, Solving Ordinary Differential Equations
    I, II.4 (error measure, first step) and II.9 (variational equations integrated jointly).
    """

    discrete: ClassVar[bool] = False
    solver: diffrax.AbstractSolver
    rtol: Float[Array, ""]
    atol: Float[Array, ""]
    max_steps: int = eqx.field(static=True)
    tangents: str = eqx.field(static=True)

    def __init__(self, solver: Any = "tsit5", rtol: ArrayLike = 1e-6, atol: ArrayLike = 1e-8,
                 max_steps: int = 100_000, tangents: str = "control"):
        self.solver = resolve_solver(solver, "tsit5")
        tab = tableau_of(self.solver)
        if tab is not None and not tab.embedded:
            raise ValueError(f"`solver` {type(self.solver).__name__} has no error estimate, so "
                             "it cannot take adaptive steps; pass a fixed step (`dt=...`, "
                             "jd.FixedStep) or an embedded pair such as 'tsit5'.")
        for value, name in ((rtol, "rtol"), (atol, "atol")):
            check_nonnegative(value, name)
            if np.shape(value) != ():
                raise ValueError(f"`{name}` must be a finite number >= 0; got {value!r}.")
        if is_concrete((rtol, atol)) and float(np.asarray(rtol)) == float(np.asarray(atol)) == 0:
            raise ValueError("`rtol` and `atol` cannot both be 0 (no step would be accepted); "
                             "got rtol=0, atol=0.")
        if tangents not in _TANGENTS:
            raise ValueError(f"`tangents` must be one of {_TANGENTS}; got {tangents!r}.")
        self.rtol = jnp.asarray(rtol)
        self.atol = jnp.asarray(atol)
        self.max_steps = check_int(max_steps, "max_steps")
        self.tangents = tangents

    def check(self, dtype) -> None:
        if is_concrete(self.rtol):
            floor = 8 * float(jnp.finfo(dtype).eps)
            r = float(np.asarray(self.rtol))
            if 0 < r < floor:
                raise ValueError(f"`rtol` = {r:g} is below what {jnp.dtype(dtype).name} "
                                 f"resolves (8 ulps = {floor:.2g}): rounding alone would "
                                 f"reject every step. Use rtol >= {floor:.2g}, or enable "
                                 "float64 (jax.config.update('jax_enable_x64', True)).")

    def span(self, T: float, dtype) -> Span:
        return _span(T, dtype)

    def trajectory(self, system, x0, args, t0, t1, *, ts=None, n_save=None) -> Trajectory:
        t0, t1 = jnp.asarray(t0, x0.dtype), jnp.asarray(t1, x0.dtype)
        if ts is None:
            ts = jnp.linspace(t0, t1, 101 if n_save is None else n_save)
        jump_ts = args.jump_ts if isinstance(args, PiecewiseConstant) else None
        return diffeqsolve_trajectory(vectorised_trig(system, x0.dtype), x0, args, t0, t1, ts, None,
                            self.solver, self._controller(jump_ts, x0.dtype), self.max_steps,
                            probe=self.tangents == "control")

    def _controller(self, jump_ts, dtype, norm=None):
        kw = {} if norm is None else {"norm": norm}
        return diffrax.PIDController(rtol=self.rtol.astype(dtype), atol=self.atol.astype(dtype),
                                     jump_ts=jump_ts, **kw)

    def propagate(self, system, X0, V0, args, t0, span, *, trace=False, width=None, h0=None):
        system = vectorised_trig(system, X0.dtype)
        tab = tableau_of(self.solver)
        if tab is not None:
            return self._batch_native(tab, system, X0, V0, args, t0, span, trace, width, h0)
        return self._diffrax(system, X0, V0, args, t0, span, trace)

    def _batch_native(self, tab, system, X0, V0, args, t0, span, trace, width, h0):
        n, k = V0.shape[1:]
        dtype = X0.dtype
        sign = span.sign.astype(dtype)
        split_state = is_split(n, k + int(trace))

        def derivative(s, z):
            t = t0 + sign * s
            a = args_at(args, t)
            if not split_state:
                x, V, _ = unpack(z, n, k, trace)
                dx, JV, q = tangent_step(system, t, x, V, a, trace)
                return sign * pack(dx, JV, q)
            # Entries in, entries out, the sign applied to each: see `embedded_pair`.
            x = jnp.stack(z[:n])
            V = (jnp.stack([jnp.stack(z[n * (j + 1): n * (j + 2)]) for j in range(k)], axis=1)
                 if k else jnp.zeros((n, 0), x.dtype))
            dx, JV, q = tangent_step(system, t, x, V, a, trace)
            parts = [dx] + [JV[:, j] for j in range(k)]
            out = tuple(sign * v for p in parts for v in split(p))
            return out + ((sign * q,) if trace else ())

        q0 = jnp.zeros((X0.shape[0],), dtype) if trace else None
        z0 = jax.vmap(pack)(X0, V0, q0) if trace else jax.vmap(lambda x, V: pack(x, V, None))(
            X0, V0)
        z, result, steps, h = embedded_pair(
            derivative, z0, span.length.astype(dtype), tab, self.rtol, self.atol,
            self.max_steps, split_state=split_state, n=n, k=k,
            control_tangents=self.tangents == "control", width=width, h0=h0)
        x, V, q = unpack(z, n, k, trace)
        return _finish(x, V, q, code(result), steps, h)

    def _diffrax(self, system, X0, V0, args, t0, span, trace):
        n, k = V0.shape[1:]
        norm = BlockNorm(n, k if self.tangents == "control" else 0)
        controller = TangentScaled(self._controller(None, X0.dtype, norm), n, k)
        return _diffrax_propagate(self.solver, controller, None, self.max_steps, system, X0,
                                  V0, args, t0, span, trace)


def _diffrax_propagate(solver, controller, dt0, max_steps, system, X0, V0, args, t0, span,
                       trace) -> Propagated:
    """`propagate` by `diffrax.diffeqsolve` (solvers that jaxdyn does not step itself), one
    state at a time under `vmap`."""
    n, k = V0.shape[1:]
    dtype = X0.dtype
    zero = jnp.zeros((), dtype)

    def one(x0, V):
        flow = TangentFlow(system, args, t0, span.sign.astype(dtype), n, k, trace)
        sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda s, z, _: flow(s, z)), solver, zero,
                                  span.length.astype(dtype), dt0,
                                  pack(x0, V, zero if trace else None),
                                  saveat=diffrax.SaveAt(t1=True), stepsize_controller=controller,
                                  max_steps=max_steps, throw=False)
        return sol.ys[-1], code(RESULTS.promote(sol.result)), sol.stats["num_steps"]

    z, rc, steps = jax.vmap(one)(X0, V0)
    x, V, q = unpack(z, n, k, trace)
    return _finish(x, V, q, rc, steps, jnp.full(steps.shape, jnp.nan, dtype))


# ---------------------------------------------------------------------------------------
# Fixed steps
# ---------------------------------------------------------------------------------------


class FixedStep(AbstractIntegrator):
    """Fixed steps of size `dt`: an explicit Runge–Kutta tableau (classical RK4 by default)
    stepped in a `lax` loop, or any other diffrax solver with a constant step size. A span
    that `dt` does not divide ends with a shorter step. No error control: the step is yours.

    **Arguments:**

    - `dt`: the step, a positive number (static: it sets the number of steps).
    - `solver`: a diffrax solver or a name (`"rk4"` (default), `"euler"`, `"heun"`,
      `"tsit5"`, `"dopri5"`, `"dopri8"`, `"kvaerno5"`).
    """

    discrete: ClassVar[bool] = False
    dt: float = eqx.field(static=True)
    solver: diffrax.AbstractSolver

    def __init__(self, dt: float, solver: Any = "rk4"):
        check_positive(dt, "dt")
        if not is_concrete(dt) or np.asarray(dt).shape != ():
            raise ValueError(f"`dt` must be a concrete positive number (it sets the number of "
                             f"steps); got {describe(dt)}.")
        self.dt = float(np.asarray(dt))
        self.solver = resolve_solver(solver, "rk4")

    def check(self, dtype) -> None:
        pass

    def span(self, T: float, dtype) -> Span:
        return _span(T, dtype, bound=count_steps(abs(T), self.dt))

    def trajectory(self, system, x0, args, t0, t1, *, ts=None, n_save=None) -> Trajectory:
        tab = tableau_of(self.solver)
        concrete = is_concrete((t0, t1))
        max_steps = 100_000
        if concrete:
            max_steps = count_steps(float(np.asarray(t1)) - float(np.asarray(t0)), self.dt) + 1
        if ts is None and tab is not None:
            if not concrete:
                raise ValueError("with a fixed `dt`, `t0` and `t1` set the number of steps and "
                                 "must be concrete numbers; pass `ts` to save at traced times.")
            steps = max_steps - 1
            stride = 1
            if n_save is not None:
                if steps % (n_save - 1):
                    raise ValueError(f"with a fixed `dt`, `n_save` - 1 must divide the {steps} "
                                     f"steps; got n_save={n_save}.")
                stride = steps // (n_save - 1)
            return fixed_trajectory(vectorised_trig(system, x0.dtype), x0, args,
                                     jnp.asarray(t0, x0.dtype), jnp.asarray(t1, x0.dtype), self,
                                     steps // stride, stride)
        t0, t1 = jnp.asarray(t0, x0.dtype), jnp.asarray(t1, x0.dtype)
        if ts is None:
            ts = jnp.linspace(t0, t1, 101 if n_save is None else n_save)
        return diffeqsolve_trajectory(vectorised_trig(system, x0.dtype), x0, args, t0, t1, ts,
                            jnp.asarray(self.dt, x0.dtype), self.solver,
                            diffrax.ConstantStepSize(), max_steps)

    def propagate(self, system, X0, V0, args, t0, span, *, trace=False, width=None, h0=None):
        system = vectorised_trig(system, X0.dtype)
        n, k = V0.shape[1:]
        dtype = X0.dtype
        length = span.length.astype(dtype)
        tab = tableau_of(self.solver)
        if tab is None:
            return _diffrax_propagate(self.solver, diffrax.ConstantStepSize(),
                                      jnp.asarray(self.dt, dtype), span.bound + 1, system, X0,
                                      V0, args, t0, span, trace)
        zero = jnp.zeros((), dtype)

        def one(x0, V):
            flow = TangentFlow(system, args, t0, span.sign.astype(dtype), n, k, trace)
            return run_steps(flow, tab, pack(x0, V, zero if trace else None), zero, length,
                             self.dt, span.bound)

        x, V, q = unpack(jax.vmap(one)(X0, V0), n, k, trace)
        steps = jnp.broadcast_to(n_steps(length, self.dt), X0.shape[:1])
        return _finish(x, V, q, jnp.full(X0.shape[:1], code(RESULTS.successful), jnp.int32),
                       steps, jnp.full(X0.shape[:1], jnp.nan, dtype))


# ---------------------------------------------------------------------------------------
# Maps
# ---------------------------------------------------------------------------------------


class Iterate(AbstractIntegrator):
    """The iterates of a map `x_{k+1} = F(k, x, args)`; backward iterates (a negative count)
    solve `F(y) = x` for each preimage by the Newton core, from `y = x`."""

    discrete: ClassVar[bool] = True

    def check(self, dtype) -> None:
        pass

    def span(self, T: float, dtype) -> Span:
        return _span(T, dtype, bound=int(round(abs(T))), inverse=T < 0)

    def trajectory(self, system, x0, args, t0, t1, *, ts=None, n_save=None) -> Trajectory:
        if not is_concrete((t0, t1)):
            raise ValueError("for a map, `t0` and `t1` set the number of steps and must be "
                             "concrete numbers, not traced values.")
        steps = int(round(float(np.asarray(t1)) - float(np.asarray(t0))))
        check_int(steps, "t1 - t0", minimum=1)
        return map_trajectory(system, x0, args, t0, steps)

    def propagate(self, system, X0, V0, args, t0, span, *, trace=False, width=None, h0=None):
        dtype = X0.dtype
        count = jnp.round(span.length).astype(jnp.int32)
        ok = code(RESULTS.successful)

        def one(x0, V0):
            q0 = jnp.zeros((), dtype) if trace else None

            def body(carry):
                i, x, V, q, rc = carry
                if span.inverse:
                    t = t0 - 1 - i.astype(dtype)
                    x, V, q, r = preimage(system, t, x, V, q, args_at(args, t))
                    rc = first_failure(rc, code(r))
                else:
                    t = t0 + i.astype(dtype)
                    x, V, q = map_step(system, t, x, V, q, args_at(args, t))
                return i + 1, x, V, q, rc

            init = (jnp.asarray(0, jnp.int32), x0, V0, q0, jnp.asarray(ok, jnp.int32))
            _, x, V, q, rc = eqxi.while_loop(lambda c: c[0] < count, body, init,
                                             max_steps=max(span.bound, 1), kind="checkpointed")
            return x, V, q, rc

        x, V, q, rc = jax.vmap(one)(X0, V0)
        steps = jnp.broadcast_to(count, rc.shape)
        return _finish(x, V, q, rc, steps, jnp.full(rc.shape, jnp.nan, dtype))


# ---------------------------------------------------------------------------------------
# From an entry point's options
# ---------------------------------------------------------------------------------------


def make_integrator(system: AbstractSystem, integrator: AbstractIntegrator | None, dtype, *,
                    solver: Any = None, dt: Any = None, rtol: Any = None, atol: Any = None,
                    max_steps: Any = None, rtol_default: float = 1e-6,
                    atol_default: float = 1e-8) -> AbstractIntegrator:
    """The integrator of an entry point: `integrator` when given (its keyword shortcuts must
    then be left out), else built from the shortcuts: `Iterate()` for a map, `FixedStep(dt,
    solver)` with a `dt`, else `Adaptive(solver, rtol, atol, max_steps)` with the entry
    point's default tolerances. Checked against the system and the dtype before tracing."""
    shortcuts = {"solver": solver, "dt": dt, "rtol": rtol, "atol": atol, "max_steps": max_steps}
    given = [name for name, value in shortcuts.items() if value is not None]
    if integrator is not None:
        if not isinstance(integrator, AbstractIntegrator):
            raise ValueError(f"`integrator` must be a jd.Adaptive, jd.FixedStep or jd.Iterate; "
                             f"got {describe(integrator)}.")
        if given:
            raise ValueError(f"pass either `integrator` or its shortcuts, not both; got "
                             f"integrator={type(integrator).__name__} and "
                             f"{', '.join(f'`{g}`' for g in given)}.")
        if integrator.discrete != system.discrete:
            want = "jd.Iterate()" if system.discrete else "jd.Adaptive or jd.FixedStep"
            kind = "map" if system.discrete else "flow"
            raise ValueError(f"`integrator` {type(integrator).__name__} does not fit a {kind}; "
                             f"pass {want}.")
    elif system.discrete:
        # A map takes its iterates as they are: step options are checked, then not used.
        check_positive(dt, "dt", allow_none=True)
        integrator = Iterate()
    elif dt is not None:
        if rtol is not None or atol is not None:
            raise ValueError("`rtol` and `atol` set adaptive steps; they have no meaning with a "
                             f"fixed `dt` (got dt={dt!r}).")
        integrator = FixedStep(dt, solver if solver is not None else "rk4")
    else:
        integrator = Adaptive(solver if solver is not None else "tsit5",
                              rtol_default if rtol is None else rtol,
                              atol_default if atol is None else atol,
                              100_000 if max_steps is None else max_steps)
    integrator.check(dtype)
    return integrator

