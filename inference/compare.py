"""Model comparison: PSIS-LOO over tasks, and calibration of the task posteriors on gold.

* :func:`loo` — Pareto-smoothed importance-sampling leave-one-out cross-validation over
  *tasks* (ArviZ's ``loo`` on the ``answers`` log-likelihood, one term per task: the
  predictive density of all the answers to a held-out task). Pareto ``k`` above 0.7 marks
  tasks whose estimate is unreliable; they are counted, not hidden. Their terms are
  repaired where possible: moment matching (no refit) for NUTS fits of moderate dimension,
  and, on request (``reloo``), refits that leave the still-flagged tasks out (exact LOO, or
  K-fold folds of them past a cap on the refits).
* :func:`expected_calibration_error`, :func:`log_loss` — how honest the task posteriors are,
  scored on gold (top-label ECE with equal-width confidence bins, Guo et al. 2017).
* :func:`compare_models` — fit several models to the same answers and tabulate LOO, accuracy,
  log loss, ECE and time (the ``crowdzoo compare`` command, in :mod:`crowdzoo.cli`, prints it).

References
----------
1. A. Vehtari, A. Gelman, J. Gabry. Practical Bayesian Model Evaluation Using Leave-One-Out
   Cross-Validation and WAIC. Statistics and Computing 27:1413-1432, 2017.
   https://doi.org/10.1007/s11222-016-9696-4
2. A. Vehtari, D. Simpson, A. Gelman, Y. Yao, J. Gabry. Pareto Smoothed Importance Sampling.
   JMLR 25(72):1-58, 2024.
3. C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. On Calibration of Modern Neural Networks.
   ICML 2017.
4. T. Paananen, J. Piironen, P.-C. Buerkner, A. Vehtari. Implicitly adaptive importance
   sampling. Statistics and Computing 31(16), 2021.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings

import numpy as np
import pandas as pd

from .diagnostics import ConvergenceWarning

__all__ = [
    "CompareResult",
    "MIN_LOO_DRAWS",
    "PARETO_K_BAD",
    "RELOO_MAX_REFITS",
    "applicable_models",
    "calibration_curve",
    "compare_models",
    "convergence_columns",
    "expected_calibration_error",
    "gold_codes",
    "gold_scores",
    "integrated_log_likelihood",
    "log_loss",
    "loo",
    "pareto_k_summary",
    "reloo_tasks",
    "vote_agreement",
]

#: fewest posterior draws (chains x draws) PSIS-LOO can use: ArviZ fits a generalized Pareto
#: to the largest S/5 importance weights when S * r_eff <= 225 and needs at least 5 of them
MIN_LOO_DRAWS = 25
#: moment matching is tried when at most this many tasks have Pareto k > 0.7 (each costs
#: a few passes of the log density over all draws)
MM_MAX_TASKS = 50

#: most refits per model of the exact-LOO repair (``loo(..., reloo=True)``): up to this
#: many flagged tasks get one refit each (exact LOO); more are split into this many folds,
#: each refitted once without all of its tasks (K-fold terms). Each refit costs a fit
RELOO_MAX_REFITS = 10

#: Pareto k above which a PSIS-LOO term is unreliable (Vehtari et al. 2024, for S >~ 2000
#: draws the threshold is min(1 - 1/log10(S), 0.7); we report against 0.7)
PARETO_K_BAD = 0.7


# --- calibration -----------------------------------------------------------------------
def _probs_gold(probs, gold):
    probs = np.asarray(probs, float)
    gold = np.asarray(gold)
    if probs.ndim != 2 or gold.shape != probs.shape[:1]:
        raise ValueError(f"probs must be (T, K) and gold (T,); got {probs.shape}, {gold.shape}")
    keep = gold >= 0
    if not keep.any():
        raise ValueError("no gold labels to score against")
    return probs[keep], gold[keep].astype(int)


def expected_calibration_error(probs, gold, n_bins: int = 10) -> float:
    """Top-label expected calibration error.

    ``ECE = sum_b (n_b / n) |acc_b - conf_b|`` over equal-width bins of the confidence
    ``max_k p_tk``, where ``acc_b`` is the share of tasks in bin ``b`` whose most probable
    class is the gold one.

    Parameters
    ----------
    probs : array (T, K)
        Task posteriors.
    gold : int array (T,)
        Gold class codes, ``-1`` where there is none (ignored).
    n_bins : int
        Number of equal-width confidence bins on ``[0, 1]``.
    """
    p, g = _probs_gold(probs, gold)
    conf = p.max(1)
    hit = (p.argmax(1) == g).astype(float)
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(hit[m].mean() - conf[m].mean())
    return float(total / len(g))


def calibration_curve(probs, gold, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table: per confidence bin, mean confidence, accuracy and count."""
    p, g = _probs_gold(probs, gold)
    conf = p.max(1)
    hit = (p.argmax(1) == g).astype(float)
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = idx == b
        if m.any():
            rows.append({"bin_low": b / n_bins, "bin_high": (b + 1) / n_bins,
                         "confidence": conf[m].mean(), "accuracy": hit[m].mean(),
                         "count": int(m.sum())})
    return pd.DataFrame(rows)


