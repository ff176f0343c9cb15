"""The runner: one conformance test over every registered model x method, recovery of known
parameters, reproducibility, no recompilation, and clear errors for bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_CROWD, SMALL_DRAWS, SMALL_FEATURES, SMALL_NUTS
from crowdzoo.data import AnnotationsError, simulate
from crowdzoo.inference.map import map_program
from crowdzoo.models import BASELINES, REGISTRY, get_model

import crowdzoo


def tiny_crowd(model, seed=0):
    """The small crowd of the registry-wide tests (conftest's SMALL_CROWD, SBC's shape)."""
    feats = None
    if model.needs_features and model.generates_features is None:
        feats = np.random.default_rng(seed).standard_normal(
            (SMALL_CROWD["n_tasks"], SMALL_FEATURES))
    return simulate(model, **SMALL_CROWD, features=feats, seed=seed)


def _generative(name):
    return name in REGISTRY


# Every registered model x every method it supports, on a tiny crowd; each case also checks
# the ArviZ contract (every az.* call a user makes on fit.to_arviz() and on the CLI's
# posterior.nc read back). The tiny SVI / NUTS runs are not converged (they warn: expected).
CASES = [(n, m) for n in sorted(REGISTRY) for m in REGISTRY[n].methods] + [
    (n, "map") for n in sorted(BASELINES)]
# SBC's NUTS setting and draw count (conftest): the compiled programs are shared with it
OPTS = {"map": {}, "svi": {"num_steps": 150, "num_draws": SMALL_DRAWS},
        "nuts": {**SMALL_NUTS, "num_samples": SMALL_DRAWS // 2, "num_chains": 2,
                 "chain_method": "sequential"}}
QUIET = [pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning"),
         pytest.mark.filterwarnings("ignore::crowdzoo.inference.runner.PseudoPosteriorWarning")]
# The short NUTS / SVI runs of this module test contracts, not convergence (test_diagnostics.py
# does that); tests here that expect a ConvergenceWarning catch it with pytest.warns.
pytestmark = QUIET[0]


@pytest.mark.parametrize("name,method", CASES)
@QUIET[0]
@QUIET[1]
def test_conformance(name, method, tmp_path):
    """Shapes, posteriors sum to one, reproducible with a seed, ArviZ output, worker table."""
    model = get_model(name)
    sim = tiny_crowd(model) if _generative(name) else tiny_crowd(get_model("dawid_skene"))
    ann = sim.annotations
    a = crowdzoo.fit(name, ann, method=method, seed=3, progress=False, **OPTS[method])
    post = a.task_posterior()
    assert post.shape == (ann.n_tasks, ann.n_classes)
    assert list(post.index) == list(ann.task_ids)
    assert np.isfinite(post.to_numpy()).all()
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-6)
    assert set(a.labels().unique()) <= set(ann.classes)
    workers = a.workers()
    assert list(workers.index) == list(ann.worker_ids)
    assert workers["n_answers"].sum() == ann.n_answers
    if not _generative(name):
        with pytest.raises(ValueError, match="no parameters"):
            a.to_arviz()
        return
    if method != "map":
        assert a.samples and all(v.shape[0] * v.shape[1] > 1 for v in a.samples.values())
    dt = a.to_arviz()
    check_tree(dt, a)
    check_arviz_calls(dt, method, loo=model.proper_likelihood)
    if method != "map":  # the CLI writes posterior.nc for fits with draws
        import xarray as xr

        from crowdzoo.cli import write_posterior

        path = write_posterior(a, tmp_path / "posterior.nc")
        with xr.open_datatree(path) as back:
            check_tree(back, a)
            check_read_back_calls(back.load(), loo=model.proper_likelihood)


def check_tree(dt, fit):
    """Groups, named dims (none that ArviZ reserves), the user's names as coordinates."""
    import crowdzoo.inference.result as R

    ann, method = fit.annotations, fit.method
    groups = {"posterior", "posterior_predictive", "observed_data", "constant_data"}
    groups |= {"log_likelihood"} if method != "map" and fit.model.proper_likelihood else set()
    groups |= {"sample_stats"} if method == "nuts" else set()
    assert set(dt.children) == groups
    for group in dt.children.values():
        assert not set(group.dims) & R.ARVIZ_RESERVED_DIMS, (set(group.dims), group.name)
        assert group.attrs["creation_library"] == "crowdzoo"
        assert group.attrs["creation_library_version"] == crowdzoo.__version__
    post = dt["posterior"]
    classes = [str(c) for c in ann.classes]
    for dim in ("true_class", "answer_class"):
        if dim in post.dims:
            assert list(post[dim].values) == classes
    assert list(post["worker"].values) == [str(w) for w in ann.worker_ids]
    assert post.sizes["chain"] * post.sizes["draw"] == (1 if method == "map" else
                                                        sum(1 for _ in np.ndindex(
                                                            next(iter(fit.samples.values())
                                                                 ).shape[:2])))
    y = dt["observed_data"]["y"]
    np.testing.assert_array_equal(y.values, ann.label)
    assert list(y["answer_label"].values[:5]) == [classes[c] for c in ann.label[:5]]
    assert list(y["answer_task"].values[:3]) == [str(ann.task_ids[t]) for t in ann.task[:3]]
    rep = dt["posterior_predictive"]["y"]
    assert rep.dims == ("chain", "draw", "answer") and rep.shape[-1] == ann.n_answers
    assert 0 <= int(rep.min()) and int(rep.max()) < ann.n_classes
    if "log_likelihood" in groups:
        ll = dt["log_likelihood"]["answers"]
        assert ll.dims[-1] == "task" and ll.shape[-1] == ann.n_tasks
        assert np.isfinite(ll.values).all()


