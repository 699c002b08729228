"""FTLE, ridges, basins and Lyapunov spectra against closed forms, published values and
independent finite differences; jit, vmap, grad, errors, chunking and figures."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn import RESULTS

TIGHT = dict(rtol=1e-12, atol=1e-12)
SADDLE = jd.Flow(lambda t, x, lam: lam * jnp.stack([x[0], -x[1]]))
ONE = jnp.asarray(1.0)


def saddle():
    return SADDLE


def diagonal_map():
    return jd.Map(lambda k, x, a: jnp.stack([2.0 * x[0], 0.5 * x[1]]))


def bistable():
    """`x' = x − x³`, `y' = −y`: attractors (±1, 0), basin boundary x = 0 (the stable
    manifold of the saddle at the origin, a ridge of the forward FTLE)."""
    return jd.Flow(lambda t, x, a: jnp.stack([x[0] - x[0] ** 3, -x[1]]))


# ---------------------------------------------------------------------------------------------
# closed forms


@pytest.mark.parametrize("T", [0.5, 2.0, 10.0, -3.0])
def test_linear_saddle_ftle_is_one(T):
    g = jd.grid([(-1.0, 1.0), (-0.5, 0.5)], (4, 3))
    f = jd.ftle(SADDLE, g, ONE, 0.0, T, **TIGHT)
    assert f.ftle.shape == (4, 3) and f.x0s is None  # a Grid keeps its points implicit
    assert bool(jnp.all(f.success))
    np.testing.assert_allclose(np.asarray(f.ftle), 1.0, rtol=0, atol=1e-10)


def test_linear_saddle_rate_and_fixed_step_and_grid_method():
    g = jd.grid([(-1.0, 1.0), (-0.5, 0.5)], (4, 3))
    f = jd.ftle(SADDLE, g, jnp.asarray(0.7), 0.0, 4.0, **TIGHT)
    np.testing.assert_allclose(np.asarray(f.ftle), 0.7, atol=1e-10)
    # A fixed step: RK4's discrete flow map of a linear system is exp(hλ) to O(h⁵) per step.
    f = jd.ftle(SADDLE, g, ONE, 0.0, 2.0, dt=0.01)
    np.testing.assert_allclose(np.asarray(f.ftle), 1.0, atol=1e-9)
    # Differences of a linear flow map are exact, so the grid method agrees too.
    f = jd.ftle(SADDLE, g, ONE, 0.0, -2.0, method="grid", **TIGHT)
    np.testing.assert_allclose(np.asarray(f.ftle), 1.0, atol=1e-10)


LIN_A = np.array([[-1.0, 0.5], [0.0, -3.0]])


def linear_ftle(T):
    import scipy.linalg

    return float(np.log(np.linalg.svd(scipy.linalg.expm(LIN_A * T), compute_uv=False)[0])
                 / abs(T))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("T", [10.0, -10.0])
def test_linear_flow_ftle_at_near_and_far_from_the_equilibrium(T, dtype):
    """x' = A x, A = [[−1, ½], [0, −3]]: σ = ln σ_max(e^{AT}) / |T| at every point. Was +1.17
    at the equilibrium and −0.54 at 1e-6 from it (exact −0.997): the tangents rode on steps
    that only the state's error controlled."""
    flow = jd.Flow(lambda t, x, a: jnp.asarray(LIN_A, x.dtype) @ x)
    pts = jnp.asarray([[0.0, 0.0], [1e-6, 1e-6], [1.0, -2.0]], dtype)
    exact = linear_ftle(T)
    tol = 1e-7 if dtype == jnp.float64 else 1e-4
    f = jd.ftle(flow, pts, None, 0.0, T)
    assert f.ftle.dtype == dtype and bool(jnp.all(f.success))
    np.testing.assert_allclose(np.asarray(f.ftle, np.float64), exact, atol=tol)
    # The grid method on a grid centred on the equilibrium: differences of a linear flow map
    # are exact, so only the integration error of the neighbours' flow maps remains.
    g = jd.grid([(-0.02, 0.02), (-0.02, 0.02)], (3, 3))
    g = jax.tree_util.tree_map(lambda v: v.astype(dtype) if hasattr(v, "astype") else v, g)
    # The differences' error is the flow maps' absolute error over the spacing, so `atol` is
    # set below the contracted spacing (0.02 e^{-10} ≈ 1e-6).
    fg = jd.ftle(flow, g, None, 0.0, T, method="grid", atol=1e-14 if dtype == jnp.float64
                 else 1e-11)
    np.testing.assert_allclose(np.asarray(fg.ftle, np.float64)[1, 1], exact,
                               atol=1e-6 if dtype == jnp.float64 else 1e-3)


