"""The figure of one trial of a cognitive task."""

from __future__ import annotations

from typing import Any

import numpy as np


def plot_trial(task: Any, trial: Any, outputs: Any = None, *, index: int = 0, ax: Any = None):
    """Plot one trial: its inputs (top) and targets, with outputs if given (bottom).

    **Arguments:**

    - `task`: the task that made `trial` (for channel names and the kind of output).
    - `trial`: a `Trial` of this task.
    - `outputs`: optional network outputs `[B, T, n_out]`; for choice tasks the softmax
      probabilities are drawn.
    - `index`: which trial of the batch.
    - `ax`: two matplotlib axes (inputs, outputs), or `None` for a new figure.

    **Returns:** the two axes. Epochs are shaded and named; padding is not drawn.
    """
    import jax
    import matplotlib.pyplot as plt

    from ..tasks._base import check_outputs

    batch = trial.inputs.shape[0]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
            0 <= index < batch):
        raise ValueError(f"`index` must be an int in [0, {batch}); got {index!r}.")
    if ax is None:
        _, ax = plt.subplots(2, 1, sharex=True, figsize=(6.0, 4.5))
    try:
        ax_in, ax_out = ax
    except (TypeError, ValueError):
        raise ValueError(
            f"`ax` must be a pair of axes (inputs, outputs); got {ax!r}.") from None
    n = int(trial.lengths[index])
    t = np.arange(n) * trial.dt
    epoch = np.asarray(trial.epoch[index, :n])
    starts = np.flatnonzero(np.diff(epoch, prepend=-2))
    for j, s in enumerate(starts):
        e = starts[j + 1] if j + 1 < len(starts) else n
        for a in (ax_in, ax_out):
            a.axvspan(s * trial.dt, e * trial.dt, color="0.9" if j % 2 else "0.97", lw=0)
        ax_in.text((s + e) / 2 * trial.dt, 1.0, trial.epoch_names[epoch[s]], ha="center",
                   va="bottom", fontsize=7, transform=ax_in.get_xaxis_transform())
    x = np.asarray(trial.inputs[index, :n])
    for i, name in enumerate(task.input_names):
        ax_in.plot(t, x[:, i], drawstyle="steps-post", lw=1.0, label=name)
    y = np.asarray(trial.targets[index, :n])
    for i, name in enumerate(task.output_names):
        ax_out.plot(t, y[:, i], "--", drawstyle="steps-post", color=f"C{i}", lw=1.0,
                    label=f"target {name}")
    if outputs is not None:
        out = np.asarray(check_outputs(outputs, trial)[index, :n])
        if task.kind == "choice":
            out = np.asarray(jax.nn.softmax(out, axis=-1))
        for i, name in enumerate(task.output_names):
            ax_out.plot(t, out[:, i], color=f"C{i}", lw=1.5, label=f"output {name}")
    ax_in.set_ylabel("input")
    ax_out.set_ylabel("p(output)" if task.kind == "choice" else "output")
    ax_out.set_xlabel("time (ms)")
    for a in (ax_in, ax_out):
        a.legend(fontsize=6, loc="upper left", frameon=False)
    return ax
