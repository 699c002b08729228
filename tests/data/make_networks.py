"""Train the small networks that downstream tests analyse, and save them next to this file.

    python tests/data/make_networks.py

Runs in float32 on the CPU in about a minute; the files are committed so tests need no
training. `tests/conftest.py::trained_network` loads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr

import jaxdyn as jd

HERE = Path(__file__).parent

# name: (task, architecture, constructor kwargs, steps, learning rate)
NETWORKS = {
    "flipflop": (jd.tasks.FlipFlop(), "VanillaRNN", dict(n_hidden=24), 3000, 5e-3),
    "integrator": (jd.tasks.Integrator(), "VanillaRNN", dict(n_hidden=16), 3000, 1e-2),
    "angular": (jd.tasks.AngularIntegration(), "GRU", dict(n_hidden=32), 2000, 5e-3),
    "pdm": (jd.tasks.PerceptualDecisionMaking(), "GRU", dict(n_hidden=32), 600, 1e-2),
}


def main():
    report = {}
    for i, (name, (task, arch, kw, steps, lr)) in enumerate(NETWORKS.items()):
        cls = getattr(jd.rnn, arch)
        model = cls(task.n_in, kw["n_hidden"], task.n_out, key=jr.PRNGKey(i))
        model, hist = jd.train(model, task, jr.PRNGKey(100 + i), steps=steps, batch_size=64,
                               learning_rate=lr, progress=True, log_every=100)
        score = float(jd.evaluate(model, task, jr.PRNGKey(7), 512))
        trial = task.sample(jr.PRNGKey(7), 512)
        _, out = jax.vmap(lambda u, m=model: m.run(None, u))(trial.inputs)
        loss = float(task.loss(out, trial))
        jd.save_model(HERE / f"{name}.eqx", model)
        report[name] = {"task": type(task).__name__, "architecture": arch, **kw,
                        "steps": steps, "learning_rate": lr, "score": round(score, 4),
                        "loss": round(loss, 5),
                        "final_train_loss": float(jnp.mean(hist.loss[-20:]))}
        print(name, report[name])
    (HERE / "networks.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
