"""The biased worker model of Model-Based Machine Learning, chapter 7 (Winn et al.).

The honest worker model (:mod:`crowdzoo.models.honest_worker`) fails when workers are
*biased*: a worker who answers "positive" to most negative tasks is not guessing uniformly
(assumption A4 breaks), and a worker may be good on one class and bad on another (A2
breaks). The book replaces the ability and the gate by a full confusion matrix per worker —
the Bayesian classifier combination (BCC) of Kim & Ghahramani, which is the Bayesian
Dawid-Skene model::

    probLabel                  ~ Dirichlet(1, ..., 1)
    probWorkerLabel[w, k, :]   ~ Dirichlet(c_k)          c_kk = (K - 1) b / (1 - b), c_kl = 1
    trueLabel_t                ~ Discrete(probLabel)
    workerLabel_n | trueLabel  ~ Discrete(probWorkerLabel[worker_n, trueLabel_{task_n}, :])

The confusion-matrix prior is the one of the Infer.NET BCC / CommunityBCC code that goes
with the book and with Venanzi et al. (2014): it puts pseudo-count ``(K - 1) b / (1 - b)``
on the diagonal and 1 elsewhere, so the prior mean of ``probWorkerLabel[w, k, k]`` is
``b = initial_worker_belief`` (0.5 by default). For K = 2 and ``b = 0.5`` the rows are flat
and the MAP is Dawid and Skene's maximum-likelihood EM.

Label switching: with that flat two-class prior, relabelling the true classes (every worker
adversarial, every label flipped) changes neither prior nor likelihood, so the exact posterior
has two mirror modes of equal mass and puts every task's label at 50/50. What users want is
the mode where workers are better than chance; ``fit`` reports it, for NUTS and SVI, by
relabelling each draw that lies in the mirror mode (:meth:`DawidSkene.class_symmetric`,
``fit.diagnostics["relabelled_draws"]`` says how many), and simulation-based calibration
labels the true parameters the same way. A ``b`` above 0.5, more classes or gold labels break
the symmetry and nothing is relabelled.

The math is Dawid-Skene's: this class is :class:`~crowdzoo.models.DawidSkene` with the
book's priors (same sites ``pi`` and ``confusion``, same closed-form EM).

References
----------
1. J. Winn, C. M. Bishop, T. Diethe, J. Guiver, Y. Zaykov. Model-Based Machine Learning,
   chapter 7 "Harnessing the Crowd". CRC Press, 2023. https://mbmlbook.com
2. H.-C. Kim and Z. Ghahramani. Bayesian Classifier Combination. AISTATS 2012, 619-627.
3. M. Venanzi, J. Guiver, G. Kazai, P. Kohli, M. Shokouhi. Community-Based Bayesian
   Aggregation Models for Crowdsourcing. WWW 2014. https://doi.org/10.1145/2566486.2567989
4. A. P. Dawid and A. M. Skene. JRSS C 28(1):20-28, 1979. https://doi.org/10.2307/2346806
"""

from __future__ import annotations

import jax.numpy as jnp

from .core import CrowdData
from .dawid_skene import DawidSkene, confusion_concentration

__all__ = ["BiasedWorker", "book_confusion_prior"]


def book_confusion_prior(initial_worker_belief: float, n_classes: int) -> tuple[float, float]:
    """``(diag, off)`` pseudo-counts with prior mean ``initial_worker_belief`` on the diagonal."""
    b = float(initial_worker_belief)
    return (n_classes - 1) * b / (1.0 - b), 1.0


class BiasedWorker(DawidSkene):
    """The biased worker model (MBML ch. 7): a confusion matrix per worker, the book's priors.

    Parameters
    ----------
    initial_worker_belief : float in (0, 1)
        Prior mean of each diagonal entry of the confusion matrices (Infer.NET's
        ``InitialWorkerBelief``, default 0.5).
    class_prior : float or array (K,)
        Dirichlet concentration of the label frequencies (the book: all ones).
    confusion_prior : tuple (diag, off), float or array, optional
        Overrides the prior built from ``initial_worker_belief`` (as in
        :class:`~crowdzoo.models.DawidSkene`).
    eps, initial_error, initial_error_strategy
        As in :class:`~crowdzoo.models.DawidSkene`.

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("biased_worker", crowdzoo.data.load_demo())
    >>> fit.params["confusion"].shape
    (40, 3, 3)
    """

    name = "biased_worker"
    title = "Biased worker (MBML ch. 7: Bayesian confusion matrix per worker, BCC)"
    reference = (
        "Winn, Bishop, Diethe, Guiver & Zaykov, Model-Based Machine Learning, ch. 7 (CRC Press "
        "2023); Kim & Ghahramani (2012), Bayesian Classifier Combination, AISTATS"
    )
    #: fit's NUTS defaults, not Dawid-Skene's Laplace mass matrix: with it, simulation-based
    #: calibration on the tests' tiny crowds (20 tasks, 4 workers) rejected this model
    #: (adjusted p = 0.0014); its windowed adaptation passes
    nuts_defaults = {}

    def __init__(
        self,
        initial_worker_belief: float = 0.5,
        class_prior=1.0,
        confusion_prior=None,
        eps: float = 1e-10,
        initial_error=None,
        initial_error_strategy: str | None = None,
    ):
        if not 0.0 < float(initial_worker_belief) < 1.0:
            raise ValueError(
                f"initial_worker_belief must be in (0, 1), got {initial_worker_belief}"
            )
        super().__init__(confusion_prior=confusion_prior, class_prior=class_prior, eps=eps,
                         initial_error=initial_error,
                         initial_error_strategy=initial_error_strategy)
        self.initial_worker_belief = float(initial_worker_belief)

    def _concentrations(self, data: CrowdData):
        prior = self.confusion_prior
        if prior is None:
            prior = book_confusion_prior(self.initial_worker_belief, data.n_classes)
        conf = confusion_concentration(prior, data.n_classes)
        cls = jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))
        return conf, cls
