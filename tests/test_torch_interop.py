"""`jaxdyn.rnn.from_torch` reproduces PyTorch's recurrent layers exactly (float64)."""

import sys

import pytest

torch = pytest.importorskip("torch")

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxdyn as jd  # noqa: E402
from jaxdyn.rnn import GRU, LSTM, VanillaRNN, from_torch  # noqa: E402

N_IN, H, N_OUT, T = 3, 6, 2, 15

LAYERS = {
    "rnn_tanh": (lambda **kw: torch.nn.RNN(N_IN, H, **kw), VanillaRNN),
    "rnn_relu": (lambda **kw: torch.nn.RNN(N_IN, H, nonlinearity="relu", **kw), VanillaRNN),
    "gru": (lambda **kw: torch.nn.GRU(N_IN, H, **kw), GRU),
    "lstm": (lambda **kw: torch.nn.LSTM(N_IN, H, **kw), LSTM),
}


def _torch_reference(module, readout, inputs, h0, c0):
    """PyTorch's hidden states [T, H], final cell state and outputs [T, n_out], in float64."""
    x = torch.from_numpy(inputs)[:, None, :]  # [T, batch=1, n_in]
    with torch.no_grad():
        if isinstance(module, torch.nn.LSTM):
            state = (torch.from_numpy(h0)[None, None], torch.from_numpy(c0)[None, None])
            hs, (_, c_n) = module(x, state)
            c_n = c_n[0, 0].numpy()
        else:
            hs, _ = module(x, torch.from_numpy(h0)[None, None])
            c_n = None
        hs = hs[:, 0]
        ys = readout(hs) if readout is not None else hs
    return hs.numpy(), c_n, ys.numpy()


@pytest.mark.parametrize("with_readout", [False, True])
@pytest.mark.parametrize("name", list(LAYERS))
def test_matches_pytorch(name, with_readout):
    torch.manual_seed(0)
    make, cls = LAYERS[name]
    module = make().double()
    readout = torch.nn.Linear(H, N_OUT).double() if with_readout else None
    model = from_torch(module, readout)
    assert type(model) is cls
    assert (model.n_in, model.n_hidden) == (N_IN, H)
    assert model.n_out == (N_OUT if with_readout else H)
    assert model.W_out.dtype == jnp.float64
    if cls is GRU:
        assert model.reset_after

    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(T, N_IN))
    h0, c0 = 0.5 * rng.normal(size=H), 0.5 * rng.normal(size=H)
    hs, c_n, ys = _torch_reference(module, readout, inputs, h0, c0)

    x0 = np.concatenate([h0, c0]) if cls is LSTM else h0
    states, outputs = eqx.filter_jit(lambda m, x, u: m.run(x, u))(model, jnp.asarray(x0),
                                                                    jnp.asarray(inputs))
    np.testing.assert_allclose(states[:, :H], hs, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(outputs, ys, rtol=1e-12, atol=1e-13)
    if cls is LSTM:
        np.testing.assert_allclose(states[-1, H:], c_n, rtol=1e-12, atol=1e-13)
    # The imported model is an ordinary system.
    traj = jd.simulate(model, jnp.asarray(x0), jnp.asarray(inputs[0]), 3)
    np.testing.assert_allclose(traj.xs[1, :H], hs[0], rtol=1e-12, atol=1e-13)


def test_float32_module_is_converted_to_default_dtype():
    torch.manual_seed(0)
    module = torch.nn.GRU(N_IN, H)  # float32 weights
    model = from_torch(module)
    assert model.W_hh.dtype == jnp.float64
    np.testing.assert_allclose(model.W_hh, module.weight_hh_l0.detach().numpy(), rtol=1e-7)


def test_weights_are_copied():
    module = torch.nn.RNN(N_IN, H).double()
    model = from_torch(module)
    before = np.array(model.W)
    with torch.no_grad():
        module.weight_hh_l0.add_(1.0)
    np.testing.assert_array_equal(model.W, before)


def test_no_bias_and_batch_first():
    torch.manual_seed(0)
    module = torch.nn.LSTM(N_IN, H, bias=False, batch_first=True).double()
    readout = torch.nn.Linear(H, N_OUT, bias=False).double()
    model = from_torch(module, readout)
    np.testing.assert_array_equal(model.b_ih, 0.0)
    np.testing.assert_array_equal(model.b_out, 0.0)
    inputs = np.random.default_rng(2).normal(size=(T, N_IN))
    with torch.no_grad():
        hs, _ = module(torch.from_numpy(inputs)[None])  # batch_first: [1, T, n_in]
        ys = readout(hs[0]).numpy()
    _, outputs = model.run(None, jnp.asarray(inputs))
    np.testing.assert_allclose(outputs, ys, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "module, match",
    [
        (lambda: torch.nn.GRU(N_IN, H, num_layers=2), "num_layers"),
        (lambda: torch.nn.RNN(N_IN, H, bidirectional=True), "bidirectional"),
        (lambda: torch.nn.LSTM(N_IN, H, proj_size=2), "proj_size"),
        (lambda: torch.nn.Linear(N_IN, H), "module"),
        (lambda: torch.nn.GRUCell(N_IN, H), "module"),
    ],
)
def test_refusals(module, match):
    with pytest.raises(ValueError, match=match):
        from_torch(module())


def test_bad_readout():
    module = torch.nn.RNN(N_IN, H)
    with pytest.raises(ValueError, match="readout.*in_features"):
        from_torch(module, torch.nn.Linear(H + 1, N_OUT))
    with pytest.raises(ValueError, match="readout"):
        from_torch(module, torch.nn.Sequential(torch.nn.Linear(H, N_OUT)))


def test_missing_torch_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r"jaxdyn\[torch\]"):
        from_torch(object())
