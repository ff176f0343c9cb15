"""Large answer files through pyarrow: parquet, and CSV read in parallel blocks.

:func:`read_parquet` and :func:`read_csv_arrow` build the same :class:`Annotations` as
:func:`crowdzoo.data.read_csv` does, with the same normalization rules
(:mod:`crowdzoo.data.normalize`: whitespace stripped, ids compared as strings, labels that are
the same number one class), but they never make a Python object per answer:

* a column is dictionary-encoded by Arrow (``pyarrow.compute.dictionary_encode``: int32
  indices into the distinct values, one hash pass in C++); a parquet column stored
  dictionary-encoded is read as such and its per-row-group dictionaries are merged;
* integer ids spanning a dense range (``max - min < 4 N``) are coded by a lookup table
  (``present[id]``, then a cumulative sum): two sequential passes, no hash table; their codes
  follow the sorted ids (the hash path: first appearance, as :meth:`Annotations.from_frame`);
* the normalization rules are applied to the *distinct* values only: string ids are trimmed
  by Arrow (``utf8_trim_whitespace``) and re-encoded when trimming merges two ids; labels
  (few distinct values) go through :func:`~crowdzoo.data.normalize.encode_values`, so
  ``"1"``, ``1`` and ``" 1.0"`` are one class exactly as in the pandas path; integer ids are
  distinct as strings whenever they are distinct as numbers, so they need nothing;
* task and worker ids stay Arrow-backed (``string[pyarrow]``) or int64 pandas indexes.

Memory: the codes are three int32 arrays (12 bytes per answer) plus, while one column is
being encoded, that column's Arrow buffer (the file is read one column at a time).

Missing values follow :meth:`Annotations.from_frame`: a null id is an error naming its rows;
a null label is an error unless ``na_values`` is given, when its row is dropped (as are
labels equal to one of the ``na_values`` strings).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .annotations import Annotations, AnnotationsError, _listing
from .normalize import encode_values, id_key, label_key, na_strings

__all__ = ["read_parquet", "read_csv_arrow", "encode_column"]

PathLike = str | os.PathLike[str]


def require_pyarrow():
    """Import pyarrow, or say how to install it (it is the optional extra ``parquet``)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "reading parquet files and large CSVs needs pyarrow, an optional dependency: "
            "pip install 'crowdzoo[parquet]'") from err


def _pa():
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa, pc


def _null_rows(arr) -> np.ndarray:
    """Row numbers of the nulls of an Arrow (chunked) array."""
    _, pc = _pa()
    return np.flatnonzero(np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False)))


def _dictionary_encode(arr) -> tuple[np.ndarray, Any]:
    """Arrow-encode a chunked array: int32 codes (N,) and the distinct values (Arrow array)."""
    pa, pc = _pa()
    if isinstance(arr, pa.ChunkedArray) and pa.types.is_dictionary(arr.type):
        # a parquet dictionary column: one dictionary per row group; merge them (their total
        # size is at most N) and map each chunk's local codes to the merged codes
        dicts = [c.dictionary for c in arr.chunks]
        merged = pc.dictionary_encode(pa.chunked_array(dicts, type=arr.type.value_type))
        values = merged.chunks[-1].dictionary if merged.num_chunks else pa.array(
            [], arr.type.value_type)
        out = np.empty(len(arr), dtype=np.int32)
        start = 0
        for chunk, local in zip(arr.chunks, merged.chunks, strict=True):
            remap = np.asarray(local.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
            idx = chunk.indices.to_numpy(zero_copy_only=False)
            out[start:start + len(chunk)] = remap[idx]
            start += len(chunk)
        return out, values
    encoded = pc.dictionary_encode(arr)
    if isinstance(encoded, pa.ChunkedArray):
        if encoded.num_chunks == 0:
            return np.empty(0, np.int32), pa.array([], arr.type)
        values = encoded.chunks[-1].dictionary  # one memo table: the last holds every value
        out = np.empty(len(arr), dtype=np.int32)
        start = 0
        for chunk in encoded.chunks:
            out[start:start + len(chunk)] = chunk.indices.to_numpy(zero_copy_only=False)
            start += len(chunk)
        return out, values
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int32), encoded.dictionary


def _dense_int_codes(arr) -> tuple[np.ndarray, np.ndarray] | None:
    """Code integer ids by a lookup table when their range is dense; None when it is not."""
    pa, pc = _pa()
    n = len(arr)
    mm = pc.min_max(arr)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if lo is None or hi - lo >= 4 * n + 1024:
        return None
    present = np.zeros(hi - lo + 1, dtype=bool)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    for chunk in chunks:
        present[chunk.to_numpy() - lo] = True
    table = np.cumsum(present, dtype=np.int32) - 1
    values = np.flatnonzero(present).astype(np.int64) + lo
    out = np.empty(n, dtype=np.int32)
    start = 0
    for chunk in chunks:
        out[start:start + len(chunk)] = table[chunk.to_numpy() - lo]
        start += len(chunk)
    return out, values


