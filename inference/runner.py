"""One runner for every model: ``fit(model, data, method) -> Fit``.

It knows nothing model-specific beyond what a model declares on
:class:`~crowdzoo.models.base.CrowdModel` (``sample_params``, ``log_terms``, ``has_em`` /
``em_update``, ``init_params`` or ``warm_start`` / ``init_from``, ``check_data``) or on
:class:`~crowdzoo.models.base.Baseline` (``task_posterior``).
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..models import Baseline, CrowdModel, crowd_data, get_model
from . import diagnostics
from .diagnostics import ConvergenceWarning
from .map import interior_point, map_program, map_progress
from .progress import default_progress, progress_bar
from .result import Fit
from .samplers import run_nuts, run_svi

__all__ = ["fit", "ConvergenceWarning", "PseudoPosteriorWarning", "METHODS", "map_point", "refit"]

METHODS = ("map", "svi", "nuts")

_OPTIONS = {
    "map": {"tol": 1e-6, "param_tol": 1e-5, "max_iter": None, "init": None, "accelerate": None},
    "svi": {
        "guide": "normal",
        "num_steps": 3000,
        "learning_rate": 0.01,
        "num_particles": 1,
        "num_draws": 1000,
        "init_from_map": True,
        "init_scale": 0.05,
    },
    "nuts": {
        # None: 500, or LAPLACE_WARMUP (200) when the mass matrix adaptation starts from the
        # Laplace approximation
        "num_warmup": None,
        # 4 x 1000 draws: with hundreds of parameters, the largest r_hat of 4 x 500 draws of a
        # well-mixed posterior crosses 1.01 by chance (Vehtari et al. 2021's threshold assumes
        # ESS > 400 per parameter); at 4 x 1000 it stays below
        "num_samples": 1000,
        "num_chains": 4,
        "target_accept_prob": 0.8,
        "max_tree_depth": 10,
        "init_from_map": True,
        "chain_method": None,
        "mass_matrix": "adapt",
    },
}

#: NUTS warmup iterations by default: with the mass matrix adapted, and with the Laplace one
ADAPT_WARMUP, LAPLACE_WARMUP = 500, 200


class PseudoPosteriorWarning(UserWarning):
    """SVI / NUTS on a model whose likelihood is not a distribution of the answers."""


# --- option checks -----------------------------------------------------------------------
def _check_int(name, value, low, high=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def _check_float(name, value, low=0.0, high=None, open_high=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    bad = not math.isfinite(value) or value <= low
    if high is not None:
        bad = bad or (value >= high if open_high else value > high)
    if bad:
        rng = f"> {low}" if high is None else f"in ({low}, {high}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be finite and {rng}, got {value!r}")
    return value


def _check_bool(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_seed(seed) -> int:
    """Return a seed: a non-negative integer below 2**32, or None for a fresh random one."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    return _check_int("seed", seed, 0, 2**32 - 1)


