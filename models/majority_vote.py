"""Majority vote: the baseline every aggregation method is compared with.

Each task's label posterior is the indicator of the most frequent answer(s), ties split
evenly (so its expected accuracy is what a random tie-break would score). It has no
parameters and no uncertainty model, so it is fitted by ``method="map"`` only. Gold labels
clamp the tasks they cover, as in every model of the zoo.
"""

from __future__ import annotations

import jax.numpy as jnp

from .base import Baseline
from .core import CrowdData

__all__ = ["MajorityVote"]


class MajorityVote(Baseline):
    """Majority vote with ties split evenly (a baseline: no parameters, MAP only)."""

    name = "majority_vote"
    title = "Majority vote (ties split evenly)"
    reference = ("Baseline; see e.g. Zheng et al. (2017), Truth Inference in Crowdsourcing: "
                 "Is the Problem Solved? VLDB 10(5)")

    def task_posterior(self, data: CrowdData):
        """Task posterior ``(T, K)``: the share of the tied-top classes."""
        counts = jnp.zeros((data.n_tasks, data.n_classes)).at[data.task, data.label].add(1.0)
        top = counts == counts.max(-1, keepdims=True)
        post = top / top.sum(-1, keepdims=True)
        onehot = jnp.eye(data.n_classes)[jnp.maximum(data.gold, 0)]
        return jnp.where(data.gold[:, None] >= 0, onehot, post)