def _merge(codes: np.ndarray, key_codes: np.ndarray) -> np.ndarray:
    """Map codes of distinct raw values to codes of distinct keys (in place when possible)."""
    if np.array_equal(key_codes, np.arange(len(key_codes))):
        return codes
    return np.asarray(key_codes, dtype=np.int32)[codes]


def encode_column(arr, kind: str, name: str = "column") -> tuple[np.ndarray, pd.Index, list]:
    """Code one Arrow column: ``(codes int32 (N,), names Index, keys)``.

    Parameters
    ----------
    arr : pyarrow.Array or pyarrow.ChunkedArray
        The column, without nulls.
    kind : {"id", "label"}
        Which normalization rule applies (:mod:`crowdzoo.data.normalize`).
    name : str
        Column name, for error messages.

    Returns
    -------
    codes, names, keys
        ``codes[n]`` indexes ``names`` (the user's values, normalized); ``keys`` are the
        normalization keys of ``names`` (for labels; ``None`` for ids).
    """
    pa, pc = _pa()
    typ = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if kind == "id" and pa.types.is_integer(typ) and not pa.types.is_dictionary(arr.type):
        dense = _dense_int_codes(arr)
        if dense is not None:
            codes, values = dense
            return codes, pd.Index(values, dtype=np.int64), None
    codes, values = _dictionary_encode(arr)
    if kind == "id" and pa.types.is_integer(typ):
        # distinct integers are distinct as strings: nothing to merge
        return codes, pd.Index(values.to_numpy(zero_copy_only=False).astype(np.int64)), None
    if kind == "id" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        trimmed = pc.utf8_trim_whitespace(values)
        empty = np.flatnonzero(np.asarray(pc.equal(trimmed, "").to_numpy(zero_copy_only=False)))
        if empty.size:
            rows = np.flatnonzero(np.isin(codes, empty))
            raise AnnotationsError(f"column {name!r} has empty values at {_listing(rows, 'row')}")
        if not pc.all(pc.equal(trimmed, values)).as_py():
            again = pc.dictionary_encode(trimmed)
            codes = _merge(codes, again.indices.to_numpy(zero_copy_only=False))
            trimmed = again.dictionary
        names = pd.Index(pd.array(trimmed, dtype="string[pyarrow]"), dtype="string[pyarrow]")
        return codes, names, None
    # labels, and ids of other types: the pandas rules on the distinct values only
    enc = encode_values(pd.Series(values.to_pylist()), label_key if kind == "label" else id_key)
    if "" in enc.keys:
        rows = np.flatnonzero(np.isin(codes, np.flatnonzero(enc.codes == enc.keys.index(""))))
        hint = (" (pass na_values=[''] to treat empty labels as no answer)"
                if kind == "label" else "")
        raise AnnotationsError(f"column {name!r} has empty values at {_listing(rows, 'row')}{hint}")
    codes = _merge(codes, enc.codes)
    mixed = len({type(v) for v in enc.names}) > 1
    return codes, pd.Index(enc.names, dtype=object if mixed else None), enc.keys


def _sorted_class_order(keys: list) -> np.ndarray:
    from .annotations import _sorted_order

    return _sorted_order(keys)


def _from_columns(get_column, n_rows: int, task: str, worker: str, label: str,
                  classes, na_values, gold) -> Annotations:
    """Encode the three columns one at a time (``get_column(name)``) into Annotations."""
    pa, pc = _pa()
    if n_rows == 0:
        raise AnnotationsError("the answers file is empty (no rows)")
    na = na_strings(na_values)
    # labels first: rows without a label are dropped before the ids are coded
    lab = get_column(label)
    keep = None
    if lab.null_count or na is not None:
        missing = pc.is_null(lab)
        if na is not None and (pa.types.is_string(lab.type) or pa.types.is_large_string(lab.type)):
            missing = pc.or_(missing, pc.is_in(pc.utf8_trim_whitespace(lab),
                                               value_set=pa.array(sorted(na))))
        missing = np.asarray(missing.to_numpy(zero_copy_only=False))
        if missing.any():
            if na is None:
                raise AnnotationsError(
                    f"column {label!r} has NaN/None values (drop those rows, or pass na_values "
                    f"to treat missing labels as no answer) at "
                    f"{_listing(np.flatnonzero(missing), 'row')}")
            if missing.all():
                raise AnnotationsError(
                    f"every label is missing (na_values: {sorted(na)!r}): no answers left")
            keep = ~missing
            lab = lab.filter(pa.array(keep))
    l_codes, l_names, l_keys = encode_column(lab, "label", label)
    del lab
    coded = {}
    for col in (task, worker):
        arr = get_column(col)
        if keep is not None:
            if arr.null_count:
                rows = np.flatnonzero(keep & np.asarray(
                    pc.is_null(arr).to_numpy(zero_copy_only=False)))
                if rows.size:
                    raise AnnotationsError(
                        f"column {col!r} has NaN/None values (every answer needs a task and a "
                        f"worker) at {_listing(rows, 'row')}")
            arr = arr.filter(pa.array(keep))
        elif arr.null_count:
            raise AnnotationsError(
                f"column {col!r} has NaN/None values (every answer needs a task and a worker) "
                f"at {_listing(_null_rows(arr), 'row')}")
        coded[col] = encode_column(arr, "id", col)
        del arr
    if classes is not None:
        from .annotations import _as_index, _check_keys_unique, _lookup

        class_idx = _as_index("classes", classes)
        _check_keys_unique("classes", class_idx, label_key)
        if len(class_idx) < 2:
            raise AnnotationsError(f"explicit classes {class_idx.tolist()}: at least two classes "
                                   "are needed to aggregate")
        remap = _lookup(class_idx, l_names)
        unknown = np.flatnonzero(remap < 0)
        if unknown.size:
            rows = np.flatnonzero(np.isin(l_codes, unknown))
            raise AnnotationsError(f"{_listing(l_names[unknown], 'label')} not among the classes "
                                   f"{class_idx.tolist()} (at {_listing(rows, 'row')})")
    else:
        order = _sorted_class_order(l_keys)
        class_idx = l_names.take(order)
        if len(class_idx) < 2:
            raise AnnotationsError(
                f"a single class {class_idx[0]!r}: at least two classes are needed to aggregate "
                "(declare the others: classes=[...] in Python, --classes on the command line)")
        remap = np.empty(len(order), dtype=np.int64)
        remap[order] = np.arange(len(order))
    label_codes = np.asarray(remap, dtype=np.int32)[l_codes]
    del l_codes
    t_codes, t_names, _ = coded.pop(task)
    w_codes, w_names, _ = coded.pop(worker)
    from .annotations import _adopting

    with _adopting():  # the codes are ours alone: no second copy of them
        ann = Annotations(task=t_codes, worker=w_codes, label=label_codes, task_ids=t_names,
                          worker_ids=w_names, classes=class_idx,
                          n_dropped=0 if keep is None else int((~keep).sum()))
    del t_codes, w_codes, label_codes
    pa.default_memory_pool().release_unused()  # hand the Arrow buffers back to the system
    if gold is not None:
        ann = ann.with_gold(gold)
    return ann