def _plot(fn, dt, small=False, **kwargs):
    """Call an arviz-plots function; ArviZ's own panel cap is met with a smaller selection
    (``small``: draw the smallest variable only, to save time)."""
    import matplotlib.pyplot as plt

    try:
        try:
            if small:
                raise ValueError("max_subplots")
            return fn(dt, backend="matplotlib", **kwargs)
        except ValueError as err:
            if "max_subplots" not in str(err):
                raise
            post = dt["posterior"]
            small = min(post.data_vars, key=lambda v: post[v].size)
            return fn(dt, var_names=[small], backend="matplotlib", **kwargs)
    finally:
        plt.close("all")


def check_read_back_calls(dt, loo=True):
    """posterior.nc read back: the tree equals the fit's (check_tree), so the calls that read
    its values and encodings (summary, LOO, a plot of every variable) stand for the rest
    (the full battery runs on the in-memory tree, which carries the same groups and dims)."""
    import warnings

    import arviz as az
    import arviz_plots as azp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.summary(dt)
        if loo:
            az.loo(dt)
        _plot(azp.plot_dist, dt)


def check_arviz_calls(dt, method, read_back=False, loo=True):
    """Every az.* call a user makes, without arguments beyond the tree.

    Documented exceptions: a MAP fit has no draws (az.loo, az.compare and plot_khat say
    "LOO needs posterior draws: fit with method='nuts' or 'svi'"); plot_energy needs NUTS's
    sample_stats; plot_rank compares chains (MAP and SVI have one).
    """
    import warnings

    import arviz as az
    import arviz_plots as azp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto k, discrete-data and 1-draw NaN warnings
        for fn in (az.summary, az.rhat, az.ess, az.mcse):
            fn(dt)
        if not loo:  # a pseudo-likelihood (difficulty_fixed): no log_likelihood group
            with pytest.raises((ValueError, TypeError), match="likelihood"):
                az.loo(dt)
        elif method == "map":
            with pytest.raises(ValueError, match="LOO needs posterior draws: fit with "
                                                 "method='nuts' or 'svi'"):
                az.loo(dt)
            with pytest.raises(Exception) as info:
                az.compare({"a": dt, "b": dt})
            assert "LOO needs posterior draws" in str(info.value.__cause__)
        else:
            elpd = az.loo(dt)
            az.compare({"a": dt, "b": dt})
            _plot(lambda e, backend: azp.plot_khat(e, backend=backend), elpd)
        for fn in (azp.plot_trace, azp.plot_dist, azp.plot_ppc_dist):
            _plot(fn, dt)
        _plot(azp.plot_forest, dt, small=read_back)  # every variable: seconds
        if method == "nuts":
            _plot(azp.plot_rank, dt)
            _plot(azp.plot_energy, dt)
        else:
            with pytest.raises(ValueError, match="at least 2 chains"):
                _plot(azp.plot_rank, dt)
            with pytest.raises(KeyError, match="NUTS" if not read_back else "sample_stats"):
                _plot(azp.plot_energy, dt)


