"""The integrator family (`jaxdyn._integrate`): flow maps and their Jacobians against matrix
exponentials at, near and far from an equilibrium (adaptive, fixed-step and implicit solvers,
forward and backward, float64 and float32), error control on the tangents, reverse mode,
traced tolerances (counted traces), the vectorised `sin`/`cos`, and the options' errors."""

import math

import diffrax
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.linalg

import jaxdyn as jd
from jaxdyn import RESULTS
from jaxdyn._integrate._fastmath import _C1, _C2, _C3, sincos, vectorised_trig

A = np.array([[-1.0, 0.5], [0.0, -3.0]])
LINEAR = jd.Flow(lambda t, x, a: jnp.asarray(A, x.dtype) @ x)
STARTS = {"at": (0.0, 0.0), "near": (1e-6, 1e-6), "far": (1.0, -2.0)}


def expm(M, T):
    return scipy.linalg.expm(np.asarray(M, np.float64) * T)


def rel_error(got, want):
    want = np.asarray(want)
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want)))


# ---------------------------------------------------------------------------------------------
# flow-map Jacobians: the tangents are controlled where the state settles


@pytest.mark.parametrize("T", [10.0, -4.0])
@pytest.mark.parametrize("integrator", ["tsit5", "dopri8", "kvaerno5", "rk4"])
def test_linear_flow_map_jacobian_is_the_matrix_exponential(T, integrator):
    """x' = A x: ∂φ/∂x0 = e^{AT} from every start, the equilibrium included, where state-only
    control let the steps grow until the tangents were wrong (+1.17 for an FTLE of −0.997).
    The starts at, near and far from the equilibrium run in one vmapped call."""
    x0s = jnp.asarray([STARTS[w] for w in sorted(STARTS)])
    integ = (jd.FixedStep(0.01) if integrator == "rk4" else
             jd.Adaptive(integrator, rtol=1e-9, atol=1e-12))
    fms = jax.vmap(lambda x: jd.flow_map(LINEAR, x, None, 0.0, T, integrator=integ))(x0s)
    assert bool(jnp.all(fms.success))
    exact = expm(A, T)
    tol = 1e-7 if integrator != "kvaerno5" else 1e-6
    for i in range(len(STARTS)):
        assert rel_error(fms.jacobian[i], exact) < tol
        np.testing.assert_allclose(np.asarray(fms.x[i]), exact @ np.asarray(x0s[i]), rtol=1e-7,
                                   atol=1e-11)


def test_riding_tangents_are_wrong_at_a_fixed_point_and_controlled_ones_right():
    """The failure this control fixes: at the equilibrium the state's error estimate is zero,
    so with tangents riding along the steps grow until e^{hλ} is badly approximated."""
    x0 = jnp.zeros(2)
    exact = expm(A, 10.0)
    ride = jd.flow_map(LINEAR, x0, None, 0.0, 10.0, integrator=jd.Adaptive(tangents="ride"))
    control = jd.flow_map(LINEAR, x0, None, 0.0, 10.0)
    assert rel_error(ride.jacobian, exact) > 1.0
    assert rel_error(control.jacobian, exact) < 1e-5
    assert int(control.steps) > int(ride.steps)


