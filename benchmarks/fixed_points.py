"""Fixed points of a random tanh RNN: time to the right answer, jaxdyn against FixedPointFinder's
algorithm (Adam on q) in PyTorch.

The network is h → tanh(W h), W ~ N(0, g²/N) with g = 1.5 (seed 0), zero input. Starts are
states of one simulated trajectory (after a burn-in) plus Gaussian noise, identical for every
method. jaxdyn runs its default call, `jd.fixed_points(model, x0s, u).unique()` (every option
at its default, linearisation included). The peer is the algorithm of FixedPointFinder (Golub &
Sussillo, JOSS 2018), written here from its paper and documentation: Adam (lr 1.0) on the batch
mean of q = ½‖F(x) − x‖², the learning rate reduced on plateaus (factor 0.95, patience 2),
stopping when every start has q < tol_q = 1e-12 or |Δq| < 1e-20·lr, after at most 5,000
iterations, then its deduplication at 1e-3; it runs in PyTorch (as that tool does) and, as a
control, the same algorithm in JAX (optax).

The right answer: every distinct fixed point reported once, and ≥ 95 % of starts resolved
(converged, or a verified slow point). The truth is computed here in float64 NumPy: every
method's converged points, and Newton from every start, polished and deduplicated at 1e-7.

    python benchmarks/fixed_points.py [--n 128] [--starts 1024] [--x64] [--no-torch]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, time_jax

TOL_Q, TOL_DQ, MAX_ITERS, TOL_UNIQUE = 1e-12, 1e-20, 5000, 1e-3


def problem(n, starts, dtype, noise, seed=0, g=1.5):
    """The network as a `jaxdyn.rnn.VanillaRNN` with recurrent weights W, no input weights and
    no bias (driven by a zero input), its W, and the starts."""
    import equinox as eqx

    import jaxdyn as jd

    rng = np.random.default_rng(seed)
    W = (g / np.sqrt(n) * rng.normal(size=(n, n))).astype(dtype)
    model = jd.rnn.VanillaRNN(1, n, 1, key=jax.random.PRNGKey(seed))
    model = eqx.tree_at(lambda m: (m.W, m.B, m.b, m.W_out, m.b_out), model,
                        (jnp.asarray(W), jnp.zeros((n, 1), dtype), jnp.zeros(n, dtype),
                         jnp.zeros((1, n), dtype), jnp.zeros(1, dtype)))
    u = jnp.zeros(1, dtype)
    traj = jd.simulate(model, jnp.asarray(rng.normal(size=n).astype(dtype)), u, t1=1100)
    x0s = jd.sample_states(jax.random.PRNGKey(seed), traj, n=starts, noise=noise,
                           burn_in=100)
    return model, u, W, np.asarray(x0s)


def torch_adam(W, x0s):
    """FixedPointFinder's optimisation in PyTorch: returns (x, converged, stationary, iters)."""
    import torch

    # On a busy machine two intra-op threads can spin-wait far longer than they compute;
    # time a few iterations each way and keep the faster setting, to be fair to the peer.
    Wt0, x0 = torch.tensor(W), torch.tensor(x0s[: min(256, len(x0s))])
    speed = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        t = time.perf_counter()
        for _ in range(20):
            (torch.tanh(x0 @ Wt0.T) - x0).pow(2).sum().item()
        speed[threads] = time.perf_counter() - t
    torch.set_num_threads(min(speed, key=speed.get))
    dtype = torch.float64 if x0s.dtype == np.float64 else torch.float32
    Wt = torch.tensor(W, dtype=dtype)
    x = torch.tensor(x0s, dtype=dtype, requires_grad=True)
    opt = torch.optim.Adam([x], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.95, patience=2)
    q_prev = torch.full((x0s.shape[0],), float("nan"), dtype=dtype)
    for it in range(MAX_ITERS):
        opt.zero_grad()
        q = 0.5 * ((torch.tanh(x @ Wt.T) - x) ** 2).sum(dim=1)
        loss = q.mean()
        loss.backward()
        opt.step()
        sched.step(loss.item())
        dq = (q.detach() - q_prev).abs()
        q_prev = q.detach()
        lr = opt.param_groups[0]["lr"]
        stationary = dq < TOL_DQ * lr
        if bool(((q.detach() < TOL_Q) | stationary).all()):
            break
    with torch.no_grad():
        q = 0.5 * ((torch.tanh(x @ Wt.T) - x) ** 2).sum(dim=1)
    x = x.detach().numpy()
    return x, q.numpy() < TOL_Q, stationary.numpy(), it + 1, peer_unique(W, x, q.numpy() < TOL_Q)


