"""The behaviours Crowd-Kit's own aggregation tests expect, as this project's own tests.

Crowd-Kit's test suite (its repository, ``tests/aggregation``) is the drop-in contract of
``crowdzoo.aggregation``; ``benchmarks/crowdkit_contract.py`` runs it unchanged against our
estimators. These are the same behaviours written here (facts carry over, code does not):
``n_iter=0`` gives the state right after initialisation; a missing column is a ``KeyError``
that names the column; empty input gives empty results; ``initial_error`` is validated as
Crowd-Kit validates it; a perfectly symmetric crowd keeps the posterior at the class
frequencies; and the one place we differ on purpose (Crowd-Kit's ``probas_`` is one E-step
behind its parameters) is shown.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import has_dataset, require_dataset
from crowdzoo.data import AnnotationsError

import crowdzoo.aggregation as cz

#: 5 tasks x 5 workers, binary (the shape of Crowd-Kit's step-by-step fixture)
ROWS = ["t1 w1 no", "t1 w2 yes", "t1 w4 yes", "t1 w5 no",
        "t2 w1 yes", "t2 w2 yes", "t2 w3 yes", "t2 w4 no", "t2 w5 no",
        "t3 w1 yes", "t3 w2 no", "t3 w3 no", "t3 w4 yes", "t3 w5 no",
        "t4 w1 yes", "t4 w2 yes", "t4 w3 yes", "t4 w4 yes", "t4 w5 yes",
        "t5 w1 yes", "t5 w2 no", "t5 w3 no", "t5 w4 no", "t5 w5 no"]


@pytest.fixture(scope="module")
def small():
    return pd.DataFrame([r.split() for r in ROWS], columns=["task", "worker", "label"])


def vote_shares(df):
    counts = df.groupby(["task", "label"]).size().unstack(fill_value=0)
    return counts.div(counts.sum(axis=1), axis=0)


def m_step(df, probas):
    """Dawid-Skene's M-step by hand: errors[(worker, observed), true] normalized per worker."""
    joined = df.join(probas, on="task").drop(columns="task")
    errors = joined.groupby(["worker", "label"]).sum()
    return errors / errors.groupby(level="worker").transform("sum")


def test_zero_iterations_is_the_state_after_initialisation(small):
    ds = cz.DawidSkene(n_iter=0).fit(small)
    shares = vote_shares(small)
    assert ds.fit_ is None and ds.loss_history_ == []
    # the majority vote's shares (Crowd-Kit adds nothing; our start adds 1e-6 per count)
    np.testing.assert_allclose(ds.probas_.loc[shares.index, shares.columns], shares, atol=1e-5)
    np.testing.assert_allclose(ds.priors_[shares.columns], shares.mean(), atol=1e-5)
    want = m_step(small, shares)
    np.testing.assert_allclose(ds.errors_.loc[want.index, want.columns], want, atol=1e-5)
    assert list(ds.labels_.sort_index()) == ["no", "yes", "no", "yes", "no"]  # t1's tie -> first
    # GLAD: the first E-step at the start (all workers alike: a soft majority vote)
    gl = cz.GLAD(n_iter=0).fit(small)
    assert gl.fit_ is None and set(gl.labels_.index) == set(small["task"])
    assert (gl.labels_[["t2", "t3", "t4", "t5"]] == ["yes", "no", "yes", "no"]).all()
    oc = cz.OneCoinDawidSkene(n_iter=0).fit(small)
    np.testing.assert_allclose(oc.probas_.loc[shares.index, shares.columns], shares, atol=1e-5)


