"""The :class:`Annotations` container: crowd answers in long format, integer-coded.

Every model and inference routine of crowdzoo works on integer codes: tasks
``0..T-1``, workers ``0..W-1`` and classes ``0..K-1``.  :class:`Annotations`
holds those codes for every answer (one row per answer, ragged, repeated
``(task, worker)`` answers kept) together with the maps back to the user's own
task ids, worker ids and class names, plus optional gold labels and task
features.  Build one with :meth:`Annotations.from_frame` (long table),
:meth:`Annotations.from_wide` (items x annotators table) or the CSV loaders of
:mod:`crowdzoo.data.loaders`.

Input problems raise :class:`AnnotationsError` (a :class:`ValueError`) whose
message names the offending rows, ids or labels (the first five and the count).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .normalize import encode_values, id_key, key_index, label_key, na_strings

__all__ = ["Annotations", "AnnotationsError"]

_SHOW = 5  # how many offending items an error message lists


class AnnotationsError(ValueError):
    """Invalid crowd-annotation input (bad columns, missing values, unknown ids or labels)."""


# ----------------------------------------------------------------------------- helpers


def _py(value: Any) -> Any:
    """Convert a NumPy scalar to the Python scalar, for readable reprs."""
    return value.item() if isinstance(value, np.generic) else value


def _listing(values: Iterable[Any], noun: str, plural: str | None = None) -> str:
    """Format offending items as ``"3 tasks: 'a', 'b', 'c'"`` (first five shown)."""
    vals = list(values.tolist() if hasattr(values, "tolist") else values)
    n = len(vals)
    word = noun if n == 1 else (plural or noun + "s")
    shown = ", ".join(repr(_py(v)) for v in vals[:_SHOW])
    more = ", ..." if n > _SHOW else ""
    return f"{n} {word}: {shown}{more}"


def _lookup(index: pd.Index, values: Any, key=label_key) -> np.ndarray:
    """Position of each of ``values`` in ``index`` by normalization key (-1 where absent).

    ``key`` is :func:`~crowdzoo.data.normalize.label_key` for classes (``1``, ``"1"`` and
    ``"1.0"`` match the class ``1``) and :func:`~crowdzoo.data.normalize.id_key` for task
    ids (``1`` matches ``"1"``, not ``"01"``); see :mod:`crowdzoo.data.normalize`.
    """
    keys = key_index(index, key)
    wanted = key_index(values, key)
    return np.asarray(keys.get_indexer(wanted), dtype=np.int64)


def _check_keys_unique(name: str, idx: pd.Index, key) -> None:
    """Refuse an index whose entries normalize to the same key (e.g. ``1`` and ``"1"``)."""
    if key is id_key and _ids_are_keys(idx):
        return  # distinct values are distinct keys (and ``_as_index`` checked distinct)
    keys = key_index(idx, key)
    if not keys.is_unique:
        dup = keys[keys.duplicated()].unique()
        same = [[_py(v) for v, k in zip(idx, keys, strict=True) if k == d] for d in dup[:3]]
        shown = "; ".join(" and ".join(repr(v) for v in grp) for grp in same)
        raise AnnotationsError(
            f"{name} must be distinct after normalization (whitespace stripped"
            f"{', numbers by value' if key is label_key else ', compared as strings'}): "
            f"{shown} are the same"
        )


def _ids_are_keys(idx: pd.Index) -> bool:
    """Whether an id index's values are their own keys, checked without Python objects.

    True for integer indexes (distinct integers are distinct strings) and for string-typed
    (e.g. Arrow-backed) indexes whose values are already stripped: the large-data readers
    (:mod:`crowdzoo.data.columnar`) build those, and a 20-million-id index is not turned
    into Python strings to be checked.
    """
    if pd.api.types.is_integer_dtype(idx.dtype) and not isinstance(idx.dtype, pd.CategoricalDtype):
        return True
    if isinstance(idx.dtype, pd.StringDtype):
        return bool((idx.str.strip() == idx).all())
    return False


def _plain(series: pd.Series) -> pd.Series:
    """Replace a categorical series by its plain values (other series unchanged)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.astype(series.cat.categories.dtype)
    return series


