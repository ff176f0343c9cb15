"""Model criticism: SBC for every registered model, a planted bug that SBC must catch, PPC,
LOO / calibration and ``crowdzoo compare``.

SBC settings (stated, not tuned per model): R = 40 replications of a tiny crowd (20 tasks,
4 workers, 3 answers per task, K = 2), NUTS with 1 chain, 150 warmup, 400 draws thinned by
4 (L = 100), ranks of the class prior, two workers' parameters, two tasks' parameters and
two task labels; chi-square on 5 bins per quantity; the model fails when the Bonferroni-
adjusted smallest p-value is below alpha = 0.01. So a correct model fails with probability
at most about 1% (at most ~1% of seeds), while the planted bug gives an adjusted p-value
below 1e-6. Seeds are fixed (seed 0 for every model: not chosen per model), so every run
is deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_CROWD, SMALL_DRAWS, SMALL_FEATURES, SMALL_NUTS
from crowdzoo.inference import criticism as C
from crowdzoo.models import REGISTRY, DawidSkene

import crowdzoo

# the registry-wide small crowd and NUTS setting (conftest): compiled once, shared with the
# conformance tests of test_fit.py
SBC_SETTINGS = dict(n_reps=40, **SMALL_CROWD, **SMALL_NUTS, num_samples=SMALL_DRAWS, thin=4,
                    n_features=SMALL_FEATURES, n_bins=5, alpha=0.01, seed=0)

SBC_MODELS = sorted(name for name, cls in REGISTRY.items()
                    if "nuts" in cls.methods and cls.proper_likelihood)
PSEUDO_MODELS = sorted(name for name, cls in REGISTRY.items() if not cls.proper_likelihood)


class FlippedClassPrior(DawidSkene):
    """A planted bug: the class prior enters the likelihood with the wrong sign."""

    name = "dawid_skene_flipped_prior"

    def log_terms(self, params, data, labels):
        log_prior, log_emit = super().log_terms(params, data, labels)
        return -log_prior, log_emit


# --- SBC -------------------------------------------------------------------------------
def test_rank_statistics_and_chi2():
    true = np.array([0.5, 2.0, -1.0])
    draws = np.array([[0.1, 0.6, 0.7], [1.0, 3.0, 2.5], [0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(C.rank_statistics(true, draws), [1, 1, 0])
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 101, size=400)
    assert C.chi2_uniformity(uniform, 100, 5)[2] > 1e-3
    piled = np.r_[np.zeros(200, int), np.full(200, 100)]  # a U: posterior too narrow
    assert C.chi2_uniformity(piled, 100, 5)[2] < 1e-12
    with pytest.raises(ValueError, match="ranks must lie"):
        C.chi2_uniformity([101], 100)


def test_simulate_batch_is_the_models_own_simulation():
    sims = C.simulate_batch("dawid_skene", 3, 15, 4, 3, 2, seed=5)
    for r, sim in enumerate(sims):
        ref = crowdzoo.data.simulate("dawid_skene", 15, 4, 3, 2, seed=5 + r)
        np.testing.assert_array_equal(sim.annotations.label, ref.annotations.label)
        np.testing.assert_array_equal(sim.annotations.worker, ref.annotations.worker)
        for k in ("pi", "confusion"):
            np.testing.assert_allclose(sim.params[k], ref.params[k], rtol=1e-6)
        assert list(sim.true_labels) == list(ref.true_labels)
    # and distinct replications differ
    assert not np.array_equal(sims[0].annotations.label, sims[1].annotations.label)


@pytest.mark.slow
@pytest.mark.parametrize("name", SBC_MODELS)
def test_sbc_nuts_passes(name):
    result = C.run_sbc(name, **SBC_SETTINGS)
    table = result.table()
    for ranks in result.ranks.values():
        assert ranks.min() >= 0 and ranks.max() <= result.n_draws
    assert result.passed, f"SBC rejects {name} (adjusted p={result.adjusted_p_value:.2g}):\n{table}"
    if name in ("biased_worker", "biased_worker_words"):  # flat two-class prior: symmetric
        # about half the true parameters sit in the mirror labelling and are relabelled
        assert 0 < result.diagnostics["relabelled_truths"] < SBC_SETTINGS["n_reps"]
    else:
        assert "relabelled_truths" not in result.diagnostics


@pytest.mark.parametrize("name", PSEUDO_MODELS)
def test_sbc_refuses_pseudo_likelihoods(name):
    with pytest.raises(ValueError, match="not a normalized distribution"):
        C.run_sbc(name, n_reps=2)


@pytest.mark.slow
def test_sbc_fails_on_planted_bug():
    result = C.run_sbc("dawid_skene", fit_model=FlippedClassPrior(), **SBC_SETTINGS)
    assert not result.passed
    assert result.adjusted_p_value < 1e-6
    # the class prior's rank is where the bug shows (ranks pushed to the far end)
    assert result.table().loc["pi[0]", "p_value"] < 1e-6


def test_sbc_svi_runs():
    result = C.run_sbc("one_coin", method="svi", n_reps=4, n_tasks=10, n_workers=3,
                       answers_per_task=2, svi_steps=200, num_samples=50, seed=3)
    assert result.method == "svi" and result.n_draws == 50
    assert set(result.table().columns) >= {"chi2", "p_value", "rejected"}


def test_sbc_quantities_pick_declared_axes():
    from crowdzoo.models.core import crowd_data

    data = crowd_data(crowdzoo.data.simulate("dawid_skene", 6, 5, 3, 2, seed=0).annotations)
    labels = [q[0] for q in C.sbc_quantities(DawidSkene(), data, 2, 1)]
    # pi: 2 free entries of 3; confusion: 2 workers x 3 rows x 2 free entries; one label
    assert labels[:2] == ["pi[0]", "pi[1]"]
    assert len(labels) == 2 + 2 * 3 * 2 + 1 and labels[-1] == "z[0]"
    community = [q[1] for q in C.sbc_quantities(crowdzoo.get_model("community"), data, 2, 1)]
    assert "confusion" in community
    assert not {"community_prob", "community_confusion"} & set(community)


def test_needs_features_is_declared():
    assert not C.needs_features(DawidSkene())
    assert C.needs_features("raykar") and C.needs_features("yan")
    assert {n for n in REGISTRY if C.needs_features(n)} == {
        n for n, cls in REGISTRY.items() if cls.needs_features}


# --- PPC -------------------------------------------------------------------------------
def test_answer_statistics_by_hand():
    # task 0: labels 0,0,1 (majority 0, agreement 2); task 1: 1,0 (tie; agreement 1)
    label = np.array([0, 0, 1, 1, 0])
    task = np.array([0, 0, 0, 1, 1])
    worker = np.array([0, 1, 2, 0, 1])
    s = C.answer_statistics(label, task, worker, 2, 3, 2)
    np.testing.assert_array_equal(s["counts"], [[2, 1], [1, 1]])
    np.testing.assert_array_equal(s["agreement"], [2, 1])
    np.testing.assert_allclose(s["worker_agreement"], [(1 + 0.5) / 2, (1 + 0.5) / 2, 0.0])
    np.testing.assert_allclose(s["mean_agreement"], (2 / 3 + 1 / 2) / 2)
    np.testing.assert_allclose(s["class_share"], [0.6, 0.4])
    assert C.ppp_value(1.0, np.array([0.0, 1.0, 2.0, 3.0])) == pytest.approx(0.625)


def _difficulty_crowd(seed=0, n_tasks=300, n_workers=20, apt=8):
    """Half the items easy (every worker 95% right), half hard (coin flips): not Dawid-Skene."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_tasks)
    rows = []
    for t in range(n_tasks):
        acc = 0.95 if t % 2 == 0 else 0.5
        for w in rng.choice(n_workers, apt, replace=False):
            y = truth[t] if rng.random() < acc else 1 - truth[t]
            rows.append((f"t{t}", f"w{w}", int(y)))
    return crowdzoo.Annotations.from_frame(pd.DataFrame(rows, columns=["task", "worker",
                                                                        "label"]))


