r"""Paun et al.'s pooled model (Multinomial): one confusion matrix shared by every worker.

The simplest model of annotation in Paun et al.'s comparison: the workers are exchangeable
and pooled, so every answer to a task of true class ``k`` is a draw from the same
distribution ``confusion[k, :]``. Generative story (plates: ``true_class`` K, ``task`` T,
``answer`` N)::

    pi                ~ Dirichlet(class_prior)
    confusion[k, :]   ~ Dirichlet(confusion_prior[k, :])
    z_t               ~ Categorical(pi)
    y_n | z           ~ Categorical(confusion[z_{task_n}, :])

(NumPyro's ``examples/annotation.py::multinomial`` and rater's ``multinomial.stan``, with
``zeta`` / ``theta`` named ``confusion`` here as in :class:`~crowdzoo.models.DawidSkene`.)
It knows nothing about individual workers, so it cannot down-weight a spammer; Paun et al.
find it the weakest model when workers differ, and a fair baseline when they do not.

The MAP is closed-form EM: the E-step is the exact label posterior, the M-step adds the
expected counts ``sum_n q_{t_n}(k) [y_n = l]`` over *all* answers to the Dirichlet
pseudo-counts.

References
----------
1. S. Paun, B. Carpenter, J. Chamberlain, D. Hovy, U. Kruschwitz, M. Poesio. Comparing
   Bayesian Models of Annotation. TACL 6:571-585, 2018. https://doi.org/10.1162/tacl_a_00040
   (the pooled "Multinomial" model, Figure 1).
2. J. Pullin, L. Gurrin, D. Vukcevic. The R Package rater. The R Journal 15(3), 2023.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData
from .dawid_skene import confusion_concentration, dirichlet_map

__all__ = ["Multinomial"]


class Multinomial(CrowdModel):
    """Paun et al.'s pooled model: one confusion matrix for all workers.

    Parameters
    ----------
    confusion_prior : tuple (diag, off), float or array (K, K)
        Dirichlet concentration of each row of the shared confusion matrix (default
        ``(3, 1.5)``, Dawid-Skene's).
    class_prior : float or array (K,)
        Dirichlet concentration of the class frequencies.
    eps : float
        Floor of the M-step's entries before normalizing.

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("multinomial", crowdzoo.data.load_demo())
    >>> fit.params["confusion"].shape
    (3, 3)
    """

    name = "multinomial"
    title = "Multinomial (Paun et al.: one confusion matrix pooled over workers)"
    reference = (
        "Paun, Carpenter, Chamberlain, Hovy, Kruschwitz & Poesio (2018), Comparing Bayesian "
        "Models of Annotation, TACL 6:571-585 (the pooled Multinomial model)"
    )
    dims = {"pi": ("true_class",), "confusion": ("true_class", "label")}
    has_em = True

    def __init__(self, confusion_prior=(3.0, 1.5), class_prior=2.0, eps: float = 1e-10):
        self.confusion_prior = confusion_prior
        self.class_prior = class_prior
        self.eps = float(eps)

    def _concentrations(self, data: CrowdData):
        conf = confusion_concentration(self.confusion_prior, data.n_classes)
        cls = jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))
        return conf, cls

    def sample_params(self, data: CrowdData) -> Params:
        """``pi ~ Dirichlet``; ``confusion[k] ~ Dirichlet`` in plate true_class."""
        conf_conc, cls_conc = self._concentrations(data)
        pi = numpyro.sample("pi", dist.Dirichlet(cls_conc))
        with numpyro.plate("true_class", data.n_classes):
            confusion = numpyro.sample("confusion", dist.Dirichlet(conf_conc))
        return {"pi": pi, "confusion": confusion}

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log pi`` and ``log confusion[:, y_n]`` (the same matrix for every worker)."""
        log_conf = jnp.log(params["confusion"])  # (K, L)
        if labels is None:
            return jnp.log(params["pi"]), jnp.broadcast_to(
                log_conf[None], (data.n_answers,) + log_conf.shape)
        return jnp.log(params["pi"]), log_conf.T[labels]

    def m_step(self, resp, data: CrowdData) -> Params:
        """Dirichlet posterior modes of ``pi`` and of the pooled confusion rows."""
        conf_conc, cls_conc = self._concentrations(data)
        K = data.n_classes
        counts = jnp.zeros((K, K), resp.dtype).at[:, data.label].add(resp[data.task].T)
        return {"pi": dirichlet_map(resp.sum(0), cls_conc, self.eps),
                "confusion": dirichlet_map(counts, conf_conc, self.eps)}

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step (it does not depend on the current parameters)."""
        return self.m_step(resp, data)

    def init_params(self, data: CrowdData) -> Params:
        """One M-step from the soft majority vote."""
        return self.m_step(soft_majority_vote(data), data)

    def worker_stats(self, params: Params, data: CrowdData):
        """Return the pooled accuracy ``sum_k pi_k confusion[k, k]`` (the same for every worker)."""
        acc = (jnp.diagonal(params["confusion"], axis1=-2, axis2=-1) * params["pi"]).sum(-1)
        return {"accuracy": jnp.broadcast_to(acc[..., None], acc.shape + (data.n_workers,))}
