"""Sweeps: equal to a plain vmap (bitwise, float64), resumable only by the same work (the same
traced program or key, the same points), sharded over forced host devices, split over two JAX
processes, and surviving SIGKILL or an error in a later chunk."""

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn as jd

# The problem of benchmarks/sweep.py, small: the equilibria of Beer's one-neuron CTRNN
# τ y' = −y + w σ(y − 3) + I from three starts, over a (w, I) grid.
_PROBLEM = """
import jax, jax.numpy as jnp, numpy as np
import jaxdyn as jd
from jaxdyn.systems import beer_ctrnn

def equilibria(p):
    system = beer_ctrnn(1, W=p["w"][None, None], theta=jnp.array([-3.0]))
    x0s = jnp.array([[-2.0], [3.0], [8.0]])
    fps = jd.fixed_points(system, x0s, p["I"][None], linearise=False, tol=1e-12)
    return {"y": fps.x[:, 0], "converged": fps.converged}

PARAMS = jd.grid_params(w=np.linspace(4.0, 8.0, 13), I=np.linspace(-4.0, 0.0, 11))
"""
namespace: dict = {}
exec(_PROBLEM, namespace)
equilibria, PARAMS = namespace["equilibria"], namespace["PARAMS"]
N = 13 * 11


@pytest.fixture(scope="module")
def reference():
    return jax.jit(jax.vmap(equilibria))(jax.tree_util.tree_map(jnp.asarray, PARAMS))