def test_ppc_accepts_the_true_model_and_rejects_a_wrong_one():
    # DS data: DS reproduces its vote histogram
    sim = crowdzoo.data.simulate("dawid_skene", 300, 20, 2, 8, seed=11)
    ok = C.ppc(crowdzoo.fit("dawid_skene", sim.annotations), n_draws=200, seed=0)
    assert 0.01 < ok.summary()["histogram_ppp"] < 0.99
    assert 0.01 < ok.overall().loc["sd over items of agreement", "ppp"] < 0.99
    # heterogeneous item difficulty: DS cannot reproduce the spread of agreement over items
    bad = C.ppc(crowdzoo.fit("dawid_skene", _difficulty_crowd()), n_draws=200, seed=0)
    assert bad.summary()["histogram_ppp"] < 0.005
    assert bad.overall().loc["sd over items of agreement", "ppp"] < 0.005
    assert bad.vote_histogram().shape[0] == 9
    assert set(bad.workers().columns) == {"observed", "replicated_mean", "low", "high", "ppp"}


def test_ppc_prior_latent_and_errors(demo):
    fit = crowdzoo.fit("one_coin", demo)
    y = C.posterior_predictive(fit, n_draws=7, latent="prior", seed=2)
    assert y.shape == (7, demo.n_answers) and y.min() >= 0 and y.max() < demo.n_classes
    np.testing.assert_array_equal(y, C.posterior_predictive(fit, 7, latent="prior", seed=2))
    with pytest.raises(ValueError, match="latent"):
        C.posterior_predictive(fit, latent="nope")
    with pytest.raises(ValueError, match="no generative model"):
        C.ppc(crowdzoo.fit("majority_vote", demo))


