"""Yan et al. (2010): annotator expertise that varies over the feature space.

Each annotator is right with a probability that depends on the item: an annotator may know
one region of the feature space well and another badly ("everybody knows a bit of
something").

Generative story (plates: ``feature`` D, ``output``, ``worker`` W, ``task`` T, ``answer`` N)::

    a, b              ~ Normal(0, s^2)                        classifier
    w_t[d]            ~ Normal(0, s_w^2)                      expertise weights of annotator t
    gamma_t           ~ Normal(m_g, s_g^2)                    expertise offset of annotator t
    z_i | x_i         ~ Bernoulli(sigmoid(a . x_i + b))
    eta_t(x_i)        = sigmoid(w_t . x_i - gamma_t)          Pr(annotator t is right on i)
    y_i^t | z_i, x_i  ~ eta_t(x_i)^[y = z] (1 - eta_t(x_i))^[y != z]

The likelihood is Yan et al.'s: ``prod_i sum_z p(z | x_i) prod_t p(y_i^t | x_i, z)``, the
classifier's prior counted once per item (Alger's 2016 derivation note counts it once per
annotator, and its section-3.1 gradient does not follow from its own objective). The MAP is
the shared L-BFGS on this exact marginal likelihood with autodiff gradients; the tests check
them against finite differences.

References
----------
1. Y. Yan, R. Rosales, G. Fung, M. Schmidt, G. Hermosillo, L. Bogoni, L. Moy, J. Dy.
   Modeling annotator expertise: Learning when everybody knows a bit of something.
   AISTATS 2010, PMLR 9:932-939.
2. M. Alger. Learning from crowds (derivation note), 2016 (for the pitfall above).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import Params, soft_majority_vote
from .classifiers import get_classifier
from .core import CrowdData
from .raykar import FeatureModel, pick_labels

__all__ = ["Yan"]


class Yan(FeatureModel):
    """Yan et al. (2010): binary labels, annotator accuracy ``sigmoid(w_t . x - gamma_t)``.

    Parameters
    ----------
    classifier : {"logistic", "mlp"} or Classifier
        ``p(z | x)``.
    expertise_scale : float
        Prior standard deviation of the expertise weights ``w_t`` (standardized features).
    gamma_prior : (loc, scale)
        Normal prior of the offsets; the default mean -1 says an annotator is right with
        probability ``sigmoid(1) = 0.73`` a priori (keeps labels from switching).
    """

    name = "yan"
    title = "Annotator expertise varying with the item (Yan et al. 2010)"
    reference = ("Yan, Rosales, Fung, Schmidt, Hermosillo, Bogoni, Moy & Dy (2010), Modeling "
                 "annotator expertise: Learning when everybody knows a bit of something, "
                 "AISTATS, PMLR 9:932-939")
    binary_only = True
    annotator_dims = {"expertise_weights": ("worker", "feature"), "expertise_offset": ("worker",)}

    def __init__(self, classifier="logistic", expertise_scale: float = 1.0,
                 gamma_prior=(-1.0, 2.0)):
        self.classifier = get_classifier(classifier)
        self.expertise_scale = float(expertise_scale)
        self.gamma_prior = tuple(float(v) for v in gamma_prior)

    def sample_params(self, data: CrowdData) -> Params:
        """Classifier, then ``w_t`` (worker x feature) and ``gamma_t`` (worker)."""
        D = data.features.shape[1]
        params = dict(self.classifier.sample(D, data.n_classes))
        # plate names differ from the classifier's "feature" (dim -2) and the offsets' "worker"
        # (dim -1): a plate keeps one dim per name, which autoguides check
        with numpyro.plate("annotator", data.n_workers, dim=-2), \
                numpyro.plate("expertise_feature", D, dim=-1):
            params["expertise_weights"] = numpyro.sample(
                "expertise_weights", dist.Normal(0.0, self.expertise_scale))
        with numpyro.plate("worker", data.n_workers, dim=-1):
            params["expertise_offset"] = numpyro.sample("expertise_offset",
                                                        dist.Normal(*self.gamma_prior))
        return params

    def log_eta_logit(self, params: Params, data: CrowdData) -> jax.Array:
        """``w_t . x_i - gamma_t`` for every answer (N,)."""
        x = self.inputs(data)[data.task]
        w = params["expertise_weights"][data.worker]
        return (w * x).sum(-1) - params["expertise_offset"][data.worker]

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log sigmoid(a . x + b)`` and ``log eta`` / ``log(1 - eta)`` per answer."""
        log_prior = self.classifier_log_prior(params, data)
        s = self.log_eta_logit(params, data)
        right, wrong = jax.nn.log_sigmoid(s), jax.nn.log_sigmoid(-s)
        eye = jnp.eye(2, dtype=bool)[None]
        table = jnp.where(eye, right[:, None, None], wrong[:, None, None])
        return log_prior, pick_labels(table, labels)

    def worker_stats(self, params: Params, data: CrowdData):
        """``accuracy``: the annotator's ``eta_t(x)`` averaged over the training items."""
        x = self.inputs(data)
        eta = jax.nn.sigmoid(x @ params["expertise_weights"].T - params["expertise_offset"])
        return {"accuracy": eta.mean(0)}

    def init_params(self, data: CrowdData) -> Params:
        """Classifier fitted to the soft majority vote; ``gamma_t = -logit(agreement_t)``."""
        resp = soft_majority_vote(data)
        params = dict(self.classifier.fit(self.inputs(data), resp))
        W = data.n_workers
        agree = jax.ops.segment_sum(resp[data.task, data.label], data.worker, num_segments=W)
        total = jax.ops.segment_sum(jnp.ones_like(data.label, jnp.float32), data.worker,
                                    num_segments=W)
        acc = jnp.clip((agree + 1.0) / (total + 2.0), 0.05, 0.95)
        params["expertise_weights"] = jnp.zeros((W, data.features.shape[1]))
        params["expertise_offset"] = -(jnp.log(acc) - jnp.log1p(-acc))
        return params