def log_loss(probs, gold, eps: float = 1e-12) -> float:
    """Mean ``-log p(gold)`` over gold tasks (probabilities floored at ``eps``)."""
    p, g = _probs_gold(probs, gold)
    return float(-np.log(np.maximum(p[np.arange(len(g)), g], eps)).mean())


def gold_codes(fit, gold=None) -> np.ndarray:
    """Gold as class codes aligned with the fit's tasks (-1 where none).

    ``gold`` defaults to the data's own gold labels, which must not have been used to fit.
    """
    a = fit.annotations
    if gold is None:
        if not a.has_gold:
            raise ValueError("no gold labels to score against; pass gold=")
        if np.any(np.asarray(fit.data.gold) >= 0):
            raise ValueError("the gold labels were used to fit (use_gold=True clamps them); "
                             "fit with use_gold=False to score on them")
        return np.asarray(a.gold, int)
    gold = pd.Series(gold)
    cls = {str(c): i for i, c in enumerate(a.classes)}
    pos = {str(t): i for i, t in enumerate(a.task_ids)}
    out = np.full(a.n_tasks, -1)
    for t, v in gold.items():
        if str(t) not in pos:
            raise ValueError(f"gold task {t!r} has no answers")
        if str(v) not in cls:
            raise ValueError(f"gold label {v!r} is not a class of the data")
        out[pos[str(t)]] = cls[str(v)]
    return out


def gold_scores(fit, gold=None, n_bins: int = 10) -> dict:
    """Accuracy, log loss, ECE and Brier score of a fit's task posteriors on gold.

    Parameters
    ----------
    fit : Fit
        Fitted with ``use_gold=False`` when ``gold`` is None (then the data's gold is used).
    gold : pandas.Series, optional
        Gold labels (class names) indexed by task id.
    n_bins : int
        Bins of the ECE.
    """
    g = gold_codes(fit, gold)
    probs = fit.task_posterior().to_numpy()
    p, gg = _probs_gold(probs, g)
    top = np.isclose(p, p.max(1, keepdims=True), rtol=0, atol=1e-9)
    acc = float((top[np.arange(len(gg)), gg] / top.sum(1)).mean())
    onehot = np.eye(p.shape[1])[gg]
    return {"accuracy": acc, "log_loss": log_loss(p, gg),
            "ece": expected_calibration_error(p, gg, n_bins),
            "brier": float(((p - onehot) ** 2).sum(1).mean()), "n_gold": int(len(gg))}


def vote_agreement(fit) -> float:
    """Return the share of tasks whose label is a plurality answer of the task's workers.

    The label is the top class of the fit's task posterior; no gold is needed.
    A sanity signal next to elpd: models of the same crowd mostly agree with the vote (by
    construction they differ where workers differ), so a model far below the others has
    classes that may not be identified (e.g. a per-item effect that stands in for the class
    when tasks have few answers), whatever its elpd. Tasks without answers are left out.
    """
    data = fit.data
    k = data.n_classes
    task, label = np.asarray(data.task), np.asarray(data.label)
    votes = np.bincount(task * k + label, minlength=data.n_tasks * k).reshape(-1, k)
    answered = votes.sum(1) > 0
    top = fit.task_posterior().to_numpy().argmax(1)
    hit = votes[np.arange(data.n_tasks), top] == votes.max(1)
    return float(hit[answered].mean())


# --- LOO -------------------------------------------------------------------------------
def integrated_log_likelihood(fit, n_nodes: int = 24) -> np.ndarray:
    """Per-task log-likelihood with each task's own parameters integrated out, per draw.

    ``log p(y_t | theta^(s))`` with ``phi_t`` (the task's difficulty, ...) summed out under
    its prior by the model's quadrature rule
    (:meth:`~crowdzoo.models.base.CrowdModel.integrated_task_log_lik`), ``(chain, draw,
    task)``. Only the global parameters ``theta`` of each draw are used.
    """
    import jax.numpy as jnp

    samples = {k: jnp.asarray(np.asarray(v).reshape((-1,) + v.shape[2:]))
               for k, v in fit.samples.items()}
    out = _integrated_draws(fit.model, samples, fit.data, int(n_nodes))
    shape = next(iter(fit.samples.values())).shape[:2]
    return np.asarray(out).reshape(shape + (-1,))


def _integrated_draws(model, samples, data, n_nodes):
    """``model.integrated_task_log_lik`` of every draw (one compiled loop over draws)."""
    import jax

    def run(samples, data):
        return jax.lax.map(lambda p: model.integrated_task_log_lik(p, data, n_nodes), samples)

    return jax.jit(run)(samples, data)


