"""Each true fixed point reported exactly once: random tanh RNNs h → tanh(W h) against float64
Newton polishing in NumPy, in float32 and float64, for several sizes, gains and seeds."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn as jd

STARTS = 192


def network(n, g, seed, dtype):
    """A VanillaRNN h → tanh(W h), W ~ N(0, g²/n), and starts drawn along one of its
    trajectories plus N(0, 0.1²) noise (the usual way to seed a fixed-point search)."""
    rng = np.random.default_rng(seed)
    W = g / np.sqrt(n) * rng.normal(size=(n, n))
    model = jd.rnn.VanillaRNN(1, n, 1, key=jax.random.PRNGKey(0))
    model = eqx.tree_at(lambda m: (m.W, m.B, m.b), model,
                        (jnp.asarray(W), jnp.zeros((n, 1)), jnp.zeros(n)))
    model = jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, model)
    h, states = rng.normal(size=n), []
    for t in range(300):
        h = np.tanh(W @ h)
        if t >= 50:
            states.append(h)
    states = np.array(states)
    x0s = states[rng.integers(0, len(states), STARTS)] + 0.1 * rng.normal(size=(STARTS, n))
    return model, W, x0s.astype(dtype)


def polish(W, X, steps=60):
    """Float64 Newton with backtracking on ½‖tanh(Wx) − x‖², written out in NumPy, for a batch
    of starts `X [m, n]`. Returns the points and their residuals ‖tanh(Wx) − x‖∞."""
    n = W.shape[0]
    X = np.array(X, np.float64).reshape(-1, n)
    res = lambda Y: np.tanh(Y @ W.T) - Y
    for _ in range(steps):
        f = res(X)
        if np.max(np.abs(f)) < 1e-13:
            break
        J = (1 - np.tanh(X @ W.T) ** 2)[:, :, None] * W[None] - np.eye(n)[None]
        with np.errstate(all="ignore"):
            d = np.linalg.solve(J + 1e-14 * np.eye(n)[None], -f[..., None])[..., 0]
        d = np.where(np.isfinite(d), d, 0.0)
        q = 0.5 * np.sum(f**2, axis=1)
        alpha, todo = np.ones(len(X)), np.ones(len(X), bool)
        for _ in range(40):
            Y = X + alpha[:, None] * d
            ok = 0.5 * np.sum(res(Y) ** 2, axis=1) < (1 - 1e-4 * alpha) * q
            todo &= ~ok
            if not todo.any():
                break
            alpha = np.where(todo, alpha / 2, alpha)
        X = np.where(todo[:, None], X, X + alpha[:, None] * d)
    return X, np.max(np.abs(res(X)), axis=1)


def polish_minima(W, X, steps=40):
    """Float64 Newton on ∇q = 0 (q = ½‖tanh(Wx) − x‖², exact Hessian) in NumPy, for slow
    points `X [m, n]`. Returns the minima and ‖∇q‖∞ there."""
    n = W.shape[0]
    X = np.array(X, np.float64).reshape(-1, n)

    def grad_hess(X):
        t = np.tanh(X @ W.T)
        f, d = t - X, 1 - t**2
        J = d[:, :, None] * W[None] - np.eye(n)[None]
        g = np.einsum("kij,ki->kj", J, f)
        H = np.einsum("kij,kil->kjl", J, J) + np.einsum("ij,ki,il->kjl", W, -2 * f * t * d, W)
        return g, H

    for _ in range(steps):
        g, H = grad_hess(X)
        if np.max(np.abs(g)) < 1e-14:
            break
        X = X - np.linalg.solve(H, g[..., None])[..., 0]
    return X, np.max(np.abs(grad_hess(X)[0]), axis=1)


def distinct(points, tol=1e-7):
    out = []
    for p in points:
        if not any(np.max(np.abs(p - q)) < tol for q in out):
            out.append(p)
    return out


# Two gains per size, every gain at two sizes: (n, g, seed).
CASES = [(32, 1.2, 0), (32, 2.0, 2), (64, 1.6, 1), (64, 2.0, 2), (128, 1.2, 0), (128, 1.6, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unique_reports_every_true_fixed_point_and_slow_point_once(dtype):
    n_slow = 0
    for n, g, seed in CASES:
        model, W, x0s = network(n, g, seed, dtype)
        fps = jd.fixed_points(model, jnp.asarray(x0s), jnp.zeros(1, dtype), linearise=False)
        assert fps.x.dtype == dtype
        assert float(jnp.mean(fps.resolved)) >= 0.95
        # The truth: every converged point and every start, polished in float64.
        points, res = polish(W, np.asarray(fps.x)[np.asarray(fps.converged)])
        found = list(points[res < 1e-12])
        points, res = polish(W, x0s, 100)
        independent = list(points[res < 1e-12])
        truth = distinct(found + independent)
        reached = distinct(found)
        u = fps.unique()
        conv = np.asarray(u.valid & u.converged)
        points, errors = np.asarray(u.x)[conv], np.asarray(u.error)[conv]
        hits = np.zeros(len(truth), int)
        for x, err in zip(points, errors):
            d = np.array([np.max(np.abs(x - t)) for t in truth])
            j = int(np.argmin(d))
            # Each reported point is within its own error estimate of a true fixed point.
            assert d[j] <= 4 * err + 50 * np.finfo(dtype).eps, (n, g, d[j], err)
            hits[j] += 1
        # ... and every true point that the solver reached is reported exactly once.
        for r in reached:
            j = int(np.argmin([np.max(np.abs(r - t)) for t in truth]))
            assert hits[j] == 1, (n, g, dtype, hits)
        assert hits.max() <= 1 and hits.sum() == len(reached)
        # Slow points (local minima of q with q > 0): each minimum once, and each reported
        # point within its error estimate of the minimum its float64 polish reaches.
        slow = np.asarray(u.valid & u.slow)
        points, errors = np.asarray(u.x)[slow], np.asarray(u.error)[slow]
        if not len(points):
            continue
        minima, grad = polish_minima(W, points)
        assert np.all(grad < 1e-10)
        moved = np.max(np.abs(minima - points), axis=1)
        assert np.all(moved <= 4 * errors + 50 * np.finfo(dtype).eps), (n, g, moved / errors)
        assert len(distinct(minima, 1e-6)) == len(minima), (n, g, dtype)
        n_slow += len(minima)
    print(dtype, n_slow)
    assert n_slow >= 20  # the cases do exercise slow points
