r"""MACE: Multi-Annotator Competence Estimation (Hovy, Berg-Kirkpatrick, Vaswani & Hovy 2013).

Each worker either knows the answer and gives the true label, or *spams*: answers from a
label distribution of their own, whatever the truth. The spam gate is what MACE adds to the
honest worker model (whose guesses are uniform): a spammer who always says "yes" is caught
as a spammer, not taken for an accurate worker on a "yes"-heavy crowd.

Generative story (plates: ``worker`` W, ``task`` T, ``answer`` N, ``label`` K)::

    competence_w           ~ Beta(a, b)                       theta_j in the paper
    spam_label_w           ~ Dirichlet(c, ..., c)              xi_j: the worker's spam distribution
    z_t                    ~ Uniform(0, ..., K-1)             true label (no class frequencies)
    s_n                    ~ Bernoulli(1 - competence_{w_n})  the spamming gate, per answer
    y_n | s_n = 0          =  z_{t_n}                         knows: copies the truth
    y_n | s_n = 1          ~  Categorical(spam_label_{w_n})   spams

Inference marginalizes both discrete variables exactly: the gate per answer,

.. math::

    p(y_n = l \mid z = k) = \theta_{w_n} [l = k] + (1 - \theta_{w_n}) \xi_{w_n, l},

and ``z`` by the shared :func:`~crowdzoo.models.core.marginalize`. When the model simulates
(no answers given) it samples the gate explicitly (site ``spamming``), so a reader sees it.

The MAP is found by closed-form EM: the E-step is the posterior over ``(z, s)`` of every
answer. From the label posterior ``r[t, k]``, the answer was *known* with expected value

.. math::

    E[1 - s_n] = r[t_n, y_n] \frac{\theta}{\theta + (1 - \theta) \xi_{y_n}},

and spammed otherwise; the M-step adds the expected known / spammed answers of a worker to
the Beta pseudo-counts of ``competence`` and the expected spammed answers per label to the
Dirichlet pseudo-counts of ``spam_label`` (posterior modes). The defaults ``Beta(2, 2)`` and
``Dirichlet(2)`` keep the mode interior; the paper's variational Bayes uses ``Beta(0.5,
0.5)`` and ``Dirichlet(10)`` (a Beta(0.5, 0.5) has no interior mode: fine for VB's
expectations, not for a MAP). :class:`crowdzoo.aggregation.MACE` is Crowd-Kit's EM / VB
estimator with its parameters.

References
----------
1. D. Hovy, T. Berg-Kirkpatrick, A. Vaswani and E. Hovy. Learning Whom to Trust with MACE.
   NAACL-HLT 2013, 1120-1130. https://aclanthology.org/N13-1132
2. S. Paun, B. Carpenter, J. Chamberlain, D. Hovy, U. Kruschwitz and M. Poesio. Comparing
   Bayesian Models of Annotation. TACL 6:571-585, 2018. https://doi.org/10.1162/tacl_a_00040
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData, clamp_gold
from .dawid_skene import dirichlet_map

__all__ = ["MACE"]


class MACE(CrowdModel):
    """MACE: a competence and a spam-label distribution per worker, a spamming gate per answer.

    Parameters
    ----------
    competence_prior : (a, b)
        Beta prior of each worker's competence (the chance an answer is not spam).
    spam_prior : float
        Dirichlet concentration of each worker's spam-label distribution.
    eps : float
        Competences are kept in ``[eps, 1 - eps]``; spam-label entries are floored at ``eps``.

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("mace", crowdzoo.data.load_demo())
    >>> bool(fit.workers()["competence"].between(0, 1).all())
    True
    """

    name = "mace"
    title = "MACE (competence and spam-label distribution per worker, spamming gate)"
    reference = (
        "Hovy, Berg-Kirkpatrick, Vaswani & Hovy (2013), Learning Whom to Trust with MACE, "
        "NAACL-HLT 2013, 1120-1130, https://aclanthology.org/N13-1132"
    )
    dims = {"competence": ("worker",), "spam_label": ("worker", "label")}

    def __init__(self, competence_prior=(2.0, 2.0), spam_prior: float = 2.0, eps: float = 1e-6):
        a, b = (float(v) for v in competence_prior)
        if a <= 0 or b <= 0 or float(spam_prior) <= 0:
            raise ValueError(f"competence_prior and spam_prior must be positive, got "
                             f"{competence_prior}, {spam_prior}")
        self.competence_prior = (a, b)
        self.spam_prior = float(spam_prior)
        self.eps = float(eps)

    # --- the model ------------------------------------------------------------------------
    def sample_params(self, data: CrowdData) -> Params:
        """``competence_w ~ Beta``, ``spam_label_w ~ Dirichlet`` in plate worker."""
        with numpyro.plate("worker", data.n_workers):
            competence = numpyro.sample("competence", dist.Beta(*self.competence_prior))
            spam_label = numpyro.sample(
                "spam_label", dist.Dirichlet(jnp.full(data.n_classes, self.spam_prior)))
        return {"competence": competence, "spam_label": spam_label}

    def _competence(self, params: Params) -> jax.Array:
        return jnp.clip(params["competence"], self.eps, 1.0 - self.eps)

    def log_terms(self, params: Params, data: CrowdData, labels):
        """Uniform ``log p(z)`` and ``log(theta [y = k] + (1 - theta) xi_y)`` (gate summed out)."""
        K = data.n_classes
        theta = self._competence(params)[data.worker]
        xi = params["spam_label"][data.worker]  # (N, K)
        log_prior = jnp.full((K,), -jnp.log(float(K)))
        if labels is None:
            table = (theta[:, None, None] * jnp.eye(K)[None]
                     + (1.0 - theta)[:, None, None] * xi[:, None, :])
            return log_prior, jnp.log(table)
        spam = (1.0 - theta) * jnp.take_along_axis(xi, labels[:, None], 1)[:, 0]
        hit = labels[:, None] == jnp.arange(K)[None, :]
        return log_prior, jnp.log(spam[:, None] + jnp.where(hit, theta[:, None], 0.0))

    def generate(self, params: Params, data: CrowdData):
        """Simulate: ``z`` per task, then the explicit spamming gate per answer.

        Returns
        -------
        (z, y)
            The sampled true labels ``(T,)`` and answers ``(N,)``; the ``spamming`` site
            (plate ``answer``) is in the trace.
        """
        K = data.n_classes
        log_prior = jnp.full((data.n_tasks, K), -jnp.log(float(K)))
        with numpyro.plate("task", data.n_tasks):
            z = numpyro.sample("z", dist.Categorical(logits=clamp_gold(log_prior, data.gold)))
        theta = self._competence(params)[data.worker]
        with numpyro.plate("answer", data.n_answers):
            spamming = numpyro.sample("spamming", dist.Bernoulli(1.0 - theta))
            probs = jnp.where(spamming[:, None] > 0, params["spam_label"][data.worker],
                              jax.nn.one_hot(z[data.task], K))
            y = numpyro.sample("y", dist.Categorical(probs=probs))
        return z, y

    # --- closed-form EM -------------------------------------------------------------------
    has_em = True

    def init_params(self, data: CrowdData) -> Params:
        """First M-step from the soft majority vote, taking ``E[1 - s_n] = r[t_n, y_n]``."""
        resp = soft_majority_vote(data)
        return self._m_step(resp[data.task, data.label], data, resp.dtype)

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step from the posterior over ``(z, s)``: expected known and spammed answers."""
        theta = self._competence(params)[data.worker]
        xi_y = params["spam_label"][data.worker, data.label]
        knows = resp[data.task, data.label] * theta / (theta + (1.0 - theta) * xi_y)
        return self._m_step(knows, data, resp.dtype)

    def _m_step(self, knows, data: CrowdData, dtype) -> Params:
        a, b = self.competence_prior
        W, K = data.n_workers, data.n_classes
        known = jnp.zeros(W, dtype).at[data.worker].add(knows)
        total = jnp.zeros(W, dtype).at[data.worker].add(1.0)
        competence = (known + a - 1.0) / jnp.maximum(total + a + b - 2.0, self.eps)
        competence = jnp.clip(competence, self.eps, 1.0 - self.eps)
        spammed = jnp.zeros((W, K), dtype).at[data.worker, data.label].add(1.0 - knows)
        spam_label = dirichlet_map(spammed, jnp.full((K,), self.spam_prior, dtype), self.eps)
        return {"competence": competence, "spam_label": spam_label}

    # --- derived quantities ---------------------------------------------------------------
    def worker_stats(self, params: Params, data: CrowdData):
        """``accuracy = theta + (1 - theta) / K``: the chance an answer is right (uniform z)."""
        theta = params["competence"]
        return {"accuracy": theta + (1.0 - theta) / data.n_classes}