def test_reverse_mode_follows_the_controlled_steps():
    """`jax.jacrev` of the flow map's state equals its Jacobian at the equilibrium; through
    `simulate`, whose forward steps control the state alone, the backward pass integrates
    again with a probe tangent controlled (it was wrong by a factor 2.6e9 at the equilibrium,
    as it still is with `tangents="ride"`)."""
    exact = expm(A, 10.0)
    for x0 in (jnp.zeros(2), jnp.array([0.3, -0.2])):
        fm = jd.flow_map(LINEAR, x0, None, 0.0, 10.0)
        J = jax.jacrev(lambda x: jd.flow_map(LINEAR, x, None, 0.0, 10.0).x)(x0)
        np.testing.assert_allclose(np.asarray(J), np.asarray(fm.jacobian), rtol=1e-12,
                                   atol=1e-18)
        assert rel_error(J, exact) < 1e-5
        Js = jax.jacrev(lambda x: jd.simulate(LINEAR, x, None, 10.0).xs[-1])(x0)
        assert rel_error(Js, exact) < 1e-5
        Jx = jax.jacrev(lambda x: jd.flow_map(LINEAR, x, None, 0.0, 10.0, jacobian=False).x)(x0)
        assert rel_error(Jx, exact) < 1e-5
    ride = jd.Adaptive(tangents="ride")
    Jr = jax.jacrev(lambda x: jd.simulate(LINEAR, x, None, 10.0, integrator=ride).xs[-1])(
        jnp.zeros(2))
    assert rel_error(Jr, exact) > 1.0
    # Gradients with respect to a network's input through simulate: central differences
    # (through the forward steps, "ride", it was −1.4e7 for 5.12).
    model = jd.rnn.CTRNN(2, 8, 1, key=jr.PRNGKey(0), tau=1.0)
    loss = lambda u, **kw: jnp.sum(jd.simulate(model, jnp.zeros(8), u, 20.0, **kw).xs[-1])
    u = jnp.zeros(2)
    g = jax.grad(loss)(u)
    tight = dict(rtol=1e-12, atol=1e-14)
    fd = [(loss(u.at[i].set(1e-5), **tight) - loss(u.at[i].set(-1e-5), **tight)) / 2e-5
          for i in range(2)]
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-6)


def test_ctrnn_at_its_fixed_point():
    """A 16-unit CTRNN at its own fixed point: the flow-map Jacobian is e^{JT}, and reverse-
    mode gradients through it match central differences."""
    model = jd.rnn.CTRNN(2, 16, 1, key=jr.PRNGKey(3), tau=1.0)
    u = jnp.zeros(2)
    fps = jd.fixed_points(model, jnp.zeros((1, 16)), u, linearise=False)
    x_star = fps.x[0]
    J = np.asarray(jd.jacobian(model, x_star, u))
    fm = jd.flow_map(model, x_star, u, 0.0, 20.0)
    assert rel_error(fm.jacobian, expm(J, 20.0)) < 1e-5
    np.testing.assert_allclose(np.asarray(fm.x), np.asarray(x_star), atol=1e-10)

    # d/du of a scalar of the Jacobian by reverse mode against central differences.
    def g(v):
        return jnp.sum(jd.flow_map(model, x_star, v, 0.0, 5.0).jacobian[0])

    grad = jax.grad(g)(u)
    fd = np.array([(g(u.at[i].set(1e-5)) - g(u.at[i].set(-1e-5))) / 2e-5 for i in range(2)])
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-4, atol=1e-8)


def test_float32_flow_map_at_the_equilibrium():
    x0 = jnp.zeros(2, jnp.float32)
    lin32 = jd.Flow(lambda t, x, a: jnp.asarray(A, jnp.float32) @ x)
    fm = jd.flow_map(lin32, x0, None, 0.0, 10.0)
    assert fm.jacobian.dtype == jnp.float32 and bool(fm.success)
    assert rel_error(fm.jacobian, expm(A, 10.0)) < 1e-4


def test_maps_iterate_with_their_tangent_map():
    W = jnp.asarray(np.random.default_rng(2).normal(size=(3, 3))) * 0.8
    rnn = jd.systems.tanh_rnn(W)
    x0 = jnp.array([0.2, -0.1, 0.3])
    fm = jd.flow_map(rnn, x0, None, 0, 5)
    direct = jax.jacfwd(lambda z: jd.simulate(rnn, z, None, 5).xs[-1])(x0)
    np.testing.assert_allclose(np.asarray(fm.jacobian), np.asarray(direct), rtol=1e-12)
    assert int(fm.steps) == 5


def test_flow_map_vmaps_and_jits():
    x0s = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2)))
    run = jax.jit(jax.vmap(lambda x: jd.flow_map(LINEAR, x, None, 0.0, 3.0).jacobian))
    Js = run(x0s)
    for i in range(5):
        assert rel_error(Js[i], expm(A, 3.0)) < 1e-5


# ---------------------------------------------------------------------------------------------
# traced tolerances: a new rtol does not trace the vector field again


