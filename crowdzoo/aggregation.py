"""Crowd-Kit-compatible estimators on top of the zoo: switching is one import.

>>> from crowdzoo.aggregation import DawidSkene      # was: from crowdkit.aggregation import ...
>>> labels = DawidSkene(n_iter=100).fit_predict(df)  # doctest: +SKIP

Each estimator takes the constructor parameters and defaults of Crowd-Kit 1.4, has its
methods (``fit``, ``fit_predict``, ``fit_predict_proba``) and sets its fitted attributes
(``labels_``, ``probas_``, ``priors_``, ``errors_``, ``skills_``, ``alphas_``, ``betas_``,
``loss_history_``) with the same pandas types, index names, column names, dtypes and row
order as Crowd-Kit. On top of that every estimator

* keeps the underlying :class:`crowdzoo.Fit` as ``fit_`` (``est.fit_.to_arviz()``);
* takes ``method="map" | "svi" | "nuts"`` (keyword only; ``seed``, ``fit_options`` too);
* raises the clear errors of :class:`crowdzoo.Annotations` on bad input.

How the estimators map to the zoo
---------------------------------
Crowd-Kit's estimators are maximum-likelihood EM, so they map to zoo models with *flat*
priors: ``DawidSkene(confusion_prior=1.0, class_prior=1.0)``, ``OneCoin(accuracy_prior=(1, 1),
class_prior=1.0)``; ``GLAD`` is the zoo's GLAD with Crowd-Kit's priors (``alpha ~ N(1, 1)``,
``log beta ~ N(1, 1)`` unless given). ``n_iter`` is the cap on EM iterations (E-step +
M-step, counted as Crowd-Kit counts them). ``tol`` is compared with the change of the log
posterior *per answer* between iterations — the scale of Crowd-Kit's Dawid-Skene loss (its
ELBO per answer). Unlike Crowd-Kit (``new_loss - loss < tol``) the change is taken in absolute
value; the zoo's EM objective is monotone, so this only differs where Crowd-Kit's GLAD loss
(the M-step objective Q, which is not monotone) goes down and stops it early. Reaching
``n_iter`` is silent, as in Crowd-Kit (``fit_.diagnostics["converged"]`` says whether ``tol``
was met).

Differences that remain, by design:

* ``probas_`` is the E-step at the *final* parameters. Crowd-Kit returns the E-step that was
  computed before its last M-step (one iteration stale); after convergence they agree.
* ``loss_history_`` is the zoo's objective per answer and per iteration: the log-likelihood
  for Dawid-Skene and one-coin (flat priors), the log posterior for GLAD. Crowd-Kit reports
  an ELBO (Dawid-Skene) or Q / (N K) (GLAD).
* GLAD's ``betas_`` holds ``log beta`` per task, exactly as Crowd-Kit's does (its docstring
  says beta, its code optimizes and returns ``log beta``); ``fit_.tasks()`` gives ``beta``
  and ``difficulty = 1 / beta``.
* Empty input raises an error (Crowd-Kit returns empty frames).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .data import Annotations
from .inference import fit as _fit
from .inference.diagnostics import ConvergenceWarning
from .models import GLAD as _GLADModel
from .models import DawidSkene as _DawidSkeneModel
from .models import MajorityVote as _MajorityVoteModel
from .models import OneCoin as _OneCoinModel

__all__ = ["DawidSkene", "GLAD", "MajorityVote", "OneCoinDawidSkene"]

_EPS = 1e-10  # Crowd-Kit's clip of error-matrix entries
_COLS = ["task", "worker", "label"]


def _answered_gold(true_labels, data: pd.DataFrame):
    """``true_labels`` as a Series, keeping only tasks that have answers (as Crowd-Kit)."""
    if true_labels is None:
        return None
    gold = pd.Series(true_labels)
    return gold[gold.index.isin(pd.unique(data["task"]))]


def _frame(data) -> pd.DataFrame:
    """The answers as a frame; bad input gets the errors of :class:`Annotations`."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame with columns task, worker, label; "
                        f"got {type(data).__name__}")
    Annotations.from_frame(data)  # validates: missing columns, NaN, empty, single class...
    return data[_COLS]


def _label_order(data: pd.DataFrame) -> pd.Index:
    """Crowd-Kit's class order: first appearance in the answers, with the label dtype."""
    return pd.Index(pd.unique(data["label"]), dtype=data["label"].dtype)