def _sorted_order(keys: list) -> np.ndarray:
    """Order of class keys: numerically if every key is a number, else lexically by str()."""
    text = np.array([str(k) for k in keys], dtype=object)
    if keys and all(not isinstance(k, str) for k in keys):
        num = np.array([float(k) for k in keys], dtype=np.float64)
        return np.lexsort((text, num))  # numeric value first, string form breaks ties
    return np.argsort(text, kind="stable")


def _mixed(names: list) -> bool:
    """Whether names mix types (then the Index must stay object, never coerced)."""
    return len({type(_py(v)) for v in names}) > 1


#: set (only) by :func:`_adopting`: take int32 code arrays over instead of copying them
_ADOPT = threading.local()


class _adopting:  # noqa: N801  (a context manager used like a function)
    """Let Annotations built inside take over fresh int32 code arrays instead of copying.

    For the large-data readers, which hold no other reference to them: 12 bytes per answer
    less at the peak.
    """

    def __enter__(self):
        _ADOPT.on = True

    def __exit__(self, *exc):
        _ADOPT.on = False


def _int_codes(name: str, values: Any, ndim: int = 1) -> np.ndarray:
    """Copy ``values`` to a fresh int32 array, refusing non-integer input."""
    arr = np.asarray(values)
    if arr.ndim != ndim:
        raise AnnotationsError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise AnnotationsError(f"{name} must hold integer codes, got dtype {arr.dtype}")
    if (getattr(_ADOPT, "on", False) and isinstance(values, np.ndarray)
            and values.dtype == np.int32 and values.flags.owndata and values.flags.writeable):
        return values
    return np.array(arr, dtype=np.int32, copy=True)


def _as_index(name: str, values: Any) -> pd.Index:
    """Return ``values`` as a (copied) unique :class:`pandas.Index`."""
    idx = values.copy() if isinstance(values, pd.Index) else pd.Index(values)
    if not idx.is_unique:
        dups = idx[idx.duplicated()].unique()
        raise AnnotationsError(f"{name} must be unique; repeated {_listing(dups, 'value')}")
    return idx


def _gold_series(gold: Any, task: str, label: str) -> pd.Series:
    """Turn the accepted gold inputs into a Series of labels indexed by task id."""
    if isinstance(gold, pd.DataFrame):
        tcol = task if task in gold.columns else "task"
        lcol = label if label in gold.columns else "label"
        if lcol not in gold.columns:
            raise AnnotationsError(
                f"gold frame has no label column {label!r}; available columns: {list(gold.columns)}"
            )
        if tcol in gold.columns:
            index = pd.Index(_plain(gold[tcol]), name="task")
        else:  # a frame indexed by task id with a single label column
            index = gold.index.rename("task")
        return pd.Series(_plain(gold[lcol]).to_numpy(), index=index, name="label")
    if isinstance(gold, pd.Series):
        return pd.Series(_plain(gold).to_numpy(), index=gold.index.copy(), name="label")
    if isinstance(gold, Mapping):
        return pd.Series(list(gold.values()), index=pd.Index(list(gold.keys())), name="label")
    raise TypeError(
        "gold must be a pandas Series indexed by task id, a DataFrame with columns "
        f"task,label, or a mapping task -> label; got {type(gold).__name__}"
    )


