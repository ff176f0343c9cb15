"""Tests of crowdzoo.data: the Annotations container and the CSV / dataset loaders."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import json
import re
import time
from pathlib import Path

import crowdzoo.data.annotations as annotations_module
import crowdzoo.data.loaders as loaders
import numpy as np
import pandas as pd
import pytest
from crowdzoo.data import Annotations, list_datasets, load_dataset, load_split, read_csv
from crowdzoo.data.annotations import AnnotationsError

REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL_NAMES = (
    sorted(p.name for p in REAL_DIR.iterdir() if (p / "answers.csv").is_file())
    if REAL_DIR.is_dir()
    else []
)


def frame(rows, index=None):
    return pd.DataFrame(rows, columns=["task", "worker", "label"], index=index)


@pytest.fixture
def df():
    return frame(
        [
            ("t2", "w1", "yes"),
            ("t1", "w1", "no"),
            ("t2", "w2", "no"),
            ("t3", "w3", "yes"),
            ("t1", "w3", "yes"),
            ("t3", "w1", "no"),
        ]
    )


# ----------------------------------------------------------------------------- from_frame


def test_round_trip_and_codes(df):
    ann = Annotations.from_frame(df)
    pd.testing.assert_frame_equal(ann.to_frame(), df.reset_index(drop=True))
    assert ann.n_tasks == 3 and ann.n_workers == 3 and ann.n_answers == 6 and ann.n_classes == 2
    for arr, size in ((ann.task, 3), (ann.worker, 3), (ann.label, 2)):
        assert arr.dtype == np.int32 and arr.shape == (6,)
        assert arr.min() >= 0 and arr.max() < size
    assert ann.task_ids.tolist() == ["t2", "t1", "t3"]  # first appearance
    assert ann.worker_ids.tolist() == ["w1", "w2", "w3"]
    assert ann.classes.tolist() == ["no", "yes"]
    assert ann.task.tolist() == [0, 1, 0, 2, 1, 2]
    assert ann.label.tolist() == [1, 0, 0, 1, 1, 0]
    assert not ann.has_gold and not ann.has_features
    assert ann.gold is None and ann.features is None and ann.features_frame() is None


def test_round_trip_with_other_column_names_and_index():
    raw = pd.DataFrame(
        {"item": [5, 5, 7], "annot": ["a", "b", "a"], "y": [1, 0, 0], "extra": [0.1, 0.2, 0.3]},
        index=["r1", "r2", "r3"],
    )
    ann = Annotations.from_frame(raw, task="item", worker="annot", label="y")
    out = ann.to_frame()
    assert out["task"].tolist() == [5, 5, 7]
    assert out["worker"].tolist() == ["a", "b", "a"]
    assert out["label"].tolist() == [1, 0, 0]
    assert ann.classes.tolist() == [0, 1]
    assert pd.api.types.is_integer_dtype(ann.classes.dtype)  # ints stay ints


def test_numeric_class_sort_keeps_strings():
    d = frame(
        [
            ("a", "w", "2"),
            ("a", "v", "-2"),
            ("b", "w", "10"),
            ("b", "v", "0"),
            ("c", "w", "1"),
            ("c", "v", "9"),
        ]
    )
    ann = Annotations.from_frame(d)
    assert ann.classes.tolist() == ["-2", "0", "1", "2", "9", "10"]
    assert all(isinstance(c, str) for c in ann.classes.tolist())
    pd.testing.assert_frame_equal(ann.to_frame(), d)


def test_lexical_class_sort():
    d = frame([("a", "w", "b"), ("a", "v", "a10"), ("b", "w", "a9"), ("b", "v", "B")])
    ann = Annotations.from_frame(d)
    assert ann.classes.tolist() == ["B", "a10", "a9", "b"]


def test_explicit_classes_order(df):
    ann = Annotations.from_frame(df, classes=["yes", "maybe", "no"])
    assert ann.classes.tolist() == ["yes", "maybe", "no"]
    assert ann.n_classes == 3
    assert ann.label.tolist() == [0, 2, 2, 0, 0, 2]
    pd.testing.assert_frame_equal(ann.to_frame(), df)


def test_explicit_classes_allow_single_observed_class():
    d = frame([("a", "w", "x"), ("b", "w", "x")])
    ann = Annotations.from_frame(d, classes=["x", "y"])
    assert ann.n_classes == 2 and ann.label.tolist() == [0, 0]


def test_from_wide_equals_from_frame_of_melted():
    wide = pd.DataFrame(
        {"w1": [1, np.nan, 2], "w2": [2, 2, np.nan], "w3": [np.nan, 1, 1]},
        index=pd.Index(["t1", "t2", "t3"]),
    )
    ann = Annotations.from_wide(wide)
    long = wide.rename_axis(index="task", columns="worker").stack().rename("label").reset_index()
    long = long.dropna().astype({"label": np.int64})
    ref = Annotations.from_frame(long)
    for field in ("task", "worker", "label"):
        np.testing.assert_array_equal(getattr(ann, field), getattr(ref, field))
    for field in ("task_ids", "worker_ids", "classes"):
        assert getattr(ann, field).equals(getattr(ref, field))
    # row-major order; whole-valued float labels come back as ints
    assert ann.to_frame().values.tolist() == [
        ["t1", "w1", 1],
        ["t1", "w2", 2],
        ["t2", "w2", 2],
        ["t2", "w3", 1],
        ["t3", "w1", 2],
        ["t3", "w3", 1],
    ]
    assert ann.classes.tolist() == [1, 2]


def test_from_wide_errors_name_cells():
    wide = pd.DataFrame({"w1": ["a", "b"], "w2": ["c", None]}, index=["t1", "t2"])
    with pytest.raises(AnnotationsError, match=r"'c'.*\('t1', 'w2'\)"):
        Annotations.from_wide(wide, classes=["a", "b"])
    with pytest.raises(AnnotationsError, match="empty"):
        Annotations.from_wide(pd.DataFrame({"w1": [np.nan]}, index=["t1"]))


def test_gold_coding(df):
    gold = pd.Series({"t3": "no", "t2": "yes"})
    ann = Annotations.from_frame(df, gold=gold)
    assert ann.gold.dtype == np.int32 and ann.gold.tolist() == [1, -1, 0]
    assert ann.has_gold
    gs = ann.gold_series()
    assert gs.name == "label" and gs.index.name == "task"
    assert gs.to_dict() == {"t2": "yes", "t3": "no"}
    # DataFrame gold with task,label columns; consistent repeats are fine
    gframe = pd.DataFrame({"task": ["t1", "t1", "t3"], "label": ["yes", "yes", "no"]})
    ann2 = Annotations.from_frame(df, gold=gframe)
    assert ann2.gold.tolist() == [-1, 1, 0]
    # gold is a subset; empty gold gives all -1
    ann3 = Annotations.from_frame(df, gold=pd.Series([], dtype=object))
    assert ann3.gold.tolist() == [-1, -1, -1] and not ann3.has_gold
    assert ann3.gold_series().empty


def test_gold_matches_by_number():
    # labels that are the same number are the same class (crowdzoo.data.normalize)
    d = frame([("a", "w", "0"), ("a", "v", "1"), ("b", "w", "1")])
    ann = Annotations.from_frame(d, gold=pd.Series({"a": 1, "b": 0}))
    assert ann.gold.tolist() == [1, 0]
    d_int = frame([("a", "w", 0), ("a", "v", 1), ("b", "w", 1)])
    ann = Annotations.from_frame(d_int, gold=pd.Series({"a": "1", "b": "0"}))
    assert ann.gold.tolist() == [1, 0]
    ann = Annotations.from_frame(d_int, gold=pd.Series({"a": "01", "b": " 0.0 "}))
    assert ann.gold.tolist() == [1, 0]
    with pytest.raises(AnnotationsError, match="'x'"):
        Annotations.from_frame(d_int, gold=pd.Series({"a": "x"}))


def test_features_aligned_to_task_order(df):
    feats = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 9.0], "n": [10, 20, 30, 90]},
        index=["t1", "t3", "extra", "t2"],
    ).sample(frac=1.0, random_state=0)
    ann = Annotations.from_frame(df, features=feats)
    assert ann.has_features and ann.features.dtype == np.float64
    assert ann.features.shape == (3, 2)
    assert ann.feature_names == ("x", "n")
    np.testing.assert_array_equal(ann.features, [[9.0, 90.0], [1.0, 10.0], [2.0, 20.0]])
    ff = ann.features_frame()
    assert ff.index.tolist() == ["t2", "t1", "t3"] and ff.index.name == "task"
    assert ff.columns.tolist() == ["x", "n"]
    ff.iloc[0, 0] = -1.0  # a writable copy
    assert ann.features[0, 0] == 9.0


def test_arrays_read_only_and_frozen(df):
    feats = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=["t1", "t2", "t3"])
    ann = Annotations.from_frame(df, gold={"t1": "no"}, features=feats)
    for arr in (ann.task, ann.worker, ann.label, ann.gold, ann.features):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ann.task = np.zeros(6, dtype=np.int32)


def test_direct_construction_validates_and_copies():
    task = np.array([0, 1, 1])
    ann = Annotations(
        task,
        np.array([0, 0, 1]),
        np.array([0, 1, 0]),
        pd.Index(["a", "b"]),
        pd.Index(["u", "v"]),
        pd.Index(["n", "y"]),
    )
    assert task.flags.writeable  # caller's array untouched
    assert ann.task.dtype == np.int32 and not ann.task.flags.writeable
    ok = dict(
        worker=np.array([0, 0, 1]),
        label=np.array([0, 1, 0]),
        task_ids=pd.Index(["a", "b"]),
        worker_ids=pd.Index(["u", "v"]),
        classes=pd.Index(["n", "y"]),
    )
    with pytest.raises(AnnotationsError, match=r"task codes.*\[0, 2\).*row.*: 2"):
        Annotations(task=np.array([0, 1, 2]), **ok)
    with pytest.raises(AnnotationsError, match="same length"):
        Annotations(task=np.array([0, 1]), **ok)
    with pytest.raises(AnnotationsError, match="integer"):
        Annotations(task=np.array([0.0, 1.0, 1.0]), **ok)
    with pytest.raises(AnnotationsError, match=r"gold codes.*'b'"):
        Annotations(task=task, gold=np.array([0, 2]), **ok)
    with pytest.raises(AnnotationsError, match=r"features.*shape"):
        Annotations(task=task, features=np.zeros((3, 2)), **ok)
    with pytest.raises(AnnotationsError, match=r"NaN/inf.*'b'"):
        Annotations(task=task, features=np.array([[0.0], [np.inf]]), **ok)
    with pytest.raises(AnnotationsError, match="unique.*'a'"):
        Annotations(task=task, **{**ok, "task_ids": pd.Index(["a", "a"])})
    with pytest.raises(AnnotationsError, match="at least two classes"):
        Annotations(task=task, **{**ok, "label": np.zeros(3, int), "classes": pd.Index(["n"])})


def test_with_gold(df):
    ann = Annotations.from_frame(df)
    g = ann.with_gold(pd.Series({"t1": "yes"}))
    assert g.gold.tolist() == [-1, 1, -1] and ann.gold is None
    assert g.task is not None and np.array_equal(g.label, ann.label)
    assert g.with_gold(None).gold is None
    with pytest.raises(AnnotationsError, match=r"'maybe'.*'t2'"):
        ann.with_gold(pd.Series({"t2": "maybe"}))


def test_repr_and_summary(df):
    ann = Annotations.from_frame(df, gold={"t1": "no"})
    assert repr(ann) == (
        "Annotations(tasks=3, workers=3, answers=6, classes=['no', 'yes'], gold=1, features=None)"
    )
    text = ann.summary()
    assert isinstance(text, str)
    assert "no repeated" in text and "gold:     1 of 3 tasks (33.3%)" in text


def test_summary_mentions_duplicates():
    d = frame(
        [
            ("a", "w", "x"),
            ("a", "w", "y"),
            ("a", "w", "x"),
            ("b", "w", "x"),
            ("b", "v", "y"),
            ("b", "v", "y"),
        ]
    )
    text = Annotations.from_frame(d).summary()
    assert "2 repeated (task, worker) pairs (3 extra rows), 1 with conflicting labels" in text
    assert "answers per task:   min 3 / median 3 / mean 3.00 / max 3" in text
    assert "answers per worker: min 2 / median 3 / max 4" in text
    assert "x = 3 | y = 3" in text


def test_docstring_example():
    result = doctest.testmod(annotations_module)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- errors


def test_error_missing_columns(df):
    with pytest.raises(AnnotationsError, match=r"missing column.*'annotator'.*available.*'worker'"):
        Annotations.from_frame(df, worker="annotator")


def test_error_empty_frame(df):
    with pytest.raises(AnnotationsError, match="empty"):
        Annotations.from_frame(df.iloc[:0])


@pytest.mark.parametrize("col", ["task", "worker", "label"])
def test_error_nan_values(df, col):
    bad = df.set_axis([f"r{i}" for i in range(len(df))]).astype(object)
    bad.loc["r3", col] = None
    bad.loc["r5", col] = np.nan
    with pytest.raises(AnnotationsError, match=rf"'{col}'.*2 rows: 'r3', 'r5'"):
        Annotations.from_frame(bad)


def test_error_label_not_in_classes(df):
    with pytest.raises(AnnotationsError, match=r"1 label: 'yes'.*3 rows: 0, 3, 4"):
        Annotations.from_frame(df, classes=["no", "maybe"])


def test_error_single_class():
    d = frame([("a", "w", "x"), ("b", "w", "x")])
    with pytest.raises(AnnotationsError, match="a single class 'x': at least two classes"):
        Annotations.from_frame(d)
    with pytest.raises(AnnotationsError, match="at least two classes"):
        Annotations.from_frame(d, classes=["x"])


def test_error_lists_first_five_and_count():
    d = frame([(f"t{i}", "w", None if i % 2 else "a") for i in range(20)])
    msg = r"10 rows: 1, 3, 5, 7, 9, \.\.\.$"
    with pytest.raises(AnnotationsError, match=msg):
        Annotations.from_frame(d)


def test_error_gold_nan(df):
    with pytest.raises(AnnotationsError, match=r"NaN/None labels.*'t3'"):
        Annotations.from_frame(df, gold=pd.Series({"t1": "no", "t3": np.nan}))


def test_error_gold_unknown_task(df):
    with pytest.raises(AnnotationsError, match=r"without any answers: 2 tasks: 'zz', 'yy'"):
        Annotations.from_frame(df, gold=pd.Series({"t1": "no", "zz": "no", "yy": "yes"}))


def test_error_gold_class_never_answered(df):
    gold = pd.Series({"t1": "maybe", "t2": "no"})
    with pytest.raises(AnnotationsError, match=r"'maybe' never given.*'t1'"):
        Annotations.from_frame(df, gold=gold)
    ann = Annotations.from_frame(df, gold=gold, classes=["no", "maybe", "yes"])
    assert ann.gold.tolist() == [0, 1, -1]
    with pytest.raises(AnnotationsError, match=r"'maybe' not among the classes.*'t1'"):
        Annotations.from_frame(df, gold=gold, classes=["no", "yes"])


def test_error_gold_conflicting_duplicates(df):
    gold = pd.DataFrame({"task": ["t1", "t2", "t1"], "label": ["no", "yes", "yes"]})
    with pytest.raises(AnnotationsError, match=r"different labels.*'t1'"):
        Annotations.from_frame(df, gold=gold)


def test_error_features_missing_rows(df):
    feats = pd.DataFrame({"x": [1.0]}, index=["t1"])
    with pytest.raises(AnnotationsError, match=r"no row for 2 tasks: 't2', 't3'"):
        Annotations.from_frame(df, features=feats)


def test_error_features_non_numeric(df):
    feats = pd.DataFrame({"x": [1.0, 2.0, 3.0], "name": ["a", "b", "c"]}, index=["t1", "t2", "t3"])
    with pytest.raises(AnnotationsError, match=r"non-numeric 1 column: 'name'"):
        Annotations.from_frame(df, features=feats)


def test_error_features_not_finite(df):
    feats = pd.DataFrame(
        {"x": [1.0, np.nan, 3.0], "y": [0.0, 1.0, np.inf], "z": [1.0, 1.0, 1.0]},
        index=["t1", "t2", "t3"],
    )
    msg = r"NaN/inf.*2 tasks: 't2', 't3'.*2 columns: 'x', 'y'"
    with pytest.raises(AnnotationsError, match=msg):
        Annotations.from_frame(df, features=feats)
    # NaN in a dropped extra row is ignored
    ok = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan]}, index=["t1", "t2", "t3", "t4"])
    assert Annotations.from_frame(df, features=ok).features.shape == (3, 1)


def test_error_features_duplicate_index(df):
    feats = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}, index=["t1", "t2", "t3", "t2"])
    with pytest.raises(AnnotationsError, match=r"duplicate.*'t2'"):
        Annotations.from_frame(df, features=feats)


def test_errors_are_value_errors():
    assert issubclass(AnnotationsError, ValueError)


# ----------------------------------------------------------------------------- no mutation


def test_inputs_not_mutated(df):
    df = df.astype({"label": "category"}).set_axis(list("abcdef"))
    gold = pd.Series({"t2": "no", "t1": "yes", "t3": "yes"})
    feats = pd.DataFrame({"x": [3.0, 1.0, 2.0, 5.0]}, index=["t3", "t1", "t2", "t9"])
    before = [copy.deepcopy(o) for o in (df, gold, feats)]
    ann = Annotations.from_frame(df, gold=gold, features=feats)
    ann.with_gold(gold)
    pd.testing.assert_frame_equal(df, before[0])
    pd.testing.assert_series_equal(gold, before[1])
    pd.testing.assert_frame_equal(feats, before[2])
    assert ann.classes.tolist() == ["no", "yes"]

    wide = pd.DataFrame({"w1": ["a", None], "w2": ["b", "a"]}, index=["t1", "t2"])
    wide_before = copy.deepcopy(wide)
    Annotations.from_wide(wide)
    pd.testing.assert_frame_equal(wide, wide_before)


# ----------------------------------------------------------------------------- loaders


def write_dataset(root: Path, name: str, meta: dict | None = None, features=True) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "answers.csv").write_text(
        "task,worker,label\n0001,007,b\n0001,008,a\n0002,007,c\n0002,008,b\n"
    )
    (folder / "gold.csv").write_text("task,label\n0002,c\n")
    if features:
        (folder / "features.csv").write_text("task,f0,f1\n0002,1.5,2\n0001,0.5,1\n0003,9,9\n")
        (folder / "test_features.csv").write_text("task,f0,f1\nx1,1,2\nx2,3,4\n")
        (folder / "test_gold.csv").write_text("task,label\nx2,a\nx1,b\n")
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_read_csv_strings_gold_and_features_paths(tmp_path):
    folder = write_dataset(tmp_path, "toy")
    ann = read_csv(
        folder / "answers.csv", gold=folder / "gold.csv", features=str(folder / "features.csv")
    )
    assert ann.task_ids.tolist() == ["0001", "0002"]
    assert ann.worker_ids.tolist() == ["007", "008"]
    assert ann.classes.tolist() == ["a", "b", "c"]
    assert ann.gold.tolist() == [-1, 2]
    np.testing.assert_array_equal(ann.features, [[0.5, 1.0], [1.5, 2.0]])
    assert ann.feature_names == ("f0", "f1")


def test_read_csv_kwargs_and_column_names(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("item\tannot\ty\n01\tA\t1\n01\tB\t0\n02\tA\t10\n")
    gold = tmp_path / "g.csv"
    gold.write_text("item,y\n02,10\n")
    ann = read_csv(path, gold=gold, task="item", worker="annot", label="y", sep="\t")
    assert ann.task_ids.tolist() == ["01", "02"]
    assert ann.classes.tolist() == ["0", "1", "10"]
    assert ann.gold_series().to_dict() == {"02": "10"}


def test_load_dataset_from_data_dir_and_path(tmp_path):
    write_dataset(tmp_path, "toy", meta={"classes": ["c", "b", "a", "d"]})
    write_dataset(tmp_path, "plain", features=False)
    (tmp_path / "not_a_dataset").mkdir()
    assert list_datasets(tmp_path) == ["plain", "toy"]
    ann = load_dataset("toy", data_dir=tmp_path)
    assert ann.classes.tolist() == ["c", "b", "a", "d"]  # meta.json order, unused class kept
    assert ann.gold.tolist() == [-1, 0] and ann.features.shape == (2, 2)
    ann2 = load_dataset(tmp_path / "toy")
    assert np.array_equal(ann2.label, ann.label)
    plain = load_dataset(str(tmp_path / "plain"))
    assert plain.classes.tolist() == ["a", "b", "c"] and not plain.has_features
    with pytest.raises(FileNotFoundError, match=r"'nope'.*available: plain, toy"):
        load_dataset("nope", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a dataset folder"):
        load_dataset(tmp_path / "not_a_dataset")


def test_load_split(tmp_path):
    write_dataset(tmp_path, "toy")
    feats, gold = load_split("toy", data_dir=tmp_path)
    assert feats.shape == (2, 2) and feats.index.tolist() == ["x1", "x2"]
    assert feats.dtypes.tolist() == [np.float64, np.float64]
    assert gold.index.tolist() == ["x1", "x2"] and gold.tolist() == ["b", "a"]
    with pytest.raises(FileNotFoundError, match=r"no 'valid' split.*available splits: test"):
        load_split("toy", "valid", data_dir=tmp_path)


def test_data_dir_resolution(tmp_path, monkeypatch):
    write_dataset(tmp_path / "envdir", "toy")
    monkeypatch.setenv(loaders.DEFAULT_DATA_DIR_ENV, str(tmp_path / "envdir"))
    assert list_datasets() == ["toy"]
    monkeypatch.setenv(loaders.DEFAULT_DATA_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CROWDZOO_DATA_DIR"):
        load_dataset("toy")
    monkeypatch.delenv(loaders.DEFAULT_DATA_DIR_ENV)
    # ../shared/data relative to the working directory
    write_dataset(tmp_path / "shared" / "data", "cwdtoy")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert list_datasets() == ["cwdtoy"]
    # nothing found: say where we looked and how to pass data_dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loaders, "__file__", str(tmp_path / "x" / "y" / "data" / "loaders.py"))
    with pytest.raises(FileNotFoundError, match=r"looked at.*data_dir=") as info:
        load_dataset("toy")
    assert str(tmp_path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        list_datasets(tmp_path / "missing")


# ----------------------------------------------------------------------------- real data


def real_meta(name: str) -> dict:
    return json.loads((REAL_DIR / name / "meta.json").read_text())


@pytest.fixture
def real_dir():
    if not REAL_DIR.is_dir():
        pytest.skip(f"shared datasets not found at {REAL_DIR}")
    return REAL_DIR


@pytest.mark.parametrize(
    "name",
    REAL_NAMES
    or [
        pytest.param(
            "none", marks=pytest.mark.skip(reason=f"shared datasets not found at {REAL_DIR}")
        )
    ],
)
def test_real_dataset_matches_meta(real_dir, name):
    ann = load_dataset(name, data_dir=real_dir)
    meta = real_meta(name)
    # counts sit under "stats" or at the top of meta.json, depending on the dataset: check
    # every count the file states, and that it states the sizes at least
    stats = meta.get("stats", meta)
    n_gold = 0 if ann.gold is None else int((ann.gold >= 0).sum())
    ours = {"n_tasks": ann.n_tasks, "n_workers": ann.n_workers, "n_answers": ann.n_answers,
            "n_gold": n_gold}
    stated = {k: stats[k] for k in ours if k in stats}
    assert {"n_tasks", "n_workers", "n_answers"} <= set(stated), sorted(stats)
    assert {k: ours[k] for k in stated} == stated
    assert ann.classes.tolist() == meta["classes"]
    assert ann.summary()


def test_real_default_data_dir(real_dir, monkeypatch):
    monkeypatch.delenv(loaders.DEFAULT_DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert list_datasets() == REAL_NAMES


def test_real_duchenne_leading_zeros(real_dir):
    ann = load_dataset("duchenne", data_dir=real_dir)
    assert ann.task_ids[0] == "0001"
    assert all(re.fullmatch(r"\d{4}", t) for t in ann.task_ids[:50])


def test_real_labelme_features_and_split(real_dir):
    ann = load_dataset("labelme", data_dir=real_dir)
    assert ann.features.shape == (1000, 512) and len(ann.feature_names) == 512
    feats, gold = load_split("labelme", "test", data_dir=real_dir)
    assert feats.shape == (1188, 512) and gold.shape == (1188,)
    assert feats.index.equals(gold.index)
    assert set(gold) <= set(ann.classes)
    vfeats, vgold = load_split("labelme", "valid", data_dir=real_dir)
    assert vfeats.shape == (500, 512) and vgold.shape == (500,)
    with pytest.raises(FileNotFoundError, match="available splits: test, valid"):
        load_split("labelme", "train", data_dir=real_dir)


def test_real_music_genre_classes(real_dir):
    ann = load_dataset("music_genre", data_dir=real_dir)
    assert ann.classes.tolist() == real_meta("music_genre")["classes"]
    assert ann.features.shape == (700, 124)


@pytest.mark.parametrize("name", ["trec2010_relevance", "adult_content"])
def test_real_load_is_fast(real_dir, name):
    start = time.perf_counter()
    ann = load_dataset(name, data_dir=real_dir)
    assert time.perf_counter() - start < 2.0
    stats = real_meta(name)["stats"]
    text = ann.summary()
    assert f"{stats['repeated_task_worker_pairs']:,} repeated" in text
    assert f"({stats['extra_answers_from_repeats']:,} extra rows)" in text
    assert f"{stats['conflicting_task_worker_pairs']:,} with conflicting" in text
