"""Make `dsa_reference.npz`: dsa-metric's output on small fixed inputs, for `tests/test_dsa.py`.

Needs the peer (`pip install dsa-metric`, imported as `DSA`). Inputs: 5 "networks", each 6
trajectories × 40 steps of a 4-dimensional noisy linear system (two families of dynamics,
one with its state rotated), fitted with n_delays = 3, rank = 8.

Saved: the inputs; each network's operator eigenvalues from dsa-metric's `DMD` run in float64
(torch default dtype float64 while fitting, so the comparison is not limited by float32); the
eigenvalue (Wasserstein) distance matrix from those float64 eigenvalues through
`SimilarityTransformDist(score_method="wasserstein")`; and dsa-metric's default float32
`DSA(..., score_method="angular").fit_score()` matrix (1,500 Adam steps at 5e-3, torch seed 0).

    python tests/data/make_dsa_reference.py
"""

from pathlib import Path

import numpy as np
import torch
from DSA import DMD, DSA, SimilarityTransformDist

N_DELAYS, RANK = 3, 8


def system(A, seed, K=6, T=40, noise=0.1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((K, A.shape[0]))
    out = []
    for _ in range(T):
        x = x @ A.T + noise * rng.standard_normal(x.shape)
        out.append(x)
    return np.stack(out, 1)


def inputs():
    rng = np.random.default_rng(20)
    rot = lambda th: np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    A1 = np.zeros((4, 4))
    A1[:2, :2], A1[2:, 2:] = 0.95 * rot(0.3), 0.8 * rot(0.9)
    A2 = np.diag([0.9, 0.5, -0.4, 0.7])
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    X = [system(A1, 0), system(A1, 1), system(A1, 2) @ Q.T, system(A2, 3), system(A2, 4)]
    return np.stack(X)


def main():
    X = inputs()
    torch.set_default_dtype(torch.float64)
    eigs = []
    for x in X:
        d = DMD(x, n_delays=N_DELAYS, rank=RANK)
        d.fit()
        eigs.append(torch.linalg.eig(d.A_v).eigenvalues.numpy())
    eigs = np.stack(eigs)
    P = len(X)
    W = np.zeros((P, P))
    for i in range(P):
        for j in range(P):
            if i != j:
                sd = SimilarityTransformDist(score_method="wasserstein")
                W[i, j] = sd.fit_score(eigs[i], eigs[j])
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    ang = DSA(list(X), n_delays=N_DELAYS, rank=RANK, score_method="angular", iters=1500,
              lr=5e-3).fit_score()
    out = Path(__file__).parent / "dsa_reference.npz"
    np.savez_compressed(out, X=X, eigvals=eigs, wasserstein=W, angular=np.asarray(ang),
                        n_delays=N_DELAYS, rank=RANK)
    print(f"wrote {out}\nangular\n{np.round(ang, 4)}\nwasserstein\n{np.round(W, 6)}")


if __name__ == "__main__":
    main()
