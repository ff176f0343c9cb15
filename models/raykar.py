"""Learning from crowds: a classifier of the task features and annotator reliabilities, jointly.

Raykar et al. (2010). Each task ``t`` has features ``x_t``; a classifier gives the prior of
its true label, and each annotator ``j`` answers through a confusion model.

Generative story (plates: ``feature`` D, ``output``, ``worker`` W, ``task`` T,
``answer`` N)::

    w                        ~ Normal(0, s^2)                 classifier weights (ridge prior)
    z_t | x_t, w             ~ Categorical(p(z | x_t, w))      logistic (K = 2) / softmax (K > 2)

    binary (K = 2), the paper's two-coin annotators:
    alpha_j                  ~ Beta(a1, b1)                    sensitivity  Pr(y = 1 | z = 1)
    beta_j                   ~ Beta(a2, b2)                    specificity  Pr(y = 0 | z = 0)
    y_n | z = 1              ~ Bernoulli(alpha_{worker_n})
    y_n | z = 0              ~ Bernoulli(1 - beta_{worker_n})

    multi-class (K > 2), section 3 of the paper:
    confusion[j, k, :]       ~ Dirichlet(c_k)                  row k: answers of j when z = k
    y_n | z                  ~ Categorical(confusion[worker_n, z_{task_n}, :])

The class coded 1 (the second class of ``Annotations.classes``) is the positive class of
the binary model. The marginal likelihood with ``z`` summed out is the shared
:func:`~crowdzoo.models.core.marginalize` with ``log_prior[t] = log p(z_t | x_t, w)``.

MAP by EM ("original EM" in Xu et al.): the E-step is the exact label posterior
``mu_t = p(z_t | y_t, x_t)``; the M-step is closed form for the annotators
(``alpha_j = (sum_n mu_{t_n} y_n + a1 - 1) / (sum_n mu_{t_n} + a1 + b1 - 2)``, likewise
``beta_j``, Dirichlet modes of the confusion rows) and Newton-Raphson steps (K = 2) or
Boehning-bound steps (K > 2) for ``w`` on ``sum_t sum_k mu_tk log p(z_t = k | x_t, w) +
log p(w)``. With an MLP classifier the MAP is the shared L-BFGS.

References
----------
1. V. C. Raykar, S. Yu, L. H. Zhao, G. H. Valadez, C. Florin, L. Bogoni, L. Moy. Learning
   From Crowds. Journal of Machine Learning Research 11:1297-1322, 2010.
2. D. Boehning. Multinomial logistic regression algorithm. Annals of the Institute of
   Statistical Mathematics 44(1):197-200, 1992.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .classifiers import Logistic, get_classifier
from .core import CrowdData
from .dawid_skene import confusion_concentration, dirichlet_map

__all__ = ["FeatureModel", "Raykar", "binary_table", "pick_labels"]


def binary_table(log_sens, log1m_sens, log_spec, log1m_spec) -> jax.Array:
    """``(N, 2, 2)`` table ``log p(y = l | z = k)`` of two-coin annotators."""
    row0 = jnp.stack([log_spec, log1m_spec], axis=-1)  # z = 0: y = 0 w.p. beta
    row1 = jnp.stack([log1m_sens, log_sens], axis=-1)  # z = 1: y = 1 w.p. alpha
    return jnp.stack([row0, row1], axis=-2)


def pick_labels(table: jax.Array, labels):
    """``table[n, :, labels[n]]`` (N, K), or the full table when ``labels`` is None."""
    if labels is None:
        return table
    return jnp.take_along_axis(table, labels[:, None, None], axis=2)[..., 0]


class FeatureModel(CrowdModel):
    """Shared parts of the models with a classifier of the task features.

    Subclasses set ``annotator_dims`` and ``binary_only``; ``dims`` is the classifier's
    weights plus the annotators' parameters.
    """

    binary_only = False
    needs_features = True
    has_classifier = True
    em_accelerate = True
    annotator_dims: dict[str, tuple[str, ...]] = {}
    multiclass_alternative = "raykar (multi-class)"

    @property
    def dims(self):  # type: ignore[override]
        """ArviZ dims: the classifier's weights and the annotators' parameters."""
        return {**self.classifier.dims(), **self.annotator_dims}

    def check_data(self, data: CrowdData) -> None:
        """Features are required; binary models refuse K > 2 and name the alternative."""
        if data.features is None:
            super().check_data(data)
        if self.binary_only and data.n_classes != 2:
            raise ValueError(
                f"{self.name} is binary (2 classes) but the data have {data.n_classes} classes; "
                f"for K classes use {self.multiclass_alternative}"
            )
        super().check_data(data)
        scale = getattr(data, "feature_scale", None)
        if scale is not None and not isinstance(scale, jax.core.Tracer):
            import warnings

            import numpy as np

            from ..data.features import ConstantFeatureWarning

            constant = np.flatnonzero(np.asarray(scale) == 0)
            if constant.size:
                shown = ", ".join(map(str, constant[:10])) + (", ..." if constant.size > 10
                                                              else "")
                warnings.warn(
                    f"{constant.size} feature column(s) constant over the training tasks "
                    f"(0-based position {shown}): they carry no information to "
                    f"{self.name}'s classifier and are set to 0; drop them",
                    ConstantFeatureWarning, stacklevel=3)

    def inputs(self, data: CrowdData) -> jax.Array:
        """Classifier inputs of the training tasks (standardized features)."""
        return self.classifier.inputs(data)

    def classifier_log_prior(self, params: Params, data: CrowdData) -> jax.Array:
        """``log p(z_t = k | x_t, w)``, (T, K)."""
        return self.classifier.log_prob(params, self.inputs(data), data.n_classes)

    def predict_proba(self, params: Params, features: jax.Array, data: CrowdData) -> jax.Array:
        """``p(z = k | x, w)`` for new items.

        ``features`` are in the representation of ``data.features``: standardized with the
        training statistics (``Fit.predict_proba`` does it in float64) when the data carry
        them, raw otherwise.
        """
        x = self.classifier.inputs(data, jnp.asarray(features, jnp.float32))
        return jnp.exp(self.classifier.log_prob(params, x, data.n_classes))

    def task_stats(self, params: Params, data: CrowdData):
        """Return the classifier's ``p(z_t = k | x_t)`` (before the answers are seen)."""
        return {"classifier_prob": jnp.exp(self.classifier_log_prior(params, data))}


