"""One-coin Dawid-Skene: one accuracy per worker, errors spread uniformly.

Generative story (plates: ``worker`` W, ``task`` T, ``answer`` N)::

    pi          ~ Dirichlet(class_prior)
    accuracy_w  ~ Beta(a, b)
    z_t         ~ Categorical(pi)
    y_n | z     = z_{task_n}                       with probability accuracy_{worker_n}
                  any other class, uniformly       with probability 1 - accuracy_{worker_n}

i.e. the confusion matrix of worker w has ``accuracy_w`` on the diagonal and
``(1 - accuracy_w) / (K - 1)`` elsewhere. The MAP is found by closed-form EM: the expected
number of correct answers of a worker plus the Beta pseudo-counts.

References
----------
1. Y. Zhang, X. Chen, D. Zhou, M. I. Jordan. Spectral Methods Meet EM: A Provably Optimal
   Algorithm for Crowdsourcing. JMLR 17(102):1-44, 2016. (the one-coin model, section 2)
2. A. P. Dawid and A. M. Skene. JRSS C 28(1):20-28, 1979. doi:10.2307/2346806
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData
from .dawid_skene import dirichlet_map

__all__ = ["OneCoin"]


class OneCoin(CrowdModel):
    """One-coin Dawid-Skene with a Beta prior on each worker's accuracy.

    Parameters
    ----------
    accuracy_prior : (a, b)
        Beta prior of each worker's accuracy; the default ``(3, 2)`` has its mode at 2/3 and
        keeps the MAP interior. ``(1, 1)`` gives the maximum-likelihood EM of Crowd-Kit.
    class_prior : float or array (K,)
        Dirichlet concentration of the class frequencies.
    eps : float
        Accuracies are kept in ``[eps, 1 - eps]``.
    """

    name = "one_coin"
    title = "One-coin Dawid-Skene (one accuracy per worker)"
    reference = (
        "Zhang, Chen, Zhou & Jordan (2016), Spectral Methods Meet EM: A Provably Optimal "
        "Algorithm for Crowdsourcing, JMLR 17(102); Dawid & Skene (1979)"
    )
    dims = {"pi": ("true_class",), "accuracy": ("worker",)}

    def __init__(self, accuracy_prior=(3.0, 2.0), class_prior=2.0, eps: float = 1e-10):
        self.accuracy_prior = tuple(float(v) for v in accuracy_prior)
        self.class_prior = class_prior
        self.eps = eps

    def _class_conc(self, data):
        return jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))

    def sample_params(self, data: CrowdData) -> Params:
        """``pi ~ Dirichlet``, ``accuracy_w ~ Beta`` in plate worker."""
        pi = numpyro.sample("pi", dist.Dirichlet(self._class_conc(data)))
        with numpyro.plate("worker", data.n_workers):
            accuracy = numpyro.sample("accuracy", dist.Beta(*self.accuracy_prior))
        return {"pi": pi, "accuracy": accuracy}

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log acc`` where the answer equals the class, ``log((1-acc)/(K-1))`` elsewhere."""
        K = data.n_classes
        acc = jnp.clip(params["accuracy"][data.worker], self.eps, 1 - self.eps)[:, None]
        right, wrong = jnp.log(acc), jnp.log1p(-acc) - jnp.log(K - 1.0)
        if labels is None:
            eye = jnp.eye(K, dtype=bool)[None]
            return jnp.log(params["pi"]), jnp.where(eye, right[:, :, None], wrong[:, :, None])
        hit = labels[:, None] == jnp.arange(K)[None, :]
        return jnp.log(params["pi"]), jnp.where(hit, right, wrong)

    has_em = True

    def init_params(self, data: CrowdData) -> Params:
        """One M-step from the soft majority vote."""
        return self.m_step(soft_majority_vote(data), data)

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step (it does not depend on the current parameters)."""
        return self.m_step(resp, data)

    def m_step(self, resp, data: CrowdData) -> Params:
        """``(correct_w + a - 1) / (n_w + a + b - 2)`` and the class-frequency mode."""
        a, b = self.accuracy_prior
        correct = jnp.zeros(data.n_workers).at[data.worker].add(resp[data.task, data.label])
        total = jnp.zeros(data.n_workers).at[data.worker].add(1.0)
        acc = (correct + a - 1.0) / jnp.maximum(total + a + b - 2.0, self.eps)
        acc = jnp.clip(acc, self.eps, 1 - self.eps)
        pi = dirichlet_map(resp.sum(0), self._class_conc(data), self.eps)
        return {"pi": pi, "accuracy": acc}

