r"""Paun et al.'s item-difficulty model (ItemDiff): per-item answer logits around class means.

Where Dawid-Skene models the *workers*, ItemDiff models the *items*: every task has its own
distribution of answers, drawn around the distribution of its true class, so a hard item
(one whose answers scatter) is explained by the item rather than by bad workers; the
workers are pooled. Answer logits have ``K - 1`` free entries, the last fixed at 0.
Generative story (plates: ``true_class`` K, ``logit_label`` K - 1, ``task`` T, ``answer``
N), non-centred as NumPyro's ``LocScaleReparam(0)`` writes it::

    pi                 ~ Dirichlet(class_prior)
    eta[k, l]          ~ Normal(m_kl, 1)                class k's mean logit of label l vs K-1
    chi[k, l]          ~ Gamma(2, 2)                    class k's spread of items
    e_t                ~ Normal(0, I_{K-1})             the item effect (standardized)
    z_t                ~ Categorical(pi)
    theta[t]           = (eta[z_t] + chi[z_t] * e_t, 0)
    y_n | z, e         ~ Categorical(softmax(theta[task_n]))

**Both latent variables of a task are summed out.** Maximizing the joint density over a
per-task effect ``e_t`` is degenerate (a class with a large ``chi`` fits every task's
answers exactly: the MAP puts every task in it — we saw it on the demo crowd), so the item
effect is integrated, not optimized: ``e_t`` is given the ``S``-point Gauss-Hermite
(product-rule) approximation of ``Normal(0, I)``, nodes ``e_s`` with weights ``w_s`` —
a discrete distribution that matches the normal's moments up to order ``2 n - 1`` per
axis — and the model's likelihood is that model's, marginalized exactly,

.. math::

    p(y_t \mid \pi, \eta, \chi) = \sum_k \pi_k \sum_s w_s \prod_{n \in t}
        \mathrm{softmax}(\eta_k + \chi_k e_s, 0)_{y_n}.

With ``K - 1 > 4`` free logits the product grid is too large and ``S`` scrambled-Sobol
points (equal weights) replace it. The simulator draws ``e_t`` from the same nodes (site
``item_node``), so simulation and likelihood agree (simulation-based calibration applies).
The per-task integral lands in ``log_prior[t, k]`` (the answers' own terms are zero): the
shared :func:`~crowdzoo.models.core.marginalize` then sums ``z`` out and keeps per-task
log-likelihoods *with the item effect integrated*, so PSIS-LOO is well behaved.

NumPyro's example puts ``Normal(0, 1)`` on every ``eta``, which is symmetric under a
permutation of the classes (every labelling of the classes is an equal mode). We default to
the prior mean of rater's hierarchical Dawid-Skene written on the ``K - 1`` free logits
(``m_kl = diag_mean [l = k] - diag_mean [k = K - 1]``: the answer equal to the class is a
priori the likeliest), which breaks the symmetry; ``diag_mean=0`` is NumPyro's prior.

The MAP is L-BFGS on the marginal posterior of ``(pi, eta, chi)``, started at the pooled
confusion matrix of the soft majority vote.

The population scales get a boundary-avoiding ``Gamma(2, 2)`` prior (mode 0.5, mean 1;
Chung, Rabe-Hesketh, Dorie, Gelman & Liu 2013) instead of rater's / NumPyro's
``HalfNormal(1)``: a half-normal's density is largest at 0, so the MAP (which the runner also
uses to start NUTS) can put a scale at exactly 0, where NUTS's chains stick (we saw it on a
40-task crowd). ``scale_prior=(shape, rate)`` changes it.

References
----------
1. S. Paun, B. Carpenter, J. Chamberlain, D. Hovy, U. Kruschwitz, M. Poesio. Comparing
   Bayesian Models of Annotation. TACL 6:571-585, 2018. https://doi.org/10.1162/tacl_a_00040
   (the item-difficulty model, Figure 5).
2. NumPyro, ``examples/annotation.py`` (Paun et al.'s six models for dense data).
3. P. J. Davis, P. Rabinowitz. Methods of Numerical Integration, 2nd ed., 1984 (Gauss-Hermite
   product rules).
4. Y. Chung, S. Rabe-Hesketh, V. Dorie, A. Gelman, J. Liu. A Nondegenerate Penalized
   Likelihood Estimator for Variance Parameters in Multilevel Models. Psychometrika 78(4):
   685-709, 2013. https://doi.org/10.1007/s11336-013-9328-2
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData, clamp_gold
from .multinomial import Multinomial

__all__ = ["ItemDifficulty", "ItemEffectModel", "free_logit_mean", "free_logits", "normal_nodes",
           "pad_logits"]


def pad_logits(x: jax.Array) -> jax.Array:
    """Append the fixed last logit 0 to the ``K - 1`` free ones (last axis)."""
    return jnp.concatenate([x, jnp.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def free_logit_mean(n_classes: int, diag_mean: float) -> jax.Array:
    """Return the ``(K, K - 1)`` prior means of the free logits.

    ``diag_mean`` on the diagonal of the full ``K x K`` logits, 0 elsewhere, re-expressed
    relative to the last label.
    """
    full = jnp.where(jnp.eye(n_classes, dtype=bool), diag_mean, 0.0)
    return full[:, :-1] - full[:, -1:]


def free_logits(probs: jax.Array) -> jax.Array:
    """``log p_l - log p_{K-1}`` for ``l < K - 1`` (last axis): probabilities -> free logits."""
    logp = jnp.log(probs)
    return logp[..., :-1] - logp[..., -1:]


@functools.lru_cache(maxsize=32)
def normal_nodes(dim: int, per_axis: int = 20, max_nodes: int = 128):
    """Nodes ``(S, dim)`` and log weights ``(S,)`` of a discrete stand-in for ``Normal(0, I)``.

    The Gauss-Hermite product rule with ``n = min(per_axis, floor(max_nodes ** (1/dim)))``
    points per axis (exact for polynomials of degree ``2 n - 1`` per axis); when that leaves
    fewer than 3 points per axis, ``max_nodes`` scrambled-Sobol points (fixed seed) pushed
    through the normal quantile function, equal weights. Numpy arrays (static constants).
    """
    n = min(int(per_axis), int(np.floor(max_nodes ** (1.0 / dim) + 1e-9)))
    if n >= 3:
        x, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / w.sum()
        grids = np.meshgrid(*([x] * dim), indexing="ij")
        nodes = np.stack([g.ravel() for g in grids], -1)
        logw = sum(np.log(g.ravel()) for g in np.meshgrid(*([w] * dim), indexing="ij"))
    else:
        from scipy.stats import norm, qmc

        u = qmc.Sobol(dim, scramble=True, seed=0).random(max_nodes)
        nodes = norm.ppf(np.clip(u, 1e-6, 1 - 1e-6))
        logw = np.full(max_nodes, -np.log(max_nodes))
    return nodes.astype(np.float32), np.asarray(logw, np.float32)


class ItemEffectModel(CrowdModel):
    """Shared settings of the models with a per-item logit effect summed out by quadrature.

    ``diag_mean`` (prior mean of the correct answer's logit), ``scale_prior`` (Gamma shape and
    rate of the effect's scales), ``class_prior`` (Dirichlet concentration of ``pi``) and the
    quadrature size (:func:`normal_nodes`).
    """

    def __init__(self, diag_mean: float = 2.0, scale_prior=(2.0, 2.0), class_prior=2.0,
                 nodes_per_axis: int = 20, max_nodes: int = 128):
        shape, rate = (float(v) for v in scale_prior)
        if not (shape > 0 and rate > 0):
            raise ValueError(f"scale_prior must be (shape, rate) > 0, got {scale_prior}")
        if int(nodes_per_axis) < 1 or int(max_nodes) < 1:
            raise ValueError("nodes_per_axis and max_nodes must be >= 1")
        self.diag_mean = float(diag_mean)
        self.scale_prior = (shape, rate)
        self.class_prior = class_prior
        self.nodes_per_axis = int(nodes_per_axis)
        self.max_nodes = int(max_nodes)

    def _class_conc(self, data: CrowdData):
        return jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))

    def nodes(self, data: CrowdData):
        """Quadrature nodes ``(S, K - 1)`` and log weights ``(S,)`` of the item effect."""
        return normal_nodes(data.n_classes - 1, self.nodes_per_axis, self.max_nodes)


class ItemDifficulty(ItemEffectModel):
    """Paun et al.'s ItemDiff: per-task answer logits around the true class's mean.

    Parameters
    ----------
    diag_mean : float
        Prior mean of the correct answer's logit (see the module docstring; 0 is NumPyro's).
    scale_prior : (shape, rate)
        Gamma prior of the population scales (default ``(2, 2)``, see above).
    class_prior : float or array (K,)
        Dirichlet concentration of the class frequencies (NumPyro: 1; 2 keeps the MAP of
        ``pi`` interior).
    nodes_per_axis, max_nodes : int
        Size of the quadrature of the item effect (:func:`normal_nodes`).

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("item_difficulty", crowdzoo.data.load_demo())
    >>> fit.params["chi"].shape
    (3, 2)
    """

    name = "item_difficulty"
    title = "Item difficulty (Paun et al.'s ItemDiff: per-item answer logits, pooled workers)"
    reference = (
        "Paun, Carpenter, Chamberlain, Hovy, Kruschwitz & Poesio (2018), Comparing Bayesian "
        "Models of Annotation, TACL 6:571-585 (ItemDiff)"
    )
    answers_independent_given_label = False  # the item effect couples a task's answers
    integrates_task_parameters = True  # the item effect is summed out by quadrature
    dims = {"pi": ("true_class",), "eta": ("true_class", "logit_label"),
            "chi": ("true_class", "logit_label")}

    def sample_params(self, data: CrowdData) -> Params:
        """``pi``; ``eta``, ``chi`` in plates true_class x logit_label."""
        K = data.n_classes
        pi = numpyro.sample("pi", dist.Dirichlet(self._class_conc(data)))
        with numpyro.plate("true_class", K, dim=-2), numpyro.plate("logit_label", K - 1, dim=-1):
            eta = numpyro.sample("eta", dist.Normal(free_logit_mean(K, self.diag_mean), 1.0))
            chi = numpyro.sample("chi", dist.Gamma(*self.scale_prior))
        return {"pi": pi, "eta": eta, "chi": chi}

    def node_table(self, params: Params, data: CrowdData) -> jax.Array:
        """``log p(y = l | z = k, e_s)``, shape ``(K, S, L)``."""
        nodes, _ = self.nodes(data)
        logits = params["eta"][:, None, :] + params["chi"][:, None, :] * nodes[None]
        return jax.nn.log_softmax(pad_logits(logits), -1)

    def log_terms(self, params: Params, data: CrowdData, labels):
        """Per-task ``log pi_k + log sum_s w_s prod_n p(y_n | k, e_s)`` and zero emissions.

        With ``labels=None``: ``log pi`` and every answer's table with the item effect
        integrated for one answer alone, ``log sum_s w_s p(y = l | k, e_s)`` (the simulator
        draws ``e_t`` per task instead: :meth:`generate`).
        """
        _, logw = self.nodes(data)
        table = self.node_table(params, data)  # (K, S, L)
        log_pi = jnp.log(params["pi"])
        if labels is None:
            one = jax.nn.logsumexp(table + logw[None, :, None], axis=1)  # (K, L)
            return log_pi, jnp.broadcast_to(one[None], (data.n_answers,) + one.shape)
        counts = jnp.zeros((data.n_tasks, data.n_classes)).at[data.task, labels].add(1.0)
        per_node = jnp.einsum("tl,ksl->tks", counts, table)  # (T, K, S)
        integrated = jax.nn.logsumexp(per_node + logw, axis=-1)  # (T, K)
        return log_pi + integrated, jnp.zeros((labels.shape[0], data.n_classes))

    def generate(self, params: Params, data: CrowdData):
        """Simulate: ``item_node`` (the item effect) and ``z`` per task, then the answers."""
        _, logw = self.nodes(data)
        table = self.node_table(params, data)
        log_prior = jnp.broadcast_to(jnp.log(params["pi"]), (data.n_tasks, data.n_classes))
        with numpyro.plate("task", data.n_tasks):
            node = numpyro.sample("item_node", dist.Categorical(logits=jnp.asarray(logw)))
            z = numpyro.sample("z", dist.Categorical(logits=clamp_gold(log_prior, data.gold)))
        row = table[z[data.task], node[data.task]]  # (N, L)
        with numpyro.plate("answer", data.n_answers):
            y = numpyro.sample("y", dist.Categorical(logits=row))
        return z, y

    def init_params(self, data: CrowdData) -> Params:
        """Start at the pooled (Multinomial) M-step from the soft majority vote; spreads 0.5."""
        start = Multinomial(class_prior=self.class_prior).m_step(soft_majority_vote(data), data)
        K = data.n_classes
        return {"pi": start["pi"], "eta": free_logits(start["confusion"]),
                "chi": jnp.full((K, K - 1), 0.5)}

    def worker_stats(self, params: Params, data: CrowdData):
        """Return the pooled accuracy on an average item (``e = 0``), the same for every worker.

        The workers are exchangeable in ItemDiff; the table still lists every worker.
        """
        conf = jax.nn.softmax(pad_logits(params["eta"]), -1)  # (K, K)
        acc = (jnp.diagonal(conf, axis1=-2, axis2=-1) * params["pi"]).sum(-1)
        return {"accuracy": jnp.broadcast_to(acc[..., None], acc.shape + (data.n_workers,))}