def test_ctrnn_at_its_fixed_point_has_the_linearisation_s_ftle():
    """A 16-unit CTRNN at its own fixed point (zero input): σ = ln σ_max(e^{JT}) / T. Was +0.082
    (T = 100) and +0.067 (T = 400) for an exact value of order −1e-2: ridges of stretching
    that do not exist."""
    import scipy.linalg

    model = jd.rnn.CTRNN(3, 16, 2, key=jax.random.PRNGKey(0), tau=10.0)
    u = jnp.zeros(3)
    x_star = jd.fixed_points(model, jnp.zeros((1, 16)), u, linearise=False).unique().x[0]
    J = np.asarray(jd.jacobian(model, x_star, u))
    for T in (100.0, 400.0):
        exact = np.log(np.linalg.svd(scipy.linalg.expm(J * T), compute_uv=False)[0]) / T
        f = jd.ftle(model, x_star[None], u, 0.0, T)
        assert bool(f.success[0])
        np.testing.assert_allclose(float(f.ftle[0]), exact, atol=1e-6)


@pytest.mark.parametrize("T", [-1, -2])
def test_backward_ftle_of_maps(T):
    """Backward iterates by Newton's method: diag(2, ½) backward stretches by 2 along y; for
    the Hénon map, `F^k` from the computed preimage returns the point, and the backward FTLE
    is `−ln σ_min(DF^k) / k` of the forward Jacobian there."""
    pts = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2)))
    f = jd.ftle(diagonal_map(), pts, None, 0, T)
    np.testing.assert_allclose(np.asarray(f.ftle), np.log(2.0), rtol=0, atol=1e-13)
    henon = jd.systems.henon()
    pts = jnp.asarray(np.random.default_rng(1).uniform(-0.5, 0.5, size=(6, 2)))
    fb = jd.ftle(henon, pts, None, 0, T)
    assert bool(jnp.all(fb.success))
    k = -T
    for p, sigma in zip(np.asarray(pts), np.asarray(fb.ftle)):
        q = p.copy()
        for _ in range(k):  # the explicit inverse: (x, y) = (Y / b, X − 1 + a (Y / b)²)
            x = q[1] / 0.3
            q = np.array([x, q[0] - 1.0 + 1.4 * x * x])
        fwd = jax.jacfwd(lambda z: jd.simulate(henon, z, None, k).xs[-1])(jnp.asarray(q))
        smin = np.linalg.svd(np.asarray(fwd), compute_uv=False)[-1]
        np.testing.assert_allclose(sigma, -np.log(smin) / k, rtol=1e-9)


def test_backward_ftle_of_an_rnn_map_and_failed_preimages():
    """A tanh RNN (closed-form Jacobian): the preimages found run forward to the point again,
    and the backward FTLE is `−ln σ_min` of the forward Jacobian from the preimage. A point
    outside the map's range (|x| ≥ 1 for tanh) has no preimage: a failed status, NaN."""
    W = jnp.asarray(np.random.default_rng(5).normal(size=(4, 4))) / 2
    rnn = jd.systems.tanh_rnn(W)
    q0 = jnp.array([0.3, -0.2, 0.1, 0.4])
    p = jd.simulate(rnn, q0, None, 3).xs[-1]  # so that three preimages exist
    back = jd.flow_map(rnn, p, None, 0, -3)
    x, V = back.x, back.jacobian
    assert bool(back.success) and int(back.steps) == 3
    np.testing.assert_allclose(np.asarray(x), np.asarray(q0), atol=1e-10)
    fwd = jax.jacfwd(lambda z: jd.simulate(rnn, z, None, 3).xs[-1])(x)
    np.testing.assert_allclose(np.asarray(V), np.linalg.inv(np.asarray(fwd)), rtol=1e-9)
    f = jd.ftle(rnn, jnp.stack([p, jnp.array([1.5, 0.0, 0.0, 0.0])]), None, 0, -3)
    smin = np.linalg.svd(np.asarray(fwd), compute_uv=False)[-1]
    np.testing.assert_allclose(float(f.ftle[0]), -np.log(smin) / 3, rtol=1e-9)
    assert bool(f.success[0]) and not bool(f.success[1]) and bool(jnp.isnan(f.ftle[1]))