def _encode_gold(
    gold: Any,
    task_ids: pd.Index,
    classes: pd.Index,
    explicit_classes: bool,
    task: str = "task",
    label: str = "label",
    na_values: Any = None,
) -> np.ndarray:
    """Code gold labels against ``task_ids``/``classes``: int32 (T,), -1 where no gold.

    Task ids and labels are matched by their normalization keys
    (:mod:`crowdzoo.data.normalize`); with ``na_values``, gold labels that are missing (NaN,
    None or one of those strings) mean "no gold for this task" and are dropped.
    """
    g = _gold_series(gold, task, label)
    bad_task = np.asarray(g.index.isna())
    if bad_task.any():
        raise AnnotationsError(
            f"gold has a missing (NaN/None) task id in {_listing(np.flatnonzero(bad_task), 'row')}"
        )
    na = na_strings(na_values)
    bad = np.array(g.isna(), dtype=bool)  # a copy: pandas' own array is read-only
    if na is not None:
        bad |= np.array([isinstance(v, str) and v.strip() in na for v in g.tolist()], dtype=bool)
        g = g[~bad]
    elif bad.any():
        raise AnnotationsError(
            f"gold has NaN/None labels for {_listing(g.index[bad], 'task')}; "
            "drop the tasks without gold (or pass na_values to treat them as no gold)"
        )
    empty = np.array([isinstance(v, str) and not v.strip() for v in g.tolist()], dtype=bool)
    if empty.any():
        raise AnnotationsError(
            f"gold has empty labels for {_listing(g.index[empty], 'task')}; drop those tasks "
            "(or pass na_values=[''] to treat empty labels as no gold)"
        )
    t_keys = key_index(g.index, id_key)
    l_keys = key_index(g.to_numpy(), label_key)
    if not t_keys.is_unique:
        frame = pd.DataFrame({"t": t_keys.to_numpy(), "v": l_keys.to_numpy()})
        n_labels = frame.groupby("t", sort=False)["v"].nunique()
        conflict = n_labels.index[n_labels.to_numpy() > 1]
        if len(conflict):
            raise AnnotationsError(
                f"gold gives different labels to the same task id for {_listing(conflict, 'task')}"
            )
        keep = ~t_keys.duplicated(keep="first")
        g = g[keep]
    t_codes = _lookup(task_ids, g.index, id_key)
    unknown = t_codes < 0
    if unknown.any():
        raise AnnotationsError(
            f"gold given for tasks without any answers: {_listing(g.index[unknown], 'task')}"
        )
    c_codes = _lookup(classes, pd.Index(g.to_numpy(), dtype=object))
    unknown = c_codes < 0
    if unknown.any():
        values = pd.unique(pd.Series(g.to_numpy()[unknown], dtype=object))
        where = _listing(g.index[unknown], "task")
        if explicit_classes:
            raise AnnotationsError(
                f"gold {_listing(values, 'label')} not among the classes "
                f"{classes.tolist()} (in {where})"
            )
        raise AnnotationsError(
            f"gold {_listing(values, 'label')} never given by any worker (in {where}); "
            "declare every class: classes=[...] in Python, --classes on the command line"
        )
    out = np.full(len(task_ids), -1, dtype=np.int32)
    out[t_codes] = c_codes
    return out