def _positions(classes: pd.Index, order: pd.Index) -> np.ndarray:
    pos = classes.get_indexer(order)
    if (pos < 0).any():  # pragma: no cover - both come from the same values
        raise RuntimeError("class order mismatch")
    return pos


class _Estimator:
    """Shared machinery: constructor bookkeeping, the zoo fit, the ``fit_predict*`` trio."""

    _param_names: tuple[str, ...] = ()

    def __init__(self, method: str = "map", seed: int = 0, fit_options: dict | None = None):
        self.method = method
        self.seed = seed
        self.fit_options = fit_options

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names)
        return f"{type(self).__name__}({inner})"

    def _run(self, model, annotations):
        """Fit a zoo model by ``self.method``; the EM cap is silent, as in Crowd-Kit."""
        opts = dict(self.fit_options or {})
        if self.method == "map" and hasattr(self, "n_iter"):
            if int(self.n_iter) < 1:
                raise ValueError(f"n_iter must be >= 1, got {self.n_iter}")
            opts.setdefault("max_iter", int(self.n_iter))
            # Crowd-Kit's tol <= 0 (e.g. -inf) means "run all n_iter iterations"
            opts.setdefault("tol", float(self.tol) if float(self.tol) > 0 else 1e-30)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = _fit(model, annotations, method=self.method, seed=self.seed, **opts)
        self.fit_ = result
        return result

    def _loss_history(self, result, subtract_prior: bool) -> list[float]:
        """The zoo objective per answer and iteration (log-likelihood for flat priors)."""
        hist = result.loss_history
        if hist is None:
            return []
        hist = np.asarray(hist, dtype=np.float64)
        if subtract_prior and result.params:
            import jax.numpy as jnp

            from .inference.map import log_prior

            # flat Dirichlet / Beta priors: log p(params) is the same constant everywhere
            const = float(log_prior(result.model, {k: jnp.asarray(v) for k, v in
                                                   result.params.items()}, result.data))
            hist = hist - const
        return [float(v) for v in hist / max(result.annotations.n_answers, 1)]

    def fit_predict(self, data, *args, **kwargs) -> pd.Series:
        """Fit and return ``labels_`` (the most probable label of every task)."""
        return self.fit(data, *args, **kwargs).labels_

    def fit_predict_proba(self, data, *args, **kwargs) -> pd.DataFrame:
        """Fit and return ``probas_`` (tasks x labels, rows sum to one)."""
        return self.fit(data, *args, **kwargs).probas_


def _named(series: pd.Series, name: str) -> pd.Series:
    series = series.copy()
    series.name = name
    return series