@pytest.mark.parametrize("T", [1, 5, 20])
def test_map_diag_ftle_is_ln2(T):
    pts = jnp.asarray(np.random.default_rng(0).normal(size=(7, 2)))
    f = jd.ftle(diagonal_map(), pts, None, 0, T)
    np.testing.assert_allclose(np.asarray(f.ftle), np.log(2.0), rtol=0, atol=1e-14)


def test_plane_in_plane_and_full_stretching():
    # x' = diag(1, −1, 2) x: full-space FTLE 2; in the (x0, x1) plane the stretching is 1.
    flow = jd.Flow(lambda t, x, a: jnp.array([1.0, -1.0, 2.0]) * x)
    p = jd.plane(jnp.array([0.1, 0.2, 0.3]), jnp.array([[2.0, 0.0, 0.0], [1.0, 3.0, 0.0]]),
                 [(-1.0, 1.0), (-1.0, 1.0)], (3, 4))
    np.testing.assert_allclose(np.asarray(p.basis), [[1, 0], [0, 1], [0, 0]], atol=1e-15)
    assert p.points.shape == (3, 4, 3)
    np.testing.assert_allclose(np.asarray(p.project(p.points)), np.asarray(p.coords),
                               atol=1e-14)
    full = jd.ftle(flow, p, None, 0.0, 1.5, dt=0.005)
    inplane = jd.ftle(flow, p, None, 0.0, 1.5, stretching="plane", dt=0.005)
    grid = jd.ftle(flow, p, None, 0.0, 1.5, method="grid", dt=0.005)
    np.testing.assert_allclose(np.asarray(full.ftle), 2.0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(inplane.ftle), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(grid.ftle), 1.0, atol=1e-9)


def test_rnn_with_constant_input_matches_jacobian_of_iterates():
    # The GRU supplies its Jacobian in closed form; the truth is autodiff of `simulate`.
    model = jd.rnn.GRU(2, 6, 1, key=jax.random.PRNGKey(3))
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx_float(a) else a, model)
    u = jnp.array([0.3, -0.2])
    center = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (6,))
    dirs = jax.random.normal(jax.random.PRNGKey(2), (2, 6))
    p = jd.plane(center, dirs, [(-0.5, 0.5), (-0.5, 0.5)], (3, 3))
    T = 8
    pts = jnp.asarray(np.asarray(p.points).reshape(-1, 6))
    C = np.asarray(jax.vmap(jax.jacfwd(lambda x: jd.simulate(model, x, u, T).xs[-1]))(pts))
    s_full = np.log(np.linalg.svd(C, compute_uv=False)[:, 0]) / T
    full = jd.ftle(model, p, u, 0, T)
    np.testing.assert_allclose(np.asarray(full.ftle).reshape(-1), s_full, rtol=1e-12)


def eqx_float(a):
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating)


# ---------------------------------------------------------------------------------------------
# double gyre


