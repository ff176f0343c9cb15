"""Plots of model criticism: SBC ranks, posterior predictive checks, LOO and calibration.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no
global state, no display needed); save it with ``fig.savefig(path)`` or show it in a
notebook by leaving it as the last expression of a cell.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_calibration",
    "plot_compare",
    "plot_pareto_k",
    "plot_ppc_histogram",
    "plot_ppc_workers",
    "plot_sbc_ecdf",
    "plot_sbc_ranks",
]


def _figure(n_panels: int, ncols: int = 4, size=(3.0, 2.4)):
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def plot_sbc_ranks(result, quantities=None, n_bins: int | None = None, interval: float = 0.99):
    """Rank histograms of an SBC run with the pointwise binomial band of uniform ranks.

    Parameters
    ----------
    result : SBCResult
    quantities : list of str, optional
        Which quantities (default: all).
    n_bins : int, optional
        Histogram bins (default: those of the chi-square test).
    interval : float
        Mass of the grey band of a bin count under uniformity.
    """
    from scipy import stats

    from .sbc import bin_probabilities

    names = list(result.ranks) if quantities is None else list(quantities)
    n_bins = n_bins or result.n_bins
    bins, probs = bin_probabilities(result.n_draws, n_bins)
    n = len(next(iter(result.ranks.values())))
    fig, axes = _figure(len(names))
    lo = stats.binom.ppf((1 - interval) / 2, n, probs)
    hi = stats.binom.ppf(1 - (1 - interval) / 2, n, probs)
    for ax, q in zip(axes, names, strict=True):
        counts = np.bincount(bins[result.ranks[q]], minlength=n_bins)
        x = np.arange(n_bins)
        ax.fill_between(np.r_[x - 0.5, x[-1] + 0.5], np.r_[lo, lo[-1]], np.r_[hi, hi[-1]],
                        step="post", color="0.85", label=f"{interval:.0%} if uniform")
        ax.bar(x, counts, width=0.9, color="C0")
        ax.set_title(q, fontsize=9)
        ax.set_xticks([])
    axes[0].legend(fontsize=7)
    fig.suptitle(f"SBC rank histograms: {result.model} ({result.method}), "
                 f"{n} replications, L={result.n_draws}")
    return fig


def plot_sbc_ecdf(result, quantities=None, alpha: float = 0.05):
    """ECDF difference ``ECDF(rank / (L + 1)) - uniform`` with a simultaneous band.

    The band is the ``1 - alpha`` simultaneous envelope of Säilynoja et al. (2022), computed
    by :func:`crowdzoo.inference.sbc.ecdf_band`; a curve that leaves it rejects uniformity.
    """
    from .sbc import ecdf_band

    names = list(result.ranks) if quantities is None else list(quantities)
    n = len(next(iter(result.ranks.values())))
    z, lower, upper = ecdf_band(n, result.n_draws, alpha=alpha)
    fig, axes = _figure(len(names))
    for ax, q in zip(axes, names, strict=True):
        r = np.asarray(result.ranks[q])
        ecdf = (r[None, :] < np.arange(1, result.n_draws + 1)[:, None]).mean(1)
        ax.fill_between(z, lower, upper, color="0.85", step="mid")
        ax.plot(z, ecdf - z, color="C0")
        ax.axhline(0, color="0.4", lw=0.6)
        ax.set_title(q, fontsize=9)
    fig.suptitle(f"SBC ECDF difference: {result.model} ({result.method}); "
                 f"grey: {1 - alpha:.0%} simultaneous band")
    return fig


def plot_ppc_histogram(check, label=None, ax=None):
    """Histogram over items of the votes for a class: data (dots) vs replicates (band).

    For binary data (default: the second class) this is the plot of Han, Adiguzel &
    Carpenter (2024): the number of items with ``c`` positive votes.
    """
    from matplotlib.figure import Figure

    table = check.vote_histogram(label)
    fig = None
    if ax is None:
        fig = Figure(figsize=(6, 3.5), layout="constrained")
        ax = fig.subplots()
    x = table.index.to_numpy()
    ax.bar(x, table["replicated_mean"], color="C0", alpha=0.35, label="replicated mean")
    ax.vlines(x, table["low"], table["high"], color="C0", lw=3, label="95% of replicates")
    ax.plot(x, table["observed"], "o", color="k", label="observed")
    what = "majority agreement" if label == "agreement" else (
        f"votes for class {check.classes[1 if label is None else check._class_code(label)]}"
        if label != "agreement" else label)
    ax.set_xlabel(f"number of {what}")
    ax.set_ylabel("items")
    ppp = check.summary()["histogram_ppp"] if label is None else None
    title = f"PPC {check.model} ({check.method})"
    if ppp is not None:
        title += f": histogram ppp = {ppp:.3f}"
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure


def plot_ppc_workers(check, ax=None):
    """Per worker: observed agreement with the majority vs the replicated 95% interval."""
    from matplotlib.figure import Figure

    w = check.workers().dropna(subset=["observed"])
    order = np.argsort(w["replicated_mean"].to_numpy())
    w = w.iloc[order]
    fig = None
    if ax is None:
        fig = Figure(figsize=(7, 3.5), layout="constrained")
        ax = fig.subplots()
    x = np.arange(len(w))
    out = (w["ppp"] < 0.025) | (w["ppp"] > 0.975)
    ax.vlines(x, w["low"], w["high"], color="C0", alpha=0.6, label="95% of replicates")
    ax.plot(x[~out], w["observed"][~out], ".", color="k", label="observed")
    ax.plot(x[out], w["observed"][out], "x", color="C3", label="observed, outside")
    ax.set_xlabel("workers (sorted by replicated agreement)")
    ax.set_ylabel("agreement with majority")
    ax.set_title(f"PPC per worker: {check.model} ({check.method}), "
                 f"{out.mean():.0%} outside")
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure


def plot_pareto_k(loos, ax=None):
    """Pareto k of every task, per model, with the 0.5 and 0.7 thresholds.

    Parameters
    ----------
    loos : dict of name -> ELPDData, or one ELPDData
    """
    from matplotlib.figure import Figure

    from .compare import PARETO_K_BAD

    if not isinstance(loos, dict):
        loos = {"model": loos}
    fig = None
    if ax is None:
        fig = Figure(figsize=(7, 3.5), layout="constrained")
        ax = fig.subplots()
    for i, (name, elpd) in enumerate(loos.items()):
        k = np.asarray(elpd.pareto_k).ravel()
        ax.plot(np.arange(k.size), k, ".", ms=3, color=f"C{i}", alpha=0.7,
                label=f"{name}: {(k > PARETO_K_BAD).sum()} > {PARETO_K_BAD}")
    ax.axhline(0.5, color="0.5", ls=":", lw=0.8)
    ax.axhline(PARETO_K_BAD, color="C3", ls="--", lw=0.8)
    ax.set_xlabel("task")
    ax.set_ylabel("Pareto k")
    ax.set_title("PSIS-LOO diagnostics")
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure


def plot_compare(table, ax=None):
    """ELPD-LOO of each model (``+- se``), best on top, from a compare table."""
    from matplotlib.figure import Figure

    t = table.dropna(subset=["elpd_loo"]).sort_values("elpd_loo")
    fig = None
    if ax is None:
        fig = Figure(figsize=(6, 0.5 + 0.45 * max(len(t), 1)), layout="constrained")
        ax = fig.subplots()
    y = np.arange(len(t))
    ax.errorbar(t["elpd_loo"], y, xerr=t["se"], fmt="o", color="k", label="elpd_loo +- se")
    if "dse" in t:
        best = t["elpd_loo"].max()
        ax.errorbar(best - t["elpd_diff"].fillna(0), y - 0.2, xerr=t["dse"].fillna(0), fmt="^",
                    color="C1", ms=4, label="difference to best +- se")
    ax.set_yticks(y, t.index)
    ax.set_xlabel("ELPD (PSIS-LOO over tasks)")
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure


def plot_calibration(fits, gold=None, n_bins: int = 10, ax=None):
    """Reliability diagram of the task posteriors on gold: confidence vs accuracy.

    Parameters
    ----------
    fits : dict of name -> Fit, or one Fit
        Fitted with ``use_gold=False`` (or pass ``gold``).
    gold : pandas.Series, optional
        Gold labels indexed by task id.
    """
    from matplotlib.figure import Figure

    from .compare import gold_codes, calibration_curve, expected_calibration_error

    if not isinstance(fits, dict):
        fits = {fits.model.name: fits}
    fig = None
    if ax is None:
        fig = Figure(figsize=(4.5, 4.5), layout="constrained")
        ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.5", ls=":")
    for i, (name, f) in enumerate(fits.items()):
        g = gold_codes(f, gold)
        p = f.task_posterior().to_numpy()
        curve = calibration_curve(p, g, n_bins)
        ece = expected_calibration_error(p, g, n_bins)
        ax.plot(curve["confidence"], curve["accuracy"], "o-", color=f"C{i}", ms=3,
                label=f"{name} ({f.method}) ECE={ece:.3f}")
    ax.set_xlabel("confidence (max posterior probability)")
    ax.set_ylabel("accuracy on gold")
    ax.set_title("Calibration of task posteriors")
    ax.legend(fontsize=7)
    return fig if fig is not None else ax.figure
