import jax
import matplotlib
import pytest

matplotlib.use("Agg")
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def trained_flipflop():
    """A 16-unit GRU trained on the 3-bit flip-flop task (Sussillo & Barak 2013), with a
    self-contained data generator: ±1 pulses on each channel, every channel pulsed at t = 0,
    target = the sign of the last pulse. Returns `(model, inputs)` with held-out trials."""
    import equinox as eqx
    import jax.numpy as jnp
    import optax

    from jaxdyn.rnn import GRU

    def batch(key, n=64, T=64, p=0.1, bits=3):
        k_pulse, k_sign = jax.random.split(key)
        pulse = jax.random.bernoulli(k_pulse, p, (n, T, bits)).at[:, 0, :].set(True)
        sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, (n, T, bits)), 1.0, -1.0)
        inputs = jnp.where(pulse, sign, 0.0)

        def hold(prev, u):
            cur = jnp.where(u != 0, u, prev)
            return cur, cur

        _, targets = jax.lax.scan(hold, jnp.zeros((n, bits)), jnp.swapaxes(inputs, 0, 1))
        return inputs, jnp.swapaxes(targets, 0, 1)

    def loss(model, inputs, targets):
        outputs = jax.vmap(lambda u: model.run(None, u)[1])(inputs)
        return jnp.mean((outputs - targets) ** 2)

    optimiser = optax.adam(1e-2)

    @eqx.filter_jit
    def step(model, opt_state, key):
        inputs, targets = batch(key)
        grads = eqx.filter_grad(loss)(model, inputs, targets)
        updates, opt_state = optimiser.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state

    model = GRU(3, 16, 3, key=jax.random.PRNGKey(0))
    opt_state = optimiser.init(eqx.filter(model, eqx.is_array))
    for key in jax.random.split(jax.random.PRNGKey(1), 1500):
        model, opt_state = step(model, opt_state, key)
    inputs, targets = batch(jax.random.PRNGKey(99), n=128, T=100)
    assert float(loss(model, inputs, targets)) < 1e-2, "flip-flop training did not converge"
    return model, inputs


@pytest.fixture(scope="session")
def trained_network():
    """Load one of the small committed networks (`tests/data/make_networks.py`) in float64:
    `trained_network(name)` -> `(model, task)` for name in flipflop, integrator, angular, pdm."""
    import json
    from pathlib import Path

    import jaxdyn as jd

    data = Path(__file__).parent / "data"
    table = json.loads((data / "networks.json").read_text())
    cache = {}

    def load(name):
        if name not in cache:
            model = jd.load_model(data / f"{name}.eqx")
            model = jax.tree_util.tree_map(
                lambda x: x.astype("float64") if hasattr(x, "dtype") and x.dtype.kind == "f"
                else x, model)
            cache[name] = (model, jd.tasks.get_task(table[name]["task"]))
        return cache[name]

    return load
