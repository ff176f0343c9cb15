"""Plots of a fitted crowd model: worker reliability and confusion matrices.

Every function takes a :class:`~crowdzoo.Fit` and returns a matplotlib
:class:`~matplotlib.figure.Figure` (drawn on the given axes when there are some). They add
no logic of their own: the numbers come from :meth:`Fit.workers` and ``Fit.params``.
Posterior diagnostics (trace, forest, rank plots) are ArviZ's business: pass
``fit.to_arviz()`` to ``arviz.plot_forest`` or ``arviz.plot_trace_dist``.

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

__all__ = ["plot_confusion", "plot_worker_accuracy", "worst_workers"]

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
    fig, ax = _new_axes(ax, (6.0, min(2.0 + 0.18 * n, 14.0)))
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
    ax.plot(est, y, "o", color="C0", ms=4 if n <= MAX_LABELLED_WORKERS else 2, label=what)
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
        ax.set_yticklabels([str(w) for w in table.index], fontsize=7)
        ax.set_ylabel("worker")
    else:
        ax.set_yticklabels([])
        ax.tick_params(axis="y", length=0)
        ax.set_ylabel(f"{n} workers" + (" (sorted)" if sort else ""))
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(column)
    ax.set_title(f"{fit.model.name}: worker {column} ({fit.method})")
    ax.legend(loc="lower right", fontsize=7)
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
    n_answers = np.bincount(a.worker, minlength=a.n_workers)[codes]
    table = fit.workers()
    acc = table["accuracy"].to_numpy(float)[codes] if "accuracy" in table.columns else None
    k = a.n_classes
    classes = [str(c) for c in a.classes]
    if axes is None:
        import matplotlib.pyplot as plt

        side = 1.2 + 0.45 * k
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
        image = ax.imshow(conf[i], vmin=0.0, vmax=1.0, cmap="Blues")
        if annotate and k <= 6:
            for r in range(k):
                for c in range(k):
                    v = conf[i, r, c]
                    ax.text(
                        c,
                        r,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if v > 0.6 else "black",
                    )
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(classes if k <= 10 else [], fontsize=7, rotation=90 if k > 4 else 0)
        ax.set_yticklabels(classes if k <= 10 else [], fontsize=7)
        ax.set_xlabel("answer")
        if i == 0:
            ax.set_ylabel("true class")
        title = f"{workers[i]}"
        if acc is not None:
            title += f"\nacc {acc[i]:.2f}, {n_answers[i]} answers"
        ax.set_title(title, fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="P(answer | true class)")
    return fig