def test_new_tolerances_do_not_retrace():
    """Each call traces the vector field once for the pre-tracing shape check, and a compiled
    program traces it again only when compiling: a new `rtol` compiles nothing."""
    calls = []

    def f(t, x, a):
        calls.append(1)
        return jnp.asarray(A) @ x

    flow = jd.Flow(f)
    x0 = jnp.array([1.0, 1.0])
    pts = jnp.asarray(np.random.default_rng(1).normal(size=(4, 2)))
    runs = {
        "simulate": lambda r: jd.simulate(flow, x0, None, 2.0, rtol=r, atol=1e-10).xs,
        "flow_map": lambda r: jd.flow_map(flow, x0, None, 0.0, 2.0, rtol=r).jacobian,
        "ftle": lambda r: jd.ftle(flow, pts, None, 0.0, 2.0, rtol=r).ftle,
        "spectrum": lambda r: jd.lyapunov_spectrum(flow, x0, None, 2.0, rtol=r).exponents,
    }
    for name, run in runs.items():
        run(1e-6)
        before = len(calls)
        out = run(1e-8)
        assert len(calls) == before + 1, name  # the shape check alone
        assert np.all(np.isfinite(np.asarray(out))), name
    # Tolerances are arrays: one compiled program vmaps over them.
    errs = jax.vmap(lambda r: jd.flow_map(flow, x0, None, 0.0, 2.0,
                                          integrator=jd.Adaptive(rtol=r)).jacobian)(
        jnp.array([1e-4, 1e-9]))
    e = [rel_error(J, expm(A, 2.0)) for J in errs]
    assert e[1] < e[0] and e[1] < 1e-8


# ---------------------------------------------------------------------------------------------
# simulate through the family


def test_simulate_takes_an_integrator_and_its_shortcuts_agree():
    lor = jd.systems.lorenz()
    x0 = jnp.ones(3)
    a = jd.simulate(lor, x0, None, 1.0, rtol=1e-9, atol=1e-9, solver="dopri5").xs
    b = jd.simulate(lor, x0, None, 1.0, integrator=jd.Adaptive("dopri5", 1e-9, 1e-9)).xs
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = jd.simulate(lor, x0, None, 1.0, dt=0.01).xs
    d = jd.simulate(lor, x0, None, 1.0, integrator=jd.FixedStep(0.01, "rk4")).xs
    np.testing.assert_array_equal(np.asarray(c), np.asarray(d))
    m = jd.systems.henon()
    e = jd.simulate(m, jnp.array([0.1, 0.1]), None, 5, integrator=jd.Iterate()).xs
    assert e.shape == (6, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(integrator=jd.Adaptive(), rtol=1e-3), "either `integrator` or its shortcuts"),
        (dict(integrator=jd.Iterate()), "does not fit a flow"),
        (dict(integrator="tsit5"), "`integrator` must be"),
        (dict(dt=0.1, rtol=1e-3), "no meaning with a fixed `dt`"),
        (dict(solver="rk4"), "no error estimate"),
        (dict(rtol=-1.0), "`rtol` must be a finite number >= 0"),
        (dict(rtol=0.0, atol=0.0), "cannot both be 0"),
    ],
)
def test_bad_integrator_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jd.simulate(jd.systems.lorenz(), jnp.ones(3), None, 1.0, **kwargs)


def test_bad_integrator_constructions_raise():
    with pytest.raises(ValueError, match="`tangents` must be one of"):
        jd.Adaptive(tangents="both")
    with pytest.raises(ValueError, match="`dt` must be a finite number > 0"):
        jd.FixedStep(-0.1)
    with pytest.raises(ValueError, match="does not fit a map"):
        jd.flow_map(jd.systems.henon(), jnp.ones(2), None, 0, 3, integrator=jd.Adaptive())
    with pytest.raises(ValueError, match="`jacobian` must be True or False"):
        jd.flow_map(LINEAR, jnp.ones(2), None, 0.0, 1.0, jacobian="yes")
    with pytest.raises(ValueError, match="`T` must be nonzero"):
        jd.flow_map(LINEAR, jnp.ones(2), None, 0.0, 0.0)
    with pytest.raises(ValueError, match="`x0` must be finite"):
        jd.flow_map(LINEAR, jnp.array([1.0, jnp.nan]), None, 0.0, 1.0)


