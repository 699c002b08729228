"""Chunked vmap: equal to vmap for every chunk size, differentiable, jittable."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn._chunk import chunked_vmap, memory_budget, resolve_chunk_size


def fn(x, a):
    return {"sum": jnp.sum(x * a["w"]), "vec": jnp.tanh(x) + a["b"]}


@pytest.fixture
def data():
    x = jax.random.normal(jax.random.PRNGKey(0), (10, 3))
    a = {"w": jnp.arange(3.0), "b": jnp.asarray(0.5)}
    return x, a


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 5, 10, 64])
def test_equals_vmap(data, chunk_size):
    x, a = data
    want = jax.vmap(fn, in_axes=(0, None))(x, a)
    got = chunked_vmap(fn, x, a, in_axes=(0, None), chunk_size=chunk_size)
    for k in want:
        assert got[k].shape == want[k].shape
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12)


def test_batched_args_jit_and_grad(data):
    x, _ = data
    w = jnp.linspace(0.0, 1.0, 10)
    g = lambda x, w: jnp.sum(jnp.sin(x)) * w
    out = jax.jit(lambda x, w: chunked_vmap(g, x, w, chunk_size=4))(x, w)
    np.testing.assert_allclose(out, jax.vmap(g)(x, w), rtol=1e-12)
    grad_chunked = jax.grad(lambda w: jnp.sum(chunked_vmap(g, x, w, chunk_size=3)))(w)
    grad_vmap = jax.grad(lambda w: jnp.sum(jax.vmap(g)(x, w)))(w)
    np.testing.assert_allclose(grad_chunked, grad_vmap, rtol=1e-12)


def test_progress_bar(data, capsys):
    x, a = data
    out = chunked_vmap(fn, x, a, in_axes=(0, None), chunk_size=4,
                       progress=jd.TqdmProgressMeter(desc="t"))
    jax.effects_barrier()
    assert out["vec"].shape == (10, 3)


def test_mismatched_batches_raise():
    with pytest.raises(ValueError, match="batch size"):
        chunked_vmap(lambda a, b: a + b, jnp.ones((3, 2)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="in_axes"):
        chunked_vmap(lambda a, b: a + b, jnp.ones((3, 2)), jnp.ones(2), in_axes=(0,))


def test_resolve_chunk_size():
    assert resolve_chunk_size(100) == 100
    assert resolve_chunk_size(100, chunk_size=7) == 7
    assert resolve_chunk_size(100, chunk_size=500) == 100
    # 30 items fit the budget; the 4 chunks are balanced (25 each), not 30/30/30/10.
    assert resolve_chunk_size(100, bytes_per_item=10, budget=300) == 25
    assert resolve_chunk_size(100, bytes_per_item=10**12, budget=300) == 1
    assert memory_budget() > 0
