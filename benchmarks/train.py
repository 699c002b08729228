"""Training: time to a trained network, jaxdyn against NeuroGym + PyTorch, each at its best
recipe, in one run.

Targets: PerceptualDecisionMaking ≥ 0.85 and ContextDecisionMaking ≥ 0.80 (accuracy by the
task's decision-epoch rule on 2,000 fresh trials, coherence-0 trials included; a GRU-64 with a
linear readout on both sides). Both sides are scored the same way: the PyTorch network is
imported with `jd.rnn.from_torch` and run on the same fresh jaxdyn trials.

- jaxdyn: `jd.train` with its recipe (batch 64, Adam 1e-2 with a cosine decay; CDM with
  decision weight 20) at 300, 500, 700, 1,000, … steps: the first length at which every
  network meets the target counts, its whole training time, warm (compile reported apart).
- NeuroGym + PyTorch: `neurogym.Dataset` windows (32 × 100 steps), `nn.GRU` + `nn.Linear`,
  cross-entropy, Adam; its tutorial recipe (lr 1e-3) and a tuned one (lr 1e-2). Accuracy is
  checked every 25 steps; the time counted is training time only, up to the first check at
  target. PDM only: NeuroGym's ContextDecisionMaking-v0 holds the context fixed (5 inputs,
  no context cue), a different and easier task than the two-context one, so CDM is timed
  for jaxdyn alone.
- Per network for 16 seeds: jaxdyn trains the 16 as one vmapped program; the peer trains
  them one after another (its per-network time is that of one run).

    python benchmarks/train.py [--seeds 16] [--tasks PDM,CDM] [--no-torch]
"""

from __future__ import annotations

import argparse
import sys
import time

import equinox as eqx
import jax
import jax.random as jr
from _common import machine

H = 64
TARGETS = {"PerceptualDecisionMaking": 0.85, "ContextDecisionMaking": 0.80}
# jaxdyn's recipe (batch 64, Adam 1e-2 with a cosine decay) at an increasing number of steps:
# the first length at which every network meets the target counts.
RECIPES = {
    "PerceptualDecisionMaking": dict(batch_size=64),
    "ContextDecisionMaking": dict(batch_size=64, decision_weight=20.0),
}
STEPS = (300, 500, 700, 1000, 1500, 2000)
PEER = {  # (label, learning rate, class weights)
    "PerceptualDecisionMaking": [("tutorial, lr 1e-3", 1e-3, None), ("lr 1e-2", 1e-2, None)],
}
NG_IDS = {"PerceptualDecisionMaking": "PerceptualDecisionMaking-v0"}


def accuracy(task, model, n=2000):
    trial = task.sample(jr.PRNGKey(12345), n)
    _, out = jax.vmap(lambda u: model.run(None, u))(trial.inputs)
    return float(task.score(out, trial))


def jaxdyn_time(task, seeds):
    """(warm seconds, compile seconds, steps, accuracies) of the shortest recipe in `STEPS` at
    which all `seeds` networks meet the target (the last one tried when none does)."""
    import jaxdyn as jd

    keys = jr.split(jr.PRNGKey(0), seeds)
    build = lambda k: jd.rnn.GRU(task.n_in, H, task.n_out, key=k)  # noqa: E731
    model = build(keys[0]) if seeds == 1 else eqx.filter_vmap(build)(keys)
    key = jr.PRNGKey(1) if seeds == 1 else jr.split(jr.PRNGKey(1), seeds)
    for steps in STEPS:
        kw = dict(RECIPES[type(task).__name__], steps=steps, log_every=steps, progress=False)
        t = time.perf_counter()
        jax.block_until_ready(jd.train(model, task, key, **kw)[0])
        first = time.perf_counter() - t
        t = time.perf_counter()
        trained, _ = jd.train(model, task, key, **kw)
        jax.block_until_ready(trained)
        warm = time.perf_counter() - t
        if seeds == 1:
            accs = [accuracy(task, trained)]
        else:
            accs = [accuracy(task, jax.tree_util.tree_map(
                lambda a, i=i: a[i] if eqx.is_array(a) else a, trained)) for i in range(seeds)]
        if min(accs) >= TARGETS[type(task).__name__]:
            break
    return warm, max(first - warm, 0.0), steps, accs


