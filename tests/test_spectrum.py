"""Lyapunov spectra against closed forms (linear flows, flows into stable foci, a CTRNN at its
fixed point: the real parts of the Jacobian's eigenvalues) and published spectra (Lorenz,
Rössler, Hénon), with the trace identity checked to 1e-6 in float64 and 1e-3 relative in
float32; adaptive re-orthonormalisation, statuses, jit, vmap and grad."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn import RESULTS

LORENZ_SUM = -(10.0 + 1.0 + 8.0 / 3.0)


def ok(s):
    return bool(s.result == RESULTS.successful)


# ---------------------------------------------------------------------------------------------
# closed forms: exponents are the real parts of the Jacobian's eigenvalues


@pytest.mark.parametrize("x0", [(0.0, 0.0), (1e-6, 1e-6), (1.0, -2.0)])
def test_linear_flow_from_at_near_and_far_from_the_equilibrium(x0):
    """Was (−1.00, −1.89) for the exact (−1, −3): with the state at rest the steps grew until
    the tangents were wrong."""
    A = jnp.array([[-1.0, 0.5], [0.0, -3.0]])
    flow = jd.Flow(lambda t, x, a: A @ x)
    s = jd.lyapunov_spectrum(flow, jnp.asarray(x0), None, 50.0)
    assert ok(s)
    np.testing.assert_allclose(np.asarray(s.exponents), [-1.0, -3.0], atol=2e-3)
    assert float(s.identity_error) < 1e-6
    np.testing.assert_allclose(float(s.mean_trace), -4.0, atol=1e-9)


def test_linear_focus_is_exact():
    """x' = A x with A = [[−½, 2], [−2, −½]]: e^{At} is e^{−t/2} times a rotation, so both
    exponents are −½ at every time."""
    A = jnp.array([[-0.5, 2.0], [-2.0, -0.5]])
    s = jd.lyapunov_spectrum(jd.Flow(lambda t, x, a: A @ x), jnp.zeros(2), None, 10.0)
    np.testing.assert_allclose(np.asarray(s.exponents), [-0.5, -0.5], atol=1e-7)


def test_lorenz_into_its_stable_focus():
    """ρ = 10: the flow settles on C⁺, whose Jacobian has eigenvalues −0.595 ± 5.7i and −12.48;
    was (−0.0003, −0.494, −0.495)."""
    lor = jd.systems.lorenz(rho=10.0)
    s = jd.lyapunov_spectrum(lor, jnp.ones(3), None, 200.0, transient=50.0)
    eq = np.asarray(lor.equilibria(None))
    c_plus = eq[np.argmax(eq[:, 0])]
    mu = np.linalg.eigvals(np.asarray(jd.jacobian(lor, jnp.asarray(c_plus), None)))
    re = np.sort(mu.real)[::-1]
    assert ok(s)
    lam = np.asarray(s.exponents)
    # The complex pair's two exponents oscillate about its real part as O(1/T); their sum
    # and the real third converge faster.
    np.testing.assert_allclose(lam[:2], re[:2], atol=0.03)
    np.testing.assert_allclose(lam[0] + lam[1], re[0] + re[1], atol=0.01)
    np.testing.assert_allclose(lam[2], re[2], atol=0.01)
    assert float(s.identity_error) < 1e-6


def test_ctrnn_at_its_fixed_point():
    model = jd.rnn.CTRNN(2, 12, 1, key=jr.PRNGKey(3), tau=1.0)
    u = jnp.zeros(2)
    x_star = jd.fixed_points(model, jnp.zeros((1, 12)), u).unique().x[0]
    mu = np.linalg.eigvals(np.asarray(jd.jacobian(model, x_star, u)))
    s = jd.lyapunov_spectrum(model, x_star, u, 200.0)
    assert ok(s)
    np.testing.assert_allclose(np.asarray(s.exponents), np.sort(mu.real)[::-1], atol=0.02)
    np.testing.assert_allclose(float(s.mean_trace), np.sum(mu.real), rtol=1e-10)
    assert float(s.identity_error) < 1e-6


# ---------------------------------------------------------------------------------------------
# published spectra, with the trace identity


def test_lorenz_spectrum():
    s = jd.lyapunov_spectrum(jd.systems.lorenz(), jnp.array([1.0, 1.0, 1.0]), None, 1000.0,
                             transient=50.0, dt=0.01)
    assert ok(s)
    np.testing.assert_allclose(np.asarray(s.exponents), [0.9056, 0.0, -14.5723], atol=0.02)
    assert abs(float(jnp.sum(s.exponents)) - LORENZ_SUM) < 1e-3
    assert s.history.shape == (1000, 3) and s.times.shape == (1000,)
    np.testing.assert_allclose(np.asarray(s.history[-1]), np.asarray(s.exponents))
    assert 2.0 < float(s.kaplan_yorke) < 2.1


def test_lorenz_adaptive_float64_trace_identity():
    s = jd.lyapunov_spectrum(jd.systems.lorenz(), jnp.ones(3), None, 300.0, transient=20.0)
    assert ok(s)
    np.testing.assert_allclose(np.asarray(s.exponents), [0.9056, 0.0, -14.5723], atol=0.05)
    np.testing.assert_allclose(float(s.mean_trace), LORENZ_SUM, atol=1e-9)
    assert float(s.identity_error) < 1e-6
    # As often as the spread (≈ 15.5 per unit time) requires: several QR steps per interval.
    assert int(s.reorthonormalisations) > 3 * 320


def test_rossler_spectrum_and_trace_identity():
    """tr J = a + x − c, so the mean trace depends on the orbit; it was −5.261 at simulate's
    tolerances against the exponents' −5.3227 before the tangents were controlled."""
    s = jd.lyapunov_spectrum(jd.systems.rossler(), jnp.array([1.0, 1.0, 0.0]), None, 1000.0,
                             transient=50.0)
    assert ok(s)
    np.testing.assert_allclose(np.asarray(s.exponents), [0.0714, 0.0, -5.3943], atol=0.015)
    assert float(s.identity_error) < 1e-6