def test_probas_are_at_the_final_parameters_not_one_e_step_behind(small):
    """Crowd-Kit's one defect we keep out: its probas_ lag its errors_ by one E-step."""
    ck = pytest.importorskip("crowdkit.aggregation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ck.DawidSkene(n_iter=1).fit(small)
        from crowdkit.aggregation.classification.dawid_skene import DawidSkene as CK

        redone = CK._e_step(small, theirs.priors_.copy(), theirs.errors_)
    ours = cz.DawidSkene(n_iter=1).fit(small)
    # the same parameters after one iteration ...
    np.testing.assert_allclose(ours.errors_.loc[theirs.errors_.index, theirs.errors_.columns],
                               theirs.errors_, atol=1e-5)
    np.testing.assert_allclose(ours.priors_[theirs.priors_.index], theirs.priors_, atol=1e-5)
    # ... ours is the E-step at them; Crowd-Kit's is the E-step before its last M-step
    np.testing.assert_allclose(ours.probas_.loc[redone.index, redone.columns], redone,
                               atol=1e-5)
    before = cz.DawidSkene(n_iter=0).fit(small)
    start = CK._e_step(small, before.priors_.copy(), before.errors_)
    np.testing.assert_allclose(theirs.probas_.loc[start.index, start.columns], start, atol=1e-5)
    lag = theirs.probas_.to_numpy() - redone.loc[theirs.probas_.index].to_numpy()
    assert np.abs(lag).max() > 0.05


@pytest.mark.parametrize("column", ["task", "worker", "label"])
def test_missing_column_is_a_key_error_naming_it(small, column):
    df = small.drop(columns=column)
    for est in (cz.MajorityVote(), cz.OneCoinDawidSkene(), cz.DawidSkene(), cz.GLAD()):
        with pytest.raises(KeyError, match=f"'{column}'") as err:
            est.fit_predict(df)
        assert isinstance(err.value, AnnotationsError)
        assert str(err.value).startswith("missing column")  # not quoted as KeyError's


def test_empty_input_gives_empty_results():
    empty = pd.DataFrame([], columns=["task", "worker", "label"])
    ds = cz.DawidSkene(10).fit(empty)
    pd.testing.assert_frame_equal(ds.probas_, pd.DataFrame())
    pd.testing.assert_frame_equal(ds.errors_, pd.DataFrame())
    pd.testing.assert_series_equal(ds.priors_, pd.Series(dtype=float, name="prior"))
    pd.testing.assert_series_equal(ds.labels_, pd.Series(dtype=float, name="agg_label"))
    oc = cz.OneCoinDawidSkene().fit(empty)
    pd.testing.assert_series_equal(oc.skills_, pd.Series(dtype=float, name="skill"))
    mv = cz.MajorityVote()
    assert mv.fit_predict_proba(empty).empty and mv.skills_.name == "skill"
    gl = cz.GLAD().fit(empty)
    assert gl.probas_.empty and gl.alphas_.name == "alpha" and gl.betas_.name == "beta"


def init_frame(values):
    idx = pd.MultiIndex.from_product([["w1", "w2", "w3", "w4", "w5"], ["yes", "no"]],
                                     names=["worker", "label"])
    return pd.DataFrame(values, index=idx, columns=["no", "yes"])


def test_initial_error_is_validated_as_crowdkit(small):
    zeros = init_frame(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="should be 1.0"):  # probabilities not summing to 1
        cz.DawidSkene(n_iter=10, initial_error_strategy="assign").fit(small, initial_error=zeros)
    with pytest.raises(ValueError, match="every worker"):  # assign needs all the workers
        cz.DawidSkene(n_iter=10, initial_error_strategy="assign").fit(
            small, initial_error=init_frame(np.full((10, 2), 0.5)).iloc[:4])
    # assign at n_iter=0 returns the given matrices themselves (their rows and columns)
    rng = np.random.default_rng(0)
    probs = init_frame(rng.integers(1, 100, size=(10, 2)).astype(float))
    probs = probs / probs.groupby(level="worker").transform("sum")
    got = cz.DawidSkene(n_iter=0, initial_error_strategy="assign").fit(small,
                                                                       initial_error=probs)
    pd.testing.assert_frame_equal(got.errors_, probs)
    # addition at n_iter=0: counts added to the first M-step's expected counts
    counts = zeros.copy()
    counts.loc[("w2", "yes"), :] = [1.1, 0.9]
    counts.loc[("w2", "no"), :] = [0.6, 0.4]
    add = cz.DawidSkene(n_iter=0, initial_error_strategy="addition").fit(small,
                                                                         initial_error=counts)
    raw = (small.join(vote_shares(small), on="task").query("worker == 'w2'")
           .groupby("label")[["no", "yes"]].sum())
    want = (raw + counts.loc["w2"]) / (raw + counts.loc["w2"]).sum()
    np.testing.assert_allclose(add.errors_.loc["w2"].loc[want.index, want.columns], want,
                               atol=1e-5)
    # columns that are not classes are ignored (Crowd-Kit ignores them)
    extra = counts.copy()
    extra["maybe"] = 50.0
    same = cz.DawidSkene(n_iter=3, initial_error_strategy="addition")
    pd.testing.assert_frame_equal(same.fit(small, initial_error=extra).probas_,
                                  cz.DawidSkene(n_iter=3, initial_error_strategy="addition")
                                  .fit(small, initial_error=counts).probas_)


def test_symmetric_crowd_keeps_the_class_frequencies():
    # every worker says "no" to one task in three: all workers are uninformative, the EM
    # fixed point is unstable, and float32 rounding would break the symmetry
    data = pd.DataFrame([{"task": t, "worker": w, "label": "yes" if (w - t) % 3 else "no"}
                         for w in range(300) for t in range(3)])
    ds = cz.DawidSkene(20).fit(data)
    np.testing.assert_allclose(ds.probas_[["no", "yes"]].to_numpy(),
                               np.tile([1 / 3, 2 / 3], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(ds.priors_[["no", "yes"]], [1 / 3, 2 / 3], atol=1e-6)
    assert (ds.labels_ == "yes").all()


def test_tol_not_positive_runs_every_iteration(small):
    for tol in (0.0, -np.inf):
        oc = cz.OneCoinDawidSkene(n_iter=12, tol=tol).fit(small)
        assert len(oc.loss_history_) == 12


# --- the estimators Crowd-Kit 1.4 cannot run on scikit-learn 1.9 -----------------------------
# Crowd-Kit's Wawa, GoldMajorityVote and ZeroBasedSkill fail on scikit-learn 1.9
# ('__sklearn_tags__'), so they are checked against references written here from Crowd-Kit's
# source semantics (vote, agreement, weighted vote), with pandas, the slow way.
def hand_vote(df, skills=None):
    w = df.assign(s=1.0 if skills is None else df["worker"].map(skills))
    scores = w.groupby(["task", "label"])["s"].sum().unstack(fill_value=0)
    return scores.div(scores.sum(axis=1), axis=0), scores.idxmax(axis=1)


def hand_agreement(df, labels):
    d = df.drop_duplicates().assign(ok=lambda x: x["label"] == x["task"].map(labels))
    return d[d["task"].isin(labels.index)].groupby("worker")["ok"].mean()


def test_wawa_and_gold_majority_vote_equal_the_hand_reference(small):
    _, mv = hand_vote(small)
    skills = hand_agreement(small, mv)
    probas, labels = hand_vote(small, skills)
    wawa = cz.Wawa()
    got = wawa.fit_predict_proba(small)
    assert got is wawa.probas_ and wawa.skills_.name == "skill"
    pd.testing.assert_series_equal(wawa.skills_, skills.rename("skill"), check_names=False)
    np.testing.assert_allclose(got.loc[probas.index, probas.columns], probas, atol=1e-12)
    assert (wawa.labels_[labels.index] == labels).all() and wawa.labels_.name == "agg_label"
    gold = pd.Series({"t2": "yes", "t3": "no", "t5": "no"})
    gmv = cz.GoldMajorityVote().fit(small, gold)
    want = hand_agreement(small, gold)
    np.testing.assert_allclose(gmv.skills_[want.index], want, atol=1e-12)
    probas, labels = hand_vote(small, want)
    np.testing.assert_allclose(gmv.predict_proba(small).loc[probas.index, probas.columns],
                               probas, atol=1e-12)
    with pytest.raises(KeyError, match="'task'"):
        cz.GoldMajorityVote().fit(small, pd.DataFrame({"label": ["no"]}))
    with pytest.raises(ValueError, match="skill is missing"):  # a worker without a skill
        cz.GoldMajorityVote().fit(small, pd.Series({"t1": "no"})).predict(small)
    empty = pd.DataFrame({"task": [], "worker": [], "label": []})
    assert cz.GoldMajorityVote().fit_predict_proba(empty, pd.Series(dtype=float)).empty


def test_zero_based_skill_equals_the_hand_reference(small):
    n_iter, K = 45, 2
    skills = pd.Series(1 / K + 1e-5, index=pd.unique(small["worker"]))
    lr = 1.0
    for it in range(1, n_iter + 1):
        if it % 20 == 0:
            lr *= 0.5
        _, labels = hand_vote(small, skills)
        skills = skills + lr * (hand_agreement(small, labels) - skills)
    zbs = cz.ZeroBasedSkill(n_iter=n_iter).fit(small)
    np.testing.assert_allclose(zbs.skills_[skills.index], skills, atol=1e-12)
    _, labels = hand_vote(small, skills)
    assert (zbs.predict(small)[labels.index] == labels).all()
    start = cz.ZeroBasedSkill(n_iter=0).fit(small)  # n_iter=0: the starting skills
    np.testing.assert_allclose(start.skills_, 1 / K + 1e-5)
    assert set(start.predict(small).index) == set(small["task"])


@pytest.fixture(scope="module")
def binary_crowd():
    from crowdzoo.data import simulate
    from crowdzoo.models import DawidSkene as DawidSkeneModel

    sim = simulate(DawidSkeneModel(confusion_prior=(6.0, 2.0)), n_tasks=120, n_workers=8,
                   n_classes=2, answers_per_task=4, seed=5, class_names=["yes", "no"])
    return sim.annotations.to_frame()


def test_kos_and_mmsr_equal_crowdkit(binary_crowd):
    ck = pytest.importorskip("crowdkit.aggregation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kos = ck.KOS(n_iter=10).fit(binary_crowd).labels_
        mmsr = ck.MMSR(n_iter=50).fit(binary_crowd)
    ours = cz.KOS(n_iter=10).fit(binary_crowd).labels_
    pd.testing.assert_series_equal(ours, kos, check_dtype=False, check_index_type=False)
    got = cz.MMSR(n_iter=50).fit(binary_crowd)
    pd.testing.assert_series_equal(got.skills_, mmsr.skills_, check_exact=False, atol=1e-10)
    np.testing.assert_allclose(got.loss_history_, mmsr.loss_history_, atol=1e-10)
    scores = got.fit_predict_score(binary_crowd)
    assert scores is got.scores_ and (got.labels_ == scores.idxmax(axis=1)).all()
    with pytest.raises(ValueError, match="binary"):
        cz.KOS().fit(pd.DataFrame({"task": [1, 2, 3], "worker": [1, 1, 1],
                                   "label": ["a", "b", "c"]}))
    empty = cz.KOS().fit(pd.DataFrame([], columns=["task", "worker", "label"])).labels_
    pd.testing.assert_series_equal(empty, pd.Series([], dtype="O", name="agg_label"))


@pytest.mark.skipif(not has_dataset("product"), reason="../shared/data absent")
def test_mmsr_skills_stay_finite_where_crowdkit_divides_zero_by_zero():
    # product has workers whose agreement with every co-worker is exactly chance: Crowd-Kit's
    # MMSR divides 0 by 0 there and every skill is NaN after one iteration
    frame = require_dataset("product").to_frame()
    got = cz.MMSR(n_iter=50).fit(frame)
    assert np.isfinite(got.skills_).all() and got.loss_history_[-1] < 1e-6
    gold = require_dataset("product").gold_series()
    labels = got.predict(frame)
    assert (labels.reindex(gold.index).astype(str) == gold.astype(str)).mean() > 0.85
