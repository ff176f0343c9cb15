"""Exact LOO by refitting (``loo(..., reloo=True)``) for the tasks whose Pareto k stays > 0.7.

The check is against the exact answer: with every task's true label given as gold,
Dawid-Skene's posterior is conjugate (Dirichlet rows given the counts), so the leave-one-task
-out predictive ``p(y_t | y_-t)`` of a task is a product of Dirichlet-multinomial
probabilities, computed here in closed form from the counts.
"""

from __future__ import annotations

import copy
import warnings

import arviz as az
import jax
import numpy as np
import pandas as pd
import pytest
from conftest import dense_crowd, prior_draw
from crowdzoo.data import Annotations, simulate
from crowdzoo.inference import compare as C
from crowdzoo.models import REGISTRY, crowd_data, get_model
from scipy.special import gammaln

import crowdzoo

#: answers of each worker to each of the two outlier tasks
REPEATS = 8
#: 2 x 2000 draws: a refitted term is log mean_s p(y_t | theta_s) over 40 answers, whose Monte
#: Carlo error at 2 x 500 draws (MCSE 0.1-0.5 nats) was as large as the tolerance
NUTS = dict(method="nuts", num_warmup=150, num_samples=2000, num_chains=2, seed=0,
            progress=False)
#: the largest error allowed a refitted term (nats), however large its MCSE (the estimate is
#: heavy-tailed: over seeds 0-3 at 2 x 2000 draws the errors were -0.38..+0.48 nats with
#: MCSE 0.06-0.40); PSIS's error on the worst task is > 1 nat
MAX_ERR = 0.75
#: DawidSkene()'s Dirichlet concentrations: confusion rows (diagonal, off-diagonal), classes
DIAG, OFF, CLASS = 3.0, 1.5, 2.0


def outlier_frame(repeats: int = REPEATS, unanimous: bool = False):
    """A simulated crowd (30 tasks, 5 workers, 2 classes) plus two tasks that every worker
    answers ``repeats`` times: half one class and half the other, or (``unanimous``) all
    class 0 for one task and class 1 for the other. Either way influential tasks (40 of
    the ~100 answers to their class at 8 repeats), whose PSIS terms have Pareto k > 0.7:
    the contradictory ones when the labels are clamped by gold, the unanimous ones without.
    """
    sim = simulate("dawid_skene", n_tasks=30, n_workers=5, n_classes=2, answers_per_task=4,
                   seed=1)
    a = sim.annotations
    rows = [{"task": f"outlier{o}", "worker": w,
             "label": a.classes[o if unanimous else (i + j) % 2]}
            for o in range(2) for i, w in enumerate(a.worker_ids) for j in range(repeats)]
    frame = pd.concat([a.to_frame(), pd.DataFrame(rows)], ignore_index=True)
    gold = pd.concat([sim.true_labels,
                      pd.Series({"outlier0": a.classes[0], "outlier1": a.classes[1]})])
    return frame, gold


@pytest.fixture(scope="module")
def gold_fit():
    frame, gold = outlier_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", crowdzoo.ConvergenceWarning)
        fit = crowdzoo.fit("dawid_skene", Annotations.from_frame(frame, gold=gold), **NUTS)
    psis = C.loo(fit, moment_match=False)
    return fit, psis, np.flatnonzero(np.asarray(psis.pareto_k) > C.PARETO_K_BAD)


def exact_term(fit, t, left_out) -> float:
    """``log p(y_t | y_-left_out)`` of gold-clamped Dawid-Skene, in closed form."""
    a = fit.annotations
    K, W, T = a.n_classes, a.n_workers, a.n_tasks
    g, task, worker, label = (np.asarray(x) for x in (a.gold, a.task, a.worker, a.label))
    alpha = np.full((K, K), OFF)
    np.fill_diagonal(alpha, DIAG)
    keep = ~np.isin(task, left_out)
    counts = np.zeros((W, K, K))
    np.add.at(counts, (worker[keep], g[task[keep]], label[keep]), 1)
    n_gold = np.bincount(g[np.setdiff1d(np.arange(T), left_out)], minlength=K)
    out = np.log((CLASS + n_gold[g[t]]) / (CLASS * K + n_gold.sum()))  # E[pi_g]
    for w in range(W):  # the worker's answers to t: a Dirichlet-multinomial sequence
        c = np.bincount(label[(task == t) & (worker == w)], minlength=K)
        a_row = alpha[g[t]] + counts[w, g[t]]
        out += (gammaln(a_row.sum()) - gammaln(a_row.sum() + c.sum())
                + (gammaln(a_row + c) - gammaln(a_row)).sum())
    return float(out)


