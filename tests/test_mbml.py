"""The crowd models of Model-Based Machine Learning, ch. 7: honest worker, biased worker,
community (CBCC).

* the hand-marginalized log joints equal NumPyro's enumeration (funsor) of the explicit
  models — ``true_label``, ``is_correct`` and ``worker_community`` as discrete sites — to 1e-5;
* the honest worker simulates with an explicit gate, and its abilities are recovered;
* its closed-form EM reaches the mode that generic L-BFGS finds, to 1e-4;
* the community model recovers a clear 3-community crowd (adjusted Rand index >= 0.8);
* NUTS from the MAP start mixes (r_hat <= 1.01) on small crowds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from crowdzoo.data import simulate
from crowdzoo.inference.map import log_posterior, run_em, run_lbfgs
from crowdzoo.models import (
    BiasedWorker,
    Community,
    DawidSkene,
    HonestWorker,
    crowd_data,
    get_model,
)
from crowdzoo.models.community import adjusted_rand_index

import crowdzoo

T, W, K = 6, 4, 3


def test_biased_worker_is_dawid_skene_with_the_books_priors():
    ann = crowdzoo.data.load_demo()
    model = get_model("biased_worker")
    assert isinstance(model, DawidSkene) and model.name == "biased_worker"
    same = DawidSkene(confusion_prior=(K - 1.0, 1.0), class_prior=1.0)  # b = 0.5, K = 3
    ours, theirs = crowdzoo.fit(model, ann), crowdzoo.fit(same, ann)
    np.testing.assert_allclose(ours.params["confusion"], theirs.params["confusion"], atol=1e-6)
    # the prior puts mean b on the diagonal
    conc, _ = BiasedWorker(initial_worker_belief=0.8)._concentrations(crowd_data(ann))
    np.testing.assert_allclose(np.diagonal(conc) / conc.sum(-1), 0.8, rtol=1e-6)
    with pytest.raises(ValueError, match="initial_worker_belief"):
        BiasedWorker(initial_worker_belief=1.0)


# --- the honest worker: the explicit gate, recovery, EM == gradient MAP ----------------------
def test_honest_worker_simulates_the_gate_explicitly():
    model = HonestWorker()
    sim = simulate(model, n_tasks=50, n_workers=6, n_classes=K, answers_per_task=3, seed=3)
    assert set(sim.params) == {"pi", "ability"}  # the gate is not a parameter
    data = crowd_data(sim.annotations).without_labels()
    with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=3):
        model(data)
    gate, z, y = (np.asarray(tr[k]["value"]) for k in ("is_correct", "z", "y"))
    assert tr["is_correct"]["cond_indep_stack"][0].name == "answer"
    assert gate.shape == y.shape == (data.n_answers,)
    hit = gate > 0
    assert hit.any() and (~hit).any()
    np.testing.assert_array_equal(y[hit], z[np.asarray(data.task)][hit])  # correct -> copy


def test_honest_worker_recovers_abilities():
    ability = np.linspace(0.1, 0.95, 8)
    params = {"pi": np.array([0.5, 0.3, 0.2]), "ability": ability}
    sim = simulate("honest_worker", n_tasks=400, n_workers=8, n_classes=K, answers_per_task=5,
                   params=params, seed=11)
    fit = crowdzoo.fit("honest_worker", sim.annotations)
    est = fit.workers()["ability"].to_numpy()
    assert np.max(np.abs(est - ability)) < 0.12, est  # sd of each estimate ~0.04
    assert fit.diagnostics["converged"]
    truth = sim.true_labels.reindex(fit.labels().index)
    assert (fit.labels() == truth).mean() > 0.85


class GradientHonestWorker(HonestWorker):
    """The same model without its closed-form M-step: the runner's generic L-BFGS."""

    em_update = None


def test_honest_worker_em_matches_gradient_map():
    params = {"pi": np.array([0.4, 0.35, 0.25]),
              "ability": np.array([0.3, 0.5, 0.6, 0.7, 0.8, 0.9])}
    sim = simulate("honest_worker", n_tasks=120, n_workers=6, n_classes=K, answers_per_task=4,
                   params=params, seed=5)
    # float64: in float32 EM stops when the change of the log posterior rounds to zero,
    # a few 1e-4 short of the mode; the comparison is about the mode, not the rounding
    with jax.enable_x64(True):
        data = crowd_data(sim.annotations)
        model = HonestWorker()
        start = {k: jnp.asarray(v, jnp.float64) for k, v in model.init_params(data).items()}
        em = run_em(model, start, data, 1e-13, 3000)
        lb = run_lbfgs(GradientHonestWorker(), start, data, 1e-13, 3000)
        assert bool(em.converged) and bool(lb.converged)
        for k in ("pi", "ability"):
            np.testing.assert_allclose(np.asarray(em.params[k]), np.asarray(lb.params[k]),
                                       atol=1e-4)
        hist = np.asarray(em.history)[: int(em.n_iter)]
        assert np.all(np.diff(hist) > -1e-9)  # EM is monotone
        assert float(log_posterior(model, em.params, data)) >= float(
            log_posterior(model, lb.params, data)) - 1e-8