def peer_time(task, lr, weights, max_steps=3000, check=25):
    """Training seconds until the NeuroGym + PyTorch network first scores the target (None if
    not within `max_steps`), the steps, and the last accuracy."""
    import warnings

    import neurogym as ngym
    import torch

    import jaxdyn as jd

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # its fastest setting beside JAX's threads in this process
    torch.manual_seed(0)
    name = type(task).__name__
    dataset = ngym.Dataset(NG_IDS[name], env_kwargs={"dt": 100}, batch_size=32, seq_len=100)
    dataset.env.reset(seed=0)
    n_in, n_out = dataset.env.observation_space.shape[0], dataset.env.action_space.n
    gru, readout = torch.nn.GRU(n_in, H), torch.nn.Linear(H, n_out)
    opt = torch.optim.Adam(list(gru.parameters()) + list(readout.parameters()), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=None if weights is None else torch.tensor(weights))
    spent, acc = 0.0, 0.0
    for step in range(1, max_steps + 1):
        t = time.perf_counter()
        x, y = dataset()
        out = readout(gru(torch.from_numpy(x).float())[0])
        loss = loss_fn(out.view(-1, n_out), torch.from_numpy(y.flatten()).long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        spent += time.perf_counter() - t
        if step % check == 0:
            model = jd.rnn.from_torch(gru, readout)
            acc = accuracy(task, model)
            if acc >= TARGETS[name]:
                return spent, step, acc
    return None, max_steps, acc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--tasks", default="PDM,CDM")
    parser.add_argument("--no-torch", action="store_true")
    opts = parser.parse_args()
    import jaxdyn as jd

    print(f"machine: {machine()}; GRU {H}, float32")
    rows = []
    for short in opts.tasks.split(","):
        task = jd.tasks.get_task(short)
        name = type(task).__name__
        target = TARGETS[name]
        for seeds in (1, opts.seeds):
            warm, comp, steps, accs = jaxdyn_time(task, seeds)
            run = "jaxdyn, 1 network" if seeds == 1 else \
                f"jaxdyn, {seeds} vmapped (per network)"
            shown = f"{accs[0]:.3f}" if seeds == 1 else f"{min(accs):.3f}–{max(accs):.3f}"
            rows.append((name, run, f"{steps} steps × {RECIPES[name]['batch_size']}",
                         warm / seeds, comp, min(accs) >= target, shown))
            print(rows[-1], flush=True)
        if opts.no_torch or name not in PEER:
            continue
        if opts.no_torch:
            continue
        try:
            for label, lr, weights in PEER[name]:
                secs, steps, acc = peer_time(task, lr, weights)
                rows.append((name, f"NeuroGym + PyTorch, {label}", f"{steps} steps", secs, 0.0,
                             secs is not None, f"{acc:.3f}"))
                print(rows[-1], flush=True)
        except ImportError as e:
            print(f"peer not installed ({e.name}): pip install '.[bench]'", file=sys.stderr)

    print("\n| task | run | recipe | time to target (s) | compile (s) | target met | accuracy | "
          "vs best peer |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in TARGETS:
        mine = [r for r in rows if r[0] == name]
        peers = [r[3] for r in mine if r[1].startswith("NeuroGym") and r[3] is not None]
        best = min(peers) if peers else None
        for _, run, recipe, secs, comp, met, acc in mine:
            ratio = f"{best / secs:.1f}×" if best and secs and run.startswith("jaxdyn") else "—"
            shown = f"{secs:.2f}" if secs is not None else "not reached"
            print(f"| {name} | {run} | {recipe} | {shown} | {comp:.1f} | "
                  f"{'yes' if met else 'no'} | {acc} | {ratio} |")


if __name__ == "__main__":
    jax.config.update("jax_platforms", "cpu")
    main()
