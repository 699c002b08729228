"""Spectral-submanifold (SSM) reduced models fitted from trajectories.

`fit` builds an `SSM` (chart, manifold and reduced dynamics, in closed form); `nmte` scores
its predictions; `normal_form` gives the backbone of a 2-D oscillatory SSM; `fit_ring` and
`classify` read line attractors, ring attractors and isolated fixed points off 1-D models.
"""

from ._attractors import Attractor as Attractor, classify as classify, fit_ring as fit_ring
from ._data import embed as embed
from ._fit import fit as fit
from ._model import SSM as SSM, ReducedFlow as ReducedFlow, ReducedMap as ReducedMap
from ._nmte import nmte as nmte
from ._normal_form import NormalForm as NormalForm, normal_form as normal_form