@pytest.mark.parametrize("method", ["map", "svi", "nuts"])
def test_reproducible_with_a_seed(method):
    """The same seed gives the same result; another seed gives other draws."""
    ann = tiny_crowd(get_model("dawid_skene")).annotations
    runs = [crowdzoo.fit("dawid_skene", ann, method=method, seed=s, progress=False,
                         **OPTS[method]) for s in (3, 3, 4)]
    a, b, c = (r.task_posterior().to_numpy() for r in runs)
    np.testing.assert_allclose(a, b, atol=1e-6)
    if method != "map":
        w = [r.workers()["accuracy"].to_numpy() for r in runs]
        np.testing.assert_allclose(w[0], w[1], atol=1e-6)
        assert np.abs(w[0] - w[2]).max() > 1e-4


@pytest.mark.parametrize("name", [n for n in sorted(REGISTRY) if get_model(n).has_em])
def test_em_compiles_once(name):
    """A second fit of equal-sized data with a fresh model object reuses the compiled EM."""
    ann = tiny_crowd(get_model(name)).annotations
    crowdzoo.fit(name, ann)
    size = map_program._cache_size()
    crowdzoo.fit(type(get_model(name))(), ann)
    assert map_program._cache_size() == size


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_models_are_immutable_values(name):
    """Equal settings hash equal; the hash never changes with a fit; attributes are frozen."""
    model = get_model(name)
    before = hash(model)
    assert hash(type(model)()) == before and type(model)() == model
    crowdzoo.fit(model, tiny_crowd(model).annotations)
    assert hash(model) == before
    with pytest.raises(AttributeError, match="immutable"):
        model.some_setting = 1


def test_em_log_posterior_is_monotone(demo):
    fit = crowdzoo.fit("dawid_skene", demo)
    h = fit.loss_history
    assert fit.diagnostics["converged"] and len(h) > 3
    assert (np.diff(h) >= -1e-3 * np.abs(h[1:])).all()


def test_iteration_cap_warns(demo):
    with pytest.warns(crowdzoo.inference.ConvergenceWarning, match="max_iter=2"):
        fit = crowdzoo.fit("dawid_skene", demo, max_iter=2)
    assert fit.diagnostics["converged"] is False


def test_demo_accuracy_beats_majority_vote(demo, demo_truth):
    mv = crowdzoo.fit("majority_vote", demo).accuracy(demo_truth)
    ds = crowdzoo.fit("dawid_skene", demo).accuracy(demo_truth)
    assert ds > mv + 0.02


def test_gold_is_clamped_and_scoring_on_it_refused(demo, demo_truth):
    gold = demo_truth.iloc[:50]
    fit = crowdzoo.fit("dawid_skene", demo.with_gold(gold))
    post = fit.task_posterior().loc[gold.index]
    assert (post.idxmax(axis=1) == gold).all() and np.allclose(post.max(axis=1), 1.0)
    with pytest.raises(ValueError, match="use_gold=False"):
        fit.accuracy()
    unclamped = crowdzoo.fit("dawid_skene", demo.with_gold(gold), use_gold=False)
    assert 0.5 < unclamped.accuracy() <= 1.0


