r"""Class-conditional Dawid-Skene: one accuracy per worker *and true class*, errors uniform.

Between the one-coin model (one accuracy per worker) and Dawid-Skene (a full confusion
matrix per worker) sits the model of the R package rater: worker ``w`` answers a task of
true class ``k`` correctly with probability ``accuracy[w, k]`` and otherwise picks one of
the other ``K - 1`` classes uniformly. Generative story (plates: ``worker`` W,
``true_class`` K, ``task`` T, ``answer`` N)::

    pi               ~ Dirichlet(class_prior)
    accuracy[w, k]   ~ Beta(a, b)
    z_t              ~ Categorical(pi)
    y_n | z = k      = k                                  with probability accuracy[worker_n, k]
                       any other class, uniformly         with probability 1 - accuracy[worker_n, k]

so ``log p(y_n | z = k) = log accuracy[w_n, k]`` if ``y_n = k`` and
``log(1 - accuracy[w_n, k]) - log(K - 1)`` otherwise (rater's
``class_conditional_dawid_skene.stan`` line for line). For K = 2 it is Raykar's two-coin
model (sensitivity and specificity).

The MAP is closed-form EM. With ``q_t = p(z_t | y)`` from the E-step, the expected answers of
worker ``w`` on tasks of class ``k`` and the expected correct ones are

.. math::

    n_{wk} = \sum_{n: w_n = w} q_{t_n}(k), \qquad c_{wk} = \sum_{n: w_n = w} q_{t_n}(k)\,[y_n = k],

and the M-step is the Beta posterior mode ``(c_wk + a - 1) / (n_wk + a + b - 2)``.

References
----------
1. J. Pullin, L. Gurrin, D. Vukcevic. Statistical Models of Repeated Categorical Ratings:
   The R Package rater. The R Journal 15(3), 2023. https://doi.org/10.32614/RJ-2023-064
   (``class_conditional_dawid_skene``: ``inst/stan/class_conditional_dawid_skene.stan``).
2. A. P. Dawid and A. M. Skene. JRSS C 28(1):20-28, 1979. https://doi.org/10.2307/2346806
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData
from .dawid_skene import dirichlet_map

__all__ = ["ClassConditionalDawidSkene"]


class ClassConditionalDawidSkene(CrowdModel):
    """Class-conditional Dawid-Skene (rater): ``accuracy[worker, true_class]``, errors uniform.

    Parameters
    ----------
    accuracy_prior : (a, b)
        Beta prior of every ``accuracy[w, k]``; the default ``(3, 2)`` (as the one-coin
        model's) has its mode at 2/3 and keeps the MAP interior.
    class_prior : float or array (K,)
        Dirichlet concentration of the class frequencies (rater: 3).
    eps : float
        Accuracies are kept in ``[eps, 1 - eps]``.

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("class_conditional_dawid_skene", crowdzoo.data.load_demo())
    >>> fit.params["accuracy"].shape
    (40, 3)
    """

    name = "class_conditional_dawid_skene"
    title = "Class-conditional Dawid-Skene (accuracy per worker and true class, rater)"
    reference = (
        "Pullin, Gurrin & Vukcevic (2023), Statistical Models of Repeated Categorical Ratings: "
        "The R Package rater, The R Journal 15(3); Dawid & Skene (1979)"
    )
    dims = {"pi": ("true_class",), "accuracy": ("worker", "true_class")}
    has_em = True

    def __init__(self, accuracy_prior=(3.0, 2.0), class_prior=3.0, eps: float = 1e-10):
        a, b = (float(v) for v in accuracy_prior)
        if not (a > 0 and b > 0):
            raise ValueError(f"accuracy_prior must be two positive numbers, got {accuracy_prior}")
        self.accuracy_prior = (a, b)
        self.class_prior = class_prior
        self.eps = float(eps)

    def _class_conc(self, data: CrowdData):
        return jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))

    def sample_params(self, data: CrowdData) -> Params:
        """``pi ~ Dirichlet``; ``accuracy[w, k] ~ Beta`` in plates worker x true_class."""
        pi = numpyro.sample("pi", dist.Dirichlet(self._class_conc(data)))
        with numpyro.plate("worker", data.n_workers, dim=-2), \
                numpyro.plate("true_class", data.n_classes, dim=-1):
            accuracy = numpyro.sample("accuracy", dist.Beta(*self.accuracy_prior))
        return {"pi": pi, "accuracy": accuracy}

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log accuracy[w, k]`` where ``y = k``, ``log((1 - accuracy[w, k]) / (K - 1))`` else."""
        K = data.n_classes
        acc = jnp.clip(params["accuracy"][data.worker], self.eps, 1 - self.eps)  # (N, K)
        right, wrong = jnp.log(acc), jnp.log1p(-acc) - jnp.log(K - 1.0)
        log_pi = jnp.log(params["pi"])
        if labels is None:  # (N, K, L)
            eye = jnp.eye(K, dtype=bool)[None]
            return log_pi, jnp.where(eye, right[:, :, None], wrong[:, :, None])
        hit = labels[:, None] == jnp.arange(K)[None, :]
        return log_pi, jnp.where(hit, right, wrong)

    def m_step(self, resp, data: CrowdData) -> Params:
        """Beta posterior modes ``(c_wk + a - 1) / (n_wk + a + b - 2)`` and the mode of ``pi``."""
        a, b = self.accuracy_prior
        K = data.n_classes
        q = resp[data.task]  # (N, K)
        hit = (data.label[:, None] == jnp.arange(K)[None, :]).astype(q.dtype)
        total = jnp.zeros((data.n_workers, K), q.dtype).at[data.worker].add(q)
        correct = jnp.zeros((data.n_workers, K), q.dtype).at[data.worker].add(q * hit)
        acc = (correct + a - 1.0) / jnp.maximum(total + a + b - 2.0, self.eps)
        acc = jnp.clip(acc, self.eps, 1 - self.eps)
        pi = dirichlet_map(resp.sum(0), self._class_conc(data), self.eps)
        return {"pi": pi, "accuracy": acc}

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step (it does not depend on the current parameters)."""
        return self.m_step(resp, data)

    def init_params(self, data: CrowdData) -> Params:
        """One M-step from the soft majority vote."""
        return self.m_step(soft_majority_vote(data), data)

    def worker_stats(self, params: Params, data: CrowdData):
        """Overall accuracy ``sum_k pi_k accuracy[w, k]``."""
        return {"overall_accuracy": (params["accuracy"] * params["pi"][..., None, :]).sum(-1)}
