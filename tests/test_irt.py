"""Han, Adiguzel & Carpenter's IRT rating models (irt_1pl, irt_2pl, irt_3pl).

Their exact marginal likelihood is checked against NumPyro's enumeration in
``tests/test_exactness.py`` (the rows transcribe the paper's Stan ``LOG-LIKELIHOOD.stan``); the
conformance and SBC tests cover them as registered models. Here: the reduction to two-coin
Dawid-Skene, the cooperative prior, recovery of known parameters.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from crowdzoo.data import simulate
from crowdzoo.models import crowd_data, get_model
from numpyro.infer import Predictive

import crowdzoo


def random_crowd(n_tasks=30, n_workers=5, n_classes=2, per_task=4, seed=2):
    """Random binary answers (no simulator: cheap)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [(t, w, int(rng.integers(n_classes))) for t in range(n_tasks)
            for w in rng.choice(n_workers, per_task, replace=False)]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return crowdzoo.data.Annotations.from_frame(frame)


@pytest.mark.parametrize("name", ["irt_1pl", "irt_2pl", "irt_3pl"])
def test_item_effects_off_is_two_coin_dawid_skene(name):
    """difficulty 0, discrimination 1, guessing 0: Dawid-Skene with sens / spec per worker
    (the item effects as parameters: ``integrate_items=False``)."""
    model = type(get_model(name))(integrate_items=False)
    data = crowd_data(random_crowd())
    rng = np.random.default_rng(0)
    sens, spec = rng.normal(1.0, 1.0, 5), rng.normal(2.0, 1.0, 5)
    params = {"pi": jnp.array([0.6, 0.4]), "alpha_sum": jnp.asarray(sens + spec),
              "alpha_diff": jnp.asarray(sens - spec), "difficulty": jnp.zeros(data.n_tasks)}
    if model.has_discrimination:
        params["discrimination"] = jnp.ones(data.n_tasks)
    if model.has_guessing:
        params["guessing"] = jnp.zeros(data.n_tasks)
    ours = model.log_likelihood(params, data)
    s, p = 1 / (1 + np.exp(-sens)), 1 / (1 + np.exp(-spec))
    confusion = np.stack([np.stack([p, 1 - p], -1), np.stack([1 - s, s], -1)], -2)  # (W, z, y)
    ds = get_model("dawid_skene").log_likelihood(
        {"pi": params["pi"], "confusion": jnp.asarray(confusion, jnp.float32)}, data)
    np.testing.assert_allclose(np.asarray(ours.per_task), np.asarray(ds.per_task), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.nn.softmax(ours.logits)),
                               np.asarray(jax.nn.softmax(ds.logits)), atol=1e-5)


def test_cooperative_prior_is_stans_restricted_normals():
    """alpha_spec ~ N(2, 2), alpha_sens ~ N(1, 2) restricted to alpha_sens + alpha_spec > 0.

    The model samples the independent sum (truncated) and difference; compare its moments with
    rejection sampling from the Stan program's two normals.
    """
    model = get_model("irt_1pl")
    data = crowd_data(random_crowd(n_tasks=3, n_workers=2, per_task=1))
    draws = Predictive(model.sample_params, num_samples=40000)(jax.random.PRNGKey(0), data)
    sens, spec = model.alphas(draws)
    sens, spec = np.asarray(sens).ravel(), np.asarray(spec).ravel()
    assert (sens + spec > 0).all()
    rng = np.random.default_rng(0)
    a_spec, a_sens = rng.normal(2, 2, 400000), rng.normal(1, 2, 400000)
    keep = a_sens > -a_spec
    for ours, ref in ((sens, a_sens[keep]), (spec, a_spec[keep])):
        assert abs(ours.mean() - ref.mean()) < 0.03, (ours.mean(), ref.mean())
        assert abs(ours.std() - ref.std()) < 0.03, (ours.std(), ref.std())
    np.testing.assert_allclose(np.corrcoef(sens, spec)[0, 1], np.corrcoef(a_sens[keep],
                               a_spec[keep])[0, 1], atol=0.02)


