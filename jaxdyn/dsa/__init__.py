"""Dynamical Similarity Analysis: compare the dynamics of networks up to a change of
coordinates (Ostrow, Eisen, Kozachkov & Fiete, NeurIPS 2023), batched and differentiable.

Definitions and defaults follow the reference implementation, dsa-metric 2.x (`import DSA`).
"""

from ._distance import distance as distance, pairwise as pairwise
from ._operator import (
    Operator as Operator,
    delay_embed as delay_embed,
    fit_operator as fit_operator,
)
from ._plot import (
    plot as plot,
    plot_distances as plot_distances,
    plot_embedding as plot_embedding,
    plot_separability as plot_separability,
)
from ._procrustes import (
    Procrustes as Procrustes,
    procrustes as procrustes,
    wasserstein as wasserstein,
)
from ._separability import (
    Separability as Separability,
    embed as embed,
    separability as separability,
)
