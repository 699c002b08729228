"""The integrator family: every advance of a system in time (see `_integrators.py`)."""

from ._integrators import (
    AbstractIntegrator as AbstractIntegrator,
    Adaptive as Adaptive,
    FixedStep as FixedStep,
    Iterate as Iterate,
    Propagated as Propagated,
    Span as Span,
    make_integrator as make_integrator,
)
from ._tableau import RK4 as RK4
from ._trajectory import Trajectory as Trajectory
