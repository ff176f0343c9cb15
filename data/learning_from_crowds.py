"""Crowds for the experiments of Xu et al., Data Difficulty Specified Crowdsourcing.

Shared by ``benchmarks/learning_from_crowds.py`` and ``notebooks/learning_from_crowds.ipynb``,
so the benchmark's tables and the notebook's small runs draw their crowds the same way.

* :func:`gaussian_mixture` -- their 2-D mixture: means (1, 1) and (-1, -1), unit variance.
* :func:`difficulty_crowd` -- experts label by their equations (1)-(2):
  ``alpha_ij = sigmoid(lambda1_j (p_i - 1/2)^2)``, ``beta_ij = sigmoid(lambda2_j (p_i - 1/2)^2)``
  with ``lambda = 4 logit(best-case reliability)``, so an expert is at chance on items with
  ``p_i = 1/2`` and at its stated sensitivity/specificity on items with ``p_i`` = 0 or 1.
  ``p_i`` is the true boundary's probability (mixture) or a pretrained classifier's
  (the "structural" image crowd).
* :func:`flip_crowd` -- the "non-structural" crowd: expert ``j`` flips each label with
  probability ``1 / (3 + k_j)``, ``k_j`` uniform on {0, ..., 5} (:func:`nonstructural_error_rates`).
* :func:`digits_task` -- the image experiment on scikit-learn's bundled digits (no download):
  the binary task "digit >= 5", a stratified train/test split and a pretrained classifier's
  out-of-fold ``Pr(z = 1 | x)`` for the structural crowd. Needs scikit-learn.
* :func:`to_annotations` -- a (items x experts) label matrix and a feature matrix as
  :class:`~crowdzoo.data.Annotations` (item ids carry no information about the labels).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["SENSITIVITY", "SPECIFICITY", "DigitsTask", "difficulty_crowd", "digits_task",
           "flip_crowd", "gaussian_mixture", "mixture_boundary_probability",
           "nonstructural_error_rates", "to_annotations"]

#: Best-case sensitivities and specificities of Xu et al.'s five experts.
SENSITIVITY = np.array([0.8, 0.6, 0.6, 0.7, 0.6])
SPECIFICITY = np.array([0.6, 0.7, 0.6, 0.7, 0.7])


def _rows(mask, noun: str = "row") -> str:
    from .annotations import _listing

    return _listing(np.flatnonzero(mask), noun)


def _check_classes(z) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim != 1:
        raise ValueError(f"z must be a 1-D array of classes, got shape {z.shape}")
    bad = ~np.isin(z, (0, 1))
    if bad.any():
        raise ValueError(f"z must hold the classes 0 and 1; not so in {_rows(bad)}")
    return z.astype(int)


def _check_probabilities(name, v, low_open=False, high_open=False, noun="row") -> np.ndarray:
    v = np.asarray(v, float)
    bad = ~np.isfinite(v) | (v <= 0 if low_open else v < 0) | (v >= 1 if high_open else v > 1)
    if bad.any():
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}; not so in {_rows(bad.ravel(), noun)}")
    return v


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _logit(v):
    return np.log(v / (1.0 - v))


def gaussian_mixture(n: int, rng: np.random.Generator):
    """``n`` points of the mixture and their classes: ``x`` (n, 2), ``z`` (n,) in {0, 1}.

    ``Pr(z = 1 | x) = sigmoid(2 (x_1 + x_2))``; the Bayes-optimal rule ``sign(x_1 + x_2)`` is
    right with probability ``Phi(sqrt 2) = 0.9214``.
    """
    z = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + np.where(z[:, None] == 1, 1.0, -1.0)
    return x, z


def mixture_boundary_probability(x: np.ndarray) -> np.ndarray:
    """Return the mixture's true ``Pr(z = 1 | x) = sigmoid(2 (x_1 + x_2))``."""
    return _sigmoid(2.0 * (x[:, 0] + x[:, 1]))


def difficulty_crowd(p, z, rng: np.random.Generator, sensitivity=SENSITIVITY,
                     specificity=SPECIFICITY) -> np.ndarray:
    """Labels (items x experts) from Xu et al.'s difficulty model, equations (1)-(2).

    Parameters
    ----------
    p : (n,) array
        Each item's ``Pr(z = 1 | x)`` that sets its difficulty ``(p - 1/2)^2``.
    z : (n,) array of {0, 1}
        True classes.
    sensitivity, specificity : (J,) arrays
        Each expert's reliability on the easiest items; ``lambda = 4 logit(.)``.
    """
    p, z = _check_probabilities("p", p), _check_classes(z)
    if p.shape != z.shape:
        raise ValueError(f"p has shape {p.shape} but z has shape {z.shape}")
    sens = _check_probabilities("sensitivity", np.atleast_1d(sensitivity), True, True,
                                "expert")
    spec = _check_probabilities("specificity", np.atleast_1d(specificity), True, True,
                                "expert")
    if sens.shape != spec.shape or sens.ndim != 1:
        raise ValueError(f"sensitivity {sens.shape} and specificity {spec.shape} must be 1-D "
                         f"arrays of the same length (one entry per expert)")
    d = ((p - 0.5) ** 2)[:, None]
    alpha = _sigmoid(4 * _logit(sens)[None] * d)
    beta = _sigmoid(4 * _logit(spec)[None] * d)
    u = rng.random(alpha.shape)
    return np.where(z[:, None] == 1, u < alpha, u >= beta).astype(int)


