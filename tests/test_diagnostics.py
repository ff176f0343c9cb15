"""Diagnostics that speak up (issue 10): convergence warnings, the convergence table, the
ArviZ tree's names, MAP's clear errors, the NUTS start off the boundary, community
relabelling, compare's convergence flag and the default of progress bars."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
from crowdzoo.data import simulate
from crowdzoo.inference.diagnostics import ConvergenceWarning
from crowdzoo.inference.progress import default_progress
from crowdzoo.models import Community

import crowdzoo


@pytest.fixture(scope="module")
def demo_map(demo):
    return crowdzoo.fit("dawid_skene", demo)


def test_convergence_warning_is_exported_once():
    assert crowdzoo.ConvergenceWarning is ConvergenceWarning
    assert crowdzoo.inference.ConvergenceWarning is ConvergenceWarning


def test_short_nuts_run_warns_naming_parameters(demo):
    with pytest.warns(ConvergenceWarning, match=r"has not converged.*(r_hat|ESS).*\[") as rec:
        fit = crowdzoo.fit("dawid_skene", demo, method="nuts", num_warmup=10, num_samples=20,
                           progress=False)
    assert len([w for w in rec if w.category is ConvergenceWarning]) == 1
    message = str(rec[0].message)
    assert "run longer chains" in message and "fit.convergence()" in message
    table = fit.convergence()
    assert table.attrs["converged"] is False and table.attrs["problems"]
    assert not table["ok"].all() and {"r_hat", "ess_bulk", "ess_tail", "worst"} <= set(table)
    assert table.attrs["max_r_hat"] == pytest.approx(table["r_hat"].max())


def test_good_nuts_run_is_quiet():
    sim = simulate("one_coin", n_tasks=200, n_workers=10, n_classes=3, answers_per_task=5,
                   seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = crowdzoo.fit("one_coin", sim.annotations, method="nuts", seed=1, progress=False)
    attrs = fit.convergence().attrs
    assert attrs["converged"] and attrs["max_r_hat"] <= 1.01 and attrs["divergences"] == 0
    assert attrs["min_ess_bulk"] >= 400 and attrs["min_ess_tail"] >= 400


def test_short_svi_run_warns(demo):
    with pytest.warns(ConvergenceWarning, match="ELBO was still rising.*num_steps"):
        crowdzoo.fit("dawid_skene", demo, method="svi", num_steps=200, num_draws=20,
                     progress=False)


def test_map_tree_says_loo_needs_draws(demo_map):
    import arviz as az

    dt = demo_map.to_arviz()
    with pytest.raises(ValueError, match=r"LOO needs posterior draws: fit with "
                                         r"method='nuts' or 'svi'"):
        az.loo(dt)
    assert "point_estimate" in dt["posterior"].attrs
    summary = az.summary(dt)  # a single draw: the point, no NaN in its mean
    assert np.isfinite(summary["mean"].to_numpy(float)).all()


def test_demo_class_names_are_coordinates(demo_map):
    import arviz as az

    dt = demo_map.to_arviz()
    post = dt["posterior"]
    assert list(post["true_class"].values) == ["cat", "dog", "fox"]
    assert list(post["answer_class"].values) == ["cat", "dog", "fox"]
    assert set(np.unique(dt["observed_data"]["answer_label"].values)) == {"cat", "dog", "fox"}
    # az.summary stacks along a dim it calls "label": the tree has none (it used to raise)
    table = az.summary(dt, var_names=["confusion"], kind="stats")
    assert "confusion[w0000, cat, dog]" in table.index


@pytest.mark.slow
def test_nuts_starts_off_the_boundary(monkeypatch):
    """labelme (sparse: 1-7 answers per task, K = 8): the biased worker's MAP has confusion
    entries of ~1e-12 (answers a worker never gave), minus infinity for NUTS. Started there
    every transition diverged and the chains never moved, so PSIS-LOO raised "All tail
    values are the same" (``crowdzoo compare`` on labelme / music_genre)."""
    import arviz as az
    import crowdzoo.inference.runner as runner
    from conftest import require_dataset

    data = require_dataset("labelme")
    opts = dict(method="nuts", num_warmup=60, num_samples=60, num_chains=2, progress=False,
                use_gold=False)
    monkeypatch.setattr(runner, "interior_point", lambda model, params, data: params)
    with pytest.warns(ConvergenceWarning, match="120 of 120 transitions diverged"):
        stuck = crowdzoo.fit("biased_worker", data, **opts)
    assert stuck.convergence().attrs["divergences"] == 120
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 60 draws: not converged
        fit = crowdzoo.fit("biased_worker", data, **opts)
    assert fit.convergence().attrs["divergences"] == 0
    ll = fit.log_likelihood().reshape(-1, data.n_tasks)
    assert (ll.std(0) > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k of 120 draws
        elpd = az.loo(fit.to_arviz(posterior_predictive=False))
    assert np.isfinite(float(elpd.elpd))


def test_interior_point_keeps_the_simplex():
    from crowdzoo.inference.map import interior_point
    from crowdzoo.models import crowd_data, get_model

    sim = simulate("dawid_skene", n_tasks=20, n_workers=4, n_classes=3, answers_per_task=2,
                   seed=0)
    model = get_model("dawid_skene")
    data = crowd_data(sim.annotations)
    conf = np.zeros((4, 3, 3), np.float32)
    conf[..., 0] = 1.0
    out = interior_point(model, {"pi": np.array([1.0, 0.0, 0.0]), "confusion": conf}, data)
    for v in out.values():
        v = np.asarray(v)
        np.testing.assert_allclose(v.sum(-1), 1.0, atol=1e-6)
        assert v.min() > 1e-4 and v.max() < 1.0


def test_community_relabelling_undoes_a_permutation():
    rng = np.random.default_rng(0)
    M, K = 3, 3
    base = np.stack([np.eye(K) * 0.8 + 0.2 / K, np.full((K, K), 1 / K),
                     np.roll(np.eye(K), 1, 1) * 0.8 + 0.2 / K])
    draws = base[None, None] + rng.normal(0, 0.01, (4, 50, M, K, K))
    prob = np.broadcast_to([0.5, 0.3, 0.2], (4, 50, M)).copy()
    samples = {"community_confusion": draws.copy(), "community_prob": prob.copy(),
               "pi": rng.dirichlet(np.ones(K), (4, 50))}
    perm = [2, 0, 1]
    samples["community_confusion"][1] = draws[1][:, perm]  # chain 1 in another labelling
    samples["community_prob"][1] = prob[1][:, perm]
    samples["community_confusion"][3, 10:20] = draws[3, 10:20][:, [1, 0, 2]]  # switch in a chain
    samples["community_prob"][3, 10:20] = prob[3, 10:20][:, [1, 0, 2]]
    before = {k: v.copy() for k, v in samples.items()}
    out = Community(n_communities=M).relabel_draws(samples)
    np.testing.assert_allclose(out["community_confusion"], draws)
    np.testing.assert_allclose(out["community_prob"][:, :, :], prob)
    for k in samples:  # the input is not modified
        np.testing.assert_array_equal(samples[k], before[k])


def test_fit_reports_the_identified_posterior_of_a_symmetric_model():
    """biased_worker with two classes (flat prior): a draw in the mirror mode (every worker
    adversarial, every label flipped) is put back in the honest labelling, the task
    posterior is that of the honest mode, and the Fit says how many draws it relabelled.
    Dawid-Skene (a prior that favours honest workers) leaves the same draws alone."""
    from crowdzoo.inference.result import Fit
    from crowdzoo.models import crowd_data, get_model

    sim = simulate("dawid_skene", n_tasks=30, n_workers=5, n_classes=2, answers_per_task=4,
                   seed=2)
    data = crowd_data(sim.annotations)
    rng = np.random.default_rng(0)
    conf = np.empty((2, 6, 5, 2, 2))
    conf[..., 0, 0] = rng.uniform(0.7, 0.9, (2, 6, 5))
    conf[..., 1, 1] = rng.uniform(0.7, 0.9, (2, 6, 5))
    conf[..., 0, 1], conf[..., 1, 0] = 1 - conf[..., 0, 0], 1 - conf[..., 1, 1]
    pi = np.stack([rng.uniform(0.3, 0.7, (2, 6))] * 2, -1)
    pi[..., 1] = 1 - pi[..., 0]
    honest = {"pi": pi, "confusion": conf}
    mixed = {k: v.copy() for k, v in honest.items()}
    mixed["pi"][1, :3] = pi[1, :3, ::-1]
    mixed["confusion"][1, :3] = conf[1, :3, :, ::-1, :]  # 3 of 12 draws in the mirror mode
    model = get_model("biased_worker")
    before = {k: v.copy() for k, v in mixed.items()}
    fit = Fit(model, "nuts", sim.annotations, data, samples=mixed)
    for k in honest:
        np.testing.assert_array_equal(fit.samples[k], honest[k])
        np.testing.assert_array_equal(mixed[k], before[k])  # the input is not modified
    assert fit.diagnostics["relabelled_draws"] == pytest.approx(0.25)
    from crowdzoo.cli import _describe_fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 6 draws per chain: not converged, and says so
        assert "25% of the draws were in the mirror labelling" in _describe_fit(fit)
    reference = Fit(model, "nuts", sim.annotations, data, samples=honest)
    np.testing.assert_allclose(fit.task_posterior().to_numpy(),
                               reference.task_posterior().to_numpy(), rtol=1e-6)
    assert reference.diagnostics["relabelled_draws"] == 0.0  # said, even when none moved
    ds = Fit(get_model("dawid_skene"), "nuts", sim.annotations, data, samples=mixed)
    np.testing.assert_array_equal(ds.samples["confusion"], mixed["confusion"])
    assert "relabelled_draws" not in ds.diagnostics


def test_compare_flags_a_model_that_has_not_converged():
    from crowdzoo.inference.compare import compare_models

    sim = simulate("one_coin", n_tasks=40, n_workers=6, n_classes=2, answers_per_task=3,
                   seed=1)
    with pytest.warns(ConvergenceWarning, match="not converged"):
        res = compare_models(sim.annotations, ["one_coin", "dawid_skene"], method="nuts",
                             num_warmup=10, num_samples=20, num_chains=2)
    t = res.table
    assert {"r_hat", "ess", "divergences", "converged"} <= set(t.columns)
    assert not t["converged"].all() and t["elpd_loo"].notna().all()  # ranked, flagged
    text = res.to_string()
    assert "r_hat" in text and "!" in text and "not converged" in text


def test_default_progress(monkeypatch):
    monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: False))
    monkeypatch.setitem(sys.modules, "IPython", None)
    assert default_progress() is False  # a pipe: no bars
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: shell))
    assert default_progress() is True  # a Jupyter kernel: stderr is no TTY, bars all the same
