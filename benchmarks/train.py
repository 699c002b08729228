"""Training throughput: a 64-unit GRU on PerceptualDecisionMaking, batch 32, 100 time steps, Adam.

jaxdyn (`jd.train`: trials generated in JAX, whole chunks of steps in one compiled `lax.scan`)
against the usual NeuroGym + PyTorch loop (`neurogym.Dataset` windows of 100 steps, an
`nn.GRU` + `nn.Linear`, cross-entropy, Adam), for one network and for 16 seeds (jaxdyn: one
vmapped program; PyTorch: 16 sequential runs, measured on one and scaled). Trials of jaxdyn's
task are made 100 steps long (stimulus 9,800 ms at dt 100) so both sides run 100 recurrent
steps per sequence. Prints steps per second per network and the ratios.

    python benchmarks/train.py [--steps 200] [--seeds 16]
"""

from __future__ import annotations

import argparse
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from _common import machine

N_HIDDEN, BATCH, SEQ = 64, 32, 100


def jaxdyn_rate(n_seeds: int, steps: int) -> tuple[float, float, float]:
    """(steps/s per network, compile+first-chunk seconds, final mean loss)."""
    import jaxdyn as jd

    task = jd.tasks.PerceptualDecisionMaking(timing={"stimulus": 9800})
    assert task.n_steps == SEQ, task.n_steps
    keys = jr.split(jr.PRNGKey(0), n_seeds)
    build = lambda k: jd.rnn.GRU(task.n_in, N_HIDDEN, task.n_out, key=k)  # noqa: E731
    model = build(keys[0]) if n_seeds == 1 else eqx.filter_vmap(build)(keys)
    key = keys[0] if n_seeds == 1 else keys
    kw = dict(batch_size=BATCH, learning_rate=1e-3, grad_clip=None, progress=False)
    t = time.perf_counter()
    jd.train(model, task, key, steps=steps, log_every=steps, **kw)  # compiles
    first = time.perf_counter() - t
    t = time.perf_counter()
    _, hist = jd.train(model, task, key, steps=steps, log_every=steps, **kw)
    warm = time.perf_counter() - t
    return steps / warm, first, float(jnp.nanmean(hist.loss[..., -1]))


def torch_rate(steps: int) -> tuple[float, float, float]:
    """(steps/s, NeuroGym batches/s alone, final loss) of the NeuroGym + PyTorch loop."""
    import warnings

    import neurogym as ngym
    import torch

    warnings.filterwarnings("ignore")
    # One intra-op thread: PyTorch's fastest setting for this size on two cores (51 against 44
    # steps/s with two), and with more it fights the JAX thread pool already in this process.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dataset = ngym.Dataset("PerceptualDecisionMaking-v0", env_kwargs={"dt": 100},
                           batch_size=BATCH, seq_len=SEQ)
    n_in, n_out = dataset.env.observation_space.shape[0], dataset.env.action_space.n

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(n_in, N_HIDDEN)
            self.out = torch.nn.Linear(N_HIDDEN, n_out)

        def forward(self, x):
            return self.out(self.gru(x)[0])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        x, y = dataset()
        x = torch.from_numpy(x).float()
        y = torch.from_numpy(y.flatten()).long()
        opt.zero_grad()
        loss = loss_fn(net(x).view(-1, n_out), y)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(5):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    rate = steps / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(steps):
        dataset()
    data_rate = steps / (time.perf_counter() - t)
    return rate, data_rate, loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=16)
    opts = parser.parse_args()
    print(f"machine: {machine()}; GRU {N_HIDDEN}, batch {BATCH}, {SEQ} steps per sequence")
    one, c1, l1 = jaxdyn_rate(1, opts.steps)
    many, cm, lm = jaxdyn_rate(opts.seeds, opts.steps)
    print(f"jaxdyn, 1 network      : {one:8.1f} steps/s  (compile+first run {c1:.1f} s, "
          f"loss {l1:.3f})")
    print(f"jaxdyn, {opts.seeds} vmapped      : {many * opts.seeds:8.1f} network-steps/s "
          f"({many:.1f} steps/s of the batch; compile+first run {cm:.1f} s, loss {lm:.3f})")
    try:
        rate, data_rate, lt = torch_rate(opts.steps)
    except ImportError as e:
        print(f"peer not installed ({e.name}): pip install '.[bench]'", file=sys.stderr)
        return
    print(f"NeuroGym + PyTorch     : {rate:8.1f} steps/s  (NeuroGym batches alone "
          f"{data_rate:.0f}/s, loss {lt:.3f})")
    print(f"ratio, single network  : {one / rate:6.1f}x")
    print(f"ratio, {opts.seeds} seeds per network: {many * opts.seeds / rate:6.1f}x "
          f"(jaxdyn vmapped vs {opts.seeds} sequential PyTorch runs)")


if __name__ == "__main__":
    jax.config.update("jax_platforms", "cpu")
    main()
