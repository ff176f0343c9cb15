"""Plots of a fitted crowd model that ArviZ does not have.

Worker reliability (sorted, with credible intervals and answer counts), confusion matrices
with intervals, item difficulty, community matrices, and rank plots of the parameters that
mixed worst. Every function takes a :class:`~crowdzoo.Fit` and returns a matplotlib
:class:`~matplotlib.figure.Figure` (drawn on the given axes when there are some). They add
no logic of their own: the numbers come from :meth:`Fit.workers`, :meth:`Fit.tasks`,
``Fit.samples`` and :meth:`Fit.convergence`. Everything else is ArviZ's: pass
``fit.to_arviz()`` to ``arviz_plots.plot_rank``, ``plot_trace``, ``plot_forest``,
``plot_ppc_dist``, ``plot_energy``, and ``az.loo(...)`` to ``plot_khat``.

Examples
--------
>>> import crowdzoo
>>> from crowdzoo.plots import plot_confusion, plot_worker_accuracy
>>> fit = crowdzoo.fit("dawid_skene", crowdzoo.data.load_demo())
>>> fig = plot_worker_accuracy(fit)  # doctest: +SKIP
>>> fig = plot_confusion(fit, n_worst=3)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .inference.criticism_plots import plot_reliability
from .inference.result import INTERVAL

__all__ = ["plot_communities", "plot_confusion", "plot_difficulty", "plot_rank_worst",
           "plot_reliability", "plot_worker_accuracy", "worst_workers"]

#: with more workers than this, the worker ids are not written on the axis
MAX_LABELLED_WORKERS = 60


def _accuracy_table(fit, column: str) -> pd.DataFrame:
    """Return the ``workers()`` table, checked to have the per-worker ``column``."""
    table = fit.workers()
    if column not in table.columns:
        per_worker = [c for c in table.columns if c != "n_answers" and "[" not in c]
        raise ValueError(
            f"model {fit.model.name!r} has no per-worker {column!r}; its per-worker "
            f"quantities are: {', '.join(per_worker) or 'none'}"
        )
    return table


def worst_workers(fit, n: int = 5, column: str = "accuracy") -> list:
    """Ids of the ``n`` workers with the lowest ``column`` of :meth:`Fit.workers`.

    Parameters
    ----------
    fit : Fit
        A fitted model with a per-worker ``column`` (``"accuracy"`` for Dawid-Skene and
        one-coin).
    n : int
        How many workers.
    column : str
        The per-worker quantity to rank by (the posterior mean when there are draws).

    Returns
    -------
    list
        Worker ids, least reliable first (ties keep the data's worker order).
    """
    table = _accuracy_table(fit, column)
    return table[column].sort_values(kind="stable").index[:n].tolist()


def _text_color(rgba) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba``."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _matrix(ax, values, classes, low=None, high=None, annotate=True, cmap="Blues"):
    """Draw a probability matrix (rows: true class, columns: answer), legible on every cell."""
    import matplotlib as mpl

    k = values.shape[0]
    cm = mpl.colormaps[cmap]
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap=cm)
    if annotate and k <= 6:
        for r in range(k):
            for c in range(k):
                v = values[r, c]
                text = f"{v:.2f}"
                if low is not None:
                    text += f"\n[{low[r, c]:.2f}, {high[r, c]:.2f}]"
                ax.text(c, r, text, ha="center", va="center", color=_text_color(cm(v)),
                        fontsize=7 if low is None else 5.5)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(classes if k <= 10 else [], fontsize=7, rotation=90 if k > 4 else 0)
    ax.set_yticklabels(classes if k <= 10 else [], fontsize=7)
    ax.set_xlabel("answer")
    return image


def _new_axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def plot_worker_accuracy(
    fit,
    ax=None,
    *,
    reference: pd.Series | None = None,
    reference_label: str = "true",
    column: str = "accuracy",
    sort: bool = True,
) -> Any:
    """Dot plot of each worker's accuracy, sorted, with credible intervals where there are draws.

    Parameters
    ----------
    fit : Fit
        A fitted model with a per-worker ``column`` in :meth:`Fit.workers` (for
        Dawid-Skene ``accuracy = sum_k pi_k confusion[w, k, k]``, the chance that the
        worker's answer is right).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when omitted.
    reference : pandas.Series, optional
        Values to compare with, indexed by worker id (e.g. the true accuracies of a
        simulated crowd); drawn as crosses.
    reference_label : str
        Legend label of ``reference``.
    column : str
        The per-worker quantity to plot.
    sort : bool
        Sort the workers by the fitted value (least reliable at the bottom).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ValueError
        When the model has no per-worker ``column``, or ``reference`` misses workers.
    """
    table = _accuracy_table(fit, column)
    if sort:
        table = table.sort_values(column, kind="stable")
    n = len(table)
    fig, ax = _new_axes(ax, (7.5, min(2.0 + 0.18 * n, 14.0)))
    y = np.arange(n)
    est = table[column].to_numpy(dtype=float)
    low, high = f"{column}_low", f"{column}_high"
    has_interval = low in table.columns and high in table.columns
    if has_interval:
        prob = table.attrs.get("interval")
        label = f"{prob:.0%} interval" if prob else "interval"
        ax.hlines(
            y,
            table[low].to_numpy(float),
            table[high].to_numpy(float),
            color="C0",
            alpha=0.5,
            lw=2 if n <= MAX_LABELLED_WORKERS else 0.6,
            label=label,
        )
    what = "posterior mean" if has_interval else f"{fit.method.upper()} estimate"
    counts = table["n_answers"].to_numpy(float)
    # marker area proportional to the worker's number of answers
    sizes = 6 + 60 * counts / max(counts.max(), 1) if n <= MAX_LABELLED_WORKERS else 4
    ax.scatter(est, y, s=sizes, color="C0", zorder=3,
               label=what + " (area: answers)" if n <= MAX_LABELLED_WORKERS else what)
    if reference is not None:
        ref = pd.Series(reference)
        ref.index = ref.index.map(str)
        ids = table.index.map(str)
        missing = ids.difference(ref.index)
        if len(missing):
            raise ValueError(
                f"reference has no value for {len(missing)} worker(s), e.g. {list(missing[:5])}"
            )
        ax.plot(ref.loc[ids].to_numpy(float), y, "x", color="C3", ms=5, label=reference_label)
    n_classes = fit.annotations.n_classes
    if column == "accuracy":
        ax.axvline(1.0 / n_classes, color="0.5", ls="--", lw=1, label=f"chance (1/{n_classes})")
        ax.set_xlim(0.0, 1.0)
    ax.set_yticks(y)
    if n <= MAX_LABELLED_WORKERS:
        ax.set_yticklabels([f"{w} ({int(c)})" for w, c in zip(table.index, counts, strict=True)],
                           fontsize=7)
        ax.set_ylabel("worker (answers)")
    else:
        ax.set_yticklabels([])
        ax.tick_params(axis="y", length=0)
        ax.set_ylabel(f"{n} workers" + (" (sorted)" if sort else ""))
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(column)
    ax.set_title(f"{fit.model.name}: worker {column} ({fit.method})")
    # inside the axes where the points leave room (outside, it widened every layout)
    ax.legend(loc="best", fontsize=7, framealpha=0.9)
    return fig


def plot_confusion(
    fit,
    workers: Sequence[Any] | None = None,
    *,
    n_worst: int = 3,
    axes=None,
    annotate: bool = True,
) -> Any:
    """Heatmaps of workers' confusion matrices: row = true class, column = the answer given.

    Parameters
    ----------
    fit : Fit
        A fitted model with a ``confusion`` parameter shaped ``(worker, true_class,
        label)`` (Dawid-Skene and its relatives); with draws, the posterior mean is shown.
    workers : sequence of worker ids, optional
        Which workers; default: the ``n_worst`` least accurate (see :func:`worst_workers`).
    n_worst : int
        How many workers when ``workers`` is not given.
    axes : sequence of matplotlib.axes.Axes, optional
        One axes per worker; a new figure (one row of panels) when omitted.
    annotate : bool
        Write the probabilities in the cells (only for up to 6 classes).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ValueError
        When the model has no confusion matrices, a worker id is unknown, or ``axes`` has
        the wrong length.
    """
    if "confusion" not in fit.params:
        raise ValueError(
            f"model {fit.model.name!r} has no per-worker confusion matrices (parameters: "
            f"{', '.join(fit.params) or 'none'})"
        )
    a = fit.annotations
    if workers is None:
        workers = worst_workers(fit, n_worst)
    workers = list(workers)
    if not workers:
        raise ValueError("no workers to plot")
    ids = pd.Index(a.worker_ids).map(str)
    codes = ids.get_indexer([str(w) for w in workers])
    if (codes < 0).any():
        unknown = [w for w, c in zip(workers, codes, strict=True) if c < 0]
        raise ValueError(f"unknown worker id(s) {unknown[:5]}")
    conf = np.asarray(fit.params["confusion"])[codes]
    low = high = None
    if fit.has_draws and "confusion" in fit.samples:
        draws = np.asarray(fit.samples["confusion"])[:, :, codes]
        draws = draws.reshape((-1,) + draws.shape[2:])
        q = (1 - INTERVAL) / 2
        low, high = np.quantile(draws, q, axis=0), np.quantile(draws, 1 - q, axis=0)
    n_answers = np.bincount(a.worker, minlength=a.n_workers)[codes]
    table = fit.workers()
    acc = table["accuracy"].to_numpy(float)[codes] if "accuracy" in table.columns else None
    k = a.n_classes
    classes = [str(c) for c in a.classes]
    if axes is None:
        import matplotlib.pyplot as plt

        side = 1.2 + (0.45 if low is None else 0.75) * k
        fig, axes = plt.subplots(
            1,
            len(workers),
            figsize=(side * len(workers) + 0.8, side + 0.6),
            layout="constrained",
            squeeze=False,
        )
        axes = axes[0]
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(workers):
            raise ValueError(f"got {len(axes)} axes for {len(workers)} workers")
        fig = axes[0].figure
    image = None
    for i, ax in enumerate(axes):
        image = _matrix(ax, conf[i], classes, None if low is None else low[i],
                        None if high is None else high[i], annotate)
        if i == 0:
            ax.set_ylabel("true class")
        title = f"{workers[i]}"
        if acc is not None:
            title += f"\nacc {acc[i]:.2f}, {n_answers[i]} answers"
        ax.set_title(title, fontsize=8)
    if low is not None:
        fig.suptitle(f"posterior mean [{INTERVAL:.0%} interval]", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="P(answer | true class)")
    return fig


def plot_difficulty(fit, ax=None, *, column: str = "difficulty", max_tasks: int = 400) -> Any:
    """Item difficulty per task, sorted, with credible intervals where there are draws.

    For GLAD ``difficulty = 1 / beta`` (Whitehill et al. 2009): the larger, the closer a
    worker's answer to the task is to a coin flip. Tasks are sorted by the estimate; with
    more than ``max_tasks`` tasks an even subsample of the sorted tasks is drawn.

    Parameters
    ----------
    fit : Fit
        A fit of a model with a per-task ``column`` in :meth:`Fit.tasks` (GLAD).
    ax : matplotlib.axes.Axes, optional
    column : str
        The per-task quantity.
    max_tasks : int
        Most tasks drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = fit.tasks()
    if column not in table.columns:
        per_task = [c for c in table.columns if c not in ("label", "probability", "gold",
                                                          "n_answers") and "[" not in c]
        raise ValueError(f"model {fit.model.name!r} has no per-task {column!r}; its per-task "
                         f"quantities are: {', '.join(per_task) or 'none'}")
    table = table.sort_values(column, kind="stable")
    n_all = len(table)
    if n_all > max_tasks:
        table = table.iloc[np.linspace(0, n_all - 1, max_tasks).round().astype(int)]
    fig, ax = _new_axes(ax, (7.0, 3.8))
    x = np.arange(len(table))
    est = table[column].to_numpy(float)
    low, high = f"{column}_low", f"{column}_high"
    if low in table.columns:
        ax.vlines(x, table[low].to_numpy(float), table[high].to_numpy(float), color="C0",
                  alpha=0.35, lw=1, label=f"{INTERVAL:.0%} interval")
    ax.plot(x, est, ".", color="C0", ms=3, label="posterior mean" if low in table.columns
            else f"{fit.method.upper()} estimate")
    ax.set_yscale("log")
    ax.set_xlabel(f"tasks, sorted ({len(table)} of {n_all})" if n_all > max_tasks
                  else f"tasks, sorted ({n_all})")
    ax.set_ylabel(f"{column} (log scale)")
    ax.set_title(f"{fit.model.name}: item {column} ({fit.method})")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_communities(fit, axes=None, *, annotate: bool = True) -> Any:
    """Community confusion matrices (community model), with their sizes and intervals.

    Parameters
    ----------
    fit : Fit
        A fit of :class:`~crowdzoo.models.Community` (draws: posterior means and 89%
        intervals, the communities relabelled to one order across draws).
    axes : sequence of matplotlib.axes.Axes, optional
        One per community.
    annotate : bool
        Write the probabilities in the cells (up to 6 classes).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if "community_confusion" not in fit.params:
        raise ValueError(f"model {fit.model.name!r} has no communities")
    cc = np.asarray(fit.params["community_confusion"])
    prob = np.asarray(fit.params["community_prob"])
    low = high = None
    if fit.has_draws:
        draws = np.asarray(fit.samples["community_confusion"])
        draws = draws.reshape((-1,) + draws.shape[2:])
        q = (1 - INTERVAL) / 2
        low, high = np.quantile(draws, q, axis=0), np.quantile(draws, 1 - q, axis=0)
    classes = [str(c) for c in fit.annotations.classes]
    k, m = len(classes), len(cc)
    if axes is None:
        import matplotlib.pyplot as plt

        side = 1.4 + (0.5 if low is None else 0.8) * k
        fig, axes = plt.subplots(1, m, figsize=(side * m + 0.8, side + 0.7),
                                 layout="constrained", squeeze=False)
        axes = axes[0]
    else:
        axes = list(np.ravel(axes))
        if len(axes) != m:
            raise ValueError(f"got {len(axes)} axes for {m} communities")
        fig = axes[0].figure
    image = None
    for i, ax in enumerate(axes):
        image = _matrix(ax, cc[i], classes, None if low is None else low[i],
                        None if high is None else high[i], annotate)
        ax.set_title(f"community {i} ({prob[i]:.0%} of workers)", fontsize=8)
        if i == 0:
            ax.set_ylabel("true class")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="P(answer | true class)")
    return fig


def plot_rank_worst(fit, n: int = 6):
    """Rank plots (arviz-plots ``plot_rank``) of the ``n`` elements with the largest r_hat.

    Where to look when a NUTS fit has not converged: chains in different modes show as
    rank ECDFs on opposite sides of the diagonal.

    Returns
    -------
    arviz_plots.PlotCollection
        Save it with ``.savefig(path)``; the figure is ``pc.viz["figure"].item()``.
    """
    import arviz as az
    import arviz_plots as azp
    import xarray as xr

    if fit.method != "nuts":
        raise ValueError("rank plots compare chains: they need a NUTS fit "
                         f"(this is {fit.method})")
    post = fit._posterior_dataset()
    rhat = az.rhat(post)
    items = []
    for name in post.data_vars:
        r = np.asarray(rhat[name]).ravel()
        for i in np.argsort(-np.nan_to_num(r, nan=-1.0))[:n]:
            items.append((float(np.nan_to_num(r[i], nan=-1.0)), str(name), int(i)))
    items.sort(reverse=True)
    from .inference.diagnostics import _element_label

    chosen = {}
    for value, name, i in items[:n]:
        var = post[name]
        flat = var.values.reshape(var.shape[:2] + (-1,))[..., i]
        label = _element_label(name, var, i) + (f"\nr_hat {value:.3f}" if value > 0 else "")
        chosen[label] = (("chain", "draw"), flat)
    ds = xr.Dataset(chosen, coords={"chain": post["chain"], "draw": post["draw"]})
    rows = int(np.ceil(len(chosen) / 3))
    return azp.plot_rank(xr.DataTree.from_dict({"posterior": ds}), backend="matplotlib",
                         col_wrap=3, figure_kwargs={"figsize": (10.0, 2.9 * rows),
                                                    "layout": "constrained"})
