"""Read crowd answers from CSV files and from the shared dataset folders.

A dataset folder ``<data_dir>/<name>/`` holds

* ``answers.csv`` -- columns ``task,worker,label``, one row per answer;
* ``gold.csv`` (optional) -- columns ``task,label``;
* ``features.csv`` (optional) -- column ``task`` plus D numeric columns;
* ``meta.json`` (optional) -- ``"classes"``: the full class list in a fixed order;
* ``test_features.csv``/``test_gold.csv``, ``valid_*`` (optional) -- held-out
  splits with features and gold but no crowd answers (see :func:`load_split`).

Ids and labels of answers and gold are read as strings, so ids such as
``"0001"`` keep their leading zeros, and nothing is read as missing: ``"N/A"``, ``"NA"``,
``"None"``, ``"null"`` or an empty cell are values (pandas' default NA strings are off)
unless ``na_values`` asks otherwise; they are then normalized as described in
:mod:`crowdzoo.data.normalize`. Feature columns are read as float64 (there an empty cell or
``"NA"`` is a missing number, and an error).

The data directory is, in order: the ``data_dir`` argument, the environment
variable ``CROWDZOO_DATA_DIR``, ``../shared/data`` relative to the working
directory, and ``shared/data`` next to the folder holding the crowdzoo sources.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .annotations import Annotations, AnnotationsError
from .normalize import DEFAULT_NA_VALUES

__all__ = [
    "DEFAULT_DATA_DIR_ENV",
    "read_csv",
    "load_dataset",
    "load_split",
    "list_datasets",
]

DEFAULT_DATA_DIR_ENV = "CROWDZOO_DATA_DIR"

#: pandas' default NA strings: missing numbers in a features file
_PANDAS_NA = DEFAULT_NA_VALUES

PathLike = str | os.PathLike[str]


def _read_features(path: PathLike, task: str = "task") -> pd.DataFrame:
    """Read a features CSV: string task ids as index, other columns as float64."""
    header = pd.read_csv(path, nrows=0).columns
    tcol = task if task in header else "task"
    if tcol not in header:
        raise AnnotationsError(
            f"features file {str(path)!r} has no task column {task!r}; "
            f"available columns: {list(header)}"
        )
    # the task column is ids (never missing values); the other columns are numbers, where
    # pandas' NA strings are missing numbers (and an error later)
    frame = pd.read_csv(path, dtype={tcol: str}, keep_default_na=False,
                        na_values={c: list(_PANDAS_NA) for c in header if c != tcol})
    if frame[tcol].isna().any():
        rows = frame.index[frame[tcol].isna().to_numpy()]
        raise AnnotationsError(
            f"features file {str(path)!r} has missing task ids at rows {rows.tolist()[:5]}"
        )
    frame = frame.set_index(tcol)
    frame.index.name = "task"
    bad = [c for c, dt in frame.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise AnnotationsError(
            f"features file {str(path)!r} has {len(bad)} non-numeric column(s): {shown}"
        )
    return frame.astype(np.float64)


def _read_gold(path: PathLike) -> pd.DataFrame:
    """Read a gold CSV with every column as strings (no value is read as missing)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def read_csv(
    path: PathLike,
    gold: PathLike | pd.Series | pd.DataFrame | Mapping[Any, Any] | None = None,
    features: PathLike | pd.DataFrame | None = None,
    task: str = "task",
    worker: str = "worker",
    label: str = "label",
    classes: Sequence[Any] | pd.Index | None = None,
    na_values: bool | str | Sequence[str] | None = None,
    **read_csv_kwargs: Any,
) -> Annotations:
    """Read answers from a long CSV file (one row per answer).

    Parameters
    ----------
    path : str or os.PathLike
        CSV file with (at least) the ``task``, ``worker`` and ``label`` columns.
        Every column is read as strings.
    gold : path or pandas.Series or pandas.DataFrame or Mapping, optional
        Gold labels: a CSV file with columns named like the ``task`` and
        ``label`` arguments (or literally ``task``/``label``), read as strings,
        or any gold object accepted by :meth:`Annotations.from_frame`.
    features : path or pandas.DataFrame, optional
        Task features: a CSV file with a task column (named like ``task``, or
        ``task``) and numeric columns read as float64, or a DataFrame indexed by
        task id.
    task, worker, label : str
        Column names in the answers file.
    classes : sequence, optional
        Full class list in a fixed order (see :meth:`Annotations.from_frame`).
    na_values : None, True, str or list of str
        Labels that mean "no answer" (see :meth:`Annotations.from_frame`); the answers
        and gold files are read with no NA strings at all, so by default ``"N/A"``,
        ``"NA"``, ``"None"`` and empty cells are plain values.  ``True`` selects
        pandas' default NA strings (empty cells included).
    **read_csv_kwargs
        Passed to :func:`pandas.read_csv` for the answers file only (e.g.
        ``sep=";"``).  ``dtype`` defaults to ``str`` and ``keep_default_na`` to
        False.  Read gold or features in other formats yourself and pass the pandas
        objects.

    Returns
    -------
    Annotations

    Raises
    ------
    AnnotationsError
        See :meth:`Annotations.from_frame`.
    """
    kwargs = {"dtype": str, "keep_default_na": False, **read_csv_kwargs}
    df = pd.read_csv(path, **kwargs)
    if isinstance(gold, str | os.PathLike):
        gold = _read_gold(gold)
    if isinstance(features, str | os.PathLike):
        features = _read_features(features, task)
    return Annotations.from_frame(
        df,
        gold=gold,
        features=features,
        task=task,
        worker=worker,
        label=label,
        classes=classes,
        na_values=na_values,
    )


