"""Dynamical Similarity Analysis (`jaxdyn.dsa`): invariances, closed forms, and dsa-metric's
output on identical inputs (`tests/data/dsa_reference.npz`, made by `make_dsa_reference.py`)."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdyn.dsa as dsa

REF = Path(__file__).parent / "data" / "dsa_reference.npz"
KW = dict(n_delays=3, rank=8)
FAST = dict(iters=300, n_starts=2)


def linear_system(A, seed, K=6, T=40, noise=0.1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((K, A.shape[0]))
    out = []
    for _ in range(T):
        x = x @ A.T + noise * rng.standard_normal(x.shape)
        out.append(x)
    return np.stack(out, 1)


def rotation(n, seed):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))[0]


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(REF))


@pytest.fixture(scope="module")
def data():
    A = 0.9 * rotation(4, 1)
    X = linear_system(A, 0)
    Y = linear_system(np.diag([0.9, 0.5, -0.4, 0.7]), 1)
    return X, Y


def test_delay_embed_layout():
    X = np.arange(12.0).reshape(6, 2)  # x(t) = (2t, 2t + 1)
    H = np.asarray(dsa.delay_embed(X, 3, 2))
    # Row t = [x(t + 4), x(t + 2), x(t)]: the latest sample first.
    np.testing.assert_array_equal(H, [[8, 9, 4, 5, 0, 1], [10, 11, 6, 7, 2, 3]])
    assert dsa.delay_embed(np.zeros((5, 7, 3)), 2).shape == (5, 6, 6)


def test_operator_of_a_linear_system_is_exact():
    # Noise-free x_{t+1} = A x_t with a full-rank embedding: the operator is A up to a change
    # of basis, so its eigenvalues are A's.
    A = np.array([[0.9, -0.3, 0.0], [0.3, 0.9, 0.0], [0.0, 0.0, 0.5]])
    X = linear_system(A, 0, K=4, T=30, noise=0.0)
    op = dsa.fit_operator(X, lamb=0.0)
    np.testing.assert_allclose(np.sort_complex(np.asarray(op.eigvals)),
                               np.sort_complex(np.linalg.eigvals(A)), atol=1e-9)
    # The operator in delay coordinates maps one embedded row to the next.
    np.testing.assert_allclose(np.asarray(op.A_full) @ X[0, 5], X[0, 6], atol=1e-9)


def test_invariances(data):
    X, Y = data
    Q = rotation(4, 7)
    ops = dsa.fit_operator(np.stack([X, X @ Q.T, Y]), **KW)
    opx, opq, opy = (jax.tree_util.tree_map(lambda a, k=k: a[k], ops) for k in range(3))
    for score in ("angular", "euclidean", "wasserstein"):
        same = float(dsa.distance(opx, opq, score=score, **FAST))
        assert same <= 1e-3, (score, same)
        other = float(dsa.distance(opx, opy, score=score, **FAST))
        assert other > 0.05, (score, other)
    # Operators conjugate by an orthogonal matrix with det −1 (a reflection branch).
    B = jnp.asarray(np.random.default_rng(3).standard_normal((6, 6)))
    P = rotation(6, 4)
    P[:, 0] *= -1 if np.linalg.det(P) > 0 else 1
    res = dsa.procrustes(B, jnp.asarray(P @ np.asarray(B) @ P.T), iters=2000, n_starts=2)
    assert float(res.angular) < 1e-3
    C = np.asarray(res.C)
    np.testing.assert_allclose(C.T @ C, np.eye(6), atol=1e-8)
    # euclidean = 2 sin(angular / 2) on the same rotation.
    res = dsa.procrustes(B, B.T @ B, iters=200, n_starts=1)
    np.testing.assert_allclose(float(res.euclidean), 2 * np.sin(float(res.angular) / 2),
                               rtol=1e-10)


def test_wasserstein_closed_form():
    a = np.diag([0.5, 0.2, -0.1])
    b = np.diag([0.1, 0.45, -0.1])
    # Best matching: 0.5↔0.45, 0.2↔0.1, −0.1↔−0.1.
    assert float(dsa.wasserstein(a, b)) == pytest.approx((0.05**2 + 0.1**2) / 3, rel=1e-12)
    # A smaller set is padded with zeros.
    assert float(dsa.wasserstein(a, np.diag([0.5, 0.2]))) == pytest.approx(0.01 / 3)


def test_against_dsa_metric_reference(ref):
    X = ref["X"]
    kw = dict(n_delays=int(ref["n_delays"]), rank=int(ref["rank"]))
    ops = dsa.fit_operator(X, **kw)
    ev = np.asarray(ops.eigvals)
    for mine, theirs in zip(ev, ref["eigvals"]):
        np.testing.assert_allclose(np.sort_complex(mine), np.sort_complex(theirs), atol=1e-8)
    W = np.asarray(dsa.pairwise(ops, score="wasserstein"))
    np.testing.assert_allclose(W, ref["wasserstein"], atol=1e-6)
    D = np.asarray(dsa.pairwise(ops, score="angular"))
    iu = np.triu_indices(len(X), 1)
    assert np.all(D[iu] <= 1.02 * ref["angular"][iu]), D[iu] / ref["angular"][iu]
    assert np.corrcoef(D[iu], ref["angular"][iu])[0, 1] >= 0.99
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)


def test_against_dsa_metric_live(ref):
    DSA = pytest.importorskip("DSA")
    torch = pytest.importorskip("torch")
    X = ref["X"][0]
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        d = DSA.DMD(X, n_delays=2, rank=6, lamb=1e-3)
        d.fit()
        theirs = torch.linalg.eig(d.A_v).eigenvalues.numpy()
    finally:
        torch.set_default_dtype(default)
    mine = np.asarray(dsa.fit_operator(X, n_delays=2, rank=6, lamb=1e-3).eigvals)
    np.testing.assert_allclose(np.sort_complex(mine), np.sort_complex(theirs), atol=1e-8)


def test_pairwise_matches_distance_and_vmap(data):
    X, Y = data
    Xs = np.stack([X, Y, X @ rotation(4, 2).T])
    D = np.asarray(dsa.pairwise(Xs, score="euclidean", **KW, **FAST, chunk_size=2,
                                key=jax.random.PRNGKey(0)))
    assert D.shape == (3, 3)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    # Each entry is the distance of that pair (the same starts: identity + the pair's draw).
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    for k, (i, j) in enumerate(zip(*np.triu_indices(3, 1))):
        d = float(dsa.distance(Xs[i], Xs[j], score="euclidean", **KW, **FAST, key=keys[k]))
        assert D[i, j] == pytest.approx(d, rel=1e-9, abs=1e-12)
    # Bipartite, and a list with different state sizes under the eigenvalue score.
    B = np.asarray(dsa.pairwise(Xs[:2], Xs[1:], score="wasserstein", **KW))
    assert B.shape == (2, 2) and B[1, 0] == pytest.approx(0.0, abs=1e-12)
    L = dsa.pairwise([X, Y[..., :3]], score="wasserstein", n_delays=2)
    assert L.shape == (2, 2) and float(L[0, 1]) > 0
    # fit_operator on a stack = a loop of single fits.
    ops = dsa.fit_operator(Xs, **KW)
    one = dsa.fit_operator(Xs[1], **KW)
    np.testing.assert_allclose(np.asarray(ops.A[1]), np.asarray(one.A), atol=1e-10)


def test_jit_vmap_and_float32(data):
    X, Y = data
    f = jax.jit(lambda x, y: dsa.distance(x, y, score="wasserstein", **KW))
    np.testing.assert_allclose(float(f(X, Y)), float(dsa.distance(X, Y, **KW)), rtol=1e-10)
    Ys = jnp.stack([jnp.asarray(Y), jnp.asarray(X)])
    batched = jax.vmap(lambda y: dsa.distance(X, y, score="angular", **KW, **FAST))(Ys)
    for k in range(2):
        single = dsa.distance(X, Ys[k], score="angular", **KW, **FAST)
        np.testing.assert_allclose(float(batched[k]), float(single), rtol=1e-8, atol=1e-10)
    d32 = dsa.distance(X.astype(np.float32), Y.astype(np.float32), score="angular", **KW,
                       **FAST)
    assert d32.dtype == jnp.float32


@pytest.mark.parametrize("score", ["angular", "wasserstein"])
def test_grad_matches_finite_differences(data, score):
    X, Y = data
    X, Y = X[:3, :25], Y[:3, :25]
    kw = dict(n_delays=2, rank=6, score=score, iters=1500, n_starts=2)
    f = lambda x: dsa.distance(x, Y, **kw)
    g = np.asarray(jax.grad(f)(jnp.asarray(X)))
    assert np.all(np.isfinite(g))
    v = np.random.default_rng(5).standard_normal(X.shape)
    h = 1e-5
    fd = (float(f(X + h * v)) - float(f(X - h * v))) / (2 * h)
    assert np.sum(g * v) == pytest.approx(fd, rel=2e-3, abs=1e-7)


def test_embed_and_separability():
    pts = np.random.default_rng(0).standard_normal((8, 2))
    D = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    Z = np.asarray(dsa.embed(D, 2))
    np.testing.assert_allclose(np.linalg.norm(Z[:, None] - Z[None], axis=-1), D, atol=1e-10)
    # Two well-separated clusters and one overlapping the first.
    rng = np.random.default_rng(1)
    c = np.concatenate([rng.normal(0, 0.3, (8, 2)), rng.normal(5, 0.3, (8, 2)),
                        rng.normal(0, 0.3, (8, 2))])
    D = np.linalg.norm(c[:, None] - c[None], axis=-1)
    labels = ["a"] * 8 + ["b"] * 8 + ["c"] * 8
    sep = dsa.separability(D, labels, key=jax.random.PRNGKey(0), n_permutations=50)
    acc = np.asarray(sep.accuracy)
    assert acc[0, 1] == 1.0 and acc[1, 2] == 1.0
    assert acc[0, 2] < 0.8
    np.testing.assert_allclose(np.asarray(sep.chance)[0, 1], 0.5)
    assert float(sep.p_value[0, 1]) < 0.05 and float(sep.p_value[0, 2]) > 0.05
    assert "a vs b" in repr(sep)
    ax = sep.plot()
    assert ax is not None


def test_plots(data):
    X, Y = data
    D = np.array([[0, 1, 2.0], [1, 0, 1.5], [2, 1.5, 0]])
    axes = dsa.plot(D, labels=["x", "y", "y"])
    assert len(axes) == 2
    assert dsa.plot_distances(D) is not None


def test_errors(data):
    X, Y = data
    with pytest.raises(ValueError, match="n_delays.*too many for trajectories of length"):
        dsa.distance(X, Y, n_delays=40)
    with pytest.raises(ValueError, match="rank.*above the embedding dimension"):
        dsa.distance(X, Y, n_delays=2, rank=9)
    with pytest.raises(ValueError, match="different sizes.*score='wasserstein'"):
        dsa.pairwise([X, Y[..., :3]], score="angular", n_delays=2)
    with pytest.raises(ValueError, match="must be finite"):
        dsa.distance(np.where(X > 2, np.nan, X), Y)
    with pytest.raises(ValueError, match="score"):
        dsa.distance(X, Y, score="cosine")
    with pytest.raises(ValueError, match="stack of networks"):
        dsa.pairwise(X)
    with pytest.raises(ValueError, match="at most one of"):
        dsa.fit_operator(X, rank=3, rank_thresh=0.1)
    with pytest.raises(ValueError, match="at least two groups"):
        dsa.separability(np.zeros((3, 3)), ["a"] * 3, key=jax.random.PRNGKey(0))
    ops = dsa.fit_operator(np.stack([X, Y]), n_delays=2, rank_explained_variance=0.9)
    assert ops.A.shape[0] == 2
