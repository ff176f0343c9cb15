r"""The biased worker model that also reads the tasks' words (MBML ch. 7.5, naive Bayes).

The biased worker model (:mod:`crowdzoo.models.biased_worker`) learns a confusion matrix per
worker from the answers alone, so a task with one or two answers gets a weak posterior. Section
7.5 of the book ("Making use of the tweets") adds the text of each task under one more
assumption: *the probability that a task's text contains a particular word depends only on the
task's true label*. Each true label ``k`` gets a distribution ``probWords[k]`` over a vocabulary
of ``V`` words, and each word of a task is drawn from the distribution of its true label — a
naive Bayes classifier, learned jointly with the workers' confusion matrices from the crowd's
answers (no gold needed). A task with few answers borrows strength from its words: the other
tasks teach the model which words go with which label.

Generative story (plates: ``true_class`` K, ``word`` V, ``worker`` W, ``task`` T, ``answer`` N,
and the word positions of each task)::

    probLabel                  ~ Dirichlet(1, ..., 1)
    probWorkerLabel[w, k, :]   ~ Dirichlet(c_k)          as in biased_worker
    probWords[k, :]            ~ Dirichlet(beta, ..., beta)            (V,) per true label
    trueLabel_t                ~ Discrete(probLabel)
    word_{t,i} | trueLabel     ~ Discrete(probWords[trueLabel_t, :])    i = 1..n_t
    workerLabel_n | trueLabel  ~ Discrete(probWorkerLabel[worker_n, trueLabel_{task_n}, :])

Only the counts ``c_tv`` (how often word ``v`` occurs in task ``t``) matter: the likelihood of a
task's words in their order is :math:`\prod_v \phi_{kv}^{c_{tv}}` (the book's sequence of word
draws; no multinomial coefficient). With the true label summed out exactly (the shared
:func:`~crowdzoo.models.core.marginalize`), the words' term is added to each task's log prior
over the label:

.. math::

    \log p(y, w \mid \theta) = \sum_t \log \sum_k \exp\Big(\log \pi_k
        + \sum_v c_{tv} \log \phi_{kv}
        + \sum_{n: task(n) = t} \log \mathrm{conf}_{w_n, k, y_n}\Big).

The per-task log-likelihood (LOO) is therefore that of the task's answers *and* words.

MAP by closed-form EM: the E-step is the exact label posterior ``r_tk = p(z_t = k | y, w)``;
the M-step is biased_worker's (Dirichlet modes of ``pi`` and of the confusion rows) plus the
naive Bayes update ``phi_kv ∝ sum_t r_tk c_tv + beta - 1``. The default ``beta = 2`` makes
the MAP the add-one (Laplace) smoothed naive Bayes; ``beta = 1`` is the unsmoothed
maximum-likelihood update, which gives a word seen under one label only probability ~0 under
the others (overconfident posteriors).

Data: the word counts are the task features (``Annotations.features``, columns = the
vocabulary), built from ``texts.csv`` by :func:`crowdzoo.data.texts.with_words`. The data
layer standardizes features for the classifiers; this model undoes it exactly (the counts are
integers). Simulated crowds carry the words the model itself generated (site ``words``):
``vocabulary_size`` words, ``words_per_task`` per task, used only when the data carry none.

References
----------
1. J. Winn, C. M. Bishop, T. Diethe, J. Guiver, Y. Zaykov. Model-Based Machine Learning,
   chapter 7 "Harnessing the Crowd", section 7.5 "Making use of the tweets". CRC Press,
   2023. https://mbmlbook.com/CrowdSourcing_Making_use_of_the_tweets.html
2. M. Venanzi, J. Guiver, G. Kazai, P. Kohli, M. Shokouhi. Community-Based Bayesian
   Aggregation Models for Crowdsourcing. WWW 2014. https://doi.org/10.1145/2566486.2567989
3. H.-C. Kim and Z. Ghahramani. Bayesian Classifier Combination. AISTATS 2012, 619-627.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .base import Params
from .biased_worker import BiasedWorker
from .core import CrowdData, clamp_gold
from .dawid_skene import dirichlet_map

__all__ = ["BiasedWorkerWords", "word_counts"]


def word_counts(data: CrowdData) -> jax.Array:
    """Return the raw ``(T, V)`` word counts carried as ``data.features``.

    Features built by :func:`~crowdzoo.models.core.crowd_data` are standardized per column;
    ``features * scale + center`` undoes it (a constant column has scale 0 and its value in
    ``center``), and rounding removes the float32 error (the counts are integers).
    """
    if data.features is None:
        raise ValueError(
            "biased_worker_words reads each task's words, but these data carry none: attach "
            "word counts with crowdzoo.data.texts.with_words(annotations, texts)")
    x = data.features
    if data.feature_scale is None:
        return x
    return jnp.round(x * data.feature_scale + data.feature_center)


class BiasedWorkerWords(BiasedWorker):
    """Biased worker model plus a naive Bayes model of each task's words (MBML ch. 7.5).

    Parameters
    ----------
    word_prior : float > 0
        Symmetric Dirichlet concentration ``beta`` of each label's word distribution
        (default 2: the MAP is add-one smoothed naive Bayes).
    vocabulary_size, words_per_task : int
        Simulation only: the vocabulary and the number of words of each task when the model
        generates the words itself (data without word counts).
    initial_worker_belief, class_prior, confusion_prior, eps
        As in :class:`~crowdzoo.models.BiasedWorker`.

    Examples
    --------
    >>> import crowdzoo
    >>> sim = crowdzoo.data.simulate("biased_worker_words", 50, 8, 2, 2, seed=0)
    >>> sim.annotations.features.shape          # the words the model generated
    (50, 20)
    >>> fit = crowdzoo.fit("biased_worker_words", sim.annotations)
    >>> fit.params["word_probs"].shape
    (2, 20)
    """

    name = "biased_worker_words"
    title = "Biased worker + words of each task (MBML ch. 7.5: BCC with naive Bayes on text)"
    reference = (
        "Winn, Bishop, Diethe, Guiver & Zaykov, Model-Based Machine Learning, ch. 7.5 'Making "
        "use of the tweets' (CRC Press 2023); Venanzi et al. (2014), WWW"
    )
    dims = {"pi": ("true_class",), "confusion": ("worker", "true_class", "label"),
            "word_probs": ("true_class", "word")}
    needs_features = True
    #: the program generates its own task covariates (the words) at this site when the data
    #: carry none: the simulator returns them as the crowd's features
    generates_features = "words"

    def __init__(self, word_prior: float = 2.0, vocabulary_size: int = 20,
                 words_per_task: int = 10, initial_worker_belief: float = 0.5,
                 class_prior=1.0, confusion_prior=None, eps: float = 1e-10):
        if not float(word_prior) > 0.0:
            raise ValueError(f"word_prior must be > 0, got {word_prior}")
        for key, value in (("vocabulary_size", vocabulary_size),
                           ("words_per_task", words_per_task)):
            if int(value) != value or int(value) < 1:
                raise ValueError(f"{key} must be a positive integer, got {value}")
        super().__init__(initial_worker_belief=initial_worker_belief, class_prior=class_prior,
                         confusion_prior=confusion_prior, eps=eps)
        self.word_prior = float(word_prior)
        self.vocabulary_size = int(vocabulary_size)
        self.words_per_task = int(words_per_task)

    def _n_words(self, data: CrowdData) -> int:
        return self.vocabulary_size if data.features is None else int(data.features.shape[1])

    # --- priors and likelihood ----------------------------------------------------------
    def sample_params(self, data: CrowdData) -> Params:
        """biased_worker's ``pi`` and ``confusion``, and ``word_probs[k] ~ Dirichlet(beta)``."""
        params = super().sample_params(data)
        with numpyro.plate("true_class", data.n_classes, dim=-1):
            params["word_probs"] = numpyro.sample(
                "word_probs", dist.Dirichlet(jnp.full(self._n_words(data), self.word_prior)))
        return params

    def word_log_lik(self, params: Params, data: CrowdData) -> jax.Array:
        """``log p(w_t | z_t = k) = sum_v c_tv log phi_kv``, ``(T, K)``."""
        phi = params["word_probs"]
        log_phi = jnp.log(jnp.maximum(phi, jnp.finfo(phi.dtype).tiny))  # 0 * log 0 -> 0
        return word_counts(data) @ jnp.swapaxes(log_phi, -1, -2)

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log pi_k + sum_v c_tv log phi_kv`` per task; biased_worker's emissions."""
        log_pi, log_emit = super().log_terms(params, data, labels)
        return log_pi + self.word_log_lik(params, data), log_emit

    def generate(self, params: Params, data: CrowdData):
        """Simulate; without word counts in the data, generate them too (site ``words``).

        With word counts, the label is drawn given them (``p(z | w)``) and the answers from
        it. Without, ``z ~ pi``, ``words_t ~ Multinomial(words_per_task, phi_z)`` and the answers.
        """
        if data.features is not None:
            return super().generate(params, data)
        log_pi, table = BiasedWorker.log_terms(self, params, data, None)
        log_prior = clamp_gold(jnp.broadcast_to(log_pi, (data.n_tasks, data.n_classes)),
                               data.gold)
        with numpyro.plate("task", data.n_tasks):
            z = numpyro.sample("z", dist.Categorical(logits=log_prior))
            numpyro.sample("words", dist.Multinomial(self.words_per_task,
                                                     params["word_probs"][z]))
        row = jnp.take_along_axis(table, z[data.task][:, None, None], axis=1)[:, 0, :]
        with numpyro.plate("answer", data.n_answers):
            y = numpyro.sample("y", dist.Categorical(logits=row))
        return z, y

    def drop_tasks(self, data: CrowdData, tasks) -> CrowdData:
        """Remove the tasks' answers and gold, and their words (zero counts: ``log p = 0``).

        The word counts are part of what the model explains (``log pi_k + sum_v c_tv log
        phi_kv``), so a task left out loses them too; the counts are carried raw (no
        standardization) so that a zero row stays exactly zero.
        """
        import dataclasses

        out = super().drop_tasks(data, tasks)
        counts = np.asarray(word_counts(data), dtype=np.float32).copy()
        counts[np.asarray(tasks, dtype=np.int64).ravel()] = 0.0
        return dataclasses.replace(out, features=jnp.asarray(counts), feature_center=None,
                                   feature_scale=None)

    # --- closed-form EM -------------------------------------------------------------------
    def m_step(self, resp, data: CrowdData, extra_counts=None) -> Params:
        """biased_worker's M-step plus ``phi_kv ∝ sum_t r_tk c_tv + beta - 1``."""
        params = super().m_step(resp, data, extra_counts)
        expected = resp.T @ word_counts(data)  # (K, V) expected word counts per label
        params["word_probs"] = dirichlet_map(expected, jnp.float32(self.word_prior), self.eps)
        return params

    def check_data(self, data: CrowdData) -> None:
        """Word counts are required, and must be non-negative integers."""
        word_counts(data)  # a clear error when the data carry no words
        super().check_data(data)
        x = data.features
        if isinstance(x, jax.core.Tracer) or isinstance(data.feature_scale, jax.core.Tracer):
            return
        raw = np.asarray(x, np.float64)
        if data.feature_scale is not None:
            raw = raw * np.asarray(data.feature_scale) + np.asarray(data.feature_center)
        bad = (np.abs(raw - np.round(raw)) > 1e-3) | (raw < -1e-3)
        if bad.any():
            rows, cols = np.nonzero(bad)
            raise ValueError(
                f"biased_worker_words reads the features as word counts, which must be "
                f"non-negative integers; {bad.sum()} entries are not (first at task position "
                f"{rows[0]}, column {cols[0]}: {raw[rows[0], cols[0]]:g}); build them with "
                f"crowdzoo.data.texts.with_words")

    # --- derived quantities ---------------------------------------------------------------
    def task_stats(self, params: Params, data: CrowdData):
        """``text_prob``: ``p(z_t = k | words_t)``, the words' naive Bayes alone."""
        logits = jnp.log(params["pi"])[..., None, :] + self.word_log_lik(params, data)
        return {"text_prob": jax.nn.softmax(logits, axis=-1)}