def _check_options(method: str, opts: dict) -> dict:
    o = dict(opts)
    if method == "map":
        o["tol"] = _check_float("tol", o["tol"])
        o["param_tol"] = _check_float("param_tol", o["param_tol"])
        o["max_iter"] = _check_int("max_iter", o["max_iter"], 1, allow_none=True)
        o["accelerate"] = _check_bool("accelerate", o["accelerate"], allow_none=True)
        if o["init"] is not None and not isinstance(o["init"], dict):
            raise TypeError(f"init must be a dict of parameter arrays, got "
                            f"{type(o['init']).__name__}")
    elif method == "svi":
        if not (o["guide"] in ("normal", "delta") or callable(o["guide"])):
            raise ValueError(f"guide must be 'normal', 'delta' or a callable, got {o['guide']!r}")
        o["num_steps"] = _check_int("num_steps", o["num_steps"], 1)
        o["learning_rate"] = _check_float("learning_rate", o["learning_rate"])
        o["num_particles"] = _check_int("num_particles", o["num_particles"], 1)
        o["num_draws"] = _check_int("num_draws", o["num_draws"], 1)
        o["init_from_map"] = _check_bool("init_from_map", o["init_from_map"])
        o["init_scale"] = _check_float("init_scale", o["init_scale"])
    else:
        o["num_warmup"] = _check_int("num_warmup", o["num_warmup"], 0, allow_none=True)
        o["num_samples"] = _check_int("num_samples", o["num_samples"], 1)
        o["num_chains"] = _check_int("num_chains", o["num_chains"], 1)
        o["target_accept_prob"] = _check_float("target_accept_prob", o["target_accept_prob"],
                                               0.0, 1.0, open_high=True)
        o["max_tree_depth"] = _check_int("max_tree_depth", o["max_tree_depth"], 1, 15)
        o["init_from_map"] = _check_bool("init_from_map", o["init_from_map"])
        if o["chain_method"] not in (None, "parallel", "sequential"):
            raise ValueError(f"chain_method must be None, 'parallel' or 'sequential', got "
                             f"{o['chain_method']!r}")
        if o["mass_matrix"] not in ("adapt", "laplace"):
            raise ValueError(f"mass_matrix must be 'adapt' or 'laplace', got "
                             f"{o['mass_matrix']!r}")
    return o


def _as_annotations(data):
    from ..data import Annotations

    if isinstance(data, Annotations):
        return data
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return Annotations.from_frame(data)
    raise TypeError(
        f"data must be crowdzoo.Annotations or a pandas DataFrame with columns task, worker, "
        f"label; got {type(data).__name__}"
    )