# ----------------------------------------------------------------------------- MajorityVote
class MajorityVote(_Estimator):
    """Majority vote, optionally weighted by worker skills (Crowd-Kit's ``MajorityVote``).

    Parameters
    ----------
    default_skill : float, optional
        Weight of workers without a skill when ``on_missing_skill="value"``.
    on_missing_skill : {"error", "ignore", "value"}
        What to do with answers of workers missing from ``skills``.
    method, seed, fit_options
        The zoo fit kept as ``fit_`` (majority vote is closed-form: ``"map"`` only).

    Attributes
    ----------
    labels_ : pandas.Series
        Most voted label per task (``agg_label``; ties: the first label in column order).
    probas_ : pandas.DataFrame
        Vote shares (weighted by skill when given), tasks x labels.
    skills_ : pandas.Series
        Each worker's agreement with ``labels_`` (``skill``).
    fit_ : crowdzoo.Fit
        The zoo's majority-vote fit (ties split evenly there).
    """

    _param_names = ("default_skill", "on_missing_skill")

    def __init__(self, default_skill: float | None = None, on_missing_skill: str = "error", *,
                 method: str = "map", seed: int = 0, fit_options: dict | None = None):
        super().__init__(method, seed, fit_options)
        self.default_skill = default_skill
        self.on_missing_skill = on_missing_skill

    def _weights(self, data: pd.DataFrame, skills: pd.Series) -> pd.DataFrame:
        data = data.join(pd.Series(skills).rename("skill"), on="worker")
        if self.on_missing_skill != "value" and self.default_skill is not None:
            raise ValueError('default_skill is used but on_missing_skill is not "value"')
        missing = data["skill"].isna()
        if self.on_missing_skill == "error":
            if missing.any():
                workers = pd.unique(data.loc[missing, "worker"])[:5].tolist()
                raise ValueError(f"skill is missing for {int(missing.sum())} answers (workers "
                                 f"e.g. {workers}); give every worker a skill or change "
                                 f"on_missing_skill")
        elif self.on_missing_skill == "ignore":
            kept = data[~missing]
            lost = pd.Index(pd.unique(data["task"])).difference(pd.unique(kept["task"]))
            if len(lost):
                raise ValueError(f"{len(lost)} tasks have no worker with a known skill, e.g. "
                                 f"{lost[:5].tolist()}")
            data = kept
        elif self.on_missing_skill == "value":
            if self.default_skill is None:
                raise ValueError('default_skill must be given when on_missing_skill="value"')
            data = data.assign(skill=data["skill"].fillna(self.default_skill))
        else:
            raise ValueError(f"unknown on_missing_skill {self.on_missing_skill!r}; choose "
                             f"'error', 'ignore' or 'value'")
        return data

    def fit(self, data: pd.DataFrame, skills: pd.Series | None = None) -> MajorityVote:
        """Count (or skill-weight) the votes of every task.

        Parameters
        ----------
        data : pandas.DataFrame
            Answers with columns ``task``, ``worker``, ``label``.
        skills : pandas.Series, optional
            Worker weights indexed by worker.

        Returns
        -------
        MajorityVote
            ``self``, fitted.
        """
        data = _frame(data)
        if skills is None:
            scores = data[["task", "label"]].value_counts()
        else:
            data = self._weights(data, skills)
            scores = data.groupby(["task", "label"])["skill"].sum()
        counts = scores.unstack("label", fill_value=0)
        self.probas_ = counts.div(counts.sum(axis=1), axis=0)
        self.labels_ = _named(self.probas_.idxmax(axis="columns"), "agg_label")
        # each worker's agreement with the aggregate, repeated identical answers counted once
        acc = data[_COLS].join(self.labels_.rename("true_label"), on="task")
        acc = acc[acc["true_label"].notna()]
        acc = acc.assign(score=(acc["label"] == acc["true_label"]).astype(float))
        acc = acc.sort_values("score").drop_duplicates(_COLS, keep="last")
        self.skills_ = _named(acc.groupby("worker")["score"].mean(), "skill")
        self._run(_MajorityVoteModel(), Annotations.from_frame(data))
        return self

    def fit_predict(self, data, skills=None) -> pd.Series:  # noqa: D102
        return self.fit(data, skills).labels_

    def fit_predict_proba(self, data, skills=None) -> pd.DataFrame:  # noqa: D102
        return self.fit(data, skills).probas_


# ----------------------------------------------------------------------------- Dawid-Skene
def _initial_error_array(ie: pd.DataFrame, ann: Annotations):
    """Crowd-Kit's ``initial_error`` frame -> ``(W, K, K)`` ``[worker, true, label]`` + a mask.

    The frame is indexed by ``(worker, label)`` (the observed label) with one column per true
    label, as Crowd-Kit's ``errors_``. Workers absent from the data are ignored, as in
    Crowd-Kit; labels or columns that are not classes are errors.
    """
    if not isinstance(ie, pd.DataFrame):
        raise TypeError(f"initial_error must be a pandas DataFrame, got {type(ie).__name__}")
    if ie.index.nlevels != 2 or list(ie.index.names) != ["worker", "label"]:
        raise ValueError(f"the index of initial_error must be ['worker', 'label'], got "
                         f"{list(ie.index.names)}")
    W, K = ann.n_workers, ann.n_classes
    classes = [str(c) for c in ann.classes]
    cols = [str(c) for c in ie.columns]
    unknown_cols = sorted(set(cols) - set(classes))
    if unknown_cols:
        raise ValueError(f"initial_error has columns that are not classes: {unknown_cols}")
    out = np.zeros((W, K, K), np.float32)
    mask = np.zeros(W, bool)
    wpos = {str(w): i for i, w in enumerate(ann.worker_ids)}
    cpos = {c: i for i, c in enumerate(classes)}
    bad = []
    for (worker, label), row in ie.iterrows():
        w, lab = wpos.get(str(worker)), cpos.get(str(label))
        if lab is None:
            bad.append((worker, label))
            continue
        if w is None:
            continue
        mask[w] = True
        for col, value in zip(cols, row.to_numpy(dtype=float), strict=True):
            out[w, cpos[col], lab] = value  # Crowd-Kit: errors[worker, observed][true]
    if bad:
        raise ValueError(f"initial_error has labels that are not classes: {bad[:5]}")
    return out, mask