def test_henon_spectrum():
    s = jd.lyapunov_spectrum(jd.systems.henon(), jnp.array([0.1, 0.1]), None, 20_000,
                             transient=100)
    np.testing.assert_allclose(np.asarray(s.exponents), [0.41922, -1.62319], atol=0.005)
    np.testing.assert_allclose(float(jnp.sum(s.exponents)), np.log(0.3), atol=1e-12)
    np.testing.assert_allclose(float(s.mean_trace), np.log(0.3), atol=1e-12)
    assert float(s.identity_error) < 1e-6


@pytest.mark.parametrize("T", [40.0, 100.0])
def test_lorenz_in_float32_at_the_defaults(T):
    """Was NaN (T = 100, status blaming the state) and a sum of −13.51 (T = 40, 'successful')."""
    s = jd.lyapunov_spectrum(jd.systems.lorenz(), jnp.ones(3, jnp.float32), None, T,
                             transient=50.0)
    assert s.exponents.dtype == jnp.float32 and ok(s)
    assert np.all(np.isfinite(np.asarray(s.exponents)))
    # Finite-time averages over T = 40 still fluctuate by ~0.1 about the limit.
    np.testing.assert_allclose(np.asarray(s.exponents), [0.9056, 0.0, -14.5723],
                               atol=0.06 if T >= 100 else 0.15)
    assert abs(float(jnp.sum(s.exponents)) - LORENZ_SUM) < 1e-3 * abs(LORENZ_SUM)
    assert float(s.identity_error) < 1e-3 * abs(LORENZ_SUM)


def test_henon_and_rossler_in_float32():
    h = jd.lyapunov_spectrum(jd.systems.henon(), jnp.array([0.1, 0.1], jnp.float32), None,
                             5000, transient=100)
    np.testing.assert_allclose(np.asarray(h.exponents), [0.41922, -1.62319], atol=0.01)
    assert float(h.identity_error) < 1e-3 * abs(np.log(0.3))
    r = jd.lyapunov_spectrum(jd.systems.rossler(), jnp.array([1.0, 1.0, 0.0], jnp.float32),
                             None, 500.0, transient=50.0)
    assert ok(r)
    assert float(r.identity_error) < 1e-3 * abs(float(r.mean_trace))
    np.testing.assert_allclose(np.asarray(r.exponents), [0.0714, 0.0, -5.3943], atol=0.03)