def fit(
    model: str | CrowdModel,
    data,
    method: str = "map",
    *,
    seed: int | None = 0,
    progress: bool | None = None,
    use_gold: bool = True,
    **options,
) -> Fit:
    """Fit a crowd model by EM-like MAP, SVI or NUTS.

    Parameters
    ----------
    model : str or CrowdModel
        A registry name (``"dawid_skene"``, ``"one_coin"``, ``"majority_vote"``, ...) or a
        model object such as ``DawidSkene(confusion_prior=1.0)``.
    data : Annotations or pandas.DataFrame
        The answers (a long frame with columns task, worker, label is accepted too).
    method : {"map", "svi", "nuts"}
        ``"map"``: EM-like MAP (closed-form EM where the model has it, else L-BFGS).
        ``"svi"``: variational inference with an automatic guide, started from the MAP.
        ``"nuts"``: NUTS, several chains started from the MAP (which keeps every chain in
        the same labelling of the classes). Where the posterior is symmetric under
        relabelling the classes (``model.class_symmetric``: the biased worker's flat
        two-class prior), SVI and NUTS draws in the mirror mode are relabelled
        (``Fit.diagnostics["relabelled_draws"]``).
    seed : int or None
        Seed of every random choice, a non-negative integer below 2**32; the same seed gives
        the same result (also whether NUTS chains run in parallel or in sequence). ``None``
        draws a fresh seed, kept in ``Fit.seed``.
    progress : bool, optional
        Progress bars for SVI/NUTS; default: in a terminal or a Jupyter kernel.
    use_gold : bool
        Clamp the true label of gold tasks (default). With False the gold labels are only
        used for scoring. With gold, the MAP also tries a start where the gold points (an
        M-step from the gold tasks alone) and keeps the better mode: a few gold tasks then
        break the symmetry between a labelling and its mirror image.
    **options
        Method options. ``map``: ``tol`` (per-answer change of the log posterior, 1e-6),
        ``param_tol`` (largest change of a parameter, 1e-5),
        ``max_iter`` (500 for EM, 2000 for L-BFGS), ``init`` (a params dict),
        ``accelerate`` (SQUAREM-accelerated EM: same fixed point, fewer iterations; default:
        the model's ``em_accelerate``, on for the learning-from-crowds models).
        ``svi``: ``guide`` ("normal" | "delta"), ``num_steps`` (3000), ``learning_rate``
        (0.01), ``num_particles``, ``num_draws`` (1000), ``init_from_map``, ``init_scale``.
        ``nuts``: ``num_warmup`` (500; 200 with the Laplace mass matrix), ``num_samples``
        (1000), ``num_chains`` (4), ``target_accept_prob`` (0.8, in (0, 1)),
        ``max_tree_depth`` (10), ``init_from_map`` (True), ``chain_method`` (default:
        "parallel" when JAX sees enough devices — see :func:`crowdzoo.setup` —, else
        "sequential"), ``mass_matrix`` ("adapt": NumPyro's windowed adaptation of a
        diagonal mass matrix from the identity; "laplace": the diagonal of the inverse
        Hessian of the log posterior at the MAP start — the Laplace approximation's
        variances — as the start of that adaptation, with a shorter warmup; it
        falls back to "adapt" without the MAP start, above
        :data:`~crowdzoo.inference.samplers.LAPLACE_MAX_DIM` parameters or where the
        Hessian is not positive definite, and ``fit.diagnostics["mass_matrix"]`` says
        which was used); a model may change some of these defaults (its
        ``nuts_defaults``: ``target_accept_prob`` 0.95 for ``community``, the Laplace mass
        matrix for ``dawid_skene``).

    Returns
    -------
    Fit
        Task posteriors, worker parameters, loss history and the ArviZ DataTree.

    Examples
    --------
    >>> import crowdzoo
    >>> data = crowdzoo.data.load_demo()
    >>> result = crowdzoo.fit("dawid_skene", data, method="map")
    >>> labels = result.labels()
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    model = get_model(model)
    if method not in model.methods:
        raise ValueError(
            f"model {model.name!r} cannot be fitted with method={method!r}; "
            f"it supports: {', '.join(model.methods)}"
        )
    unknown = sorted(set(options) - set(_OPTIONS[method]))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for method={method!r}; "
            f"valid options: {', '.join(sorted(_OPTIONS[method]))}"
        )
    model_defaults = dict(model.nuts_defaults) if method == "nuts" else {}
    opts = _check_options(method, {**_OPTIONS[method], **model_defaults, **options})
    seed = check_seed(seed)
    progress = default_progress() if progress is None else _check_bool("progress", progress)
    use_gold = _check_bool("use_gold", use_gold)
    annotations = _as_annotations(data)
    cdata = crowd_data(annotations, use_gold=use_gold)
    model.check_data(cdata)
    if method != "map" and not model.proper_likelihood:
        warnings.warn(
            f"{model.name}'s likelihood plugs in a statistic of the answers (it is not a "
            f"normalized distribution of them), so {method} gives a pseudo-posterior: its "
            f"intervals are not calibrated",
            PseudoPosteriorWarning,
            stacklevel=2,
        )
    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    if isinstance(model, Baseline):
        post = np.asarray(model.task_posterior(cdata))
        result = Fit(model, "map", annotations, cdata, params={}, task_probs=post,
                     diagnostics={"algorithm": "closed form"})
    elif method == "map":
        result = _fit_map(model, cdata, annotations, opts, progress)
    elif method == "svi":
        result = _fit_svi(model, cdata, annotations, opts, key, progress)
    else:
        result = _fit_nuts(model, cdata, annotations, opts, key, progress)
    result.elapsed = time.perf_counter() - start
    result.seed = seed
    result.options = opts  # the settings, complete with defaults: a refit (reloo) reuses them
    diagnostics.warn_if_unconverged(result)
    return result


def refit(result: Fit, data, *, progress: bool = False) -> Fit:
    """Rerun a fit's method with its settings and seed on other answers of the same sizes.

    The refits of an exact leave-tasks-out cross-validation
    (:func:`crowdzoo.inference.compare.loo` with ``reloo``): ``data`` is typically
    ``result.model.drop_tasks(result.data, tasks)``. The sampler starts as the original did
    (from the MAP of ``data``, when ``init_from_map``).

    Parameters
    ----------
    result : Fit
        A fit by :func:`fit` with ``method="nuts"`` or ``"svi"`` (its ``options`` and
        ``seed`` are reused).
    data : CrowdData
        The answers to fit: as many tasks, workers and classes as ``result.data``.
    progress : bool
        Progress bars.

    Returns
    -------
    Fit
        The refit; its ``annotations`` are ``result``'s (the ids), its ``data`` is ``data``.
    """
    if result.method not in ("nuts", "svi"):
        raise ValueError(f"refit reruns a sampler (nuts or svi); {result.model.name} was "
                         f"fitted by {result.method!r}")
    if result.options is None or result.seed is None:
        raise ValueError(f"this {result.model.name} Fit records no settings or seed (it was not "
                         f"built by crowdzoo.fit), so it cannot be refitted alike")
    sizes = ("n_tasks", "n_workers", "n_classes")
    if [getattr(data, n) for n in sizes] != [getattr(result.data, n) for n in sizes]:
        raise ValueError(
            f"refit needs data of the fit's sizes (tasks, workers, classes) "
            f"{tuple(getattr(result.data, n) for n in sizes)}, got "
            f"{tuple(getattr(data, n) for n in sizes)}; leave tasks out with model.drop_tasks")
    key = jax.random.PRNGKey(result.seed)
    run = _fit_nuts if result.method == "nuts" else _fit_svi
    start = time.perf_counter()
    out = run(result.model, data, result.annotations, result.options, key, progress)
    out.elapsed = time.perf_counter() - start
    out.seed, out.options = result.seed, result.options
    return out


# --- MAP -------------------------------------------------------------------------------
def _initial_params(model: CrowdModel, cdata):
    """Return the MAP start computed outside the MAP program, or None (then it is computed inside).

    ``init_from`` a warm start's MAP (the community model), or an eager ``init_params``
    for models that declare it impure (``jit_init = False``).
    """
    warm = model.warm_start()
    if warm is not None:
        warm_params, *_ = map_point(warm, cdata)
        return model.init_from({k: jnp.asarray(v) for k, v in warm_params.items()}, cdata)
    if model.jit_init:
        return None
    return model.init_params(cdata)


def map_point(model: CrowdModel, cdata, tol=1e-6, max_iter=None, init=None, param_tol=1e-5,
              accelerate=None, *, posterior: bool = False, progress: bool = False):
    """Run the MAP; return ``(params, history, n_iter, converged, algorithm)``.

    Closed-form EM (optionally SQUAREM) where the model declares ``has_em``, else L-BFGS,
    both by the one driver :func:`crowdzoo.inference.map.run_map`, compiled with the start
    and the final label posterior as one program (:func:`~crowdzoo.inference.map.map_program`).
    With gold labels and an EM model, a second start from the gold tasks alone runs too and
    the higher log posterior is kept. With ``posterior=True`` the label posterior
    ``(probs (T, K), per-task log-likelihood (T,))`` at the MAP is appended.
    """
    if model.has_em:
        squarem = model.em_accelerate if accelerate is None else accelerate
        algorithm, max_iter = ("squarem" if squarem else "em"), int(max_iter or 500)
    else:
        if accelerate:
            raise ValueError(f"accelerate=True speeds up closed-form EM, but {model.name} has no "
                             f"EM update here: its MAP is L-BFGS")
        algorithm, max_iter = "lbfgs", int(max_iter or 2000)
    params0 = init if init is not None else _initial_params(model, cdata)
    if params0 is not None:
        params0 = {k: jnp.asarray(v) for k, v in params0.items()}
    try_gold = init is None and model.has_em and bool(np.any(np.asarray(cdata.gold) >= 0))
    with map_progress(progress_bar(max_iter, f"MAP {model.name} ({algorithm})", progress)):
        out = map_program(model, params0, cdata, jnp.float32(tol), max_iter,
                          jnp.float32(param_tol), algorithm, try_gold)
        jax.block_until_ready(out)
    res = out.result
    n_iter = int(res.n_iter)
    history = np.asarray(res.history)[:n_iter]
    converged = bool(res.converged)
    if not converged:
        last = (abs(history[-1] - history[-2]) if n_iter > 1 else float("nan"))
        last = last / max(cdata.n_answers, 1)
        still = ("its parameters still moved by more than param_tol" if last < tol else
                 "the log posterior still moved by more than tol per answer")
        warnings.warn(
            f"{model.name} MAP ({algorithm}) hit max_iter={max_iter} before converging: "
            f"{still} (tol={tol:g}, param_tol={param_tol:g}; last change of the log posterior "
            f"per answer: {last:.3g}); raise max_iter, tol or param_tol",
            ConvergenceWarning,
            stacklevel=4,
        )
    params = {k: np.asarray(v) for k, v in res.params.items()}
    if not all(np.isfinite(v).all() for v in params.values()) or not np.isfinite(history).all():
        raise FloatingPointError(
            f"{model.name} MAP produced non-finite values; check the priors (concentrations "
            f"must be > 0) and the data"
        )
    found = (params, history, n_iter, converged, algorithm)
    if posterior:
        probs = np.asarray(jax.nn.softmax(out.logits, axis=-1), np.float64)
        found += ((probs / probs.sum(-1, keepdims=True), np.asarray(out.per_task)),)
    return found


def _fit_map(model, cdata, annotations, opts, progress: bool = False) -> Fit:
    params, history, n_iter, converged, kind, (probs, per_task) = map_point(
        model, cdata, opts["tol"], opts["max_iter"], opts["init"], opts["param_tol"],
        opts["accelerate"], posterior=True, progress=progress,
    )
    return Fit(
        model, "map", annotations, cdata, params=params, loss_history=history,
        task_probs=probs, per_task_loglik=per_task[None, None],
        diagnostics={"algorithm": kind, "n_iter": n_iter, "converged": converged,
                     "log_posterior": float(history[-1])},
    )


@partial(jax.jit, static_argnums=0)
def _jitted_init(model, cdata):
    return model.init_params(cdata)


def _sampler_start(model, cdata, init_from_map: bool, progress: bool = False):
    """Where SVI / NUTS start: the MAP (one labelling of the classes) or the model's start."""
    if init_from_map:
        point, history, *_ = map_point(model, cdata, progress=progress)
        # off the boundary: a MAP entry of ~0 is -inf for NUTS (every transition diverges)
        return interior_point(model, point, cdata), history
    start = _initial_params(model, cdata)
    if start is None:
        start = _jitted_init(model, cdata)
    return {k: np.asarray(v) for k, v in start.items()}, None


