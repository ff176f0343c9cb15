"""The Crowd-Kit drop-in layer: the same script against crowdkit and crowdzoo.aggregation.

The data are well-conditioned on purpose (as in ``test_parity.py``): ~190 answers per worker
from a Dawid-Skene crowd with informative confusion matrices, so maximum-likelihood EM (flat
priors, Crowd-Kit's estimators) reaches an interior fixed point in a few dozen iterations
instead of creeping towards the boundary for hundreds. Both libraries then run the *same
number* of EM iterations (``tol=-inf``): our ``n_iter=n`` is Crowd-Kit's ``n_iter=n`` (one
M-step from the majority vote, then ``n`` rounds of E-step + M-step), so the parameters
(``errors_``, ``priors_``, ``skills_``, ``alphas_``, ``betas_``) are comparable after any
``n``; Crowd-Kit's ``probas_`` is the E-step *before* its last M-step (ours: after), so the
script runs enough iterations for that lag to be below the tolerances.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from crowdzoo.data import AnnotationsError, simulate
from crowdzoo.models import DawidSkene as DawidSkeneModel

import crowdzoo.aggregation as cz

ck = pytest.importorskip("crowdkit.aggregation")

#: iterations of each estimator in the script. Measured lag of Crowd-Kit's probas_ on these
#: data: Dawid-Skene 30 iterations 8e-4, 50 -> <1e-4; one-coin 30 -> 1e-6; GLAD 2 -> 3e-2,
#: 5 -> 3e-4 (Crowd-Kit's GLAD costs ~1 s per iteration here: kept short)
N_ITER = {"oc": 30, "ds": 50, "gl": 5}
#: values tolerance (absolute, probabilities and parameters); labels must agree on every task
ATOL = {"mv": 1e-12, "oc": 1e-4, "ds": 5e-4, "gl": 3e-3}


def answers():
    """1,500 answers, 300 tasks, 8 workers (~190 answers each), classes named out of order."""
    sim = simulate(DawidSkeneModel(confusion_prior=(8.0, 1.0)), n_tasks=300, n_workers=8,
                   n_classes=3, answers_per_task=5, seed=11, class_names=["b", "a", "c"])
    # shuffled rows: first-appearance orders differ from sorted ones
    return sim.annotations.to_frame().sample(frac=1.0, random_state=0).reset_index(drop=True)


def script(lib, df):
    """A user's Crowd-Kit script; only the import changes."""
    out = {}
    mv = lib.MajorityVote()
    out["mv.labels_"] = mv.fit_predict(df)
    out["mv.probas_"], out["mv.skills_"] = mv.probas_, mv.skills_
    oc = lib.OneCoinDawidSkene(n_iter=N_ITER["oc"], tol=-np.inf)
    out["oc.probas_"] = oc.fit_predict_proba(df)
    for a in ("labels_", "priors_", "errors_", "skills_", "loss_history_"):
        out[f"oc.{a}"] = getattr(oc, a)
    ds = lib.DawidSkene(n_iter=N_ITER["ds"], tol=-np.inf)
    out["ds.labels_"] = ds.fit_predict(df)
    for a in ("probas_", "priors_", "errors_", "loss_history_"):
        out[f"ds.{a}"] = getattr(ds, a)
    gl = lib.GLAD(n_iter=N_ITER["gl"], tol=-np.inf)
    out["gl.labels_"] = gl.fit_predict(df)
    for a in ("probas_", "priors_", "alphas_", "betas_", "loss_history_"):
        out[f"gl.{a}"] = getattr(gl, a)
    return out


@pytest.fixture(scope="module")
def frame():
    return answers()


@pytest.fixture(scope="module")
def both(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Crowd-Kit's own pandas warnings
        theirs = script(ck, frame.copy())
    before = frame.copy()
    ours = script(cz, frame)
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is not mutated
    return theirs, ours


def test_same_types_indexes_columns_and_values(both):
    theirs, ours = both
    assert theirs.keys() == ours.keys()
    for key, x in theirs.items():
        y = ours[key]
        assert type(x) is type(y), key
        if isinstance(x, list):  # different objectives by design (see crowdzoo.aggregation)
            assert len(y) == len(x) == N_ITER[key[:2]], key
            assert all(isinstance(v, float) for v in y), key
            continue
        assert x.index.names == y.index.names, key
        assert x.index.equals(y.index), key  # same ids, same order
        if x.index.nlevels == 1:
            assert x.index.dtype == y.index.dtype, key
        if isinstance(x, pd.DataFrame):
            assert x.columns.equals(y.columns) and x.columns.name == y.columns.name, key
            assert x.columns.dtype == y.columns.dtype, key
        else:
            assert x.name == y.name and x.dtype == y.dtype, key
        if key.endswith("labels_"):
            assert (x == y).all(), f"{key}: agree on {(x == y).mean():.3f}"
        else:
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float),
                                       atol=ATOL[key[:2]], rtol=0, err_msg=key)