# --- recovery ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recovery():
    """1,000 tasks, 30 workers, K = 3, 5 answers per task; parameters drawn from the prior."""
    sim = simulate("dawid_skene", n_tasks=1000, n_workers=30, n_classes=3, answers_per_task=5,
                   seed=7)
    with warnings.catch_warnings():  # r_hat is asserted below, at its noise level
        warnings.simplefilter("ignore", crowdzoo.ConvergenceWarning)
        nuts = crowdzoo.fit("dawid_skene", sim.annotations, method="nuts", seed=1,
                            progress=False, num_warmup=500, num_samples=500, num_chains=4)
    return sim, nuts


def true_accuracy(params):
    diag = np.diagonal(params["confusion"], axis1=-2, axis2=-1)
    return (diag * params["pi"][None, :]).sum(-1)


def test_map_recovers_worker_accuracy(recovery):
    sim, _ = recovery
    fit = crowdzoo.fit("dawid_skene", sim.annotations)
    err = np.abs(fit.workers()["accuracy"].to_numpy() - true_accuracy(sim.params))
    # ~167 answers per worker to tasks whose labels are themselves uncertain: the posterior
    # sd of a worker's accuracy is ~0.05 here, so: mean error < 0.06, every worker < 0.16
    assert err.mean() < 0.06 and err.max() < 0.16, err
    # prior-drawn workers are weak (accuracy ~0.5 with K = 3): the model must still beat the vote
    mv = crowdzoo.fit("majority_vote", sim.annotations).accuracy(sim.true_labels)
    assert fit.accuracy(sim.true_labels) > mv + 0.03


def test_nuts_intervals_cover_worker_accuracy(recovery):
    sim, nuts = recovery
    w = nuts.workers()
    truth = true_accuracy(sim.params)
    covered = ((w["accuracy_low"] <= truth) & (truth <= w["accuracy_high"])).mean()
    # nominal 0.89 over 30 workers: binomial sd ~0.057
    assert 0.72 <= covered <= 1.0, covered


def test_nuts_from_map_converges(recovery):
    _, nuts = recovery
    diag = nuts.convergence().attrs
    # max over ~400 parameters of 4 x 500 draws: r_hat lands between 1.00 and ~1.013 by chance
    # (numpyro's MCMC alike); a chain stuck in another mode would give >> 1.05
    assert diag["max_r_hat"] <= 1.02, diag
    assert diag["min_ess_bulk"] > 400, diag
    assert diag["divergences"] == 0


def test_svi_is_close_to_nuts(recovery):
    sim, nuts = recovery
    svi = crowdzoo.fit("dawid_skene", sim.annotations, method="svi", seed=0, progress=False)
    a = svi.workers()["accuracy"].to_numpy()
    b = nuts.workers()["accuracy"].to_numpy()
    assert np.abs(a - b).max() < 0.05
    assert (svi.labels() == nuts.labels()).mean() > 0.98


# --- bad input ----------------------------------------------------------------------------
def frame():
    return pd.DataFrame({"task": ["a", "a", "b", "b", "c"], "worker": ["x", "y", "x", "y", "x"],
                         "label": ["p", "q", "p", "p", "q"]})


def test_fit_accepts_a_frame_and_does_not_mutate_it():
    df = frame()
    before = df.copy(deep=True)
    fit = crowdzoo.fit("dawid_skene", df)
    pd.testing.assert_frame_equal(df, before)
    assert fit.task_posterior().shape == (3, 2)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: frame().drop(columns="worker"), "worker"),
        (lambda: frame().assign(label=["p", None, "p", "p", "q"]), "label"),
        (lambda: frame().iloc[:0], "empty"),
        (lambda: frame().assign(label="p"), "single class"),
    ],
)
def test_bad_frames_get_clear_errors(make, match):
    with pytest.raises(AnnotationsError, match=match):
        crowdzoo.fit("dawid_skene", make())


