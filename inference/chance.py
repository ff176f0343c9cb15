"""Say when a fit reads the crowd as answering against the truth (below chance).

A crowd's answers alone cannot tell "the workers are right" from "the workers are
systematically wrong and the classes are the other way round": relabelling the true classes
and the rows of every confusion matrix together leaves the likelihood unchanged. Every model
of the zoo breaks that tie with its prior, which expects workers to beat chance. So an
all-adversarial crowd (every answer wrong) without gold comes back with flipped labels and
worker accuracies near 0.99, and *no diagnostic computed from the answers can notice*. What
can be noticed:

* gold labels (even a few) fix the labelling: then a fit whose workers mostly sit below
  chance says so -- the crowd answers against the truth (its labels are inverted, or its
  guidelines were misread);
* labels scored on gold that agree with it less often than chance mean the same thing seen
  from the other side: the fit picked the relabelling the prior prefers.

:func:`chance_note` turns both into one line of text (``None`` when there is nothing to say);
the ``crowdzoo fit`` command prints it, and :meth:`Fit.summary` may.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["below_chance", "chance_note"]


def below_chance(fit) -> dict | None:
    """Workers whose accuracy under the fit is below chance (``1 / K``).

    Returns
    -------
    dict or None
        ``n_workers``, ``n_below`` (workers with ``accuracy < 1/K``), ``answer_share`` (the
        share of the answers they gave), ``chance``; None when the model has no per-worker
        ``accuracy``.
    """
    table = fit.workers()
    if "accuracy" not in table.columns or len(table) == 0:
        return None
    k = fit.annotations.n_classes
    chance = 1.0 / k
    acc = table["accuracy"].to_numpy(dtype=float)
    n = table["n_answers"].to_numpy(dtype=float)
    below = acc < chance
    return {"n_workers": int(len(acc)), "n_below": int(below.sum()),
            "answer_share": float(n[below].sum() / max(n.sum(), 1.0)), "chance": chance}


def chance_note(fit, gold: pd.Series | None = None) -> str | None:
    """One line when the fit, or its agreement with gold, is below chance; else None.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    gold : pandas.Series, optional
        Gold labels indexed by task id, used only to score (labels that agree with gold
        less often than chance). Gold the fit was clamped to is not needed here: then the
        worker accuracies themselves show it.

    Returns
    -------
    str or None
    """
    stats = below_chance(fit)
    k = fit.annotations.n_classes
    notes = []
    if stats is not None and stats["answer_share"] > 0.5:
        notes.append(
            f"{stats['n_below']} of {stats['n_workers']} workers ({stats['answer_share']:.0%} of "
            f"the answers) are below chance (accuracy < 1/{k}) under this fit: most of the "
            f"crowd answers against the truth, so trust the labels only if gold fixed them")
    if gold is not None and len(gold):
        acc = fit.accuracy(gold)
        if acc < 1.0 / k:
            notes.append(
                f"the labels agree with the {len(gold)} gold tasks less often than chance "
                f"({acc:.3f} < 1/{k}): the crowd may answer against the truth, which the "
                f"answers alone cannot reveal (the model's prior then reads it as a reliable "
                f"crowd and flips the labels); fit with the gold labels to fix the labelling")
    return "; ".join(notes) or None

