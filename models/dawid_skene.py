"""Dawid-Skene: a full confusion matrix per worker (Dawid & Skene 1979), Bayesian.

Generative story (plates: ``true_class`` K, ``worker`` W, ``task`` T, ``answer`` N)::

    pi                       ~ Dirichlet(class_prior)                 class frequencies
    confusion[w, k, :]       ~ Dirichlet(confusion_prior[k, :])   row k: w's answers when truth is k
    z_t                      ~ Categorical(pi)                        true label of task t
    y_n | z                  ~ Categorical(confusion[worker_n, z_{task_n}, :])

The default confusion prior is diagonal-heavy (``(diag, off) = (3, 1.5)``): a worker is a
priori better than chance and every entry has concentration > 1, so the MAP is interior
(flat Dirichlet(1) rows put it on the boundary). ``DawidSkene(confusion_prior=1.0,
class_prior=1.0)`` is the classic maximum-likelihood EM of the paper and of Crowd-Kit.

The MAP is found by closed-form EM: the E-step is the exact label posterior; the M-step
adds the expected counts to the Dirichlet pseudo-counts (``alpha - 1``).

References
----------
1. A. P. Dawid and A. M. Skene. Maximum Likelihood Estimation of Observer Error-Rates Using
   the EM Algorithm. Journal of the Royal Statistical Society, Series C 28(1):20-28, 1979.
   https://doi.org/10.2307/2346806
2. B. Carpenter et al., and the NumPyro annotation example (Passonneau & Carpenter 2014,
   "The Benefits of a Model of Annotation", TACL 2: 311-326), for the Bayesian priors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, best_class_order, soft_majority_vote
from .core import CrowdData

__all__ = ["DawidSkene", "dirichlet_map", "confusion_concentration"]


def confusion_concentration(prior, n_classes: int) -> jax.Array:
    """Turn ``(diag, off)``, a scalar, or an array into a ``(..., K, K)`` concentration."""
    if isinstance(prior, tuple) and len(prior) == 2:
        diag, off = prior
        return jnp.where(jnp.eye(n_classes, dtype=bool), float(diag), float(off))
    arr = jnp.asarray(prior, dtype=jnp.float32)
    return jnp.broadcast_to(arr, arr.shape[:-2] + (n_classes, n_classes)) if arr.ndim >= 2 else (
        jnp.full((n_classes, n_classes), arr)
    )


def dirichlet_map(counts: jax.Array, concentration: jax.Array, eps: float) -> jax.Array:
    """Mode of the Dirichlet posterior over the last axis: ``counts + alpha - 1``, normalized.

    Entries are floored at ``eps`` before normalizing (as Crowd-Kit does), so a flat prior
    never gives ``log 0``.
    """
    pseudo = jnp.maximum(counts + concentration - 1.0, eps)
    return pseudo / pseudo.sum(-1, keepdims=True)


class DawidSkene(CrowdModel):
    """Dawid-Skene with Dirichlet priors on class frequencies and confusion-matrix rows.

    Parameters
    ----------
    confusion_prior : tuple (diag, off), float or array (K, K) / (W, K, K)
        Dirichlet concentration of each confusion-matrix row; row ``k`` is the distribution
        of a worker's answers when the truth is ``k``.
    class_prior : float or array (K,)
        Dirichlet concentration of the class frequencies ``pi``.
    eps : float
        Floor of the M-step's entries before normalizing (matters only for flat priors).
    initial_error : array (W, K, K), optional
        Worker confusion matrices from history, ``[worker, true, label]`` in the data's worker
        and class order. Used only by the MAP's first M-step, as in Crowd-Kit
        (:class:`crowdzoo.aggregation.DawidSkene` turns Crowd-Kit's ``(worker, label)``-indexed
        frame into this array).
    initial_error_strategy : {"assign", "addition"}, optional
        ``"assign"``: the first M-step's confusion matrices are replaced by ``initial_error``
        (rows normalized). ``"addition"``: ``initial_error`` holds counts added to the first
        M-step's expected counts (zeros where nothing is known).

    Examples
    --------
    >>> import crowdzoo
    >>> data = crowdzoo.data.load_demo()
    >>> fit = crowdzoo.fit("dawid_skene", data, method="map")
    >>> fit.task_posterior().shape[0] == data.n_tasks
    True
    """

    name = "dawid_skene"
    title = "Dawid-Skene (full confusion matrix per worker)"
    reference = (
        "Dawid & Skene (1979), Maximum Likelihood Estimation of Observer Error-Rates Using the "
        "EM Algorithm, JRSS C 28(1):20-28, doi:10.2307/2346806"
    )
    dims = {"pi": ("true_class",), "confusion": ("worker", "true_class", "label")}
    #: NUTS adapts its diagonal mass matrix starting from the Laplace approximation's
    #: variances at the MAP (not the identity), in a 200-iteration warmup: on 10k answers
    #: (302 parameters) as good per draw as 500 iterations from the identity (r_hat, ESS,
    #: 15 leapfrog steps per draw) for about a third of the warmup's gradients
    #: (benchmarks/speed.py, section (c))
    nuts_defaults = {"mass_matrix": "laplace"}

    def __init__(
        self,
        confusion_prior=(3.0, 1.5),
        class_prior=2.0,
        eps: float = 1e-10,
        initial_error=None,
        initial_error_strategy: str | None = None,
    ):
        if initial_error_strategy not in (None, "assign", "addition"):
            raise ValueError(
                f"initial_error_strategy must be None, 'assign' or 'addition', "
                f"got {initial_error_strategy!r}"
            )
        if initial_error is not None and initial_error_strategy is None:
            raise ValueError("initial_error was given without initial_error_strategy "
                             "('assign' or 'addition')")
        if initial_error is not None:
            import pandas as pd

            if isinstance(initial_error, (pd.DataFrame, pd.Series)):
                raise TypeError(
                    "initial_error must be an array (W, K, K) [worker, true, label] in the "
                    "data's order; crowdzoo.aggregation.DawidSkene aligns Crowd-Kit's "
                    "(worker, label)-indexed frame"
                )
            initial_error = np.array(initial_error, dtype=np.float32)
            if initial_error.ndim != 3 or initial_error.shape[1] != initial_error.shape[2]:
                raise ValueError(f"initial_error must have shape (W, K, K), got "
                                 f"{initial_error.shape}")
            if not np.isfinite(initial_error).all() or (initial_error < 0).any():
                raise ValueError("initial_error must be finite and non-negative")
        self.confusion_prior = confusion_prior
        self.class_prior = class_prior
        self.eps = eps
        self.initial_error = initial_error
        self.initial_error_strategy = initial_error_strategy

    # --- priors and likelihood ----------------------------------------------------------
    def _concentrations(self, data: CrowdData):
        conf = confusion_concentration(self.confusion_prior, data.n_classes)
        cls = jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))
        return conf, cls

    def class_symmetric(self, data: CrowdData) -> bool:
        """Say whether every confusion row has the same prior and the class prior is flat.

        E.g. ``DawidSkene(confusion_prior=1.0, class_prior=1.0)`` (the classic maximum
        likelihood) and the book's biased worker with two classes: relabelling the true
        classes then changes neither prior nor likelihood, so the posterior has a mirror mode
        where every worker is adversarial. With gold labels (clamped) it is not symmetric.
        """
        if np.any(np.asarray(data.gold) >= 0):
            return False
        conf, cls = (np.asarray(a) for a in self._concentrations(data))
        return bool(np.all(cls == cls.flat[0]) and np.all(conf == conf[..., :1, :]))

    def canonical_class_order(self, params) -> np.ndarray:
        """Return the labelling under which workers answer the true class most often.

        Summed over workers; for two classes: mean ``confusion[w,0,0] + confusion[w,1,1]``
        above 1.
        """
        return best_class_order(np.asarray(params["confusion"], np.float64).sum(-3))

    def sample_params(self, data: CrowdData) -> Params:
        """``pi ~ Dirichlet``, ``confusion[w, k] ~ Dirichlet`` in plates worker x true_class."""
        conf_conc, cls_conc = self._concentrations(data)
        pi = numpyro.sample("pi", dist.Dirichlet(cls_conc))
        with numpyro.plate("worker", data.n_workers, dim=-2):
            with numpyro.plate("true_class", data.n_classes, dim=-1):
                confusion = numpyro.sample("confusion", dist.Dirichlet(conf_conc))
        return {"pi": pi, "confusion": confusion}

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log pi`` and ``log confusion[worker_n, :, y_n]`` (or the full table)."""
        log_conf = jnp.log(params["confusion"])
        if labels is None:
            return jnp.log(params["pi"]), log_conf[data.worker]
        # one row gather from a (W*L, K) table: its gradient is a row scatter, ~30% faster
        # than indexing [worker, :, label] (NUTS spends its time here)
        K = data.n_classes
        table = jnp.swapaxes(log_conf, -1, -2).reshape(data.n_workers * K, K)
        return jnp.log(params["pi"]), table[data.worker * K + labels]

    # --- closed-form EM -------------------------------------------------------------------
    def expected_counts(self, resp: jax.Array, data: CrowdData) -> jax.Array:
        """``counts[w, k, l] = sum_n p(z_{t_n} = k) [w_n = w, y_n = l]``."""
        zeros = jnp.zeros((data.n_workers, data.n_classes, data.n_classes), resp.dtype)
        return zeros.at[data.worker, :, data.label].add(resp[data.task])

    has_em = True

    def m_step(self, resp, data: CrowdData, extra_counts=None) -> Params:
        """Dirichlet posterior modes of ``pi`` and of every confusion row given ``resp``."""
        conf_conc, cls_conc = self._concentrations(data)
        counts = self.expected_counts(resp, data)
        if extra_counts is not None:
            counts = counts + extra_counts
        confusion = dirichlet_map(counts, conf_conc, self.eps)
        pi = dirichlet_map(resp.sum(0), cls_conc, self.eps)
        return {"pi": pi, "confusion": confusion}

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step (it does not depend on the current parameters)."""
        return self.m_step(resp, data)

    def init_params(self, data: CrowdData) -> Params:
        """First M-step from the soft majority vote, with ``initial_error`` applied."""
        resp = soft_majority_vote(data)
        if self.initial_error is None:
            return self.m_step(resp, data)
        given = jnp.asarray(self.initial_error)
        if self.initial_error_strategy == "addition":
            return self.m_step(resp, data, extra_counts=given)
        params = self.m_step(resp, data)
        assigned = jnp.maximum(given, self.eps)
        params["confusion"] = assigned / assigned.sum(-1, keepdims=True)
        return params

    def check_data(self, data: CrowdData) -> None:
        """``initial_error`` must match the data's workers and classes."""
        super().check_data(data)
        if self.initial_error is not None:
            want = (data.n_workers, data.n_classes, data.n_classes)
            if self.initial_error.shape != want:
                raise ValueError(f"initial_error must have shape {want} (workers, classes, "
                                 f"classes) for these data, got {self.initial_error.shape}")

    # --- derived quantities ---------------------------------------------------------------
    def worker_stats(self, params: Params, data: CrowdData):
        """Accuracy ``sum_k pi_k confusion[w, k, k]``: the chance a worker's answer is right."""
        diag = jnp.diagonal(params["confusion"], axis1=-2, axis2=-1)
        return {"accuracy": (diag * params["pi"][..., None, :]).sum(-1)}