def test_double_gyre_exact_gradient_vs_central_differences():
    dg = jd.systems.double_gyre()
    eps = jnp.asarray(0.25)
    # This grid is symmetric under (x, y) → (2 − x, 1 − y), which with t → −t maps the
    # double gyre (t0 = 0) to itself: the backward field is the forward one rotated.
    g = jd.grid([(0.1, 1.9), (0.1, 0.9)], (4, 3))
    pts = np.asarray(g.points).reshape(-1, 2)
    h = 1e-5
    # One system for both directions: `a = (ε, ±1)`, time reversed when −1.
    both = jd.Flow(lambda s, x, a: a[1] * dg(a[1] * s, x, a[0]))
    xs = jnp.asarray(np.concatenate([pts + h * e for e in np.eye(2)]
                                    + [pts - h * e for e in np.eye(2)]))
    fields = {}
    run = jax.vmap(lambda x, a: jd.simulate(both, x, a, t1=15.0, n_save=2, **TIGHT).xs[-1],
                   in_axes=(0, None))
    for T in (15.0, -15.0):
        f = jd.ftle(dg, g, eps, 0.0, T, **TIGHT)
        # Accurate flow maps from `simulate` (the backward one from the reversed system).
        ys = np.asarray(run(xs, (eps, jnp.asarray(np.sign(T))))).reshape(4, len(pts), 2)
        C = np.stack([(ys[0] - ys[2]) / (2 * h), (ys[1] - ys[3]) / (2 * h)], axis=-1)
        sigma = np.log(np.linalg.svd(C, compute_uv=False)[:, 0]) / 15.0
        np.testing.assert_allclose(np.asarray(f.ftle).reshape(-1), sigma, rtol=0, atol=1e-6)
        assert float(np.max(sigma)) > 0.1  # the test points see real stretching
        fields[T] = np.asarray(f.ftle)
    np.testing.assert_allclose(fields[-15.0], fields[15.0][::-1, ::-1], atol=1e-8)


def test_double_gyre_grid_method_near_exact_gradient():
    dg = jd.systems.double_gyre()
    g = jd.grid([(0.0, 2.0), (0.0, 1.0)], (61, 31))
    exact = np.asarray(jd.ftle(dg, g, jnp.asarray(0.25), 0.0, 10.0, dt=0.05).ftle)
    fd = np.asarray(jd.ftle(dg, g, jnp.asarray(0.25), 0.0, 10.0, method="grid", dt=0.05).ftle)
    inner = (slice(1, -1), slice(1, -1))
    rel = np.abs(fd[inner] - exact[inner]) / np.abs(exact[inner])
    assert np.median(rel) < 0.05
    assert 0.0 <= exact[inner].min()


@pytest.mark.slow
def test_grid_method_matches_numbacs():
    """Like with like: numbacs' FTLE (DOP853, rtol 1e-6, atol 1e-8, central differences) and
    `method="grid"` at the same tolerances (Dopri8). Runs where numbacs is installed."""
    nb_flows = pytest.importorskip("numbacs.flows")
    from numbacs.diagnostics import ftle_grid_2D
    from numbacs.integration import flowmap_grid_2D

    nx, ny, T = 101, 51, 15.0
    x, y = np.linspace(0.0, 2.0, nx), np.linspace(0.0, 1.0, ny)
    g = jd.grid([(0.0, 2.0), (0.0, 1.0)], (nx, ny))
    for s in (1.0, -1.0):
        funcptr, params = nb_flows.get_predefined_flow("double_gyre", int_direction=s)[:2]
        fm = flowmap_grid_2D(funcptr, 0.0, s * T, x, y, params, rtol=1e-6, atol=1e-8)
        ref = np.asarray(ftle_grid_2D(fm, s * T, x[1] - x[0], y[1] - y[0]))[1:-1, 1:-1]
        ours = np.asarray(jd.ftle(jd.systems.double_gyre(), g, jnp.asarray(0.25), 0.0, s * T,
                                  method="grid", solver="dopri8", rtol=1e-6,
                                  atol=1e-8).ftle)[1:-1, 1:-1]
        keep = ref > 1e-3
        assert np.median(np.abs(ours[keep] - ref[keep]) / ref[keep]) <= 1e-3


# ---------------------------------------------------------------------------------------------
# ridges and basins