def _encode_features(features: Any, task_ids: pd.Index) -> tuple[np.ndarray, tuple[str, ...]]:
    """Align a features frame (indexed by task id) to ``task_ids``: float64 (T, D)."""
    if not isinstance(features, pd.DataFrame):
        raise TypeError(
            f"features must be a pandas DataFrame indexed by task id, got {type(features).__name__}"
        )
    if features.shape[1] == 0:
        raise AnnotationsError("features frame has no columns")
    index_keys = key_index(features.index, id_key)
    if not index_keys.is_unique:
        dups = features.index[index_keys.duplicated()].unique()
        raise AnnotationsError(f"features index has duplicate entries for {_listing(dups, 'task')}")
    non_numeric = [c for c, dt in features.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
    if non_numeric:
        raise AnnotationsError(
            f"features have non-numeric {_listing(non_numeric, 'column')} "
            "(convert them to numbers or drop them)"
        )
    pos = _lookup(features.index, task_ids, id_key)
    missing = pos < 0
    if missing.any():
        raise AnnotationsError(f"features have no row for {_listing(task_ids[missing], 'task')}")
    x = features.iloc[pos].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    finite = np.isfinite(x)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        cols = np.flatnonzero(~finite.all(axis=0))
        raise AnnotationsError(
            f"features have NaN/inf values in {_listing(task_ids[rows], 'task')} "
            f"and {_listing(features.columns[cols], 'column')}"
        )
    return x, tuple(str(c) for c in features.columns)


def _fmt_num(x: float) -> str:
    """Format a count statistic: integers without decimals, others with two."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.2f}"


# ----------------------------------------------------------------------------- container


@dataclass(frozen=True, eq=False)
class Annotations:
    """Crowd answers in long format, integer-coded, with the maps back to the user's ids.

    One row per answer: ``task[n]`` was answered by ``worker[n]`` with class
    ``label[n]``.  Rows are ragged (any number of answers per task) and repeated
    ``(task, worker)`` answers are kept.  All arrays are read-only copies;
    construction validates shapes and code ranges, so building one directly is
    as safe as using :meth:`from_frame`.

    Parameters
    ----------
    task, worker, label : numpy.ndarray
        int32 arrays of shape ``(N,)`` with codes in ``0..T-1``, ``0..W-1`` and
        ``0..K-1``.
    task_ids : pandas.Index
        The user's task ids (length T); code ``t`` is ``task_ids[t]``.  Built by
        :meth:`from_frame` in order of first appearance in the answers.
    worker_ids : pandas.Index
        The user's worker ids (length W), order of first appearance.
    classes : pandas.Index
        Class names (length K >= 2); code ``k`` is ``classes[k]``.
    gold : numpy.ndarray or None
        int32 ``(T,)``: class code of the true label, ``-1`` where unknown.
    features : numpy.ndarray or None
        float64 ``(T, D)`` finite task covariates, row ``t`` for ``task_ids[t]``.
    feature_names : tuple of str or None
        Names of the D feature columns (defaults to ``"0".."D-1"``).
    n_dropped : int
        Answer rows dropped because their label was missing (``na_values``); reported by
        :meth:`summary`.

    Notes
    -----
    Ids and class names are normalized (:mod:`crowdzoo.data.normalize`): surrounding
    whitespace is stripped, labels that are the same number (``"1"``, ``1``, ``1.0``) are one
    class, ids are compared as strings (``1`` and ``"1"`` are one task). Two task ids, worker
    ids or classes that normalize alike are refused here.

    Examples
    --------
    >>> import pandas as pd
    >>> from crowdzoo.data import Annotations
    >>> df = pd.DataFrame({"task": ["a", "a", "b", "b", "c"],
    ...                    "worker": ["w1", "w2", "w1", "w2", "w2"],
    ...                    "label": ["yes", "no", "no", "no", "yes"]})
    >>> ann = Annotations.from_frame(df, gold=pd.Series({"a": "yes", "c": "yes"}))
    >>> ann
    Annotations(tasks=3, workers=2, answers=5, classes=['no', 'yes'], gold=2, features=None)
    >>> ann.task.tolist(), ann.worker.tolist(), ann.label.tolist()
    ([0, 0, 1, 1, 2], [0, 1, 0, 1, 1], [1, 0, 0, 0, 1])
    >>> ann.gold.tolist()
    [1, -1, 1]
    >>> ann.gold_series().to_dict()
    {'a': 'yes', 'c': 'yes'}
    """

    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    task_ids: pd.Index
    worker_ids: pd.Index
    classes: pd.Index
    gold: np.ndarray | None = None
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    n_dropped: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        task = _int_codes("task", self.task)
        worker = _int_codes("worker", self.worker)
        label = _int_codes("label", self.label)
        n = task.shape[0]
        if worker.shape[0] != n or label.shape[0] != n:
            raise AnnotationsError(
                f"task, worker and label must have the same length, got "
                f"{n}, {worker.shape[0]} and {label.shape[0]}"
            )
        if n == 0:
            raise AnnotationsError("no answers: task, worker and label are empty")
        task_ids = _as_index("task_ids", self.task_ids)
        worker_ids = _as_index("worker_ids", self.worker_ids)
        classes = _as_index("classes", self.classes)
        _check_keys_unique("task_ids", task_ids, id_key)
        _check_keys_unique("worker_ids", worker_ids, id_key)
        _check_keys_unique("classes", classes, label_key)
        if len(classes) < 2:
            raise AnnotationsError(
                f"classes {classes.tolist()}: at least two classes are needed to aggregate"
            )
        for name, codes, size in (
            ("task", task, len(task_ids)),
            ("worker", worker, len(worker_ids)),
            ("label", label, len(classes)),
        ):
            bad = (codes < 0) | (codes >= size)
            if bad.any():
                raise AnnotationsError(
                    f"{name} codes must lie in [0, {size}); out of range at "
                    f"{_listing(np.flatnonzero(bad), 'row')}"
                )
        gold = None
        if self.gold is not None:
            gold = _int_codes("gold", self.gold)
            if gold.shape[0] != len(task_ids):
                raise AnnotationsError(
                    f"gold must have one entry per task ({len(task_ids)}), got {gold.shape[0]}"
                )
            bad = (gold < -1) | (gold >= len(classes))
            if bad.any():
                raise AnnotationsError(
                    f"gold codes must lie in [-1, {len(classes)}); out of range for "
                    f"{_listing(task_ids[bad], 'task')}"
                )
        features, names = None, None
        if self.features is not None:
            features = np.array(self.features, dtype=np.float64, copy=True)
            if features.ndim != 2 or features.shape[0] != len(task_ids):
                raise AnnotationsError(
                    f"features must have shape (n_tasks={len(task_ids)}, D), got {features.shape}"
                )
            finite = np.isfinite(features)
            if not finite.all():
                rows = np.flatnonzero(~finite.all(axis=1))
                raise AnnotationsError(
                    f"features have NaN/inf values for {_listing(task_ids[rows], 'task')}"
                )
            d = features.shape[1]
            names = (
                tuple(str(j) for j in range(d))
                if self.feature_names is None
                else tuple(str(s) for s in self.feature_names)
            )
            if len(names) != d:
                raise AnnotationsError(
                    f"feature_names has {len(names)} names for {d} feature columns"
                )
            features.setflags(write=False)
        elif self.feature_names is not None:
            raise AnnotationsError("feature_names given without features")
        for arr in (task, worker, label, gold):
            if arr is not None:
                arr.setflags(write=False)
        set_(self, "task", task)
        set_(self, "worker", worker)
        set_(self, "label", label)
        set_(self, "task_ids", task_ids)
        set_(self, "worker_ids", worker_ids)
        set_(self, "classes", classes)
        set_(self, "gold", gold)
        set_(self, "features", features)
        set_(self, "feature_names", names)
        n_dropped = int(self.n_dropped)
        if n_dropped < 0:
            raise AnnotationsError(f"n_dropped must be >= 0, got {n_dropped}")
        set_(self, "n_dropped", n_dropped)

    # ------------------------------------------------------------------ sizes

    @property
    def n_tasks(self) -> int:
        """Number of tasks T."""
        return len(self.task_ids)

    @property
    def n_workers(self) -> int:
        """Number of workers W."""
        return len(self.worker_ids)

    @property
    def n_classes(self) -> int:
        """Number of classes K."""
        return len(self.classes)

    @property
    def n_answers(self) -> int:
        """Number of answer rows N (repeated answers included)."""
        return int(self.task.shape[0])

    @property
    def has_gold(self) -> bool:
        """Whether at least one task has a gold label."""
        return self.gold is not None and bool((self.gold >= 0).any())

    @property
    def has_features(self) -> bool:
        """Whether task features are attached."""
        return self.features is not None

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        gold: pd.Series | pd.DataFrame | Mapping[Any, Any] | None = None,
        features: pd.DataFrame | None = None,
        task: str = "task",
        worker: str = "worker",
        label: str = "label",
        classes: Sequence[Any] | pd.Index | None = None,
        na_values: bool | str | Sequence[str] | None = None,
    ) -> Annotations:
        """Build from a long frame with one row per answer.

        Parameters
        ----------
        df : pandas.DataFrame
            Answers, one row per (task, worker, label); other columns are ignored.
        gold : pandas.Series or pandas.DataFrame or Mapping, optional
            True labels: a Series indexed by task id, a DataFrame with columns
            ``task`` and ``label`` (named like the ``task``/``label`` arguments, or
            literally ``"task"``/``"label"``; a frame without the task column is
            read by its index), or a mapping task id -> label.  Any subset of the
            answered tasks; repeated task ids must agree.
        features : pandas.DataFrame, optional
            Numeric task covariates indexed by task id, one row per answered task
            (rows of other tasks are dropped).  Converted to float64.
        task, worker, label : str
            Column names in ``df``.
        classes : sequence, optional
            The full class list in a fixed order (may contain classes nobody
            answered).  By default the sorted unique answer labels: sorted
            numerically when every label is a number (``"-2" < "0" < "10"``),
            otherwise lexically by ``str()``.  Either way the class names keep the
            user's spelling (strings stay strings, ints stay ints) when a class is
            spelled one way.
        na_values : None, True, str or list of str
            Missing-answer handling.  ``None`` (default): labels are values, whatever
            they say (``"N/A"``, ``"NA"``, ``"None"``, ``"null"`` are classes like any
            other), and NaN/None labels are errors.  ``True`` (pandas' default NA strings)
            or a list of strings: labels that are NaN/None or, after stripping, one of
            those strings are "no answer": the rows are dropped (counted in
            :attr:`n_dropped` and the summary), and such gold labels mean "no gold".
            Task and worker ids are never missing values.

        Returns
        -------
        Annotations
            Task and worker codes follow the order of first appearance in ``df``.

        Raises
        ------
        AnnotationsError
            Missing columns, no rows, NaN/None ids or labels, a label outside the
            explicit ``classes``, fewer than two classes, bad gold (NaN, unknown
            task, unknown class, conflicting repeats) or bad features (missing
            task rows, non-numeric columns, NaN/inf, duplicate index entries).
            The message names the offending rows, ids or labels.

        Notes
        -----
        Ids and labels are normalized once, here (:mod:`crowdzoo.data.normalize`):
        surrounding whitespace is stripped; labels that are the same number (``"1"``,
        ``1``, ``1.0``, ``"1.0"``) are one class, in the answers, the gold and the
        explicit ``classes`` alike; task and worker ids are compared as strings (``1``
        and ``"1"`` are one task, ``"01"`` is another).  Nothing passed in is modified.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        cols = [task, worker, label]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise AnnotationsError(
                f"missing column(s) {missing} in the answers frame; "
                f"available columns: {list(df.columns)}"
            )
        repeated = [c for c in dict.fromkeys(cols) if int((df.columns == c).sum()) > 1]
        if repeated:
            raise AnnotationsError(f"column(s) {repeated} appear more than once in the frame")
        if len(df) == 0:
            raise AnnotationsError("the answers frame is empty (no rows)")
        series = {c: _plain(df[c]) for c in cols}
        na = na_strings(na_values)
        keep = np.ones(len(df), dtype=bool)
        if na is not None:  # labels that mean "no answer": drop those rows
            lab = series[label]
            keep = ~(np.asarray(lab.isna()) | np.array(
                [isinstance(v, str) and v.strip() in na for v in lab.tolist()], dtype=bool))
            if not keep.any():
                raise AnnotationsError(
                    f"every label is missing (na_values: {sorted(na)!r}): no answers left")
        for c in cols:
            isna = np.asarray(series[c].isna()) & keep
            if isna.any():
                hint = (" (drop those rows, or pass na_values to treat missing labels as no "
                        "answer)" if c == label else " (every answer needs a task and a worker)")
                raise AnnotationsError(
                    f"column {c!r} has NaN/None values{hint} at {_listing(df.index[isna], 'row')}"
                )
        index = df.index
        if not keep.all():
            series = {c: v[keep] for c, v in series.items()}
            index = index[keep]
        encoded = {c: encode_values(series[c], label_key if c == label else id_key)
                   for c in cols}
        for c in cols:
            enc = encoded[c]
            if "" in enc.keys:  # an empty or all-whitespace string
                rows = index[enc.codes == enc.keys.index("")]
                hint = (" (pass na_values=[''] to treat empty labels as no answer)"
                        if c == label else "")
                raise AnnotationsError(
                    f"column {c!r} has empty values at {_listing(rows, 'row')}{hint}")
        tasks, workers, labels = encoded[task], encoded[worker], encoded[label]
        task_ids = pd.Index(tasks.names, dtype=object if _mixed(tasks.names) else None)
        worker_ids = pd.Index(workers.names, dtype=object if _mixed(workers.names) else None)
        l_codes = labels.codes
        l_uniques = pd.Index(labels.names, dtype=object if _mixed(labels.names) else None)

        explicit = classes is not None
        if explicit:
            class_idx = _as_index("classes", classes)
            _check_keys_unique("classes", class_idx, label_key)
            if len(class_idx) < 2:
                raise AnnotationsError(
                    f"explicit classes {class_idx.tolist()}: at least two classes are "
                    "needed to aggregate"
                )
            remap = _lookup(class_idx, l_uniques)
            unknown = np.flatnonzero(remap < 0)
            if unknown.size:
                rows = index[np.isin(l_codes, unknown)]
                raise AnnotationsError(
                    f"{_listing(l_uniques[unknown], 'label')} not among the classes "
                    f"{class_idx.tolist()} (at {_listing(rows, 'row')})"
                )
        else:
            order = _sorted_order(labels.keys)
            class_idx = l_uniques.take(order)
            if len(class_idx) < 2:
                raise AnnotationsError(
                    f"a single class {_py(class_idx[0])!r}: at least two classes are needed "
                    "to aggregate (declare the others: classes=[...] in Python, --classes on "
                    "the command line)"
                )
            remap = np.empty(len(order), dtype=np.int64)
            remap[order] = np.arange(len(order))

        codes_gold = None
        if gold is not None:
            codes_gold = _encode_gold(gold, task_ids, class_idx, explicit, task, label, na_values)
        x, names = (None, None)
        if features is not None:
            x, names = _encode_features(features, task_ids)
        return cls(
            task=tasks.codes,
            worker=workers.codes,
            label=remap[l_codes],
            task_ids=task_ids,
            worker_ids=worker_ids,
            classes=class_idx,
            gold=codes_gold,
            features=x,
            feature_names=names,
            n_dropped=int((~keep).sum()),
        )

    @classmethod
    def from_wide(
        cls,
        wide: pd.DataFrame,
        gold: pd.Series | pd.DataFrame | Mapping[Any, Any] | None = None,
        features: pd.DataFrame | None = None,
        classes: Sequence[Any] | pd.Index | None = None,
    ) -> Annotations:
        """Build from an items x annotators table.

        Parameters
        ----------
        wide : pandas.DataFrame
            Index = task ids, columns = worker ids, cell = that worker's label for
            that task, NaN/None = no answer.
        gold, features, classes
            As in :meth:`from_frame`.

        Returns
        -------
        Annotations
            Answers in row-major order (task by task, workers left to right).
            Since NaN forces float columns, labels that are all whole-valued
            floats are turned into ints (``1.0`` -> ``1``).

        Raises
        ------
        AnnotationsError
            As in :meth:`from_frame`; an all-empty table is an error.  Label
            errors name the offending ``(task, worker)`` cells.
        """
        if not isinstance(wide, pd.DataFrame):
            raise TypeError(f"wide must be a pandas DataFrame, got {type(wide).__name__}")
        mask = ~wide.isna().to_numpy()
        rows, cols = np.nonzero(mask)  # row-major order
        values = wide.to_numpy(dtype=object)[rows, cols]
        labels = pd.Series(values, dtype=object).infer_objects()
        if pd.api.types.is_float_dtype(labels.dtype) and len(labels):
            arr = labels.to_numpy(dtype=np.float64)
            if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                labels = pd.Series(arr.astype(np.int64))
        task_ids = wide.index.take(rows)
        worker_ids = wide.columns.take(cols)
        long = pd.DataFrame(
            {"task": task_ids, "worker": worker_ids, "label": labels.array},
            index=pd.MultiIndex.from_arrays([task_ids, worker_ids], names=["task", "worker"]),
        )
        return cls.from_frame(long, gold=gold, features=features, classes=classes)

    def with_gold(self, gold: pd.Series | pd.DataFrame | Mapping[Any, Any] | None) -> Annotations:
        """Return a copy with (new) gold labels.

        Parameters
        ----------
        gold : pandas.Series or pandas.DataFrame or Mapping or None
            As in :meth:`from_frame`; labels must be among :attr:`classes`.
            ``None`` removes the gold labels.

        Returns
        -------
        Annotations
            Same answers, classes and features, new gold.
        """
        codes = None if gold is None else _encode_gold(gold, self.task_ids, self.classes, True)
        return dataclasses.replace(self, gold=codes)

    # ------------------------------------------------------------------ views

    def gold_series(self) -> pd.Series:
        """Gold labels as class names.

        Returns
        -------
        pandas.Series
            Indexed by task id (index name ``"task"``), only tasks with gold, named
            ``"label"``; empty when there is no gold.
        """
        gold = np.full(self.n_tasks, -1) if self.gold is None else self.gold
        mask = gold >= 0
        index = self.task_ids[mask].rename("task")
        return pd.Series(self.classes.take(gold[mask]), index=index, name="label")

    def to_frame(self) -> pd.DataFrame:
        """Answers as a long frame in the user's ids and class names.

        Returns
        -------
        pandas.DataFrame
            Columns ``task``, ``worker``, ``label``; one row per answer, in order.
        """
        return pd.DataFrame(
            {
                "task": self.task_ids.take(self.task),
                "worker": self.worker_ids.take(self.worker),
                "label": self.classes.take(self.label),
            }
        )

    def features_frame(self) -> pd.DataFrame | None:
        """Task features as a frame.

        Returns
        -------
        pandas.DataFrame or None
            Indexed by task id (index name ``"task"``), columns
            :attr:`feature_names`; ``None`` when there are no features.
        """
        if self.features is None:
            return None
        return pd.DataFrame(
            self.features,
            index=self.task_ids.rename("task"),
            columns=list(self.feature_names or ()),
            copy=True,
        )

    def summary(self) -> str:
        """Describe the data set in a few lines.

        Returns
        -------
        str
            Counts of tasks, workers, answers and answers per class; answers per
            task (min/median/mean/max) and per worker (min/median/max); repeated
            ``(task, worker)`` pairs, their extra rows and how many conflict;
            gold coverage; feature dimension.  ``print(ann.summary())`` shows it.
        """
        t, w, k = self.n_tasks, self.n_workers, self.n_classes
        task = self.task.astype(np.int64)
        per_class = np.bincount(self.label, minlength=k)
        per_task = np.bincount(self.task, minlength=t)
        per_worker = np.bincount(self.worker, minlength=w)
        pair = task * w + self.worker
        _, pair_counts = np.unique(pair, return_counts=True)
        repeated = int((pair_counts > 1).sum())
        extra = int((pair_counts - 1).sum())
        triples = np.unique(pair * k + self.label)
        _, labels_per_pair = np.unique(triples // k, return_counts=True)
        conflicting = int((labels_per_pair > 1).sum())
        counts = " | ".join(
            f"{c} = {n:,}" for c, n in zip(self.classes.tolist(), per_class.tolist(), strict=True)
        )
        lines = [
            "Annotations summary",
            f"  tasks:    {t:,}",
            f"  workers:  {w:,}",
            f"  answers:  {self.n_answers:,}" + (
                f" ({self.n_dropped:,} rows without a label dropped: na_values)"
                if self.n_dropped else ""),
            f"  classes:  {k} (answers per class: {counts})",
            f"  answers per task:   min {_fmt_num(per_task.min())}"
            f" / median {_fmt_num(np.median(per_task))}"
            f" / mean {per_task.mean():.2f} / max {_fmt_num(per_task.max())}",
            f"  answers per worker: min {_fmt_num(per_worker.min())}"
            f" / median {_fmt_num(np.median(per_worker))} / max {_fmt_num(per_worker.max())}",
        ]
        if repeated:
            lines.append(
                f"  duplicates: {repeated:,} repeated (task, worker) pairs "
                f"({extra:,} extra rows), {conflicting:,} with conflicting labels"
            )
        else:
            lines.append("  duplicates: no repeated (task, worker) pairs")
        if self.gold is None:
            lines.append("  gold:     none")
        else:
            n_gold = int((self.gold >= 0).sum())
            lines.append(f"  gold:     {n_gold:,} of {t:,} tasks ({n_gold / t:.1%})")
        if self.features is None:
            lines.append("  features: none")
        else:
            lines.append(f"  features: D = {self.features.shape[1]:,}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        names = self.classes.tolist()
        if len(names) > 10:
            shown = ", ".join(repr(c) for c in names[:10]) + f", ... ({len(names)} total)"
        else:
            shown = ", ".join(repr(c) for c in names)
        gold = None if self.gold is None else int((self.gold >= 0).sum())
        feats = None if self.features is None else int(self.features.shape[1])
        return (
            f"Annotations(tasks={self.n_tasks}, workers={self.n_workers}, "
            f"answers={self.n_answers}, classes=[{shown}], gold={gold}, features={feats})"
        )