def _default_data_dirs() -> list[tuple[str, Path]]:
    """Candidate data directories, in order, with where each came from."""
    out: list[tuple[str, Path]] = []
    env = os.environ.get(DEFAULT_DATA_DIR_ENV)
    if env:
        out.append((f"${DEFAULT_DATA_DIR_ENV}", Path(env).expanduser()))
    out.append(("../shared/data from the working directory", Path.cwd().parent / "shared" / "data"))
    repo = Path(__file__).resolve().parents[1]
    out.append(("shared/data next to the crowdzoo sources", repo.parent / "shared" / "data"))
    return out


def _resolve_data_dir(data_dir: PathLike | None) -> Path:
    """Find the data directory (see the module docstring) or raise FileNotFoundError."""
    hint = (
        f"pass data_dir=... or set the environment variable {DEFAULT_DATA_DIR_ENV} "
        "to the folder that holds one sub-folder per dataset"
    )
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data_dir {str(path)!r} is not a directory")
        return path
    candidates = _default_data_dirs()
    if os.environ.get(DEFAULT_DATA_DIR_ENV):
        where, path = candidates[0]
        if not path.is_dir():
            raise FileNotFoundError(
                f"{where} points to {str(path)!r}, which is not a directory; {hint}"
            )
        return path
    for _, path in candidates:
        if path.is_dir():
            return path
    looked = "; ".join(f"{where}: {str(path)!r}" for where, path in candidates)
    raise FileNotFoundError(
        f"no crowdzoo data directory found ({DEFAULT_DATA_DIR_ENV} is not set; looked at "
        f"{looked}); {hint}"
    )


def _dataset_dir(name: PathLike, data_dir: PathLike | None) -> Path:
    """Folder of a dataset given by name (in the data directory) or by path."""
    text = os.fspath(name)
    if isinstance(name, os.PathLike) or "/" in text or os.sep in text:
        folder = Path(name).expanduser()
        if not (folder / "answers.csv").is_file():
            raise FileNotFoundError(f"{str(folder)!r} is not a dataset folder (no answers.csv)")
        return folder
    root = _resolve_data_dir(data_dir)
    folder = root / text
    if not (folder / "answers.csv").is_file():
        available = list_datasets(root)
        raise FileNotFoundError(
            f"no dataset {text!r} in {str(root)!r}; available: {', '.join(available) or 'none'}"
        )
    return folder


def list_datasets(data_dir: PathLike | None = None) -> list[str]:
    """Names of the datasets in the data directory.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder with one sub-folder per dataset; found automatically when omitted
        (see the module docstring).

    Returns
    -------
    list of str
        Sorted names of the sub-folders that contain an ``answers.csv``.

    Raises
    ------
    FileNotFoundError
        When no data directory can be found.
    """
    root = _resolve_data_dir(data_dir)
    return sorted(p.name for p in root.iterdir() if (p / "answers.csv").is_file())