def synthetic_field(theta=0.3):
    """A Gaussian ridge along the line y = θ x + 0.2 (a field built by hand)."""
    g = jd.grid([(0.0, 1.0), (0.0, 1.0)], (41, 37))
    c = np.asarray(g.coords)
    d = (c[..., 1] - theta * c[..., 0] - 0.2) / np.sqrt(1 + theta**2)
    f = jnp.asarray(np.exp(-d**2 / 0.02))
    res = jax.tree_util.tree_map(lambda v: jnp.zeros(f.shape, v.dtype), RESULTS.successful)
    return jd.FTLEField(ftle=f, x0s=g.points, result=res, T=jnp.asarray(1.0), grid=g)


def test_ridges_of_a_known_ridge():
    field = synthetic_field()
    r = field.ridges(percentile=50.0)
    keep = np.asarray(r.valid)
    assert keep.sum() >= 30
    assert np.all(keep[: keep.sum()]) and not keep[keep.sum():].any()
    c = np.asarray(r.coords)[keep]
    dist = np.abs(c[:, 1] - 0.3 * c[:, 0] - 0.2) / np.sqrt(1.09)
    assert dist.max() < 0.005  # sub-grid: the cells are 0.025 wide
    np.testing.assert_allclose(np.asarray(r.x)[keep], c)
    assert np.all(np.isnan(np.asarray(r.coords)[~keep]))


def test_ridge_separates_basins_of_a_bistable_flow():
    flow = bistable()
    g = jd.grid([(-1.0, 1.0), (-1.0, 1.0)], (41, 21))
    field = jd.ftle(flow, g, None, 0.0, 4.0, dt=0.05)
    r = field.ridges(percentile=80.0)
    c = np.asarray(r.coords)[np.asarray(r.valid)]
    assert len(c) >= 10 and np.abs(c[:, 0]).max() < 0.03  # the ridge is x = 0
    pts = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, size=(200, 2)))
    b = jd.basins(flow, pts, None, jnp.array([[-1.0, 0.0], [1.0, 0.0]]), T=20.0, dt=0.05)
    side = np.sign(np.asarray(pts)[:, 0])
    lab = np.asarray(b.label)
    assert np.mean(lab[side < 0] == 0) >= 0.95 and np.mean(lab[side > 0] == 1) >= 0.95


@pytest.mark.slow
def test_decision_rnn_ridge_separates_the_choice_basins(trained_network):
    """The committed GRU-32 trained on PerceptualDecisionMaking holds its choice in two
    attractors under the zero-coherence input with the fixation input on, u = (1, ½, ½) (with
    the fixation input off, (0, ½, ½), it has one attractor). On the plane of the top two
    principal components of its trials, through the midpoint of the attractors, the forward
    FTLE ridge cuts the plane in two, and every side flows to one attractor, a different one
    on each side."""
    ndimage = pytest.importorskip("scipy.ndimage")
    model, _ = trained_network("pdm")
    u = jnp.array([1.0, 0.5, 0.5])
    trials = jax.vmap(lambda c: jd.simulate(model, jnp.zeros(32), jnp.array(
        [1.0, 0.5 + c, 0.5 - c]), 30).xs)(jnp.array([-0.2, 0.2]))
    att = jax.vmap(lambda x: jd.simulate(model, x, u, 300).xs[-1])(trials[:, -1])
    assert float(jnp.linalg.norm(att[0] - att[1])) > 1.0  # two attractors
    X = np.asarray(trials).reshape(-1, 32)
    pcs = np.linalg.svd(X - X.mean(0), full_matrices=False)[2][:2]
    p = jd.plane(0.5 * (att[0] + att[1]), jnp.asarray(pcs), [(-2.5, 2.5), (-2.5, 2.5)],
                 (51, 51))
    field = jd.ftle(model, p, u, 0, 20, stretching="plane")
    ridge = np.asarray(field.ridges(percentile=90.0).coords)
    ridge = ridge[np.all(np.isfinite(ridge), axis=-1)]
    assert len(ridge) >= 20
    b = jd.basins(model, p, u, att, T=300)
    lab = np.asarray(b.label)
    # The sides of the ridge: the connected parts of the plane farther than 0.15 from it.
    coords = np.asarray(p.coords)
    dist = np.min(np.linalg.norm(coords[:, :, None] - ridge[None, None], axis=-1), axis=-1)
    parts, n_parts = ndimage.label(dist > 0.15)
    sides = [parts == j for j in range(1, n_parts + 1) if np.mean(parts == j) > 0.05]
    assert len(sides) == 2
    winners = []
    for side in sides:
        winner = np.bincount(lab[side], minlength=2).argmax()
        assert np.mean(lab[side] == winner) >= 0.95
        winners.append(winner)
    assert sorted(winners) == [0, 1]