def test_gold_of_a_class_never_answered():
    with pytest.raises(AnnotationsError, match="r"):
        crowdzoo.Annotations.from_frame(frame(), gold=pd.Series({"a": "r"}))


def test_unknown_method_and_model_and_option():
    with pytest.raises(ValueError, match="unknown method 'mcmc'"):
        crowdzoo.fit("dawid_skene", frame(), method="mcmc")
    with pytest.raises(ValueError, match="unknown model 'dawid'.*dawid_skene"):
        crowdzoo.fit("dawid", frame())
    with pytest.raises(TypeError, match="num_samples"):
        crowdzoo.fit("dawid_skene", frame(), method="map", num_samples=10)
    with pytest.raises(ValueError, match="supports: map"):
        crowdzoo.fit("majority_vote", frame(), method="nuts")
    with pytest.raises(TypeError, match="Annotations"):
        crowdzoo.fit("dawid_skene", [1, 2, 3])


def test_model_nuts_defaults_are_valid_and_the_caller_wins(monkeypatch):
    """A model's own NUTS defaults (community: target_accept_prob 0.95) are valid options,
    reach the sampler, and give way to the options the caller passes."""
    from crowdzoo.inference import runner

    for name in REGISTRY:
        defaults = get_model(name).nuts_defaults
        assert set(defaults) <= set(runner._OPTIONS["nuts"]), name
        runner._check_options("nuts", {**runner._OPTIONS["nuts"], **defaults})
    assert get_model("community").nuts_defaults == {"target_accept_prob": 0.95}
    seen = []

    class Reached(Exception):
        pass

    def spy(*args, **kwargs):  # the sampler's settings, without sampling
        seen.append(kwargs["target_accept_prob"])
        raise Reached

    monkeypatch.setattr(runner, "run_nuts", spy)
    ann = tiny_crowd(get_model("dawid_skene")).annotations
    for options in ({}, {"target_accept_prob": 0.7}):
        for name in ("community", "dawid_skene"):
            with pytest.raises(Reached):
                crowdzoo.fit(name, ann, method="nuts", init_from_map=False, progress=False,
                             **options)
    assert seen == [0.95, 0.8, 0.7, 0.7]


# --- samplers: the same draws whatever the devices, one compilation per shape ------------------
@pytest.fixture(scope="module")
def nuts_pair():
    """The same seed with chains in parallel (one per device) and in sequence."""
    import jax

    ann = tiny_crowd(get_model("dawid_skene")).annotations
    if jax.local_device_count() < 2:
        pytest.skip("needs crowdzoo.setup() before JAX starts (several host devices)")
    return ann, [crowdzoo.fit("dawid_skene", ann, method="nuts", seed=11, progress=False,
                              **{**OPTS["nuts"], "chain_method": m})
                 for m in ("parallel", "sequential")]


