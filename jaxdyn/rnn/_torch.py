"""Import a trained PyTorch recurrent layer as a jaxdyn model."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ._discrete import GRU, LSTM, VanillaRNN


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "`jaxdyn.rnn.from_torch` needs PyTorch, which is an optional dependency; install "
            "it with `pip install jaxdyn[torch]` (or `pip install torch`)."
        ) from None
    return torch


def _array(tensor: Any, dtype) -> Any:
    # Through float64 numpy, so half/bfloat16 and GPU tensors convert too; the copy keeps the
    # jaxdyn model independent of later in-place updates to the torch parameters.
    return jnp.asarray(np.array(tensor.detach().cpu().double().numpy(), copy=True), dtype=dtype)


def from_torch(module: Any, readout: Any = None) -> VanillaRNN | GRU | LSTM:
    """Convert a PyTorch recurrent layer (and optionally its linear readout) into a jaxdyn model
    with the same dynamics.

    - `torch.nn.RNN` (`nonlinearity="tanh"` or `"relu"`) becomes a `VanillaRNN` with
      `W = weight_hh_l0`, `B = weight_ih_l0` and `b = bias_ih_l0 + bias_hh_l0`.
    - `torch.nn.GRU` becomes a `GRU(reset_after=True)`, PyTorch's form of the gate equations,
      with the gate blocks kept in PyTorch's (r, z, n) order.
    - `torch.nn.LSTM` becomes an `LSTM` whose state is the joined vector `[h, c]`; an initial
      state `(h0, c0)` of PyTorch corresponds to `x0 = concat(h0, c0)`.

    Layers built with `bias=False` get zero biases. `batch_first` is accepted: it only says
    how PyTorch expects a batch to be laid out, while `model.run` takes one sequence
    `[T, n_in]` (use `jax.vmap` over a batch axis of your choosing). Weights are copied and
    cast to JAX's default float dtype (float64 when `jax_enable_x64` is on), so the model
    does not change when the PyTorch module is trained further.

    **Arguments:**

    - `module`: a single-layer, unidirectional `torch.nn.RNN`, `torch.nn.GRU` or
      `torch.nn.LSTM` (without `proj_size`).
    - `readout`: an optional `torch.nn.Linear(hidden_size, n_out)` applied to the hidden state
      `h` at every step; it becomes the model's `W_out`, `b_out`. Without one, the readout is
      the identity (`n_out = hidden_size`, `W_out = I`, `b_out = 0`), so that the model's
      outputs are the hidden states `h`, which is what the PyTorch layer itself returns.

    **Returns:** a `VanillaRNN`, `GRU` or `LSTM`.

    **Raises:**

    - `ImportError` if PyTorch is not installed.
    - `ValueError` for any other module type, `num_layers > 1`, `bidirectional=True`,
      `proj_size > 0`, or a `readout` that is not an `nn.Linear` with `in_features` equal
      to the layer's `hidden_size`.
    """
    torch = _import_torch()
    nn = torch.nn
    if not isinstance(module, (nn.RNN, nn.GRU, nn.LSTM)):
        raise ValueError(
            "`module` must be a torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM; got an object of "
            f"type {type(module).__name__}."
        )
    name = type(module).__name__
    if module.num_layers != 1:
        raise ValueError(
            f"`module` must have num_layers=1; got a {name} with num_layers="
            f"{module.num_layers}. Stacked layers are not supported: convert each layer "
            "separately or train a single-layer network."
        )
    if module.bidirectional:
        raise ValueError(
            f"`module` must be unidirectional; got a {name} with bidirectional=True, which "
            "is not a causal dynamical system."
        )
    if getattr(module, "proj_size", 0) != 0:
        raise ValueError(
            f"`module` must have proj_size=0; got an LSTM with proj_size={module.proj_size}."
        )

    n_in, H = int(module.input_size), int(module.hidden_size)
    dtype = jnp.result_type(float)
    W_ih = _array(module.weight_ih_l0, dtype)
    W_hh = _array(module.weight_hh_l0, dtype)
    if module.bias:
        b_ih = _array(module.bias_ih_l0, dtype)
        b_hh = _array(module.bias_hh_l0, dtype)
    else:
        b_ih = b_hh = jnp.zeros(W_ih.shape[0], dtype)

    if readout is None:
        W_out, b_out = jnp.eye(H, dtype=dtype), jnp.zeros(H, dtype)
    else:
        if not isinstance(readout, nn.Linear):
            raise ValueError(
                "`readout` must be a torch.nn.Linear or None; got an object of type "
                f"{type(readout).__name__}."
            )
        if readout.in_features != H:
            raise ValueError(
                f"`readout` must take the hidden state as input: in_features must equal "
                f"hidden_size={H}; got nn.Linear({readout.in_features}, "
                f"{readout.out_features})."
            )
        W_out = _array(readout.weight, dtype)
        b_out = (_array(readout.bias, dtype) if readout.bias is not None
                 else jnp.zeros(readout.out_features, dtype))
    n_out = int(W_out.shape[0])

    # Build a model of the right sizes and static options, then swap in the weights.
    key = jr.PRNGKey(0)
    if isinstance(module, nn.RNN):
        nonlinearity = module.nonlinearity
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"`module` must use nonlinearity 'tanh' or 'relu'; got {nonlinearity!r}."
            )
        model = VanillaRNN(n_in, H, n_out, key=key, nonlinearity=nonlinearity)
        return eqx.tree_at(lambda m: (m.W, m.B, m.b, m.W_out, m.b_out), model,
                           (W_hh, W_ih, b_ih + b_hh, W_out, b_out))
    if isinstance(module, nn.GRU):
        model = GRU(n_in, H, n_out, key=key, reset_after=True)
    else:
        model = LSTM(n_in, H, n_out, key=key)
    return eqx.tree_at(lambda m: (m.W_ih, m.W_hh, m.b_ih, m.b_hh, m.W_out, m.b_out), model,
                       (W_ih, W_hh, b_ih, b_hh, W_out, b_out))