# ---------------------------------------------------------------------------------------------
# jit, vmap, grad, chunking, dtypes


def test_jit_and_vmap_over_points_and_args():
    dg = jd.systems.double_gyre()
    pts = jnp.asarray(np.random.default_rng(2).uniform([0, 0], [2, 1], size=(6, 2)))
    run = lambda x, e: jd.ftle(dg, x, e, 0.0, 5.0, dt=0.05).ftle
    eager = run(pts, jnp.asarray(0.25))
    jitted = jax.jit(run)(pts, jnp.asarray(0.25))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-12)
    one = lambda x: run(x[None], jnp.asarray(0.25))[0]
    np.testing.assert_allclose(np.asarray(jax.vmap(one)(pts)), np.asarray(eager), rtol=1e-9)
    eps = jnp.array([0.1, 0.25])
    batched = jax.vmap(lambda e: run(pts, e))(eps)
    for i, e in enumerate(eps):
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(run(pts, e)), rtol=1e-9)


def test_grad_of_mean_ftle_wrt_a_parameter():
    dg = jd.systems.double_gyre()
    pts = jnp.asarray(np.random.default_rng(3).uniform([0.2, 0.2], [1.8, 0.8], size=(5, 2)))

    def mean_ftle(eps):
        return jnp.mean(jd.ftle(dg, pts, eps, 0.0, 4.0, dt=0.1).ftle)

    e = jnp.asarray(0.25)
    grad = float(jax.grad(mean_ftle)(e))
    h = 1e-5
    fd = (float(mean_ftle(e + h)) - float(mean_ftle(e - h))) / (2 * h)
    assert abs(fd) > 1e-3
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_grad_of_mean_ftle_with_adaptive_steps():
    """Reverse mode through the adaptive steps (the step sizes held fixed, as in diffrax)."""
    dg = jd.systems.double_gyre()
    pts = jnp.asarray(np.random.default_rng(4).uniform([0.2, 0.2], [1.8, 0.8], size=(4, 2)))

    def mean_ftle(eps):
        return jnp.mean(jd.ftle(dg, pts, eps, 0.0, 4.0, solver="dopri8", rtol=1e-10,
                                atol=1e-12).ftle)

    e = jnp.asarray(0.25)
    grad = float(jax.jit(jax.grad(mean_ftle))(e))
    h = 1e-5
    fd = (float(mean_ftle(e + h)) - float(mean_ftle(e - h))) / (2 * h)
    assert abs(fd) > 1e-3
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_chunks_and_progress_give_the_same_field():
    dg = jd.systems.double_gyre()
    g = jd.grid([(0.0, 2.0), (0.0, 1.0)], (7, 5))
    kw = dict(method="grid", dt=0.05)
    a = jd.ftle(dg, g, jnp.asarray(0.25), 0.0, 3.0, **kw)
    b = jd.ftle(dg, g, jnp.asarray(0.25), 0.0, 3.0, chunk_size=8, progress=True, **kw)
    np.testing.assert_allclose(np.asarray(b.ftle), np.asarray(a.ftle), rtol=1e-12)
    c = jd.ftle(dg, g, jnp.asarray(0.25), 0.0, 3.0, budget=5_000, **kw)  # a tiny budget
    np.testing.assert_allclose(np.asarray(c.ftle), np.asarray(a.ftle), rtol=1e-12)
    # Adaptive steps: 4 slots refilled over chunks of 32 points, against all points at once.
    for method in ("grid", "autodiff"):
        kw = dict(method=method, solver="dopri8", rtol=1e-8, atol=1e-10)
        a = jd.ftle(dg, g, jnp.asarray(0.25), 0.0, 3.0, chunk_size=35, **kw)
        b = jd.ftle(dg, g, jnp.asarray(0.25), 0.0, 3.0, chunk_size=4, progress=True, **kw)
        np.testing.assert_allclose(np.asarray(b.ftle), np.asarray(a.ftle), rtol=1e-10)


