"""Matplotlib figures for every jaxdyn result; each function takes `ax=None` and returns the
axes it drew on. Result types call these from their `.plot()` methods."""

from ._continuation import plot_branch as plot_branch
from ._figures import (
    plot_fixed_points as plot_fixed_points,
    plot_history as plot_history,
    plot_manifolds as plot_manifolds,
    plot_trajectory as plot_trajectory,
)
from ._ftle import (
    plot_basins as plot_basins,
    plot_ftle as plot_ftle,
    plot_lyapunov as plot_lyapunov,
)
from ._task import plot_trial as plot_trial
