r"""Simulation-based calibration (SBC) of the zoo's posteriors.

For replications ``r = 1..R``: draw the parameters ``theta_r`` from the prior and a crowd
``y_r`` from the model's own program (:func:`crowdzoo.data.simulate` does exactly this; the
harness runs the same program under ``jit``), fit the posterior ``p(theta | y_r)``, and take
the rank of the true value among ``L`` (thinned) posterior draws,

.. math::

    r = \#\{\ell : \theta^{(\ell)} < \theta_r\} \in \{0, \dots, L\}.

When the draws come from the exact posterior, the rank is uniform on ``0..L`` for every
scalar function of the parameters (Talts et al. 2018, Theorem 1). Deviations have shapes:
a U (posterior too narrow), a hump (too wide), a slope (biased). The true label ``z_t``
is discrete; its rank is the randomized probability integral transform
``u = P(z < z_t) + V P(z = z_t)``, ``V ~ U(0, 1)``, under the Rao-Blackwellized label
posterior, which is uniform on (0, 1) under calibration.

Uniformity is tested per quantity with a chi-square test on ``n_bins`` equal-probability
rank bins; the model *fails* SBC when the smallest p-value is below ``alpha / m``
(Bonferroni over the ``m`` quantities checked), a family-wise level ``alpha`` per model.
The PIT-ECDF difference plot with a simultaneous band (Säilynoja, Bürkner & Vehtari 2022) is
arviz-plots' ``plot_ecdf_pit`` (:func:`crowdzoo.inference.criticism_plots.plot_sbc_ecdf`).

Label switching: where the prior and the likelihood are symmetric under relabelling the true
classes (:meth:`~crowdzoo.models.base.CrowdModel.class_symmetric`: the biased worker model's
flat two-class prior), the exact posterior is an equal mixture of mirror modes, every task
label is 50/50 under it, and a chain in one mode fails SBC although it is what users want.
``fit`` then reports the identified posterior (each draw relabelled so that workers are
better than chance on average), and the harness labels the true parameters and labels the
same way: by the symmetry, the relabelled truth is a draw from the prior restricted to that
labelling, whose posterior is the relabelled one, so the ranks are uniform again (the
relabelling is a function of the parameters alone).

The posterior is computed by :func:`crowdzoo.fit` itself — the MAP, NUTS (one chain,
started from the MAP) or SVI (AutoNormal guide, reported separately: mean-field SVI is not
expected to be calibrated) that users run — and the crowds by
:func:`crowdzoo.data.simulate`, the model's own program. ``fit`` compiles its kernels once
per model and data shape, so an SBC run costs one compilation plus ``R`` short chains.

References
----------
1. S. Talts, M. Betancourt, D. Simpson, A. Vehtari, A. Gelman. Validating Bayesian Inference
   Algorithms with Simulation-Based Calibration. arXiv:1804.06788, 2018.
2. T. Säilynoja, P.-C. Bürkner, A. Vehtari. Graphical Test for Discrete Uniformity and its
   Applications in Goodness-of-Fit Evaluation and Multiple Sample Comparison. Statistics and
   Computing 32(32), 2022. https://doi.org/10.1007/s11222-022-10090-6
3. S. R. Cook, A. Gelman, D. B. Rubin. Validation of Software for Bayesian Models Using
   Posterior Quantiles. JCGS 15(3):675-692, 2006.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import pandas as pd

__all__ = [
    "SBCResult",
    "bin_probabilities",
    "chi2_uniformity",
    "needs_features",
    "rank_statistics",
    "run_sbc",
    "sbc_quantities",
    "simulate_batch",
]

def needs_features(model, n_classes: int = 2) -> bool:
    """Whether a model needs task features ``(T, D)`` (its declared ``needs_features``)."""
    from ..models import get_model

    return bool(get_model(model).needs_features)


# --- statistics ------------------------------------------------------------------------
def rank_statistics(true, draws) -> np.ndarray:
    """Rank of each true value among its posterior draws.

    Parameters
    ----------
    true : array (R, ...)
        True values, one per replication.
    draws : array (R, L, ...)
        Posterior draws of each replication.

    Returns
    -------
    numpy array (R, ...) of int
        ``#{l : draws[r, l] < true[r]}``, in ``0..L``.
    """
    true = np.asarray(true)
    draws = np.asarray(draws)
    if draws.shape[:1] + draws.shape[2:] != true.shape:
        raise ValueError(f"draws {draws.shape} do not match true values {true.shape}")
    return (draws < true[:, None]).sum(axis=1)


def bin_probabilities(n_draws: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin of every rank ``0..L`` and the exact probability of each bin under uniformity."""
    values = np.arange(n_draws + 1)
    bins = (values * n_bins) // (n_draws + 1)
    probs = np.bincount(bins, minlength=n_bins) / (n_draws + 1)
    return bins, probs


