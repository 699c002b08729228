"""The results of continuation: `Branch` (a curve of equilibria, or of fold/Hopf points in two
parameters) and its special points, `Bifurcations`. Fixed-size arrays with a validity mask, so
that the same shapes come out eagerly, under `jit` and per element of a `vmap`."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Complex, Float, Int

from .._solution import RESULTS
from ._curves import Embedding
from ._tests import KIND_NAMES

#: Short labels of the kinds on a diagram.
KIND_LABELS = ("", "LP", "H", "BP", "PD", "NS", "CP", "BT")


class Bifurcations(eqx.Module):
    """The special points found on a branch, located by Newton on minimally augmented systems.

    **Fields** (`K` slots; unused slots have `valid = False`, `kind = 0` and NaN values):

    - `kind`: the kind code; `KIND_NAMES[code]` is its name ("fold", "hopf", "branch point",
      "flip", "neimark-sacker", "cusp", "bogdanov-takens").
    - `x`: the state, `[K, n]`; `p`: the parameter; `p2`: the second parameter on a
      two-parameter curve (NaN on a branch of equilibria).
    - `eigenvalues`: of the state Jacobian (multipliers for maps), sorted by growth rate.
    - `coefficient`: the normal-form coefficient: the fold's quadratic coefficient `a`, the
      Hopf point's first Lyapunov coefficient ℓ₁ (`> 0` subcritical), the flip's cubic
      coefficient `c` (`> 0` supercritical); NaN for the other kinds.
    - `omega`: the Hopf frequency ω (the Neimark–Sacker angle θ); NaN otherwise.
    - `residual`: `‖·‖∞` of the augmented system at the located point.
    - `index`: the branch point just before the special point (`Branch.x[index]`).
    - `valid`: the slot holds a located special point.
    - `result`: the `jd.RESULTS` of the locating Newton solve.
    """

    kind: Int[Array, " K"]
    x: Float[Array, "K n"]
    p: Float[Array, " K"]
    p2: Float[Array, " K"]
    eigenvalues: Complex[Array, "K n"]
    coefficient: Float[Array, " K"]
    omega: Float[Array, " K"]
    residual: Float[Array, " K"]
    index: Int[Array, " K"]
    valid: Bool[Array, " K"]
    result: RESULTS

    @property
    def names(self) -> list[str]:
        """The kind name of each valid slot (host side)."""
        kinds, valid = np.asarray(self.kind), np.asarray(self.valid)
        return [KIND_NAMES[k] for k, v in zip(kinds.reshape(-1), valid.reshape(-1)) if v]

    def of_kind(self, name: str) -> Array:
        """The mask of valid slots of the kind `name` (e.g. "hopf")."""
        if name not in KIND_NAMES[1:]:
            raise ValueError(f"`name` must be one of {KIND_NAMES[1:]}; got {name!r}.")
        return self.valid & (self.kind == KIND_NAMES.index(name))

    def table(self) -> str:
        """A short text table of the valid special points."""
        kinds, valid = np.asarray(self.kind), np.asarray(self.valid)
        if kinds.ndim != 1:
            return f"Bifurcations(batch of shape {kinds.shape[:-1]})"
        rows = [f"{'kind':<16}{'p':>16}{'p2':>14}{'|x|':>12}{'coefficient':>14}{'omega':>12}"]
        p, p2 = np.asarray(self.p), np.asarray(self.p2)
        x = np.asarray(self.x)
        coef, om = np.asarray(self.coefficient), np.asarray(self.omega)
        for i in np.flatnonzero(valid):
            second = "" if np.isnan(p2[i]) else f"{p2[i]:.8g}"
            rows.append(f"{KIND_NAMES[kinds[i]]:<16}{p[i]:>16.10g}{second:>14}"
                        f"{np.linalg.norm(x[i]):>12.5g}{coef[i]:>14.6g}{om[i]:>12.6g}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return self.table()


class Branch(eqx.Module):
    """A continuation branch: equilibria (fixed points for maps) in one parameter, or fold /
    Hopf points in two.

    **Fields** (`N` slots; the valid points come first, in order along the curve):

    - `x`: states `[N, n]`; `p`: the (first) parameter `[N]`; `p2`: the second parameter on
      a two-parameter curve, else NaN.
    - `valid`: which slots hold points.
    - `stable`: every eigenvalue has `Re λ < 0` (`|μ| < 1` for maps); `n_unstable`: how many
      do not (−1, and not stable, where an eigenvalue is not finite).
    - `eigenvalues`: `[N, n]`, sorted by growth rate.
    - `ds`: the step that reached each point (0 at the start).
    - `status`: a `jd.RESULTS` per slot: `successful` on the points (each is a converged
      equilibrium), the branch's `result` on the empty slots after them.
    - `special`: the `Bifurcations` found.
    - `result`: a `jd.RESULTS`: `successful` when every direction followed ended normally,
      past a parameter bound or back at its start (a closed curve: its last point is the
      first), with every special point found in a slot; `continuation_max_steps` or
      `continuation_max_points` when a direction ran out of steps or of buffer first (the
      branch is cut short); `continuation_max_events` when special points were dropped for
      want of slots; `continuation_step_min` when the step fell below `ds_min`;
      `continuation_start` when `x0` was not near an equilibrium;
      `continuation_outside_bounds` (`continuation_switch_step` from `jd.switch_branch`)
      for a traced start outside `bounds` (a traced `h` of 0). With two directions it is
      the forward one's failure, else the backward one's.
    - `ends`: a `jd.RESULTS` of shape `[2]`, the status of each end of the branch: that of
      the backward direction (which ends at the first point; `successful` when only the
      forward direction was followed, and for the direction left out of a closed curve) and
      that of the forward one (the last point), from the same items as `result` (slots
      overflowed by the two directions together show in `result` only).
    - `steps`: continuation steps taken (accepted and rejected).
    - `embed`: how the parameters enter `args` (used by `jd.switch_branch` and
      `jd.bifurcation_curve`).
    - `kind`: "equilibria", "fold" or "hopf" (the curve followed); `discrete`: a map;
      `period`: 2 for a branch of period-2 points from `jd.switch_branch` at a flip.
    """

    x: Float[Array, "N n"]
    p: Float[Array, " N"]
    p2: Float[Array, " N"]
    valid: Bool[Array, " N"]
    stable: Bool[Array, " N"]
    n_unstable: Int[Array, " N"]
    eigenvalues: Complex[Array, "N n"]
    ds: Float[Array, " N"]
    status: RESULTS
    special: Bifurcations
    result: RESULTS
    ends: RESULTS
    steps: Int[Array, ""]
    embed: Embedding
    kind: str = eqx.field(static=True, default="equilibria")
    discrete: bool = eqx.field(static=True, default=False)
    period: int = eqx.field(static=True, default=1)

    @property
    def count(self) -> Array:
        """Number of valid points."""
        return jnp.sum(self.valid, axis=-1)

    def plot(self, ax=None, *, coordinate: int | str = "norm", **kwargs):
        """The bifurcation diagram (see `jaxdyn.plot.plot_branch`)."""
        from ..plot import plot_branch

        return plot_branch(self, ax=ax, coordinate=coordinate, **kwargs)

    def __repr__(self) -> str:
        valid = np.asarray(self.valid)
        if valid.ndim != 1:
            return f"Branch(batch of shape {valid.shape[:-1]}, kind={self.kind!r})"
        result = RESULTS[self.result] if np.ndim(self.result._value) == 0 else "…"
        p = np.asarray(self.p)[valid]
        span = f"p in [{p.min():.6g}, {p.max():.6g}]" if p.size else "no points"
        head = (f"Branch({self.kind}{', map' if self.discrete else ''}"
                f"{', period 2' if self.period == 2 else ''}: {int(valid.sum())} points, "
                f"{span}, {int(self.steps)} steps)")
        lines = [head]
        if self.result != RESULTS.successful:
            # Say which end a budget cut short (both ends share a failed start's status).
            rc, ends = int(self.result._value), np.asarray(self.ends._value)
            budgets = (RESULTS.continuation_max_steps, RESULTS.continuation_max_points,
                       RESULTS.continuation_max_events)
            at = [name for name, e in zip(("backward", "forward"), ends) if e == rc]
            if any(rc == int(item._value) for item in budgets) and at:
                result = f"{result} (the {' and '.join(at)} end{'s' * (len(at) - 1)})"
            lines.append(f"  status: {result}")
        if np.any(np.asarray(self.special.valid)):
            lines.append(self.special.table())
        return "\n".join(lines)
