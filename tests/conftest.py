import os

# Several test processes may share one accelerator: allocate memory as needed.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. Every compiled XLA program holds
    memory mappings; a session that compiles a few thousand programs would pass the kernel's
    limit (vm.max_map_count, 65,530 by default) and crash inside the compiler."""
    yield
    jax.clear_caches()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def trained_network():
    """Load one of the small committed networks (`tests/data/make_networks.py`) in float64:
    `trained_network(name)` -> `(model, task)` for name in flipflop, integrator, angular, pdm,
    cdm."""
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
            task = jd.tasks.get_task(table[name]["task"], **table[name].get("task_kwargs", {}))
            cache[name] = (model, task)
        return cache[name]

    return load