def test_fit_is_exposed_and_method_switches(frame):
    # the same static settings as the script's estimators: the compiled EM is reused
    est = cz.DawidSkene(n_iter=N_ITER["ds"])
    est.fit(frame)
    assert est.fit_.method == "map" and est.fit_.model.name == "dawid_skene"
    assert len(est.loss_history_) == est.fit_.diagnostics["n_iter"]
    assert est.fit_.diagnostics["converged"]  # well-conditioned: tol met before n_iter
    assert "posterior" in est.fit_.to_arviz().children
    nuts = cz.OneCoinDawidSkene(method="nuts", fit_options={"num_warmup": 100,
                                                            "num_samples": 100,
                                                            "num_chains": 2})
    probas = nuts.fit_predict_proba(frame)
    assert nuts.fit_.method == "nuts" and nuts.fit_.samples["accuracy"].shape == (2, 100, 8)
    np.testing.assert_allclose(probas.sum(axis=1), 1.0, atol=1e-6)
    mapfit = cz.OneCoinDawidSkene(n_iter=N_ITER["oc"], tol=-np.inf).fit(frame)
    # the posterior mean of p(z | params, y) and the MAP plug-in differ only on close calls
    np.testing.assert_allclose(nuts.skills_, mapfit.skills_, atol=0.05)
    assert (nuts.labels_ == mapfit.labels_).mean() >= 0.97


@pytest.mark.parametrize("strategy", ["assign", "addition"])
def test_true_labels_and_initial_error_like_crowdkit(frame, strategy):
    from crowdkit.aggregation.classification.dawid_skene import DawidSkene as CK

    tasks = pd.unique(frame["task"])
    gold = pd.Series({tasks[3]: "a", tasks[10]: "c", "nowhere": "b"})
    workers = pd.unique(frame["worker"])
    labels = ["b", "a", "c"]
    idx = pd.MultiIndex.from_product([workers, labels], names=["worker", "label"])
    rng = np.random.default_rng(0)
    init = pd.DataFrame(rng.integers(1, 10, size=(len(idx), 3)).astype(float), index=idx,
                        columns=labels)
    if strategy == "assign":  # probabilities: each worker's columns sum to one
        init = init / init.groupby("worker").transform("sum")
    before = init.copy()
    # three rounds: initial_error only acts at the start, so compare early
    n = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = CK(n_iter=n, tol=-np.inf, initial_error_strategy=strategy).fit(
            frame, true_labels=gold, initial_error=init.copy())  # Crowd-Kit mutates it
    y = cz.DawidSkene(n_iter=n, tol=-np.inf, initial_error_strategy=strategy).fit(
        frame, true_labels=gold, initial_error=init)
    pd.testing.assert_frame_equal(init, before)  # not mutated
    # the parameters after n M-steps, directly
    np.testing.assert_allclose(y.errors_.to_numpy(), x.errors_.loc[y.errors_.index,
                               y.errors_.columns].to_numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(y.priors_.to_numpy(), x.priors_[y.priors_.index].to_numpy(),
                               atol=1e-4, rtol=0)
    # our probas_ are the E-step at those parameters (Crowd-Kit's lag one M-step): redo theirs
    theirs = CK._e_step(frame, x.priors_.copy(), x.errors_)
    theirs = CK._correct_probas_with_golden(theirs, gold[gold.index != "nowhere"])
    np.testing.assert_allclose(y.probas_.to_numpy(), theirs.loc[y.probas_.index,
                               y.probas_.columns].to_numpy(), atol=1e-4, rtol=0)
    assert y.probas_.loc[tasks[3]].idxmax() == "a" and y.probas_.loc[tasks[10]].idxmax() == "c"


def test_bad_input_gets_the_errors_of_fit(frame):
    df = frame
    # a missing column: our AnnotationsError and the KeyError Crowd-Kit's callers catch
    with pytest.raises(AnnotationsError, match=r"missing column\(s\) \['worker'\]") as err:
        cz.DawidSkene().fit(df.drop(columns="worker"))
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    bad = df.copy()
    bad.loc[3, "label"] = None
    with pytest.raises(AnnotationsError, match="NaN"):
        cz.GLAD().fit(bad)
    with pytest.raises(TypeError, match="DataFrame"):
        cz.MajorityVote().fit(df.to_numpy())
    with pytest.raises(ValueError, match="n_iter"):
        cz.DawidSkene(n_iter=-1).fit(df)