@pytest.mark.parametrize("integrate", [False, True])
def test_recovery_1pl(integrate):
    """Known raters and difficulties (800 items, 10 raters, 8 answers each): the MAP finds
    every rater's log-odds sensitivity / specificity within 0.75 (mean error < 0.35; the joint
    MAP shrinks the item difficulties, which biases the raters a little), difficulties with
    correlation > 0.5, and the true labels with accuracy > 0.9. With ``integrate_items`` the
    MAP is the marginal mode and the difficulties are their posterior means given it."""
    from crowdzoo.models.irt import IRT1PL

    rng = np.random.default_rng(0)
    W, T = 10, 800
    sens, spec = rng.normal(1.5, 0.7, W), rng.normal(2.5, 0.7, W)
    beta = rng.normal(0, 1, T)
    params = {"pi": np.array([0.7, 0.3]), "alpha_sum": sens + spec, "alpha_diff": sens - spec,
              "difficulty": beta}
    sim = simulate("irt_1pl", n_tasks=T, n_workers=W, n_classes=2, answers_per_task=8,
                   params=params, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = crowdzoo.fit(IRT1PL(integrate_items=integrate), sim.annotations, method="map",
                           progress=False)
    w = fit.workers()
    err = np.r_[w["alpha_sens"].to_numpy() - sens, w["alpha_spec"].to_numpy() - spec]
    assert np.abs(err).max() < 0.75 and np.abs(err).mean() < 0.35, err
    assert np.corrcoef(fit.tasks()["difficulty"].to_numpy(), beta)[0, 1] > 0.5
    truth = sim.true_labels.astype(str).to_numpy()
    assert (fit.labels().astype(str).to_numpy() == truth).mean() > 0.9
    assert abs(float(fit.params["pi"][1]) - 0.3) < 0.05


def test_rejects_multiclass():
    with pytest.raises(ValueError, match="irt_2pl is binary"):
        crowdzoo.fit("irt_2pl", random_crowd(n_classes=3), method="map", progress=False)


def test_settings_are_checked():
    from crowdzoo.models.irt import IRT2PL

    with pytest.raises(ValueError, match="same scale"):
        IRT2PL(spec_prior=(2.0, 1.0))
    with pytest.raises(ValueError, match="discrimination_prior"):
        IRT2PL(discrimination_prior=(0.0, -1.0))
    with pytest.raises(TypeError, match="integrate_items"):
        IRT2PL(integrate_items="yes")
    with pytest.raises(ValueError, match="item_nodes"):
        IRT2PL(integrate_items=True, item_nodes=2)
    assert IRT2PL().integrate_items is False and IRT2PL(integrate_items=True).integrate_items
    assert IRT2PL() != IRT2PL(integrate_items=True)  # distinct compiled programs


# --- the integrated LOO (each task's own parameters summed out of its term) -----------------
def _brute_force_task_terms(model, params, data, grids):
    """``log E_prior[p(y_t | theta, phi_t)]`` of every task on a fine tensor grid (a Riemann
    sum with normalized prior weights)."""
    from scipy.stats import beta as beta_dist
    from scipy.stats import lognorm, norm

    axes, logw = [], []
    for site, values in grids.items():
        if site in ("difficulty", "log_beta"):
            loc, scale = (model.difficulty_prior if site == "difficulty"
                          else (float(np.asarray(model.betas_priors_mean)), 1.0))
            lp = norm.logpdf(values, loc, scale)
        elif site == "discrimination":
            lp = lognorm.logpdf(values, model.discrimination_prior[1],
                                scale=np.exp(model.discrimination_prior[0]))
        else:
            lp = beta_dist.logpdf(values, *model.guessing_prior)
        axes.append(values)
        logw.append(lp + np.log(np.gradient(values)))
    mesh = np.meshgrid(*axes, indexing="ij")
    wmesh = sum(np.meshgrid(*logw, indexing="ij"))
    flat = {k: jnp.asarray(m.ravel(), jnp.float32) for k, m in zip(grids, mesh, strict=True)}

    @jax.jit
    def terms(flat):
        def term(node):
            full = {k: jnp.broadcast_to(v, (data.n_tasks,)) for k, v in node.items()}
            return model.log_likelihood({**params, **full}, data).per_task

        return jax.lax.map(term, flat, batch_size=4096)

    vals = np.asarray(terms(flat), float)  # (nodes, T)
    w = wmesh.ravel() - np.logaddexp.reduce(wmesh.ravel())  # normalized prior weights
    return np.logaddexp.reduce(vals + w[:, None], axis=0)


GRIDS = {
    "irt_1pl": {"difficulty": np.linspace(-7, 7, 1401)},
    "irt_2pl": {"difficulty": np.linspace(-6, 6, 241),
                "discrimination": np.exp(np.linspace(-1.5, 1.5, 121))},
    "irt_3pl": {"difficulty": np.linspace(-6, 6, 121),
                "discrimination": np.exp(np.linspace(-1.5, 1.5, 41)),
                "guessing": np.linspace(0.0005, 0.9995, 81)},
    "glad": {"log_beta": 1.0 + np.linspace(-7, 7, 1401)},
}


@pytest.mark.parametrize("name", list(GRIDS))
def test_integrated_term_equals_brute_force_quadrature(name):
    """The model's quadrature rule gives the same per-task term as a fine grid over the
    task's prior (to 5e-4 in log), on every task of a small crowd at a prior draw: the LOO
    term of the model with per-task parameters and, for the IRT models, the likelihood of
    the model that integrates them itself (``integrate_items=True``)."""
    default = get_model(name)
    irt = name.startswith("irt")
    model = type(default)(integrate_items=False) if irt else default
    data = crowd_data(random_crowd(n_tasks=4, n_workers=6, per_task=6, seed=3))
    draw = Predictive(model.sample_params, num_samples=1)(jax.random.PRNGKey(5), data)
    params = {k: v[0] for k, v in draw.items()}
    ours = np.asarray(jax.jit(model.integrated_task_log_lik)(params, data))
    ref = _brute_force_task_terms(model, params, data, GRIDS[name])
    np.testing.assert_allclose(ours, ref, atol=5e-4)
    # and it is not the plain term at the draw's own task parameters
    assert not np.allclose(ours, np.asarray(model.log_likelihood(params, data).per_task),
                           atol=1e-2)
    if irt:
        inner = type(default)(integrate_items=True)
        assert inner.task_quadrature(data) is None
        assert not default.integrate_items  # opt-in
        shared = {k: params[k] for k in ("pi", "alpha_sum", "alpha_diff")}
        inside = np.asarray(jax.jit(inner.log_likelihood)(shared, data).per_task)
        np.testing.assert_allclose(inside, ref, atol=5e-4)


@pytest.mark.parametrize("name", ["irt_1pl", "irt_3pl"])
def test_integrated_term_vectorized_equals_the_generic_scan(name):
    """The IRT models' LOO term (all nodes at once from a per-rater table) equals the base
    class's generic one (a scan over nodes, one full likelihood each) to 1e-4, gold-clamped
    tasks included; the 3PL's grid (1,536 nodes) is also taken in chunks of nodes."""
    import dataclasses

    from crowdzoo.models import irt as irt_module
    from crowdzoo.models.base import CrowdModel

    model = get_model(name)
    data = crowd_data(random_crowd(n_tasks=12, n_workers=7, per_task=5, seed=4))
    gold = np.full(data.n_tasks, -1, np.int32)
    gold[[1, 5]] = [0, 1]
    data = dataclasses.replace(data, gold=jnp.asarray(gold))
    draw = Predictive(model.sample_params, num_samples=1)(jax.random.PRNGKey(2), data)
    params = {k: v[0] for k, v in draw.items()}
    ours = np.asarray(jax.jit(model.integrated_task_log_lik)(params, data))
    generic = np.asarray(jax.jit(lambda p, d: CrowdModel.integrated_task_log_lik(model, p, d))(
        params, data))
    np.testing.assert_allclose(ours, generic, atol=1e-4)
    if name == "irt_3pl":  # force several chunks of nodes: the same numbers
        old = irt_module._MAX_NODE_ANSWERS
        irt_module._MAX_NODE_ANSWERS = 100 * data.n_answers
        try:
            chunked = np.asarray(model.integrated_task_log_lik(params, data))
        finally:
            irt_module._MAX_NODE_ANSWERS = old
        np.testing.assert_allclose(chunked, generic, atol=1e-4)


@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_integrated_loo_has_reliable_pareto_k():
    """On a simulated crowd, the plain LOO of the 1PL with its difficulties as parameters
    (each task's difficulty left with no data when the task is left out) has tasks with
    Pareto k > 0.7; its integrated LOO has none, and compare says which terms it used. The
    1PL that integrates the difficulties inside its likelihood samples the same
    posterior of the raters: its LOO (integrated terms as they are) has no k > 0.7 either
    and the same elpd within a tenth of its standard error."""
    from crowdzoo.inference import compare as C
    from crowdzoo.models.irt import IRT1PL

    sim = simulate("irt_1pl", n_tasks=60, n_workers=6, n_classes=2, answers_per_task=5, seed=0)
    nuts = dict(method="nuts", num_warmup=150, num_samples=150, num_chains=2, seed=0,
                progress=False)
    fit = crowdzoo.fit(IRT1PL(integrate_items=False), sim.annotations, **nuts)
    plain, integrated = C.loo(fit, integrate=False, moment_match=False), C.loo(fit)
    assert integrated.integrated and not plain.integrated
    assert C.pareto_k_summary(plain)["k_bad"] > 0
    assert C.pareto_k_summary(integrated)["k_max"] < C.PARETO_K_BAD
    # the same predictive target: the two elpd agree within their standard errors
    assert abs(float(plain.elpd) - float(integrated.elpd)) < float(integrated.se)
    # moment matching (the NUTS default) brings the plain terms' k under 0.7, and the matched
    # terms agree with the integrated ones (an independent estimate of the same quantity)
    matched = C.loo(fit, integrate=False)
    bad = np.asarray(plain.pareto_k) > C.PARETO_K_BAD
    assert matched.k_bad_before == bad.sum() and matched.moment_matched == bad.sum()
    assert matched.terms == f"plain, {bad.sum()} moment-matched"
    assert C.pareto_k_summary(matched)["k_bad"] == 0
    np.testing.assert_allclose(np.asarray(matched.elpd_i)[bad],
                               np.asarray(integrated.elpd_i)[bad], atol=0.1)
    np.testing.assert_array_equal(np.asarray(matched.elpd_i)[~bad], np.asarray(plain.elpd_i)[~bad])
    # its inputs: the draws' unconstrained values give back each task's stored log-likelihood
    # (plain) and the integrated one
    t = int(np.flatnonzero(bad)[0])
    stored = fit.to_arviz(posterior_predictive=False)["log_likelihood"]["answers"].values
    for integrate, ref in ((False, stored), (True, C.integrated_log_likelihood(fit))):
        upars, log_prob, log_lik_i = C.moment_match_functions(fit, integrate)
        assert upars.shape[:2] == stored.shape[:2] and log_prob(upars).shape == stored.shape[:2]
        np.testing.assert_allclose(log_lik_i(upars, t).values, ref[..., t], rtol=1e-4, atol=1e-4)
    inside_fit = crowdzoo.fit(IRT1PL(integrate_items=True), sim.annotations, **nuts)
    inside = C.loo(inside_fit)
    assert inside.integrated and C.loo(inside_fit, integrate=True).integrated
    assert C.pareto_k_summary(inside)["k_max"] < C.PARETO_K_BAD
    assert abs(float(inside.elpd) - float(integrated.elpd)) < 0.1 * float(integrated.se)
    # the difficulties' posterior means: sampled (joint) vs summed out and reported (EAP)
    joint_b, inner_b = fit.tasks()["difficulty"], inside_fit.tasks()["difficulty"]
    assert np.corrcoef(joint_b, inner_b)[0, 1] > 0.85  # 0.93 (the joint chains mix slowly)
    assert "difficulty_sd" in inside_fit.tasks()
    for other in ("one_coin", "dawid_skene"):  # no per-task parameters: plain terms
        assert get_model(other).task_quadrature(fit.data) is None
