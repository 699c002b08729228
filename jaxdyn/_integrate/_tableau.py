"""Runge–Kutta tableaus: the solvers jaxdyn names, and the tableaus read off diffrax solvers.

The integrators step with a solver's own Butcher tableau where they step by hand (the fixed-step
scan, the batch-native embedded pair): the method comes from diffrax, the loop from jaxdyn.
"""

from __future__ import annotations

from typing import Any

import diffrax
import equinox as eqx
import numpy as np


class RK4(diffrax.AbstractERK):
    """The classical fourth-order Runge–Kutta method (fixed step; pass `dt` to `simulate`).

    Reference: Kutta (1901); the Butcher tableau with nodes (0, ½, ½, 1) and weights
    (1/6, 1/3, 1/3, 1/6).
    """

    tableau = diffrax.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.zeros(4),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    )
    interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "rk4": RK4,
    "euler": diffrax.Euler,
    "heun": diffrax.Heun,
    "kvaerno5": diffrax.Kvaerno5,
}


def resolve_solver(solver: Any, default: str) -> diffrax.AbstractSolver:
    """A diffrax solver from a name, a solver, or None (`default`)."""
    if solver is None:
        solver = default
    if isinstance(solver, str):
        key = solver.lower()
        if key not in SOLVERS:
            raise ValueError(f"`solver` must be one of {sorted(SOLVERS)} or a diffrax solver; "
                             f"got {solver!r}.")
        return SOLVERS[key]()
    if isinstance(solver, diffrax.AbstractSolver):
        return solver
    raise ValueError(f"`solver` must be a name or a diffrax solver; got {solver!r}.")


class Tableau(eqx.Module):
    """An explicit Runge–Kutta method: nodes `c` (after the first, 0), strictly lower rows `a`,
    weights `b`, and for an embedded pair the error weights `e`, the controller's order and
    whether the last stage is `f(t + h, y₁)` (first same as last)."""

    c: tuple[float, ...] = eqx.field(static=True)
    a: tuple[tuple[float, ...], ...] = eqx.field(static=True)
    b: tuple[float, ...] = eqx.field(static=True)
    e: tuple[float, ...] | None = eqx.field(static=True, default=None)
    order: float = eqx.field(static=True, default=0.0)
    fsal: bool = eqx.field(static=True, default=False)

    @property
    def embedded(self) -> bool:
        return self.e is not None


def tableau_of(solver: Any) -> Tableau | None:
    """The tableau of a diffrax explicit Runge–Kutta solver (with its error weights when it is
    an embedded pair), or None for any other solver (implicit, multistep, SDE...)."""
    if isinstance(solver, diffrax.Euler):
        return Tableau(c=(), a=(), b=(1.0,), order=1.0)
    tab = getattr(solver, "tableau", None)
    if not isinstance(solver, diffrax.AbstractERK) or tab is None:
        return None
    c = tuple(float(x) for x in tab.c)
    a = tuple(tuple(float(x) for x in row) for row in tab.a_lower)
    b = tuple(float(x) for x in tab.b_sol)
    e = getattr(tab, "b_error", None)
    e = None if e is None or not np.any(np.asarray(e)) else tuple(float(x) for x in e)
    # First same as last: the last stage is evaluated at (t + h, y₁) and weighs nothing.
    fsal = bool(e is not None and c and c[-1] == 1.0 and a[-1] == b[:-1] and b[-1] == 0.0)
    return Tableau(c=c, a=a, b=b, e=e, order=float(solver.order(None)), fsal=fsal)