def test_a_tolerance_float32_cannot_meet_is_refused():
    x32 = jnp.ones(3, jnp.float32)
    with pytest.raises(ValueError, match="below what float32 resolves"):
        jd.simulate(jd.systems.lorenz(), x32, None, 1.0, rtol=1e-9)
    with pytest.raises(ValueError, match="below what float32 resolves"):
        jd.lyapunov_spectrum(jd.systems.lorenz(), x32, None, 5.0, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# vectorised sin and cos in a user's vector field


def test_reduction_constants_sum_to_half_pi():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 200
    total = mpmath.mpf(_C1) + mpmath.mpf(_C2) + mpmath.mpf(_C3)
    assert abs(total - mpmath.pi / 2) < mpmath.mpf(2) ** -105
    for c in (_C1, _C2):  # 27 significant bits: k·c is exact for |k| < 2²⁶
        m, e = math.frexp(c)
        assert float(m * 2**27).is_integer()


def test_sincos_is_within_two_ulps():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 120
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-10, 10, 300), rng.uniform(-1e8, 1e8, 300),
                        np.pi / 2 * np.arange(-8, 9), [0.0, 1e-300, 5e-324, -2.5]])
    s, c = jax.jit(sincos)(jnp.asarray(x))
    for fn, got in ((mpmath.sin, s), (mpmath.cos, c)):
        exact = np.array([float(fn(mpmath.mpf(v))) for v in x])
        ulps = np.abs(np.asarray(got) - exact) / np.spacing(np.maximum(np.abs(exact), 1e-300))
        assert np.max(ulps) <= 2.0
    # Derivatives by the custom rule: d sin = cos dx.
    g = jax.grad(lambda v: sincos(v)[0])(jnp.asarray(0.7))
    np.testing.assert_allclose(float(g), np.cos(0.7), rtol=1e-15)


def plain_gyre(t, z, eps):
    """The double gyre as a user writes it, with `jnp.sin` and `jnp.cos` (and a nested jit)."""
    a = eps * jnp.sin(0.2 * jnp.pi * t)
    f = a * z[0] ** 2 + (1 - 2 * a) * z[0]
    df = 2 * a * z[0] + 1 - 2 * a
    cos = jax.jit(jnp.cos)
    return jnp.stack([-0.1 * jnp.pi * jnp.sin(jnp.pi * f) * cos(jnp.pi * z[1]),
                      0.1 * jnp.pi * cos(jnp.pi * f) * jnp.sin(jnp.pi * z[1]) * df])


def test_a_users_trigonometric_field_is_rewritten_and_unchanged_in_value():
    flow = jd.Flow(plain_gyre)
    fast = vectorised_trig(flow, jnp.float64)
    assert fast is not flow and vectorised_trig(flow, jnp.float32) is flow
    z = jnp.array([0.3, 0.7])
    eps = jnp.asarray(0.25)
    np.testing.assert_allclose(np.asarray(fast(1.3, z, eps)), np.asarray(flow(1.3, z, eps)),
                               rtol=1e-15, atol=1e-17)
    jac = jax.jacfwd(lambda v: fast(1.3, v, eps))(z)
    ref = jax.jacfwd(lambda v: flow(1.3, v, eps))(z)
    np.testing.assert_allclose(np.asarray(jac), np.asarray(ref), rtol=1e-14, atol=1e-16)
    text = str(jax.make_jaxpr(lambda v: fast(1.3, v, eps))(z))
    assert " sin " not in text and " cos " not in text
    # The same FTLE field as the built-in double gyre, to the integration tolerance.
    g = jd.grid([(0.0, 2.0), (0.0, 1.0)], (21, 11))
    mine = jd.ftle(flow, g, eps, 0.0, 10.0, rtol=1e-10, atol=1e-12).ftle
    ref = jd.ftle(jd.systems.double_gyre(), g, eps, 0.0, 10.0, rtol=1e-10, atol=1e-12).ftle
    np.testing.assert_allclose(np.asarray(mine), np.asarray(ref), atol=1e-6)


def test_kvaerno5_and_tableaus_through_the_family():
    assert isinstance(jd.Adaptive("kvaerno5").solver, diffrax.Kvaerno5)
    out = jd.simulate(LINEAR, jnp.array([1.0, 1.0]), None, 2.0, solver="kvaerno5", rtol=1e-8,
                      atol=1e-10)
    np.testing.assert_allclose(np.asarray(out.xs[-1]), expm(A, 2.0) @ np.ones(2), rtol=1e-6)
    assert bool(out.result == RESULTS.successful)