def test_float32_stays_float32():
    g = jd.grid([(-1.0, 1.0), (-1.0, 1.0)], (3, 3), dtype=jnp.float32)
    f = jd.ftle(SADDLE, g, jnp.asarray(1.0, jnp.float32), 0.0, 1.0, dt=0.05)
    assert f.ftle.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(f.ftle), 1.0, atol=1e-4)
    s = jd.lyapunov_spectrum(diagonal_map(), jnp.ones(2, jnp.float32), None, 10)
    assert s.exponents.dtype == jnp.float32


def test_blow_up_is_a_status_not_a_silent_nan():
    blow = jd.Flow(lambda t, x, a: x * x)
    f = jd.ftle(blow, jnp.array([[0.1], [3.0]]), None, 0.0, 1.0, max_steps=200)
    assert bool(f.success[0]) and not bool(f.success[1])
    assert np.isnan(float(f.ftle[1]))
    assert int(f.result._value[1]) != int(RESULTS.successful._value)


# ---------------------------------------------------------------------------------------------
# errors and figures


def test_bad_input_raises():
    g = jd.grid([(-1.0, 1.0), (-1.0, 1.0)], (3, 3))
    with pytest.raises(ValueError, match="`T`"):
        jd.ftle(saddle(), g, ONE, 0.0, 0.0)
    with pytest.raises(ValueError, match="`T`"):
        jd.ftle(saddle(), g, ONE, 0.0)
    with pytest.raises(ValueError, match="`T`"):
        jd.ftle(diagonal_map(), g, None, 0, 2.5)
    with pytest.raises(ValueError, match="`T`"):
        jd.basins(diagonal_map(), g, None, jnp.zeros((1, 2)), T=-2)
    with pytest.raises(ValueError, match="`T`"):
        jd.lyapunov_spectrum(saddle(), jnp.ones(2), ONE, 0.0)
    with pytest.raises(ValueError, match="`bounds`"):
        jd.grid([(0.0, 0.0), (0.0, 1.0)], (3, 3))
    with pytest.raises(ValueError, match="`shape"):
        jd.grid([(0.0, 1.0), (0.0, 1.0)], (3, 1))
    with pytest.raises(ValueError, match="`directions`"):
        jd.plane(jnp.zeros(3), jnp.array([[1.0, 2.0, 0.0], [-2.0, -4.0, 0.0]]),
                 [(-1, 1), (-1, 1)], 5)
    with pytest.raises(ValueError, match="`directions`"):
        jd.plane(jnp.zeros(3), jnp.ones((2, 4)), [(-1, 1), (-1, 1)], 5)
    with pytest.raises(ValueError, match="`directions`"):
        jd.plane(jnp.zeros(3), jnp.ones((3, 3)), [(-1, 1), (-1, 1)], 5)
    with pytest.raises(ValueError, match="`x0s`"):
        jd.ftle(saddle(), jnp.ones(2), ONE, 0.0, 1.0)
    with pytest.raises(ValueError, match="`x0s`"):
        jd.ftle(jd.systems.lorenz(), g, None, 0.0, 1.0)
    with pytest.raises(ValueError, match="`method`"):
        jd.ftle(saddle(), g, ONE, 0.0, 1.0, method="fd")
    with pytest.raises(ValueError, match="Grid"):
        jd.ftle(saddle(), jnp.ones((4, 2)), ONE, 0.0, 1.0, method="grid")
    with pytest.raises(ValueError, match="stretching"):
        p = jd.plane(jnp.zeros(3), jnp.eye(3)[:2], [(-1, 1), (-1, 1)], 3)
        jd.ftle(jd.systems.lorenz(), p, None, 0.0, 1.0, method="grid", stretching="full")
    with pytest.raises(ValueError, match="`k`"):
        jd.lyapunov_spectrum(saddle(), jnp.ones(2), ONE, 1.0, k=3)
    with pytest.raises(ValueError, match="`fixed_points`"):
        jd.basins(saddle(), g, ONE, jnp.ones((2, 3)), T=1.0)
    with pytest.raises(ValueError, match="`field`"):
        jd.ftle_ridges(jd.ftle(saddle(), jnp.ones((4, 2)), ONE, 0.0, 1.0, dt=0.1))