def chi2_uniformity(ranks, n_draws: int, n_bins: int = 5) -> tuple[float, int, float]:
    """Chi-square test that ranks are uniform on ``0..n_draws``.

    Parameters
    ----------
    ranks : array (R,)
        Ranks of one quantity over R replications.
    n_draws : int
        L, the number of posterior draws (ranks lie in ``0..L``).
    n_bins : int
        Number of (equal-probability, up to rounding) bins.

    Returns
    -------
    (statistic, df, p_value)
    """
    from scipy import stats

    ranks = np.asarray(ranks).astype(int)
    if ranks.min() < 0 or ranks.max() > n_draws:
        raise ValueError(f"ranks must lie in 0..{n_draws}")
    bins, probs = bin_probabilities(n_draws, n_bins)
    observed = np.bincount(bins[ranks], minlength=n_bins)
    expected = probs * ranks.size
    stat = float(((observed - expected) ** 2 / expected).sum())
    df = n_bins - 1
    return stat, df, float(stats.chi2.sf(stat, df))


# --- simulation ------------------------------------------------------------------------
def simulate_batch(model, n_reps: int, n_tasks: int, n_workers: int, n_classes: int,
                   answers_per_task: int, *, n_features: int = 2, seed: int = 0):
    """Simulate ``n_reps`` crowds from the prior with the model's own program.

    Replication ``r`` is ``crowdzoo.data.simulate(model, ..., seed=seed + r)`` (features,
    where the model needs them and does not generate its own, are standard normal
    ``(n_tasks, n_features)`` from
    ``numpy.random.default_rng(seed + r)``).

    Returns
    -------
    list of SimulatedCrowd
        ``(annotations, true_labels, params)`` per replication.
    """
    from ..data.simulate import simulate
    from ..models import get_model

    model = get_model(model)
    out = []
    for r in range(n_reps):
        s = seed + r
        feats = None
        if model.needs_features and model.generates_features is None:
            feats = np.random.default_rng(s).standard_normal((n_tasks, n_features))
        out.append(simulate(model, n_tasks, n_workers, n_classes, answers_per_task,
                            features=feats, seed=s))
    return out


# --- quantities ------------------------------------------------------------------------
def sbc_quantities(model, data, n_workers_checked: int = 2, n_tasks_checked: int = 2):
    """Return the scalar quantities an SBC run ranks: ``[(label, site, index), ...]``.

    Every parameter site of ``model.sample_params``; along a ``worker`` or ``task`` axis
    (``model.dims``) only the first ``n_*_checked`` entries, every entry of other axes; the
    last entry of a simplex is dropped (it is one minus the others); sites along an
    exchangeable dim (``model.exchangeable_dims``: the community model's communities, whose
    labels permute between the prior draw and the posterior) are left out, as their ranks
    depend on the labelling, not on the model. Then the true label of
    the first ``n_tasks_checked`` tasks (site ``"z"``).
    """
    from numpyro.distributions import constraints

    from ..inference.map import param_supports

    supports = param_supports(model, data)
    shapes = _prior_shapes(model, data)
    quantities = []
    for site, support in supports.items():
        shape = shapes[site]
        dims = tuple(model.dims.get(site, ()))
        if set(dims) & set(model.exchangeable_dims):
            continue  # identified only up to a relabelling of exchangeable components
        limits = []
        for ax, size in enumerate(shape):
            name = dims[ax] if ax < len(dims) else None
            if name == "worker":
                size = min(size, n_workers_checked)
            elif name == "task":
                size = min(size, n_tasks_checked)
            elif ax == len(shape) - 1 and support is constraints.simplex:
                size = size - 1
            limits.append(size)
        idx_all = list(np.ndindex(*limits)) if shape else [()]
        if not dims and len(idx_all) > 8:  # undeclared large sites: a few entries
            idx_all = idx_all[:8]
        for idx in idx_all:
            label = site + ("[" + ",".join(map(str, idx)) + "]" if idx else "")
            quantities.append((label, site, idx))
    for t in range(min(n_tasks_checked, data.n_tasks)):
        quantities.append((f"z[{t}]", "z", (t,)))
    return quantities


def _prior_shapes(model, data) -> dict:
    """Shape of every parameter site (the prior traced abstractly: nothing is sampled)."""
    import jax
    import numpyro

    def values():
        with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=0):
            model.sample_params(data)
        return {k: s["value"] for k, s in tr.items()
                if s["type"] == "sample" and not s["is_observed"]}

    return {k: tuple(v.shape) for k, v in jax.eval_shape(values).items()}