def assert_bitwise(values, reference):
    flat, ref = jax.tree_util.tree_leaves(values), jax.tree_util.tree_leaves(reference)
    assert len(flat) == len(ref)
    for a, b in zip(flat, ref):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_grid_params_order_and_errors():
    g = jd.grid_params(a=[1.0, 2.0], b=[10.0, 20.0, 30.0])
    np.testing.assert_array_equal(g["a"], [1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(g["b"], [10, 20, 30, 10, 20, 30])
    with pytest.raises(ValueError, match="axis `b`"):
        jd.grid_params(a=[1.0], b=[[1.0]])
    with pytest.raises(ValueError, match="at least one"):
        jd.grid_params()


@pytest.mark.parametrize("chunk_size", [None, 16, 50, N])
def test_equals_plain_vmap_bitwise(reference, chunk_size):
    r = jd.sweep(equilibria, PARAMS, chunk_size=chunk_size, progress=False)
    assert_bitwise(r.values, reference)
    assert r.values["y"].shape == (N, 3)
    assert bool(np.all(r.ok))
    # Against the closed form: each converged point satisfies y = w σ(y − 3) + I.
    w, inp = PARAMS["w"][:, None], PARAMS["I"][:, None]
    y, ok = r.values["y"], r.values["converged"]
    assert bool(np.all(ok.any(axis=1)))
    np.testing.assert_allclose(y[ok], (w / (1 + np.exp(-(y - 3.0))) + inp)[ok], atol=1e-10)
    # Bistable for w = 6 and I = 0: three equilibria, the center y = 3 between two others.
    i = int(np.argmin(np.abs(PARAMS["w"] - 6.0) + np.abs(PARAMS["I"])))
    assert bool(np.all(ok[i])) and len(np.unique(np.round(y[i], 6))) == 3


def test_nan_points_are_reported_not_fatal():
    def f(p):
        return jnp.log(p["a"]) * jnp.ones(2)

    r = jd.sweep(f, {"a": np.array([1.0, -1.0, 2.0, 0.5])}, chunk_size=3, progress=False)
    assert list(r.ok) == [True, False, True, True]
    codes = np.asarray(r.result._value)
    assert codes[1] == jd.RESULTS.nonfinite_output._value
    np.testing.assert_allclose(r.values[:, 0], [0.0, np.nan, np.log(2.0), np.log(0.5)])


def test_resume_loads_finished_chunks_and_computes_the_rest(tmp_path, reference):
    out = tmp_path / "sweep"
    first = jd.sweep(equilibria, PARAMS, chunk_size=40, out=out, progress=False)
    assert_bitwise(first.values, reference)
    files = sorted(p.name for p in out.glob("chunk_*.npz"))
    assert files == [f"chunk_{i:06d}.npz" for i in range(4)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chunk_size"] == 40 and manifest["points"] == N
    # Chunk 1 is read back from its file (here marked), chunk 2 is computed again.
    with np.load(out / "chunk_000001.npz") as data:
        arrays = dict(data)
    arrays["leaf_1"] = arrays["leaf_1"] + 1000.0  # the leaf of "y" (after "converged")
    np.savez(out / "chunk_000001.npz", **arrays)
    (out / "chunk_000002.npz").unlink()
    again = jd.sweep(equilibria, PARAMS, out=out, progress=False)
    np.testing.assert_array_equal(again.values["y"][40:80], first.values["y"][40:80] + 1000.0)
    np.testing.assert_array_equal(again.values["y"][80:], first.values["y"][80:])
    assert (out / "chunk_000002.npz").exists()


def test_out_folder_of_another_sweep_is_refused(tmp_path):
    out = tmp_path / "sweep"
    first = jd.sweep(equilibria, PARAMS, chunk_size=80, out=out, progress=False)
    other = dict(PARAMS, I=PARAMS["I"] + 0.5)
    with pytest.raises(ValueError, match="holds another sweep.*`params` differ"):
        jd.sweep(equilibria, other, out=out, progress=False)
    with pytest.raises(ValueError, match="holds another sweep.*another program"):
        jd.sweep(lambda p: equilibria(dict(p, I=p["I"] + 0.5)), PARAMS, out=out,
                 progress=False)
    # A wrapper that traces to the same program is the same sweep: everything is loaded.
    again = jd.sweep(lambda p: equilibria(p), PARAMS, out=out, progress=False)
    np.testing.assert_array_equal(again.values["y"], first.values["y"])
    with pytest.raises(ValueError, match="chunk_size"):
        jd.sweep(equilibria, PARAMS, chunk_size=20, out=out, progress=False)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "chunk_000000.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="no manifest"):
        jd.sweep(equilibria, PARAMS, out=stray, progress=False)
    # A folder of format 1 (identified by the function's name and source) is not matched.
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(dict(manifest, format=1, identity="ab12")))
    with pytest.raises(ValueError, match=r"holds another sweep.*sweep format 1.*delete"):
        jd.sweep(equilibria, PARAMS, out=out, progress=False)


# Small, fast sweeps for the identity of a sweep in its folder.
POINTS = np.linspace(0.0, 1.0, 6)


def _scaled(c):
    """A new function of the same name and source for every `c` (as a rerun would build)."""

    def scaled(p):
        return jnp.sin(p) * c

    return scaled


def _helper(p):
    return jnp.sin(p)


def _calls_helper():
    def calls_helper(p):
        return 2.0 * _helper(p)

    return calls_helper


def _power(p, k):
    return p**k


def _shifted(p, k):
    return p + k


def _mtimes(folder):
    return {f.name: f.stat().st_mtime_ns for f in sorted(folder.glob("chunk_*.npz"))}


@pytest.mark.parametrize("make", [float, np.array, jnp.array])
def test_closures_over_other_constants_are_refused(tmp_path, make):
    """A Python number is a literal of the jaxpr, an array one of its constants."""
    v1, v2 = (2.0, 2.5) if make is float else ([1.0, 2.0], [1.0, 2.5])
    out = tmp_path / "s"
    first = jd.sweep(_scaled(make(v1)), POINTS, chunk_size=4, out=out, progress=False)
    np.testing.assert_allclose(first.values, np.multiply.outer(np.sin(POINTS), v1), rtol=1e-15)
    written = _mtimes(out)
    with pytest.raises(ValueError, match=rf"`out` \({re.escape(str(out))}\) holds another "
                                         rf"sweep.*`fn` \(.*scaled\) traces to another "
                                         rf"program.*new `out` folder"):
        jd.sweep(_scaled(make(v2)), POINTS, out=out, progress=False)
    # The same constant in a new closure is the same sweep: loaded, not computed again.
    again = jd.sweep(_scaled(make(v1)), POINTS, out=out, progress=False)
    np.testing.assert_array_equal(again.values, first.values)
    assert _mtimes(out) == written and len(written) == 2


def test_an_edited_helper_is_refused(tmp_path, monkeypatch):
    """`fn`'s source is the same but a function it calls changed between the runs."""
    out = tmp_path / "s"
    jd.sweep(_calls_helper(), POINTS, chunk_size=4, out=out, progress=False)
    monkeypatch.setitem(globals(), "_helper", lambda p: jnp.cos(p))
    with pytest.raises(ValueError, match="another program"):
        jd.sweep(_calls_helper(), POINTS, out=out, progress=False)
    fresh = jd.sweep(_calls_helper(), POINTS, chunk_size=4, out=tmp_path / "t",
                     progress=False)
    np.testing.assert_allclose(fresh.values, 2.0 * np.cos(POINTS), rtol=1e-15)


def test_partials_of_other_functions_or_arguments_are_refused(tmp_path):
    out = tmp_path / "s"
    first = jd.sweep(functools.partial(_power, k=3.0), POINTS, chunk_size=4, out=out,
                     progress=False)
    np.testing.assert_allclose(first.values, POINTS**3, rtol=1e-15)
    for other in (functools.partial(_power, k=2.0), functools.partial(_shifted, k=3.0)):
        with pytest.raises(ValueError, match="another program"):
            jd.sweep(other, POINTS, out=out, progress=False)
    written = _mtimes(out)
    again = jd.sweep(functools.partial(_power, k=3.0), POINTS, out=out, progress=False)
    np.testing.assert_array_equal(again.values, first.values)
    assert _mtimes(out) == written
    # An array argument is a constant of the program: its values count too.
    jd.sweep(functools.partial(_shifted, k=np.array(1.0)), POINTS, out=tmp_path / "t",
             progress=False)
    with pytest.raises(ValueError, match="another program"):
        jd.sweep(functools.partial(_shifted, k=np.array(1.5)), POINTS, out=tmp_path / "t",
                 progress=False)


def test_a_key_identifies_the_function_in_place_of_its_program(tmp_path):
    out = tmp_path / "s"
    first = jd.sweep(_scaled(2.0), POINTS, chunk_size=4, out=out, key="sin-v1", progress=False)
    # Under the same key another program resumes: the key is the caller's word for it.
    again = jd.sweep(_scaled(3.0), POINTS, out=out, key="sin-v1", progress=False)
    np.testing.assert_array_equal(again.values, first.values)
    with pytest.raises(ValueError, match=r"written with key='sin-v1', this call passes 'sin-v2'"):
        jd.sweep(_scaled(2.0), POINTS, out=out, key="sin-v2", progress=False)
    with pytest.raises(ValueError, match=r"key='sin-v1' and this call passes no `key`"):
        jd.sweep(_scaled(2.0), POINTS, out=out, progress=False)
    with pytest.raises(ValueError, match="returns another structure"):
        jd.sweep(lambda p: {"y": _scaled(2.0)(p)}, POINTS, out=out, key="sin-v1",
                 progress=False)
    jd.sweep(_scaled(2.0), POINTS, out=tmp_path / "t", progress=False)
    with pytest.raises(ValueError, match=r"traced program.*passes key='sin-v1'"):
        jd.sweep(_scaled(2.0), POINTS, out=tmp_path / "t", key="sin-v1", progress=False)
    for bad in (3, "", ["sin"]):
        with pytest.raises(ValueError, match=r"`key` must be a non-empty string"):
            jd.sweep(_scaled(2.0), POINTS, out=tmp_path / "u", key=bad, progress=False)
    with pytest.raises(ValueError, match=r"`out` with `batched=True` needs a `key`"):
        jd.sweep(lambda s: 2.0 * s, POINTS, batched=True, out=tmp_path / "u", progress=False)
    assert not (tmp_path / "u").exists()


_SMALL = """
import functools, jax, jax.numpy as jnp, numpy as np, equinox as eqx
import jaxdyn as jd

SCALE = jnp.linspace(0.5, 1.0, 3)

def checked(p, k):  # a custom JVP, a host callback and a closed-over array in the jaxpr
    y = eqx.error_if(jax.nn.relu(p["a"]) * SCALE + k, p["a"] > 99.0, "out of range")
    return {"y": y, "z": jnp.sin(p["b"]) ** 2}

FN = functools.partial(checked, k=0.25)
POINTS = {"a": np.linspace(-1.0, 1.0, 6), "b": np.ones((6, 2))}
"""


def test_another_process_resumes_the_same_sweep(tmp_path):
    """The identity does not depend on the process: no addresses or hash order in it."""
    space: dict = {}
    exec(_SMALL, space)
    out = tmp_path / "s"
    first = jd.sweep(space["FN"], space["POINTS"], chunk_size=4, out=out, progress=False)
    written = _mtimes(out)
    script = _SMALL + textwrap.dedent(f"""
        r = jd.sweep(FN, POINTS, out={str(out)!r}, progress=False)
        np.save({str(tmp_path / "y.npy")!r}, r.values["y"])
    """)
    done = _run(script, env=dict(os.environ, PYTHONHASHSEED="7", JAX_ENABLE_X64="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert _mtimes(out) == written  # loaded, not computed again
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), first.values["y"])


def test_finished_chunks_are_written_when_a_later_chunk_raises(tmp_path):
    def checked(p):
        return eqx.error_if(2.0 * p, p > 5.0, "past five")

    points = np.arange(10.0)  # chunks of 2: chunk 3 (points 6 and 7) raises
    out = tmp_path / "s"
    with pytest.raises(Exception, match="past five"):
        jd.sweep(checked, points, chunk_size=2, out=out, key="double", progress=False)
    assert sorted(_mtimes(out)) == [f"chunk_{i:06d}.npz" for i in range(3)]
    # Fixed under the same key, the rerun loads chunks 0-2 and computes the rest.
    fixed = jd.sweep(lambda p: 2.0 * p, points, out=out, key="double", progress=False)
    np.testing.assert_array_equal(fixed.values, 2.0 * points)
    assert len(_mtimes(out)) == 5

    @jax.jit
    def grow(s):  # some milliseconds of work
        w = jnp.full((300, 300), 1e-3)
        m = jax.lax.fori_loop(0, 200, lambda _, m: jnp.tanh(m @ w) + 1.0,
                              jnp.outer(s, jnp.ones(300)))
        return m.sum(1)

    def batched(s):  # a host loop over a chunk, as `jd.train` is
        if np.max(np.asarray(s)) > 5.0:
            raise RuntimeError("past five")
        return grow(jnp.asarray(s))  # likely still computing when the next chunk raises

    with pytest.raises(RuntimeError, match="past five"):
        jd.sweep(batched, points, chunk_size=2, batched=True, out=tmp_path / "b", key="b",
                 progress=False)
    assert sorted(_mtimes(tmp_path / "b")) == [f"chunk_{i:06d}.npz" for i in range(3)]


def test_bad_input_names_the_leaf():
    with pytest.raises(ValueError, match=r"params\['I'\]: 5"):
        jd.sweep(equilibria, {"w": PARAMS["w"], "I": PARAMS["I"][:5]})
    with pytest.raises(ValueError, match=r"could not be traced.*params\['w'\]: an array of "
                                         r"shape \(\)"):
        jd.sweep(lambda p: jnp.linalg.solve(p["w"], p["I"]), PARAMS)
    with pytest.raises(ValueError, match="scalar"):
        jd.sweep(equilibria, {"w": 1.0, "I": PARAMS["I"]})
    with pytest.raises(ValueError, match="no sweep points"):
        jd.sweep(equilibria, {"w": np.zeros(0), "I": np.zeros(0)})
    with pytest.raises(ValueError, match="chunk_size"):
        jd.sweep(equilibria, PARAMS, chunk_size=0)
    with pytest.raises(ValueError, match="budget"):
        jd.sweep(equilibria, PARAMS, budget=-1)
    with pytest.raises(ValueError, match="`fn`"):
        jd.sweep("not a function", PARAMS)


def test_batched_training_sweep_over_seeds(tmp_path):
    """`jd.train` is a host loop over a stack of networks: a batched sweep over seeds trains
    one stack per chunk and equals training each chunk's stack alone."""
    task = jd.tasks.get_task("PerceptualDecisionMaking")

    def train_seeds(seeds):
        keys = jax.vmap(jax.random.PRNGKey)(seeds)
        models = eqx.filter_vmap(lambda k: jd.rnn.GRU(task.n_in, 8, task.n_out, key=k))(keys)
        _, hist = jd.train(models, task, keys, steps=3, batch_size=4, progress=False)
        return hist.loss  # (networks, logged steps)

    seeds = np.arange(5)
    r = jd.sweep(train_seeds, seeds, chunk_size=2, batched=True, out=tmp_path / "s",
                 key="train-seeds", progress=False)
    assert r.values.shape[0] == 5 and bool(np.all(r.ok))
    alone = np.concatenate([np.asarray(train_seeds(jnp.asarray(seeds[:2]))),
                            np.asarray(train_seeds(jnp.asarray(seeds[2:4])))])
    np.testing.assert_allclose(r.values[:4], alone, rtol=1e-6)
    again = jd.sweep(train_seeds, seeds, batched=True, out=tmp_path / "s", key="train-seeds",
                     progress=False)
    np.testing.assert_array_equal(again.values, r.values)  # all three chunks loaded
    with pytest.raises(ValueError, match="axis 0"):
        jd.sweep(lambda s: jnp.zeros(3), seeds, chunk_size=2, batched=True, progress=False)


def _run(script: str, *args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_sharded_over_four_forced_host_devices(tmp_path, reference):
    np.savez(tmp_path / "ref.npz", **{k: np.asarray(v) for k, v in reference.items()})
    script = textwrap.dedent("""
        import jax
        jax.config.update("jax_enable_x64", True)
    """) + _PROBLEM + textwrap.dedent(f"""
        assert jax.local_device_count() == 4, jax.local_device_count()
        r = jd.sweep(equilibria, PARAMS, chunk_size=30, progress=False)  # 30 -> 32 per call
        ref = np.load({str(tmp_path / 'ref.npz')!r})
        for k in ("y", "converged"):
            np.testing.assert_array_equal(r.values[k], ref[k])
        print("OK")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    done = _run(script, env=env)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_each_run_half_the_chunks(tmp_path, reference):
    np.savez(tmp_path / "ref.npz", **{k: np.asarray(v) for k, v in reference.items()})
    script = textwrap.dedent("""
        import sys, jax
        jax.config.update("jax_enable_x64", True)
        rank, port = int(sys.argv[1]), sys.argv[2]
        jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                                   process_id=rank)
    """) + _PROBLEM + textwrap.dedent(f"""
        # Each process writes its chunks to its own folder, to show which it ran.
        r = jd.sweep(equilibria, PARAMS, chunk_size=20, out={str(tmp_path)!r} + f"/p{{rank}}",
                     progress=False)
        ref = np.load({str(tmp_path / 'ref.npz')!r})
        for k in ("y", "converged"):
            np.testing.assert_array_equal(r.values[k], ref[k])
        print("OK", jax.process_count())
    """)
    port = str(_free_port())
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(rank), port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in range(2)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=240))
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "OK 2" in out, err[-3000:]
    # 143 points in chunks of 20: chunks 0–7; process 0 ran 0, 2, 4, 6 and process 1 ran 1, 3, 5, 7.
    for rank in range(2):
        ran = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / f"p{rank}").glob("chunk_*"))
        assert ran == list(range(rank, 8, 2))


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_result(tmp_path, reference):
    np.savez(tmp_path / "ref.npz", **{k: np.asarray(v) for k, v in reference.items()})
    out = tmp_path / "sweep"
    script = textwrap.dedent("""
        import time, jax
        jax.config.update("jax_enable_x64", True)
    """) + _PROBLEM + textwrap.dedent(f"""
        def slow(p):  # the same values, a quarter of a second per chunk
            y = equilibria(p)
            wait = jax.pure_callback(lambda a: (time.sleep(0.25), a)[1], p["w"], p["w"],
                                     vmap_method="broadcast_all")
            return {{"y": y["y"] + 0.0 * wait, "converged": y["converged"]}}
        slow.__qualname__ = "equilibria_slowly"
        r = jd.sweep(slow, PARAMS, chunk_size=8, out={str(out)!r}, progress=False)
        ref = np.load({str(tmp_path / 'ref.npz')!r})
        for k in ("y", "converged"):
            np.testing.assert_array_equal(r.values[k], ref[k])
        print("OK")
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while len(list(out.glob("chunk_*.npz"))) < 4 and time.time() < deadline:
            assert child.poll() is None, child.stderr.read()[-3000:]
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    finished = len(list(out.glob("chunk_*.npz")))
    assert 4 <= finished < 18  # 143 points in chunks of 8: 18 chunks
    for path in out.glob("chunk_*.npz"):  # every chunk on disk is complete
        with np.load(path) as data:
            assert data["leaf_1"].shape == (8, 3)
    done = _run(script)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]
    assert len(list(out.glob("chunk_*.npz"))) == 18


def test_compiles_once_per_function(reference):
    traces = []

    def counted(p):
        traces.append(1)
        return equilibria(p)

    jd.sweep(counted, PARAMS, chunk_size=50, progress=False)
    first = len(traces)
    jd.sweep(counted, jax.tree_util.tree_map(lambda a: a * 1.01, PARAMS), chunk_size=50,
             progress=False)
    assert len(traces) == first  # new values, same program


def test_progress_meter_counts_points(reference):
    seen = []

    class Meter(jd.AbstractProgressMeter):
        def open(self, total, initial=0):
            seen.append(("open", total, initial))

            class Handle:
                def update(self, done, **postfix):
                    seen.append(("update", done))

                def close(self):
                    seen.append(("close",))
            return Handle()

    jd.sweep(equilibria, PARAMS, chunk_size=50, progress=Meter())
    assert seen[0] == ("open", N, 0)
    assert [s[1] for s in seen if s[0] == "update"] == [50, 100, N]
    assert seen[-1] == ("close",)



def test_default_chunk_follows_the_memory_budget(tmp_path, reference):
    roomy = jd.sweep(equilibria, PARAMS, out=tmp_path / "a", progress=False)
    tight = jd.sweep(equilibria, PARAMS, budget=20_000, out=tmp_path / "b", progress=False)
    sizes = [json.loads((tmp_path / d / "manifest.json").read_text())["chunk_size"]
             for d in ("a", "b")]
    assert sizes[0] == N and 1 <= sizes[1] < N
    assert_bitwise(roomy.values, reference)
    assert_bitwise(tight.values, reference)


def test_ftle_fields_over_a_parameter():
    """A sweep of double-gyre FTLE fields over ε equals the fields computed one by one."""
    dg = jd.systems.double_gyre()
    pts = jnp.asarray(np.random.default_rng(0).uniform([0, 0], [2, 1], size=(8, 2)))

    def field(eps):
        return jd.ftle(dg, pts, eps, 0.0, 3.0, dt=0.1).ftle

    eps = np.array([0.0, 0.1, 0.25])
    r = jd.sweep(field, eps, chunk_size=2, progress=False)
    alone = np.stack([np.asarray(field(jnp.asarray(e))) for e in eps])
    np.testing.assert_allclose(r.values, alone, rtol=1e-12)
    assert r.values.shape == (3, 8) and bool(np.all(r.ok))
