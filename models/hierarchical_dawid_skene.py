r"""Hierarchical Dawid-Skene: worker confusion logits drawn around population means.

Dawid-Skene gives every worker an independent confusion matrix, so a worker with three
answers gets a matrix from three answers. The hierarchical model (Paun et al. 2018, the R
package rater) writes each row of a worker's confusion matrix as a softmax of logits drawn
around population means with population scales, so workers with few answers borrow strength
from the crowd. Generative story (plates: ``true_class`` K, ``label`` K, ``worker`` W,
``task`` T, ``answer`` N), in rater's non-centred parameterization::

    pi                    ~ Dirichlet(class_prior)
    mu[k, l]              ~ Normal(m_kl, 1)          m_kk = diag_mean (2), m_kl = 0 off the diagonal
    sigma[k, l]           ~ Gamma(2, 2)              (rater: Normal(0, 1) truncated at 0)
    beta_raw[w, k, l]     ~ Normal(0, 1)
    beta[w, k, :]         = log_softmax(mu[k, :] + sigma[k, :] * beta_raw[w, k, :])
    z_t                   ~ Categorical(pi)
    y_n | z = k           ~ Categorical(exp(beta[worker_n, k, :]))

(rater's ``hierarchical_dawid_skene.stan`` line for line. NumPyro's
``examples/annotation.py::hierarchical_dawid_skene`` fixes the last logit of each row at 0
and puts ``Normal(0, 1)`` on the other ``K - 1`` means; we keep rater's full ``K x K``
logits, whose diagonal prior mean makes a worker a priori better than chance — it picks
one labelling of the classes, which the MAP and NUTS need — and identifies the softmax's
free shift through the prior.)

The non-centred form (``beta_raw`` standard normal, the scale multiplying it) keeps the
posterior free of the funnel that a centred ``beta ~ Normal(mu, sigma)`` has when ``sigma``
is small, for NUTS; it also gives the MAP a finite mode (the centred joint density is
unbounded as ``sigma -> 0``). There is no closed-form M-step: the MAP is L-BFGS on the exact
marginal posterior (z summed out), started at the Dawid-Skene M-step from the soft majority
vote, its log confusion matrices split into population means, scales and standardized
worker effects.

The population scales get a boundary-avoiding ``Gamma(2, 2)`` prior (mode 0.5, mean 1;
Chung, Rabe-Hesketh, Dorie, Gelman & Liu 2013) instead of rater's / NumPyro's
``HalfNormal(1)``: a half-normal's density is largest at 0, so the MAP (which the runner also
uses to start NUTS) can put a scale at exactly 0, where NUTS's chains stick (we saw it on a
40-task crowd). ``scale_prior=(shape, rate)`` changes it.

References
----------
1. S. Paun, B. Carpenter, J. Chamberlain, D. Hovy, U. Kruschwitz, M. Poesio. Comparing
   Bayesian Models of Annotation. TACL 6:571-585, 2018. https://doi.org/10.1162/tacl_a_00040
   (the hierarchical Dawid-Skene model, Figure 4).
2. J. Pullin, L. Gurrin, D. Vukcevic. Statistical Models of Repeated Categorical Ratings:
   The R Package rater. The R Journal 15(3), 2023. https://doi.org/10.32614/RJ-2023-064
3. A. P. Dawid and A. M. Skene. JRSS C 28(1):20-28, 1979. https://doi.org/10.2307/2346806
4. Y. Chung, S. Rabe-Hesketh, V. Dorie, A. Gelman, J. Liu. A Nondegenerate Penalized
   Likelihood Estimator for Variance Parameters in Multilevel Models. Psychometrika 78(4):
   685-709, 2013. https://doi.org/10.1007/s11336-013-9328-2
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData
from .dawid_skene import DawidSkene

__all__ = ["HierarchicalDawidSkene"]


class HierarchicalDawidSkene(CrowdModel):
    """Hierarchical Dawid-Skene (Paun et al.; rater): confusion logits around population means.

    Parameters
    ----------
    diag_mean : float
        Prior mean of the population logit of a correct answer ``mu[k, k]`` (rater: 2);
        off-diagonal means have prior mean 0. Prior scale of every ``mu`` is 1.
    scale_prior : (shape, rate)
        Gamma prior of the population scales (default ``(2, 2)``, see above).
    class_prior : float or array (K,)
        Dirichlet concentration of the class frequencies (rater: 3).

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("hierarchical_dawid_skene", crowdzoo.data.load_demo())
    >>> fit.workers().filter(like="confusion").shape[1]
    9
    """

    name = "hierarchical_dawid_skene"
    title = "Hierarchical Dawid-Skene (confusion logits around population means; Paun, rater)"
    reference = (
        "Paun, Carpenter, Chamberlain, Hovy, Kruschwitz & Poesio (2018), Comparing Bayesian "
        "Models of Annotation, TACL 6:571-585; Pullin, Gurrin & Vukcevic (2023), the R package "
        "rater, The R Journal 15(3)"
    )
    dims = {"pi": ("true_class",), "mu": ("true_class", "label"),
            "sigma": ("true_class", "label"), "beta_raw": ("worker", "true_class", "label"),
            "confusion": ("worker", "true_class", "label")}  # derived (worker_stats)

    def __init__(self, diag_mean: float = 2.0, scale_prior=(2.0, 2.0), class_prior=3.0):
        shape, rate = (float(v) for v in scale_prior)
        if not (shape > 0 and rate > 0):
            raise ValueError(f"scale_prior must be (shape, rate) > 0, got {scale_prior}")
        self.diag_mean = float(diag_mean)
        self.scale_prior = (shape, rate)
        self.class_prior = class_prior

    def _mu_mean(self, K: int):
        return jnp.where(jnp.eye(K, dtype=bool), self.diag_mean, 0.0)

    def _class_conc(self, data: CrowdData):
        return jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))

    def sample_params(self, data: CrowdData) -> Params:
        """Sample ``pi``, ``mu`` and ``sigma`` per true class, ``beta_raw`` per worker."""
        K = data.n_classes
        pi = numpyro.sample("pi", dist.Dirichlet(self._class_conc(data)))
        # the label axis is an event dim: plates stop at dim -2 (funsor's enumeration, which
        # the exactness test runs, allocates its dims from -3 on)
        with numpyro.plate("true_class", K, dim=-1):
            mu = numpyro.sample("mu", dist.Normal(self._mu_mean(K), 1.0).to_event(1))
            sigma = numpyro.sample("sigma", dist.Gamma(
                jnp.full((K,), self.scale_prior[0]), self.scale_prior[1]).to_event(1))
        with numpyro.plate("worker", data.n_workers, dim=-2), \
                numpyro.plate("true_class", K, dim=-1):
            beta_raw = numpyro.sample("beta_raw", dist.Normal(jnp.zeros(K), 1.0).to_event(1))
        return {"pi": pi, "mu": mu, "sigma": sigma, "beta_raw": beta_raw}

    @staticmethod
    def log_confusion(params: Params) -> jax.Array:
        """``beta[w, k, :] = log_softmax(mu[k] + sigma[k] * beta_raw[w, k])``, (W, K, K)."""
        return jax.nn.log_softmax(params["mu"] + params["sigma"] * params["beta_raw"], axis=-1)

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log pi`` and ``beta[worker_n, :, y_n]`` (or the full ``(N, K, K)`` table)."""
        beta = self.log_confusion(params)
        log_pi = jnp.log(params["pi"])
        if labels is None:
            return log_pi, beta[data.worker]
        return log_pi, beta[data.worker, :, labels]

    def init_params(self, data: CrowdData) -> Params:
        """Dawid-Skene's first M-step from the soft majority vote, split hierarchically.

        ``log confusion`` (centred per row) -> ``mu`` = its mean over workers, ``sigma`` = its
        spread (at least 0.3), ``beta_raw`` = the standardized worker deviations.
        """
        ds = DawidSkene(confusion_prior=(2.0, 1.0), class_prior=self.class_prior)
        start = ds.m_step(soft_majority_vote(data), data)
        logits = jnp.log(start["confusion"])
        logits = logits - logits.mean(-1, keepdims=True)
        mu = logits.mean(0)
        sigma = jnp.maximum(logits.std(0), 0.3)
        return {"pi": start["pi"], "mu": mu, "sigma": sigma, "beta_raw": (logits - mu) / sigma}

    def worker_stats(self, params: Params, data: CrowdData):
        """Each worker's confusion matrix and accuracy ``sum_k pi_k confusion[w, k, k]``."""
        conf = jnp.exp(self.log_confusion(params))
        diag = jnp.diagonal(conf, axis1=-2, axis2=-1)
        return {"confusion": conf, "accuracy": (diag * params["pi"][..., None, :]).sum(-1)}
