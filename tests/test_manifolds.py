"""Manifolds of fixed points: exact line and ring attractors, and the committed trained
networks (an approximate line attractor, a GRU with saturated gates)."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

import jaxdyn as jd

jax.config.update("jax_enable_x64", True)


def ring_flow():
    """r' = r(a − r²), θ' = 0, z' = −z: a ring of fixed points of radius √a (rates −2a
    across it, −1 along z, 0 along it) around an unstable origin."""
    def f(t, x, a):
        r2 = x[0] ** 2 + x[1] ** 2
        return jnp.stack([x[0] * (a - r2), x[1] * (a - r2), -x[2]])

    return jd.Flow(f)


@pytest.fixture(scope="module")
def ring_points():
    # Starts all round the ring (neighbours 0.1 rad apart) at random radii and heights, and
    # the origin's neighbourhood.
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    theta = jnp.linspace(0.0, 2 * jnp.pi, 60, endpoint=False)
    r = jax.random.uniform(k1, (60,), minval=0.5, maxval=1.5)
    starts = jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta),
                        jax.random.normal(k2, (60,))], -1)
    starts = jnp.concatenate([starts, 0.01 * jnp.ones((1, 3))])
    return jd.fixed_points(ring_flow(), starts, jnp.asarray(1.0)).unique()


def test_exact_ring_is_one_closed_one_dimensional_manifold(ring_points):
    u = ring_points
    m = u.manifolds(ring_flow())
    valid = np.asarray(u.valid)
    on_ring = valid & (np.linalg.norm(np.asarray(u.x)[:, :2], axis=1) > 0.5)
    assert on_ring.sum() >= 50
    assert int(m.n_manifolds) == 1 and int(m.n_isolated) == 1
    np.testing.assert_array_equal(np.asarray(m.label)[on_ring], 0)
    np.testing.assert_array_equal(np.asarray(m.isolated), valid & ~on_ring)  # the origin
    assert int(m.dim[0]) == 1 and bool(m.closed[0]) and bool(m.stable[0])
    np.testing.assert_allclose(float(m.transverse_rate[0]), -1.0, atol=1e-9)
    # The ring lies in the (x, y) plane, centred at 0, with diameter 2 along its two axes.
    np.testing.assert_allclose(np.asarray(m.centre[0]), 0.0, atol=0.05)
    np.testing.assert_allclose(np.abs(np.asarray(m.axes[0])[2, :2]), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(m.extent[0, :2]), 2.0, rtol=0.01)
    assert float(m.slowness[0]) <= 0.1
    assert "ring of" in repr(m) and "1 isolated" in repr(m)
    ax = m.plot(u)
    assert len(ax.get_legend().get_texts()) == 2
    plt.close("all")


def test_ring_radius_under_jit_and_vmap(ring_points):
    """One traced call over two radii: the extent follows 2√a."""
    starts = ring_points.x[np.asarray(ring_points.valid)][::2]

    def extent(a):
        fps = jd.fixed_points(ring_flow(), starts * jnp.sqrt(a), a)
        m = fps.manifolds(ring_flow(), size=2)
        return m.extent[0, 0], m.n_manifolds, m.closed[0]

    ext, count, closed = jax.jit(jax.vmap(extent))(jnp.array([0.25, 4.0]))
    np.testing.assert_allclose(np.asarray(ext), [1.0, 4.0], rtol=0.1)
    np.testing.assert_array_equal(np.asarray(count), 1)
    assert bool(jnp.all(closed))


def test_exact_line_of_a_linear_integrator():
    """h → A h with one eigenvalue 1: its fixed points fill the eigenvector's line."""
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(1), (4, 4)))
    A = q @ jnp.diag(jnp.array([1.0, 0.5, 0.3, -0.2])) @ q.T
    line = jd.Map(lambda t, h, u: A @ h + u)
    starts = jax.random.normal(jax.random.PRNGKey(2), (24, 4))
    # Levenberg–Marquardt goes to the nearest point of the line (Newton's singular steps
    # would send every start to one point).
    u = jd.fixed_points(line, starts, jnp.zeros(4), method="lm").unique()
    m = u.manifolds(line)
    assert int(m.n_manifolds) == 1 and int(m.n_isolated) == 0
    assert int(m.n_members[0]) == int(u.valid.sum()) >= 10
    assert int(m.dim[0]) == 1 and not bool(m.closed[0]) and bool(m.stable[0])
    np.testing.assert_allclose(float(m.transverse_rate[0]), np.log(0.5), rtol=1e-9)
    # Its first axis is the eigenvector of 1, its extent the span of the points along it.
    np.testing.assert_allclose(abs(float(m.axes[0][:, 0] @ q[:, 0])), 1.0, atol=1e-9)
    pts = np.asarray(u.x)[np.asarray(u.valid)] @ np.asarray(q[:, 0])
    np.testing.assert_allclose(float(m.extent[0, 0]), np.ptp(pts), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(m.extent[0, 1:]), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(m.basis(0))[:, 0], np.asarray(m.axes[0][:, 0]))
    # Not linearised, or another kind of system: a clear error.
    with pytest.raises(ValueError, match="linearis"):
        jd.fixed_points(line, starts, jnp.zeros(4), linearise=False).manifolds(line)
    with pytest.raises(ValueError, match="map"):
        u.manifolds(jd.Flow(lambda t, h, a: -h))
    with pytest.raises(ValueError, match="neutral_tol"):
        u.manifolds(line, neutral_tol=-1.0)


