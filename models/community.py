r"""Community models: workers come in a few types (MBML ch. 7; Venanzi et al. 2014, CBCC).

The biased worker model (:mod:`crowdzoo.models.biased_worker`) learns a confusion matrix per
worker, which is hopeless for the many workers who give only a handful of answers. The
community model assumes that (i) the crowd is made of M communities, (ii) each worker belongs
to one of them and (iii) each worker's confusion matrix is a noisy copy of their
community's. Plates: ``community`` M, ``true_class`` K, ``worker`` W, ``task`` T,
``answer`` N::

    probLabel                     ~ Dirichlet(class_prior)
    communityProb                 ~ Dirichlet(community_prior, ..., community_prior)
    communityConfusion[m, k, :]   ~ Dirichlet(community_confusion_prior[k, :])
    community_w                   ~ Discrete(communityProb)
    confusion[w, k, :]            ~ Dirichlet(1 + s * communityConfusion[community_w, k, :])
    trueLabel_t                   ~ Discrete(probLabel)
    workerLabel_n | trueLabel     ~ Discrete(confusion[worker_n, trueLabel_{task_n}, :])

``Dirichlet(1 + s c)`` has its *mode* at ``c`` (the community's row) and concentrations
above one, so the worker's matrix is drawn around the community's, the MAP stays interior,
and the precision ``s`` (fixed, :attr:`Community.precision`) says how far a worker may stray;
as ``s -> 0`` the workers are independent biased workers, as ``s -> inf`` they are copies of
their community. With M = 1 this is a hierarchical Dawid-Skene.

Venanzi et al. perturb the community's *score* matrix by Gaussian noise and map it through a
softmax (a logistic-normal copy); the Dirichlet copy used here is the conjugate-friendly
version of the same assumption, and the one NUTS samples without a funnel.

Both discrete variables are marginalized exactly: ``trueLabel`` by the shared
:func:`~crowdzoo.models.core.marginalize`, and each worker's community *inside the prior of
that worker's confusion matrix*, a mixture over communities

.. math::

    \log p(\mathrm{confusion}_w) = \log \sum_m \mathrm{communityProb}_m
        \prod_k \mathrm{Dir}(\mathrm{confusion}_{w,k} \mid 1 + s\,
        \mathrm{communityConfusion}_{m,k}),

added with ``numpyro.factor("membership", ...)`` in plate ``worker``. So MAP (L-BFGS), SVI
and NUTS need no discrete sampling, and the posterior membership of each worker is
the softmax of the mixture terms (:meth:`Community.worker_stats`, averaged over draws for
NUTS/SVI). When the model simulates, it samples ``worker_community`` explicitly.

Communities are exchangeable, so their labels can switch between posterior modes: the MAP
starts from k-means on Dawid-Skene's confusion matrices, and NUTS starts from the MAP (one
labelling). Choose M by LOO (``az.compare`` on NUTS fits; see ``notebooks/mbml_crowd.ipynb``).

NUTS runs at ``target_accept_prob=0.95`` by default (:attr:`Community.nuts_defaults`; a value
passed to :func:`crowdzoo.fit` wins). Each community's matrix moves together with its
workers' matrices and the label frequencies (a collective direction of the centred
hierarchy), and at the zoo's default 0.8 that direction mixed slowly: on the simulated crowd
of ``benchmarks/community_mixing.py`` (4 chains x (500 + 500)) the smallest bulk ESS of
``community_confusion`` was 141 and r_hat 1.034; at 0.95 (twice the leapfrog steps per draw)
it is 518 and the largest r_hat over all parameters 1.0097 (seeds 1 and 2: 1.0101, 1.0081;
over ~400 parameters, 4 x 500 independent draws already give a max r_hat of 1.005-1.010). A
dense mass matrix (ESS 508, but a saturated tree depth and ten times the time) and a
non-centred worker matrix (a shift, in additive log-ratio coordinates, from a reference
community chosen by each worker's answers; exact, but ESS 134) did worse; partial
non-centring (ESS 434 at the same 31 steps per draw) no better.

References
----------
1. M. Venanzi, J. Guiver, G. Kazai, P. Kohli, M. Shokouhi. Community-Based Bayesian
   Aggregation Models for Crowdsourcing. WWW 2014, 155-164.
   https://doi.org/10.1145/2566486.2567989
2. J. Winn, C. M. Bishop, T. Diethe, J. Guiver, Y. Zaykov. Model-Based Machine Learning,
   chapter 7 "Harnessing the Crowd". CRC Press, 2023. https://mbmlbook.com
3. H.-C. Kim and Z. Ghahramani. Bayesian Classifier Combination. AISTATS 2012, 619-627.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params
from .core import CrowdData
from .dawid_skene import DawidSkene, confusion_concentration

__all__ = ["Community", "adjusted_rand_index", "kmeans"]


def adjusted_rand_index(labels_a, labels_b) -> float:
    """Return the adjusted Rand index of two partitions (Hubert & Arabie 1985); 1 = identical.

    Invariant to renaming the groups, so it scores recovered communities whatever their
    labelling: ``(index - expected) / (max - expected)`` over pairs of items.
    """
    a = np.unique(np.asarray(labels_a), return_inverse=True)[1]
    b = np.unique(np.asarray(labels_b), return_inverse=True)[1]
    if a.shape != b.shape:
        raise ValueError(f"partitions of different sizes: {a.shape} vs {b.shape}")
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / pairs(np.array([a.size]))
    top = (rows + cols) / 2
    if top == expected:  # both partitions trivial (one group, or all singletons)
        return 1.0
    return float((index - expected) / (top - expected))


def kmeans(points: np.ndarray, weights: np.ndarray, n_clusters: int, n_iter: int = 50):
    """Weighted k-means with a deterministic k-means++-style start (numpy, for the MAP start).

    The first center is the weighted mean; each next one the point with the largest
    ``weight * distance^2`` to the centers so far (no randomness, so a fit is reproducible).

    Returns
    -------
    centers : (n_clusters, D)
    assign : (n,) int
    """
    points = np.asarray(points, np.float64)
    w = np.asarray(weights, np.float64)
    centers = [np.average(points, axis=0, weights=w)]
    for _ in range(1, n_clusters):
        d2 = ((points[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1).min(1)
        centers.append(points[int(np.argmax(w * d2))])
    centers = np.asarray(centers)
    assign = np.zeros(len(points), int)
    for _ in range(n_iter):
        d2 = ((points[:, None, :] - centers[None]) ** 2).sum(-1)
        new = d2.argmin(1)
        for m in range(n_clusters):
            sel = new == m
            if sel.any():
                centers[m] = np.average(points[sel], axis=0, weights=w[sel])
        if np.array_equal(new, assign):
            break
        assign = new
    return centers, assign


class Community(CrowdModel):
    """Community model (CBCC): M communities of workers, each worker a copy of theirs.

    Parameters
    ----------
    n_communities : int
        M, the number of communities.
    precision : float
        ``s``: worker rows are ``Dirichlet(1 + s * community row)``.
    community_confusion_prior : tuple (diag, off), float or array (K, K)
        Dirichlet concentration of each community's confusion rows; the default ``(2, 1)``
        leans to the diagonal and keeps every concentration >= 1.
    community_prior : float
        Symmetric Dirichlet concentration of the community sizes.
    class_prior : float or array (K,)
        Dirichlet concentration of the label frequencies (the book: all ones).

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit(crowdzoo.models.Community(n_communities=2),
    ...                    crowdzoo.data.load_demo())
    >>> fit.workers().filter(like="membership").shape[1]
    2
    """

    jit_init = False  # k-means in NumPy (init_from)

    name = "community"
    title = "Community model (CBCC: workers copy one of M community confusion matrices)"
    reference = (
        "Venanzi, Guiver, Kazai, Kohli & Shokouhi (2014), Community-Based Bayesian Aggregation "
        "Models for Crowdsourcing, WWW, doi:10.1145/2566486.2567989; Winn et al., "
        "Model-Based Machine Learning, ch. 7"
    )
    dims = {
        "pi": ("true_class",),
        "community_prob": ("community",),
        "community_confusion": ("community", "true_class", "label"),
        "confusion": ("worker", "true_class", "label"),
        "membership": ("worker", "community"),  # derived (worker_stats)
    }
    exchangeable_dims = ("community",)
    #: the collective direction of communities, workers and label frequencies mixes slowly at
    #: fit's default 0.8 (see the module docstring)
    nuts_defaults = {"target_accept_prob": 0.95}

    def __init__(self, n_communities: int = 3, precision: float = 10.0,
                 community_confusion_prior=(2.0, 1.0), community_prior: float = 2.0,
                 class_prior=1.0):
        if int(n_communities) != n_communities or n_communities < 1:
            raise ValueError(f"n_communities must be a positive integer, got {n_communities!r}")
        if not precision > 0:
            raise ValueError(f"precision must be > 0, got {precision!r}")
        if not community_prior > 0:
            raise ValueError(f"community_prior must be > 0, got {community_prior!r}")
        self.n_communities = int(n_communities)
        self.precision = float(precision)
        self.community_confusion_prior = community_confusion_prior
        self.community_prior = float(community_prior)
        self.class_prior = class_prior

    # --- the model ------------------------------------------------------------------------
    def _class_conc(self, data: CrowdData) -> jax.Array:
        return jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))

    def worker_concentration(self, community_confusion: jax.Array) -> jax.Array:
        """``1 + s * communityConfusion``: the Dirichlet of a worker's rows, per community."""
        return 1.0 + self.precision * community_confusion

    def membership_logits(self, params: Params) -> jax.Array:
        """``log communityProb_m + sum_k log Dir(confusion[w, k] | 1 + s C[m, k])``, (W, M)."""
        conc = self.worker_concentration(params["community_confusion"])  # (M, K, K)
        conf = params["confusion"][..., :, None, :, :]  # (W, 1, K, K)
        log_dir = dist.Dirichlet(conc).log_prob(conf).sum(-1)  # (W, M)
        return jnp.log(params["community_prob"])[..., None, :] + log_dir

    def sample_params(self, data: CrowdData) -> Params:
        """Priors; each worker's community summed out inside the prior of their matrix."""
        M, K, W = self.n_communities, data.n_classes, data.n_workers
        pi = numpyro.sample("pi", dist.Dirichlet(self._class_conc(data)))
        community_prob = numpyro.sample(
            "community_prob", dist.Dirichlet(jnp.full((M,), self.community_prior))
        )
        conc = confusion_concentration(self.community_confusion_prior, K)
        with numpyro.plate("community", M, dim=-2), numpyro.plate("true_class", K, dim=-1):
            community_confusion = numpyro.sample("community_confusion", dist.Dirichlet(conc))
        params = {"pi": pi, "community_prob": community_prob,
                  "community_confusion": community_confusion}
        if data.label is None:  # simulating: draw the community of each worker explicitly
            with numpyro.plate("worker", W):
                community = numpyro.sample("worker_community", dist.Categorical(community_prob))
            row_conc = self.worker_concentration(community_confusion)[community]  # (W, K, K)
            with numpyro.plate("worker", W, dim=-2), numpyro.plate("true_class", K, dim=-1):
                params["confusion"] = numpyro.sample("confusion", dist.Dirichlet(row_conc))
            return params
        # inference: a flat, zero-density base (the simplex support) + the exact mixture prior
        with numpyro.plate("worker", W, dim=-2), numpyro.plate("true_class", K, dim=-1):
            params["confusion"] = numpyro.sample(
                "confusion", dist.Dirichlet(jnp.ones(K)).mask(False)
            )
        with numpyro.plate("worker", W):
            numpyro.factor("membership", jax.nn.logsumexp(self.membership_logits(params), -1))
        return params

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log probLabel`` and ``log confusion[worker_n, :, y_n]`` (or the full table)."""
        log_conf = jnp.log(params["confusion"])
        if labels is None:
            return jnp.log(params["pi"]), log_conf[data.worker]
        return jnp.log(params["pi"]), log_conf[data.worker, :, labels]

    # --- MAP start --------------------------------------------------------------------------
    def warm_start(self) -> DawidSkene:
        """Dawid-Skene: its MAP's confusion matrices are clustered into the communities."""
        return DawidSkene()

    def init_from(self, warm_params: Params, data: CrowdData) -> Params:
        """Weighted k-means of Dawid-Skene's MAP confusion matrices into M groups."""
        conf = np.asarray(warm_params["confusion"], np.float64)
        W, K = data.n_workers, data.n_classes
        n_answers = np.bincount(np.asarray(data.worker), minlength=W).astype(float)
        centers, assign = kmeans(conf.reshape(W, K * K), n_answers, self.n_communities)
        centers = centers.reshape(-1, K, K) + 1e-3
        sizes = np.bincount(assign, minlength=self.n_communities) + 1.0
        return {
            "pi": jnp.asarray(warm_params["pi"], jnp.float32),
            "community_prob": jnp.asarray(sizes / sizes.sum(), jnp.float32),
            "community_confusion": jnp.asarray(centers / centers.sum(-1, keepdims=True),
                                               jnp.float32),
            "confusion": jnp.asarray(conf, jnp.float32),
        }

    # --- identifiability ----------------------------------------------------------------------
    def relabel_draws(self, samples: dict, data=None, n_iter: int = 20) -> dict:
        """Give every draw the same community labels (Stephens 2000, Hungarian matching).

        The communities are exchangeable: permuting them (with their sizes and confusion
        matrices) leaves the posterior unchanged, so chains, or draws within a chain, can
        carry different labellings and ``r_hat`` then mixes distinct communities. Each draw's
        communities are matched to a reference by the assignment that minimizes the squared
        distance between confusion matrices (``scipy.optimize.linear_sum_assignment``), the
        reference is replaced by the mean of the relabelled draws, and this repeats until no
        label changes (Stephens' relabelling algorithm with a squared-error loss). The
        reference starts from the first chain's mean (chains start from the MAP).

        Parameters
        ----------
        samples : dict of arrays ``(chain, draw, ...)``
            Posterior draws with ``community_prob`` and ``community_confusion``.
        data : CrowdData, optional
            Unused (the true classes are not exchangeable under this model's priors).
        n_iter : int
            Most rounds of matching to the reference.

        Returns
        -------
        dict
            The draws with the community axis of both sites permuted per draw (``confusion``
            and ``pi`` are unchanged); a new dict, the input is not modified.

        References
        ----------
        M. Stephens. Dealing with label switching in mixture models. JRSS B 62(4):795-809,
        2000. https://doi.org/10.1111/1467-9868.00265
        """
        from scipy.optimize import linear_sum_assignment

        if self.n_communities < 2 or "community_confusion" not in samples:
            return dict(samples)
        cc = np.asarray(samples["community_confusion"], np.float64)
        lead = cc.shape[:2]
        M = cc.shape[2]
        flat = cc.reshape(-1, M, cc.shape[-2] * cc.shape[-1])  # (S, M, K*K)
        ref = flat[: lead[1]].mean(0)  # the first chain
        perms = np.tile(np.arange(M), (flat.shape[0], 1))
        for _ in range(n_iter):
            cost = ((flat[:, :, None, :] - ref[None, None, :, :]) ** 2).sum(-1)  # (S, M, M)
            new = np.empty_like(perms)
            for s, c in enumerate(cost):
                rows, cols = linear_sum_assignment(c)
                new[s, cols] = rows  # reference label j <- the draw's community rows[j]
            ref = np.take_along_axis(flat, new[:, :, None], axis=1).mean(0)
            if np.array_equal(new, perms):
                break
            perms = new
        out = dict(samples)
        order = perms.reshape(lead + (M,))
        for name in ("community_confusion", "community_prob"):
            v = np.asarray(samples[name])
            idx = order.reshape(lead + (M,) + (1,) * (v.ndim - 3))
            out[name] = np.take_along_axis(v, idx, axis=2)
        return out

    # --- derived quantities -----------------------------------------------------------------
    def worker_stats(self, params: Params, data: CrowdData):
        """``membership[w, m] = p(community_w = m | confusion_w, ...)`` and the accuracy."""
        membership = jax.nn.softmax(self.membership_logits(params), axis=-1)
        diag = jnp.diagonal(params["confusion"], axis1=-2, axis2=-1)
        return {"membership": membership,
                "accuracy": (diag * params["pi"][..., None, :]).sum(-1)}