# --- the harness -----------------------------------------------------------------------
@dataclasses.dataclass
class SBCResult:
    """Ranks of an SBC run and their uniformity tests.

    Attributes
    ----------
    model : str
        Registry name of the simulating model (``fit_model`` is named in ``settings``).
    method : str
        ``"nuts"`` or ``"svi"``.
    ranks : dict of str -> numpy array (R,)
        Rank of the true value of each quantity in each replication, in ``0..n_draws``.
    n_draws : int
        L, the number of (thinned) posterior draws per replication.
    alpha : float
        Family-wise level of :attr:`passed` (Bonferroni over the quantities).
    n_bins : int
        Bins of the chi-square test.
    settings : dict
        Sizes, sampler settings and seed.
    diagnostics : dict
        Divergences per replication (NUTS), mean tree size, MAP convergence, wall time.
    """

    model: str
    method: str
    ranks: dict
    n_draws: int
    alpha: float
    n_bins: int
    settings: dict
    diagnostics: dict

    def table(self) -> pd.DataFrame:
        """One row per quantity: chi-square statistic, df, p-value, rejected at alpha/m."""
        rows = []
        m = len(self.ranks)
        for q, r in self.ranks.items():
            stat, df, p = chi2_uniformity(r, self.n_draws, self.n_bins)
            rows.append({"quantity": q, "chi2": stat, "df": df, "p_value": p,
                         "rejected": p < self.alpha / m, "mean_rank": float(np.mean(r)) /
                         self.n_draws})
        return pd.DataFrame(rows).set_index("quantity")

    @property
    def min_p_value(self) -> float:
        """Smallest per-quantity p-value."""
        return float(self.table()["p_value"].min())

    @property
    def adjusted_p_value(self) -> float:
        """Bonferroni-adjusted p-value of the family: ``min(1, m * min p)``."""
        return min(1.0, len(self.ranks) * self.min_p_value)

    @property
    def passed(self) -> bool:
        """Whether rank uniformity is not rejected at family-wise level ``alpha``."""
        return self.adjusted_p_value >= self.alpha

    def __repr__(self) -> str:
        return (f"SBCResult(model={self.model!r}, method={self.method!r}, "
                f"reps={self.settings['n_reps']}, quantities={len(self.ranks)}, "
                f"L={self.n_draws}, adjusted_p={self.adjusted_p_value:.3g}, "
                f"passed={self.passed})")


