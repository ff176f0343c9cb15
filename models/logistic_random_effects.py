r"""Paun et al.'s logistic random effects model (LogRndEff): worker logits minus an item effect.

The model of Carpenter (2008) as written by Paun et al.: hierarchical worker confusion
logits, as in the hierarchical Dawid-Skene model, *minus* an item random effect that makes a
task harder or easier for everyone. Logits have ``K - 1`` free entries, the last fixed at 0.
Generative story (plates: ``true_class`` K, ``logit_label`` K - 1, ``worker`` W, ``task``
T, ``answer`` N), non-centred as NumPyro's ``LocScaleReparam(0)`` writes it::

    pi                    ~ Dirichlet(class_prior)
    zeta[k, l]            ~ Normal(m_kl, 1)             population mean logit
    omega[k, l]           ~ Gamma(2, 2)                 population spread of workers
    chi[k, l]             ~ Gamma(2, 2)                 spread of item effects
    beta_raw[w, k, l]     ~ Normal(0, 1)
    e_t                   ~ Normal(0, I_{K-1})          the item effect (standardized)
    z_t                   ~ Categorical(pi)
    logits[n]             = (zeta[k] + omega[k] beta_raw[w_n, k] - chi[k] e_{t_n}, 0),  k = z_{t_n}
    y_n | z, e            ~ Categorical(softmax(logits[n]))

As in :mod:`~crowdzoo.models.item_difficulty` (read its docstring), both latent variables
of a task are summed out: ``z`` exactly, the item effect ``e_t`` over the Gauss-Hermite
product-rule nodes ``e_s`` (weights ``w_s``) that stand in for ``Normal(0, I)`` (Sobol
points for ``K - 1 > 4``), so the model fitted is

.. math::

    p(y_t \mid \theta) = \sum_k \pi_k \sum_s w_s \prod_{n \in t}
        \mathrm{softmax}(\zeta_k + \omega_k \beta^{raw}_{w_n k} - \chi_k e_s, 0)_{y_n},

and the simulator draws ``e_t`` from the same nodes. Maximizing over a per-task effect
instead is degenerate (a class with a large ``chi`` fits any task), and the integrated
per-task log-likelihood keeps PSIS-LOO well behaved. The prior means ``m`` put
``diag_mean`` on the correct answer's logit (rater's hierarchical Dawid-Skene prior on the
free logits); ``diag_mean=0`` is NumPyro's class-symmetric prior.

The MAP is L-BFGS on the marginal posterior, started at Dawid-Skene's first M-step from the
soft majority vote split into population means, spreads and standardized worker effects.

The population scales get a boundary-avoiding ``Gamma(2, 2)`` prior (mode 0.5, mean 1;
Chung, Rabe-Hesketh, Dorie, Gelman & Liu 2013) instead of rater's / NumPyro's
``HalfNormal(1)``: a half-normal's density is largest at 0, so the MAP (which the runner also
uses to start NUTS) can put a scale at exactly 0, where NUTS's chains stick (we saw it on a
40-task crowd). ``scale_prior=(shape, rate)`` changes it.

References
----------
1. S. Paun, B. Carpenter, J. Chamberlain, D. Hovy, U. Kruschwitz, M. Poesio. Comparing
   Bayesian Models of Annotation. TACL 6:571-585, 2018. https://doi.org/10.1162/tacl_a_00040
   (LogRndEff).
2. B. Carpenter. Multilevel Bayesian Models of Categorical Data Annotation. Technical
   report, 2008.
3. NumPyro, ``examples/annotation.py``.
4. Y. Chung, S. Rabe-Hesketh, V. Dorie, A. Gelman, J. Liu. A Nondegenerate Penalized
   Likelihood Estimator for Variance Parameters in Multilevel Models. Psychometrika 78(4):
   685-709, 2013. https://doi.org/10.1007/s11336-013-9328-2
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import Params, soft_majority_vote
from .core import CrowdData, clamp_gold
from .dawid_skene import DawidSkene
from .item_difficulty import ItemEffectModel, free_logit_mean, free_logits, pad_logits

__all__ = ["LogisticRandomEffects"]


class LogisticRandomEffects(ItemEffectModel):
    """Paun et al.'s LogRndEff: hierarchical worker confusion logits minus an item effect.

    Parameters
    ----------
    diag_mean : float
        Prior mean of the correct answer's population logit (0 is NumPyro's prior).
    scale_prior : (shape, rate)
        Gamma prior of the population scales (default ``(2, 2)``, see above).
    class_prior : float or array (K,)
        Dirichlet concentration of the class frequencies (NumPyro: 1; 2 keeps the MAP of
        ``pi`` interior).
    nodes_per_axis, max_nodes : int
        Size of the quadrature of the item effect
        (:func:`~crowdzoo.models.item_difficulty.normal_nodes`).

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("logistic_random_effects", crowdzoo.data.load_demo())
    >>> fit.params["beta_raw"].shape
    (40, 3, 2)
    """

    name = "logistic_random_effects"
    title = "Logistic random effects (Paun et al.'s LogRndEff: worker logits minus item effect)"
    reference = (
        "Paun, Carpenter, Chamberlain, Hovy, Kruschwitz & Poesio (2018), Comparing Bayesian "
        "Models of Annotation, TACL 6:571-585 (LogRndEff); Carpenter (2008)"
    )
    answers_independent_given_label = False  # the item effect couples a task's answers
    integrates_task_parameters = True  # the item effect is summed out by quadrature
    dims = {"pi": ("true_class",), "zeta": ("true_class", "logit_label"),
            "omega": ("true_class", "logit_label"), "chi": ("true_class", "logit_label"),
            "beta_raw": ("worker", "true_class", "logit_label"),
            "confusion": ("worker", "true_class", "label")}  # derived (worker_stats)

    def __init__(self, diag_mean: float = 2.0, scale_prior=(2.0, 2.0), class_prior=2.0,
                 nodes_per_axis: int = 20, max_nodes: int = 64):
        super().__init__(diag_mean, scale_prior, class_prior, nodes_per_axis, max_nodes)

    def sample_params(self, data: CrowdData) -> Params:
        """``pi``; population ``zeta``, ``omega``, ``chi``; ``beta_raw`` per worker."""
        K = data.n_classes
        pi = numpyro.sample("pi", dist.Dirichlet(self._class_conc(data)))
        # the label axis is an event dim: plates stop at dim -2 (funsor's enumeration, which
        # the exactness test runs, allocates its dims from -3 on)
        free = jnp.zeros(K - 1)
        with numpyro.plate("true_class", K, dim=-1):
            zeta = numpyro.sample("zeta", dist.Normal(free_logit_mean(K, self.diag_mean),
                                                      1.0).to_event(1))
            omega = numpyro.sample("omega", dist.Gamma(free + self.scale_prior[0],
                                                              self.scale_prior[1]).to_event(1))
            chi = numpyro.sample("chi", dist.Gamma(free + self.scale_prior[0],
                                                              self.scale_prior[1]).to_event(1))
        with numpyro.plate("worker", data.n_workers, dim=-2), \
                numpyro.plate("true_class", K, dim=-1):
            beta_raw = numpyro.sample("beta_raw", dist.Normal(free, 1.0).to_event(1))
        return {"pi": pi, "zeta": zeta, "omega": omega, "chi": chi, "beta_raw": beta_raw}

    @staticmethod
    def worker_logits(params: Params) -> jax.Array:
        """Free worker logits ``zeta + omega * beta_raw``, (W, K, K - 1)."""
        return params["zeta"] + params["omega"] * params["beta_raw"]

    def worker_table(self, params: Params, data: CrowdData) -> jax.Array:
        """``log p(y = l | z = k, e_s)`` of every worker, shape ``(W, K, S, L)``.

        The table depends on the answer only through its worker, so it is built once per
        worker and gathered per answer (``N / W`` times less work than one per answer: on
        dog, 8,070 answers by 109 workers, a gradient is ~10x cheaper).
        """
        nodes, _ = self.nodes(data)
        beta = self.worker_logits(params)  # (W, K, K-1)
        item = params["chi"][:, None, :] * nodes[None]  # (K, S, K-1)
        return jax.nn.log_softmax(pad_logits(beta[:, :, None, :] - item[None]), -1)

    def answer_table(self, params: Params, data: CrowdData) -> jax.Array:
        """``log p(y = l | z = k, e_s)`` of every answer's worker, shape ``(N, K, S, L)``."""
        return self.worker_table(params, data)[data.worker]

    def log_terms(self, params: Params, data: CrowdData, labels):
        """Per-task ``log pi_k + log sum_s w_s prod_n p(y_n | k, e_s)`` and zero emissions.

        With ``labels=None``: ``log pi`` and every answer's table with the item effect
        integrated for that answer alone (the simulator draws ``e_t`` per task instead:
        :meth:`generate`).
        """
        _, logw = self.nodes(data)
        log_pi = jnp.log(params["pi"])
        if labels is None:
            table = self.answer_table(params, data)  # (N, K, S, L)
            return log_pi, jax.nn.logsumexp(table + logw[None, None, :, None], axis=2)
        by_label = jnp.moveaxis(self.worker_table(params, data), -1, 1)  # (W, L, K, S)
        picked = by_label[data.worker, labels]  # (N, K, S): each answer's own label
        per_node = jax.ops.segment_sum(picked, data.task, num_segments=data.n_tasks,
                                       indices_are_sorted=data.tasks_sorted)  # (T, K, S)
        integrated = jax.nn.logsumexp(per_node + logw, axis=-1)
        return log_pi + integrated, jnp.zeros((labels.shape[0], data.n_classes))

    def generate(self, params: Params, data: CrowdData):
        """Simulate: ``item_node`` (the item effect) and ``z`` per task, then the answers."""
        _, logw = self.nodes(data)
        table = self.answer_table(params, data)  # (N, K, S, L)
        log_prior = jnp.broadcast_to(jnp.log(params["pi"]), (data.n_tasks, data.n_classes))
        with numpyro.plate("task", data.n_tasks):
            node = numpyro.sample("item_node", dist.Categorical(logits=jnp.asarray(logw)))
            z = numpyro.sample("z", dist.Categorical(logits=clamp_gold(log_prior, data.gold)))
        row = table[jnp.arange(data.n_answers), z[data.task], node[data.task]]  # (N, L)
        with numpyro.plate("answer", data.n_answers):
            y = numpyro.sample("y", dist.Categorical(logits=row))
        return z, y

    def init_params(self, data: CrowdData) -> Params:
        """Dawid-Skene's first M-step from the soft majority vote, split hierarchically."""
        ds = DawidSkene(confusion_prior=(2.0, 1.0), class_prior=self.class_prior)
        start = ds.m_step(soft_majority_vote(data), data)
        logits = free_logits(start["confusion"])  # (W, K, K-1)
        zeta = logits.mean(0)
        omega = jnp.maximum(logits.std(0), 0.3)
        K = data.n_classes
        return {"pi": start["pi"], "zeta": zeta, "omega": omega,
                "chi": jnp.full((K, K - 1), 0.5), "beta_raw": (logits - zeta) / omega}

    def worker_stats(self, params: Params, data: CrowdData):
        """Each worker's confusion matrix on an average item (``e = 0``) and its accuracy."""
        conf = jax.nn.softmax(pad_logits(self.worker_logits(params)), -1)
        diag = jnp.diagonal(conf, axis1=-2, axis2=-1)
        return {"confusion": conf, "accuracy": (diag * params["pi"][..., None, :]).sum(-1)}