def _check_columns(available: Sequence[str], cols: Sequence[str], path) -> None:
    missing = [c for c in cols if c not in available]
    if missing:
        raise AnnotationsError(f"missing column(s) {missing} in {str(path)!r}; available "
                               f"columns: {list(available)}")


def read_parquet(path: PathLike, gold: Any = None, task: str = "task", worker: str = "worker",
                 label: str = "label", classes: Sequence[Any] | None = None,
                 na_values: bool | str | Sequence[str] | None = None) -> Annotations:
    """Read answers from a parquet file (one row per answer) without a Python object per answer.

    Parameters
    ----------
    path : str or os.PathLike
        Parquet file with (at least) the ``task``, ``worker`` and ``label`` columns: integer
        or string ids (plain or dictionary-encoded), labels of any type.
    gold, classes, na_values
        As in :meth:`Annotations.from_frame` (gold: a Series / DataFrame / mapping, or a path
        to a gold CSV).
    task, worker, label : str
        Column names.

    Returns
    -------
    Annotations
        The same answers, ids and classes as :func:`crowdzoo.data.read_csv` of the same table
        gives; task and worker codes follow the sorted ids for dense integer ids and the
        order of first appearance otherwise (see the module docstring).
    """
    require_pyarrow()
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    _check_columns(names, [task, worker, label], path)
    dict_cols = [c for c in (task, worker, label)
                 if not _is_int(pf.schema_arrow.field(c).type)]

    def get_column(col):
        return pq.read_table(path, columns=[col], read_dictionary=dict_cols if col in dict_cols
                             else None).column(0)

    return _from_columns(get_column, pf.metadata.num_rows, task, worker, label, classes,
                         na_values, _gold(gold, task, label))


def _is_int(typ) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(typ)


def _gold(gold, task, label):
    if isinstance(gold, str | os.PathLike):
        return pd.read_csv(gold, dtype=str, keep_default_na=False)
    return gold


def read_csv_arrow(path: PathLike, gold: Any = None, task: str = "task", worker: str = "worker",
                   label: str = "label", classes: Sequence[Any] | None = None,
                   na_values: bool | str | Sequence[str] | None = None,
                   delimiter: str = ",") -> Annotations:
    """Read a large answers CSV with pyarrow's multithreaded block reader.

    Every column is read as strings and nothing is read as missing (as
    :func:`crowdzoo.data.read_csv`), then coded as in :func:`read_parquet`.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file with a header row naming the ``task``, ``worker`` and ``label`` columns.
    gold, task, worker, label, classes, na_values
        As in :func:`read_parquet`.
    delimiter : str
        Field separator.
    """
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = pd.read_csv(path, nrows=0, sep=delimiter).columns
    _check_columns(list(header), [task, worker, label], path)
    cols = [task, worker, label]
    table = pcsv.read_csv(
        path,
        parse_options=pcsv.ParseOptions(delimiter=delimiter),
        convert_options=pcsv.ConvertOptions(
            include_columns=cols, column_types={c: pa.string() for c in cols},
            null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False),
    )

    def get_column(col):
        return table.column(col)

    return _from_columns(get_column, table.num_rows, task, worker, label, classes, na_values,
                         _gold(gold, task, label))