def test_refitted_terms_equal_exact_loo(gold_fit):
    """Each flagged task refitted alone: its term matches the closed-form leave-one-out
    predictive within 4 Monte Carlo standard errors (and 0.75 nats), where PSIS was off;
    the other tasks' terms are untouched; ArviZ takes the result."""
    fit, psis, bad = gold_fit
    assert bad.size == 2 and set(bad) == {fit.annotations.n_tasks - 2, fit.annotations.n_tasks - 1}
    # the closed form is right: PSIS terms of the well-behaved tasks agree with it
    good = np.setdiff1d(np.arange(fit.annotations.n_tasks), bad)
    exact_good = [exact_term(fit, t, [t]) for t in good]
    np.testing.assert_allclose(np.asarray(psis.elpd_i)[good], exact_good, atol=0.1)

    before = np.asarray(psis.elpd_i).copy()
    out = C.reloo_tasks(fit, psis)
    np.testing.assert_array_equal(np.asarray(psis.elpd_i), before)  # input not modified
    assert out.refitted == 2 and out.refits == 2 and out.terms == "plain, 2 refitted"
    np.testing.assert_array_equal(out.refit_tasks, bad)
    new = np.asarray(out.elpd_i)
    exact = np.array([exact_term(fit, t, [t]) for t in bad])
    err = np.abs(new[bad] - exact)
    assert np.all(err < np.minimum(4 * out.refit_mcse, MAX_ERR)), (new[bad], exact, out.refit_mcse)
    # PSIS's estimate of the worst task was off by more than a nat (k > 0.9)
    worst = np.argmax(np.asarray(psis.pareto_k)[bad])
    assert abs(before[bad][worst] - exact[worst]) > 1.0
    np.testing.assert_array_equal(new[good], before[good])
    k = np.asarray(out.pareto_k)
    assert np.all(k[bad] == 0) and np.array_equal(k[good], np.asarray(psis.pareto_k)[good])
    assert C.pareto_k_summary(out)["k_bad"] == 0 and not out.warning
    assert float(out.elpd) == pytest.approx(new.sum())
    assert out.refit_max_r_hat < 1.05
    # loo(..., reloo=True) is the same route; ArviZ compares the result with other LOOs
    via_loo = C.loo(fit, moment_match=False, reloo=True)
    np.testing.assert_allclose(np.asarray(via_loo.elpd_i), new)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare({"psis": psis, "reloo": out})
    assert set(table.index) == {"psis", "reloo"} and np.isfinite(table["elpd"]).all()


def test_folds_past_the_cap_equal_exact_k_fold(gold_fit):
    """More flagged tasks than refits allowed: one refit leaves both out together, and each
    term matches the closed-form ``log p(y_t | y_-fold)``."""
    fit, psis, bad = gold_fit
    out = C.loo(fit, moment_match=False, reloo=True, reloo_max_refits=1)
    assert out.refitted == 2 and out.refits == 1 and out.terms == "plain, 2 refitted in 1 fold"
    exact = np.array([exact_term(fit, t, bad) for t in bad])
    err = np.abs(np.asarray(out.elpd_i)[bad] - exact)
    assert np.all(err < np.minimum(4 * out.refit_mcse, MAX_ERR)), (err, out.refit_mcse)
    # a fold's term is another target than exact LOO (less data), here by 0.03 nats a task
    # (upwards: leaving out a task of the other class raises this class's share)
    loo_exact = np.array([exact_term(fit, t, [t]) for t in bad])
    assert np.all(np.abs(loo_exact - exact) < 0.1)
    with pytest.raises(ValueError, match="max_refits"):
        C.reloo_tasks(fit, psis, max_refits=0)


def test_reloo_refuses_what_it_cannot_refit(gold_fit):
    fit, psis, _ = gold_fit
    from crowdzoo.inference.result import Fit

    bare = Fit(fit.model, "nuts", fit.annotations, fit.data, samples=fit.samples)
    with pytest.raises(TypeError, match="reloo must be True or False"):
        C.loo(fit, reloo=3)
    with pytest.raises(ValueError, match="records no settings"):
        C.reloo_tasks(bare, psis)
    with pytest.raises(ValueError, match="sizes"):
        crowdzoo.inference.runner.refit(fit, crowd_data(simulate("dawid_skene", 10, 5, 2, 3)
                                                        .annotations))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_dropped_tasks_contribute_nothing(name):
    """``drop_tasks``: a task left out (a gold one among them) has log-likelihood 0 at any
    parameters, and every other task keeps its term: a refit without it is exact."""
    model = get_model(name)
    if not model.proper_likelihood:
        pytest.skip(f"{name}: pseudo-likelihood, no LOO")
    feats = ("counts" if model.generates_features == "words" else bool(model.needs_features))
    ann, _, _ = dense_crowd(2, seed=3, n_tasks=6, features=feats, gold_tasks=(0, 1))
    data = crowd_data(ann)
    params = prior_draw(model, data, seed=1)
    dropped = model.drop_tasks(data, [0, 4])
    assert dropped.n_answers == data.n_answers - 2 * ann.n_workers
    full, part = (np.asarray(x) for x in jax.jit(
        lambda p, a, b: (model.log_likelihood(p, a).per_task,
                         model.log_likelihood(p, b).per_task))(params, data, dropped))
    np.testing.assert_allclose(part[[0, 4]], 0.0, atol=1e-5)
    np.testing.assert_allclose(part[[1, 2, 3, 5]], full[[1, 2, 3, 5]], rtol=1e-5, atol=1e-5)
    assert np.asarray(data.gold)[0] >= 0  # the caller's data are not modified


