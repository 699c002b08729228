"""Fixed points of a random tanh RNN: jaxdyn's batched Newton against Adam on q.

The network is h → tanh(W h), W ~ N(0, g²/N) with g = 1.5 (seed 0), zero input. Starts are
states of one simulated trajectory (after a burn-in) plus Gaussian noise, identical for every
method. The peer is the algorithm of FixedPointFinder (Golub & Sussillo, JOSS 2018), written
here from its paper and documentation: Adam (lr 1.0) on the batch mean of q = ½‖F(x) − x‖²,
the learning rate reduced on plateaus (factor 0.95, patience 2), stopping when every start has
q < tol_q = 1e-12 or |Δq| < 1e-20·lr, after at most 5,000 iterations; it runs in PyTorch (as that
tool does) and, as a control, the same algorithm in JAX (optax). Every figure of quality is
recomputed here in float64 from the returned points.

    python benchmarks/fixed_points.py [--n 128] [--starts 1024] [--x64] [--no-torch]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, time_jax

TOL_Q, TOL_DQ, MAX_ITERS = 1e-12, 1e-20, 5000


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
    return x.detach().numpy(), q.numpy() < TOL_Q, stationary.numpy(), it + 1


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


def quality(W, x, converged, slow, tol_unique=1e-3):
    """Float64 figures from the returned points: shares converged and slow/stalled, unique
    converged points, max residual ‖F(x) − x‖∞ and max q over the converged ones."""
    x64, W64 = np.asarray(x, np.float64), np.asarray(W, np.float64)
    r = np.tanh(x64 @ W64.T) - x64
    res, q = np.max(np.abs(r), axis=1), 0.5 * np.sum(r**2, axis=1)
    conv = np.asarray(converged)
    pts, unique = x64[conv][np.argsort(q[conv])], []
    for p in pts:
        if not unique or np.min(np.linalg.norm(np.asarray(unique) - p[None], axis=1)) > tol_unique:
            unique.append(p)
    slow = np.asarray(slow) & ~conv
    return dict(resolved=float(np.mean(conv | slow)), converged=float(np.mean(conv)),
                slow=float(np.mean(slow)),
                unique=len(unique), max_res=float(res[conv].max()) if conv.any() else np.nan,
                max_q=float(q[conv].max()) if conv.any() else np.nan)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--starts", type=int, default=1024)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--x64", action="store_true", help="run everything in float64")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--no-jax-adam", action="store_true", help="skip Adam in JAX")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--tol", type=float, default=None,
                        help="jaxdyn's tolerance on ‖F(x) − x‖∞; default 4e-7 in float32 (its "
                             "converged points then meet q < 1e-12, the peer's criterion), "
                             "1e-10 in float64")
    parser.add_argument("--methods", default="q,newton", help="jaxdyn methods to run")
    opts = parser.parse_args()
    if opts.x64:
        jax.config.update("jax_enable_x64", True)
    import jaxdyn as jd

    dtype = np.float64 if opts.x64 else np.float32
    tol = opts.tol if opts.tol is not None else (1e-10 if opts.x64 else 4e-7)
    system, u, W, x0s = problem(opts.n, opts.starts, dtype, opts.noise)
    Wj, x0j = jnp.asarray(W), jnp.asarray(x0s)
    print(f"machine: {machine()}; dtype {np.dtype(dtype).name}; N = {opts.n}, "
          f"{opts.starts} starts (trajectory + N(0, {opts.noise}²) noise)")
    rows = []

    for method in opts.methods.split(","):
        run = lambda x: jd.fixed_points(system, x, u, method=method, linearise=False,
                                        tol=tol, chunk_size=opts.chunk_size)
        first, warm, fps = time_jax(run, x0j, repeats=1)
        t = time.perf_counter()
        uniq = fps.unique(1e-3, size=64).linearise(system)
        jax.block_until_ready(uniq.eigvals)
        post = time.perf_counter() - t
        qual = quality(W, fps.x, fps.converged, fps.slow)
        label = f"jaxdyn method={method!r}"
        note = (f"tol {tol:g}; compile {first - warm:.1f} s; unique + linearise "
                f"{post:.1f} s; steps mean {float(fps.steps.mean()):.0f}, max "
                f"{int(fps.steps.max())}")
        rows.append((label, warm, qual, note))
        print(f"{label}: {warm:.2f} s  {qual}  ({note})", flush=True)

    if not opts.no_jax_adam:
        first, warm, (x, conv, stat, iters) = time_jax(jax_adam(Wj, x0j), x0j, repeats=1)
        qual = quality(W, x, conv, stat)
        note = f"compile {first - warm:.1f} s; {int(iters)} iterations"
        rows.append(("Adam on q, JAX (optax)", warm, qual, note))
        print(f"Adam on q, JAX: {warm:.2f} s  {qual}  ({note})", flush=True)

    torch_row = None
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
            x, conv, stat, iters = torch_adam(W, x0s)
            elapsed = time.perf_counter() - t
            qual = quality(W, x, conv, stat)
            torch_row = ("Adam on q, PyTorch (FixedPointFinder's algorithm)", elapsed, qual,
                         f"{iters} iterations, {torch.get_num_threads()} thread(s)")
            rows.append(torch_row)
            print(f"Adam on q, PyTorch: {elapsed:.2f} s  {qual}  ({iters} iterations)")

    base = torch_row[1] if torch_row else None
    # Slow points: jaxdyn's are verified minima of q (method="q"); the peer's are starts that
    # its |Δq| < 1e-20·lr rule stopped without q < 1e-12.
    per_conv = {label: secs / max(q["converged"] * opts.starts, 1) for label, secs, q, _ in rows}
    base_conv = per_conv[torch_row[0]] if torch_row else None
    print("\n| method | time to converge (s) | vs PyTorch | ms per converged start | vs PyTorch "
          "| resolved | converged | slow / stalled | unique fixed points | max ‖F(x)−x‖∞ | "
          "max q | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, secs, q, note in rows:
        ratio = f"{base / secs:.1f}×" if base else "—"
        ratio_conv = f"{base_conv / per_conv[label]:.1f}×" if base_conv else "—"
        print(f"| {label} | {secs:.2f} | {ratio} | {1e3 * per_conv[label]:.2f} | {ratio_conv} "
              f"| {100 * q['resolved']:.1f} % | {100 * q['converged']:.1f} % | "
              f"{100 * q['slow']:.1f} % | {q['unique']} | {q['max_res']:.1e} | "
              f"{q['max_q']:.1e} | {note} |")


if __name__ == "__main__":
    main()