def loo(fit, pointwise: bool = True, integrate: bool | None = None, n_nodes: int = 24,
        moment_match: bool | None = None, reloo: bool = False,
        reloo_max_refits: int = RELOO_MAX_REFITS, progress: bool = False):
    """PSIS-LOO over tasks of a fit with posterior draws (NUTS; SVI draws are approximate).

    Returns ArviZ's ``ELPDData`` (``elpd``, ``se``, ``p``, ``pareto_k`` per task).

    For a model whose tasks have their own parameters (it declares
    :meth:`~crowdzoo.models.base.CrowdModel.task_quadrature`: GLAD, the IRT models), leaving
    a task out also leaves its parameters without data, so the plain importance ratios
    ``1 / p(y_t | theta, phi_t)`` have heavy tails (Pareto k > 0.7 for many tasks). With
    ``integrate`` (the default for such models), the LOO term of task ``t`` is computed from
    ``p(y_t | theta) = E_{phi_t}[p(y_t | theta, phi_t)]``, the task's parameters integrated
    out by quadrature under their prior: the same predictive target (a new draw of the
    task's answers given the other tasks), with ratios that depend only on the global
    parameters. A model that sums each task's own effect out inside its likelihood
    (``integrates_task_parameters``: item_difficulty, the IRT models with
    ``integrate_items``) has integrated terms already: nothing more is done. The result's
    ``integrated`` attribute says whether the terms are integrated ones.

    With ``moment_match`` (the default for NUTS fits), the terms of tasks still at Pareto
    k > 0.7 are moment-matched (:func:`moment_match_loo`); ``moment_matched`` counts the
    tasks it brought to k <= 0.7, ``k_bad_before`` those above before, and ``terms`` says
    in words what the terms are.

    With ``reloo``, the terms of the tasks still at k > 0.7 after that are computed by
    refitting the model without them (:func:`reloo_tasks`: exact LOO up to
    ``reloo_max_refits`` such tasks, K-fold folds of them beyond); their Pareto k is set
    to 0, as ArviZ's ``reloo`` does, ``refitted`` counts them and ``terms`` says e.g.
    "plain, 2 moment-matched, 3 refitted". Off by default: each refit costs a fit.
    ``progress`` shows the refits' progress bars.
    """
    import arviz as az
    import numpyro  # noqa: F401  (numpyro before arviz)

    if not isinstance(reloo, (bool, np.bool_)):
        raise TypeError(f"reloo must be True or False (reloo_max_refits sets how many refits), "
                        f"got {reloo!r}")
    if not fit.has_draws:
        raise ValueError(f"LOO needs posterior draws; {fit.model.name} was fitted by "
                         f"{fit.method!r} (use method='nuts')")
    shape = next(iter(fit.samples.values())).shape[:2]
    if shape[0] * shape[1] < MIN_LOO_DRAWS:
        raise ValueError(f"PSIS-LOO needs at least {MIN_LOO_DRAWS} posterior draws in total "
                         f"(chains x draws); {fit.model.name} has {shape[0]} x {shape[1]} = "
                         f"{shape[0] * shape[1]}")
    has_rule = fit.model.task_quadrature(fit.data, n_nodes) is not None
    built_in = bool(fit.model.integrates_task_parameters)
    if integrate and not (has_rule or built_in):
        raise ValueError(f"{fit.model.name} declares no per-task parameters to integrate out")
    integrate = has_rule and integrate is not False
    dt = _loo_tree(fit, integrate, n_nodes)
    with warnings.catch_warnings():
        # ArviZ warns when some Pareto k are high; we report them in pareto_k_summary
        warnings.simplefilter("ignore", UserWarning)
        try:
            out = az.loo(dt, pointwise=pointwise, var_name="answers")
            out.tie_break = False
        except ValueError as err:
            if "All tail values are the same" not in str(err):
                raise
            # a task whose largest log-likelihood values tie exactly (float32 terms of a task
            # every draw explains alike): PSIS's tail fit has nothing to fit and ArviZ raises.
            # Equal tail weights need no smoothing, so break the ties by 1e-9 (far below any
            # elpd difference) and say so in ``tie_break``
            ll = dt["log_likelihood"]["answers"]
            jitter = np.random.default_rng(0).uniform(0.0, 1e-9, ll.shape)
            dt["log_likelihood"]["answers"] = ll.copy(data=ll.values.astype(np.float64) + jitter)
            out = az.loo(dt, pointwise=pointwise, var_name="answers")
            out.tie_break = True
    out.integrated = bool(integrate) or built_in
    out.k_bad_before = int((np.asarray(out.pareto_k) > PARETO_K_BAD).sum())
    out.moment_matched = 0
    if moment_match is None:
        moment_match = fit.method == "nuts"
    if moment_match and out.k_bad_before:
        out = moment_match_loo(fit, out, n_nodes)
    out.refitted, out.refits, out.reloo_seconds = 0, 0, 0.0
    out.refit_tasks, out.refit_mcse, out.refit_max_r_hat = np.zeros(0, int), np.zeros(0), np.nan
    if reloo:
        out = reloo_tasks(fit, out, n_nodes, reloo_max_refits, progress=progress)
    out.terms = _terms(out)
    return out


def _terms(elpd) -> str:
    """Say what a LOO's terms are: 'integrated, 2 moment-matched, 3 refitted'."""
    words = ["integrated" if elpd.integrated else "plain"]
    if getattr(elpd, "moment_matched", 0):
        words.append(f"{elpd.moment_matched} moment-matched")
    if getattr(elpd, "refitted", 0):
        n = elpd.refits
        folds = "" if n == elpd.refitted else f" in {n} fold{'s' if n != 1 else ''}"
        words.append(f"{elpd.refitted} refitted{folds}")
    return ", ".join(words)