class Raykar(FeatureModel):
    """Raykar et al. (2010): a classifier learned jointly with annotator reliabilities.

    Parameters
    ----------
    classifier : {"logistic", "mlp"} or Classifier
        ``p(z | x, w)``; see :mod:`crowdzoo.models.classifiers`.
    sensitivity_prior, specificity_prior : (a, b)
        Beta priors of the binary annotators' sensitivity and specificity; the default
        ``(3, 2)`` (mode 2/3) keeps the MAP interior and annotators better than chance a priori.
    confusion_prior : (diag, off), float or array
        Dirichlet concentration of each confusion-matrix row (K > 2).
    newton_steps : int
        Newton / Boehning steps for the weights per EM iteration.
    eps : float
        Probabilities are kept in ``[eps, 1 - eps]``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, crowdzoo
    >>> from crowdzoo.data.simulate import simulate
    >>> x = np.random.default_rng(0).normal(size=(200, 2))
    >>> sim = simulate("raykar", n_tasks=200, n_workers=5, n_classes=2, answers_per_task=3,
    ...                features=x)
    >>> fit = crowdzoo.fit("raykar", sim.annotations)
    >>> fit.predict_proba(x[:3]).shape
    (3, 2)
    """

    name = "raykar"
    title = "Learning from crowds (Raykar et al.): classifier + two-coin / confusion annotators"
    reference = ("Raykar, Yu, Zhao, Valadez, Florin, Bogoni & Moy (2010), Learning From Crowds, "
                 "JMLR 11:1297-1322")
    annotator_dims = {"sensitivity": ("worker",), "specificity": ("worker",),
                      "confusion": ("worker", "true_class", "label")}

    def __init__(self, classifier="logistic", sensitivity_prior=(3.0, 2.0),
                 specificity_prior=(3.0, 2.0), confusion_prior=(3.0, 1.5),
                 newton_steps: int = 2, eps: float = 1e-6):
        self.classifier = get_classifier(classifier)
        self.sensitivity_prior = tuple(float(v) for v in sensitivity_prior)
        self.specificity_prior = tuple(float(v) for v in specificity_prior)
        self.confusion_prior = confusion_prior
        self.newton_steps = int(newton_steps)
        self.eps = float(eps)

    # --- priors and likelihood ----------------------------------------------------------
    def sample_params(self, data: CrowdData) -> Params:
        """Classifier weights, then sensitivity/specificity (K = 2) or confusion rows."""
        D = data.features.shape[1]
        params = dict(self.classifier.sample(D, data.n_classes))
        if data.n_classes == 2:
            with numpyro.plate("worker", data.n_workers):
                params["sensitivity"] = numpyro.sample("sensitivity",
                                                       dist.Beta(*self.sensitivity_prior))
                params["specificity"] = numpyro.sample("specificity",
                                                       dist.Beta(*self.specificity_prior))
        else:
            conc = confusion_concentration(self.confusion_prior, data.n_classes)
            with numpyro.plate("worker", data.n_workers, dim=-2):
                with numpyro.plate("true_class", data.n_classes, dim=-1):
                    params["confusion"] = numpyro.sample("confusion", dist.Dirichlet(conc))
        return params

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log p(z_t | x_t, w)`` and the annotators' ``log p(y_n | z)``."""
        log_prior = self.classifier_log_prior(params, data)
        if data.n_classes == 2:
            a = jnp.clip(params["sensitivity"][data.worker], self.eps, 1 - self.eps)
            b = jnp.clip(params["specificity"][data.worker], self.eps, 1 - self.eps)
            table = binary_table(jnp.log(a), jnp.log1p(-a), jnp.log(b), jnp.log1p(-b))
        else:
            table = jnp.log(jnp.clip(params["confusion"], self.eps, 1.0))[data.worker]
        return log_prior, pick_labels(table, labels)

    # --- EM ------------------------------------------------------------------------------
    def annotator_m_step(self, resp: jax.Array, data: CrowdData) -> Params:
        """Closed-form posterior modes of the annotators' parameters given ``resp``."""
        W = data.n_workers
        if data.n_classes == 2:
            r1 = resp[data.task, 1]
            y1 = (data.label == 1).astype(resp.dtype)
            a1, b1 = self.sensitivity_prior
            a2, b2 = self.specificity_prior
            seg = lambda v: jax.ops.segment_sum(v, data.worker, num_segments=W)  # noqa: E731
            sens = (seg(r1 * y1) + a1 - 1) / jnp.maximum(seg(r1) + a1 + b1 - 2, self.eps)
            spec = (seg((1 - r1) * (1 - y1)) + a2 - 1) / jnp.maximum(
                seg(1 - r1) + a2 + b2 - 2, self.eps)
            clip = lambda v: jnp.clip(v, self.eps, 1 - self.eps)  # noqa: E731
            return {"sensitivity": clip(sens), "specificity": clip(spec)}
        K = data.n_classes
        counts = jnp.zeros((W, K, K), resp.dtype).at[data.worker, :, data.label].add(
            resp[data.task])
        conc = confusion_concentration(self.confusion_prior, K)
        return {"confusion": dirichlet_map(counts, conc, self.eps)}

    @property
    def has_em(self) -> bool:  # type: ignore[override]
        """Closed-form EM for the logistic classifier; L-BFGS for an MLP."""
        return isinstance(self.classifier, Logistic)

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step: closed-form annotators, Newton / Boehning steps for the weights."""
        if not self.has_em:
            return super().em_update(params, resp, data)
        x = self.inputs(data)
        cls = {k: params[k] for k in ("weights", "bias")}
        new = dict(self.classifier.m_step(cls, x, resp, n_steps=self.newton_steps))
        new.update(self.annotator_m_step(resp, data))
        return new

    def init_params(self, data: CrowdData) -> Params:
        """Classifier fitted to the soft majority vote; annotators' M-step from it."""
        resp = soft_majority_vote(data)
        params = dict(self.classifier.fit(self.inputs(data), resp))
        params.update(self.annotator_m_step(resp, data))
        return params
