"""Recurrent network models. Each model *is* a jaxdyn system with its input vector as `args`."""

from ._base import AbstractRNN as AbstractRNN
from ._ctrnn import CTRNN as CTRNN, scaled_ctrnn as scaled_ctrnn
from ._discrete import GRU as GRU, LSTM as LSTM, VanillaRNN as VanillaRNN
from ._torch import from_torch as from_torch
