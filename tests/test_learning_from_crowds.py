"""Learning from crowds with item features: Raykar, Yan, Xu et al. (adaptive / fixed difficulty).

What is shown here:

* every likelihood equals NumPyro's enumeration (explicit ``z`` site, funsor) to 1e-5;
* the hand-written classifier gradient and M-steps match autodiff; Yan's autodiff gradient
  matches finite differences; EM is monotone;
* parameters are recovered from data each model simulates (stated tolerances), NUTS mixes;
* bad inputs get clear errors; ``Fit.predict_proba`` works with and without draws.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
import pytest
from conftest import dense_crowd, prior_draw
from crowdzoo.data import Annotations
from crowdzoo.data.simulate import simulate
from crowdzoo.models import crowd_data
from crowdzoo.models.classifiers import MLP, Logistic
from crowdzoo.models.difficulty import DifficultyAdaptive, DifficultyFixed
from crowdzoo.models.raykar import Raykar
from crowdzoo.models.yan import Yan

import crowdzoo

RAW = Logistic(standardize=False)
T, W, D = 8, 3, 2


def dense(K, seed=0):
    return dense_crowd(K, seed, n_tasks=T, n_workers=W, features=True)


# --- hand-written gradients and M-steps --------------------------------------------------
@pytest.mark.parametrize("K", [2, 4])
def test_classifier_gradient_and_m_step(K):
    rng = np.random.default_rng(K)
    x = jnp.asarray(rng.normal(size=(50, 3)), jnp.float32)
    resp = jnp.asarray(rng.dirichlet(np.ones(K), size=50), jnp.float32)
    clf = Logistic(prior_scale=0.7, bias_scale=2.0)
    n_out = 1 if K == 2 else K
    params = {"weights": jnp.asarray(rng.normal(size=(3, n_out)), jnp.float32),
              "bias": jnp.asarray(rng.normal(size=(n_out,)), jnp.float32)}
    auto = jax.grad(clf.expected_log_posterior)(params, x, resp)
    hand = clf.gradient(params, x, resp)
    np.testing.assert_allclose(hand[0], auto["bias"], atol=1e-4)
    np.testing.assert_allclose(hand[1:], auto["weights"], atol=1e-4)
    # each Newton / Boehning step increases Q, and iterating reaches the stationary point
    q0 = clf.expected_log_posterior(params, x, resp)
    one = clf.m_step(params, x, resp, n_steps=1)
    assert clf.expected_log_posterior(one, x, resp) >= q0 - 1e-4
    best = clf.fit(x, resp, n_steps=200)
    g = jax.grad(clf.expected_log_posterior)(best, x, resp)
    assert max(float(jnp.abs(v).max()) for v in jax.tree.leaves(g)) < 1e-3


@pytest.mark.parametrize("K", [2, 3])
def test_annotator_m_step_is_the_conditional_mode(K):
    """The closed-form annotator M-step zeroes the autodiff gradient of Q (+ log prior)."""
    ann, labels, x = dense(K, seed=5)
    data = crowd_data(ann)
    model = Raykar(classifier=RAW)
    resp = jnp.asarray(np.random.default_rng(1).dirichlet(np.ones(K), size=T), jnp.float32)
    new = model.annotator_m_step(resp, data)

    def q(ann_params):
        params = {**prior_draw(model, data, 0), **ann_params}
        _, le = model.log_terms(params, data, data.label)
        lp = numpyro.infer.util.log_density(model.sample_params, (data,), {}, params)[0]
        return (resp[data.task] * le).sum() + lp

    if K == 2:
        g = jax.grad(q)(new)
        assert max(float(jnp.abs(v).max()) for v in g.values()) < 1e-3
    else:  # on the simplex: the gradient is constant along each row (Lagrange condition)
        g = jax.grad(q)(new)["confusion"]
        spread = g.max(-1) - g.min(-1)
        assert float(spread.max()) < 1e-3


def test_yan_autodiff_gradient_matches_finite_differences():
    model = Yan(classifier=RAW)
    ann, _, _ = dense(2, seed=7)
    data = crowd_data(ann)
    params = prior_draw(model, data, 3)
    from crowdzoo.inference.map import log_posterior

    f = lambda p: log_posterior(model, p, data)  # noqa: E731
    grad = jax.grad(f)(params)
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = {k: jnp.asarray(rng.normal(size=np.shape(v)), jnp.float32)
                     for k, v in params.items()}
        h = 1e-2
        plus = {k: params[k] + h * direction[k] for k in params}
        minus = {k: params[k] - h * direction[k] for k in params}
        fd = (float(f(plus)) - float(f(minus))) / (2 * h)
        ad = sum(float((grad[k] * direction[k]).sum()) for k in params)
        assert abs(fd - ad) < 2e-2 * max(1.0, abs(ad))


# --- recovery on simulated data -----------------------------------------------------------
@pytest.fixture(scope="module")
def features():
    return np.random.default_rng(0).normal(size=(800, 2))


def test_raykar_binary_recovery_and_monotone_em(features):
    truth = {"weights": np.array([[2.0], [-1.0]]), "bias": np.array([0.5]),
             "sensitivity": np.array([0.9, 0.8, 0.7, 0.6, 0.85]),
             "specificity": np.array([0.8, 0.7, 0.9, 0.65, 0.75])}
    model = Raykar(classifier=RAW)
    sim = simulate(model, n_tasks=800, n_workers=5, n_classes=2, answers_per_task=5,
                   features=features, params=truth, seed=1)
    fit = crowdzoo.fit(model, sim.annotations, accelerate=False)  # plain EM: monotone
    assert fit.diagnostics["algorithm"] == "em" and fit.diagnostics["converged"]
    assert np.all(np.diff(fit.loss_history) > -1e-3 * np.abs(fit.loss_history[1:]).max() * 1e-3)
    np.testing.assert_allclose(fit.params["weights"], truth["weights"], atol=0.35)
    np.testing.assert_allclose(fit.params["sensitivity"], truth["sensitivity"], atol=0.07)
    np.testing.assert_allclose(fit.params["specificity"], truth["specificity"], atol=0.07)
    # predict_proba: the classifier, aligned by column names
    probs = fit.predict_proba(pd.DataFrame(features[:5, ::-1], columns=["x1", "x0"]))
    expect = 1 / (1 + np.exp(-(features[:5] @ fit.params["weights"][:, 0] + fit.params["bias"])))
    np.testing.assert_allclose(probs[1].to_numpy(), expect, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        fit.predict_proba(features[:5, :1])


def test_raykar_multiclass_recovery(features):
    K = 4
    Wt = np.array([[3.0, -3.0, 0.0, 0.0], [0.0, 0.0, 3.0, -3.0]])
    model = Raykar(classifier=Logistic(prior_scale=3.0, standardize=False), newton_steps=10)
    sim = simulate(model, n_tasks=800, n_workers=6, n_classes=K, answers_per_task=4,
                   features=features, params={"weights": Wt, "bias": np.zeros(K)}, seed=2)
    fit = crowdzoo.fit(model, sim.annotations)
    centred = fit.params["weights"] - fit.params["weights"].mean(1, keepdims=True)
    np.testing.assert_allclose(centred, Wt - Wt.mean(1, keepdims=True), atol=0.6)
    err = np.abs(fit.params["confusion"] - sim.params["confusion"])
    assert err.mean() < 0.05 and err.max() < 0.2


def test_yan_recovery(features):
    truth = {"weights": np.array([[2.0], [-1.0]]), "bias": np.array([0.0]),
             "expertise_weights": np.array([[2.0, 0], [0, 2], [-2, 0], [0, 0], [1, 1]]),
             "expertise_offset": np.array([-1.0, -1, -1, -2, 0])}
    model = Yan(classifier=RAW)
    sim = simulate(model, n_tasks=800, n_workers=5, n_classes=2, answers_per_task=5,
                   features=features, params=truth, seed=3)
    fit = crowdzoo.fit(model, sim.annotations)
    np.testing.assert_allclose(fit.params["weights"], truth["weights"], atol=0.4)
    np.testing.assert_allclose(fit.params["expertise_weights"], truth["expertise_weights"],
                               atol=0.45)
    np.testing.assert_allclose(fit.params["expertise_offset"], truth["expertise_offset"],
                               atol=0.45)


def test_difficulty_recovery_and_init(features):
    sens, spec = np.array([0.9, 0.85, 0.8, 0.75, 0.85]), np.array([0.8, 0.85, 0.9, 0.8, 0.75])
    logit = lambda v: np.log(v / (1 - v))  # noqa: E731
    truth = {"weights": np.array([[2.0], [2.0]]), "bias": np.array([0.0]),
             "lambda_sensitivity": 4 * logit(sens), "lambda_specificity": 4 * logit(spec)}
    model = DifficultyAdaptive(classifier=RAW)
    sim = simulate(model, n_tasks=800, n_workers=5, n_classes=2, answers_per_task=5,
                   features=features, params=truth, seed=4)
    data = crowd_data(sim.annotations)
    init = model.init_params(data)
    assert np.all(np.asarray(init["lambda_sensitivity"]) > 0)
    fit = crowdzoo.fit(model, sim.annotations)
    np.testing.assert_allclose(fit.params["weights"], truth["weights"], atol=0.6)
    w = fit.workers()
    np.testing.assert_allclose(w["sensitivity"], sens, atol=0.1)
    np.testing.assert_allclose(w["specificity"], spec, atol=0.1)
    # the fixed variant runs on the same data; its difficulty is a constant of the labels
    fixed = crowdzoo.fit(DifficultyFixed(classifier=RAW), sim.annotations)
    assert fixed.diagnostics["converged"]
    acc_fixed = (fixed.labels().to_numpy() == sim.true_labels.to_numpy()).mean()
    assert acc_fixed > 0.8


def test_nuts_mixes_and_predicts(features):
    truth = {"weights": np.array([[1.5], [-1.0]]), "bias": np.array([0.0]),
             "sensitivity": np.array([0.85, 0.75, 0.7]),
             "specificity": np.array([0.8, 0.7, 0.85])}
    model = Raykar(classifier=RAW)
    sim = simulate(model, n_tasks=150, n_workers=3, n_classes=2, answers_per_task=3,
                   features=features[:150], params=truth, seed=5)
    with warnings.catch_warnings():  # r_hat is asserted below, at its noise level
        warnings.simplefilter("ignore", crowdzoo.ConvergenceWarning)
        fit = crowdzoo.fit(model, sim.annotations, method="nuts", num_warmup=300,
                           num_samples=300, num_chains=4)
    conv = fit.convergence().attrs
    # the max over every parameter of 4 x 300 draws: 1.01 is within its noise (numpyro's own
    # MCMC gives 1.006-1.010 here over seeds), a sampler that does not mix gives >> 1.02
    assert conv["max_r_hat"] <= 1.02 and conv["divergences"] == 0
    probs = fit.predict_proba(features[:4])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # posterior predictive = the average of the per-draw classifiers, not the mean weights
    w = fit.samples["weights"].reshape(-1, 2)
    b = fit.samples["bias"].reshape(-1)
    expect = (1 / (1 + np.exp(-(features[:4] @ w.T + b)))).mean(1)
    np.testing.assert_allclose(probs[1].to_numpy(), expect, atol=1e-4)


def test_mlp_classifier_fits(features):
    truth = {"weights": np.array([[2.0], [-1.0]]), "bias": np.array([0.0]),
             "sensitivity": np.array([0.8, 0.75, 0.7, 0.8]),
             "specificity": np.array([0.8, 0.7, 0.75, 0.8])}
    sim = simulate(Raykar(classifier=RAW), n_tasks=300, n_workers=4, n_classes=2,
                   answers_per_task=4, features=features[:300], params=truth, seed=6)
    fit = crowdzoo.fit(Raykar(classifier=MLP(hidden=8, init_steps=200)), sim.annotations)
    assert fit.diagnostics["algorithm"] == "lbfgs"
    assert (fit.labels().to_numpy() == sim.true_labels.to_numpy()).mean() > 0.85
    err = np.abs(fit.workers()["sensitivity"].to_numpy() - truth["sensitivity"])
    assert err.mean() < 0.07


# --- errors ---------------------------------------------------------------------------------
def test_clear_errors():
    ann, _, _ = dense(3)
    for name in ("yan", "difficulty_adaptive", "difficulty_fixed"):
        with pytest.raises(ValueError, match=r"binary.*raykar \(multi-class\)"):
            crowdzoo.fit(name, ann)
    binary, _, _ = dense(2)
    for name, crowd in (("raykar", ann), ("yan", binary), ("difficulty_adaptive", binary)):
        plain = Annotations.from_frame(crowd.to_frame())  # the same answers without features
        with pytest.raises(ValueError, match="features"):
            crowdzoo.fit(name, plain)
    frame = ann.to_frame()
    feats = ann.features_frame()
    with pytest.raises(ValueError, match="no row for"):
        Annotations.from_frame(frame, features=feats.iloc[1:])
    bad = feats.assign(a=["x"] * len(feats))
    with pytest.raises(ValueError, match="non-numeric"):
        Annotations.from_frame(frame, features=bad)
    with pytest.raises(TypeError, match="no classifier"):
        crowdzoo.fit("dawid_skene", ann).predict_proba(np.zeros((2, 2)))


# --- the crowds of Xu et al.'s experiments (crowdzoo.data.learning_from_crowds) -----------
def test_simulated_expert_crowds_have_the_stated_error_rates():
    """Difficulty crowd: best-case reliabilities on easy items, chance at p = 1/2; flip crowd:
    the stated error rates (binomial 4-sigma tolerances)."""
    from crowdzoo.data.learning_from_crowds import (
        difficulty_crowd,
        flip_crowd,
        nonstructural_error_rates,
    )

    rng = np.random.default_rng(0)
    n = 40_000
    z = rng.integers(0, 2, n)
    sens, spec = np.array([0.9, 0.6]), np.array([0.7, 0.8])
    easy = difficulty_crowd(np.where(z == 1, 1.0, 0.0), z, rng, sens, spec)
    for j in range(2):
        tol = 4 * np.sqrt(0.25 / (n / 2))
        assert abs(easy[z == 1, j].mean() - sens[j]) < tol
        assert abs(1 - easy[z == 0, j].mean() - spec[j]) < tol
    boundary = difficulty_crowd(np.full(n, 0.5), z, rng, sens, spec)
    assert abs((boundary == z[:, None]).mean() - 0.5) < 4 * np.sqrt(0.25 / boundary.size)

    err = nonstructural_error_rates(1000, rng)
    assert set(np.round(1 / err).astype(int)) == set(range(3, 9))
    rates = np.array([0.125, 1 / 3])
    flipped = flip_crowd(z, rates, rng)
    np.testing.assert_allclose((flipped != z[:, None]).mean(0), rates,
                               atol=4 * np.sqrt(0.25 / n))
    with pytest.raises(ValueError, match="shape"):
        difficulty_crowd(np.zeros(3), np.zeros(4, int), rng)
    # bad input names the problem and the rows / experts
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]; not so in 1 row: 2"):
        difficulty_crowd(np.array([0.1, 0.5, np.nan]), np.zeros(3, int), rng)
    with pytest.raises(ValueError, match="z must hold the classes 0 and 1; not so in 1 row: 1"):
        flip_crowd(np.array([0, 2, 1]), [0.1], rng)
    with pytest.raises(ValueError, match=r"sensitivity must lie in \(0, 1\); not so in 1 expert"):
        difficulty_crowd(np.full(3, 0.9), np.zeros(3, int), rng, [0.8, 1.0], [0.7, 0.7])
    with pytest.raises(ValueError, match="error_rates must lie"):
        flip_crowd(z[:5], [np.nan], rng)


def test_digits_task_and_the_aggregate_then_learn_baseline():
    """The bundled digits: a stratified binary split, out-of-fold pretrained probabilities that
    carry information, and Classifier.fit_predict learning the task from true labels."""
    pytest.importorskip("sklearn")
    from crowdzoo.data.learning_from_crowds import digits_task, to_annotations

    task = digits_task(seed=1, n_train=500)
    d = task.x_train.shape[1]
    assert 55 <= d < 64 and task.x_train.shape == (500, d) and task.x_test.shape == (1297, d)
    assert task.x_train.std(0).min() > 0  # blank pixels dropped
    assert 0.0 <= task.x_train.min() and task.x_train.max() <= 1.0
    assert abs(task.z_train.mean() - task.z_test.mean()) < 0.01  # stratified
    assert ((task.pretrained_p > 0.5) == task.z_train).mean() > 0.8
    resp = np.stack([1 - task.z_train, task.z_train], 1).astype(float)
    p = Logistic().fit_predict(task.x_train, resp, task.x_test)
    assert p.shape == (1297, 2)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert ((p[:, 1] > 0.5) == task.z_test).mean() > 0.8
    ann = to_annotations(task.x_train, np.stack([task.z_train] * 3, 1))
    assert ann.features.shape == (500, d) and ann.n_workers == 3
    with pytest.raises(ValueError, match="n_train"):
        digits_task(n_train=5)
    with pytest.raises(ValueError, match="resp must be"):
        Logistic().fit_predict(task.x_train, resp[:10])
    with pytest.raises(ValueError, match="expected"):
        Logistic().fit_predict(task.x_train, resp, task.x_test[:, :10])
    nan_x = task.x_train.copy()
    nan_x[7, 3] = np.nan
    with pytest.raises(ValueError, match="train features have NaN/inf values in 1 row: 7"):
        Logistic().fit_predict(nan_x, resp)
    bad_resp = resp.copy()
    bad_resp[4] = [0.7, 0.7]
    with pytest.raises(ValueError, match="resp rows must be probabilities.*1 row: 4"):
        Logistic().fit_predict(task.x_train, bad_resp)
    with pytest.raises(ValueError, match="n_train"):
        digits_task(n_train=600.5)


def test_fixed_difficulty_likelihood_is_not_normalized():
    """Summed over every possible answer matrix, p(answers | params) is 1 for the adaptive model
    and not for the fixed one (its p_i is a statistic of the answers): proper_likelihood says so."""
    import itertools

    n_tasks, n_workers = 2, 2
    task = np.repeat(np.arange(n_tasks), n_workers)
    worker = np.tile(np.arange(n_workers), n_tasks)
    x = np.array([[0.3, -1.0], [1.5, 0.2]])
    params = {"weights": jnp.array([[1.0], [-0.5]]), "bias": jnp.array([0.2]),
              "lambda_sensitivity": jnp.array([8.0, 3.0]),
              "lambda_specificity": jnp.array([5.0, 12.0])}
    totals = {}
    for model in (DifficultyAdaptive(RAW), DifficultyFixed(RAW)):
        total = 0.0
        for answers in itertools.product([0, 1], repeat=len(task)):
            frame = pd.DataFrame({"task": task, "worker": worker, "label": answers})
            ann = Annotations.from_frame(frame, features=pd.DataFrame(x), classes=[0, 1])
            total += float(jnp.exp(model.log_likelihood(params, crowd_data(ann)).log_lik))
        totals[model.name] = total
    assert abs(totals["difficulty_adaptive"] - 1.0) < 1e-5
    assert abs(totals["difficulty_fixed"] - 1.0) > 1e-2
    assert DifficultyAdaptive.proper_likelihood and not DifficultyFixed.proper_likelihood


def test_pseudo_posterior_is_flagged(features, monkeypatch):
    """SVI / NUTS on difficulty_fixed warn that the posterior is a pseudo-posterior; MAP and
    proper models do not. (The samplers are stubbed: the warning comes before them.)"""
    import warnings

    from crowdzoo.inference import PseudoPosteriorWarning, runner

    class Reached(Exception):
        pass

    def stub(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(runner, "_fit_svi", stub)
    monkeypatch.setattr(runner, "_fit_nuts", stub)
    sim = simulate("difficulty_fixed", n_tasks=30, n_workers=3, n_classes=2, answers_per_task=3,
                   features=features[:30], seed=2)
    for method in ("svi", "nuts"):
        with pytest.warns(PseudoPosteriorWarning, match="pseudo-posterior"), \
                pytest.raises(Reached):
            crowdzoo.fit("difficulty_fixed", sim.annotations, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PseudoPosteriorWarning)
        crowdzoo.fit("difficulty_fixed", sim.annotations)
        with pytest.raises(Reached):
            crowdzoo.fit("difficulty_adaptive", sim.annotations, method="nuts")


@pytest.mark.parametrize("name", ["raykar", "dawid_skene"])
def test_squarem_reaches_plain_em_fixed_point(features, name):
    """SQUAREM-accelerated EM: monotone, the same fixed point as plain EM (log posterior to
    1e-5 per answer, parameters to 2e-3), in fewer iterations."""
    K = 3
    sim = simulate(name, n_tasks=400, n_workers=6, n_classes=K, answers_per_task=3,
                   features=features[:400] if name == "raykar" else None, seed=4)
    plain = crowdzoo.fit(name, sim.annotations, accelerate=False, max_iter=20000, tol=1e-8)
    fast = crowdzoo.fit(name, sim.annotations, accelerate=True, max_iter=20000, tol=1e-8)
    assert plain.diagnostics["algorithm"] == "em" and fast.diagnostics["algorithm"] == "squarem"
    assert fast.diagnostics["converged"] and plain.diagnostics["converged"]
    n = sim.annotations.n_answers
    assert abs(fast.diagnostics["log_posterior"] - plain.diagnostics["log_posterior"]) / n < 1e-5
    for k, v in plain.params.items():
        np.testing.assert_allclose(fast.params[k], v, atol=2e-3, err_msg=k)
    hist = fast.loss_history
    assert np.all(np.diff(hist) >= -8 * np.finfo(np.float32).eps * np.abs(hist).max())  # rounding
    assert fast.diagnostics["n_iter"] < plain.diagnostics["n_iter"]


def test_accelerate_needs_an_em_update(features):
    sim = simulate("raykar", n_tasks=20, n_workers=3, n_classes=2, answers_per_task=2,
                   features=features[:20], seed=0)
    with pytest.raises(ValueError, match="accelerate=True speeds up closed-form EM"):
        crowdzoo.fit(Raykar(MLP(hidden=2)), sim.annotations, accelerate=True)
    with pytest.raises(TypeError, match="accelerate must be True or False"):
        crowdzoo.fit("raykar", sim.annotations, accelerate="no")
