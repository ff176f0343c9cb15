"""Task features on their way to a classifier: standardized in float64, then cast.

The models run in float32 (JAX's default). Casting raw features first loses them: a column
``x + 1.7e9`` has a float32 spacing of 128 and becomes constant; ``x * 1e20`` overflows when
its variance is taken. So the data layer centres and scales every column in float64, with
the statistics of the training features, and only then casts to float32
(:func:`crowdzoo.models.core.crowd_data`). New items for ``Fit.predict_proba`` go through
the same float64 transform with the same statistics, so training and prediction agree.

A column that is constant over the training tasks carries no information: it is mapped to
0 (scale 0 marks it) and :class:`ConstantFeatureWarning` is raised when a model that learns
from features is fitted.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ConstantFeatureWarning", "feature_scaling", "standardize_features"]


class ConstantFeatureWarning(UserWarning):
    """A feature column is constant over the training tasks (it carries no information)."""


def feature_scaling(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of ``x`` (T, D), computed in float64.

    Overflow-safe (each column is divided by its largest magnitude first, so ``x * 1e300``
    works). A constant column has scale exactly 0.

    Returns
    -------
    center, scale : float64 arrays (D,)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (n_tasks, D) array, got shape {x.shape}")
    big = np.abs(x).max(axis=0)
    big = np.where(big > 0, big, 1.0)
    unit = x / big
    center_unit = unit.mean(axis=0)
    dev = unit - center_unit
    constant = np.all(x == x[:1], axis=0)
    scale = np.where(constant, 0.0, np.sqrt((dev**2).mean(axis=0)) * big)
    return center_unit * big, scale


def standardize_features(x: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x - center) / scale`` in float64; columns with scale 0 become exactly 0."""
    x = np.asarray(x, dtype=np.float64)
    safe = np.where(scale > 0, scale, 1.0)
    # (x - c) / s, computed as x/s - c/s when x - c would overflow
    with np.errstate(over="ignore", invalid="ignore"):
        z = (x - center) / safe
        bad = ~np.isfinite(z)
        if bad.any():
            z = np.where(bad, x / safe - center / safe, z)
    return np.where(scale > 0, z, 0.0)
