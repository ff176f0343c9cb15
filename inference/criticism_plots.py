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
    "plot_reliability",
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


def sbc_datatree(result, seed: int = 0):
    """Return an SBC run as ArviZ expects it: randomized PIT values in the group ``prior_sbc``.

    The rank ``r`` of a true value among ``L`` draws becomes ``(r + V) / (L + 1)`` with
    ``V ~ U(0, 1)``, uniform on (0, 1) when the posterior is computed correctly (one draw per
    replication along ``draw``).
    """
    import xarray as xr

    rng = np.random.default_rng(seed)
    L = result.n_draws
    data = {q: (("chain", "draw"), ((np.asarray(r) + rng.random(len(r))) / (L + 1))[None])
            for q, r in result.ranks.items()}
    return xr.DataTree.from_dict({"prior_sbc": xr.Dataset(data)})


def _figure_of(plot_collection):
    """Return the matplotlib Figure of an arviz-plots PlotCollection."""
    return plot_collection.viz["figure"].item()


def plot_sbc_ecdf(result, quantities=None):
    """ArviZ's PIT-ECDF difference plot of an SBC run (arviz-plots ``plot_ecdf_pit``).

    Each panel is ``ECDF(PIT) - uniform`` of one quantity with its simultaneous band and a
    uniformity p-value (Säilynoja, Bürkner & Vehtari 2022); a curve that leaves the band
    rejects calibration.
    """
    import arviz_plots as ap

    dt = sbc_datatree(result)
    names = list(result.ranks) if quantities is None else list(quantities)
    pc = ap.plot_ecdf_pit(dt, var_names=names, backend="matplotlib")
    fig = _figure_of(pc)
    fig.suptitle(f"SBC PIT-ECDF: {result.model} ({result.method}), "
                 f"{len(next(iter(result.ranks.values())))} replications, L={result.n_draws}")
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


def plot_pareto_k(elpd, title: str | None = None):
    """Pareto k of every task's PSIS-LOO term (arviz-plots ``plot_khat``) with the 0.7 line."""
    import arviz_plots as ap

    from .compare import PARETO_K_BAD

    pc = ap.plot_khat(elpd, threshold=PARETO_K_BAD, backend="matplotlib")
    fig = _figure_of(pc)
    k = np.asarray(elpd.pareto_k).ravel()
    fig.suptitle(f"{title + ': ' if title else ''}{int((k > PARETO_K_BAD).sum())} of {k.size} "
                 f"tasks with Pareto k > {PARETO_K_BAD}")
    return fig


def plot_compare(loos):
    """ELPD differences to the best model (arviz-plots ``plot_compare`` of ``az.compare``)."""
    import warnings

    import arviz as az
    import arviz_plots as ap

    with warnings.catch_warnings():  # ArviZ repeats the Pareto k warning; compare reports it
        warnings.simplefilter("ignore", UserWarning)
        # raw numbers, as the printed table has them: "auto" rounds each difference to its
        # se's precision, which drew rte's 965.4 +- 49.9 at 1000
        table = az.compare(loos, round_to="none")
    fig = _figure_of(ap.plot_compare(table, backend="matplotlib"))
    fig.set_layout_engine("constrained")  # long model names were cut at the left edge
    return fig


