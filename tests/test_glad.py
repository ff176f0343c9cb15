"""GLAD (Whitehill et al. 2009): gradient, exact likelihood, parity with Crowd-Kit, recovery."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import dense_crowd
from crowdzoo.data import simulate
from crowdzoo.models import GLAD, crowd_data
from scipy.special import expit
from scipy.stats import spearmanr

import crowdzoo
import crowdzoo.aggregation

T, W, K = 6, 4, 3


def glad_crowd(seed=0, gold_tasks=()):
    ann, labels, _ = dense_crowd(K, seed, n_tasks=T, n_workers=W, gold_tasks=gold_tasks)
    return ann, labels


def random_params(seed, n_workers, n_tasks):
    rng = np.random.default_rng(seed)
    return {"alpha": jnp.asarray(rng.normal(0.5, 1.5, n_workers), jnp.float32),
            "log_beta": jnp.asarray(rng.normal(0.0, 1.0, n_tasks), jnp.float32)}


def test_gold_clamps_z():
    ann, labels = glad_crowd(0, gold_tasks=(1,))
    model = GLAD()
    params = random_params(3, W, T)
    m = model.log_likelihood(params, crowd_data(ann))
    post = np.asarray(jax.nn.softmax(m.logits, -1))
    np.testing.assert_allclose(post[1], np.eye(K)[labels[1, 0]], atol=1e-7)
    free = model.log_likelihood(params, crowd_data(ann, use_gold=False))
    rest = np.array([0, 2, 3, 4, 5])
    np.testing.assert_allclose(np.asarray(m.per_task)[rest], np.asarray(free.per_task)[rest],
                               rtol=1e-6)


def whitehill_gradient(alpha, log_beta, resp, task, worker, label, mu_a, mu_b):
    """The paper's hand-derived gradient of Q (log beta parameterization), in numpy."""
    beta = np.exp(log_beta)
    sig = expit(alpha[worker] * beta[task])
    right = resp[task, label]  # sum_c q(c) [y = c]
    g_alpha = np.bincount(worker, (right - sig) * beta[task], len(alpha)) - (alpha - mu_a)
    g_lb = np.bincount(task, (right - sig) * alpha[worker] * beta[task], len(beta)) - (
        log_beta - mu_b)
    return g_alpha, g_lb