class DawidSkene(_Estimator):
    """Dawid-Skene by EM (maximum likelihood: the zoo's model with flat priors).

    Parameters
    ----------
    n_iter : int
        Most EM iterations.
    tol : float
        Stop when the log-likelihood per answer changes by less than ``tol``.
    initial_error_strategy : {None, "assign", "addition"}
        How ``initial_error`` enters the first M-step (see Crowd-Kit and
        :class:`crowdzoo.models.DawidSkene`).
    method : {"map", "svi", "nuts"}
        Zoo inference method (keyword only). With draws, ``probas_`` is the posterior mean
        of the label posterior and the parameters are posterior means.
    seed : int
        Seed of SVI / NUTS.
    fit_options : dict, optional
        Extra options of :func:`crowdzoo.fit` for the method.

    Attributes
    ----------
    labels_ : pandas.Series
        Most probable label per task (``agg_label``).
    probas_ : pandas.DataFrame
        ``p(z_task = label | answers)``, tasks x labels.
    priors_ : pandas.Series
        Class frequencies (``prior``), indexed by ``label``.
    errors_ : pandas.DataFrame
        Confusion matrices: rows ``(worker, observed label)``, columns the true label.
    loss_history_ : list of float
        Log-likelihood per answer at each EM iteration.
    fit_ : crowdzoo.Fit
        The zoo fit.
    """

    _param_names = ("n_iter", "tol", "initial_error_strategy")

    def __init__(self, n_iter: int = 100, tol: float = 1e-5,
                 initial_error_strategy: str | None = None, *, method: str = "map",
                 seed: int = 0, fit_options: dict | None = None):
        super().__init__(method, seed, fit_options)
        self.n_iter = n_iter
        self.tol = tol
        self.initial_error_strategy = initial_error_strategy

    def _model(self, initial_error, ann: Annotations):
        strategy = self.initial_error_strategy
        if strategy is None or initial_error is None:  # Crowd-Kit ignores it then
            return _DawidSkeneModel(confusion_prior=1.0, class_prior=1.0, eps=_EPS)
        given, mask = _initial_error_array(initial_error, ann)
        if strategy == "assign" and not mask.all():
            missing = list(ann.worker_ids[~mask][:5])
            raise ValueError(f"initial_error_strategy='assign' needs a matrix for every worker; "
                             f"{int((~mask).sum())} missing, e.g. {missing}")
        return _DawidSkeneModel(confusion_prior=1.0, class_prior=1.0, eps=_EPS,
                                initial_error=given, initial_error_strategy=strategy)

    def _outputs(self, data: pd.DataFrame, result) -> tuple[pd.Index, np.ndarray]:
        ann = result.annotations
        order = _label_order(data)
        pos = _positions(ann.classes, order)
        post = result.task_posterior().to_numpy()[:, pos]
        self.probas_ = pd.DataFrame(post, index=pd.Index(ann.task_ids, name="task"),
                                    columns=pd.Index(order, name="label"))
        self.labels_ = _named(self.probas_.idxmax(axis="columns"), "agg_label")
        self.priors_ = pd.Series(np.asarray(result.params["pi"], np.float64)[pos],
                                 index=pd.Index(order, name="label"), name="prior")
        return order, pos

    @staticmethod
    def _pairs(data: pd.DataFrame, ann: Annotations):
        """Observed (worker, label) pairs in Crowd-Kit's row order, and their codes."""
        pairs = data[["worker", "label"]].drop_duplicates()
        w = ann.worker_ids.get_indexer(pairs["worker"])
        lab = ann.classes.get_indexer(pairs["label"])
        return pd.MultiIndex.from_frame(pairs), w, lab

    def fit(self, data: pd.DataFrame, true_labels: pd.Series | None = None,
            initial_error: pd.DataFrame | None = None) -> DawidSkene:
        """Fit by EM.

        Parameters
        ----------
        data : pandas.DataFrame
            Answers with columns ``task``, ``worker``, ``label``.
        true_labels : pandas.Series, optional
            Known labels indexed by task; they clamp those tasks' true label (tasks without
            answers are ignored, as in Crowd-Kit).
        initial_error : pandas.DataFrame, optional
            Worker error matrices from history, indexed by ``(worker, label)`` with a column
            per true label; used with ``initial_error_strategy``.

        Returns
        -------
        DawidSkene
            ``self``, fitted.
        """
        data = _frame(data)
        gold = _answered_gold(true_labels, data)
        ann = Annotations.from_frame(data, gold=gold)
        result = self._run(self._model(initial_error, ann), ann)
        order, _ = self._outputs(data, result)
        index, w, lab = self._pairs(data, ann)
        conf = np.asarray(result.params["confusion"], np.float64)  # [worker, true, label]
        pos = _positions(ann.classes, order)
        self.errors_ = pd.DataFrame(conf[w[:, None], pos[None, :], lab[:, None]], index=index,
                                    columns=pd.Index(order))
        self.loss_history_ = self._loss_history(result, subtract_prior=True)
        return self

    def fit_predict(self, data, true_labels=None, initial_error=None) -> pd.Series:  # noqa: D102
        return self.fit(data, true_labels, initial_error).labels_

    def fit_predict_proba(self, data, true_labels=None,  # noqa: D102
                          initial_error=None) -> pd.DataFrame:
        return self.fit(data, true_labels, initial_error).probas_