# --- calibration and LOO ---------------------------------------------------------------
def test_ece_and_log_loss_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    gold = np.array([0, 1, 1, -1])  # last task has no gold
    # bins of 0.1: conf 0.9 (hit) -> |1-0.9|; 0.8 (miss) -> |0-0.8|; 0.7 (hit) -> |1-0.7|
    assert C.expected_calibration_error(probs, gold) == pytest.approx((0.1 + 0.8 + 0.3) / 3)
    assert C.log_loss(probs, gold) == pytest.approx(-np.log([0.9, 0.2, 0.7]).mean())
    curve = C.calibration_curve(probs, gold)
    assert curve["count"].sum() == 3
    with pytest.raises(ValueError, match="no gold"):
        C.log_loss(probs, np.full(4, -1))


@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_compare_prefers_the_generating_model():  # short chains: convergence is not its point
    # strongly class-dependent workers: one accuracy per worker cannot describe them
    rng = np.random.default_rng(3)
    W = 12
    conf = np.empty((W, 2, 2))
    for w in range(W):
        sens, spec = rng.uniform(0.9, 0.98), rng.uniform(0.4, 0.6)
        conf[w] = [[spec, 1 - spec], [1 - sens, sens]]
    sim = crowdzoo.data.simulate("dawid_skene", 100, W, 2, 5, seed=4,
                                 params={"pi": np.array([0.5, 0.5]), "confusion": conf})
    ann = sim.annotations.with_gold(sim.true_labels)
    res = C.compare_models(ann, ["one_coin", "dawid_skene", "majority_vote"], method="nuts",
                           num_warmup=100, num_samples=150, num_chains=1)
    t = res.table
    assert list(t.index[:2]) == ["dawid_skene", "one_coin"]  # best LOO first
    assert t.loc["one_coin", "elpd_diff"] > 2 * t.loc["one_coin", "dse"]
    assert t.loc["majority_vote", "method"] == "map" and np.isnan(t.loc["majority_vote",
                                                                         "elpd_loo"])
    for name in ("dawid_skene", "one_coin"):
        assert t.loc[name, ["k_good", "k_ok", "k_bad"]].sum() == ann.n_tasks
        assert 0 <= t.loc[name, "ece"] <= 1 and t.loc[name, "log_loss"] > 0
    assert 0.5 < t.loc["dawid_skene", "accuracy"] <= 1
    assert "+-" in res.to_string()
    # LOO is timed apart from the fit (minutes for irt_3pl's quadrature on rte)
    assert t.loc["dawid_skene", "loo_seconds"] > 0 and np.isnan(t.loc["majority_vote",
                                                                       "loo_seconds"])
    assert "loo_s" in res.to_string()
    # a model without LOO (majority vote) shows "-" in every LOO column, never "nan"
    mv = next(ln for ln in res.to_string().splitlines() if ln.startswith("majority_vote"))
    assert "nan" not in mv.lower() and mv.split()[1:5] == ["-", "-", "-", "-"], mv
    from crowdzoo.inference import criticism_plots as P

    for fig in (P.plot_compare(res.loo), *(P.plot_pareto_k(e, n) for n, e in res.loo.items()),
                P.plot_calibration(res.fits)):
        assert fig.axes
    # the elpd plot draws the table's differences unrounded (ArviZ's "auto" rounding drew
    # rte's 965.4 +- 49.9 at 1000)
    fig = P.plot_compare(res.loo)
    drawn = np.concatenate([np.asarray(c.get_offsets())[:, 0] for a in fig.axes
                            for c in a.collections])
    np.testing.assert_allclose(np.sort(-drawn), np.sort(t["elpd_diff"].dropna()), atol=1e-6)
    # more fits than can be told apart overlaid: one reliability panel each
    many = {f"m{i}": res.fits["dawid_skene"] for i in range(P.MAX_OVERLAID_FITS + 2)}
    grid = P.plot_calibration(many)
    assert sum(a.get_visible() for a in grid.axes) == len(many)
    assert grid.axes[0].get_title().startswith("m0 (nuts)\nECE ")
    with pytest.raises(ValueError, match="needs posterior draws"):
        C.loo(res.fits["majority_vote"])


