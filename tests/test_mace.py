"""MACE: the zoo model (the gate in the simulator, recovery) and crowdzoo.aggregation.MACE.

The aggregation estimator equals Crowd-Kit's MACE to rounding wherever Crowd-Kit's own
M-step is right: on answers whose workers and labels first appear in sorted order (then
Crowd-Kit's sorted group-by and its first-appearance codes line up). Elsewhere Crowd-Kit
gives each worker another worker's spam distribution; the test shows that too.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpyro
import pandas as pd
import pytest
from conftest import has_dataset, require_dataset
from crowdzoo.data import simulate
from crowdzoo.models import MACE, crowd_data

import crowdzoo
import crowdzoo.aggregation as cz

K = 3
#: three good workers, a sloppy one, and two spammers: one always says "0", one answers at random
COMPETENCE = np.array([0.9, 0.85, 0.8, 0.6, 0.05, 0.05])
SPAM = np.array([[1 / 3] * 3] * 4 + [[0.9, 0.05, 0.05], [1 / 3] * 3])


@pytest.fixture(scope="module")
def crowd():
    return simulate(MACE(), n_tasks=300, n_workers=6, n_classes=K, answers_per_task=4,
                    params={"competence": COMPETENCE, "spam_label": SPAM}, seed=4)


def test_mace_simulates_the_spamming_gate(crowd):
    model = MACE()
    assert set(crowd.params) == {"competence", "spam_label"}  # the gate is not a parameter
    data = crowd_data(crowd.annotations).without_labels()
    with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=3):
        model(data)
    gate, z, y = (np.asarray(tr[k]["value"]) for k in ("spamming", "z", "y"))
    assert tr["spamming"]["cond_indep_stack"][0].name == "answer"
    spam = gate > 0
    assert spam.any() and (~spam).any()
    np.testing.assert_array_equal(y[~spam], z[np.asarray(data.task)][~spam])  # knows -> copy


def test_mace_recovers_competence_and_the_spammers_label(crowd):
    fit = crowdzoo.fit("mace", crowd.annotations)
    assert fit.diagnostics["converged"]
    hist = np.asarray(fit.loss_history)
    assert np.all(np.diff(hist) > -1e-3 * abs(hist[-1]) / len(hist))  # EM: monotone (float32)
    est = fit.params["competence"]
    assert np.max(np.abs(est - COMPETENCE)) < 0.12, est  # ~200 answers per worker
    # the spammer who says "0" is a spammer (not an accurate worker on "0"-tasks)
    assert fit.params["spam_label"][4, 0] > 0.7
    truth = crowd.true_labels.reindex(fit.labels().index)
    assert (fit.labels() == truth).mean() > 0.9


def sorted_first_appearance(frame):
    """Rename workers and labels so that first appearance = sorted order (Crowd-Kit's case)."""
    w, _ = pd.factorize(frame["worker"])
    lab, _ = pd.factorize(frame["label"])
    return frame.assign(worker=[f"w{i:03d}" for i in w], label=[f"l{i}" for i in lab])


@pytest.mark.parametrize("method", ["vb", "em"])
def test_aggregation_mace_equals_crowdkit(crowd, method):
    ck = pytest.importorskip("crowdkit.aggregation")
    frame = crowd.annotations.to_frame().sample(frac=1.0, random_state=1)
    frame = sorted_first_appearance(frame.reset_index(drop=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ck.MACE(n_restarts=1, n_iter=10, method=method).fit(frame)
    ours = cz.MACE(n_restarts=1, n_iter=10, method=method).fit(frame)
    np.testing.assert_allclose(ours.thetas_, theirs.thetas_, atol=1e-9)
    np.testing.assert_allclose(ours.spamming_, theirs.spamming_, atol=1e-9)
    np.testing.assert_allclose(ours.probas_.to_numpy(),
                               theirs.probas_.loc[ours.probas_.index, ours.probas_.columns]
                               .to_numpy(), atol=1e-9)
    assert ours.probas_.columns.name == "label" and ours.labels_.name == "agg_label"
    if method == "vb":
        np.testing.assert_array_equal(ours.theta_priors_, theirs.theta_priors_)
        np.testing.assert_array_equal(ours.strategy_priors_, theirs.strategy_priors_)
    # workers renamed out of sorted order: Crowd-Kit mixes the workers' spam distributions up
    shuffled = frame.assign(worker=frame["worker"].map(lambda w: f"x{999 - int(w[1:]):03d}"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed = ck.MACE(n_restarts=1, n_iter=10, method=method).fit(shuffled)
    again = cz.MACE(n_restarts=1, n_iter=10, method=method).fit(shuffled)
    np.testing.assert_allclose(again.thetas_, ours.thetas_, atol=1e-9)  # ours: ids don't matter
    assert np.abs(mixed.thetas_ - theirs.thetas_).max() > 0.05


def test_aggregation_mace_restarts_explore(crowd):
    frame = crowd.annotations.to_frame()
    one = cz.MACE(n_restarts=1, n_iter=20).fit(frame)
    three = cz.MACE(n_restarts=3, n_iter=20).fit(frame)
    assert three.log_marginal_likelihood_ >= one.log_marginal_likelihood_
    with pytest.raises(ValueError, match="method"):
        cz.MACE(method="gibbs").fit(frame)


@pytest.mark.skipif(not has_dataset("temp"), reason="../shared/data absent")
def test_aggregation_mace_labels_agree_with_crowdkit_on_temp():
    ck = pytest.importorskip("crowdkit.aggregation")
    frame = require_dataset("temp").to_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ck.MACE(n_restarts=1).fit(frame).labels_
    ours = cz.MACE(n_restarts=1).fit(frame).labels_
    assert (ours.astype(str) == theirs.reindex(ours.index).astype(str)).mean() >= 0.98