# --- SVI -------------------------------------------------------------------------------
def _fit_svi(model, cdata, annotations, opts, key, progress) -> Fit:
    point, _ = _sampler_start(model, cdata, opts["init_from_map"], progress)
    guide_opt = opts["guide"]
    if callable(guide_opt):
        return _fit_svi_custom(model, cdata, annotations, opts, key, progress)
    draws, losses = run_svi(
        model, cdata, point, key, guide=guide_opt, num_steps=opts["num_steps"],
        learning_rate=opts["learning_rate"], num_particles=opts["num_particles"],
        num_draws=1 if guide_opt == "delta" else opts["num_draws"],
        init_scale=opts["init_scale"], progress=progress)
    if not np.isfinite(losses[-1]):
        raise FloatingPointError("SVI diverged (non-finite ELBO); lower learning_rate")
    samples = {k: np.asarray(draws[k])[None] for k in _param_names(model, cdata)}
    return Fit(model, "svi", annotations, cdata, samples=samples, loss_history=-losses,
               diagnostics={"algorithm": f"SVI ({guide_opt} guide)", "n_steps": opts["num_steps"],
                            "final_elbo": float(-losses[-1])})


def _fit_svi_custom(model, cdata, annotations, opts, key, progress) -> Fit:
    """SVI with a user's guide (``guide=callable(model) -> guide``): NumPyro's ``SVI.run``."""
    import optax
    from numpyro.infer import SVI, Trace_ELBO

    guide = opts["guide"](model)
    svi = SVI(model, guide, optax.adam(opts["learning_rate"]),
              Trace_ELBO(num_particles=opts["num_particles"]))
    k_run, k_draw = jax.random.split(key)
    res = svi.run(k_run, opts["num_steps"], cdata, progress_bar=progress)
    losses = np.asarray(res.losses)
    if not np.isfinite(losses[-1]):
        raise FloatingPointError("SVI diverged (non-finite ELBO); lower learning_rate")
    draws = guide.sample_posterior(k_draw, res.params, cdata, sample_shape=(opts["num_draws"],))
    samples = {k: np.asarray(draws[k])[None] for k in _param_names(model, cdata)}
    return Fit(model, "svi", annotations, cdata, samples=samples, loss_history=-losses,
               diagnostics={"algorithm": "SVI (custom guide)", "n_steps": opts["num_steps"],
                            "final_elbo": float(-losses[-1])})


