"""Which task to label next: the expected information gain equals a brute-force enumeration.

The brute force takes a different road from :func:`crowdzoo.inference.active` (which reads the
model's ``(P, K, L)`` emission table): for every candidate pair, every possible next answer
``l`` and every draw, it appends the answer to the data, recomputes the exact task posterior
with ``model.log_likelihood`` on the longer data, gets ``p(y' = l)`` as the ratio of the task's
marginal likelihoods after and before, and subtracts the expected posterior entropy from the
prior one, in float64.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import dense_crowd, prior_draw
from crowdzoo.data import Annotations, simulate
from crowdzoo.inference import Fit, next_tasks, pair_information_gain, settled_tasks
from crowdzoo.models import REGISTRY, crowd_data, get_model

import crowdzoo

# short NUTS / SVI fits: the gain is checked against brute force, not the chains' convergence
pytestmark = pytest.mark.filterwarnings(
    "ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")


# --- the brute force ---------------------------------------------------------------------------
def _entropy(p):
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(-1)


def _draws(fit):
    if fit.has_draws:
        return {k: jnp.asarray(np.asarray(v).reshape((-1,) + v.shape[2:]))
                for k, v in fit.samples.items()}
    return {k: jnp.asarray(v)[None] for k, v in fit.params.items()}


def brute_force_gain(fit, task, worker):
    """Per pair: mean over draws of H(z_t | y) - sum_l p(y'=l | y) H(z_t | y, y'=l)."""
    model, data = fit.model, fit.data
    K = data.n_classes
    task = jnp.asarray(task, jnp.int32)
    worker = jnp.asarray(worker, jnp.int32)

    @jax.jit
    def per_draw(params):
        base = model.log_likelihood(params, data)

        def one(t, w, label):
            aug = dataclasses.replace(
                data, task=jnp.append(data.task, t), worker=jnp.append(data.worker, w),
                label=jnp.append(data.label, label), tasks_sorted=False)
            m = model.log_likelihood(params, aug)
            return m.logits[t], m.per_task[t]

        by_label = jax.vmap(one, in_axes=(None, None, 0))
        after_logits, after_ll = jax.vmap(by_label, in_axes=(0, 0, None))(
            task, worker, jnp.arange(K, dtype=jnp.int32))
        return base.logits[task], base.per_task[task], after_logits, after_ll

    gains = []
    draws = _draws(fit)
    n_draws = jax.tree.leaves(draws)[0].shape[0]
    for s in range(n_draws):
        logits0, ll0, logits1, ll1 = (np.asarray(v, np.float64) for v in
                                      per_draw(jax.tree.map(lambda v, s=s: v[s], draws)))
        q = np.exp(logits0 - logits0.max(-1, keepdims=True))
        q /= q.sum(-1, keepdims=True)
        p_answer = np.exp(ll1 - ll0[:, None])  # p(y' = l | y, theta) = p(y, y') / p(y)
        np.testing.assert_allclose(p_answer.sum(-1), 1.0, atol=1e-5)  # a distribution of y'
        post = np.exp(logits1 - logits1.max(-1, keepdims=True))
        post /= post.sum(-1, keepdims=True)
        gains.append(_entropy(q) - (p_answer * _entropy(post)).sum(-1))
    return np.mean(gains, axis=0)


def crowd_weights(fit):
    """r_t(w) ∝ n_w over workers who have not answered t (the documented crowd draw)."""
    a = fit.annotations
    answered = np.zeros((a.n_tasks, a.n_workers), bool)
    answered[a.task, a.worker] = True
    share = np.bincount(a.worker, minlength=a.n_workers).astype(float)
    return np.where(answered, 0.0, share[None, :])


# --- fitted models: MAP (per-worker and per-task parameters), NUTS and SVI draws -------------
@pytest.fixture(scope="module")
def sim():
    crowd = simulate("dawid_skene", n_tasks=30, n_workers=7, n_classes=3, answers_per_task=3,
                     seed=4)
    return crowd.annotations


FITS = {
    "dawid_skene-map": ("dawid_skene", "map", {}),
    "glad-map": ("glad", "map", {}),
    "one_coin-map": ("one_coin", "map", {}),
    "dawid_skene-nuts": ("dawid_skene", "nuts",
                         {"num_warmup": 40, "num_samples": 6, "num_chains": 1}),
    "glad-svi": ("glad", "svi", {"num_steps": 100, "num_draws": 6}),
}


@pytest.fixture(scope="module")
def fits(sim):
    return {key: crowdzoo.fit(name, sim, method=method, seed=1, progress=False, **opts)
            for key, (name, method, opts) in FITS.items()}


@pytest.mark.parametrize("key", list(FITS))
def test_gain_equals_brute_force(fits, key):
    """Pairs (every worker) and crowd mode: the gains equal the enumeration to 1e-6."""
    fit = fits[key]
    a = fit.annotations
    pairs = next_tasks(fit, None, workers=list(a.worker_ids))
    t = a.task_ids.get_indexer(pairs.index.get_level_values("task"))
    w = a.worker_ids.get_indexer(pairs.index.get_level_values("worker"))
    expected = brute_force_gain(fit, t, w)
    assert len(pairs) == a.n_tasks * a.n_workers - len(set(zip(a.task, a.worker, strict=True)))
    np.testing.assert_allclose(pairs["expected_information_gain"], expected, rtol=0, atol=1e-6)
    assert expected.max() > 0.05  # the comparison is not between zeros
    # crowd mode: the answer-share-weighted average of the pair gains
    tasks = next_tasks(fit, None)
    weight = crowd_weights(fit)
    gains = np.zeros((a.n_tasks, a.n_workers))
    gains[t, w] = expected
    want = (weight * gains).sum(1) / weight.sum(1)
    got = tasks["expected_information_gain"].to_numpy()
    np.testing.assert_allclose(got, want[a.task_ids.get_indexer(tasks.index)], rtol=0, atol=1e-6)
    assert np.all(np.diff(got) <= 0)  # ranked
    post = fit.task_posterior().loc[tasks.index].to_numpy()
    np.testing.assert_allclose(tasks["p_max"], post.max(1))
    np.testing.assert_allclose(tasks["entropy"], _entropy(post), atol=1e-12)


def test_draws_use_per_draw_posteriors(fits):
    """With draws, the gain is the mean of per-draw gains, not the gain of the mean posterior."""
    fit = fits["dawid_skene-nuts"]
    a = fit.annotations
    t, w = np.repeat(np.arange(a.n_tasks), a.n_workers), np.tile(np.arange(a.n_workers), a.n_tasks)
    gain = pair_information_gain(fit, t, w)
    # the mixture's mutual information from the same per-draw tables differs
    draws = _draws(fit)
    pairs = dataclasses.replace(fit.data, task=jnp.asarray(t, jnp.int32),
                                worker=jnp.asarray(w, jnp.int32), label=None)
    joint = 0.0
    for s in range(jax.tree.leaves(draws)[0].shape[0]):
        p = jax.tree.map(lambda v, s=s: v[s], draws)
        q = np.asarray(jax.nn.softmax(fit.model.log_likelihood(p, fit.data).logits, -1))[t]
        e = np.exp(np.asarray(fit.model.log_terms(p, pairs, None)[1], np.float64))
        joint = joint + q[:, :, None] * e
    joint /= jax.tree.leaves(draws)[0].shape[0]
    p_y = joint.sum(1, keepdims=True)
    q_bar = joint.sum(2)
    mixture = (joint * np.log(joint / (q_bar[:, :, None] * p_y))).sum((1, 2))
    assert np.abs(mixture - gain).max() > 1e-4


def test_draws_in_chunks(fits, monkeypatch):
    """Draws processed in chunks (the last one padded) give the same gains."""
    from crowdzoo.inference import active

    fit = fits["glad-svi"]
    a = fit.annotations
    t, w = np.repeat(np.arange(a.n_tasks), a.n_workers), np.tile(np.arange(a.n_workers), a.n_tasks)
    whole = pair_information_gain(fit, t, w)
    monkeypatch.setattr(active, "POSTERIOR_ENTRIES", 4 * a.n_tasks * a.n_classes)  # 6 = 4 + 2
    np.testing.assert_allclose(pair_information_gain(fit, t, w), whole, rtol=0, atol=1e-7)


# --- every registered model: the kernel equals the brute force at a prior draw ----------------
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_model(name):
    """Models with a proper likelihood: exact; the others: a clear error (baselines such as
    majority vote are outside the registry: test_errors)."""
    model = get_model(name)
    K = 2 if model.binary_only else 3
    ann, _, _ = dense_crowd(K, seed=2, n_tasks=6, n_workers=4, features=True)
    data = crowd_data(ann)
    params = {k: np.asarray(v) for k, v in prior_draw(model, data, seed=3).items()}
    fit = Fit(model, "map", ann, data, params=params)
    t, w = np.repeat(np.arange(6), 4), np.tile(np.arange(4), 6)
    if not model.proper_likelihood:
        with pytest.raises(ValueError, match="statistic of each task's own answers"):
            pair_information_gain(fit, t, w)
        return
    if not model.answers_independent_given_label:  # an item effect couples a task's answers
        with pytest.raises(ValueError, match="per-task item effect"):
            pair_information_gain(fit, t, w)
        return
    np.testing.assert_allclose(pair_information_gain(fit, t, w), brute_force_gain(fit, t, w),
                               rtol=0, atol=1e-6)


# --- candidates: gold, answered pairs, workers ---------------------------------------------
@pytest.fixture(scope="module")
def gold_fit(sim):
    gold = pd.Series({sim.task_ids[i]: sim.classes[int(sim.label[3 * i])] for i in range(5)})
    return crowdzoo.fit("dawid_skene", sim.with_gold(gold), use_gold=True)


def test_gold_never_suggested(gold_fit):
    gold_ids = set(gold_fit.annotations.task_ids[:5])
    assert not gold_ids & set(next_tasks(gold_fit, None).index)
    pairs = next_tasks(gold_fit, None, workers=list(gold_fit.annotations.worker_ids),
                       allow_repeats=True)
    assert not gold_ids & set(pairs.index.get_level_values("task"))
    settled = settled_tasks(gold_fit, 0.99)
    assert gold_ids <= set(settled.index[settled["gold"]])
    # held out for scoring (use_gold=False): the tasks are candidates again
    held_out = crowdzoo.fit("dawid_skene", gold_fit.annotations, use_gold=False)
    assert gold_ids <= set(next_tasks(held_out, None).index)


def test_answered_pairs_and_repeats(fits):
    fit = fits["dawid_skene-map"]
    a = fit.annotations
    done = set(zip(a.task_ids[a.task], a.worker_ids[a.worker], strict=True))
    pairs = next_tasks(fit, None, workers=list(a.worker_ids))
    assert not done & set(pairs.index)
    repeats = next_tasks(fit, None, workers=list(a.worker_ids), allow_repeats=True)
    assert done <= set(repeats.index) and len(repeats) == a.n_tasks * a.n_workers
    top = next_tasks(fit, 4, workers=[a.worker_ids[2], str(a.worker_ids[0])])
    assert len(top) == 4
    assert set(top.index.get_level_values("worker")) <= {a.worker_ids[2], a.worker_ids[0]}
    assert list(next_tasks(fit, 3).index) == list(next_tasks(fit, None).index[:3])


def test_crowd_mode_skips_tasks_everyone_answered():
    frame = pd.DataFrame({"task": ["a", "a", "b", "c", "c"], "worker": ["u", "v", "u", "u", "v"],
                          "label": [0, 1, 1, 0, 0]})
    fit = crowdzoo.fit("one_coin", Annotations.from_frame(frame))
    assert list(next_tasks(fit, None).index) == ["b"]
    assert len(next_tasks(fit, None, allow_repeats=True)) == 3


def test_settled_tasks(fits):
    fit = fits["glad-map"]
    post = fit.task_posterior().to_numpy()
    for threshold in (0.5, 0.9, 1.0):
        settled = settled_tasks(fit, threshold)
        assert set(settled.index) == set(fit.annotations.task_ids[post.max(1) >= threshold])
        assert np.all(np.diff(settled["p_max"].to_numpy()) <= 0)
    mv = crowdzoo.fit("majority_vote", fit.annotations)
    assert len(settled_tasks(mv, 1.0)) > 0


# --- errors ------------------------------------------------------------------------------------
def test_errors(fits):
    fit = fits["dawid_skene-map"]
    for bad, err in ((0, ValueError), (-2, ValueError), (2.5, TypeError), ("3", TypeError),
                     (True, TypeError)):
        with pytest.raises(err, match="n must be"):
            next_tasks(fit, bad)
    with pytest.raises(ValueError, match=r"not in the fitted data.*nobody"):
        next_tasks(fit, 3, workers=["nobody"])
    with pytest.raises(TypeError, match="list of worker ids"):
        next_tasks(fit, 3, workers=fit.annotations.worker_ids[0])
    with pytest.raises(ValueError, match="workers is empty"):
        next_tasks(fit, 3, workers=[])
    with pytest.raises(TypeError, match="expected a crowdzoo Fit"):
        next_tasks(fit.task_posterior(), 3)
    for bad in (0.0, 1.5, -1):
        with pytest.raises(ValueError, match="threshold"):
            settled_tasks(fit, bad)
    with pytest.raises(TypeError, match="threshold"):
        settled_tasks(fit, "0.9")
    mv = crowdzoo.fit("majority_vote", fit.annotations)
    with pytest.raises(ValueError, match="baseline without a likelihood"):
        next_tasks(mv, 3)


def test_top_level_names():
    assert crowdzoo.next_tasks is next_tasks
    assert crowdzoo.settled_tasks is settled_tasks
    assert "next_tasks" in dir(crowdzoo)


# --- command line --------------------------------------------------------------------------------
def test_cli_next(sim, tmp_path, capsys):
    from crowdzoo.cli import main

    answers = tmp_path / "answers.csv"
    sim.to_frame().to_csv(answers, index=False)
    out = tmp_path / "next.csv"
    assert main(["next", str(answers), "--n", "7", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["task", "expected_information_gain"] and len(table) == 7
    fit = crowdzoo.fit("dawid_skene", Annotations.from_frame(pd.read_csv(answers, dtype=str)))
    want = next_tasks(fit, 7)
    assert list(table["task"].astype(str)) == [str(t) for t in want.index]
    np.testing.assert_allclose(table["expected_information_gain"],
                               want["expected_information_gain"], atol=1e-6)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{sim.worker_ids[1]}\n\n{sim.worker_ids[3]}\n")
    assert main(["next", str(answers), "--n", "5", "--workers", str(ids), "--out",
                 str(out)]) == 0
    pairs = pd.read_csv(out, dtype={"worker": str})
    assert list(pairs.columns[:3]) == ["task", "worker", "expected_information_gain"]
    assert set(pairs["worker"]) <= {str(sim.worker_ids[1]), str(sim.worker_ids[3])}
    capsys.readouterr()
    ids.write_text("nobody\n")
    assert main(["next", str(answers), "--workers", str(ids), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nobody" in err[0]
    assert main(["next", str(answers), "--n", "0", "--out", str(out)]) == 2
    assert main(["next", str(answers), "--model", "majority_vote", "--out", str(out)]) == 2
    assert "baseline" in capsys.readouterr().err
    assert main(["next", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