def run_sbc(
    model,
    *,
    n_reps: int = 50,
    n_tasks: int = 20,
    n_workers: int = 4,
    n_classes: int = 2,
    answers_per_task: int = 3,
    method: str = "nuts",
    fit_model=None,
    num_warmup: int = 150,
    num_samples: int = 400,
    thin: int = 4,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 8,
    svi_steps: int = 1500,
    learning_rate: float = 0.02,
    n_workers_checked: int = 2,
    n_tasks_checked: int = 2,
    n_features: int = 2,
    n_bins: int = 5,
    alpha: float = 0.01,
    seed: int = 0,
) -> SBCResult:
    """Simulation-based calibration of a model's posterior (NUTS or SVI).

    Parameters
    ----------
    model : str or CrowdModel
        The model that simulates the crowds (parameters from its prior).
    n_reps : int
        Replications R.
    n_tasks, n_workers, n_classes, answers_per_task : int
        Size of each simulated crowd (small: SBC needs many fits, not big ones).
    method : {"nuts", "svi"}
        Posterior approximation to check.
    fit_model : CrowdModel, optional
        The model that fits the crowds (default: ``model``). A different one plants a bug,
        which SBC should detect.
    num_warmup, num_samples, thin : int
        NUTS settings (one chain, started from the MAP); ``L = num_samples // thin`` draws
        are ranked. Thin so that the kept draws are roughly independent (Talts et al.).
    target_accept_prob, max_tree_depth : float, int
        NUTS settings.
    svi_steps, learning_rate : int, float
        SVI settings (AutoNormal guide started from the MAP; ``L`` draws from the guide).
    n_workers_checked, n_tasks_checked : int
        How many workers' / tasks' parameters (and task labels) are ranked.
    n_features : int
        Width of the standard normal features simulated for models with
        ``needs_features = True``.
    n_bins, alpha : int, float
        Chi-square bins and the family-wise level (Bonferroni over the quantities).
    seed : int
        Replication r uses ``seed + r`` for its crowd and its sampler.

    Returns
    -------
    SBCResult
    """
    from ..models import get_model

    if method not in ("nuts", "svi"):
        raise ValueError(f"method must be 'nuts' or 'svi', got {method!r}")
    model = get_model(model)
    fit_model = model if fit_model is None else get_model(fit_model)
    if not fit_model.proper_likelihood:
        raise ValueError(
            f"{fit_model.name}'s likelihood is not a normalized distribution of the answers "
            f"(it plugs in a statistic of the answers), so no simulator matches it and SBC "
            f"does not apply; its posterior is a pseudo-posterior"
        )
    if method not in fit_model.methods:
        raise ValueError(f"{fit_model.name} cannot be fitted with {method!r}")
    if num_samples // thin < 1:
        raise ValueError("num_samples // thin must be at least 1")
    start = time.perf_counter()
    from ..models.core import crowd_data
    from .runner import ConvergenceWarning, fit

    sims = simulate_batch(model, n_reps, n_tasks, n_workers, n_classes, answers_per_task,
                          n_features=n_features, seed=seed)
    data0 = crowd_data(sims[0].annotations)
    fit_model.check_data(data0)
    if method == "nuts":
        n_draws = num_samples // thin
        options = {"num_warmup": num_warmup, "num_samples": num_samples, "num_chains": 1,
                   "target_accept_prob": target_accept_prob, "max_tree_depth": max_tree_depth}
    else:
        n_draws = num_samples
        options = {"num_steps": svi_steps, "learning_rate": learning_rate,
                   "num_draws": num_samples}
    quantities = sbc_quantities(model, data0, n_workers_checked, n_tasks_checked)
    # a posterior symmetric under relabelling the classes: the fit reports the identified one
    # (its draws relabelled by canonical_class_order), so the truth is labelled alike
    relabel = model.class_symmetric(data0) and fit_model.class_symmetric(data0)
    n_relabelled = 0
    ranks = {q[0]: np.zeros(n_reps, int) for q in quantities}
    divergences, steps, map_converged = [], [], []
    rng = np.random.default_rng(seed)
    for r, sim in enumerate(sims):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            result = fit(fit_model, sim.annotations, method=method, seed=seed + r,
                         progress=False, **options)
        map_converged.append(not any("MAP" in str(w.message) for w in caught
                                     if issubclass(w.category, ConvergenceWarning)))
        draws = {k: np.asarray(v).reshape((-1,) + v.shape[2:])[::thin if method == "nuts" else 1]
                 for k, v in result.samples.items()}
        probs = result.task_posterior().to_numpy()
        z = sim.annotations.classes.get_indexer(sim.true_labels.to_numpy())
        truth = sim.params
        if relabel:
            order = model.canonical_class_order(truth)
            truth = model.permute_classes(truth, order)
            z = np.argsort(order)[z]  # old class k is now labelled argsort(order)[k]
            n_relabelled += int(np.any(order != np.arange(order.size)))
        if method == "nuts":
            divergences.append(int(result.sample_stats["diverging"].sum()))
            steps.append(float(result.sample_stats["num_steps"].mean()))
        else:
            divergences.append(int((~np.isfinite(result.loss_history)).sum()))
        for label, site, idx in quantities:
            if site == "z":
                t = idx[0]
                p = probs[t] / probs[t].sum()
                u = p[: z[t]].sum() + rng.random() * p[z[t]]
                ranks[label][r] = min(int(np.floor(u * (n_draws + 1))), n_draws)
            else:
                true = truth[site][idx]
                ranks[label][r] = int((draws[site][(slice(None),) + idx] < true).sum())
    settings = {
        "n_reps": n_reps, "n_tasks": n_tasks, "n_workers": n_workers, "n_classes": n_classes,
        "answers_per_task": answers_per_task, "fit_model": fit_model.name or type(
            fit_model).__name__, "seed": seed,
    }
    if method == "nuts":
        settings.update(num_warmup=num_warmup, num_samples=num_samples, thin=thin,
                        target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth)
        diag = {"divergences": np.asarray(divergences), "mean_tree_size": float(np.mean(steps))}
    else:
        settings.update(svi_steps=svi_steps, learning_rate=learning_rate)
        diag = {"nonfinite_losses": np.asarray(divergences)}
    diag["map_converged"] = float(np.mean(map_converged))
    if relabel:  # replications whose true parameters were relabelled (about half for K = 2)
        diag["relabelled_truths"] = n_relabelled
    diag["seconds"] = time.perf_counter() - start
    return SBCResult(model.name, method, ranks, n_draws, alpha, n_bins, settings, diag)
