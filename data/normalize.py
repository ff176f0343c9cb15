"""The one normalization of ids and labels that every way into crowdzoo goes through.

Crowd answers arrive as CSV strings, pandas columns of mixed types, Python lists; the same
class can be spelled ``"1"``, ``1``, ``1.0``, ``" 1"`` or ``"1.0"``. Before anything is
coded, :class:`~crowdzoo.data.Annotations` maps every value to a *key* and treats values
with the same key as the same thing:

Labels (answers, gold labels, explicit ``classes``)
    * strings lose their surrounding whitespace (``" a"`` is ``"a"``);
    * a value that is a finite number, or a string that spells one (``"1"``, ``"1.0"``,
      ``"1e0"``, ``"01"``, ``"+1"``), is keyed by that number: ``"1"``, ``1``, ``1.0`` and
      ``np.int64(1)`` are one class; ``"1.5"`` and ``1.5`` are one class;
    * anything else (text, booleans, infinities) is keyed by its stripped ``str()``.
    A class keeps the user's spelling when all its answers spell it the same way (``"01"``
    stays ``"01"``, ``1`` stays the int ``1``); when they differ, its name is the number
    (``1``; the string ``"1"`` if every spelling was a string).

Ids (tasks and workers, also in gold and in the features' index)
    * keyed by their stripped ``str()``: ``1`` and ``"1"`` are the same task, ``" t1"`` is
      ``"t1"``; ``"007"`` and ``"7"`` stay two tasks (ids are names, not numbers).
    An id keeps the user's value when it is spelled one way, else its stripped string.

So two different classes or ids never print the same (no duplicate ArviZ coordinates, no
lost ``workers()`` columns), and mixed types never split a class.

Missing values: ``NaN`` / ``None`` are missing; strings such as ``"N/A"``, ``"NA"``,
``"None"``, ``"null"`` are ordinary values unless the caller lists them in ``na_values``.
Empty (or all-whitespace) labels and ids are errors unless ``""`` is in ``na_values``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_NA_VALUES",
    "Encoded",
    "encode_values",
    "id_key",
    "label_key",
    "na_strings",
]

#: the strings pandas reads as missing by default; ``na_values=True`` selects them
DEFAULT_NA_VALUES = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


def na_strings(na_values: bool | str | Iterable[str] | None) -> frozenset[str] | None:
    """Return the (stripped) strings that mean "missing", or None when NA handling is off.

    Parameters
    ----------
    na_values : None, bool, str or iterable of str
        ``None`` / ``False``: off (only NaN / None are missing, and they are errors);
        ``True``: pandas' default NA strings (:data:`DEFAULT_NA_VALUES`); a string or a list
        of strings: exactly those (compared after stripping whitespace).
    """
    if na_values is None or na_values is False:
        return None
    if na_values is True:
        return frozenset(DEFAULT_NA_VALUES)
    if isinstance(na_values, str):
        na_values = [na_values]
    try:
        values = list(na_values)
    except TypeError:
        raise TypeError(f"na_values must be None, True or a list of strings, got "
                        f"{type(na_values).__name__}") from None
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise TypeError(f"na_values must hold strings, got {bad[:5]!r}")
    return frozenset(v.strip() for v in values)


def _number_key(x: Real) -> Any:
    """Return a finite number as an int when whole, else as a float; None if not finite."""
    if isinstance(x, Integral):
        return int(x)
    f = float(x)
    if not math.isfinite(f):
        return None
    return int(f) if f.is_integer() else f


def label_key(value: Any) -> Any:
    """Return the key that decides which labels are the same class (module docstring)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (Real, np.number)) and not isinstance(value, np.complexfloating):
        key = _number_key(value)
        return str(value).strip() if key is None else key
    text = str(value).strip()
    if _NUMBER.fullmatch(text):
        if _INTEGER.fullmatch(text):
            return int(text)
        key = _number_key(float(text))
        return text if key is None else key
    return text


