r"""The honest worker model of Model-Based Machine Learning, chapter 7 (Winn et al.).

The book builds its first crowd model assumption by assumption as a factor graph. Here it is
as a NumPyro program (plates: ``true_class`` K, ``worker`` W, ``task`` T, ``answer`` N)::

    probLabel                ~ Dirichlet(1, ..., 1)            label frequencies          (A1)
    trueLabel_t              ~ Discrete(probLabel)             one true label per task    (A1)
    ability_w                ~ Beta(2, 1)                      one ability per worker     (A2)
    isCorrect_n              ~ Bernoulli(ability_{worker_n})   per answer, independently  (A2, A5)
    workerLabel_n | isCorrect_n = 1  =  trueLabel_{task_n}     the gate: Copy             (A3)
    workerLabel_n | isCorrect_n = 0  ~  Uniform(0, ..., K-1)   a random guess             (A4)

The book's five assumptions (paraphrased), and where each is encoded in this module:

A1. Each task has a single true label, drawn from label frequencies ``probLabel`` shared by
    all tasks — :meth:`HonestWorker.sample_params` (``pi``) and the per-task prior
    ``log_prior`` returned by :meth:`HonestWorker.log_terms`.
A2. Each worker has one *ability*: the probability that any given answer of theirs is
    correct, the same for every task and every true label — the ``ability`` site in plate
    ``worker`` (:meth:`HonestWorker.sample_params`), used as ``Bernoulli(ability)`` by the
    ``is_correct`` site of :meth:`HonestWorker.generate`.
A3. A worker who is correct gives the true label (the worker is *honest*: no bias towards any
    label) — the ``is_correct`` branch of the gate in :meth:`HonestWorker.generate`
    (``one_hot(z)``) and the ``ability * [y == k]`` term of :func:`honest_emission`.
A4. A worker who is not correct picks a label uniformly at random from all K labels (which
    may by chance be the true one) — the ``1 / K`` branch of the gate and the
    ``(1 - ability) / K`` term of :func:`honest_emission`.
A5. Given the true labels, the answers are independent: of each other, of the other workers
    and of everything else about the task — one ``is_correct`` per answer in plate
    ``answer``, and the per-answer log-probabilities summed per task by
    :func:`~crowdzoo.models.core.marginalize`.

Inference marginalizes both discrete variables exactly. ``isCorrect`` analytically, per answer,

.. math::

    p(y_n = l \mid z = k) = \mathrm{ability}_{w_n} [l = k] + (1 - \mathrm{ability}_{w_n}) / K,

and ``trueLabel`` by the shared :func:`~crowdzoo.models.core.marginalize`. When the model
simulates (no answers given), it samples the gate explicitly, so a reader sees it.

The MAP is found by closed-form EM. The E-step gives the label posterior ``r[t, k]`` and
hence the responsibility of ``isCorrect`` of each answer,

.. math::

    E[c_n] = r[t_n, y_n] \frac{a_w}{a_w + (1 - a_w)/K};

the M-step adds these to the Beta pseudo-counts,
``ability_w = (sum_n E[c_n] + alpha - 1) / (n_w + alpha + beta - 2)``, and the label posterior
to the Dirichlet pseudo-counts of ``probLabel``. With the book's Beta(2, 1) the mode can reach
1 (a worker who agrees with every posterior), so the abilities are clipped to ``[eps, 1-eps]``.

References
----------
1. J. Winn, C. M. Bishop, T. Diethe, J. Guiver, Y. Zaykov. Model-Based Machine Learning,
   chapter 7 "Harnessing the Crowd". CRC Press, 2023. https://mbmlbook.com
2. M. Venanzi, J. Guiver, G. Kazai, P. Kohli, M. Shokouhi. Community-Based Bayesian
   Aggregation Models for Crowdsourcing. WWW 2014, 155-164.
   https://doi.org/10.1145/2566486.2567989
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData, clamp_gold
from .dawid_skene import dirichlet_map

__all__ = ["HonestWorker", "honest_emission"]


def honest_emission(ability: jax.Array, n_classes: int, labels=None) -> jax.Array:
    """``log p(y | z = k)`` of honest workers, with ``isCorrect`` summed out.

    Parameters
    ----------
    ability : (N,)
        Ability of the worker of each answer.
    n_classes : int
        K.
    labels : (N,) int, optional
        The answers. Without them, the full ``(N, K, L)`` table is returned.

    Returns
    -------
    (N, K) or (N, K, K)
        ``log(ability [y == k] + (1 - ability) / K)``.
    """
    K = n_classes
    a = ability[:, None]
    right = jnp.log(a + (1.0 - a) / K)  # correct (A3), or a lucky guess (A4)
    wrong = jnp.log1p(-a) - jnp.log(float(K))  # an unlucky guess (A4)
    if labels is None:
        eye = jnp.eye(K, dtype=bool)[None]
        return jnp.where(eye, right[:, :, None], wrong[:, :, None])
    hit = labels[:, None] == jnp.arange(K)[None, :]
    return jnp.where(hit, right, wrong)


class HonestWorker(CrowdModel):
    """The honest worker model (MBML ch. 7): an ability per worker and an isCorrect gate.

    Parameters
    ----------
    ability_prior : (a, b)
        Beta prior of each worker's ability; the book's default ``(2, 1)`` says workers are
        more likely good than bad.
    class_prior : float or array (K,)
        Dirichlet concentration of the label frequencies ``probLabel`` (the book: all ones).
    eps : float
        Abilities are kept in ``[eps, 1 - eps]`` (the Beta(2, 1) mode can reach 1), and the
        M-step of ``probLabel`` floors its entries at ``eps``.

    Notes
    -----
    Unlike :class:`~crowdzoo.models.OneCoin`, a wrong guess may hit the true label: an
    honest worker of ability ``a`` answers correctly with probability ``a + (1 - a) / K``,
    and ability 0 is a spammer, not an adversary.

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("honest_worker", crowdzoo.data.load_demo())
    >>> bool(fit.workers()["ability"].between(0, 1).all())
    True
    """

    name = "honest_worker"
    title = "Honest worker (MBML ch. 7: ability per worker, isCorrect gate)"
    reference = (
        "Winn, Bishop, Diethe, Guiver & Zaykov, Model-Based Machine Learning, ch. 7 "
        "'Harnessing the Crowd' (CRC Press 2023), https://mbmlbook.com"
    )
    dims = {"pi": ("true_class",), "ability": ("worker",)}

    def __init__(self, ability_prior=(2.0, 1.0), class_prior=1.0, eps: float = 1e-6):
        a, b = (float(v) for v in ability_prior)
        if a <= 0 or b <= 0:
            raise ValueError(f"ability_prior must be two positive numbers, got {ability_prior}")
        self.ability_prior = (a, b)
        self.class_prior = class_prior
        self.eps = float(eps)

    def _class_conc(self, data: CrowdData) -> jax.Array:
        return jnp.broadcast_to(jnp.asarray(self.class_prior, jnp.float32), (data.n_classes,))

    # --- the model ------------------------------------------------------------------------
    def sample_params(self, data: CrowdData) -> Params:
        """``probLabel ~ Dirichlet`` (A1); ``ability_w ~ Beta(2, 1)`` in plate worker (A2)."""
        pi = numpyro.sample("pi", dist.Dirichlet(self._class_conc(data)))
        with numpyro.plate("worker", data.n_workers):
            ability = numpyro.sample("ability", dist.Beta(*self.ability_prior))
        return {"pi": pi, "ability": ability}

    def _ability(self, params: Params, data: CrowdData) -> jax.Array:
        return jnp.clip(params["ability"], self.eps, 1.0 - self.eps)[data.worker]

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log probLabel`` (A1) and the gate with ``isCorrect`` summed out (A3, A4)."""
        log_prior = jnp.log(params["pi"])
        return log_prior, honest_emission(self._ability(params, data), data.n_classes, labels)

    def generate(self, params: Params, data: CrowdData):
        """Simulate: ``trueLabel`` per task, then the explicit gate per answer.

        Returns
        -------
        (z, y)
            The sampled true labels ``(T,)`` and answers ``(N,)``; the ``is_correct`` site
            (plate ``answer``) is in the trace.
        """
        K = data.n_classes
        log_prior = jnp.broadcast_to(jnp.log(params["pi"]), (data.n_tasks, K))
        with numpyro.plate("task", data.n_tasks):
            z = numpyro.sample("z", dist.Categorical(logits=clamp_gold(log_prior, data.gold)))
        with numpyro.plate("answer", data.n_answers):
            is_correct = numpyro.sample(  # A2, A5: one coin per answer
                "is_correct", dist.Bernoulli(self._ability(params, data))
            )
            copy = jax.nn.one_hot(z[data.task], K)  # A3: the true label
            guess = jnp.full((data.n_answers, K), 1.0 / K)  # A4: uniform over the K labels
            probs = jnp.where(is_correct[:, None] > 0, copy, guess)
            y = numpyro.sample("y", dist.Categorical(probs=probs))
        return z, y

    # --- closed-form EM -------------------------------------------------------------------
    has_em = True

    def init_params(self, data: CrowdData) -> Params:
        """Take the first M-step from the soft majority vote.

        It takes ``E[isCorrect_n] = r[t_n, y_n]`` (as if a guess never hit the truth: there are
        no abilities yet).
        """
        resp = soft_majority_vote(data)
        return self._m_step(resp[data.task, data.label], resp, data)

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step: Beta pseudo-counts plus the expected number of correct answers."""
        K = data.n_classes
        agree = resp[data.task, data.label]  # p(z_t = y_n | answers)
        a = self._ability(params, data)
        is_correct = agree * a / (a + (1.0 - a) / K)  # E[isCorrect_n]
        return self._m_step(is_correct, resp, data)

    def _m_step(self, is_correct, resp, data: CrowdData) -> Params:
        a0, b0 = self.ability_prior
        correct = jnp.zeros(data.n_workers, resp.dtype).at[data.worker].add(is_correct)
        total = jnp.zeros(data.n_workers, resp.dtype).at[data.worker].add(1.0)
        ability = (correct + a0 - 1.0) / jnp.maximum(total + a0 + b0 - 2.0, self.eps)
        ability = jnp.clip(ability, self.eps, 1.0 - self.eps)
        pi = dirichlet_map(resp.sum(0), self._class_conc(data), self.eps)
        return {"pi": pi, "ability": ability}

    # --- derived quantities -----------------------------------------------------------------
    def worker_stats(self, params: Params, data: CrowdData):
        """``accuracy = ability + (1 - ability) / K``: the chance an answer is right."""
        a = params["ability"]
        return {"accuracy": a + (1.0 - a) / data.n_classes}
