"""jaxdyn: train recurrent networks on cognitive tasks and reverse-engineer their dynamics."""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError, version as _version

from . import dsa as dsa, plot as plot, rnn as rnn, ssm as ssm, systems as systems, tasks as tasks
from ._basins import Basins as Basins, basins as basins
from ._checkpoint import load_model as load_model, save_model as save_model
from ._continuation._api import (
    bifurcation_curve as bifurcation_curve,
    continuation as continuation,
    switch_branch as switch_branch,
)
from ._continuation._branch import Bifurcations as Bifurcations, Branch as Branch
from ._continuation._tests import (
    AbstractTestFunction as AbstractTestFunction,
    BogdanovTakens as BogdanovTakens,
    BranchPoint as BranchPoint,
    Cusp as Cusp,
    Flip as Flip,
    Fold as Fold,
    Hopf as Hopf,
    NeimarkSacker as NeimarkSacker,
)
from ._fixed_points import FixedPoints as FixedPoints, fixed_points as fixed_points
from ._flowmap import FlowMap as FlowMap, flow_map as flow_map
from ._grid import Grid as Grid, grid as grid, plane as plane
from ._inputs import PiecewiseConstant as PiecewiseConstant
from ._integrate import (
    RK4 as RK4,
    AbstractIntegrator as AbstractIntegrator,
    Adaptive as Adaptive,
    FixedStep as FixedStep,
    Iterate as Iterate,
)
from ._lyapunov import (
    FTLEField as FTLEField,
    Ridges as Ridges,
    ftle as ftle,
    ftle_ridges as ftle_ridges,
)
from ._manifolds import FixedPointManifolds as FixedPointManifolds
from ._newton import (
    AbstractNewtonStrategy as AbstractNewtonStrategy,
    Fallback as Fallback,
    LevenbergMarquardt as LevenbergMarquardt,
    Newton as Newton,
    NewtonQ as NewtonQ,
    NewtonResult as NewtonResult,
    newton_solve as newton_solve,
    newton_solve_batch as newton_solve_batch,
)
from ._progress import (
    AbstractProgressMeter as AbstractProgressMeter,
    NoProgressMeter as NoProgressMeter,
    TqdmProgressMeter as TqdmProgressMeter,
)
from ._simulate import Trajectory as Trajectory, simulate as simulate
from ._solution import RESULTS as RESULTS
from ._spectrum import (
    LyapunovSpectrum as LyapunovSpectrum,
    lyapunov_spectrum as lyapunov_spectrum,
)
from ._starts import sample_states as sample_states
from ._sweep import SweepResult as SweepResult, grid_params as grid_params, sweep as sweep
from ._system import (
    AbstractFlow as AbstractFlow,
    AbstractJacobianSystem as AbstractJacobianSystem,
    AbstractMap as AbstractMap,
    AbstractSystem as AbstractSystem,
    Flow as Flow,
    Map as Map,
    args_jacobian as args_jacobian,
    growth_rates as growth_rates,
    is_stable as is_stable,
    jacobian as jacobian,
    n_unstable as n_unstable,
    residual as residual,
)
from ._train import (
    History as History,
    TrainingDiverged as TrainingDiverged,
    evaluate as evaluate,
    train as train,
    trainable as trainable,
)

try:
    __version__ = _version("jaxdyn")
except _PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
