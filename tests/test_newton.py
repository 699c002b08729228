"""The globalised Newton core: roots, statuses on hard problems, implicit gradients."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

import jaxdyn as jd
from jaxdyn._newton import (
    RESULTS,
    LevenbergMarquardt,
    NewtonQ,
    newton_solve,
    newton_solve_batch,
)

H_STAR = 0.9575040240772687  # root of tanh(2h) = h


def tanh_map(x, w):
    return jnp.tanh(w * x) - x


def status(r):
    return int(r.result._value)


@pytest.mark.parametrize("solver", [LevenbergMarquardt(), NewtonQ()])
def test_tanh_roots(solver):
    for x0, want in [(0.1, 0.0), (3.0, H_STAR), (-5.0, -H_STAR)]:
        r = newton_solve(tanh_map, jnp.array([x0]), jnp.asarray(2.0), tol=1e-12, solver=solver)
        assert bool(r.converged) and status(r) == 0
        assert abs(float(r.x[0]) - want) < 1e-12
        assert float(r.residual) <= 1e-12
        assert float(r.q) == pytest.approx(0.5 * float(r.residual) ** 2, abs=1e-30)


def test_vmap_equals_loop_and_jit():
    x0s = jnp.array([[0.1], [3.0], [-2.0], [0.6]])
    solve = jax.jit(jax.vmap(lambda x0: newton_solve(tanh_map, x0, jnp.asarray(2.0),
                                                     tol=1e-12)))
    batched = solve(x0s)
    for i, x0 in enumerate(x0s):
        single = newton_solve(tanh_map, x0, jnp.asarray(2.0), tol=1e-12)
        np.testing.assert_allclose(batched.x[i], single.x, atol=1e-14)
        assert int(batched.steps[i]) == int(single.steps)


def test_no_root_is_stagnated_or_slow_point():
    f = lambda x, a: x**2 + 1.0  # q = ½(x² + 1)² has a minimum q = ½ at x = 0
    lm = newton_solve(f, jnp.array([0.7]), tol=1e-10)
    assert not bool(lm.converged) and status(lm) == RESULTS.stagnated._value
    assert np.all(np.isfinite(lm.x))
    q = newton_solve(f, jnp.array([0.7]), tol=1e-10, solver=NewtonQ())
    assert status(q) == RESULTS.slow_point._value and not bool(q.converged)
    assert abs(float(q.x[0])) < 1e-6 and float(q.q) == pytest.approx(0.5)
    # The Jacobian is exactly singular at the start.
    z = newton_solve(f, jnp.array([0.0]), tol=1e-10)
    assert not bool(z.converged) and np.all(np.isfinite(z.x))


def test_singular_jacobian_everywhere():
    f = lambda x, a: jnp.stack([x[0] + x[1] - 1.0, 2 * x[0] + 2 * x[1] - 3.0])
    r = newton_solve(f, jnp.array([1.0, 0.0]), tol=1e-10)
    assert not bool(r.converged) and np.all(np.isfinite(r.x))
    # Consistent but singular: a line of roots, still found.
    g = lambda x, a: jnp.stack([x[0] + x[1] - 1.0, 2 * x[0] + 2 * x[1] - 2.0])
    r = newton_solve(g, jnp.array([3.0, 0.0]), tol=1e-10)
    assert bool(r.converged) and abs(float(r.x[0] + r.x[1]) - 1.0) < 1e-10


def test_singular_root_converges_in_residual():
    r = newton_solve(lambda x, a: x**2, jnp.array([1.0]), tol=1e-10)
    assert bool(r.converged) and float(r.residual) <= 1e-10 and abs(float(r.x[0])) < 1e-4


def test_divergent_start_returns_finite_iterate():
    r = newton_solve(lambda x, a: jnp.exp(x), jnp.array([1.0]), tol=1e-10, max_steps=30)
    assert status(r) == RESULTS.nonlinear_max_steps_reached._value
    assert not bool(r.converged) and np.isfinite(float(r.x[0])) and int(r.steps) == 30


def test_nan_trial_steps_are_rejected():
    # The full Newton step from x = 1 lands at x < 0 where log is NaN.
    r = newton_solve(lambda x, a: jnp.log(x) + 5.0, jnp.array([1.0]), tol=1e-12)
    assert bool(r.converged) and abs(float(r.x[0]) - np.exp(-5.0)) < 1e-12


def test_nonfinite_start_is_reported():
    r = newton_solve(lambda x, a: jnp.sqrt(x) - 2.0, jnp.array([-1.0]), tol=1e-10)
    assert status(r) == RESULTS.nonfinite._value and not bool(r.converged)
    assert float(r.x[0]) == -1.0


def test_implicit_gradient_matches_finite_differences():
    def root(w):
        return newton_solve(tanh_map, jnp.array([3.0]), w, tol=1e-14).x[0]

    w, eps = jnp.asarray(2.0), 1e-6
    fd = (root(w + eps) - root(w - eps)) / (2 * eps)
    assert abs(float(jax.grad(root)(w)) - float(fd)) < 1e-6
    # Pytree args with non-array leaves: only the arrays get gradients.
    f = lambda x, a: jnp.tanh(a["w"] * x + a["b"]) - x
    g = jax.grad(lambda a: newton_solve(f, jnp.array([1.0]), a, tol=1e-14).x[0])(
        {"w": jnp.asarray(2.0), "b": jnp.asarray(0.1)})
    assert np.isfinite(float(g["w"])) and np.isfinite(float(g["b"]))


def test_gradient_of_unconverged_problem_is_zero_not_nan():
    f = lambda x, a: x**2 + a
    g = jax.grad(lambda a: newton_solve(f, jnp.array([0.5]), a, tol=1e-10).x[0])(
        jnp.asarray(1.0))
    assert float(g) == 0.0


def test_matrix_free_solver():
    n = 6
    W = 0.8 * jax.random.normal(jax.random.PRNGKey(0), (n, n)) / np.sqrt(n)
    f = lambda x, W: jnp.tanh(W @ x + 0.5) - x  # a contraction: one well-conditioned root
    dense = newton_solve(f, jnp.ones(n), W, tol=1e-12)
    cg = newton_solve(f, jnp.ones(n), W, tol=1e-12,
                      solver=LevenbergMarquardt(linear_solver=lx.CG(rtol=1e-10, atol=1e-12)))
    assert bool(dense.converged) and bool(cg.converged)
    np.testing.assert_allclose(dense.x, cg.x, atol=1e-9)


def test_least_squares_and_float32():
    # Overdetermined but consistent: three equations, two unknowns.
    f = lambda x, a: jnp.stack([x[0] - 1.0, x[1] + 2.0, x[0] + x[1] + 1.0])
    r = newton_solve(f, jnp.zeros(2), tol=1e-10)
    assert bool(r.converged)
    np.testing.assert_allclose(r.x, [1.0, -2.0], atol=1e-10)
    r32 = newton_solve(tanh_map, jnp.array([3.0], jnp.float32), jnp.float32(2.0), tol=1e-5)
    assert r32.x.dtype == jnp.float32 and bool(r32.converged)


@pytest.mark.parametrize("slots", [1, 4])
def test_work_queue_equals_single_solves(slots):
    x0s = jnp.linspace(-3.0, 3.0, 11)[:, None]
    ws = jnp.linspace(1.5, 3.0, 11)  # away from the pitchfork at w = 1
    batch = newton_solve_batch(tanh_map, x0s, ws, args_axes=0, tol=1e-12, slots=slots,
                               progress=jd.TqdmProgressMeter() if slots == 4
                               else jd.NoProgressMeter())
    single = jax.jit(lambda x0, w: newton_solve(tanh_map, x0, w, tol=1e-12))  # compiled once
    for i in range(11):
        one = single(x0s[i], ws[i])
        np.testing.assert_allclose(batch.x[i], one.x, atol=1e-14)
        assert int(batch.steps[i]) == int(one.steps)
        assert int(batch.result._value[i]) == status(one)
    total = lambda ws: jnp.sum(newton_solve_batch(tanh_map, x0s, ws, args_axes=0, tol=1e-13,
                                                  slots=slots).x)
    each = jax.vmap(jax.grad(lambda x0, w: newton_solve(tanh_map, x0, w, tol=1e-13).x[0],
                             argnums=1))
    np.testing.assert_allclose(jax.grad(total)(ws), each(x0s, ws), atol=1e-10)


def test_work_queue_shared_args_pytree_and_vmap():
    f = lambda x, a: jnp.tanh(a[0] * x + a[1]) - x
    x0s = jnp.linspace(-2.0, 2.0, 7)[:, None]
    args = (jnp.asarray(2.0), jnp.zeros(7))
    r = newton_solve_batch(f, x0s, args, args_axes=(None, 0), tol=1e-12, slots=2)
    assert bool(jnp.all(r.converged))
    outer = jax.vmap(lambda w: newton_solve_batch(f, x0s, (w, jnp.zeros(7)),
                                                  args_axes=(None, 0), tol=1e-12, slots=2).x)
    xs = outer(jnp.array([2.0, 3.0]))
    np.testing.assert_allclose(xs[0], r.x, atol=1e-14)
    np.testing.assert_allclose(jnp.abs(xs[1][-1]), jnp.abs(newton_solve(
        tanh_map, x0s[-1], jnp.asarray(3.0), tol=1e-12).x), atol=1e-12)


def test_results_messages_say_what_to_change():
    assert RESULTS[RESULTS.successful] == ""
    for item in (RESULTS.nonlinear_max_steps_reached, RESULTS.slow_point, RESULTS.stagnated,
                 RESULTS.nonfinite):
        assert len(RESULTS[item]) > 20
