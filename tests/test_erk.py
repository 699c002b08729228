"""The batch-native embedded Runge–Kutta pair (`jaxdyn._integrate._erk`): closed forms,
diffrax on the same tableau and tolerances, refilled slots, statuses, vmap and reverse-mode
gradients."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import jaxdyn as jd
from jaxdyn import RESULTS
from jaxdyn._integrate._erk import embedded_pair, split
from jaxdyn._integrate._tableau import tableau_of

DOPRI8 = tableau_of(diffrax.Dopri8())
TSIT5 = tableau_of(diffrax.Tsit5())


def flow_maps(*args, **kwargs):
    y, res, steps, _ = embedded_pair(*args, **kwargs)
    return y, res, steps
A = jnp.array([[-0.3, 2.0, 0.0], [-2.0, -0.3, 0.5], [0.0, -0.5, -1.0]])


def linear(s, y):
    return split(A @ jnp.stack(y))


def starts(n=7):
    return jnp.asarray(np.random.default_rng(0).normal(size=(n, 3)))


def test_tableaus():
    assert DOPRI8.fsal and DOPRI8.order == 8.0 and len(DOPRI8.b) == 14
    assert TSIT5.fsal and TSIT5.order == 5.0
    assert not tableau_of(diffrax.Euler()).embedded  # no error estimate
    assert not tableau_of(jd.RK4()).embedded
    assert tableau_of(diffrax.Kvaerno5()) is None  # implicit
    assert tableau_of(diffrax.Heun()).embedded and not tableau_of(diffrax.Heun()).fsal


@pytest.mark.parametrize("tableau", [DOPRI8, TSIT5], ids=["dopri8", "tsit5"])
@pytest.mark.parametrize("split_state", [True, False])
def test_linear_flow_matches_the_matrix_exponential(tableau, split_state):
    y0 = starts()
    f = linear if split_state else (lambda s, y: A @ y)
    y, res, steps = flow_maps(f, y0, 3.0, tableau, 1e-11, 1e-12, 10_000,
                              split_state=split_state)
    exact = y0 @ np.asarray(scipy.linalg.expm(3.0 * np.asarray(A))).T
    np.testing.assert_allclose(np.asarray(y), exact, rtol=0, atol=1e-9)
    assert np.all(np.asarray(res._value) == RESULTS.successful._value)
    assert np.all(np.asarray(steps) > 5)


def test_agrees_with_diffrax_on_the_same_tableau_and_tolerances():
    lorenz = jd.systems.lorenz()
    y0 = jnp.array([[1.0, 1.0, 1.0], [-3.0, 2.0, 20.0]])
    f = lambda s, y: split(lorenz(s, jnp.stack(y), None))
    y, _, _ = flow_maps(f, y0, 2.0, DOPRI8, 1e-10, 1e-10, 10_000, split_state=True)
    term = diffrax.ODETerm(lambda t, x, a: lorenz(t, x, None))
    for i in range(2):
        sol = diffrax.diffeqsolve(term, diffrax.Dopri8(), 0.0, 2.0, None, y0[i],
                                  stepsize_controller=diffrax.PIDController(rtol=1e-12,
                                                                            atol=1e-12),
                                  max_steps=100_000)
        np.testing.assert_allclose(np.asarray(y[i]), np.asarray(sol.ys[-1]), rtol=1e-7)


def test_refilled_slots_give_the_same_states():
    y0 = jnp.asarray(np.random.default_rng(1).uniform([0, 0], [2, 1], size=(37, 2)))
    dg = jd.systems.double_gyre()
    f = lambda s, y: split(dg(s, jnp.stack(y), 0.25))
    full, r1, k1 = flow_maps(f, y0, 10.0, DOPRI8, 1e-8, 1e-10, 10_000, split_state=True)
    slots, r2, k2 = flow_maps(f, y0, 10.0, DOPRI8, 1e-8, 1e-10, 10_000, split_state=True,
                              width=4)
    # The same steps; the states agree up to rounding (vectorised and remainder lanes).
    np.testing.assert_allclose(np.asarray(slots), np.asarray(full), rtol=1e-11)
    np.testing.assert_array_equal(np.asarray(k2), np.asarray(k1))
    np.testing.assert_array_equal(np.asarray(r2._value), np.asarray(r1._value))
    assert len(set(np.asarray(k1).tolist())) > 1  # the states need different step counts


def test_statuses_for_max_steps_and_blow_up():
    f = lambda s, y: split(jnp.stack(y) ** 2)  # x' = x², blows up at t = 1/x0
    y0 = jnp.array([[0.1], [2.0]])
    y, res, steps = flow_maps(f, y0, 3.0, TSIT5, 1e-8, 1e-8, 500, split_state=True)
    assert int(res._value[0]) == RESULTS.successful._value
    np.testing.assert_allclose(float(y[0, 0]), 0.1 / (1 - 0.3), rtol=1e-7)
    assert int(res._value[1]) == RESULTS.max_steps_reached._value and int(steps[1]) == 500
    # Through the integrator: a non-finite state is reported, never returned as success.
    flow = jd.Flow(lambda t, x, a: x**2)
    integ = jd.Adaptive("tsit5", 1e-8, 1e-8, 100)
    out = integ.propagate(flow, y0, jnp.zeros((2, 1, 0)), None, 0.0, integ.span(3.0, y0.dtype))
    ok = np.asarray(out.result == RESULTS.successful)
    assert ok[0] and not ok[1]


def test_a_non_finite_derivative_ends_its_state_without_holding_the_batch():
    # x' = p x with p = NaN for the second state only.
    f = lambda s, y: split(jnp.stack(y) * jnp.where(y[0] > 5.0, jnp.nan, -1.0))
    y0 = jnp.array([[1.0], [10.0], [2.0]])
    y, res, steps = flow_maps(f, y0, 2.0, TSIT5, 1e-8, 1e-8, 100_000, split_state=True, width=2)
    codes = np.asarray(res._value)
    assert codes[1] == RESULTS.nonfinite_state._value and 10 < int(steps[1]) < 100
    assert codes[0] == codes[2] == RESULTS.successful._value
    np.testing.assert_allclose(np.asarray(y[[0, 2], 0]), np.array([1.0, 2.0]) * np.exp(-2.0),
                               rtol=1e-7)


def test_single_state_vmap_and_reverse_mode_gradient():
    decay = jd.Flow(lambda t, x, p: -p * x)
    integ = jd.Adaptive("dopri8", 1e-10, 1e-12, 1000)

    def final(p):
        fm = jd.flow_map(decay, jnp.array([1.0, -2.0]), p, 0.0, 2.0, integrator=integ)
        return fm.x, fm.jacobian

    x, V = final(jnp.asarray(0.7))
    np.testing.assert_allclose(np.asarray(x), np.array([1.0, -2.0]) * np.exp(-1.4), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(V), np.eye(2) * np.exp(-1.4), rtol=1e-9)
    ps = jnp.array([0.2, 0.7, 1.5])
    xs = jax.vmap(lambda p: final(p)[0])(ps)
    for i, p in enumerate(ps):
        np.testing.assert_allclose(np.asarray(xs[i]), np.asarray(final(p)[0]), rtol=1e-12)
    g = jax.grad(lambda p: final(p)[0][0])(jnp.asarray(0.7))
    np.testing.assert_allclose(float(g), -2.0 * np.exp(-1.4), rtol=1e-7)


def test_float32_stays_float32():
    y0 = starts(3).astype(jnp.float32)
    A32 = A.astype(jnp.float32)
    y, _, _ = flow_maps(lambda s, y: split(A32 @ jnp.stack(y)), y0, 1.0, TSIT5, 1e-5, 1e-6,
                        1000, split_state=True)
    assert y.dtype == jnp.float32
    exact = np.asarray(y0, np.float64) @ scipy.linalg.expm(np.asarray(A, np.float64)).T
    np.testing.assert_allclose(np.asarray(y), exact, rtol=1e-4, atol=1e-5)
