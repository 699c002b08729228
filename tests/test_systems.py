"""Tests of jaxdyn.systems against closed forms, hand-written Jacobians and a NumPy loop."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

import jaxdyn as jd
from jaxdyn import systems as S
from jaxdyn._system import AbstractFlow, AbstractMap

RNG = np.random.default_rng(1234)

ALL = {
    "lorenz": (S.lorenz, AbstractFlow, 3),
    "rossler": (S.rossler, AbstractFlow, 3),
    "van_der_pol": (S.van_der_pol, AbstractFlow, 2),
    "duffing": (S.duffing, AbstractFlow, 2),
    "double_gyre": (S.double_gyre, AbstractFlow, 2),
    "brusselator": (S.brusselator, AbstractFlow, 2),
    "saddle_node": (S.saddle_node, AbstractFlow, 1),
    "pitchfork": (S.pitchfork, AbstractFlow, 1),
    "cusp": (S.cusp, AbstractFlow, 1),
    "hopf": (S.hopf, AbstractFlow, 2),
    "bratu": (lambda: S.bratu(n=5), AbstractFlow, 5),
    "beer_ctrnn_1": (lambda: S.beer_ctrnn(1), AbstractFlow, 1),
    "beer_ctrnn_2": (S.beer_ctrnn, AbstractFlow, 2),
    "logistic": (S.logistic, AbstractMap, 1),
    "henon": (S.henon, AbstractMap, 2),
    "tanh_rnn": (lambda: S.tanh_rnn(0.5 * np.eye(3)), AbstractMap, 3),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_kind_state_size_and_simulate(name):
    make, kind, n = ALL[name]
    system = make()
    assert isinstance(system, kind)
    assert system.state_size == n and isinstance(system.state_size, int)
    x0 = jnp.full((n,), 0.3)
    out = system(0.0, x0, None)
    assert out.shape == (n,) and out.dtype == jnp.float64
    if kind is AbstractMap or name in ("lorenz", "duffing"):  # integration compiles slowly
        traj = jd.simulate(system, x0, None, 3 if kind is AbstractMap else 0.5)
        assert traj.xs.shape[-1] == n and bool(traj.success)


# --- Jacobians against hand-written ones -------------------------------------------------


def test_lorenz_jacobian_analytic():
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0
    system = S.lorenz(sigma, rho, beta)
    for x, y, z in RNG.normal(scale=10.0, size=(5, 3)):
        want = np.array([[-sigma, sigma, 0.0], [rho - z, -1.0, -x], [y, x, -beta]])
        got = jd.jacobian(system, jnp.array([x, y, z]))
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    # The same through `args`.
    got = jd.jacobian(system, jnp.array([1.0, 2.0, 3.0]), 5.0)
    np.testing.assert_allclose(got[1, 0], 5.0 - 3.0, rtol=1e-14)


def test_van_der_pol_jacobian_analytic():
    mu = 1.7
    system = S.van_der_pol(mu)
    for x, y in RNG.normal(scale=2.0, size=(5, 2)):
        want = np.array([[0.0, 1.0], [-2 * mu * x * y - 1.0, mu * (1 - x * x)]])
        got = jd.jacobian(system, jnp.array([x, y]))
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_tanh_map_jacobian_analytic():
    n = 4
    W = RNG.normal(size=(n, n)) / 2
    b = RNG.normal(size=n)
    system = S.tanh_rnn(W, b)
    for _ in range(3):
        x, u = RNG.normal(size=n), RNG.normal(size=n)
        y = np.tanh(W @ x + b + u)
        want = (1 - y * y)[:, None] * W
        np.testing.assert_allclose(jd.jacobian(system, jnp.asarray(x), jnp.asarray(u)), want,
                                   rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(system(0, jnp.asarray(x), jnp.asarray(u)), y, rtol=1e-15)


# --- Hénon: bit-for-bit against NumPy -----------------------------------------------------


def test_henon_simulate_matches_numpy_loop_exactly():
    x0 = np.array([0.1, 0.2])
    traj = jd.simulate(S.henon(), jnp.asarray(x0), None, 1000)
    assert traj.xs.shape == (1001, 2)
    want = np.empty((1001, 2))
    want[0] = x0
    x, y = x0
    for k in range(1, 1001):
        x, y = 1.0 - 1.4 * x * x + y, 0.3 * x
        want[k] = x, y
    np.testing.assert_array_equal(np.asarray(traj.xs), want)
    # The orbit is on the attractor, not a trivial one that would match regardless.
    assert np.ptp(want[500:, 0]) > 2.0


def test_henon_update_matches_numpy_batched():
    X = RNG.uniform(-1.5, 1.5, size=(2000, 2))
    got = np.asarray(jax.jit(jax.vmap(lambda x: S.henon()(0, x, None)))(jnp.asarray(X)))
    np.testing.assert_array_equal(got[:, 0], 1.0 - 1.4 * X[:, 0] * X[:, 0] + X[:, 1])
    np.testing.assert_array_equal(got[:, 1], 0.3 * X[:, 0])


# --- Closed forms -------------------------------------------------------------------------


def test_lorenz_equilibria():
    system = S.lorenz(rho=28.0)
    eq = system.equilibria()
    c = math.sqrt(8.0 / 3.0 * 27.0)
    np.testing.assert_allclose(eq, [[0, 0, 0], [c, c, 27], [-c, -c, 27]], rtol=1e-15)
    for x in eq:
        np.testing.assert_allclose(system(0, x, None), 0.0, atol=1e-12)
    # Through args, and C± do not exist below rho = 1.
    for x in system.equilibria(13.0):
        np.testing.assert_allclose(system(0, x, 13.0), 0.0, atol=1e-12)
    low = system.equilibria(0.5)
    assert np.all(np.isfinite(low[0])) and np.all(np.isnan(low[1:, 0]))


def test_rossler_equilibria():
    system = S.rossler()
    eq = system.equilibria()
    for x in eq:
        np.testing.assert_allclose(system(0, x, None), 0.0, atol=1e-12)
    assert abs(float(eq[0, 2])) < abs(float(eq[1, 2]))


def test_van_der_pol_equilibrium_hopf():
    system = S.van_der_pol(0.5)
    x = system.equilibria()[0]
    np.testing.assert_allclose(system(0, x, None), 0.0)
    ev = np.linalg.eigvals(jd.jacobian(system, x))
    np.testing.assert_allclose(np.sort(ev.real), [0.25, 0.25], rtol=1e-14)


def test_brusselator_equilibrium_and_hopf_point():
    system = S.brusselator(a=1.5, b=2.0)
    eq = system.equilibria()
    np.testing.assert_allclose(eq, [[1.5, 2.0 / 1.5]], rtol=1e-15)
    np.testing.assert_allclose(system(0, eq[0], None), 0.0, atol=1e-14)
    b_h = system.hopf_parameter()
    np.testing.assert_allclose(b_h, 1 + 1.5**2)
    ev = np.linalg.eigvals(jd.jacobian(system, system.equilibria(b_h)[0], b_h))
    np.testing.assert_allclose(np.sort_complex(ev), [-1.5j, 1.5j], atol=1e-12)


def test_hopf_eigenvalues_and_cycle():
    mu, omega = -0.3, 2.0
    system = S.hopf(mu, omega, l1=-1.0)
    ev = np.linalg.eigvals(jd.jacobian(system, system.equilibria()[0]))
    np.testing.assert_allclose(np.sort_complex(ev), [mu - 1j * omega, mu + 1j * omega],
                               rtol=1e-14)
    # Supercritical: a cycle for mu > 0, where the field on it is a pure rotation at speed ω.
    assert np.isnan(system.cycle_radius())
    r = system.cycle_radius(0.2)
    np.testing.assert_allclose(system(0, jnp.array([r, 0.0]), 0.2), [0.0, omega * r],
                               atol=1e-14)
    sub = S.hopf(mu, omega, l1=1.0)
    assert np.isfinite(sub.cycle_radius()) and np.isnan(sub.cycle_radius(0.2))


@pytest.mark.parametrize("l1", [-1.0, 0.7])
def test_hopf_first_lyapunov_coefficient(l1):
    # The invariant formula with unit q and <p, q> = 1; with no quadratic terms at the
    # origin, l1 = Re <p, C(q, q, conj q)> / (2ω).
    omega = 1.3
    system = S.hopf(0.0, omega, l1)
    f = lambda x: system(0, x, None)
    x0 = jnp.zeros(2)
    A = np.asarray(jd.jacobian(system, x0))
    w, V = np.linalg.eig(A)
    q = V[:, np.argmax(w.imag)]
    q = q / np.linalg.norm(q)
    wt, P = np.linalg.eig(A.T)
    p = P[:, np.argmin(wt.imag)]
    p = p / np.conj(np.vdot(p, q))
    T = np.asarray(jax.jacfwd(jax.jacfwd(jax.jacfwd(f)))(x0))
    C = np.einsum("ijkl,j,k,l->i", T, q, q, np.conj(q))
    np.testing.assert_allclose(np.vdot(p, C).real / (2 * omega), l1, rtol=1e-12)


def test_saddle_node_and_pitchfork_equilibria():
    sn = S.saddle_node(-4.0)
    eq = sn.equilibria()
    np.testing.assert_allclose(eq[:, 0], [-2.0, 2.0])
    slopes = [float(jd.jacobian(sn, x)[0, 0]) for x in eq]
    assert slopes[0] < 0 < slopes[1]
    assert np.all(np.isnan(sn.equilibria(1.0)))
    sup = S.pitchfork(2.0)
    np.testing.assert_allclose(sup.equilibria()[:, 0], [0.0, -math.sqrt(2), math.sqrt(2)])
    for x in sup.equilibria():
        np.testing.assert_allclose(sup(0, x, None), 0.0, atol=1e-14)
    sub = S.pitchfork(-2.0, subcritical=True)
    np.testing.assert_allclose(sub.equilibria()[:, 0], [0.0, -math.sqrt(2), math.sqrt(2)])
    np.testing.assert_allclose(sub(0, jnp.array([1.0]), None), [-2.0 + 1.0])
    assert np.all(np.isnan(sup.equilibria(-1.0)[1:]))


@pytest.mark.parametrize("a,b", [(0.0, 1.0), (0.3, 1.0), (-0.3, 2.0), (1.0, 1.0), (0.5, -1.0),
                                 (-2.0, 0.5), (0.0, 0.0)])
def test_cusp_equilibria_against_numpy_roots(a, b):
    system = S.cusp()
    eq = np.asarray(system.equilibria(jnp.array([a, b])))[:, 0]
    roots = np.roots([-1.0, 0.0, b, a])
    # Distinct real roots (the cusp point a = b = 0 is a triple root, reported once).
    real = np.sort(roots[np.abs(roots.imag) < 1e-7].real)
    real = real[np.concatenate([[True], np.diff(real) > 1e-6])]
    finite = eq[np.isfinite(eq)]
    assert len(finite) == len(real) == (3 if 4 * b**3 > 27 * a**2 else 1)
    np.testing.assert_allclose(finite, real, atol=1e-7)
    for x in finite:
        np.testing.assert_allclose(system(0, jnp.array([x]), jnp.array([a, b])), 0.0,
                                   atol=1e-12)
    np.testing.assert_allclose(S.cusp(a, b)(0, jnp.array([0.4]), None),
                               [a + b * 0.4 - 0.4**3], rtol=1e-14)


def test_cusp_equilibria_gradient_finite():
    # Inside the cusp (three roots) and outside (one): no NaN leaks from the other branch.
    grad = jax.jit(jax.vmap(jax.grad(lambda ab: jnp.nansum(S.cusp().equilibria(ab)))))
    g = grad(jnp.array([[0.2, 1.0], [1.0, 0.5], [0.3, -1.0]]))
    assert np.all(np.isfinite(g))


def test_logistic_and_henon_fixed_points():
    for r in (2.5, 3.2):
        system = S.logistic(r)
        x = system.equilibria()[1]
        np.testing.assert_allclose(x, [1 - 1 / r], rtol=1e-15)
        np.testing.assert_allclose(system(0, x, None), x, rtol=1e-14)
        np.testing.assert_allclose(jd.jacobian(system, x)[0, 0], 2 - r, rtol=1e-13)
    henon = S.henon()
    for x in henon.equilibria():
        np.testing.assert_allclose(henon(0, x, None), x, rtol=1e-13)
        want = [[-2 * 1.4 * float(x[0]), 1.0], [0.3, 0.0]]
        np.testing.assert_allclose(jd.jacobian(henon, x), want, rtol=1e-14)


def test_double_gyre_against_formula():
    A, eps, om = 0.1, 0.25, 0.2 * math.pi
    system = S.double_gyre()
    for t, x, y in [(0.0, 0.3, 0.4), (1.7, 1.2, 0.9), (6.0, 1.9, 0.1), (2.5, 1.0, 0.5)]:
        s = eps * math.sin(om * t)
        f = s * x * x + (1 - 2 * s) * x
        dfdx = 2 * s * x + 1 - 2 * s
        want = [-math.pi * A * math.sin(math.pi * f) * math.cos(math.pi * y),
                math.pi * A * math.cos(math.pi * f) * math.sin(math.pi * y) * dfdx]
        got = system(t, jnp.array([x, y]), None)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)
        # Velocity = (−∂ψ/∂y, ∂ψ/∂x) of the stream function.
        dpsi = jax.grad(lambda z: system.stream_function(t, z))(jnp.array([x, y]))
        np.testing.assert_allclose(got, [-dpsi[1], dpsi[0]], rtol=1e-12, atol=1e-16)
    # No flow through the walls of [0, 2] × [0, 1].
    for t in (0.0, 3.0):
        for x, y, i in [(0.0, 0.3, 0), (2.0, 0.7, 0), (0.6, 0.0, 1), (1.4, 1.0, 1)]:
            assert abs(float(system(t, jnp.array([x, y]), None)[i])) < 1e-15


def test_duffing_against_formula():
    system = S.duffing(delta=0.2, alpha=-1.0, beta=1.0, gamma=0.3, omega=1.4)
    t, x, v = 0.9, 0.7, -0.4
    want = [v, -0.2 * v + x - x**3 + 0.3 * math.cos(1.4 * t)]
    np.testing.assert_allclose(system(t, jnp.array([x, v]), None), want, rtol=1e-14)
    np.testing.assert_allclose(system.period, 2 * math.pi / 1.4)


def test_bratu_laplacian_and_field():
    n = 7
    system = S.bratu(n=n, lam=2.0)
    h = 1.0 / (n + 1)
    A = (np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1))
    np.testing.assert_allclose(system.laplacian(), A / h**2, rtol=1e-15)
    np.testing.assert_allclose(system.grid(), h * np.arange(1, n + 1), rtol=1e-15)
    u = RNG.normal(size=n)
    np.testing.assert_allclose(system(0, jnp.asarray(u), None), A @ u / h**2 + 2.0 * np.exp(u),
                               rtol=1e-12)
    np.testing.assert_allclose(system(0, jnp.asarray(u), 0.0), A @ u / h**2, rtol=1e-12)


@jax.jit
def _bratu_newton(system, lam):
    def step(_, u):
        return u - jnp.linalg.solve(jd.jacobian(system, u, lam), system(0, u, lam))

    return jax.lax.fori_loop(0, 20, step, jnp.zeros(system.state_size))


def test_bratu_equilibrium_converges_to_continuum_solution():
    lam = 1.0
    theta = brentq(lambda th: th - math.sqrt(2 * lam) * math.cosh(th / 4), 0.0, 4.79)
    exact = lambda x: -2 * np.log(np.cosh((x - 0.5) * theta / 2) / math.cosh(theta / 4))
    errors = []
    for n in (15, 31):
        system = S.bratu(n=n)
        u = _bratu_newton(system, lam)
        np.testing.assert_allclose(system(0, u, lam), 0.0, atol=1e-9)
        errors.append(np.max(np.abs(np.asarray(u) - exact(np.asarray(system.grid())))))
    assert errors[1] < 1e-3
    assert 3.5 < errors[0] / errors[1] < 4.5  # second order in h


def test_bratu_critical_lambda():
    res = minimize_scalar(lambda th: -th**2 / (2 * math.cosh(th / 4) ** 2), bounds=(1, 10),
                          method="bounded", options={"xatol": 1e-10})
    np.testing.assert_allclose(-res.fun, S.BRATU_CRITICAL_LAMBDA, rtol=1e-12)
    np.testing.assert_allclose(S.BRATU_CRITICAL_LAMBDA, 3.51383, atol=1e-5)


def test_beer_ctrnn_center_crossing_defaults():
    two = S.beer_ctrnn()
    W = np.array([[4.5, 1.0], [-1.0, 4.5]])
    np.testing.assert_allclose(two.theta, -0.5 * W.sum(axis=1))
    c = two.center()
    np.testing.assert_allclose(two(0, c, None), 0.0, atol=1e-15)
    J = jd.jacobian(two, c)
    np.testing.assert_allclose(J, W / 4 - np.eye(2), rtol=1e-14)
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(J)),
                               [0.125 - 0.25j, 0.125 + 0.25j], rtol=1e-13)
    # Beer's equation written out, with an input through args and time constants.
    net = S.beer_ctrnn(2, W=W, tau=[1.0, 2.0])
    y, inp = np.array([0.3, -1.2]), np.array([0.5, -0.25])
    sig = 1 / (1 + np.exp(-(y + net.theta)))
    want = (-y + W @ sig + inp) / np.array([1.0, 2.0])
    np.testing.assert_allclose(net(0, jnp.asarray(y), jnp.asarray(inp)), want, rtol=1e-14)
    # One neuron: the center is an unstable equilibrium between two stable ones.
    one = S.beer_ctrnn(1)
    assert float(jd.jacobian(one, one.center())[0, 0]) == pytest.approx(0.5)
    f = lambda y: float(one(0, jnp.array([y]), None)[0])
    for lo, hi in [(-1.0, 2.0), (4.0, 7.0)]:  # the field changes sign on each bracket
        y = brentq(f, lo, hi, xtol=1e-14)
        assert float(jd.jacobian(one, jnp.array([y]))[0, 0]) < 0


# --- The args convention ------------------------------------------------------------------

OVERRIDES = [
    (S.lorenz, {"rho": 20.0}, 20.0),
    (S.rossler, {"c": 4.0}, 4.0),
    (S.van_der_pol, {"mu": 2.5}, 2.5),
    (S.duffing, {"gamma": 0.2}, 0.2),
    (S.double_gyre, {"epsilon": 0.1}, 0.1),
    (S.brusselator, {"b": 1.5}, 1.5),
    (S.saddle_node, {"r": 0.5}, 0.5),
    (S.pitchfork, {"r": -0.5}, -0.5),
    (S.cusp, {"a": 0.2, "b": -0.7}, jnp.array([0.2, -0.7])),
    (S.hopf, {"mu": -0.4}, -0.4),
    (lambda **kw: S.bratu(n=4, **kw), {"lam": 2.5}, 2.5),
    (S.beer_ctrnn, {"I": [0.5, -1.0]}, jnp.array([0.5, -1.0])),
    (S.logistic, {"r": 2.9}, 2.9),
    (S.henon, {"a": 1.2}, 1.2),
    (lambda **kw: S.tanh_rnn(np.eye(2), **kw), {"b": [0.3, -0.2]}, jnp.array([0.3, -0.2])),
]


@pytest.mark.parametrize("make,kwargs,args", OVERRIDES)
def test_args_override_equals_stored_parameter(make, kwargs, args):
    default, stored = make(), make(**kwargs)
    x = jnp.linspace(0.2, 0.6, default.state_size)
    np.testing.assert_array_equal(default(1.3, x, args), stored(1.3, x, None))
    assert not np.array_equal(default(1.3, x, None), stored(1.3, x, None))


def test_args_wrong_shape_raises():
    with pytest.raises(ValueError, match="lorenz: `args` is rho and must be a scalar"):
        S.lorenz()(0, jnp.ones(3), jnp.ones(2))
    with pytest.raises(ValueError, match=r"cusp: `args` is the pair \(a, b\).*shape \(2,\)"):
        S.cusp()(0, jnp.ones(1), 0.5)
    with pytest.raises(ValueError, match="beer_ctrnn: `args` is the external input"):
        S.beer_ctrnn()(0, jnp.ones(2), jnp.ones(3))


# --- jit, vmap, grad, dtypes --------------------------------------------------------------


def test_vmap_and_jit_over_args():
    system = S.lorenz()
    x = jnp.array([1.0, -2.0, 3.0])
    rhos = jnp.linspace(0.5, 30.0, 5)
    batched = jax.jit(jax.vmap(lambda r: system(0.0, x, r)))(rhos)
    loop = np.stack([S.lorenz(rho=float(r))(0.0, x, None) for r in rhos])
    np.testing.assert_allclose(batched, loop, rtol=1e-15)
    eqs = jax.vmap(system.equilibria)(rhos)
    assert eqs.shape == (5, 3, 3)
    np.testing.assert_allclose(eqs[:, 1, 2], rhos - 1)
    # A batch of input vectors for the CTRNN, and of Hénon parameters over a trajectory.
    inputs = jnp.stack([jnp.zeros(2), jnp.ones(2), -jnp.ones(2)])
    out = jax.vmap(lambda u: S.beer_ctrnn()(0.0, jnp.zeros(2), u))(inputs)
    np.testing.assert_allclose(out[1] - out[0], 1.0, rtol=1e-14)
    xs = jax.vmap(lambda a: jd.simulate(S.henon(), jnp.zeros(2), a, 10).xs)(jnp.array([1.0, 1.2]))
    assert xs.shape == (2, 11, 2)


def test_no_recompile_for_new_parameter_values():
    traces = []

    @eqx.filter_jit
    def field(system, x):
        traces.append(None)
        return system(0.0, x, None)

    x = jnp.ones(3)
    field(S.lorenz(rho=20.0), x)
    field(S.lorenz(rho=30.0, sigma=9.0), x)
    assert len(traces) == 1


def test_grad_wrt_parameters_finite_and_correct():
    x = jnp.array([1.0, 2.0, 3.0])
    # ∂f/∂rho = (0, x, 0), through the factory and through args.
    g = jax.grad(lambda r: S.lorenz(rho=r)(0.0, x, None)[1])(28.0)
    np.testing.assert_allclose(g, 1.0)
    g = jax.jacfwd(lambda r: S.lorenz()(0.0, x, r))(28.0)
    np.testing.assert_allclose(g, [0.0, 1.0, 0.0])
    # d/dρ of C+'s x-coordinate √(β(ρ−1)) is β / (2√(β(ρ−1))).
    g = jax.grad(lambda r: S.lorenz().equilibria(r)[1, 0])(28.0)
    np.testing.assert_allclose(g, (8 / 3) / (2 * math.sqrt(8 / 3 * 27)), rtol=1e-14)
    # Gradient with respect to every stored parameter (a module's array leaves).
    grads = eqx.filter_grad(lambda s: jnp.sum(s(0.4, jnp.array([0.3, 0.6]), None) ** 2))(
        S.double_gyre())
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(grads))
    g = jax.grad(lambda lam: jnp.sum(S.bratu(n=4)(0.0, jnp.ones(4), lam)))(1.0)
    np.testing.assert_allclose(g, 4 * math.e, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(ALL))
def test_float32_state_keeps_float32(name):
    make, _, n = ALL[name]
    out = make()(jnp.float32(0.5), jnp.full((n,), 0.3, jnp.float32), None)
    assert out.dtype == jnp.float32


# --- Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: S.lorenz(rho=[1.0, 2.0]), r"lorenz: `rho` must be a scalar; got an array of shape"),
    (lambda: S.lorenz(sigma=float("nan")), "lorenz: `sigma` must be finite"),
    (lambda: S.van_der_pol(mu="big"), "van_der_pol: `mu` must be a real number or array"),
    (lambda: S.van_der_pol(mu=1 + 2j), "van_der_pol: `mu` must be real"),
    (lambda: S.rossler(a=0.0), "rossler: `a` must be nonzero"),
    (lambda: S.duffing(omega=-1.0), "duffing: `omega` must be > 0"),
    (lambda: S.brusselator(a=0.0), "brusselator: `a` must be > 0"),
    (lambda: S.hopf(omega=0.0), "hopf: `omega` must be > 0"),
    (lambda: S.pitchfork(subcritical="yes"), "pitchfork: `subcritical` must be True or False"),
    (lambda: S.bratu(n=0), r"bratu: `n` must be an integer >= 1; got 0"),
    (lambda: S.bratu(n=2.5), r"bratu: `n` must be an integer >= 1; got 2.5"),
    (lambda: S.tanh_rnn(np.ones((2, 3))), r"tanh_rnn: `W` must be a square .* got shape \(2, 3\)"),
    (lambda: S.tanh_rnn(np.ones(3)), r"tanh_rnn: `W` must be a square"),
    (lambda: S.tanh_rnn(np.eye(2), b=np.ones(3)), r"tanh_rnn: `b` must be an array of shape"),
    (lambda: S.beer_ctrnn(3), "beer_ctrnn: default weights exist for n = 1 or 2; got n=3"),
    (lambda: S.beer_ctrnn(2, W=np.eye(3)), r"beer_ctrnn: `W` must be an array of shape \(2, 2\)"),
    (lambda: S.beer_ctrnn(tau=[1.0, -1.0]), "beer_ctrnn: `tau` must be > 0"),
    (lambda: S.logistic(r=0.0), "logistic: `r` must be nonzero"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_factories_accept_tracers():
    # Validation of values is skipped for traced parameters, so a factory works inside jit.
    out = jax.jit(lambda r: S.logistic(r)(0, jnp.array([0.5]), None))(3.0)
    np.testing.assert_allclose(out, [0.75])


# ---------------------------------------------------------------------------------------------
# sin(πx) and cos(πx) in vectorisable arithmetic (the double gyre's trigonometry)


def test_sincospi_is_within_two_ulps_and_exact_at_zeros():
    mpmath = pytest.importorskip("mpmath")
    from jaxdyn.systems._trig import sincospi

    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-20, 20, 1500), np.arange(-6, 6.5, 0.5),
                        rng.uniform(-1e-4, 1e-4, 50), [1e-300, 0.25, -0.75, 1e6 + 0.5]])
    s, c = map(np.asarray, jax.jit(sincospi)(jnp.asarray(x)))
    mpmath.mp.prec = 113
    true_s = np.array([float(mpmath.sinpi(mpmath.mpf(v))) for v in x])
    true_c = np.array([float(mpmath.cospi(mpmath.mpf(v))) for v in x])
    for got, want in ((s, true_s), (c, true_c)):
        zero = want == 0
        assert np.all(got[zero] == 0)  # integers and half-integers exactly
        ulps = np.abs(got[~zero] - want[~zero]) / np.spacing(np.abs(want[~zero]))
        assert ulps.max() <= 2
    ds, dc = jax.vmap(jax.grad(lambda v: sincospi(v)[0]))(jnp.asarray(x[:20])), \
        jax.vmap(jax.grad(lambda v: sincospi(v)[1]))(jnp.asarray(x[:20]))
    np.testing.assert_allclose(np.asarray(ds), np.pi * np.cos(np.pi * x[:20]), atol=1e-12)
    np.testing.assert_allclose(np.asarray(dc), -np.pi * np.sin(np.pi * x[:20]), atol=1e-12)
    x32 = x[:20].astype(np.float32)
    s32 = sincospi(jnp.asarray(x32))
    assert s32[0].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(s32[0]), np.sin(np.pi * x32.astype(np.float64)),
                               atol=3e-7)
    assert bool(jnp.all(jnp.isnan(jnp.stack(sincospi(jnp.array([jnp.inf, jnp.nan]))))))
