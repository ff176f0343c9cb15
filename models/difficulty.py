"""Data-difficulty-specified crowdsourcing (Xu et al.): experts fall to chance near the boundary.

Raykar et al.'s two-coin experts have one sensitivity and one specificity for every item.
Xu et al. let them depend on how hard the item is: an expert is at chance on items at the
decision boundary and at their best far from it.

Generative story (plates: ``feature`` D, ``output``, ``worker`` W, ``task`` T, ``answer`` N)::

    w                 ~ Normal(0, s^2)                      logistic classifier weights
    lambda1_j         ~ Gamma(c, r)       (> 0)             sensitivity slope of expert j
    lambda2_j         ~ Gamma(c, r)       (> 0)             specificity slope of expert j
    p_i               = sigmoid(w . x_i)                    (adaptive)  or
                      = fraction of positive labels of i    (fixed: a constant of the data)
    z_i | x_i, w      ~ Bernoulli(sigmoid(w . x_i))
    alpha_ij          = sigmoid(lambda1_j (p_i - 1/2)^2)    Pr(y_ij = 1 | z_i = 1)   eq. (1)
    beta_ij           = sigmoid(lambda2_j (p_i - 1/2)^2)    Pr(y_ij = 0 | z_i = 0)   eq. (2)
    y_ij | z_i        ~ Bernoulli(alpha_ij)  if z_i = 1,  Bernoulli(1 - beta_ij)  if z_i = 0

``alpha_ij`` runs from 1/2 (``p_i = 1/2``, the boundary) to ``sigmoid(lambda1_j / 4)``
(``p_i`` = 0 or 1); ``sigmoid(lambda / 4)`` is reported as the expert's ``sensitivity`` /
``specificity`` on the easiest items, so ``lambda = 4 logit(alpha)`` inverts it. We use
equations (1)-(2) of the paper: its Algorithm 2 drops the square in the second factor (a typo).

In the adaptive model the classifier enters both the prior of ``z`` and the experts'
reliabilities, so there is no closed-form M-step; the MAP is the shared L-BFGS on the exact
marginal likelihood (z summed out), which is what the paper's gradient EM climbs too. In
the fixed model ``p_i`` depends on the observed labels, so it is not a generative model of
them (its likelihood does not sum to one over the possible answers): when simulating
(labels not yet drawn), it uses the classifier's ``p_i`` like the adaptive one, and
simulation-based calibration, which needs simulator and likelihood to agree, refuses it.

Initialization as in the paper's appendix: Raykar-style sensitivity/specificity on the soft
majority vote, ``lambda = 4 logit(alpha)`` (floored at a small positive value), and the
classifier fitted to the soft majority vote.

References
----------
1. Xu, Zhang, Zhang & Zhang. Data Difficulty Specified Crowdsourcing (learning from crowds
   with expert reliabilities that depend on item difficulty).
2. V. C. Raykar et al. Learning From Crowds. JMLR 11:1297-1322, 2010.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import Params, soft_majority_vote
from .core import CrowdData
from .raykar import FeatureModel, Raykar, binary_table, pick_labels

__all__ = ["DifficultyAdaptive", "DifficultyFixed", "positive_fraction"]


def positive_fraction(labels: jax.Array, data: CrowdData) -> jax.Array:
    """Fraction of the answers of each task that are the positive class (1), (T,)."""
    ones = jax.ops.segment_sum((labels == 1).astype(jnp.float32), data.task,
                               num_segments=data.n_tasks)
    total = jax.ops.segment_sum(jnp.ones_like(labels, jnp.float32), data.task,
                                num_segments=data.n_tasks)
    return ones / jnp.maximum(total, 1.0)


class DifficultyAdaptive(FeatureModel):
    """Xu et al., adaptive difficulty: ``p_i`` is the current classifier's ``Pr(z_i = 1 | x_i)``.

    Parameters
    ----------
    classifier : {"logistic", "mlp"} or Classifier
        ``p(z | x, w)``.
    lambda_prior : (concentration, rate)
        Gamma prior of each slope ``lambda > 0``; the default ``(2, 0.25)`` has its mode at 4
        (best-case reliability ``sigmoid(1) = 0.73``) and a long right tail.
    eps : float
        Floor of the initial slopes.
    """

    name = "difficulty_adaptive"
    title = "Data difficulty specified crowdsourcing (Xu et al.), adaptive difficulty"
    reference = ("Xu, Zhang, Zhang & Zhang, Data Difficulty Specified Crowdsourcing; builds on "
                 "Raykar et al. (2010), JMLR 11:1297-1322")
    binary_only = True
    fixed = False
    annotator_dims = {"lambda_sensitivity": ("worker",), "lambda_specificity": ("worker",)}

    def __init__(self, classifier="logistic", lambda_prior=(2.0, 0.25), eps: float = 0.1):
        from .classifiers import get_classifier

        self.classifier = get_classifier(classifier)
        self.lambda_prior = tuple(float(v) for v in lambda_prior)
        self.eps = float(eps)

    def sample_params(self, data: CrowdData) -> Params:
        """Classifier weights, then the experts' slopes ``lambda1_j``, ``lambda2_j``."""
        params = dict(self.classifier.sample(data.features.shape[1], data.n_classes))
        with numpyro.plate("worker", data.n_workers):
            params["lambda_sensitivity"] = numpyro.sample("lambda_sensitivity",
                                                          dist.Gamma(*self.lambda_prior))
            params["lambda_specificity"] = numpyro.sample("lambda_specificity",
                                                          dist.Gamma(*self.lambda_prior))
        return params

    def difficulty_p(self, params: Params, data: CrowdData, labels, log_prior) -> jax.Array:
        """``p_i`` of eqs. (1)-(2): the classifier's (adaptive) or the positive fraction (fixed)."""
        if self.fixed and labels is not None:
            return positive_fraction(labels, data)
        return jnp.exp(log_prior[:, 1])

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log sigmoid(w . x)`` and ``log p(y | z)`` with the item-dependent alpha, beta."""
        log_prior = self.classifier_log_prior(params, data)
        p = self.difficulty_p(params, data, labels, log_prior)
        d = ((p - 0.5) ** 2)[data.task]
        s1 = params["lambda_sensitivity"][data.worker] * d
        s2 = params["lambda_specificity"][data.worker] * d
        table = binary_table(jax.nn.log_sigmoid(s1), jax.nn.log_sigmoid(-s1),
                             jax.nn.log_sigmoid(s2), jax.nn.log_sigmoid(-s2))
        return log_prior, pick_labels(table, labels)

    def worker_stats(self, params: Params, data: CrowdData):
        """Best-case (easiest-item) reliabilities ``sigmoid(lambda / 4)``."""
        return {"sensitivity": jax.nn.sigmoid(params["lambda_sensitivity"] / 4),
                "specificity": jax.nn.sigmoid(params["lambda_specificity"] / 4)}

    def init_params(self, data: CrowdData) -> Params:
        """Compute ``lambda = 4 logit(alpha)`` from soft-majority-vote estimates (the appendix)."""
        resp = soft_majority_vote(data)
        params = dict(self.classifier.fit(self.inputs(data), resp))
        ann = Raykar(sensitivity_prior=(1.0, 1.0), specificity_prior=(1.0, 1.0),
                     eps=1e-3).annotator_m_step(resp, data)
        logit = lambda v: jnp.log(v) - jnp.log1p(-v)  # noqa: E731
        params["lambda_sensitivity"] = jnp.maximum(4 * logit(ann["sensitivity"]), self.eps)
        params["lambda_specificity"] = jnp.maximum(4 * logit(ann["specificity"]), self.eps)
        return params


class DifficultyFixed(DifficultyAdaptive):
    """Xu et al., fixed difficulty: ``p_i`` = the fraction of positive labels of item ``i``.

    The difficulty is a constant of the data, so the experts' reliabilities do not move with
    the classifier. Parameters as in :class:`DifficultyAdaptive`.

    Because ``p_i`` is computed from the very answers the likelihood scores, the likelihood is
    not a normalized distribution of the answers (summed over all possible answers it is not
    1; ``tests/test_learning_from_crowds.py`` checks this): it is Xu et al.'s
    pseudo-likelihood. The MAP is theirs; NUTS / SVI give a pseudo-posterior whose intervals
    are not calibrated, and simulation-based calibration refuses the model
    (``proper_likelihood = False``). Simulated crowds use the classifier's ``p_i``.
    """

    name = "difficulty_fixed"
    title = "Data difficulty specified crowdsourcing (Xu et al.), fixed difficulty"
    fixed = True
    proper_likelihood = False