def plot_reliability(probs, gold, n_bins: int = 10, ax=None, title: str | None = None,
                     legend: bool = True):
    """Reliability diagram with bin counts: each confidence bin's accuracy on gold.

    One bar per equal-width bin of the confidence ``max_k p_tk`` (the bins of
    :func:`~crowdzoo.inference.compare.expected_calibration_error`): its height is the
    share of the bin's tasks whose most probable class is the gold one, a dot marks the
    bin's mean confidence on the diagonal's scale, and the number of tasks in the bin is
    written above it -- a bin of 3 tasks says little, and most crowds put nearly every task
    in the last bin. ArviZ's PAV-adjusted calibration plots (``plot_ppc_pava``) calibrate
    a posterior predictive against observed binary outcomes, not a task posterior against
    gold, and show no counts, hence this one.

    Parameters
    ----------
    probs : array (T, K)
        Task posteriors (``fit.task_posterior().to_numpy()``).
    gold : int array (T,)
        Gold class codes, ``-1`` where there is none.
    n_bins : int
        Number of bins.
    ax : matplotlib Axes, optional
    title : str, optional
        Defaults to the ECE and accuracy.
    legend : bool
        Draw the legend (off for the small panels of a grid).

    Returns
    -------
    matplotlib Figure
    """
    from matplotlib.figure import Figure

    from .compare import _probs_gold, calibration_curve, expected_calibration_error

    fig = None
    if ax is None:
        fig = Figure(figsize=(4.5, 4.5), layout="constrained")
        ax = fig.subplots()
    p, g = _probs_gold(probs, gold)
    curve = calibration_curve(p, g, n_bins)
    width = 1.0 / n_bins
    ax.bar(curve["bin_low"], curve["accuracy"], width=width, align="edge", color="C0",
           alpha=0.6, edgecolor="C0", label="accuracy in bin")
    ax.plot(curve["confidence"], curve["confidence"], "o", color="C3", ms=3,
            label="mean confidence")
    ax.vlines(curve["confidence"], curve["accuracy"], curve["confidence"], color="C3", lw=1)
    for _, r in curve.iterrows():
        ax.annotate(f"{int(r['count'])}", (r["bin_low"] + width / 2,
                                           max(r["accuracy"], r["confidence"])),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize=7)
    ax.plot([0, 1], [0, 1], color="0.5", ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("confidence (max posterior probability)")
    ax.set_ylabel("accuracy on gold")
    if title is None:
        acc = float((p.argmax(1) == g).mean())
        title = f"ECE {expected_calibration_error(p, g, n_bins):.3f}, accuracy {acc:.3f}"
    ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=7, loc="upper left")
    return fig if fig is not None else ax.figure


#: more fits than this get one reliability panel each (:func:`plot_calibration`): overlaid,
#: their curves, colours (matplotlib's cycle has 10) and bin counts cannot be told apart
MAX_OVERLAID_FITS = 4


def plot_calibration(fits, gold=None, n_bins: int = 10, ax=None):
    """Reliability curves of several fits' task posteriors on gold, with bin counts.

    Up to :data:`MAX_OVERLAID_FITS` fits (or any number drawn into a given ``ax``) are
    overlaid, one curve each; more get a grid of :func:`plot_reliability` panels, one per
    fit (what ``crowdzoo compare --models all`` draws).

    Parameters
    ----------
    fits : dict of name -> Fit, or one Fit
        Fitted with ``use_gold=False`` (or pass ``gold``).
    gold : pandas.Series, optional
        Gold labels indexed by task id.
    """
    from matplotlib.figure import Figure

    from .compare import calibration_curve, expected_calibration_error, gold_codes

    if not isinstance(fits, dict):
        fits = {fits.model.name: fits}
    if ax is None and len(fits) > MAX_OVERLAID_FITS:
        ncols = 4
        nrows = -(-len(fits) // ncols)
        fig = Figure(figsize=(3.2 * ncols, 2.9 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for i, (name, f) in enumerate(fits.items()):
            g = gold_codes(f, gold)
            p = f.task_posterior().to_numpy()
            keep = g >= 0
            acc = float((p[keep].argmax(1) == g[keep]).mean())
            plot_reliability(p, g, n_bins, ax=axes[i], legend=i == 0,
                             title=f"{name} ({f.method})\nECE "
                             f"{expected_calibration_error(p, g, n_bins):.3f}, accuracy "
                             f"{acc:.3f}")
        for a in axes[len(fits):]:
            a.set_visible(False)
        fig.suptitle("Calibration of task posteriors on gold (numbers: tasks per bin)")
        return fig
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
        for _, r in curve.iterrows():  # how many tasks each point stands for
            ax.annotate(f"{int(r['count'])}", (r["confidence"], r["accuracy"]),
                        xytext=(3, -9 - 8 * i), textcoords="offset points", fontsize=6,
                        color=f"C{i}")
    ax.set_xlabel("confidence (max posterior probability)")
    ax.set_ylabel("accuracy on gold")
    ax.set_title("Calibration of task posteriors (numbers: tasks per bin)")
    ax.legend(fontsize=7)
    return fig if fig is not None else ax.figure