def load_dataset(name: PathLike, data_dir: PathLike | None = None) -> Annotations:
    """Load a dataset folder as :class:`Annotations`.

    Parameters
    ----------
    name : str or os.PathLike
        Dataset name (a sub-folder of the data directory, see
        :func:`list_datasets`) or a path to a dataset folder (a
        :class:`os.PathLike` or a string containing a path separator).
    data_dir : str or os.PathLike, optional
        Data directory; found automatically when omitted (argument, then
        ``$CROWDZOO_DATA_DIR``, then ``../shared/data`` from the working
        directory, then ``shared/data`` next to the crowdzoo sources).

    Returns
    -------
    Annotations
        With gold and features when ``gold.csv``/``features.csv`` exist, and the
        class order of ``meta.json`` when it has ``"classes"``.

    Raises
    ------
    FileNotFoundError
        No data directory, or no such dataset (the message lists those present).

    Examples
    --------
    >>> ann = load_dataset("bluebirds")  # doctest: +SKIP
    >>> ann.n_tasks, ann.n_workers, ann.n_answers  # doctest: +SKIP
    (108, 39, 4212)
    """
    folder = _dataset_dir(name, data_dir)
    classes = None
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("classes") is not None:
            classes = [str(c) for c in meta["classes"]]
    gold_path = folder / "gold.csv"
    features_path = folder / "features.csv"
    return read_csv(
        folder / "answers.csv",
        gold=gold_path if gold_path.is_file() else None,
        features=features_path if features_path.is_file() else None,
        classes=classes,
    )


def load_split(
    name: PathLike, split: str = "test", data_dir: PathLike | None = None
) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """Load a held-out split (features and gold, no crowd answers) of a dataset.

    Parameters
    ----------
    name : str or os.PathLike
        Dataset name or folder, as in :func:`load_dataset`.
    split : str
        Split prefix: ``"test"`` reads ``test_features.csv`` and
        ``test_gold.csv``, ``"valid"`` the ``valid_*`` files.
    data_dir : str or os.PathLike, optional
        As in :func:`load_dataset`.

    Returns
    -------
    features : pandas.DataFrame or None
        float64 features indexed by task id (index name ``"task"``); ``None`` if
        the split has no features file.
    gold : pandas.Series or None
        Gold labels as strings (class names, map them with
        ``ann.classes.get_indexer``), indexed by task id, named ``"label"``; in
        the order of ``features`` when both cover the same tasks.  ``None`` if
        the split has no gold file.

    Raises
    ------
    FileNotFoundError
        When the dataset has neither file of that split (lists the splits it has).
    """
    folder = _dataset_dir(name, data_dir)
    f_path = folder / f"{split}_features.csv"
    g_path = folder / f"{split}_gold.csv"
    if not f_path.is_file() and not g_path.is_file():
        splits = sorted(
            {
                p.name.rsplit("_", 1)[0]
                for pattern in ("*_features.csv", "*_gold.csv")
                for p in folder.glob(pattern)
            }
        )
        raise FileNotFoundError(
            f"dataset {folder.name!r} has no {split!r} split (no {f_path.name} or "
            f"{g_path.name} in {str(folder)!r}); available splits: {', '.join(splits) or 'none'}"
        )
    features = _read_features(f_path) if f_path.is_file() else None
    gold = None
    if g_path.is_file():
        frame = _read_gold(g_path)
        missing = [c for c in ("task", "label") if c not in frame.columns]
        if missing:
            raise AnnotationsError(
                f"{str(g_path)!r} lacks column(s) {missing}; available: {list(frame.columns)}"
            )
        gold = pd.Series(
            frame["label"].to_numpy(), index=pd.Index(frame["task"], name="task"), name="label"
        )
        if (
            features is not None
            and gold.index.is_unique
            and len(gold) == len(features)
            and gold.index.isin(features.index).all()
        ):
            gold = gold.reindex(features.index)
    return features, gold