def test_plots_return_figures():
    from crowdzoo.inference import criticism_plots as P
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    result = C.SBCResult("m", "nuts", {"a": rng.integers(0, 21, 30), "b": rng.integers(0, 21,
                         30)}, 20, 0.01, 5, {"n_reps": 30}, {})
    assert isinstance(P.plot_sbc_ranks(result), Figure)
    assert isinstance(P.plot_sbc_ecdf(result), Figure)
    chk = C.ppc(crowdzoo.fit("one_coin", crowdzoo.data.load_demo()), n_draws=20)
    assert isinstance(P.plot_ppc_histogram(chk), Figure)
    assert isinstance(P.plot_ppc_histogram(chk, label="agreement"), Figure)
    assert isinstance(P.plot_ppc_workers(chk), Figure)


# --- the command -----------------------------------------------------------------------
def test_compare_command_writes_table(tmp_path, capsys):
    sim = crowdzoo.data.simulate("one_coin", 60, 8, 2, 3, seed=1)
    answers = tmp_path / "answers.csv"
    gold = tmp_path / "gold.csv"
    sim.annotations.to_frame().to_csv(answers, index=False)
    sim.true_labels.rename("label").reset_index().to_csv(gold, index=False)
    from crowdzoo.cli import main

    code = main(["compare", str(answers), "--models", "one_coin,majority_vote", "--gold",
                 str(gold), "--method", "map", "--out", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    assert "one_coin" in out and "accuracy" in out and "ece" in out
    # a line per model as it finishes (a long `--models all` run shows where it is)
    lines = out.splitlines()
    assert any(line.startswith("[1/2] one_coin (map) ") and "accuracy 0." in line
               for line in lines), out
    assert any(line.startswith("[2/2] majority_vote (map) ") for line in lines), out
    table = pd.read_csv(tmp_path / "out" / "compare.csv", index_col=0)
    assert set(table.index) == {"one_coin", "majority_vote"}
    assert (tmp_path / "out" / "calibration.png").exists()


@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_loo_survives_tied_tail_values(monkeypatch):
    """A task every draw explains alike has tied log-likelihood tails: ArviZ's PSIS raises
    "All tail values are the same" (it stopped `crowdzoo compare --models all` on labelme);
    compare's LOO breaks the ties far below any elpd difference and says so."""
    import arviz as az
    from crowdzoo.inference import compare as CMP

    sim = crowdzoo.data.simulate("one_coin", n_tasks=30, n_workers=5, n_classes=2,
                                 answers_per_task=3, seed=0)
    fit = crowdzoo.fit("one_coin", sim.annotations, method="svi", num_steps=100,
                       num_draws=50, progress=False)
    real = fit.to_arviz

    def tied(**kwargs):
        dt = real(**kwargs)
        ll = dt["log_likelihood"]["answers"]
        values = ll.values.copy()
        values[..., 0] = -0.5
        dt["log_likelihood"]["answers"] = ll.copy(data=values)
        return dt

    with pytest.raises(ValueError, match="All tail values are the same"):
        az.loo(tied(posterior_predictive=False), var_name="answers")
    monkeypatch.setattr(fit, "to_arviz", tied)
    elpd = CMP.loo(fit)
    assert elpd.tie_break and np.isfinite(elpd.elpd)
    assert abs(float(np.ravel(elpd.elpd_i)[0]) + 0.5) < 1e-6


def test_compare_notes_explain_the_flags():
    """The lines under `crowdzoo compare`'s table: Pareto k counted per model (never a sum
    over models, which counts a task once per model), and what to do about '!'."""
    import argparse

    from crowdzoo.cli import _compare_notes

    table = pd.DataFrame({"k_bad": [8.0, 0.0, 4.0, np.nan],
                          "converged": [False, True, False, True]},
                         index=["a", "b", "c", "majority_vote"])
    args = argparse.Namespace(method="nuts", num_warmup=200, num_samples=200)
    notes = _compare_notes(table, True, args)
    assert notes[0].startswith("Pareto k > 0.7 in 2 of 3 models (column k>0.7, marked ?)")
    assert "12" not in notes[0]  # 8 + 4 would count tasks across models
    assert notes[1].startswith("2 of 4 models not converged (marked !): fit longer, e.g. "
                               "--num-warmup 1000 --num-samples 1000")
    table["k_bad"] = [0.0, 0.0, 0.0, np.nan]
    table["converged"] = True
    assert _compare_notes(table, True, args) == [
        "All Pareto k <= 0.7: the LOO estimates are reliable."]
    table["loo_terms"] = ["plain, 3 moment-matched", "plain", "integrated, 1 moment-matched",
                          np.nan]
    assert _compare_notes(table, True, args)[1] == (
        "Moment matching (no refit) repaired 4 task term(s) that had Pareto k > 0.7 in 2 "
        "model(s); column loo_terms of compare.csv says which.")
    assert _compare_notes(table, False, argparse.Namespace(method="map")) == []


def test_vote_agreement_flags_a_model_whose_labels_leave_the_vote(demo):
    """`vote_agreement` by hand on the demo crowd: majority vote agrees with itself on every
    task, Dawid-Skene on most; a fit whose task posterior is shifted by one class agrees on
    few, and compare's note names it (and only it) when it is 0.2 below the others' median."""
    from crowdzoo.inference.compare import CompareResult, _vote_notes, vote_agreement

    mv = crowdzoo.fit("majority_vote", demo)
    ds = crowdzoo.fit("dawid_skene", demo, use_gold=False)
    assert vote_agreement(mv) == 1.0
    a_ds = vote_agreement(ds)
    frame = demo.to_frame()
    votes = pd.crosstab(frame["task"], frame["label"])
    plural = votes.eq(votes.max(axis=1), axis=0)
    by_hand = np.mean([plural.loc[t, lab] for t, lab in ds.labels().items()])
    assert a_ds == pytest.approx(by_hand) and 0.8 < a_ds < 1.0

    class Shifted:  # the same fit with its classes rotated by one
        data = ds.data

        def task_posterior(self):
            post = ds.task_posterior()
            return pd.DataFrame(np.roll(post.to_numpy(), 1, axis=1), index=post.index)

    a_bad = vote_agreement(Shifted())
    assert a_bad < 0.5
    t = pd.DataFrame({"vote_agreement": [a_ds, a_bad, a_ds - 0.05, 1.0]},
                     index=["dawid_skene", "shifted", "other", "majority_vote"])
    notes = _vote_notes(t)
    assert len(notes) == 1 and notes[0].startswith(f"shifted: its labels agree with the "
                                                   f"plurality vote on {a_bad:.0%} of tasks")
    assert "votes" in CompareResult(t.assign(method="map", seconds=1.0), {}, {}).to_string()
    assert _vote_notes(t.drop(index="shifted")) == []


def test_compare_progress_line(capsys):
    from crowdzoo.cli import _compare_progress

    _compare_progress(3, 12, {"model": "irt_3pl", "method": "nuts", "seconds": 59.2,
                              "loo_seconds": 880.4, "elpd_loo": -4293.0, "se": 59.6,
                              "k_bad": 4.0, "r_hat": 1.056, "accuracy": 0.92375,
                              "converged": False, "problems": "max r_hat 1.056 > 1.01"})
    _compare_progress(12, 12, {"model": "majority_vote", "method": "map", "seconds": 0.1,
                               "loo_seconds": np.nan, "elpd_loo": np.nan, "r_hat": np.nan,
                               "accuracy": 0.9, "converged": True})
    assert capsys.readouterr().out.splitlines() == [
        "[ 3/12] irt_3pl (nuts) 59.2 s + LOO 880.4 s, elpd_loo -4293.0 +- 59.6, 4 task(s) "
        "with Pareto k > 0.7, max r_hat 1.056, accuracy 0.9237, NOT CONVERGED (max r_hat "
        "1.056 > 1.01)",
        "[12/12] majority_vote (map) 0.1 s, accuracy 0.9000"]