@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_compare_command_reloo(tmp_path, capsys, monkeypatch):
    """``crowdzoo compare --reloo``: the flagged terms are refitted, the table says so."""
    from crowdzoo.cli import _compare_notes, main

    # unanimous outliers: flagged without gold too; as many answers as the fixture's crowd,
    # so the fit and the one-fold refit reuse its compiled samplers
    frame, gold = outlier_frame(unanimous=True)
    answers, gold_csv = tmp_path / "answers.csv", tmp_path / "gold.csv"
    frame.to_csv(answers, index=False)
    gold.rename("label").rename_axis("task").reset_index().to_csv(gold_csv, index=False)
    # moment matching would repair these few-parameter terms; switch it off so that the
    # flagged terms reach the refits, as they do where moment matching cannot work
    monkeypatch.setattr(C, "moment_match_loo", lambda fit, elpd, n_nodes: elpd)
    code = main(["compare", str(answers), "--models", "dawid_skene", "--gold", str(gold_csv),
                 "--num-warmup", "150", "--num-samples", "500", "--reloo",
                 "--reloo-max-refits", "1", "--out", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "out" / "compare.csv", index_col=0)
    row = table.loc["dawid_skene"]
    assert row["k_bad_psis"] >= 1 and row["refitted"] == row["k_bad_psis"] and row["refits"] == 1
    assert row["k_bad"] == 0 and "refitted" in row["loo_terms"]
    assert "dawid_skene ?" not in out  # no longer ranked on unreliable terms
    assert f"{int(row['refitted'])} high-k task term(s) refitted (1 refit(s), " in out, out
    assert (f"folds) replaced {int(row['refitted'])} task term(s)" in out), out
    # without --reloo the note says how to get them
    t = table.copy()
    t["k_bad"], t["loo_terms"] = 2, "plain"
    import argparse

    args = argparse.Namespace(method="nuts", reloo=False, num_warmup=150, num_samples=500)
    assert "Rerun with --reloo" in _compare_notes(t, True, args)[0]
    assert main(["compare", str(answers), "--reloo-max-refits", "0"]) != 0
    assert main(["compare", str(answers), "--reloo-max-refits", "2"]) != 0


@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_refitted_integrated_term_agrees_with_reliable_psis():
    """GLAD (a difficulty per task, integrated out of its LOO term): a task whose PSIS term
    is reliable (k < 0.5), refitted anyway, gets the same term within its Monte Carlo error:
    the refit, the left-out task's index and the integration over its difficulty agree."""
    from conftest import SMALL_CROWD, SMALL_DRAWS, SMALL_NUTS

    sim = simulate("glad", **SMALL_CROWD, seed=2)
    fit = crowdzoo.fit("glad", sim.annotations, method="nuts", seed=0, progress=False,
                       num_chains=2, num_samples=SMALL_DRAWS // 2, chain_method="sequential",
                       **SMALL_NUTS)
    psis = C.loo(fit)
    assert psis.integrated
    k = np.asarray(psis.pareto_k)
    t = int(np.argmin(k))
    assert k[t] < 0.5
    forced = copy.deepcopy(psis)
    forced.pareto_k[t] = 1.0  # as if flagged
    out = C.reloo_tasks(fit, forced)
    assert out.refitted == 1 and out.terms == "integrated, 1 refitted"
    before, after = np.asarray(psis.elpd_i), np.asarray(out.elpd_i)
    # both carry Monte Carlo error (PSIS's about as large as the refit's): here 0.055 apart,
    # the refit's MCSE 0.023
    assert abs(after[t] - before[t]) < 6 * out.refit_mcse[0] + 0.02, (after[t], before[t])
    others = np.arange(k.size) != t
    np.testing.assert_array_equal(after[others], before[others])