def peer_unique(W, x, converged):
    """FixedPointFinder's deduplication: keep the lowest-q point of each group within
    `tol_unique` (2-norm) among the converged points."""
    x = np.asarray(x, np.float64)
    r = np.tanh(x @ np.asarray(W, np.float64).T) - x
    q = 0.5 * np.sum(r**2, axis=1)
    pts, unique = x[converged][np.argsort(q[converged])], []
    for p in pts:
        if not unique or np.min(np.linalg.norm(np.asarray(unique) - p[None], axis=1)) > TOL_UNIQUE:
            unique.append(p)
    return np.array(unique).reshape(-1, x.shape[1])


def jax_adam(W, x0s):
    """The same algorithm in JAX: one `lax.while_loop`, optax Adam + reduce-on-plateau."""
    import optax

    opt = optax.chain(optax.adam(1.0), optax.contrib.reduce_on_plateau(factor=0.95, patience=2))

    def qs(x):
        return 0.5 * jnp.sum((jnp.tanh(x @ W.T) - x) ** 2, axis=1)

    def body(carry):
        x, state, q_prev, it, _ = carry
        (loss, q), grad = jax.value_and_grad(lambda y: (jnp.mean(qs(y)), qs(y)),
                                             has_aux=True)(x)
        updates, state = opt.update(grad, state, x, value=loss)
        stationary = jnp.abs(q - q_prev) < TOL_DQ * state[1].scale
        return optax.apply_updates(x, updates), state, q, it + 1, stationary

    @jax.jit
    def run(x):
        n = x.shape[0]
        carry = (x, opt.init(x), jnp.full(n, jnp.nan, x.dtype), 0, jnp.zeros(n, bool))
        x, _, q_prev, it, stationary = jax.lax.while_loop(
            lambda c: (c[3] < MAX_ITERS) & ~jnp.all((c[2] < TOL_Q) | c[4]), body, carry)
        return x, qs(x) < TOL_Q, stationary, it

    return run


def polish(W, X, steps=100):
    """Float64 Newton with backtracking, batched in NumPy: (points, residuals)."""
    n = W.shape[0]
    W = np.asarray(W, np.float64)
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
            ok = 0.5 * np.sum(res(X + alpha[:, None] * d) ** 2, axis=1) < (1 - 1e-4 * alpha) * q
            todo &= ~ok
            if not todo.any():
                break
            alpha = np.where(todo, alpha / 2, alpha)
        X = np.where(todo[:, None], X, X + alpha[:, None] * d)
    return X, np.max(np.abs(res(X)), axis=1)


def distinct(points, tol=1e-7):
    out = []
    for p in points:
        if not any(np.max(np.abs(p - q)) < tol for q in out):
            out.append(p)
    return np.array(out).reshape(-1, points.shape[-1] if len(points) else 0)