def test_figures_and_summaries():
    flow = bistable()
    g = jd.grid([(-1.0, 1.0), (-1.0, 1.0)], (11, 9))
    field = jd.ftle(flow, g, None, 0.0, 3.0, dt=0.05)
    att = jnp.array([[-1.0, 0.0], [1.0, 0.0]])
    assert field.plot(ridges=True, fixed_points=att) is not None
    b = jd.basins(flow, g, None, att, T=10.0, dt=0.05)
    assert b.label.shape == (11, 9) and b.plot() is not None
    s = jd.lyapunov_spectrum(diagonal_map(), jnp.ones(2), None, 5)
    assert s.plot() is not None
    for obj in (field, field.ridges(), b, s):
        assert type(obj).__name__ in repr(obj)


@pytest.fixture(scope="module")
def gyre_grid_fields():
    """The standard double-gyre FTLE fields (401 × 201 on [0, 2] × [0, 1], t0 = 0, T = ±15,
    DOP853-class steps at numbacs' rtol 1e-6 / atol 1e-8, grid differences)."""
    dg = jd.systems.double_gyre()
    g = jd.grid([(0.0, 2.0), (0.0, 1.0)], (401, 201))
    out = {}
    for T in (15.0, -15.0):
        f = jd.ftle(dg, g, jnp.asarray(0.25), 0.0, T, method="grid", solver="dopri8",
                    rtol=1e-6, atol=1e-8)
        assert bool(jnp.all(f.success))
        out[T] = np.asarray(f.ftle)
    return out


@pytest.mark.slow
def test_double_gyre_grid_field_matches_the_published_numbacs_figures(gyre_grid_fields):
    """In numbacs' output convention (boundary rows and columns 0, negative values 0), against
    numbacs 0.2.0's figures on the same problem: range [0, 0.3815], mean 0.15175
    (shared/research/dsa_tasks_ftle.md)."""
    nb = np.maximum(np.nan_to_num(gyre_grid_fields[15.0]), 0.0)
    nb[[0, -1], :] = 0.0
    nb[:, [0, -1]] = 0.0
    assert nb.min() == 0.0
    assert abs(nb.max() - 0.3815) < 1e-4
    assert abs(nb.mean() - 0.15175) < 1e-5


@pytest.mark.slow
def test_double_gyre_grid_field_matches_the_committed_numbacs_reference(gyre_grid_fields):
    """numbacs 0.2.0's own forward and backward fields on the same problem (every 10th grid
    point, written by `benchmarks/ftle.py --reference`): like with like, the median relative
    difference is at most 1e-3 (measured: about 4e-6)."""
    ref = np.load(Path(__file__).parent / "data" / "ftle_numbacs_reference.npz")
    assert float(ref["T"]) == 15.0 and float(ref["rtol"]) == 1e-6 and float(ref["atol"]) == 1e-8
    for T, key in ((15.0, "forward"), (-15.0, "backward")):
        ours = gyre_grid_fields[T][::10, ::10][1:-1, 1:-1]
        want = np.asarray(ref[key])[1:-1, 1:-1]  # numbacs sets its boundary rows to 0
        keep = want > 1e-3
        assert keep.sum() > 500
        rel = np.abs(ours[keep] - want[keep]) / want[keep]
        assert np.median(rel) <= 1e-3
        assert np.percentile(rel, 95) <= 1e-2