@pytest.mark.slow
def test_committed_integrator_is_one_line_of_fixed_points(trained_network):
    """The trained Integrator's fixed and slow points (stable, saddle and slow points along
    the line that holds the integral) are one 1-D manifold; the SSM classification of the
    same network agrees (tests/test_ssm.py: a line attractor)."""
    model, task = trained_network("integrator")
    trial = task.sample(jax.random.PRNGKey(0), 64)
    x0s = jd.sample_states(jax.random.PRNGKey(1), model, inputs=trial.inputs, n=256,
                           noise=0.02)
    u = jd.fixed_points(model, x0s, jnp.zeros(task.n_in)).unique()
    # Rates along the line are within 0.1 per step of zero, across it below −0.17; the
    # trained line bends, its chords leave it by up to 12 % of their length.
    m = u.manifolds(model, neutral_tol=0.1, tol=0.15)
    assert int(m.n_manifolds) == 1 and int(m.n_isolated) == 0, m
    assert int(m.dim[0]) == 1 and bool(m.stable[0]) and not bool(m.closed[0])
    assert int(m.n_members[0]) == int(u.valid.sum()) >= 5
    readout = jax.vmap(model.readout)(u.x[np.asarray(u.valid)])
    assert float(jnp.ptp(readout)) > 2.0
    # The default tolerance (√eps) knows only exact continua: none here.
    assert int(u.manifolds(model).n_manifolds) == 0


@pytest.mark.slow
def test_committed_gru_flipflop_memories_stay_isolated(trained_network):
    """Saturated update gates give the GRU FlipFlop exact continua of fixed points (several
    rates at 0) beside its eight memories, which stay isolated stable points."""
    model, task = trained_network("flipflop")
    trial = task.sample(jax.random.PRNGKey(0), 64)
    x0s = jd.sample_states(jax.random.PRNGKey(1), model, inputs=trial.inputs, n=512, noise=0.1)
    u = jd.fixed_points(model, x0s, jnp.zeros(task.n_in)).unique()
    m = u.manifolds(model)
    stable = np.asarray(u.valid & (u.stability == 0))
    assert stable.sum() == 8
    assert np.all(np.asarray(m.isolated)[stable])
    assert int(m.n_manifolds) >= 1
    members = np.asarray(m.label) >= 0
    assert np.all(np.asarray(u.stability)[members] != 0)
    assert int(m.dim[0]) >= 1
    assert np.all(np.asarray(m.neutral)[members] >= 1)
    plt.close("all")


def test_two_rings_and_too_few_slots():
    """r' = r(1 − r²)(4 − r²): an attracting ring at r = 1 and a repelling one at r = 2. With
    one slot the larger ring is kept, the other counted in `n_found`, its points not called
    isolated."""
    def f(t, x, a):
        r2 = x[0] ** 2 + x[1] ** 2
        g = (1 - r2) * (4 - r2)
        return jnp.stack([x[0] * g, x[1] * g, -x[2]])

    flow = jd.Flow(f)
    theta = jnp.linspace(0.0, 2 * jnp.pi, 40, endpoint=False)
    starts = jnp.concatenate([
        jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta), jnp.full(40, 0.3)], -1)
        for r in (0.9, 2.1)])[:72]  # 40 starts near r = 1, 32 near r = 2
    u = jd.fixed_points(flow, starts).unique()
    both = u.manifolds(flow)
    assert int(both.n_manifolds) == 2 == int(both.n_found)
    np.testing.assert_array_equal(np.asarray(both.closed[:2]), [True, True])
    np.testing.assert_array_equal(np.asarray(both.stable[:2]), [True, False])
    np.testing.assert_allclose(np.asarray(both.extent[:2, 0]), [2.0, 4.0], rtol=0.02)
    one = u.manifolds(flow, size=1)
    assert int(one.n_manifolds) == 1 and int(one.n_found) == 2
    assert int(one.n_isolated) == 0 and "1 smaller" in repr(one)