def score(truth, unique):
    """(true points reported, duplicates, reported points that are not true fixed points)."""
    hits = np.zeros(len(truth), int)
    wrong = 0
    for x in unique:
        d = np.max(np.abs(truth - x[None]), axis=1) if len(truth) else np.array([np.inf])
        if d.min() < 1e-3:
            hits[int(np.argmin(d))] += 1
        else:
            wrong += 1
    return int((hits > 0).sum()), int(np.maximum(hits - 1, 0).sum()), wrong


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--starts", type=int, default=1024)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--x64", action="store_true", help="run everything in float64")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--no-jax-adam", action="store_true", help="skip Adam in JAX")
    opts = parser.parse_args()
    if opts.x64:
        jax.config.update("jax_enable_x64", True)
    import jaxdyn as jd

    dtype = np.float64 if opts.x64 else np.float32
    system, u, W, x0s = problem(opts.n, opts.starts, dtype, opts.noise)
    Wj, x0j = jnp.asarray(W), jnp.asarray(x0s)
    print(f"machine: {machine()}; dtype {np.dtype(dtype).name}; N = {opts.n}, "
          f"{opts.starts} starts (trajectory + N(0, {opts.noise}²) noise)", flush=True)
    rows = []  # (label, seconds, resolved share, unique points, converged points, note)

    def default_call(x):
        fps = jd.fixed_points(system, x, u)
        return fps, fps.unique()

    first, warm, (fps, uniq) = time_jax(default_call, x0j, repeats=2)
    conv = np.asarray(uniq.valid & uniq.converged)
    rows.append(("jaxdyn, default call + unique()", warm, float(jnp.mean(fps.resolved)),
                 np.asarray(uniq.x)[conv], np.asarray(fps.x)[np.asarray(fps.converged)],
                 f"first call {first:.1f} s; {int(conv.sum())} fixed + "
                 f"{int((uniq.valid & uniq.slow).sum())} slow points; steps mean "
                 f"{float(fps.steps.mean()):.0f}; max error "
                 f"{float(jnp.max(uniq.error[conv])):.0e}"))
    print(f"jaxdyn default: {warm:.2f} s  ({rows[-1][-1]})", flush=True)

    if not opts.no_jax_adam:
        first, warm, (x, c, stat, iters) = time_jax(jax_adam(Wj, x0j), x0j, repeats=1)
        c = np.asarray(c)
        rows.append(("Adam on q, JAX (optax)", warm, float(np.mean(c | np.asarray(stat))),
                     peer_unique(W, x, c), np.asarray(x)[c],
                     f"first call {first:.1f} s; {int(iters)} iterations"))
        print(f"Adam on q, JAX: {warm:.2f} s", flush=True)

    torch_label = None
    if opts.no_torch:
        print("PyTorch baseline skipped (--no-torch).")
    else:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: skipping the FixedPointFinder-style baseline "
                  "(pip install '.[bench]').")
        else:
            t = time.perf_counter()
            x, c, stat, iters, unique = torch_adam(W, x0s)
            elapsed = time.perf_counter() - t
            torch_label = "Adam on q, PyTorch (FixedPointFinder's algorithm)"
            rows.append((torch_label, elapsed, float(np.mean(c | stat)), unique, x[c],
                         f"{iters} iterations, {torch.get_num_threads()} thread(s)"))
            print(f"Adam on q, PyTorch: {elapsed:.2f} s", flush=True)

    # The truth: every converged point of every method and Newton from every start, in float64.
    found = np.concatenate([r[4] for r in rows] + [x0s.astype(np.float64)])
    pts, res = polish(W, found)
    truth = distinct(pts[res < 1e-12])
    print(f"\ntruth: {len(truth)} distinct fixed points (float64 Newton from every start and "
          f"every converged point)")
    base = next((r[1] for r in rows if r[0] == torch_label), None)
    print("\n| method | time (s) | vs PyTorch | resolved | true points found | duplicates | "
          "not fixed points | right answer | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, secs, resolved, unique, _, note in rows:
        found, dup, wrong = score(truth, unique)
        right = resolved >= 0.95 and found == len(truth) and dup == 0 and wrong == 0
        ratio = f"{base / secs:.1f}×" if base else "—"
        print(f"| {label} | {secs:.2f} | {ratio} | {100 * resolved:.1f} % | {found} of "
              f"{len(truth)} | {dup} | {wrong} | {'yes' if right else 'no'} | {note} |")


if __name__ == "__main__":
    main()