def id_key(value: Any) -> str:
    """Return the key that decides which task / worker ids are the same (module docstring)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    return str(value).strip()


def _spelling(value: Any) -> tuple[str, Any]:
    """How a value was written: its type and (for strings, stripped) value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return ("str", value.strip())
    return (type(value).__name__, value)


def _name(key: Any, spellings: dict, all_str: bool) -> Any:
    """Name a key group: its one spelling, else the canonical form of the key."""
    if len(spellings) == 1:
        return next(iter(spellings))[1]
    if isinstance(key, str):
        return key
    return repr(key) if (all_str and isinstance(key, float)) else (str(key) if all_str else key)


class Encoded:
    """Values coded by key: ``codes`` (N,) into ``names`` / ``keys`` (first appearance)."""

    __slots__ = ("codes", "keys", "names")

    def __init__(self, codes: np.ndarray, keys: list, names: list):
        self.codes = codes
        self.keys = keys
        self.names = names


_HOMOGENEOUS = {"string", "integer", "floating", "boolean"}


def encode_values(values: pd.Series, key: Callable[[Any], Any]) -> Encoded:
    """Code ``values`` (no missing values) by ``key``; names per :func:`_name`.

    Homogeneous columns (all strings, all ints, ...) are factorized first and keyed per
    distinct value (all-string ids: one vectorized strip); mixed columns are keyed value by
    value (Python treats ``1 == 1.0 == True`` as equal, so a raw factorize would merge them
    before the key is taken).
    """
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "string" and key is id_key:  # the common case, vectorized: names = keys
        raw_codes, raw = pd.factorize(values, sort=False)
        stripped = pd.Index(raw).str.strip()
        key_codes, uniq = pd.factorize(stripped, sort=False)
        names = uniq.to_numpy(dtype=object).tolist()
        codes = np.asarray(key_codes, dtype=np.int64)[np.asarray(raw_codes, dtype=np.int64)]
        return Encoded(codes, names, names)
    if kind in _HOMOGENEOUS:
        raw_codes, raw = pd.factorize(values, sort=False)
        raw_values = pd.Index(raw).to_numpy(dtype=object).tolist()
    else:
        raw_values = values.to_numpy(dtype=object).tolist()
        raw_codes = np.arange(len(raw_values))
    raw_keys = [key(v) for v in raw_values]
    # group raw values by key, in order of first appearance of the key
    key_codes, uniq = pd.factorize(pd.Index(raw_keys, dtype=object), sort=False)
    spellings: list[dict] = [dict() for _ in range(len(uniq))]
    all_str = [True] * len(uniq)
    for code, v in zip(key_codes.tolist(), raw_values, strict=True):
        sp = _spelling(v)
        spellings[code].setdefault(sp, None)
        if sp[0] != "str":
            all_str[code] = False
    keys = list(uniq)
    names = [_name(k, sp, a) for k, sp, a in zip(keys, spellings, all_str, strict=True)]
    codes = np.asarray(key_codes, dtype=np.int64)[np.asarray(raw_codes, dtype=np.int64)]
    return Encoded(codes, keys, names)


def key_index(values: Iterable[Any], key: Callable[[Any], Any]) -> pd.Index:
    """Return the keys of ``values`` as an object Index (for lookups by key)."""
    idx = values if isinstance(values, pd.Index) else pd.Index(values)
    if key is id_key:  # vectorized for the common id types
        kind = pd.api.types.infer_dtype(idx, skipna=False)
        if kind == "string":
            return pd.Index(idx.str.strip().to_numpy(dtype=object), dtype=object)
        if kind == "integer":
            return pd.Index(idx.astype(str).to_numpy(dtype=object), dtype=object)
    kind = pd.api.types.infer_dtype(idx, skipna=False)
    if kind in _HOMOGENEOUS:  # key each distinct value once
        codes, uniq = pd.factorize(idx, sort=False)
        keys = np.empty(len(uniq), dtype=object)
        keys[:] = [key(v) for v in pd.Index(uniq).to_numpy(dtype=object).tolist()]
        return pd.Index(keys[codes], dtype=object)
    return pd.Index([key(v) for v in idx.to_numpy(dtype=object).tolist()], dtype=object)
