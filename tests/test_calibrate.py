"""Tempered task posteriors (crowdzoo.inference.calibrate) and the reliability diagram.

The simulated crowds: 600 binary tasks, 30 workers of accuracy U(0.65, 0.9), 15 answers per
task. In the *heterogeneous* crowd a fifth of the tasks are hard: every worker answers them
right with probability 0.45, whoever they are -- the answers to one task are dependent given
its label, which no model assuming independence can see, so Dawid-Skene's posteriors are
overconfident there (ECE ~0.10 on three seeds, accuracy ~0.87). The power chosen without
gold (leave-one-answer-out) was 0.4-0.5 on those seeds and brought the ECE to 0.057-0.079
with the same accuracy; on the *independent* crowd (no hard tasks) it chose 1.0 on every
seed, leaving the posterior as it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crowdzoo.inference.calibrate import choose_temperature, tempered_posterior
from crowdzoo.inference.compare import calibration_curve, expected_calibration_error

import crowdzoo


def _crowd(seed: int, hard_share: float, n_tasks=600, n_workers=30, per_task=15):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n_tasks)
    acc = rng.uniform(0.65, 0.9, n_workers)
    hard = rng.random(n_tasks) < hard_share
    rows = []
    for t in range(n_tasks):
        ws = rng.choice(n_workers, per_task, replace=False)
        right = rng.random(per_task) < np.where(hard[t], 0.45, acc[ws])
        rows += [(f"t{t:04d}", f"w{w:02d}", str(z[t] if r else 1 - z[t]))
                 for w, r in zip(ws, right, strict=True)]
    ann = crowdzoo.Annotations.from_frame(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    order = np.array([int(t[1:]) for t in ann.task_ids])
    classes = [str(c) for c in ann.classes]
    return ann, np.array([classes.index(str(v)) for v in z[order]])


@pytest.fixture(scope="module")
def fits():
    out = {}
    for name, share in (("heterogeneous", 0.2), ("independent", 0.0)):
        ann, truth = _crowd(1, share)
        out[name] = (crowdzoo.fit("dawid_skene", ann, method="map", progress=False), truth)
    return out


def test_power_one_is_the_fit_itself(fits):
    fit, _ = fits["heterogeneous"]
    np.testing.assert_allclose(tempered_posterior(fit, 1.0).to_numpy(),
                               fit.task_posterior().to_numpy(), atol=2e-5)
    t = tempered_posterior(fit, 0.3)
    assert list(t.index) == list(fit.task_posterior().index)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-9)
    # a weaker likelihood can only pull the top class towards the prior, never past it
    assert (t.max(axis=1) <= fit.task_posterior().max(axis=1) + 1e-6).mean() > 0.95


def test_heterogeneous_crowd_is_tempered_and_calibrated(fits):
    fit, truth = fits["heterogeneous"]
    choice = choose_temperature(fit)
    plain = fit.task_posterior().to_numpy()
    tempered = tempered_posterior(fit, choice.power).to_numpy()
    assert 0.3 <= choice.power <= 0.6
    ece_plain = expected_calibration_error(plain, truth)
    ece_t = expected_calibration_error(tempered, truth)
    assert ece_plain > 0.08  # the overconfidence is there to fix
    assert ece_t < 0.075 and ece_t < ece_plain - 0.03
    acc = (tempered.argmax(1) == truth).mean()
    assert acc >= (plain.argmax(1) == truth).mean() - 0.005
    # the chosen power is the best of the table, and the table has every power tried
    assert choice.table["loao_lpd"].idxmax() == choice.power
    assert len(choice.table) == 14


def test_independent_crowd_is_left_alone(fits):
    fit, truth = fits["independent"]
    choice = choose_temperature(fit)
    assert choice.power == 1.0
    assert expected_calibration_error(fit.task_posterior().to_numpy(), truth) < 0.02


def test_leave_one_answer_out_by_hand(fits):
    """The LOAO predictive of one answer, recomputed from the model's terms by a loop."""
    import jax.numpy as jnp

    fit, _ = fits["independent"]
    d = fit.data
    lp, le = fit.model.log_terms({k: jnp.asarray(v) for k, v in fit.params.items()}, d, d.label)
    lp, le = np.asarray(lp, float), np.asarray(le, float)
    task = np.asarray(d.task)
    total = {0.5: 0.0, 1.0: 0.0}
    for power in total:
        for n in range(len(task)):
            others = (task == task[n]) & (np.arange(len(task)) != n)
            logits = np.broadcast_to(lp, (d.n_tasks, d.n_classes))[task[n]] + power * le[
                others].sum(0)
            q = np.exp(logits - logits.max())
            q /= q.sum()
            total[power] += np.log((q * np.exp(le[n])).sum())
    table = choose_temperature(fit, powers=(1.0, 0.5)).table
    for power, value in total.items():
        assert table.loc[power, "loao_lpd"] == pytest.approx(value, rel=1e-6)


def test_bad_input(fits):
    fit, _ = fits["independent"]
    with pytest.raises(ValueError, match="power must be in"):
        tempered_posterior(fit, 0.0)
    with pytest.raises(ValueError, match="powers must be"):
        choose_temperature(fit, powers=(1.0, 1.5))


def test_refuses_an_item_effect_model():
    ann = crowdzoo.data.load_demo()
    fit = crowdzoo.fit("item_difficulty", ann, method="map", progress=False)
    with pytest.raises(ValueError, match="not independent given the label"):
        choose_temperature(fit)


def test_reliability_diagram_shows_counts(fits):
    from crowdzoo.plots import plot_reliability

    fit, truth = fits["heterogeneous"]
    probs = fit.task_posterior().to_numpy()
    fig = plot_reliability(probs, truth)
    ax = fig.axes[0]
    curve = calibration_curve(probs, truth)
    assert len(ax.patches) == len(curve)  # one bar per non-empty bin
    counts = sorted(int(t.get_text()) for t in ax.texts)
    assert counts == sorted(curve["count"]) and sum(counts) == len(truth)
    np.testing.assert_allclose(sorted(p.get_height() for p in ax.patches),
                               sorted(curve["accuracy"]))
    assert f"{expected_calibration_error(probs, truth):.3f}" in ax.get_title()