class OneCoinDawidSkene(DawidSkene):
    """One-coin Dawid-Skene by EM (the zoo's ``OneCoin`` with flat priors).

    Same parameters as :class:`DawidSkene` (``initial_error_strategy`` is accepted and
    unused, as in Crowd-Kit). Sets ``labels_``, ``probas_``, ``priors_``, ``errors_``,
    ``loss_history_`` and ``skills_`` (each worker's accuracy, ``skill``).
    """

    def fit(self, data: pd.DataFrame) -> OneCoinDawidSkene:  # type: ignore[override]
        """Fit by EM.

        Parameters
        ----------
        data : pandas.DataFrame
            Answers with columns ``task``, ``worker``, ``label``.

        Returns
        -------
        OneCoinDawidSkene
            ``self``, fitted.
        """
        data = _frame(data)
        ann = Annotations.from_frame(data)
        model = _OneCoinModel(accuracy_prior=(1.0, 1.0), class_prior=1.0, eps=_EPS)
        result = self._run(model, ann)
        order, pos = self._outputs(data, result)
        skill = np.asarray(result.params["accuracy"], np.float64)
        self.skills_ = pd.Series(skill, index=pd.Index(ann.worker_ids, name="worker"),
                                 name="skill")
        index, w, lab = self._pairs(data, ann)
        K = len(order)
        hit = lab[:, None] == pos[None, :]
        err = np.where(hit, skill[w][:, None], ((1.0 - skill[w]) / (K - 1))[:, None])
        self.errors_ = pd.DataFrame(np.clip(err, _EPS, 1 - _EPS), index=index,
                                    columns=pd.Index(order))
        self.loss_history_ = self._loss_history(result, subtract_prior=True)
        return self

    def fit_predict(self, data) -> pd.Series:  # type: ignore[override]  # noqa: D102
        return self.fit(data).labels_

    def fit_predict_proba(self, data) -> pd.DataFrame:  # type: ignore[override]  # noqa: D102
        return self.fit(data).probas_


# ----------------------------------------------------------------------------- GLAD
def _align_by_ids(value, ids: pd.Index, what: str):
    """A dict / Series keyed by the user's ids -> float array in the order of ``ids``.

    ``None`` means the default (1.0); a number is passed through. Keys are matched as given,
    then by their ``str()`` form.
    """
    if value is None:
        return 1.0
    if not isinstance(value, (dict, pd.Series)):
        return value
    series = pd.Series(value) if isinstance(value, dict) else value
    by_str = {str(k): float(v) for k, v in zip(series.index, series.to_numpy(), strict=True)}
    out = np.empty(len(ids), np.float64)
    missing = []
    for pos, key in enumerate(ids):
        v = by_str.get(str(key))
        if v is None:
            missing.append(key)
        else:
            out[pos] = v
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        raise ValueError(f"{what} has no value for {len(missing)} of the data's ids, e.g. {shown}")
    if not np.isfinite(out).all():
        raise ValueError(f"{what} has non-finite values")
    return out