def nonstructural_error_rates(n_experts: int, rng: np.random.Generator) -> np.ndarray:
    """``1 / (3 + k_j)`` with ``k_j`` uniform on {0, ..., 5}: error rates from 1/3 to 1/8."""
    if int(n_experts) != n_experts or n_experts < 1:
        raise ValueError(f"n_experts must be a positive integer, got {n_experts!r}")
    return 1.0 / (3.0 + rng.integers(0, 6, int(n_experts)))


def flip_crowd(z, error_rates, rng: np.random.Generator) -> np.ndarray:
    """Labels (items x experts): expert ``j`` flips every item's class with ``error_rates[j]``.

    The errors do not depend on the item ("non-structural" noise).
    """
    z = _check_classes(z)
    err = _check_probabilities("error_rates", np.atleast_1d(error_rates), noun="expert")
    flip = rng.random((len(z), len(err))) < err[None]
    return np.where(flip, 1 - z[:, None], z[:, None]).astype(int)


def to_annotations(x, labels, classes=(0, 1), prefix: str = "item"):
    """Wide labels (items x experts) and features (items x D) as :class:`Annotations`."""
    from .annotations import Annotations

    x, labels = np.asarray(x, float), np.asarray(labels)
    if len(x) != len(labels):
        raise ValueError(f"{len(x)} feature rows but {len(labels)} label rows")
    ids = [f"{prefix}{i:05d}" for i in range(len(x))]
    wide = pd.DataFrame(labels, index=ids, columns=[f"expert{j}" for j in range(labels.shape[1])])
    feats = pd.DataFrame(x, index=ids, columns=[f"x{d}" for d in range(x.shape[1])])
    return Annotations.from_wide(wide, features=feats, classes=list(classes))


class DigitsTask(NamedTuple):
    """The binary digits task: train/test images, classes, and the pretrained probability.

    Attributes
    ----------
    x_train, x_test : arrays (n, D)
        Pixel intensities scaled to [0, 1]; the D <= 64 pixels that are not blank in every
        training image.
    z_train, z_test : arrays of {0, 1}
        1 if the digit is 5-9, 0 if 0-4.
    pretrained_p : array (n_train,)
        A pretrained classifier's ``Pr(z = 1 | x)`` for each training image: L2-regularized
        logistic regression on the true classes, predicted out of fold (5 folds), so no image's
        difficulty comes from a model that saw it.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    z_train: np.ndarray
    z_test: np.ndarray
    pretrained_p: np.ndarray


def digits_task(seed: int = 0, n_train: int = 1200) -> DigitsTask:
    """scikit-learn's 1,797 8x8 digits as the binary task "digit >= 5" (Xu et al.'s image setup).

    The images ship inside scikit-learn, so nothing is downloaded. A stratified split puts
    ``n_train`` images in the crowd-labelled training set and the rest in the test set.
    A linear "pretrained" model is used for the difficulty on purpose: its uncertainty marks
    the images that are ambiguous to a simple model (the structural crowd errs on them),
    while an MLP can still learn the task (about 95% with true labels).
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict, train_test_split
    except ImportError as err:  # pragma: no cover - scikit-learn comes with the test extra
        raise ImportError("the digits experiment needs scikit-learn: pip install scikit-learn"
                          ) from err
    digits = load_digits()
    x = digits.data / 16.0
    z = (digits.target >= 5).astype(int)
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or not (
            10 <= n_train <= len(x) - 10):
        raise ValueError(f"n_train must be between 10 and {len(x) - 10}, got {n_train}")
    x_tr, x_te, z_tr, z_te = train_test_split(x, z, train_size=n_train, stratify=z,
                                              random_state=seed)
    # pixels blank in every training image carry nothing (and would raise
    # ConstantFeatureWarning): drop them from both splits
    used = ~np.all(x_tr == x_tr[:1], axis=0)
    x_tr, x_te = x_tr[:, used], x_te[:, used]
    p = cross_val_predict(LogisticRegression(C=1.0, max_iter=5000), x_tr, z_tr, cv=5,
                          method="predict_proba")[:, 1]
    return DigitsTask(x_tr, x_te, z_tr, z_te, p)