def _loo_tree(fit, integrate: bool, n_nodes: int):
    """Return the fit's DataTree for LOO, its per-task terms integrated where asked."""
    dt = fit.to_arviz(posterior_predictive=False)
    if integrate:
        ll = dt["log_likelihood"]["answers"]
        dt["log_likelihood"]["answers"] = ll.copy(data=integrated_log_likelihood(fit, n_nodes))
    return dt


def moment_match_loo(fit, elpd, n_nodes: int = 24, max_tasks: int = MM_MAX_TASKS):
    """Moment-matched PSIS-LOO terms for the tasks with Pareto k > 0.7 (ArviZ's own routine).

    For a task whose importance ratios have heavy tails, the draws are moved by affine
    transformations in the unconstrained space until they match the moments of the
    leave-this-task-out posterior (Paananen, Piironen, Buerkner & Vehtari 2021), through
    :func:`arviz_stats.loo_moment_match` with the model's own log density (NumPyro's
    ``potential_energy``) and per-task log-likelihood; no refit. It is tried where it can
    work: NUTS draws, at most ``max_tasks`` such tasks, and fewer unconstrained parameters
    than draws (the matched covariance needs them; sparse crowds with a matrix per worker
    have thousands of parameters, and their high-k tasks stay flagged). A task whose k does
    not improve keeps its PSIS term.

    Returns the updated ``ELPDData`` with ``moment_matched`` (tasks whose k fell to <= 0.7)
    and ``k_bad_before``; the input is not modified.

    References
    ----------
    T. Paananen, J. Piironen, P.-C. Buerkner, A. Vehtari. Implicitly adaptive importance
    sampling. Statistics and Computing 31(16), 2021. https://doi.org/10.1007/s11222-020-09982-2
    """
    from arviz_stats import loo_moment_match

    k = np.asarray(elpd.pareto_k).ravel()
    n_bad = int((k > PARETO_K_BAD).sum())
    shape = next(iter(fit.samples.values())).shape[:2]
    integrated = bool(getattr(elpd, "integrated", False))
    if n_bad > max_tasks:
        return elpd
    upars, log_prob_upars, log_lik_i_upars = moment_match_functions(fit, integrated, n_nodes)
    if upars.shape[-1] >= shape[0] * shape[1] or not np.isfinite(upars.values).all():
        return elpd
    dt = _loo_tree(fit, integrated, n_nodes)
    with warnings.catch_warnings():
        # ArviZ warns per task that did not improve and about the ones left: counted below
        warnings.simplefilter("ignore", UserWarning)
        try:
            out = loo_moment_match(dt, elpd, log_prob_upars, log_lik_i_upars, upars,
                                   var_name="answers", k_threshold=PARETO_K_BAD, cov=True)
        except (ValueError, np.linalg.LinAlgError):  # a singular covariance: keep PSIS
            return elpd
    out.integrated = integrated
    out.tie_break = getattr(elpd, "tie_break", False)
    out.k_bad_before = n_bad
    out.moment_matched = n_bad - int((np.asarray(out.pareto_k).ravel() > PARETO_K_BAD).sum())
    return out


def moment_match_functions(fit, integrated: bool = False, n_nodes: int = 24):
    """Return the three inputs of :func:`arviz_stats.loo_moment_match` for a fit with draws.

    Returns ``(upars, log_prob_upars, log_lik_i_upars)``: the draws in NumPyro's
    unconstrained space, ``(chain, draw, upar)``; the log posterior density there (minus
    NumPyro's ``potential_energy``, Jacobians included) of such an array; and the
    log-likelihood of task ``i`` at such an array (with the task's own parameters integrated
    out when ``integrated``). Both functions return ``(chain, draw)`` DataArrays.
    """
    import jax
    import jax.numpy as jnp
    import xarray as xr
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

    model, data = fit.model, fit.data
    shape = next(iter(fit.samples.values())).shape[:2]
    flat = {name: jnp.asarray(np.asarray(v).reshape((-1,) + v.shape[2:]))
            for name, v in fit.samples.items()}
    u = jax.jit(jax.vmap(lambda p: unconstrain_fn(model, (data,), {}, p)))(flat)
    unravel = ravel_pytree(jax.tree.map(lambda a: a[0], u))[1]
    U = np.asarray(jax.vmap(lambda d: ravel_pytree(d)[0])(u), np.float64)

    def per_task(v):
        params = constrain_fn(model, (data,), {}, unravel(v))
        if integrated:
            return model.integrated_task_log_lik(params, data, n_nodes)
        return model.log_likelihood(params, data).per_task

    log_prob = jax.jit(jax.vmap(lambda v: -potential_energy(model, (data,), {}, unravel(v))))
    log_lik = jax.jit(jax.vmap(per_task))

    def rows(up):
        return jnp.asarray(up.values.reshape(-1, up.shape[-1]), jnp.float32)

    def as_draws(values, up):
        return xr.DataArray(np.asarray(values, np.float64).reshape(up.shape[:2]),
                            dims=("chain", "draw"))

    def log_prob_upars(up):
        return as_draws(log_prob(rows(up)), up)

    def log_lik_i_upars(up, i):
        return as_draws(np.asarray(log_lik(rows(up)))[:, int(i)], up)

    upars = xr.DataArray(U.reshape(shape + (-1,)), dims=("chain", "draw", "upar"))
    return upars, log_prob_upars, log_lik_i_upars


