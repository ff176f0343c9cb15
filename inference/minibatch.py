"""SVI with minibatches of tasks: NumPyro plate subsampling with the exact per-task marginal.

For a model whose per-task quantities are all summed out (the true label ``z_t``: Dawid-Skene,
one-coin, MACE, ...), the log joint is ``log p(theta) + sum_t log p(y_t | theta)`` with
``log p(y_t | theta) = logsumexp_k [log p(z_t = k) + sum_{n in t} log p(y_n | z_t = k)]``
exact per task. A minibatch of ``B`` tasks drawn uniformly (with replacement) gives the unbiased
estimate
``log p(theta) + (T / B) sum_{t in batch} log p(y_t | theta)``; NumPyro's
``plate("task", T, subsample_size=B)`` draws the batch and applies the ``T / B`` scale
(Hoffman et al. 2013, stochastic variational inference). Each step costs ``B`` tasks' answers
instead of all ``N``.

The answers are laid out per task (``(T, m)``, ``m`` = the most answers any task has,
padding masked), so a batch is a row gather; the batch's answers are handed to the model's
own ``log_likelihood`` as a small :class:`~crowdzoo.models.core.CrowdData` (padding answers
point past the last task and are dropped by the segment sum).

Models with per-task *parameters* (GLAD's item difficulty, ...) are refused: their
``sample_params`` draws all ``T`` of them at every step, and a subsampled step would have to
update only the batch's (a local guide): each difficulty would then move once per epoch, as
in full-batch SVI, while the global parameters moved ``T / B`` times, so the minibatch
advantage is lost on exactly the parameters that need the most steps.

References
----------
1. M. D. Hoffman, D. M. Blei, C. Wang, J. Paisley. Stochastic Variational Inference.
   JMLR 14:1303-1347, 2013.
2. NumPyro, ``numpyro.plate(..., subsample_size=...)``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

__all__ = ["TaskLayout", "task_layout", "minibatch_model", "check_minibatch_model"]


class TaskLayout(NamedTuple):
    """Answers per task, padded: ``worker`` / ``label`` ``(T, m)`` int32, ``mask`` bool."""

    worker: jax.Array
    label: jax.Array
    mask: jax.Array


def task_layout(task, worker, label, n_tasks: int) -> TaskLayout:
    """Lay the answers out as ``(T, m)`` rows, one per task (``m`` = max answers per task)."""
    task = np.asarray(task)
    order = np.argsort(task, kind="stable")
    counts = np.bincount(task, minlength=n_tasks)
    m = max(int(counts.max()), 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(task.size) - np.repeat(starts, counts)
    w = np.zeros((n_tasks, m), np.int32)
    y = np.zeros((n_tasks, m), np.int32)
    mask = np.zeros((n_tasks, m), bool)
    ts = task[order]
    w[ts, pos] = np.asarray(worker)[order]
    y[ts, pos] = np.asarray(label)[order]
    mask[ts, pos] = True
    return TaskLayout(jnp.asarray(w), jnp.asarray(y), jnp.asarray(mask))


def check_minibatch_model(model) -> None:
    """Refuse models with per-task parameters (see the module docstring)."""
    per_task = [k for k, dims in model.dims.items() if "task" in dims]
    if per_task or getattr(model, "needs_features", False):
        raise ValueError(
            f"{model.name} has per-task parameters ({', '.join(per_task) or 'features'}): "
            "minibatch SVI over tasks needs every per-task quantity summed out "
            "(Dawid-Skene, one-coin, MACE, ...)")


def minibatch_model(model, batch_size: int):
    """Build the NumPyro program of ``model`` with the task likelihood on a subsampled plate.

    The program is called as ``program(layout, design)``: ``layout`` from
    :func:`task_layout`, ``design`` the full :class:`~crowdzoo.models.core.CrowdData` (its
    sizes give the parameters' shapes). Pass them as arguments (``svi.update(state, layout,
    design)``), not as closure constants: XLA folds captured arrays into the program, and
    compiling a crowd of a million answers as constants takes tens of seconds. For the same
    reason initialize SVI on the first few rows of the layout (``svi.init(key,
    TaskLayout(*(x[:B] for x in layout)), design)``): the guide needs only the parameters'
    shapes, and NumPyro's initialization traces the program with its arguments as constants.
    """
    check_minibatch_model(model)
    B = int(batch_size)

    def program(layout: TaskLayout, design):
        T, m = layout.worker.shape
        b = min(B, T)
        params = model.sample_params(design)
        # the batch, drawn with replacement in O(B): NumPyro's own draw on CPU is a B-step
        # Fisher-Yates scan over all T indices (most of a step's time at B = 10k); the plate
        # takes the substituted indices and still scales the batch by T / B
        key = numpyro.prng_key()
        pick = (jax.random.randint(key, (b,), 0, T) if b < T and key is not None
                else jnp.arange(T))
        local = jnp.repeat(jnp.arange(b, dtype=jnp.int32), m)
        with numpyro.handlers.substitute(data={"task": pick}), \
                numpyro.plate("task", T, subsample_size=b) as idx:
            mask = layout.mask[idx].ravel()
            mini = dataclasses.replace(
                design, task=jnp.where(mask, local, b), worker=layout.worker[idx].ravel(),
                label=layout.label[idx].ravel(), gold=jnp.full((b,), -1, jnp.int32),
                features=None, n_tasks=b, tasks_sorted=True)
            numpyro.factor("answers", model.log_likelihood(params, mini).per_task)

    return program
