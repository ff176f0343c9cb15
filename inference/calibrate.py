r"""Tempered task posteriors: a likelihood power for crowds whose answers are not independent.

Every model of the zoo but the item-effect ones assumes that a task's answers are
independent given its true label, so each answer multiplies the odds of a class by its
likelihood ratio and a task with 39 answers (bluebirds) gets a posterior of 0.999 whatever
the split. Real answers to one item are positively dependent (a hard photo fools many
workers alike), so those posteriors are overconfident: most tasks land in the top
confidence bin with an accuracy well below it (``benchmarks/results/calibration_study.md``).

The tempered posterior raises the answers' likelihood to a power ``0 < alpha <= 1``
(a fractional or power posterior; the composite-likelihood adjustment of dependent data
downweights it the same way):

.. math::

    q_\alpha(z_t = k) \propto p(z_t = k \mid \theta)
        \prod_{n \in t} p(y_n \mid z = k, \theta)^{\alpha},

with the parameters at the MAP, or averaged over posterior draws (each draw's tempered
posterior, then the mean). ``alpha = 1`` is the model's own posterior.

**Choosing alpha without gold.** :func:`choose_temperature` scores each power by the
*leave-one-answer-out* log predictive density of the answers: the answer ``y_n`` predicted
from the other answers to its task,

.. math::

    \log p_\alpha(y_n \mid y_{t, -n}) = \log \sum_k q_{\alpha, -n}(z_t = k)\,
        p(y_n \mid z = k, \theta),

summed over every answer, and picks the power with the highest total. An overconfident
posterior predicts a split task's held-out answers badly (it expects them to follow the
majority at the worker's accuracy); a too-weak one wastes the information in the other
answers. Gold is not used. The parameters are fitted to all answers, y_n included (cheap,
and the same for every power).

This is a post-hoc correction of a fitted model, not a generative model: it has no
likelihood of its own, so it takes no part in LOO model comparison. Models with an item
effect summed out inside the task's prior (``item_difficulty``,
``logistic_random_effects``) model the dependence instead, and are refused here.

References
----------
1. P. G. Walker, N. L. Hjort. On Bayesian consistency. JRSS B 63(4):811-821, 2001
   (fractional / power posteriors).
2. F. Pauli, W. Racugno, L. Ventura. Bayesian composite marginal likelihoods. Statistica
   Sinica 21:149-164, 2011 (downweighting the likelihood of dependent data).
3. A. Vehtari, A. Gelman, J. Gabry. Practical Bayesian model evaluation using leave-one-out
   cross-validation and WAIC. Statistics and Computing 27:1413-1432, 2017.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.special import log_softmax, logsumexp

__all__ = ["DEFAULT_POWERS", "TemperatureChoice", "choose_temperature", "tempered_posterior"]

#: the grid :func:`choose_temperature` searches (1 = the model's own posterior)
DEFAULT_POWERS = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.05)

#: most posterior draws used (thinned evenly) by the tempered posterior of a fit with draws
MAX_DRAWS = 200


@dataclasses.dataclass(frozen=True)
class TemperatureChoice:
    """The power chosen by :func:`choose_temperature` and the score of every power tried.

    Attributes
    ----------
    power : float
        The likelihood power with the best leave-one-answer-out log predictive density.
    table : pandas.DataFrame
        ``power`` -> ``loao_lpd`` (sum over answers) and ``loao_lpd_per_answer``.
    """

    power: float
    table: pd.DataFrame


def _terms(fit):
    """``(lp (S, T, K), le (S, N, K), task (N,))`` at the MAP (S = 1) or at the draws."""
    import jax
    import jax.numpy as jnp

    model, data = fit.model, fit.data
    if not model.answers_independent_given_label:
        raise ValueError(
            f"{model.name} sums an item effect out inside each task's prior, so its answers "
            f"are not independent given the label and its likelihood has no per-answer terms "
            f"to temper; it models the dependence itself"
        )
    if np.any(np.asarray(data.gold) >= 0):
        raise ValueError("the fit clamped gold labels (use_gold=True); tempering is for the "
                         "labels the answers alone give: fit with use_gold=False")

    def one(params):
        lp, le = model.log_terms(params, data, data.label)
        return jnp.broadcast_to(lp, (data.n_tasks, data.n_classes)), le

    if fit.has_draws:
        flat = fit._flat()
        n = next(iter(flat.values())).shape[0]
        pick = np.unique(np.linspace(0, n - 1, min(n, MAX_DRAWS)).astype(int))
        flat = {k: v[pick] for k, v in flat.items()}
        lp, le = jax.lax.map(one, flat)
    else:
        lp, le = one({k: jnp.asarray(v) for k, v in fit.params.items()})
        lp, le = lp[None], le[None]
    return (np.asarray(lp, np.float64), np.asarray(le, np.float64),
            np.asarray(data.task, np.int64))


def _tempered(lp, le, task, n_tasks, power):
    summed = np.zeros(lp.shape)
    for s in range(lp.shape[0]):
        np.add.at(summed[s], task, le[s])
    return np.exp(log_softmax(lp + power * summed, axis=-1)).mean(0)


def tempered_posterior(fit, power: float) -> pd.DataFrame:
    """Task posteriors with the answers' likelihood raised to ``power``.

    Parameters
    ----------
    fit : Fit
        A fit (MAP, SVI or NUTS; at most 200 draws are used) of a model whose answers are
        independent given the label, fitted with ``use_gold=False``.
    power : float
        In (0, 1]; 1 gives the fit's own task posterior (up to the draws' thinning).

    Returns
    -------
    pandas.DataFrame
        Tasks x classes, rows summing to 1, like :meth:`Fit.task_posterior`.
    """
    power = float(power)
    if not 0.0 < power <= 1.0:
        raise ValueError(f"power must be in (0, 1], got {power}")
    lp, le, task = _terms(fit)
    probs = _tempered(lp, le, task, fit.data.n_tasks, power)
    a = fit.annotations
    return pd.DataFrame(probs, index=pd.Index(a.task_ids, name="task"),
                        columns=pd.Index(a.classes, name="class"))


def choose_temperature(fit, powers=DEFAULT_POWERS) -> TemperatureChoice:
    """Choose the likelihood power by leave-one-answer-out predictive density (no gold).

    Parameters
    ----------
    fit : Fit
        As for :func:`tempered_posterior`.
    powers : sequence of float
        Candidate powers in (0, 1].

    Returns
    -------
    TemperatureChoice
    """
    powers = [float(p) for p in powers]
    if not powers or any(not 0.0 < p <= 1.0 for p in powers):
        raise ValueError(f"powers must be a non-empty list of numbers in (0, 1], got {powers}")
    lp, le, task = _terms(fit)
    n_draws = lp.shape[0]
    summed = np.zeros(lp.shape)
    for s in range(n_draws):
        np.add.at(summed[s], task, le[s])
    rows = []
    for power in powers:
        # the other answers' tempered posterior, then the held-out answer's predictive,
        # averaged over draws
        logits = lp[:, task] + power * (summed[:, task] - le)
        pred = logsumexp(log_softmax(logits, axis=-1) + le, axis=-1)  # (S, N)
        lpd = logsumexp(pred, axis=0) - np.log(n_draws)
        rows.append({"power": power, "loao_lpd": float(lpd.sum()),
                     "loao_lpd_per_answer": float(lpd.mean())})
    table = pd.DataFrame(rows).set_index("power")
    return TemperatureChoice(float(table["loao_lpd"].idxmax()), table)