def reloo_tasks(fit, elpd, n_nodes: int = 24, max_refits: int = RELOO_MAX_REFITS, *,
                progress: bool = False):
    """Recompute the LOO terms of the tasks with Pareto k > 0.7 by refitting without them.

    PSIS (and moment matching) estimate ``elpd_t = log p(y_t | y_-t)`` from the draws of
    the full posterior; where the Pareto k of task ``t`` stays above 0.7 the estimate is
    unreliable. Here the model is refitted by the same method, settings and seed
    (:func:`crowdzoo.inference.runner.refit`) on the answers without that task
    (:meth:`~crowdzoo.models.base.CrowdModel.drop_tasks`: its answers and gold removed,
    every code kept), and its term is ``log (1/S) sum_s p(y_t | theta_s)`` over the refit's
    draws, with the task's own parameters integrated out by quadrature when the LOO's terms
    are integrated ones — exact LOO ("reloo", Vehtari, Gelman & Gabry 2017), through
    :func:`arviz_stats.reloo`, which also sets a refitted task's Pareto k to 0 and its log
    weights to NaN and updates ``elpd``, ``se`` and ``p``.

    Cost: one fit per refit. Up to ``max_refits`` flagged tasks get one refit each (exact).
    More are dealt round-robin (in task order) into ``max_refits`` folds; each fold is
    refitted once without all of its tasks and each task's term is computed from that
    refit: ``log p(y_t | y_-fold)``, an honest out-of-sample (K-fold) term, though not the
    exact LOO one: the refit also lacks the fold's other tasks (usually a little
    pessimistic; it can go either way, e.g. leaving out tasks of another class raises this
    class's share). Folds stay small next to the crowd when the flagged tasks are few.

    Parameters
    ----------
    fit : Fit
        A NUTS or SVI fit by :func:`crowdzoo.fit` (its settings are reused).
    elpd : ELPDData
        Its :func:`loo` (pointwise), e.g. after moment matching.
    n_nodes : int
        Quadrature nodes for integrated terms.
    max_refits : int
        Most refits (>= 1).
    progress : bool
        The refits' progress bars.

    Returns
    -------
    ELPDData
        A copy with the refitted terms, and ``refitted`` (tasks), ``refits`` (fits run),
        ``refit_tasks`` (their codes), ``refit_mcse`` (the Monte Carlo standard error of
        each refitted term, ``sd(p) / (mean(p) sqrt(ESS))`` of ``p = p(y_t | theta_s)``:
        approximate, and optimistic where ``p`` is heavy-tailed), ``refit_max_r_hat`` (the
        refits' largest split r_hat, NUTS) and ``reloo_seconds``; ``terms`` updated. The input is
        not modified.
    """
    import xarray as xr
    from arviz_stats import reloo
    from arviz_stats.loo.wrapper import SamplingWrapper

    from .result import Fit
    from .runner import refit

    if isinstance(max_refits, bool) or not isinstance(max_refits, (int, np.integer)) \
            or max_refits < 1:
        raise ValueError(f"max_refits must be a whole number >= 1, got {max_refits!r}")
    if getattr(elpd, "pareto_k", None) is None or getattr(elpd, "elpd_i", None) is None:
        raise ValueError("reloo needs a pointwise LOO (loo(fit, pointwise=True))")
    k = np.asarray(elpd.pareto_k).ravel()
    bad = np.flatnonzero(k > PARETO_K_BAD)
    if not bad.size:
        out = copy.deepcopy(elpd)
        out.refitted, out.refits, out.refit_tasks, out.reloo_seconds = 0, 0, bad, 0.0
        out.refit_mcse, out.refit_max_r_hat = np.zeros(0), np.nan
        out.terms = _terms(out)
        return out
    n_folds = min(int(max_refits), bad.size)
    fold_of = {int(t): i % n_folds for i, t in enumerate(bad)}
    integrated = bool(getattr(elpd, "integrated", False))
    dt = _loo_tree(fit, integrated, n_nodes)
    refits, r_hats = {}, []

    class TaskRefits(SamplingWrapper):
        """Refit without a fold of flagged tasks (once per fold); a task's term per draw."""

        def sel_observations(self, idx):
            t = int(np.asarray(idx).ravel()[0])
            return fold_of[t], t

        def sample(self, fold):
            if fold not in refits:
                tasks = [t for t, f in fold_of.items() if f == fold]
                res = refit(fit, fit.model.drop_tasks(fit.data, tasks), progress=progress)
                if res.method == "nuts":
                    r_hats.append(_max_r_hat(res.samples))
                # the refit's draws on the full data: every task's term, left-out ones too
                full = Fit(fit.model, res.method, fit.annotations, fit.data, samples=res.samples)
                refits[fold] = (integrated_log_likelihood(full, n_nodes) if integrated
                                else full.log_likelihood())
            return fold

        def get_inference_data(self, fold):
            return fold

        def log_likelihood__i(self, excluded_obs, idata__i):
            return xr.DataArray(np.asarray(refits[idata__i][..., excluded_obs], np.float64),
                                dims=("chain", "draw"))

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported as refit_max_r_hat
        out = reloo(TaskRefits(fit.model, idata_orig=dt), loo_orig=elpd, var_name="answers",
                    k_threshold=PARETO_K_BAD, pointwise=True)
    out.refitted, out.refits, out.refit_tasks = int(bad.size), len(refits), bad
    out.refit_mcse = np.array([_log_mean_exp_mcse(refits[fold_of[int(t)]][..., t]) for t in bad])
    out.refit_max_r_hat = max(r_hats) if r_hats else np.nan
    out.reloo_seconds = time.perf_counter() - start
    out.terms = _terms(out)
    return out


