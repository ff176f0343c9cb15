"""EM fixed points equal Crowd-Kit's on the same data with the same (flat) priors.

Crowd-Kit runs a fixed 400 iterations (its own stopping rule, ``new_loss - loss < tol``, stops
early when its clipped ELBO wobbles, long before the fixed point); ours runs to tol=1e-9.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import has_dataset, require_dataset
from crowdzoo.data import simulate
from crowdzoo.models import DawidSkene, OneCoin

import crowdzoo

crowdkit = pytest.importorskip("crowdkit.aggregation")


def crowdkit_posterior(est, frame):
    """E-step from Crowd-Kit's final errors_/priors_ (its probas_ is one E-step behind)."""
    from crowdkit.aggregation.classification.dawid_skene import DawidSkene as CK

    return CK._e_step(frame, est.priors_.copy(), est.errors_)


@pytest.fixture(scope="module")
def crowd():
    # ~190 answers per worker: ML EM converges in ~70 iterations (no boundary entries)
    sim = simulate(DawidSkene(confusion_prior=(8.0, 1.0)), n_tasks=300, n_workers=8,
                   n_classes=3, answers_per_task=5, seed=11)
    ann = sim.annotations
    frame = ann.to_frame()
    frame["label"] = frame["label"].astype(int)
    return ann, frame


def _compare(ours: pd.DataFrame, theirs: pd.DataFrame, atol=1e-4):
    theirs = theirs.reindex(index=ours.index)
    theirs.columns = [int(c) for c in theirs.columns]
    theirs = theirs[[int(c) for c in ours.columns]]
    diff = np.abs(ours.to_numpy() - theirs.to_numpy())
    assert diff.max() < atol, f"max |Δ posterior| = {diff.max():.2e}"
    assert (ours.to_numpy().argmax(1) == theirs.to_numpy().argmax(1)).all()


def test_dawid_skene_fixed_point_equals_crowdkit(crowd):
    ann, frame = crowd
    ck = crowdkit.DawidSkene(n_iter=400, tol=-np.inf).fit(frame)
    ours = crowdzoo.fit(DawidSkene(confusion_prior=1.0, class_prior=1.0), ann, tol=1e-9,
                        param_tol=1e-7, max_iter=3000)
    _compare(ours.task_posterior(), crowdkit_posterior(ck, frame))
    # the confusion matrices too: Crowd-Kit's errors_[worker, observed][true]
    errors = ck.errors_
    conf = ours.params["confusion"]
    for w, wid in enumerate(ann.worker_ids[:5]):
        block = errors.loc[wid].reindex(index=range(3), columns=range(3)).fillna(0.0).to_numpy()
        np.testing.assert_allclose(conf[w].T, block, atol=2e-3)


def test_one_coin_fixed_point_equals_crowdkit(crowd):
    ann, frame = crowd
    ck = crowdkit.OneCoinDawidSkene(n_iter=400, tol=-np.inf).fit(frame)
    ours = crowdzoo.fit(OneCoin(accuracy_prior=(1.0, 1.0), class_prior=1.0), ann, tol=1e-9,
                        param_tol=1e-7, max_iter=3000)
    _compare(ours.task_posterior(), crowdkit_posterior(ck, frame))
    skills = ck.skills_.reindex(ann.worker_ids).to_numpy()
    np.testing.assert_allclose(ours.params["accuracy"], skills, atol=1e-3)


def test_dawid_skene_with_gold_equals_crowdkit(crowd):
    ann, frame = crowd
    gold = pd.Series(frame.groupby("task")["label"].first().iloc[::7])
    ck = crowdkit.DawidSkene(n_iter=400, tol=-np.inf).fit(frame, true_labels=gold)
    ours = crowdzoo.fit(DawidSkene(confusion_prior=1.0, class_prior=1.0),
                        ann.with_gold(gold), tol=1e-9, param_tol=1e-7, max_iter=3000)
    theirs = crowdkit_posterior(ck, frame)
    theirs = theirs[sorted(theirs.columns)]
    theirs.loc[gold.index] = np.eye(3)[gold.to_numpy()]  # Crowd-Kit's gold correction
    _compare(ours.task_posterior(), theirs)


@pytest.mark.parametrize("strategy", ["assign", "addition"])
def test_initial_error_matches_crowdkit(crowd, strategy):
    ann, frame = crowd
    workers = list(ann.worker_ids) if strategy == "assign" else list(ann.worker_ids[:4])
    idx = pd.MultiIndex.from_product([workers, range(3)], names=["worker", "label"])
    rng = np.random.default_rng(0)
    values = rng.integers(1, 10, size=(len(idx), 3)).astype(float)
    initial = pd.DataFrame(values, index=idx, columns=range(3))
    before = initial.copy()
    # the same start and the same number of EM rounds (3): initial_error only acts at the start
    ck = crowdkit.DawidSkene(n_iter=3, tol=-np.inf, initial_error_strategy=strategy).fit(
        frame, initial_error=initial.copy())  # Crowd-Kit modifies it in place
    # the model takes the array [worker, true, label] in the data's order (the aggregation
    # layer aligns Crowd-Kit's (worker, observed label)-indexed frame; here by hand)
    array = np.zeros((ann.n_workers, 3, 3))
    for (worker, label), row in initial.iterrows():
        array[list(ann.worker_ids).index(worker), :, label] = row.to_numpy()
    model = DawidSkene(confusion_prior=1.0, class_prior=1.0, initial_error=array,
                       initial_error_strategy=strategy)
    with warnings.catch_warnings():  # three rounds on purpose: the cap is the point
        warnings.simplefilter("ignore", crowdzoo.inference.ConvergenceWarning)
        ours = crowdzoo.fit(model, ann, tol=1e-30, max_iter=3)
    pd.testing.assert_frame_equal(initial, before)  # not mutated
    _compare(ours.task_posterior(), crowdkit_posterior(ck, frame), atol=1e-4)


@pytest.mark.skipif(not has_dataset("product"), reason="../shared/data absent")
def test_product_accuracy_and_labels_match_crowdkit():
    ann = require_dataset("product")
    gold = ann.gold_series()
    ours = crowdzoo.fit(DawidSkene(confusion_prior=1.0, class_prior=1.0), ann, use_gold=False,
                        tol=1e-9, param_tol=1e-7, max_iter=3000)
    ck = crowdkit.DawidSkene(n_iter=400, tol=-np.inf).fit(ann.to_frame())
    theirs = crowdkit_posterior(ck, ann.to_frame())
    agree = (ours.labels().astype(str) == theirs.idxmax(axis=1).reindex(ours.labels().index)
             .astype(str)).mean()
    assert agree == 1.0
    assert ours.accuracy(gold) >= 0.936
