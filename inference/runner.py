"""One runner for every model: ``fit(model, data, method) -> Fit``.

It knows nothing model-specific beyond what a model declares (``sample_params``,
``log_terms``, and optionally ``em_update`` / ``closed_form``).
"""

from __future__ import annotations

import sys
import time
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..models import CrowdModel, crowd_data, get_model
from . import diagnostics
from .diagnostics import ConvergenceWarning
from .result import Fit
from .map import interior_point, run_em, run_lbfgs, run_squarem

__all__ = ["fit", "ConvergenceWarning", "PseudoPosteriorWarning", "METHODS"]

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
        "num_warmup": 500,
        "num_samples": 500,
        "num_chains": 4,
        "target_accept_prob": 0.8,
        "max_tree_depth": 10,
        "init_from_map": True,
        "chain_method": None,
    },
}


class PseudoPosteriorWarning(UserWarning):
    """SVI / NUTS on a model whose likelihood is not a distribution of the answers."""


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
    seed: int = 0,
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
        the same labelling of the classes).
    seed : int
        Seed of every random choice; the same seed gives the same result.
    progress : bool, optional
        Progress bars for SVI/NUTS; default: when stderr is a terminal.
    use_gold : bool
        Clamp the true label of gold tasks (default). With False the gold labels are only
        used for scoring.
    **options
        Method options. ``map``: ``tol`` (per-answer change of the log posterior, 1e-6),
        ``param_tol`` (largest change of a parameter, 1e-5; EM only),
        ``max_iter`` (500 for EM, 2000 for L-BFGS), ``init`` (a params dict),
        ``accelerate`` (SQUAREM-accelerated EM: same fixed point, fewer iterations; default:
        the model's ``em_accelerate``, on for the learning-from-crowds models).
        ``svi``: ``guide`` ("normal" | "delta"), ``num_steps`` (3000), ``learning_rate``
        (0.01), ``num_particles``, ``num_draws`` (1000), ``init_from_map``, ``init_scale``.
        ``nuts``: ``num_warmup`` (500), ``num_samples`` (500), ``num_chains`` (4),
        ``target_accept_prob`` (0.8), ``max_tree_depth`` (10), ``init_from_map`` (True),
        ``chain_method`` (default: "parallel" when there are enough CPU devices).

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
    opts = {**_OPTIONS[method], **options}
    if opts.get("accelerate") is not None and not isinstance(opts["accelerate"], bool):
        raise TypeError(f"accelerate must be True, False or None (the model's default), got "
                        f"{opts['accelerate']!r}")
    annotations = _as_annotations(data)
    cdata = crowd_data(annotations, use_gold=use_gold)
    model.check_data(cdata)
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
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
    if method == "map":
        result = _fit_map(model, cdata, annotations, opts)
    elif method == "svi":
        result = _fit_svi(model, cdata, annotations, opts, key, progress)
    else:
        result = _fit_nuts(model, cdata, annotations, opts, key, progress)
    result.elapsed = time.perf_counter() - start
    result.seed = seed
    diagnostics.warn_if_unconverged(result)
    return result


# --- MAP -------------------------------------------------------------------------------
@partial(jax.jit, static_argnums=0)
def _jitted_init(model, cdata):
    return model.init_params(cdata)


def _initial_params(model, cdata, annotations):
    """The model's MAP start; compiled when the model declares it pure (``jit_init``)."""
    if model.jit_init and getattr(model, "initial_error", None) is None:
        return _jitted_init(model, cdata)
    return model.init_params(cdata, annotations)


def _map_point(model, cdata, annotations, tol=1e-6, max_iter=None, init=None, param_tol=1e-5,
               accelerate=None):
    """Run the MAP kernel; return (params, history, n_iter, converged, kind)."""
    params0 = init if init is not None else _initial_params(model, cdata, annotations)
    params0 = {k: jnp.asarray(v) for k, v in params0.items()}
    if model.em_update is not None:
        squarem = model.em_accelerate if accelerate is None else accelerate
        kind, max_iter = ("squarem" if squarem else "em"), int(max_iter or 500)
        kernel = run_squarem if squarem else run_em
        res = kernel(model, params0, cdata, jnp.float32(tol), max_iter, jnp.float32(param_tol))
    else:
        if accelerate:
            raise ValueError(f"accelerate=True speeds up closed-form EM, but {model.name} has no "
                             f"EM update here: its MAP is L-BFGS")
        kind, max_iter = "lbfgs", int(max_iter or 2000)
        res = run_lbfgs(model, params0, cdata, jnp.float32(tol), max_iter)
    n_iter = int(res.n_iter)
    history = np.asarray(res.history)[:n_iter]
    converged = bool(res.converged)
    if not converged:
        warnings.warn(
            f"{model.name} MAP ({kind}) hit max_iter={max_iter} before the tolerance "
            f"tol={tol:g} (last change of the log posterior per answer: "
            f"{(abs(history[-1] - history[-2]) if n_iter > 1 else float('nan')) / max(cdata.n_answers, 1):.3g}); "
            f"raise max_iter or tol",
            ConvergenceWarning,
            stacklevel=4,
        )
    params = {k: np.asarray(v) for k, v in res.params.items()}
    if not all(np.isfinite(v).all() for v in params.values()) or not np.isfinite(history).all():
        raise FloatingPointError(
            f"{model.name} MAP produced non-finite values; check the priors (concentrations "
            f"must be > 0) and the data"
        )
    return params, history, n_iter, converged, kind


def _fit_map(model, cdata, annotations, opts) -> Fit:
    if hasattr(model, "closed_form"):
        post = np.asarray(model.closed_form(cdata))
        return Fit(model, "map", annotations, cdata, params={}, task_probs=post,
                   diagnostics={"algorithm": "closed form"})
    params, history, n_iter, converged, kind = _map_point(
        model, cdata, annotations, opts["tol"], opts["max_iter"], opts["init"], opts["param_tol"],
        opts["accelerate"],
    )
    return Fit(
        model, "map", annotations, cdata, params=params, loss_history=history,
        diagnostics={"algorithm": kind, "n_iter": n_iter, "converged": converged,
                     "log_posterior": float(history[-1])},
    )


# --- SVI -------------------------------------------------------------------------------
def _fit_svi(model, cdata, annotations, opts, key, progress) -> Fit:
    import optax
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoDelta, AutoNormal
    from numpyro.infer.initialization import init_to_median, init_to_value

    init = init_to_median()
    if opts["init_from_map"]:
        point, *_ = _map_point(model, cdata, annotations)
        init = init_to_value(values=interior_point(model, point, cdata))
    guide_opt = opts["guide"]
    if guide_opt == "normal":
        guide = AutoNormal(model, init_loc_fn=init, init_scale=opts["init_scale"])
    elif guide_opt == "delta":
        guide = AutoDelta(model, init_loc_fn=init)
    elif callable(guide_opt):
        guide = guide_opt(model)
    else:
        raise ValueError(f"guide must be 'normal', 'delta' or a callable, got {guide_opt!r}")
    svi = SVI(model, guide, optax.adam(opts["learning_rate"]),
              Trace_ELBO(num_particles=opts["num_particles"]))
    k_run, k_draw = jax.random.split(key)
    res = svi.run(k_run, opts["num_steps"], cdata, progress_bar=progress)
    losses = np.asarray(res.losses)
    if not np.isfinite(losses[-1]):
        raise FloatingPointError("SVI diverged (non-finite ELBO); lower learning_rate")
    n_draws = 1 if guide_opt == "delta" else opts["num_draws"]
    draws = guide.sample_posterior(k_draw, res.params, sample_shape=(n_draws,))
    names = [n for n in _param_names(model, cdata)]
    samples = {k: np.asarray(draws[k])[None] for k in names}
    return Fit(model, "svi", annotations, cdata, samples=samples, loss_history=-losses,
               diagnostics={"algorithm": f"SVI ({guide_opt} guide)", "n_steps": opts["num_steps"],
                            "final_elbo": float(-losses[-1])})


def _param_names(model, cdata):
    from .map import param_supports

    return list(param_supports(model, cdata))


# --- NUTS ------------------------------------------------------------------------------
def _fit_nuts(model, cdata, annotations, opts, key, progress) -> Fit:
    from numpyro.infer import MCMC, NUTS
    from numpyro.infer.initialization import init_to_median, init_to_value

    init = init_to_median()
    map_history = None
    if opts["init_from_map"]:
        point, map_history, *_ = _map_point(model, cdata, annotations)
        init = init_to_value(values=interior_point(model, point, cdata))
    chains = int(opts["num_chains"])
    chain_method = opts["chain_method"]
    if chain_method is None:
        chain_method = "parallel" if jax.local_device_count() >= chains else "sequential"
    kernel = NUTS(model, init_strategy=init, target_accept_prob=opts["target_accept_prob"],
                  max_tree_depth=opts["max_tree_depth"])
    mcmc = MCMC(kernel, num_warmup=opts["num_warmup"], num_samples=opts["num_samples"],
                num_chains=chains, chain_method=chain_method, progress_bar=progress)
    mcmc.run(key, cdata, extra_fields=("diverging", "num_steps", "accept_prob", "energy"))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    stats = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
    return Fit(model, "nuts", annotations, cdata, samples=samples, sample_stats=stats,
               loss_history=map_history,
               diagnostics={"algorithm": f"NUTS ({chains} chains, {chain_method})",
                            "num_warmup": opts["num_warmup"], "num_samples": opts["num_samples"],
                            "divergences": int(stats["diverging"].sum())})