def test_m_step_gradient_matches_finite_differences_and_the_paper():
    sim = simulate("glad", n_tasks=40, n_workers=7, n_classes=3, answers_per_task=4, seed=2)
    model = GLAD(alphas_priors_mean=0.5, betas_priors_mean=0.25)
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        data = crowd_data(sim.annotations)
        resp = rng.dirichlet(np.ones(3), size=40)
        params = {"alpha": jnp.asarray(rng.normal(1, 1, 7)),
                  "log_beta": jnp.asarray(rng.normal(0, 1, 40))}
        q = jax.jit(lambda p: model.m_step_objective(p, jnp.asarray(resp), data))
        grad = jax.grad(q)(params)
        assert grad["alpha"].dtype == jnp.float64
        h = 1e-6
        for name, n in (("alpha", 7), ("log_beta", 40)):
            for i in rng.choice(n, size=5, replace=False):
                up = {k: v.at[i].add(h) if k == name else v for k, v in params.items()}
                dn = {k: v.at[i].add(-h) if k == name else v for k, v in params.items()}
                fd = (float(q(up)) - float(q(dn))) / (2 * h)
                assert abs(fd - float(grad[name][i])) < 1e-6 * max(1.0, abs(fd))
        ga, gb = whitehill_gradient(np.asarray(params["alpha"]), np.asarray(params["log_beta"]),
                                    resp, np.asarray(sim.annotations.task),
                                    np.asarray(sim.annotations.worker),
                                    np.asarray(sim.annotations.label), 0.5, 0.25)
        np.testing.assert_allclose(grad["alpha"], ga, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(grad["log_beta"], gb, rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def recovery():
    sim = simulate("glad", n_tasks=1000, n_workers=30, n_classes=3, answers_per_task=5, seed=1)
    return sim, crowdzoo.fit("glad", sim.annotations, tol=1e-7, max_iter=300)


def test_em_is_monotone_and_converges(recovery):
    _, fit = recovery
    assert fit.diagnostics["converged"]
    h = fit.loss_history
    assert np.all(np.diff(h) > -1e-5 * abs(h[-1]))  # float32 round-off only


def test_recovers_abilities_and_finds_hard_items(recovery):
    sim, fit = recovery
    assert (fit.labels() == sim.true_labels).mean() > 0.9
    assert spearmanr(fit.params["alpha"], sim.params["alpha"]).statistic >= 0.9
    # the truly hardest decile (smallest beta) is ranked hard by the estimated difficulty
    true_difficulty = np.exp(-sim.params["log_beta"])
    hardest = true_difficulty >= np.quantile(true_difficulty, 0.9)
    est = fit.tasks()["difficulty"].to_numpy()
    ranks = pd.Series(est).rank().to_numpy()
    n1, n0 = hardest.sum(), (~hardest).sum()
    auc = (ranks[hardest].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert auc >= 0.75, auc


def test_id_keyed_priors_are_aligned_by_the_estimator_not_the_model(recovery):
    """Crowd-Kit's id-keyed Series become arrays in the estimator; the model takes codes."""
    from crowdzoo.aggregation import _align_by_ids

    sim, _ = recovery
    ann = sim.annotations
    means = pd.Series(np.linspace(-1, 2, ann.n_workers), index=ann.worker_ids)
    shuffled = means.sample(frac=1.0, random_state=0)
    before = shuffled.copy()
    aligned = _align_by_ids(shuffled, ann.worker_ids, "alphas_priors_mean")
    np.testing.assert_array_equal(aligned, means.to_numpy())
    pd.testing.assert_series_equal(shuffled, before)  # nothing the user passed is mutated
    with pytest.raises(ValueError, match="no value for 1"):
        _align_by_ids(shuffled.iloc[1:], ann.worker_ids, "alphas_priors_mean")
    with pytest.raises(TypeError, match="aligned by crowdzoo.aggregation.GLAD"):
        GLAD(alphas_priors_mean=shuffled)
    model = GLAD(alphas_priors_mean=aligned)
    before_hash = hash(model)
    crowdzoo.fit(model, ann)
    assert hash(model) == before_hash


def test_parity_with_crowdkit_glad():
    ck = pytest.importorskip("crowdkit.aggregation")
    sim = simulate("glad", n_tasks=100, n_workers=8, n_classes=2, answers_per_task=3, seed=4)
    df = sim.annotations.to_frame()
    n_iter = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ck.GLAD(n_iter=n_iter, tol=-np.inf).fit(df)
    ours = crowdzoo.aggregation.GLAD(n_iter=n_iter, tol=-np.inf).fit(df)
    assert len(theirs.loss_history_) == len(ours.loss_history_) == n_iter
    ann = ours.fit_.annotations
    a_ck = theirs.alphas_.reindex(ann.worker_ids).to_numpy()
    b_ck = theirs.betas_.reindex(ann.task_ids).to_numpy()
    np.testing.assert_allclose(ours.alphas_.to_numpy(), a_ck, atol=0.05)
    np.testing.assert_allclose(ours.betas_.to_numpy(), b_ck, atol=0.1)
    # labels from each library's final parameters (Crowd-Kit's probas_ lag one M-step)
    m = GLAD().log_likelihood({"alpha": jnp.asarray(a_ck, jnp.float32),
                               "log_beta": jnp.asarray(b_ck, jnp.float32)}, crowd_data(ann))
    ck_labels = np.asarray(m.logits).argmax(1)
    our_labels = ours.fit_.task_posterior().to_numpy().argmax(1)
    assert (ck_labels == our_labels).mean() >= 0.99
    assert (theirs.labels_.reindex(ours.labels_.index) == ours.labels_).mean() >= 0.97


@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_nuts_and_svi_run_through_the_common_runner():  # short runs: not about convergence
    sim = simulate("glad", n_tasks=30, n_workers=5, n_classes=2, answers_per_task=3, seed=0)
    nuts = crowdzoo.fit("glad", sim.annotations, method="nuts", num_warmup=50,
                        num_samples=50, num_chains=2)
    assert nuts.samples["alpha"].shape == (2, 50, 5)
    np.testing.assert_allclose(nuts.task_posterior().sum(axis=1), 1.0, atol=1e-6)
    assert {"beta", "difficulty"} <= set(nuts.tasks().columns)
    svi = crowdzoo.fit("glad", sim.annotations, method="svi", num_steps=100, num_draws=20)
    assert np.isfinite(svi.loss_history).all()


def test_bad_priors_get_clear_errors():
    ann, _ = glad_crowd(0)
    with pytest.raises(ValueError, match="labels_priors must be a scalar or have shape"):
        crowdzoo.fit(GLAD(labels_priors=[0.5, 0.5]), ann)
    with pytest.raises(ValueError, match="alphas_priors_mean must be a scalar or have shape"):
        crowdzoo.fit(GLAD(alphas_priors_mean=np.ones(W + 1)), ann)
