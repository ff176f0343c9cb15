r"""Crowdsourcing with difficulty: Han, Adiguzel & Carpenter's IRT family of rating models.

Dawid and Skene's two-coin raters (a sensitivity and a specificity per rater, on the log-odds
scale) meet item-response theory: each item has a difficulty (1PL), a discrimination (2PL)
and a guessing chance (3PL). Binary ratings only.

Generative story (plates: ``worker`` J, ``task`` I, ``answer`` N)::

    pi                     ~ Dirichlet(2, 2)            class frequencies (pi_1 ~ Beta(2, 2))
    alpha_spec_j           ~ Normal(2, 2)               rater j's specificity, log odds
    alpha_sens_j           ~ Normal(1, 2)               rater j's sensitivity, log odds,
                             restricted to  alpha_sens_j + alpha_spec_j > 0   (cooperative)
    beta_i                 ~ Normal(0, 1)               difficulty               (1PL, 2PL, 3PL)
    delta_i                ~ LogNormal(0, 0.25)         discrimination           (2PL, 3PL)
    lambda_i               ~ Beta(2, 2)                 guessing                 (3PL)
    z_i                    ~ Bernoulli(pi_1)
    Pr(y_n = 1 | z = 1)    = lambda_i + (1 - lambda_i) logit^-1(delta_i (alpha_sens_j - beta_i))
    Pr(y_n = 1 | z = 0)    = (1 - lambda_i) logit^-1(-delta_i (alpha_spec_j - beta_i))

with ``i = task_n``, ``j = worker_n``; the 1PL fixes ``delta = 1``, ``lambda = 0``, the 2PL
``lambda = 0``. With ``beta = 0``, ``delta = 1`` and ``lambda = 0`` this is two-coin
Dawid-Skene with sensitivity ``logit^-1(alpha_sens_j)`` and specificity
``logit^-1(alpha_spec_j)`` (``tests/test_irt.py`` checks it). These are the Stan programs
``stan/ab.stan`` (1PL), ``stan/a.stan`` (2PL) and ``stan/full.stan`` (3PL) of the paper's
repository, priors included.

**The cooperative constraint.** Stan declares ``vector<lower=-alpha_spec>[J] alpha_sens``:
the sensitivity/specificity pair of each rater lies above the spam line
(``sens + spec > 1``), which removes the likelihood's second, adversarial mode (the labels
flipped and every rater lying). The joint prior is the two independent normals restricted to
``alpha_sens + alpha_spec > 0``. Because both normals have scale 2, their sum and difference
are independent::

    alpha_sum_j  = alpha_sens_j + alpha_spec_j  ~ Normal(3, 2 sqrt 2) truncated to (0, inf)
    alpha_diff_j = alpha_sens_j - alpha_spec_j  ~ Normal(-1, 2 sqrt 2)

so the program samples ``alpha_sum`` and ``alpha_diff`` (a linear map with a constant
Jacobian: the same posterior as Stan's) and is its own exact simulator, as simulation-based
calibration needs. ``alpha_sens = (alpha_sum + alpha_diff) / 2`` and
``alpha_spec = (alpha_sum - alpha_diff) / 2`` are reported per worker.

Likelihood: with the true label summed out exactly (the shared
:func:`~crowdzoo.models.core.marginalize`), in log space: ``log Pr(y = 1 | z = 1) =
logaddexp(log lambda, log(1 - lambda) + log_sigmoid(delta (alpha_sens - beta)))`` and so on.
The MAP is L-BFGS on the exact marginal posterior (there is no closed-form M-step), started
from two-coin estimates on the soft majority vote with ``beta = 0``, ``delta = 1``.

The per-task parameters (``difficulty``, ``discrimination``, ``guessing``) have priors that
do not depend on the other parameters, so a task's likelihood with them integrated out is a
low-dimensional quadrature (:meth:`IRT.task_quadrature`): model comparison by PSIS-LOO uses
it (a task's own parameters make its plain LOO term unreliable).

References
----------
1. J. Han, M. Adiguzel, B. Carpenter. Crowdsourcing with Difficulty: A Bayesian Rating Model
   for Heterogeneous Items. arXiv:2405.19521, 2024. Stan code:
   https://github.com/bob-carpenter/crowdsource-computo (``stan/``).
2. A. P. Dawid and A. M. Skene. Maximum Likelihood Estimation of Observer Error-Rates Using
   the EM Algorithm. JRSS C 28(1):20-28, 1979.
3. A. Birnbaum. Some latent trait models and their use in inferring an examinee's ability.
   In Lord & Novick, Statistical Theories of Mental Test Scores, 1968 (the 2PL / 3PL).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData
from .quadrature import gauss_hermite_normal, gauss_legendre_beta
from .raykar import binary_table, pick_labels

__all__ = ["IRT", "IRT1PL", "IRT2PL", "IRT3PL"]

_SQRT8 = float(np.sqrt(8.0))


class IRT(CrowdModel):
    r"""Han, Adiguzel & Carpenter's rating model with item effects (the 3PL; see subclasses).

    Parameters
    ----------
    class_prior : float
        Dirichlet concentration of ``pi`` (the paper: ``pi ~ Beta(2, 2)``).
    spec_prior, sens_prior : (loc, scale)
        Normal priors of ``alpha_spec`` and ``alpha_sens`` before the cooperative restriction
        (the paper: ``(2, 2)`` and ``(1, 2)``). Both scales must be equal (the restriction is
        sampled through the independent sum and difference).
    difficulty_prior : (loc, scale)
        Normal prior of ``beta`` (the paper: ``(0, 1)``).
    discrimination_prior : (loc, scale)
        LogNormal prior of ``delta`` (the paper: ``(0, 0.25)``).
    guessing_prior : (a, b)
        Beta prior of ``lambda`` (the paper: ``(2, 2)``).
    """

    name = "irt_3pl"
    title = "IRT 3PL rating model (Han et al.: sens/spec + difficulty, discrimination, guessing)"
    reference = ("Han, Adiguzel & Carpenter (2024), Crowdsourcing with Difficulty: A Bayesian "
                 "Rating Model for Heterogeneous Items, arXiv:2405.19521")
    binary_only = True
    #: which item effects the model has
    has_discrimination: ClassVar[bool] = True
    has_guessing: ClassVar[bool] = True

    def __init__(self, class_prior: float = 2.0, spec_prior=(2.0, 2.0), sens_prior=(1.0, 2.0),
                 difficulty_prior=(0.0, 1.0), discrimination_prior=(0.0, 0.25),
                 guessing_prior=(2.0, 2.0)):
        pairs = {"spec_prior": spec_prior, "sens_prior": sens_prior,
                 "difficulty_prior": difficulty_prior,
                 "discrimination_prior": discrimination_prior, "guessing_prior": guessing_prior}
        for what, value in pairs.items():
            v = tuple(float(x) for x in value)
            if len(v) != 2 or not np.isfinite(v).all() or v[1] <= 0:
                raise ValueError(f"{what} must be two finite numbers, the second > 0; got "
                                 f"{value!r}")
            setattr(self, what, v)
        if self.spec_prior[1] != self.sens_prior[1]:
            raise ValueError(f"spec_prior and sens_prior must have the same scale, got "
                             f"{self.spec_prior[1]} and {self.sens_prior[1]}")
        if self.guessing_prior[0] <= 0:
            raise ValueError(f"guessing_prior must be positive, got {guessing_prior!r}")
        if not float(class_prior) > 0:
            raise ValueError(f"class_prior must be > 0, got {class_prior!r}")
        self.class_prior = float(class_prior)

    @property
    def dims(self):  # type: ignore[override]
        """ArviZ dims of the parameter sites."""
        d = {"pi": ("true_class",), "alpha_sum": ("worker",), "alpha_diff": ("worker",),
             "difficulty": ("task",)}
        if self.has_discrimination:
            d["discrimination"] = ("task",)
        if self.has_guessing:
            d["guessing"] = ("task",)
        return d

    # --- priors ---------------------------------------------------------------------------
    def _sum_diff_prior(self):
        scale = self.sens_prior[1] * np.sqrt(2.0)
        return (self.sens_prior[0] + self.spec_prior[0], self.sens_prior[0] - self.spec_prior[0],
                scale)

    def sample_params(self, data: CrowdData) -> Params:
        """Sample ``pi``, per worker ``alpha_sum > 0`` and ``alpha_diff``, per task its effects."""
        sum_loc, diff_loc, scale = self._sum_diff_prior()
        pi = numpyro.sample("pi", dist.Dirichlet(jnp.full(data.n_classes, self.class_prior)))
        with numpyro.plate("worker", data.n_workers):
            alpha_sum = numpyro.sample("alpha_sum", dist.TruncatedNormal(sum_loc, scale, low=0.0))
            alpha_diff = numpyro.sample("alpha_diff", dist.Normal(diff_loc, scale))
        params = {"pi": pi, "alpha_sum": alpha_sum, "alpha_diff": alpha_diff}
        with numpyro.plate("task", data.n_tasks):
            params["difficulty"] = numpyro.sample("difficulty",
                                                  dist.Normal(*self.difficulty_prior))
            if self.has_discrimination:
                params["discrimination"] = numpyro.sample(
                    "discrimination", dist.LogNormal(*self.discrimination_prior))
            if self.has_guessing:
                params["guessing"] = numpyro.sample("guessing", dist.Beta(*self.guessing_prior))
        return params

    # --- likelihood -----------------------------------------------------------------------
    @staticmethod
    def alphas(params: Params):
        """``(alpha_sens, alpha_spec)`` from the sampled sum and difference."""
        s, d = params["alpha_sum"], params["alpha_diff"]
        return (s + d) / 2, (s - d) / 2

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log pi`` and the two-coin emission with the item effects of each answer's task."""
        sens, spec = self.alphas(params)
        beta = params["difficulty"][..., data.task]
        delta = params["discrimination"][..., data.task] if self.has_discrimination else 1.0
        a1 = delta * (sens[..., data.worker] - beta)  # z = 1: log odds of a correct "1"
        a0 = delta * (spec[..., data.worker] - beta)  # z = 0: log odds of a correct "0"
        ok1, bad1 = jax.nn.log_sigmoid(a1), jax.nn.log_sigmoid(-a1)
        ok0, bad0 = jax.nn.log_sigmoid(a0), jax.nn.log_sigmoid(-a0)
        if self.has_guessing:
            lam = params["guessing"][..., data.task]
            log_lam, log1m_lam = jnp.log(lam), jnp.log1p(-lam)
            ok1, bad1 = jnp.logaddexp(log_lam, log1m_lam + ok1), log1m_lam + bad1
            ok0, bad0 = jnp.logaddexp(log_lam, log1m_lam + ok0), log1m_lam + bad0
        table = binary_table(ok1, bad1, ok0, bad0)
        return jnp.log(params["pi"]), pick_labels(table, labels)

    # --- per-task parameters integrated out (for LOO) -------------------------------------
    def task_quadrature(self, data: CrowdData, n_nodes: int = 24):
        """Quadrature over one task's own parameters under their prior.

        Returns ``(nodes, log_weights)``: ``nodes[site]`` is ``(Q,)`` (one value per node,
        the same for every task) and ``sum_q exp(log_weights[q]) f(nodes[.][q])``
        approximates ``E[f]`` under the prior of the per-task sites. Gauss-Hermite for the
        difficulty (and the log discrimination), Gauss-Legendre for the guessing chance; a
        tensor grid of ``n_nodes`` x ``n_nodes // 3`` x ``n_nodes // 3`` nodes.
        """
        b, lb = gauss_hermite_normal(n_nodes, *self.difficulty_prior)
        axes = [(("difficulty",), b[:, None], lb)]
        if self.has_discrimination:
            m = max(3, n_nodes // 3)
            x, lw = gauss_hermite_normal(m, *self.discrimination_prior)
            axes.append((("discrimination",), np.exp(x)[:, None], lw))
        if self.has_guessing:
            m = max(3, n_nodes // 3)
            x, lw = gauss_legendre_beta(m, *self.guessing_prior)
            axes.append((("guessing",), x[:, None], lw))
        grids = np.meshgrid(*[np.arange(len(a[2])) for a in axes], indexing="ij")
        nodes, log_w = {}, 0.0
        for (names, values, lw), idx in zip(axes, grids, strict=True):
            nodes[names[0]] = jnp.asarray(values[idx.ravel(), 0], jnp.float32)
            log_w = log_w + lw[idx.ravel()]
        return nodes, jnp.asarray(log_w, jnp.float32)

    # --- MAP start and derived quantities -------------------------------------------------
    def init_params(self, data: CrowdData) -> Params:
        """Start the MAP from two-coin estimates on the soft majority vote.

        ``beta = 0``, ``delta = 1``, ``lambda = 0.1``; a rater below the spam line is moved
        just above it.
        """
        resp = soft_majority_vote(data)
        r = resp[data.task]
        y1 = (data.label == 1).astype(jnp.float32)
        w = data.n_workers
        n1 = jax.ops.segment_sum(r[:, 1], data.worker, w) + 2.0
        n0 = jax.ops.segment_sum(r[:, 0], data.worker, w) + 2.0
        sens = (jax.ops.segment_sum(r[:, 1] * y1, data.worker, w) + 1.0) / n1
        spec = (jax.ops.segment_sum(r[:, 0] * (1 - y1), data.worker, w) + 1.0) / n0
        a_sens, a_spec = jax.scipy.special.logit(sens), jax.scipy.special.logit(spec)
        pi1 = (resp[:, 1].sum() + 1.0) / (data.n_tasks + 2.0)
        params = {"pi": jnp.stack([1 - pi1, pi1]),
                  "alpha_sum": jnp.maximum(a_sens + a_spec, 0.5),
                  "alpha_diff": a_sens - a_spec,
                  "difficulty": jnp.zeros(data.n_tasks)}
        if self.has_discrimination:
            params["discrimination"] = jnp.ones(data.n_tasks)
        if self.has_guessing:
            params["guessing"] = jnp.full(data.n_tasks, 0.1)
        return params

    def worker_stats(self, params: Params, data: CrowdData):
        """Log-odds sensitivity / specificity and their probabilities at difficulty 0."""
        sens, spec = self.alphas(params)
        return {"alpha_sens": sens, "alpha_spec": spec, "sensitivity": jax.nn.sigmoid(sens),
                "specificity": jax.nn.sigmoid(spec)}


class IRT3PL(IRT):
    """IRT 3PL rating model: difficulty, discrimination and guessing per item (``full.stan``)."""


class IRT2PL(IRT):
    """IRT 2PL rating model: difficulty and discrimination per item (``a.stan``)."""

    name = "irt_2pl"
    title = "IRT 2PL rating model (Han et al.: sens/spec + difficulty, discrimination)"
    has_guessing = False


class IRT1PL(IRT):
    """IRT 1PL rating model: a difficulty per item (``ab.stan``)."""

    name = "irt_1pl"
    title = "IRT 1PL rating model (Han et al.: sens/spec + item difficulty)"
    has_discrimination = False
    has_guessing = False
