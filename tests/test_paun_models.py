"""Paun et al.'s and rater's models: known parameters recovered from data each model simulated
(stated tolerances), and the item-effect quadrature checked against a fine integral.

Exactness (the hand-marginalized likelihood equals NumPyro's enumeration) is in
tests/test_exactness.py; conformance and SBC in the registry-wide tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from crowdzoo.data import simulate
from crowdzoo.models import crowd_data, get_model
from crowdzoo.models.item_difficulty import normal_nodes

import crowdzoo


def _accuracy(fit, sim):
    return float((fit.labels() == sim.true_labels.reindex(fit.labels().index)).mean())


def test_class_conditional_recovers_accuracy_per_worker_and_class():
    rng = np.random.default_rng(0)
    acc = rng.uniform(0.55, 0.95, size=(8, 3))
    sim = simulate("class_conditional_dawid_skene", n_tasks=600, n_workers=8, n_classes=3,
                   answers_per_task=6, params={"accuracy": acc, "pi": np.array([.4, .35, .25])},
                   seed=1)
    fit = crowdzoo.fit("class_conditional_dawid_skene", sim.annotations, progress=False)
    err = np.abs(fit.params["accuracy"] - acc)
    assert err.mean() < 0.04 and err.max() < 0.12, err
    assert _accuracy(fit, sim) > 0.9


def test_multinomial_recovers_the_pooled_confusion_matrix():
    conf = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.05, 0.25, 0.7]])
    sim = simulate("multinomial", n_tasks=500, n_workers=20, n_classes=3, answers_per_task=5,
                   params={"confusion": conf, "pi": np.array([.5, .3, .2])}, seed=2)
    fit = crowdzoo.fit("multinomial", sim.annotations, progress=False)
    np.testing.assert_allclose(fit.params["confusion"], conf, atol=0.05)
    np.testing.assert_allclose(fit.params["pi"], [.5, .3, .2], atol=0.06)


def test_hierarchical_dawid_skene_recovers_population_and_workers():
    K = 2
    mu = np.array([[2.0, 0.0], [0.0, 1.5]])
    sigma = np.full((K, K), 0.6)
    sim = simulate("hierarchical_dawid_skene", n_tasks=400, n_workers=25, n_classes=K,
                   answers_per_task=6, params={"mu": mu, "sigma": sigma,
                                               "pi": np.array([.6, .4])}, seed=3)
    fit = crowdzoo.fit("hierarchical_dawid_skene", sim.annotations, progress=False)
    model = get_model("hierarchical_dawid_skene")
    data = crowd_data(sim.annotations)
    true_conf = np.exp(np.asarray(model.log_confusion(
        {k: np.asarray(v) for k, v in sim.params.items()})))
    est_conf = np.asarray(model.worker_stats(
        {k: np.asarray(v) for k, v in fit.params.items()}, data)["confusion"])
    diag_err = np.abs(np.diagonal(est_conf - true_conf, axis1=1, axis2=2))
    assert diag_err.mean() < 0.06, diag_err.mean()
    # softmax logits are identified up to a shift per row: compare the contrasts
    est_mu, true_mu = fit.params["mu"], mu
    np.testing.assert_allclose(np.diff(est_mu, axis=1), np.diff(true_mu, axis=1), atol=0.6)
    assert _accuracy(fit, sim) > 0.9


def test_item_difficulty_recovers_class_means_and_spreads():
    eta = np.array([[1.5], [-1.0]])
    chi = np.array([[0.8], [0.5]])
    sim = simulate("item_difficulty", n_tasks=800, n_workers=30, n_classes=2,
                   answers_per_task=8, params={"eta": eta, "chi": chi, "pi": np.array([.5, .5])},
                   seed=4)
    fit = crowdzoo.fit("item_difficulty", sim.annotations, progress=False)
    np.testing.assert_allclose(fit.params["eta"], eta, atol=0.3)
    np.testing.assert_allclose(fit.params["chi"], chi, atol=0.35)
    assert _accuracy(fit, sim) > 0.85


def test_logistic_random_effects_recovers_population_logits():
    zeta = np.array([[1.8], [-1.2]])
    sim = simulate("logistic_random_effects", n_tasks=500, n_workers=20, n_classes=2,
                   answers_per_task=6,
                   params={"zeta": zeta, "omega": np.full((2, 1), 0.5),
                           "chi": np.full((2, 1), 0.6), "pi": np.array([.5, .5])}, seed=5)
    fit = crowdzoo.fit("logistic_random_effects", sim.annotations, progress=False)
    np.testing.assert_allclose(fit.params["zeta"], zeta, atol=0.45)
    assert _accuracy(fit, sim) > 0.85


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_item_effect_nodes_match_the_normal_moments(dim):
    nodes, logw = normal_nodes(dim, 20, 128)
    w = np.exp(logw.astype(np.float64))
    assert abs(w.sum() - 1) < 1e-5
    np.testing.assert_allclose(w @ nodes, 0.0, atol=0.05 if dim > 4 else 1e-5)
    cov = (nodes * w[:, None]).T @ nodes
    np.testing.assert_allclose(cov, np.eye(dim), atol=0.08 if dim > 4 else 1e-4)


def test_item_difficulty_quadrature_equals_a_fine_integral():
    """The per-task integral over the item effect (20 nodes) against a 150-point rule."""
    model = get_model("item_difficulty")
    sim = simulate(model, n_tasks=30, n_workers=10, n_classes=2, answers_per_task=9, seed=6,
                   params={"eta": np.array([[1.0], [-0.5]]), "chi": np.array([[1.5], [1.0]])})
    data = crowd_data(sim.annotations)
    params = {k: np.asarray(v) for k, v in sim.params.items()}
    ours = np.asarray(model.log_terms(params, data, data.label)[0]) - np.log(params["pi"])
    x, w = np.polynomial.hermite_e.hermegauss(150)
    w = w / w.sum()
    labels, task = np.asarray(data.label), np.asarray(data.task)
    for t in range(5):
        y = labels[task == t]
        for k in range(2):
            s = params["eta"][k, 0] + params["chi"][k, 0] * x  # logit of label 0 vs label 1
            logp1 = -np.logaddexp(0, s)
            lik = np.where(y[:, None] == 0, s + logp1, logp1).sum(0)
            fine = np.log(np.sum(w * np.exp(lik)))
            assert abs(ours[t, k] - fine) < 2e-3, (t, k, ours[t, k], fine)


def test_models_all_is_every_model_that_applies(monkeypatch, tmp_path, capsys):
    """``crowdzoo compare --models all``: every registered model the data admit; the others
    are skipped with the model's own reason (fits are stubbed: the point is the selection)."""
    import crowdzoo.inference.compare as C
    from crowdzoo.models import BASELINES, REGISTRY

    from crowdzoo.cli import main

    sim = simulate("dawid_skene", 30, 6, 3, 3, seed=1)  # 3 classes, no features
    ok, skipped = C.applicable_models(sim.annotations)
    assert set(ok) | set(skipped) == set(REGISTRY) | set(BASELINES)
    assert {"raykar", "yan", "difficulty_adaptive"} <= set(skipped)  # need features / binary
    assert {"dawid_skene", "multinomial", "item_difficulty", "majority_vote"} <= set(ok)
    assert "features" in skipped["raykar"] and "binary" in skipped["yan"]

    seen = []
    real = C.compare_models

    def stub(data, names, method="nuts", **kw):
        seen.extend(names)
        return real(data, ["majority_vote"], method="map", seed=kw.get("seed", 0))

    monkeypatch.setattr(C, "compare_models", stub)
    answers = tmp_path / "answers.csv"
    sim.annotations.to_frame().to_csv(answers, index=False)
    assert main(["compare", str(answers), "--models", "all", "--method", "map"]) == 0
    assert seen == ok
    out = capsys.readouterr().out
    assert all(f"skipping {name}:" in out for name in skipped)
    # said in the command line's terms, not the Python API's
    assert "skipping raykar: it learns from task features; pass --features FEATURES.csv" in out
    assert "skipping biased_worker_words: it reads each task's words; pass --texts" in out
    assert "Annotations.from_frame" not in out and "with_words(" not in out