def test_nuts_draws_do_not_depend_on_the_chain_method(nuts_pair):
    _, (par, seq) = nuts_pair
    assert "parallel" in par.diagnostics["algorithm"]
    assert "sequential" in seq.diagnostics["algorithm"]
    np.testing.assert_allclose(par.task_posterior().to_numpy(), seq.task_posterior().to_numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(par.samples["confusion"], seq.samples["confusion"], atol=1e-5)


def test_nuts_reuses_its_compiled_sampler(nuts_pair):
    """A second NUTS fit of same-shaped data compiles nothing new (each fit used to)."""
    from crowdzoo.inference.samplers import _nuts_fns

    ann, _ = nuts_pair
    model = get_model("dawid_skene")
    fns = _nuts_fns(model, SMALL_NUTS["num_warmup"], SMALL_NUTS["target_accept_prob"],
                    SMALL_NUTS["max_tree_depth"])
    jitted = ("init", "advance")  # the sequential path; pmap keeps its own cache
    sizes = {k: fns[k]._cache_size() for k in jitted}
    if not all(sizes.values()):  # conftest's guard freed compiled code after the fixture ran
        crowdzoo.fit(model, ann, method="nuts", seed=11, progress=False, **OPTS["nuts"])
        sizes = {k: fns[k]._cache_size() for k in jitted}
    assert all(sizes.values())
    other = crowdzoo.fit(type(model)(), ann, method="nuts", seed=12, progress=False,
                         **OPTS["nuts"])
    assert {k: fns[k]._cache_size() for k in jitted} == sizes
    assert other.samples["confusion"].shape[:2] == (2, OPTS["nuts"]["num_samples"])


def test_laplace_mass_matrix_is_the_inverse_hessian_diagonal_at_the_map(nuts_pair, monkeypatch):
    """dawid_skene's NUTS starts from the Laplace approximation at the MAP: the diagonal of
    the inverse Hessian of the potential energy (here against jax.hessian + a float64
    inverse), where the windowed adaptation starts; the fit says so."""
    import jax
    from crowdzoo.inference.runner import _sampler_start
    from crowdzoo.inference.samplers import nuts_start
    from crowdzoo.models import crowd_data
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy

    ann, (par, seq) = nuts_pair
    for fit in (par, seq):
        assert fit.diagnostics["mass_matrix"] == "laplace"
        assert fit.diagnostics["num_warmup"] == SMALL_NUTS["num_warmup"]
        assert 0 < fit.diagnostics["step_size"] < 10
        # at least one leapfrog step per warmup iteration, per chain
        assert fit.diagnostics["warmup_gradients"] >= 2 * SMALL_NUTS["num_warmup"]
    model, cdata = get_model("dawid_skene"), crowd_data(ann)
    point, _ = _sampler_start(model, cdata, True)
    start, used = nuts_start(model, cdata, point, laplace=True)
    assert used == "laplace"
    flat, unravel = ravel_pytree(start.z)
    energy = jax.jit(lambda x: potential_energy(model, (cdata,), {}, unravel(x)))
    hess = np.asarray(jax.jit(jax.hessian(energy))(flat), np.float64)
    want = np.diag(np.linalg.inv(0.5 * (hess + hess.T)))
    assert (want > 0).all()
    np.testing.assert_allclose(np.asarray(start.inverse_mass_matrix), want, rtol=2e-3)
    # on big crowds the Hessian-vector products run in batches (here of 2): same metric
    from crowdzoo.inference import samplers

    monkeypatch.setattr(samplers, "_HVP_FLOATS", 2 * cdata.n_answers * cdata.n_classes)
    batched, _ = nuts_start(model, cdata, point, laplace=True)
    np.testing.assert_allclose(np.asarray(batched.inverse_mass_matrix), want, rtol=2e-3)
    # the start's energy and gradient are the potential's own
    pe, grad = jax.jit(jax.value_and_grad(energy))(flat)
    np.testing.assert_allclose(float(start.potential_energy), float(pe), rtol=1e-6)
    np.testing.assert_allclose(ravel_pytree(start.z_grad)[0], grad, rtol=1e-5, atol=1e-4)


def test_laplace_mass_matrix_falls_back_to_adaptation(nuts_pair, monkeypatch):
    """Above LAPLACE_MAX_DIM parameters NUTS adapts the mass matrix itself, with the long
    warmup when the caller left num_warmup to the default, and says why."""
    from crowdzoo.inference import runner, samplers
    from crowdzoo.inference.runner import _sampler_start
    from crowdzoo.models import crowd_data

    ann, _ = nuts_pair
    model, cdata = get_model("dawid_skene"), crowd_data(ann)
    point, _ = _sampler_start(model, cdata, True)
    monkeypatch.setattr(samplers, "LAPLACE_MAX_DIM", 3)
    start, used = samplers.nuts_start(model, cdata, point, laplace=True)
    assert start.inverse_mass_matrix is None and used.startswith("adapt (")
    assert "more than 3 for laplace" in used
    run = samplers.run_nuts(model, cdata, point, __import__("jax").random.PRNGKey(0),
                            num_warmup=5, num_samples=3, num_chains=1, target_accept_prob=0.8,
                            max_tree_depth=4, chain_method="sequential", progress=False,
                            mass_matrix="laplace", fallback_warmup=12)
    assert run.info["num_warmup"] == 12 and run.info["mass_matrix"] == used
    assert run.samples["confusion"].shape[:2] == (1, 3)
    # what the runner asks for: the short warmup with the Laplace metric, the long one as
    # the fallback; the caller's num_warmup and init_from_map win
    seen = []

    class Reached(Exception):
        pass

    def spy(*args, **kwargs):
        seen.append({k: kwargs[k] for k in ("num_warmup", "mass_matrix", "fallback_warmup")})
        raise Reached

    monkeypatch.setattr(runner, "run_nuts", spy)
    for options in ({}, {"num_warmup": 40}, {"init_from_map": False},
                    {"mass_matrix": "adapt"}):
        with pytest.raises(Reached):
            crowdzoo.fit("dawid_skene", ann, method="nuts", progress=False, **options)
    assert seen == [
        {"num_warmup": runner.LAPLACE_WARMUP, "mass_matrix": "laplace",
         "fallback_warmup": runner.ADAPT_WARMUP},
        {"num_warmup": 40, "mass_matrix": "laplace", "fallback_warmup": None},
        {"num_warmup": runner.ADAPT_WARMUP, "mass_matrix": "adapt",
         "fallback_warmup": runner.ADAPT_WARMUP},
        {"num_warmup": runner.ADAPT_WARMUP, "mass_matrix": "adapt",
         "fallback_warmup": runner.ADAPT_WARMUP},
    ]


@pytest.mark.parametrize(("options", "message"), [
    ({"method": "nuts", "mass_matrix": "dense"}, "mass_matrix must be 'adapt' or 'laplace'"),
    ({"method": "nuts", "num_chains": 0}, "num_chains must be >= 1, got 0"),
    ({"method": "nuts", "num_chains": -1}, "num_chains must be >= 1"),
    ({"method": "nuts", "num_samples": 2.5}, "num_samples must be an integer"),
    ({"method": "nuts", "target_accept_prob": 1.5}, r"target_accept_prob must be finite and in \("),
    ({"method": "nuts", "target_accept_prob": -0.5}, "target_accept_prob must be finite"),
    ({"method": "nuts", "chain_method": "vectorised"}, "chain_method must be"),
    ({"method": "map", "max_iter": -1}, "max_iter must be >= 1, got -1"),
    ({"method": "map", "max_iter": 0}, "max_iter must be >= 1, got 0"),
    ({"method": "map", "tol": float("nan")}, "tol must be finite"),
    ({"method": "map", "accelerate": "no"}, "accelerate must be True or False"),
    ({"method": "svi", "num_draws": 0}, "num_draws must be >= 1, got 0"),
    ({"method": "svi", "learning_rate": 0.0}, "learning_rate must be finite and > 0"),
    ({"method": "svi", "guide": "laplace"}, "guide must be 'normal', 'delta' or a callable"),
    ({"seed": "0"}, "seed must be an integer"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"seed": -1}, "seed must be in"),
    ({"seed": 2**64}, "seed must be in"),
    ({"progress": "yes"}, "progress must be True or False"),
    ({"use_gold": 1}, "use_gold must be True or False"),
])
def test_every_option_is_validated_by_name(demo, options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        crowdzoo.fit("dawid_skene", demo, **options)


def test_seed_none_draws_a_seed_and_records_it(demo):
    a = crowdzoo.fit("one_coin", demo, seed=None)
    assert isinstance(a.seed, int) and 0 <= a.seed < 2**32


def test_gold_breaks_the_symmetry_of_an_adversarial_crowd():
    """Every answer wrong: without gold the flipped mode looks perfect; 10 gold tasks of 200
    must pull the MAP to the truth (issue: it reported converged=True at the flipped mode)."""
    rng = np.random.default_rng(0)
    T, W = 200, 10
    truth = rng.integers(0, 2, T)
    rows = [(f"t{t}", f"w{w}", int(1 - truth[t])) for t in range(T) for w in rng.choice(W, 5,
                                                                                       replace=False)]
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    gold = pd.Series({f"t{t}": int(truth[t]) for t in range(10)})
    ann = crowdzoo.Annotations.from_frame(df, gold=gold)
    fit = crowdzoo.fit("dawid_skene", ann)
    rest = pd.Series({f"t{t}": int(truth[t]) for t in range(10, T)})
    labels = fit.labels().loc[rest.index].astype(int)
    assert (labels == rest).mean() >= 0.95
    assert fit.workers()["accuracy"].max() < 0.2  # the workers are found adversarial


def test_svi_guide_is_set_up_abstractly_as_numpyro_would():
    """run_svi sets its AutoNormal up under jax.eval_shape (no eager compiles): the guide it
    gets has NumPyro's own sites, site order (the draws take one key per site in it), event
    dims, plates and shapes, and keeps no tracer outside the sites' distributions."""
    import jax
    import jax.monitoring
    import numpyro
    from crowdzoo.inference.samplers import _set_up_guide
    from crowdzoo.models import crowd_data
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.infer.initialization import init_to_uniform

    model = get_model("one_coin")
    data = crowd_data(tiny_crowd(model).annotations)
    compiles = []

    def listen(event, *_, **__):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    abstract = AutoNormal(model, init_loc_fn=init_to_uniform())
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        _set_up_guide(abstract, data)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiles == []
    eager = AutoNormal(model, init_loc_fn=init_to_uniform())
    with numpyro.handlers.seed(rng_seed=0):
        eager._setup_prototype(data)
    assert list(abstract._init_locs) == list(eager._init_locs)  # model order, not sorted
    assert list(abstract._init_locs) != sorted(abstract._init_locs)
    for k, v in eager._init_locs.items():
        assert abstract._init_locs[k].shape == v.shape
    assert abstract._event_dims == eager._event_dims
    assert abstract._prototype_frames == eager._prototype_frames
    assert abstract._prototype_frame_full_sizes == eager._prototype_frame_full_sizes
    for name, site in eager.prototype_trace.items():
        mine = abstract.prototype_trace[name]
        assert mine["type"] == site["type"]
        if site["type"] == "sample":
            assert mine["fn"].support == site["fn"].support
            assert mine["fn"].shape() == site["fn"].shape()
        assert not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(
            {k: v for k, v in mine.items() if k != "fn"}))


@pytest.mark.parametrize("name", ["dawid_skene", "glad"])
def test_svi_delta_guide_starts_at_the_map(name):
    """SVI with the point-mass guide starts from the MAP: its locations live on the sites'
    supports, so the MAP is passed as it is, not in unconstrained coordinates (simplex sites
    crashed, positive ones started elsewhere). 10 Adam steps of 1e-4 move a location by at
    most 1e-3."""
    sim = simulate(name, **SMALL_CROWD, seed=5)
    mp = crowdzoo.fit(name, sim.annotations, method="map")
    delta = crowdzoo.fit(name, sim.annotations, method="svi", guide="delta", num_steps=10,
                         learning_rate=1e-4, progress=False)
    for site, value in mp.params.items():
        if site in delta.samples:
            np.testing.assert_allclose(delta.samples[site][0, 0], value, atol=2e-3,
                                       err_msg=site)
