r"""The shared contract every crowdzoo model is written on.

Every model of the zoo reduces to two arrays:

* ``log_prior[t, k] = log p(z_t = k | params)`` — shape ``(T, K)`` or ``(K,)``;
* ``log_emit[n, k] = log p(y_n | z_{task(n)} = k, params)`` — shape ``(N, K)``, one row
  per answer (ragged: tasks get different numbers of answers).

:func:`marginalize` turns them into the exact marginal likelihood

.. math::

    \log p(y \mid \theta) = \sum_t \log \sum_k \exp\Big(\log p(z_t = k)
        + \sum_{n: task(n) = t} \log p(y_n \mid z_t = k)\Big)

with one segment sum over answers — no padding, no Python loop — and keeps the per-task
log-likelihood (for LOO) and the per-task posterior logits (for the label posterior).
Gold labels clamp ``z`` for the tasks they cover: the gold class keeps its prior mass, the
other classes get probability zero.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CrowdData", "Marginal", "marginalize", "crowd_data", "observe_or_generate"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CrowdData:
    """Integer-coded answers as JAX arrays: the only input a model program sees.

    A pytree: arrays are leaves and the sizes are static, so a jitted function of a
    ``CrowdData`` compiles once per data shape.

    Attributes
    ----------
    task, worker : int32 arrays (N,)
        Task and worker code of each answer.
    label : int32 array (N,) or None
        The answer; ``None`` when the model is asked to generate the answers.
    gold : int32 array (T,)
        Gold class of each task, ``-1`` where there is none.
    features : float array (T, D) or None
        Task covariates, for the learning-from-crowds models. When ``feature_scale`` is set
        (data built by :func:`crowd_data`) they are standardized: centred and scaled per
        column in float64 before the float32 cast (:mod:`crowdzoo.data.features`); else
        they are the raw features (the simulators).
    n_tasks, n_workers, n_classes : int
        Sizes (static).
    feature_center, feature_scale : float arrays (D,) or None
        The training statistics of the standardization: raw features are
        ``features * feature_scale + feature_center``; scale 0 marks a constant column.
    """

    task: jax.Array
    worker: jax.Array
    label: jax.Array | None
    gold: jax.Array
    features: jax.Array | None
    n_tasks: int = dataclasses.field(metadata={"static": True})
    n_workers: int = dataclasses.field(metadata={"static": True})
    n_classes: int = dataclasses.field(metadata={"static": True})
    #: whether the answers are grouped by task in increasing order (faster segment sums)
    tasks_sorted: bool = dataclasses.field(default=False, metadata={"static": True})
    feature_center: jax.Array | None = None
    feature_scale: jax.Array | None = None

    @property
    def n_answers(self) -> int:
        """Number of answers N."""
        return int(self.task.shape[0])

    def without_labels(self) -> CrowdData:
        """Return the same design (who answered what) with the answers removed, for simulation."""
        return dataclasses.replace(self, label=None)


def crowd_data(annotations, *, use_gold: bool = True) -> CrowdData:
    """Build a :class:`CrowdData` from an :class:`~crowdzoo.data.Annotations`.

    Parameters
    ----------
    annotations : Annotations
        The encoded answers.
    use_gold : bool
        When False, the gold labels are not passed to the model (they can still be used
        to score the result).
    """
    gold = annotations.gold if (use_gold and annotations.gold is not None) else None
    if gold is None:
        gold = np.full(annotations.n_tasks, -1, dtype=np.int32)
    feats = annotations.features
    center = scale = None
    if feats is not None:  # standardize in float64 before the float32 cast
        from ..data.features import feature_scaling, standardize_features

        center, scale = feature_scaling(feats)
        feats = standardize_features(feats, center, scale)
    task = np.asarray(annotations.task)
    return CrowdData(
        task=jnp.asarray(annotations.task, dtype=jnp.int32),
        worker=jnp.asarray(annotations.worker, dtype=jnp.int32),
        label=jnp.asarray(annotations.label, dtype=jnp.int32),
        gold=jnp.asarray(gold, dtype=jnp.int32),
        features=None if feats is None else jnp.asarray(feats, dtype=jnp.float32),
        n_tasks=int(annotations.n_tasks),
        n_workers=int(annotations.n_workers),
        n_classes=int(annotations.n_classes),
        tasks_sorted=bool(task.size == 0 or np.all(np.diff(task) >= 0)),
        feature_center=None if center is None else jnp.asarray(center, dtype=jnp.float32),
        feature_scale=None if scale is None else jnp.asarray(scale, dtype=jnp.float32),
    )


class Marginal(NamedTuple):
    """Result of :func:`marginalize`.

    Attributes
    ----------
    log_lik : scalar
        ``log p(y | params)`` summed over tasks (gold-clamped tasks include ``log p(z = gold)``).
    per_task : (T,)
        Per-task log-likelihood ``log p(y_t | params)``, the pointwise terms for LOO.
    logits : (T, K)
        Unnormalized log posterior of each task's label; ``softmax(logits)`` is
        ``p(z_t | y, params)``.
    """

    log_lik: jax.Array
    per_task: jax.Array
    logits: jax.Array


def clamp_gold(log_prior: jax.Array, gold: jax.Array) -> jax.Array:
    """Set ``log p(z_t = k)`` to ``-inf`` for every class but the gold one, where there is gold."""
    n_classes = log_prior.shape[-1]
    keep = (gold[:, None] < 0) | (gold[:, None] == jnp.arange(n_classes)[None, :])
    return jnp.where(keep, log_prior, -jnp.inf)


def marginalize(log_prior: jax.Array, log_emit: jax.Array, data: CrowdData) -> Marginal:
    """Exact marginal likelihood of the answers with the discrete true labels summed out.

    Parameters
    ----------
    log_prior : (T, K) or (K,)
        ``log p(z_t = k)``.
    log_emit : (N, K)
        ``log p(y_n | z = k)`` for the task of answer n.
    data : CrowdData
        Gives the task of each answer and the gold labels.

    Returns
    -------
    Marginal
        Total and per-task log-likelihood and the posterior logits.
    """
    log_prior = jnp.broadcast_to(log_prior, (data.n_tasks, data.n_classes))
    log_prior = clamp_gold(log_prior, data.gold)
    summed = jax.ops.segment_sum(log_emit, data.task, num_segments=data.n_tasks,
                                 indices_are_sorted=data.tasks_sorted)
    logits = log_prior + summed
    per_task = jax.nn.logsumexp(logits, axis=-1)
    return Marginal(per_task.sum(), per_task, logits)


def observe_or_generate(log_prior: jax.Array, log_emit_fn, data: CrowdData):
    """Return the likelihood block shared by every model program.

    With ``data.label`` given, adds the exact marginal likelihood as one ``numpyro.factor``
    inside ``plate("task")`` (so the per-task log-likelihood reaches ArviZ for LOO). Without
    labels, the model *generates*: ``z_t ~ Categorical(prior)`` (the gold class where gold is
    given) and each answer from ``log_emit_fn``'s row for ``z``.

    Parameters
    ----------
    log_prior : (T, K) or (K,)
        ``log p(z_t = k)``.
    log_emit_fn : callable
        ``log_emit_fn(labels) -> (N, K)`` array of ``log p(labels_n | z = k)``; called with
        ``data.label`` when observing. When generating, ``log_emit_fn(None)`` must return the
        full ``(N, K, L)`` table ``log p(y_n = l | z = k)``.
    data : CrowdData
        The answers (or only the design, when ``data.label`` is None).

    Returns
    -------
    Marginal or (z, y)
        The marginal when observing; the sampled labels when generating.
    """
    import numpyro
    import numpyro.distributions as dist

    if data.label is not None:
        m = marginalize(log_prior, log_emit_fn(data.label), data)
        with numpyro.plate("task", data.n_tasks):
            numpyro.factor("answers", m.per_task)
        return m
    log_prior = clamp_gold(jnp.broadcast_to(log_prior, (data.n_tasks, data.n_classes)), data.gold)
    with numpyro.plate("task", data.n_tasks):
        z = numpyro.sample("z", dist.Categorical(logits=log_prior))
    table = log_emit_fn(None)  # (N, K, L)
    row = jnp.take_along_axis(table, z[data.task][:, None, None], axis=1)[:, 0, :]
    with numpyro.plate("answer", data.n_answers):
        y = numpyro.sample("y", dist.Categorical(logits=row))
    return z, y