def _max_r_hat(samples) -> float:
    """Largest split r_hat over every sampled element (NumPyro's; NaN with one chain).

    A quick look at a refit's mixing: :meth:`Fit.convergence`'s rank-normalized table costs
    seconds per refit on thousands of parameters.
    """
    from numpyro.diagnostics import split_gelman_rubin

    worst = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws (fixed parameters)
        for v in samples.values():
            v = np.asarray(v, np.float64)
            if v.shape[0] < 2:
                return np.nan
            r = np.asarray(split_gelman_rubin(v))
            if np.isfinite(r).any():
                worst = np.nanmax([worst, np.nanmax(r)])
    return float(worst)


def _log_mean_exp_mcse(log_p) -> float:
    """Monte Carlo standard error of ``log mean_s exp(log_p[c, s])`` (delta method, mean ESS)."""
    from arviz_stats.base import array_stats

    p = np.exp(np.asarray(log_p, np.float64) - np.max(log_p))
    ess = float(array_stats.ess(p, chain_axis=-2, draw_axis=-1, method="mean"))
    return float(p.std() / (p.mean() * np.sqrt(max(ess, 1.0))))


def pareto_k_summary(elpd) -> dict:
    """Return counts of tasks by Pareto k: good (<= 0.5), ok (0.5-0.7), bad (> 0.7), and the max."""
    k = np.asarray(elpd.pareto_k).ravel()
    return {"k_good": int((k <= 0.5).sum()), "k_ok": int(((k > 0.5) & (k <= PARETO_K_BAD)).sum()),
            "k_bad": int((k > PARETO_K_BAD).sum()), "k_max": float(k.max())}