def _param_names(model, cdata):
    from .map import param_supports

    return list(param_supports(model, cdata))


# --- NUTS ------------------------------------------------------------------------------
def _fit_nuts(model, cdata, annotations, opts, key, progress) -> Fit:
    point, map_history = _sampler_start(model, cdata, opts["init_from_map"], progress)
    chains = opts["num_chains"]
    chain_method = opts["chain_method"]
    if chain_method is None:
        chain_method = "parallel" if chains > 1 and jax.local_device_count() >= chains \
            else "sequential"
    if chain_method == "parallel" and jax.local_device_count() < chains:
        raise ValueError(
            f"chain_method='parallel' needs {chains} devices but JAX sees "
            f"{jax.local_device_count()}; call crowdzoo.setup() before using JAX, or use "
            f"chain_method='sequential'"
        )
    mass_matrix = opts["mass_matrix"]
    if mass_matrix == "laplace" and not opts["init_from_map"]:
        mass_matrix = "adapt"  # the Laplace metric is the curvature at the mode
    num_warmup = opts["num_warmup"]
    if num_warmup is None:
        num_warmup = LAPLACE_WARMUP if mass_matrix == "laplace" else ADAPT_WARMUP
    run = run_nuts(model, cdata, point, key, num_warmup=num_warmup,
                   num_samples=opts["num_samples"], num_chains=chains,
                   target_accept_prob=opts["target_accept_prob"],
                   max_tree_depth=opts["max_tree_depth"], chain_method=chain_method,
                   progress=progress, mass_matrix=mass_matrix,
                   fallback_warmup=ADAPT_WARMUP if opts["num_warmup"] is None else None)
    if opts["mass_matrix"] == "laplace" and not opts["init_from_map"]:
        run.info["mass_matrix"] = "adapt (laplace needs the MAP start: init_from_map=True)"
    stats = run.stats
    return Fit(model, "nuts", annotations, cdata, samples=run.samples, sample_stats=stats,
               loss_history=map_history,
               diagnostics={"algorithm": f"NUTS ({chains} chains, {chain_method})",
                            "num_warmup": run.info["num_warmup"],
                            "num_samples": opts["num_samples"],
                            "target_accept_prob": opts["target_accept_prob"],
                            "mass_matrix": run.info["mass_matrix"],
                            "step_size": float(np.mean(run.info["step_size"])),
                            "warmup_gradients": int(run.info["warmup_steps"].sum()),
                            "divergences": int(stats["diverging"].sum())})