# --- community: recovery of a clear 3-community crowd --------------------------------------
GOOD = np.full((K, K), 0.05) + np.eye(K) * 0.85  # accurate
SAYS_ZERO = np.tile([0.85, 0.1, 0.05], (K, 1))  # answers "0" whatever the truth
CYCLIC = np.roll(GOOD, 1, axis=1)  # shifts the classes: k -> k + 1


def community_crowd(communities, assign, n_tasks, seed):
    """A crowd simulated by the community model itself, memberships and matrices given."""
    M, n_classes = len(communities), len(communities[0])
    params = {"pi": np.full(n_classes, 1 / n_classes), "community_prob": np.full(M, 1 / M),
              "community_confusion": np.stack(communities),
              "worker_community": np.asarray(assign)}
    return simulate(Community(n_communities=M), n_tasks=n_tasks, n_workers=len(assign),
                    n_classes=n_classes, answers_per_task=5, params=params, seed=seed)


def test_community_recovers_memberships():
    # half of the crowd is accurate, a quarter always says "0", a quarter shifts the classes
    assign = np.repeat([0, 0, 1, 2], 8)
    sim = community_crowd([GOOD, SAYS_ZERO, CYCLIC], assign, n_tasks=300, seed=2)
    fit = crowdzoo.fit(Community(n_communities=3), sim.annotations)
    membership = fit.workers().filter(like="membership").to_numpy()
    np.testing.assert_allclose(membership.sum(1), 1.0, atol=1e-5)
    found = membership.argmax(1)
    codes = [int(w[1:]) for w in fit.workers().index]  # simulated ids are w0000, w0001, ...
    assert adjusted_rand_index(found, assign[codes]) >= 0.8
    truth = sim.true_labels.reindex(fit.labels().index)
    assert (fit.labels() == truth).mean() > 0.8  # ~2.5 accurate answers per task


def test_adjusted_rand_index():
    assert adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    # Hubert & Arabie by hand: pairs index 1, expected 2 * 1 / 6, max 1.5
    by_hand = (1 - 1 / 3) / (1.5 - 1 / 3)
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(by_hand)
    rng = np.random.default_rng(0)
    assert abs(adjusted_rand_index(rng.integers(0, 3, 3000), rng.integers(0, 3, 3000))) < 0.01


def test_community_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_communities"):
        Community(n_communities=0)
    with pytest.raises(ValueError, match="precision"):
        Community(precision=-1.0)


# --- NUTS from the MAP start ----------------------------------------------------------------
NUTS_SMALL = {"num_warmup": 300, "num_samples": 400, "num_chains": 4}


def test_honest_worker_nuts_mixes():
    sim = simulate("honest_worker", n_tasks=60, n_workers=5, n_classes=K, answers_per_task=3,
                   seed=7)
    fit = crowdzoo.fit("honest_worker", sim.annotations, method="nuts", **NUTS_SMALL)
    conv = fit.convergence().attrs
    assert conv["max_r_hat"] <= 1.01, conv
    assert conv["divergences"] == 0


def test_community_nuts_mixes():
    # a clear binary crowd: 6 accurate workers and 2 who mostly say "0"
    good, says_zero = np.array([[0.9, 0.1], [0.15, 0.85]]), np.array([[0.9, 0.1], [0.7, 0.3]])
    sim = community_crowd([good, says_zero], [0, 0, 0, 1, 0, 0, 0, 1], n_tasks=80, seed=4)
    fit = crowdzoo.fit(Community(n_communities=2), sim.annotations, method="nuts",
                       num_warmup=500, num_samples=1000, num_chains=4)
    conv = fit.convergence().attrs
    assert conv["max_r_hat"] <= 1.01, conv
    assert conv["divergences"] == 0
    membership = fit.workers().filter(regex=r"^membership\[\d\]$").to_numpy()
    np.testing.assert_allclose(membership.sum(1), 1.0, atol=1e-5)  # Rao-Blackwellized


@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_one_community_samples():
    """M = 1: the community simplex has no free coordinate (a zero-size unconstrained site),
    which NUTS must carry through (it crashed when reshaping the draws)."""
    good = np.array([[0.9, 0.1], [0.15, 0.85]])
    sim = community_crowd([good], [0] * 5, n_tasks=20, seed=1)
    fit = crowdzoo.fit(Community(n_communities=1), sim.annotations, method="nuts",
                       num_warmup=20, num_samples=20, num_chains=1)
    assert fit.samples["community_prob"].shape == (1, 20, 1)
    assert fit.diagnostics["target_accept_prob"] == 0.95  # the model's own NUTS default
    np.testing.assert_allclose(fit.samples["community_prob"], 1.0)
    # fixed by the model, not a stuck chain: the diagnostics do not flag it
    assert not fit.convergence().loc["community_prob", "stuck"]