# ---------------------------------------------------------------------------------------------
# statuses and options


def test_a_failed_identity_is_a_status():
    """Tangents riding on the state's steps: the exponents' sum misses the mean trace by far
    more than the tolerance allows, and the result says so (the numbers are kept)."""
    s = jd.lyapunov_spectrum(jd.systems.rossler(), jnp.array([1.0, 1.0, 0.0]), None, 200.0,
                             transient=20.0, integrator=jd.Adaptive(rtol=1e-6, tangents="ride"))
    assert bool(s.result == RESULTS.trace_identity_failed)
    assert float(s.identity_error) > 1e-3 and np.all(np.isfinite(np.asarray(s.exponents)))
    assert "trace" in repr(s)


def test_spectrum_of_a_linear_flow_and_k():
    flow = jd.Flow(lambda t, x, a: jnp.array([0.5, -1.0, -3.0]) * x)
    s = jd.lyapunov_spectrum(flow, jnp.ones(3), None, 20.0, interval=0.5, dt=0.01)
    np.testing.assert_allclose(np.asarray(s.exponents), [0.5, -1.0, -3.0], atol=1e-7)
    s2 = jd.lyapunov_spectrum(flow, jnp.ones(3), None, 20.0, k=1, interval=0.5, dt=0.01)
    np.testing.assert_allclose(np.asarray(s2.exponents), [0.5], atol=1e-7)
    assert bool(jnp.isnan(s2.mean_trace)) and ok(s2)  # no identity for k < n


def test_a_spread_beyond_the_interval_is_reorthonormalised_within_it():
    """Exponents 2 and −40 (non-orthogonal eigenvectors) over interval 1: the tangents would
    lose 42 e-folds (18 digits) of independence in one interval; the stretches are shortened
    so that about one decade is lost at a time, and never more than three."""
    A = jnp.array([[2.0, 10.0], [0.0, -40.0]])
    flow = jd.Flow(lambda t, x, a: A @ x)
    s = jd.lyapunov_spectrum(flow, jnp.array([0.3, 0.4]), None, 10.0, transient=2.0)
    np.testing.assert_allclose(np.asarray(s.exponents), [2.0, -40.0], rtol=1e-6)
    # No stretch lost more than three decades (else it is done again, shorter).
    assert 12 * 42 / (3 * np.log(10)) <= int(s.reorthonormalisations) < 1000


def test_spectrum_vmap_over_args():
    rhos = jnp.array([28.0, 30.0])
    lor = jd.systems.lorenz()
    run = lambda r: jd.lyapunov_spectrum(lor, jnp.ones(3), r, 20.0, dt=0.01).exponents
    batched = jax.vmap(run)(rhos)
    for i, r in enumerate(rhos):
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(run(r)), rtol=1e-10)


def test_jit_vmap_over_starts_and_grad_wrt_a_parameter():
    flow = jd.Flow(lambda t, x, p: jnp.stack([-p * x[0] + x[1], -3.0 * p * x[1]]))
    x0s = jnp.array([[1.0, 0.5], [0.0, 0.0], [-2.0, 1.0]])
    run = jax.jit(jax.vmap(lambda x: jd.lyapunov_spectrum(flow, x, jnp.asarray(1.0),
                                                          20.0).exponents))
    np.testing.assert_allclose(np.asarray(run(x0s)), [[-1.0, -3.0]] * 3, atol=1e-3)
    # Reverse mode through the re-orthonormalised stretches (the linear flow's exponents are
    # −p and −3p at every time once the tangents have aligned).
    g = jax.jacrev(lambda p: jd.lyapunov_spectrum(flow, x0s[0], p, 4.0,
                                                  transient=2.0).exponents)(jnp.asarray(1.0))
    np.testing.assert_allclose(np.asarray(g), [-1.0, -3.0], atol=1e-3)