class GLAD(_Estimator):
    """GLAD by EM with a gradient M-step (the zoo's :class:`crowdzoo.models.GLAD`).

    Parameters
    ----------
    n_iter : int
        Most EM iterations.
    tol : float
        Stop when the log posterior per answer changes by less than ``tol``.
    silent : bool
        Accepted for compatibility (the zoo's EM runs jitted; there is no per-iteration bar).
    labels_priors : pandas.Series, optional
        Fixed class probabilities indexed by label (uniform by default).
    alphas_priors_mean : pandas.Series, optional
        Prior mean of each worker's ability, indexed by worker (1 by default).
    betas_priors_mean : pandas.Series, optional
        Prior mean of each task's ``log beta``, indexed by task (1 by default).
    m_step_max_iter : int
        Most L-BFGS steps per M-step (Crowd-Kit: conjugate-gradient steps).
    m_step_tol : float
        Gradient tolerance of the M-step.
    method, seed, fit_options
        As for :class:`DawidSkene`.

    Attributes
    ----------
    labels_ : pandas.Series
        Most probable label per task (``agg_label``).
    probas_ : pandas.DataFrame
        Label posterior, tasks x labels (sorted, as Crowd-Kit's; columns named ``variable``).
    alphas_ : pandas.Series
        Worker abilities (``alpha``), indexed by worker.
    betas_ : pandas.Series
        ``log beta`` per task (``beta``, on Crowd-Kit's log scale), indexed by task.
    priors_ : pandas.Series
        The fixed class probabilities.
    loss_history_ : list of float
        Log posterior per answer at each EM iteration.
    fit_ : crowdzoo.Fit
        The zoo fit (``fit_.tasks()`` has ``beta`` and ``difficulty``).
    """

    _param_names = ("n_iter", "tol", "silent", "labels_priors", "alphas_priors_mean",
                    "betas_priors_mean", "m_step_max_iter", "m_step_tol")

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, silent: bool = True,
                 labels_priors: pd.Series | None = None,
                 alphas_priors_mean: pd.Series | None = None,
                 betas_priors_mean: pd.Series | None = None, m_step_max_iter: int = 25,
                 m_step_tol: float = 1e-2, *, method: str = "map", seed: int = 0,
                 fit_options: dict | None = None):
        super().__init__(method, seed, fit_options)
        self.n_iter = n_iter
        self.tol = tol
        self.silent = silent
        self.labels_priors = labels_priors
        self.alphas_priors_mean = alphas_priors_mean
        self.betas_priors_mean = betas_priors_mean
        self.m_step_max_iter = m_step_max_iter
        self.m_step_tol = m_step_tol

    def fit(self, data: pd.DataFrame, true_labels: pd.Series | None = None) -> GLAD:
        """Fit by EM.

        Parameters
        ----------
        data : pandas.DataFrame
            Answers with columns ``task``, ``worker``, ``label``.
        true_labels : pandas.Series, optional
            Known labels indexed by task, which clamp those tasks (a zoo extra: Crowd-Kit's
            GLAD has no gold support).

        Returns
        -------
        GLAD
            ``self``, fitted.
        """
        data = _frame(data)
        gold = _answered_gold(true_labels, data)
        if self.labels_priors is not None:
            priors = pd.Series(self.labels_priors, dtype=np.float64)
            ann = Annotations.from_frame(data, gold=gold, classes=priors.index)
        else:
            order = _label_order(data)
            priors = pd.Series(1.0 / len(order), index=order)
            ann = Annotations.from_frame(data, gold=gold)
        model = _GLADModel(
            labels_priors=_align_by_ids(priors, ann.classes, "labels_priors (keyed by class)"),
            alphas_priors_mean=_align_by_ids(self.alphas_priors_mean, ann.worker_ids,
                                             "alphas_priors_mean (keyed by worker)"),
            betas_priors_mean=_align_by_ids(self.betas_priors_mean, ann.task_ids,
                                            "betas_priors_mean (keyed by task)"),
            m_step_max_iter=self.m_step_max_iter, m_step_tol=self.m_step_tol,
        )
        result = self._run(model, ann)
        probas = result.task_posterior()
        probas = pd.DataFrame(probas.to_numpy(), index=pd.Index(ann.task_ids, name="task"),
                              columns=pd.Index(ann.classes, name="variable"))
        self.probas_ = probas.sort_index().sort_index(axis=1)
        self.labels_ = _named(self.probas_.idxmax(axis=1), "agg_label")
        self.alphas_ = pd.Series(np.asarray(result.params["alpha"], np.float64),
                                 index=pd.Index(ann.worker_ids, name="worker"), name="alpha")
        self.betas_ = pd.Series(np.asarray(result.params["log_beta"], np.float64),
                                index=pd.Index(ann.task_ids, name="task"), name="beta")
        self.priors_ = priors.copy()
        self.loss_history_ = self._loss_history(result, subtract_prior=False)
        return self

    def fit_predict(self, data, true_labels=None) -> pd.Series:  # noqa: D102
        return self.fit(data, true_labels).labels_

    def fit_predict_proba(self, data, true_labels=None) -> pd.DataFrame:  # noqa: D102
        return self.fit(data, true_labels).probas_