# --- comparison ------------------------------------------------------------------------
@dataclasses.dataclass
class CompareResult:
    """Output of :func:`compare_models`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model: ``elpd_loo``, ``se``, ``p_loo``, ``loo_terms`` ("integrated":
        each task's own parameters integrated out of its term, see :func:`loo`; "plain";
        with ", N moment-matched" where N high-k terms were moment-matched and ", N
        refitted" where N were computed by refits, see :func:`reloo_tasks`), ``k_bad_psis``
        (tasks with k > 0.7 before those repairs), ``moment_matched``, ``refitted``,
        ``refits`` (fits run for them), ``reloo_seconds``,
        ``elpd_diff`` (best minus this model, >= 0), ``dse`` (its se), ``weight``
        (stacking), Pareto k counts, ``accuracy``, ``log_loss``, ``ece`` (on gold), ``seconds``
        (the fit), ``loo_seconds`` (its LOO: PSIS, with any integration over task parameters,
        moment matching and refits), ``vote_agreement`` (:func:`vote_agreement`, no gold),
        ``r_hat`` (max), ``ess`` (min of bulk and tail ESS), ``divergences``, ``converged``
        and ``problems``; sorted by ``elpd_loo`` (best first) when there is LOO. A model that
        has not converged keeps its rank, marked ``!`` by :meth:`to_string`.
    fits : dict of name -> Fit
    loo : dict of name -> ELPDData (models fitted with draws)
    """

    table: pd.DataFrame
    fits: dict
    loo: dict

    def to_string(self) -> str:
        """Return the table formatted for a terminal (elpd as ``elpd +- se``)."""
        t = self.table.copy()
        out = pd.DataFrame(index=t.index)
        if "elpd_loo" in t:
            out["elpd_loo"] = [f"{e:.1f} +- {s:.1f}" if np.isfinite(e) else "-"
                               for e, s in zip(t["elpd_loo"], t["se"], strict=True)]
            out["elpd_diff"] = [f"{d:.1f} +- {s:.1f}" if np.isfinite(d) else "-"
                                for d, s in zip(t["elpd_diff"], t["dse"], strict=True)]
            out["p_loo"] = t["p_loo"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
            out["k>0.7"] = t["k_bad"].map(lambda v: "-" if pd.isna(v) else str(int(v)))
        if "vote_agreement" in t:
            out["votes"] = t["vote_agreement"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
        for col, fmt in (("accuracy", "{:.4f}"), ("log_loss", "{:.4f}"), ("ece", "{:.4f}")):
            if col in t:
                out[col] = t[col].map(lambda v, f=fmt: "-" if pd.isna(v) else f.format(v))
        if "r_hat" in t and t["r_hat"].notna().any():
            out["r_hat"] = t["r_hat"].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}")
        if "ess" in t and t["ess"].notna().any():
            out["ess"] = t["ess"].map(lambda v: "-" if pd.isna(v) else f"{v:.0f}")
        if "divergences" in t and t["divergences"].notna().any():
            out["div"] = t["divergences"].map(lambda v: "-" if pd.isna(v) else str(int(v)))
        out["method"] = t["method"]
        out["seconds"] = t["seconds"].map(lambda v: f"{v:.1f}")
        if "loo_seconds" in t and t["loo_seconds"].notna().any():
            out["loo_s"] = t["loo_seconds"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
        # a model ranked on unreliable terms (Pareto k > 0.7) is marked and said so
        k_bad = t["k_bad"] if "k_bad" in t else pd.Series(np.nan, index=t.index)
        unreliable = [bool(pd.notna(v) and v > 0) for v in k_bad]
        if any(unreliable):
            out.index = [f"{n} ?" if u else n for n, u in zip(out.index, unreliable, strict=True)]
        notes = []
        if any(unreliable):
            worst = ", ".join(f"{n}: {int(v)} of {int(t.loc[n, 'k_good'] + t.loc[n, 'k_ok'] + v)}"
                              for n, v, u in zip(t.index, k_bad, unreliable, strict=True) if u)
            notes.append(f"? tasks with Pareto k > 0.7 ({worst}): that elpd_loo is unreliable, "
                         f"and so is its rank (reloo, a refit without those tasks, gives exact "
                         f"terms)")
        notes += _vote_notes(t)
        if "converged" in t:
            # a model that has not converged is ranked, but never silently
            out.index = [f"{n} !" if not ok else n for n, ok in
                         zip(out.index, t["converged"], strict=True)]
            if not t["converged"].all():
                notes.append("! not converged (r_hat > 1.01, ESS < 100 per chain or "
                             "divergences): its LOO and rank are not trustworthy")
        return "\n".join([out.to_string()] + notes)


VOTE_GAP = 0.2  # a model this far below the other models' median agreement is named


def _vote_notes(t: pd.DataFrame) -> list[str]:
    """Name the models whose labels leave the plurality vote far more than the others'."""
    if "vote_agreement" not in t:
        return []
    agree = t["vote_agreement"].drop(index="majority_vote", errors="ignore").dropna()
    if len(agree) < 3:
        return []
    notes = []
    for name, v in agree.items():
        rest = agree.drop(index=name)
        if v < rest.median() - VOTE_GAP:
            notes.append(
                f"{name}: its labels agree with the plurality vote on {v:.0%} of tasks, the "
                f"other models on {rest.min():.0%}-{rest.max():.0%} (column votes): its classes "
                f"may not be identified (a high elpd can come from predicting the answers "
                f"without them); look at its class frequencies before trusting its rank")
    return notes


def compare_models(
    data,
    models,
    method: str = "nuts",
    *,
    gold=None,
    seed: int = 0,
    progress: bool | None = False,
    on_fit=None,
    reloo: bool = False,
    reloo_max_refits: int = RELOO_MAX_REFITS,
    **options,
) -> CompareResult:
    """Fit several models to the same answers; compare LOO and calibration on gold.

    Parameters
    ----------
    data : Annotations
        The answers. When they carry gold labels, the models are fitted with
        ``use_gold=False`` and scored on them.
    models : list of str or CrowdModel
        Models to compare. A model that cannot be fitted by ``method`` (``majority_vote``)
        is fitted by MAP and gets no LOO.
    method : {"nuts", "svi", "map"}
        Inference method (LOO needs draws: "nuts", or "svi" as an approximation).
    gold : pandas.Series, optional
        Gold labels indexed by task id (instead of the data's own).
    seed : int
        Seed of every fit.
    progress : bool, optional
        Progress bars (None: where the user looks, a terminal or Jupyter).
    on_fit : callable, optional
        Called as ``on_fit(i, n, row)`` after the ``i``-th of ``n`` models is fitted and
        scored, with its table row (a dict: ``model``, ``method``, ``seconds``, ``r_hat``,
        ``converged``, ``elpd_loo``, ``k_bad``, ``accuracy``, ... as far as they apply); the
        ``crowdzoo compare`` command prints a line per model with it, so a long comparison
        shows where it is.
    reloo : bool
        Refit each model without its tasks whose Pareto k stays > 0.7 (after moment
        matching) and use those exact out-of-sample terms (:func:`reloo_tasks`); off by
        default, since each refit costs a fit.
    reloo_max_refits : int
        Most refits per model: more flagged tasks than this are refitted in this many folds.
    **options
        Method options passed to :func:`crowdzoo.fit` (e.g. ``num_warmup``).

    Returns
    -------
    CompareResult
    """
    import arviz as az
    import numpyro  # noqa: F401

    from ..models import get_model
    from .progress import default_progress
    from .runner import fit as run_fit

    has_gold = gold is not None or data.has_gold
    bars = default_progress() if progress is None else bool(progress)
    fits, loos, rows = {}, {}, []
    models = list(models)
    for i, spec in enumerate(models, start=1):
        model = get_model(spec)
        m = method if method in model.methods else "map"
        start = time.perf_counter()
        with warnings.catch_warnings():
            # reported once below, per model, in the table's `converged` column
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = run_fit(model, data, method=m, seed=seed, progress=progress, use_gold=False,
                          **(options if m == method else {}))
        seconds = time.perf_counter() - start
        name = model.name
        fits[name] = res
        row = {"model": name, "method": m, "seconds": seconds, **convergence_columns(res)}
        if res.has_draws and model.proper_likelihood:  # a pseudo-likelihood has no LOO
            start = time.perf_counter()
            elpd = loo(res, reloo=reloo, reloo_max_refits=reloo_max_refits, progress=bars)
            loos[name] = elpd
            # integrating a task's own parameters out costs a likelihood per node and draw:
            # minutes for irt_3pl's grid, so it is timed apart from the fit (refits included)
            row.update(elpd_loo=float(elpd.elpd), se=float(elpd.se), p_loo=float(elpd.p),
                       loo_terms=elpd.terms, k_bad_psis=elpd.k_bad_before,
                       moment_matched=elpd.moment_matched, refitted=elpd.refitted,
                       refits=elpd.refits, reloo_seconds=elpd.reloo_seconds,
                       loo_seconds=time.perf_counter() - start, **pareto_k_summary(elpd))
        row["vote_agreement"] = vote_agreement(res)
        if has_gold:
            row.update(gold_scores(res, gold))
        rows.append(row)
        if on_fit is not None:
            on_fit(i, len(models), dict(row))
    table = pd.DataFrame(rows).set_index("model")
    for col in ("elpd_loo", "se", "p_loo", "k_good", "k_ok", "k_bad", "k_max"):
        if col not in table:
            table[col] = np.nan
    table["elpd_diff"] = np.nan
    table["dse"] = np.nan
    table["weight"] = np.nan
    if loos:
        # differences to the best model, from the pointwise elpd (positive = worse than best)
        best = max(loos, key=lambda n: float(loos[n].elpd))
        best_i = np.asarray(loos[best].elpd_i).ravel()
        for name, elpd in loos.items():
            diff_i = best_i - np.asarray(elpd.elpd_i).ravel()
            table.loc[name, ["elpd_diff", "dse"]] = [float(diff_i.sum()),
                                                     float(np.sqrt(diff_i.size * diff_i.var()))]
        table.loc[best, "weight"] = 1.0
    if len(loos) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            cmp = az.compare(loos, round_to="none")
        for name in cmp.index:
            table.loc[name, "weight"] = float(cmp.loc[name, "weight"])
    table = table.sort_values("elpd_loo", ascending=False, na_position="last")
    bad = [n for n in table.index if not table.loc[n, "converged"]]
    if bad:
        warnings.warn(
            f"compare: {', '.join(bad)} ha{'s' if len(bad) == 1 else 've'} not converged "
            f"({'; '.join(f'{n}: {table.loc[n, 'problems']}' for n in bad)}); their LOO and "
            f"rank are not trustworthy (marked '!' in the table): fit them longer",
            ConvergenceWarning,
            stacklevel=2,
        )
    return CompareResult(table, fits, loos)


def applicable_models(data, names=None) -> tuple[list[str], dict[str, str]]:
    """Split registered models into those that take ``data`` and those that do not.

    Parameters
    ----------
    data : Annotations
        The answers (with their features / texts, if any).
    names : list of str, optional
        Models to check (default: every registered model, then the baselines).

    Returns
    -------
    (list of str, dict)
        The names that apply, in order, and ``name -> reason`` for the others: the model's
        own :meth:`~crowdzoo.models.CrowdModel.check_data` message (a binary model on
        K > 2 classes, a learning-from-crowds model without features, ...).
    """
    from ..models import BASELINES, REGISTRY, crowd_data, get_model

    if names is None:
        names = sorted(REGISTRY) + sorted(BASELINES)
    cdata = crowd_data(data, use_gold=False)
    ok, skipped = [], {}
    for name in names:
        try:
            get_model(name).check_data(cdata)
        except ValueError as err:
            skipped[name] = str(err)
        else:
            ok.append(name)
    return ok, skipped


def convergence_columns(fit) -> dict:
    """Return a fit's convergence numbers for a comparison table.

    ``r_hat`` (max), ``ess`` (min of bulk and tail), ``divergences``, ``converged`` and
    ``problems`` (NaN where they do not apply: MAP has no r_hat).
    """
    conv = fit.convergence()
    attrs = conv.attrs
    ess = min(attrs.get("min_ess_bulk", np.nan), attrs.get("min_ess_tail", np.nan))
    problems = list(attrs.get("problems", []))
    return {"r_hat": attrs.get("max_r_hat", np.nan), "ess": ess,
            "divergences": attrs.get("divergences", np.nan),
            "converged": bool(attrs.get("converged", True)), "problems": "; ".join(problems)}
