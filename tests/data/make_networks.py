"""Train the small networks that downstream tests analyse, and save them next to this file.

    python tests/data/make_networks.py

Runs in float32 on the CPU in about a minute; the files are committed so tests need no
training. `tests/conftest.py::trained_network` loads them. The flip-flop network is trained
with every bit pulsed at step 0, so its memories are the 8 corners of the cube (no "not yet
pulsed" state): 8 stable fixed points. The integrator is a line attractor.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr

import jaxdyn as jd

HERE = Path(__file__).parent

# name: (task name, task options, architecture, hidden units, jd.train options[, model options])
NETWORKS = {
    "flipflop": ("FlipFlop", {"initial_pulse": True}, "GRU", 16,
                 {"steps": 2000, "batch_size": 64}),
    "integrator": ("Integrator", {}, "VanillaRNN", 16, {"steps": 3000, "batch_size": 64}),
    "angular": ("AngularIntegration", {}, "GRU", 32, {}),
    "pdm": ("PerceptualDecisionMaking", {}, "GRU", 32, {}),
    "cdm": ("ContextDecisionMaking", {}, "CTRNN", 32,
            {"steps": 2000, "batch_size": 64, "decision_weight": 10.0},
            {"dt": 100.0, "tau": 200.0}),
}


def main():
    report = {}
    for i, (name, (task_name, task_kwargs, arch, hidden, options, *rest)) in enumerate(
            NETWORKS.items()):
        model_kwargs = rest[0] if rest else {}
        task = jd.tasks.get_task(task_name, **task_kwargs)
        model = getattr(jd.rnn, arch)(task.n_in, hidden, task.n_out, key=jr.PRNGKey(i),
                                      **model_kwargs)
        model, hist = jd.train(model, task, jr.PRNGKey(100 + i), progress=True, **options)
        score = float(jd.evaluate(model, task, jr.PRNGKey(7), 512))
        trial = task.sample(jr.PRNGKey(7), 512)
        _, out = jax.vmap(lambda u, m=model: m.run(None, u))(trial.inputs)
        loss = float(task.loss(out, trial))
        jd.save_model(HERE / f"{name}.eqx", model)
        report[name] = {"task": task_name, "task_kwargs": task_kwargs, "architecture": arch,
                        "n_hidden": hidden, "model_kwargs": model_kwargs, "train": options,
                        "score": round(score, 4),
                        "loss": round(loss, 5),
                        "final_train_loss": float(jnp.mean(hist.loss[-20:]))}
        print(name, report[name])
    (HERE / "networks.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
