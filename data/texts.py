r"""Task texts as word counts: the input of ``biased_worker_words`` (MBML ch. 7.5).

A dataset's ``texts.csv`` has a ``task`` column and one or more text columns (``text``; RTE
also has ``hypothesis``, joined to the text, and ``subtask``, a category that is not read).
:func:`read_texts` reads it as one string per task; :func:`word_count_frame` turns strings
into a ``task x word`` count frame; :func:`with_words` attaches the counts to crowd answers
as their task features (the representation ``biased_worker_words`` reads).

Choices (stated, simple on purpose):

* tokens are maximal runs of letters and digits (``\w+`` on the lower-cased text, so
  ``"don't"`` gives ``don`` and ``t``); no stemming, no stop-word list (naive Bayes learns
  which words carry no label information; sentiment words like ``not`` would be on one);
* the vocabulary is the words found in at least ``min_tasks`` tasks (default 3), the
  ``max_words`` most widespread kept (default 2000; ties by the word), so a dense float
  ``(T, V)`` matrix stays small: 4,999 tasks x 2,000 words is 80 MB in float64;
* a task without a text row is an error that names it (an empty text is zero words).

Task ids are matched as in :class:`~crowdzoo.data.Annotations` (as strings, whitespace
stripped); nothing is derived from them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter

import numpy as np
import pandas as pd

from .annotations import Annotations, AnnotationsError, _listing, _lookup
from .normalize import id_key

__all__ = ["read_texts", "tokenize", "word_count_frame", "with_words"]

_TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: ``"It's GOOD!" -> ["it", "s", "good"]``."""
    return _TOKEN.findall(str(text).lower())


def read_texts(path: str | os.PathLike, columns=None, task: str = "task") -> pd.Series:
    """Read a ``texts.csv``: one string per task, indexed by task id (strings).

    Parameters
    ----------
    path : path
        CSV with a task column and text columns.
    columns : list of str, optional
        Text columns to join (with a space), in order. Default: ``text``, then
        ``hypothesis`` where present (RTE's text and hypothesis).
    task : str
        Task id column.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if task not in df.columns:
        raise AnnotationsError(f"texts file {str(path)!r} has no task column {task!r}; "
                               f"columns: {list(df.columns)}")
    if columns is None:
        columns = [c for c in ("text", "hypothesis") if c in df.columns]
        if not columns:
            raise AnnotationsError(f"texts file {str(path)!r} has no 'text' column (it has "
                                   f"{list(df.columns)}): rename the text column to 'text', "
                                   f"or from Python pass read_texts(..., columns=[...])")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AnnotationsError(f"texts file {str(path)!r} has no column(s) {missing}")
    ids = df[task].str.strip()
    if (ids == "").any():
        rows = np.flatnonzero((ids == "").to_numpy())[:5] + 2  # file line numbers
        raise AnnotationsError(f"texts file {str(path)!r} has empty task ids at lines "
                               f"{rows.tolist()}")
    text = df[columns[0]].copy()
    for c in columns[1:]:
        text = text + " " + df[c]
    out = pd.Series(text.to_numpy(), index=pd.Index(ids, name="task"), name="text")
    dups = out.index[out.index.duplicated()].unique()
    if len(dups):
        raise AnnotationsError(f"texts file {str(path)!r} has several rows for "
                               f"{_listing(dups, 'task')}")
    return out


def word_count_frame(texts: pd.Series, min_tasks: int = 3,
                     max_words: int | None = 2000) -> pd.DataFrame:
    """Word counts ``(T, V)`` of the texts (float64; columns = the vocabulary).

    Parameters
    ----------
    texts : pandas.Series
        One string per task, indexed by task id.
    min_tasks : int
        A word enters the vocabulary when it occurs in at least this many texts.
    max_words : int or None
        Keep the ``max_words`` words found in the most texts (ties broken by the word).
    """
    if int(min_tasks) < 1:
        raise ValueError(f"min_tasks must be >= 1, got {min_tasks}")
    tokens = [tokenize(t) for t in texts.to_numpy()]
    spread = Counter(w for toks in tokens for w in set(toks))
    vocab = sorted((w for w, n in spread.items() if n >= min_tasks),
                   key=lambda w: (-spread[w], w))
    if max_words is not None:
        vocab = vocab[:int(max_words)]
    col = {w: j for j, w in enumerate(vocab)}
    counts = np.zeros((len(tokens), len(vocab)), np.float64)
    for i, toks in enumerate(tokens):
        for w in toks:
            j = col.get(w)
            if j is not None:
                counts[i, j] += 1.0
    return pd.DataFrame(counts, index=texts.index.copy(), columns=pd.Index(vocab, name="word"))


def with_words(annotations: Annotations, texts, min_tasks: int = 3,
               max_words: int | None = 2000) -> Annotations:
    """Return a copy of ``annotations`` whose task features are the word counts of the texts.

    Parameters
    ----------
    annotations : Annotations
        The crowd's answers (its features, if any, are replaced).
    texts : pandas.Series or path
        One string per task indexed by task id, or a ``texts.csv`` (:func:`read_texts`).
        Texts of tasks without answers are ignored (the vocabulary is built from the crowd's
        tasks only).
    min_tasks, max_words
        The vocabulary (:func:`word_count_frame`).

    Raises
    ------
    AnnotationsError
        A task of the answers has no text (the message names the tasks).
    """
    if not isinstance(texts, pd.Series):
        texts = read_texts(texts)
    pos = _lookup(texts.index, annotations.task_ids, id_key)
    missing = pos < 0
    if missing.any():
        raise AnnotationsError(
            f"texts have no row for {_listing(annotations.task_ids[missing], 'task')} "
            f"({int(missing.sum())} of {annotations.n_tasks} tasks); give every task a text "
            f"(an empty string is zero words)")
    aligned = pd.Series(texts.to_numpy()[pos], index=annotations.task_ids)
    frame = word_count_frame(aligned.fillna(""), min_tasks=min_tasks, max_words=max_words)
    if frame.shape[1] == 0:
        raise AnnotationsError(f"no word occurs in {min_tasks} or more texts: the vocabulary "
                               f"is empty (with_words(..., min_tasks=) sets the threshold)")
    x = frame.to_numpy(copy=True)
    x.setflags(write=False)
    return dataclasses.replace(annotations, features=x,
                               feature_names=tuple(str(c) for c in frame.columns))
