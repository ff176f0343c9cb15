"""Crowd-Kit-compatible estimators on top of the zoo: switching is one import.

>>> from crowdzoo.aggregation import DawidSkene      # was: from crowdkit.aggregation import ...
>>> labels = DawidSkene(n_iter=100).fit_predict(df)  # doctest: +SKIP

The ten classification estimators of Crowd-Kit 1.4: ``MajorityVote``, ``Wawa``,
``ZeroBasedSkill``, ``GoldMajorityVote``, ``MMSR``, ``KOS`` (binary), ``OneCoinDawidSkene``,
``DawidSkene``, ``GLAD`` and ``MACE``. Each takes Crowd-Kit's constructor parameters and
defaults, has its methods (``fit``, ``fit_predict``, ``fit_predict_proba`` / ``predict`` /
``predict_score`` where Crowd-Kit has them) and sets its fitted attributes (``labels_``,
``probas_``, ``priors_``, ``errors_``, ``skills_``, ``alphas_``, ``betas_``,
``loss_history_``, ``scores_``, ``spamming_``, ``thetas_``, ...) with the same pandas types,
index names, column names, dtypes and row order as Crowd-Kit. The vote-based estimators
(Wawa, ZeroBasedSkill, GoldMajorityVote, MMSR, KOS) and MACE are baselines written in NumPy
(vectorized over answers; they are not generative models of the registry — the zoo's MACE
model is ``crowdzoo.models.MACE``). On top of that the four EM estimators (MajorityVote,
OneCoinDawidSkene, DawidSkene, GLAD)

* keeps the underlying :class:`crowdzoo.Fit` as ``fit_`` (``est.fit_.to_arviz()``);
* takes ``method="map" | "svi" | "nuts"`` (keyword only; ``seed``, ``fit_options`` too);
* raises the clear errors of :class:`crowdzoo.Annotations` on bad input.

How the estimators map to the zoo
---------------------------------
Crowd-Kit's estimators are maximum-likelihood EM, so they map to zoo models with *flat*
priors: ``DawidSkene(confusion_prior=1.0, class_prior=1.0)``, ``OneCoin(accuracy_prior=(1, 1),
class_prior=1.0)``; ``GLAD`` is the zoo's GLAD with Crowd-Kit's priors (``alpha ~ N(1, 1)``,
``log beta ~ N(1, 1)`` unless given). ``n_iter`` is the cap on EM iterations (E-step +
M-step, counted as Crowd-Kit counts them); ``n_iter=0`` returns the state right after the
initialisation, as Crowd-Kit does (the majority-vote posterior and one M-step from it for
Dawid-Skene and one-coin; the first E-step at the starting point for GLAD; ``fit_`` is then
``None``: no fit ran). ``tol`` is compared with the change of the log posterior *per answer*
between iterations — the scale of Crowd-Kit's Dawid-Skene loss (its ELBO per answer) — and,
as in Crowd-Kit, it is the only stopping rule (the zoo's own ``crowdzoo.fit`` also waits for
the parameters to stop moving). ``tol <= 0`` runs all ``n_iter`` iterations (Crowd-Kit's
``new_loss - loss < tol`` is then never met; where the zoo's EM reaches an exact fixed point
earlier, the remaining iterations would repeat it, and ``loss_history_`` repeats its last
value up to ``n_iter``). Unlike Crowd-Kit the change is taken in absolute value; the zoo's EM
objective is monotone, so this only differs where Crowd-Kit's GLAD loss (the M-step objective
Q, which is not monotone) goes down and stops it early. Reaching ``n_iter`` is silent, as in
Crowd-Kit (``fit_.diagnostics["converged"]`` says whether ``tol`` was met).

The MAP fits of this layer run in float64 (``jax.enable_x64``), as Crowd-Kit computes: on a
perfectly symmetric crowd (every worker uninformative) the EM fixed point is unstable, and
float32 rounding, amplified over the iterations, would break a symmetry that Crowd-Kit keeps
(its test ``test_dawid_skene_overlap``: the posterior stays at the class frequencies). The
zoo's own ``crowdzoo.fit`` stays in float32.

Bad input: a missing ``task`` / ``worker`` / ``label`` column raises
:class:`MissingColumnError`, which is both our :class:`~crowdzoo.data.AnnotationsError` (a
``ValueError``) and a ``KeyError`` (what Crowd-Kit's callers catch), and names the column.
Empty input gives empty results of Crowd-Kit's types (empty frames, empty float series).

Differences that remain, by design:

* ``probas_`` is the E-step at the *final* parameters. Crowd-Kit returns the E-step that was
  computed before its last M-step (one iteration stale); after convergence they agree.
* ``loss_history_`` is the zoo's objective per answer and per iteration: the log-likelihood
  for Dawid-Skene and one-coin (flat priors), the log posterior for GLAD. Crowd-Kit reports
  an ELBO (Dawid-Skene) or Q / (N K) (GLAD).
* GLAD's ``betas_`` holds ``log beta`` per task, exactly as Crowd-Kit's does (its docstring
  says beta, its code optimizes and returns ``log beta``); ``fit_.tasks()`` gives ``beta``
  and ``difficulty = 1 / beta``.
* ``initial_error`` is validated as Crowd-Kit validates it (index ``(worker, label)``; under
  ``"assign"`` every worker of the data present and, when the values are probabilities, each
  worker's columns summing to one — else ``ValueError``); columns that are not classes are
  ignored, as Crowd-Kit ignores them.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

from .data import Annotations, AnnotationsError
from .inference import fit as _fit
from .inference.diagnostics import ConvergenceWarning
from .models import GLAD as _GLADModel
from .models import DawidSkene as _DawidSkeneModel
from .models import MajorityVote as _MajorityVoteModel
from .models import OneCoin as _OneCoinModel

__all__ = ["DawidSkene", "GLAD", "GoldMajorityVote", "KOS", "MACE", "MMSR", "MajorityVote",
           "MissingColumnError", "OneCoinDawidSkene", "Wawa", "ZeroBasedSkill"]

_EPS = 1e-10  # Crowd-Kit's clip of error-matrix entries
_COLS = ["task", "worker", "label"]


def _answered_gold(true_labels, data: pd.DataFrame):
    """``true_labels`` as a Series, keeping only tasks that have answers (as Crowd-Kit)."""
    if true_labels is None:
        return None
    gold = pd.Series(true_labels)
    return gold[gold.index.isin(pd.unique(data["task"]))]


class MissingColumnError(AnnotationsError, KeyError):
    """A required column is missing: an :class:`AnnotationsError` and a ``KeyError``.

    Crowd-Kit raises ``KeyError`` (pandas' own) when ``task``, ``worker`` or ``label`` is
    missing, and its users catch that; ours is still a ``ValueError`` for crowdzoo's callers.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _frame(data, cols=_COLS, what: str = "answers") -> pd.DataFrame | None:
    """Return the answers as a frame, or ``None`` when there are none (Crowd-Kit: empty results).

    Bad input gets the errors of :class:`Annotations`; a missing column gets
    :class:`MissingColumnError`.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame with columns {', '.join(cols)}; "
                        f"got {type(data).__name__}")
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise MissingColumnError(f"missing column(s) {missing} in the {what} frame; "
                                 f"available columns: {list(data.columns)}")
    if len(data) == 0:
        return None
    Annotations.from_frame(data)  # validates: NaN, single class...
    return data[list(cols)]


def _empty_series(name: str) -> pd.Series:
    return pd.Series(dtype=float, name=name)


class _State(NamedTuple):
    """Where an estimator ended: parameters, label posterior (classes in ``ann`` order)."""

    params: dict
    probs: np.ndarray
    history: list
    ann: Annotations


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

    def _n_iter(self) -> int:
        n_iter = int(self.n_iter)
        if n_iter < 0:
            raise ValueError(f"n_iter must be >= 0, got {self.n_iter}")
        return n_iter

    def _run(self, model, annotations):
        """Fit a zoo model by ``self.method``; the EM cap is silent, as in Crowd-Kit.

        The MAP runs in float64 with Crowd-Kit's stopping rule (the change of the objective
        only; see the module docstring).
        """
        opts = dict(self.fit_options or {})
        x64 = self.method == "map"
        with warnings.catch_warnings(), jax.enable_x64(x64):
            warnings.simplefilter("ignore", ConvergenceWarning)
            if x64 and hasattr(self, "n_iter"):
                opts.setdefault("max_iter", self._n_iter())
                # Crowd-Kit's tol <= 0 (e.g. -inf) means "run all n_iter iterations"
                opts.setdefault("tol", float(self.tol) if float(self.tol) > 0 else 1e-30)
                opts.setdefault("param_tol", 1e30)  # Crowd-Kit stops on the loss alone
            if x64 and hasattr(self, "n_iter") and "init" not in opts:
                # Crowd-Kit's one start (the model's EM start), in float64
                opts["init"] = self._start(model, annotations)[0]
            result = _fit(model, annotations, method=self.method, seed=self.seed, **opts)
        self.fit_ = result
        return result

    def _initial_state(self, model, ann: Annotations, e_step: bool) -> _State:
        """``n_iter=0``: the start of EM (Crowd-Kit's state right after its initialisation).

        The parameters are the model's EM start; the label posterior is the gold-clamped
        soft majority vote the start was computed from (``e_step=False``: Dawid-Skene,
        one-coin) or the first E-step at the start (``e_step=True``: GLAD).
        """
        from .models.base import soft_majority_vote

        with jax.enable_x64(True):
            params, cdata = self._start(model, ann)
            if e_step:
                probs = jax.nn.softmax(model.log_likelihood(params, cdata).logits, axis=-1)
            else:
                probs = soft_majority_vote(cdata)
            params = {k: np.asarray(v, np.float64) for k, v in params.items()}
            probs = np.asarray(probs, np.float64)
        self.fit_ = None
        return _State(params, probs / probs.sum(-1, keepdims=True), [], ann)

    @staticmethod
    def _start(model, ann: Annotations):
        """Return the model's EM start in float64 (call under ``jax.enable_x64``) and the data."""
        import jax.numpy as jnp

        from .models.core import crowd_data

        cdata = crowd_data(ann)
        model.check_data(cdata)
        params = {k: jnp.asarray(v, jnp.float64) for k, v in model.init_params(cdata).items()}
        return params, cdata

    def _state(self, model, ann: Annotations, e_step: bool, subtract_prior: bool) -> _State:
        """Run the zoo fit (or stop at the start for ``n_iter=0``)."""
        if self.method == "map" and hasattr(self, "n_iter") and self._n_iter() == 0:
            return self._initial_state(model, ann, e_step)
        result = self._run(model, ann)
        probs = result.task_posterior().to_numpy(np.float64)
        params = {k: np.asarray(v, np.float64) for k, v in result.params.items()}
        return _State(params, probs, self._loss_history(result, subtract_prior), ann)

    def _loss_history(self, result, subtract_prior: bool) -> list[float]:
        """Return the zoo objective per answer and iteration (log-likelihood for flat priors)."""
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
        out = [float(v) for v in hist / max(result.annotations.n_answers, 1)]
        if (self.method == "map" and hasattr(self, "n_iter") and float(self.tol) <= 0 and out
                and len(out) < self._n_iter() and result.diagnostics.get("converged")):
            # an exact fixed point before n_iter: Crowd-Kit's remaining iterations repeat it
            out += [out[-1]] * (self._n_iter() - len(out))
        return out

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
        if data is None:
            self.probas_, self.fit_ = pd.DataFrame(), None
            self.labels_, self.skills_ = _empty_series("agg_label"), _empty_series("skill")
            return self
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
    # columns that are not classes are ignored, as Crowd-Kit ignores them
    ie = ie.iloc[:, [i for i, c in enumerate(ie.columns) if str(c) in classes]]
    cols = [str(c) for c in ie.columns]
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


def _check_assign(ie: pd.DataFrame, ann: Annotations) -> None:
    """Crowd-Kit's check under ``"assign"``: probabilities sum to one per worker and column.

    Values that are all ``<= 1`` are read as probabilities; then each worker's column (true
    label) must sum to 1 over the observed labels. Larger values are counts (normalized).
    """
    classes = {str(c) for c in ann.classes}
    values = ie.loc[:, [c for c in ie.columns if str(c) in classes]].astype(float)
    if (values <= 1.0).all().all():
        sums = values.groupby(level="worker", sort=False).sum()
        if not np.allclose(sums.to_numpy(), 1.0):
            bad = sums.index[~np.isclose(sums.to_numpy(), 1.0).all(axis=1)]
            raise ValueError(f"The sum of each worker's error matrix in initial_error should be "
                             f"1.0 (each true-label column, over the observed labels): "
                             f"{len(bad)} workers do not, e.g. {list(bad[:5])}")


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
        ``p(z_task = label | answers)``, tasks x labels, at the final ``priors_`` and
        ``errors_``. Crowd-Kit's ``probas_`` is the E-step computed *before* its last M-step,
        one iteration behind its own ``errors_`` (at ``n_iter=1`` the two differ by up to
        0.2 on Crowd-Kit's step-by-step fixture; after convergence they agree): a defect we
        do not copy (``tests/test_crowdkit_contract.py`` shows it). With ``n_iter=0`` it is
        the majority vote's shares, as in Crowd-Kit.
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
        if strategy == "assign":
            _check_assign(initial_error, ann)
        if strategy == "assign" and not mask.all():
            missing = list(ann.worker_ids[~mask][:5])
            raise ValueError(f"initial_error_strategy='assign' needs a matrix for every worker; "
                             f"{int((~mask).sum())} missing, e.g. {missing}")
        return _DawidSkeneModel(confusion_prior=1.0, class_prior=1.0, eps=_EPS,
                                initial_error=given, initial_error_strategy=strategy)

    def _outputs(self, data: pd.DataFrame, state: _State) -> tuple[pd.Index, np.ndarray]:
        ann = state.ann
        order = _label_order(data)
        pos = _positions(ann.classes, order)
        self.probas_ = pd.DataFrame(state.probs[:, pos], index=pd.Index(ann.task_ids, name="task"),
                                    columns=pd.Index(order, name="label"))
        self.labels_ = _named(self.probas_.idxmax(axis="columns"), "agg_label")
        self.priors_ = pd.Series(state.params["pi"][pos], index=pd.Index(order, name="label"),
                                 name="prior")
        self.loss_history_ = state.history
        return order, pos

    def _empty(self):
        self.probas_, self.errors_, self.fit_ = pd.DataFrame(), pd.DataFrame(), None
        self.priors_, self.labels_ = _empty_series("prior"), _empty_series("agg_label")
        self.loss_history_ = []
        return self

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
        if data is None:
            return self._empty()
        gold = _answered_gold(true_labels, data)
        ann = Annotations.from_frame(data, gold=gold)
        state = self._state(self._model(initial_error, ann), ann, e_step=False,
                            subtract_prior=True)
        order, pos = self._outputs(data, state)
        conf = state.params["confusion"]  # [worker, true, label]
        if (self.method == "map" and self._n_iter() == 0 and initial_error is not None
                and self.initial_error_strategy == "assign"):
            # Crowd-Kit's state after init is the given matrices themselves (normalized)
            ie = initial_error.loc[initial_error.index.get_level_values("worker")
                                   .isin(ann.worker_ids)]
            ie = ie[[c for c in ie.columns if c in set(order)]].astype(float)
            w = ann.worker_ids.get_indexer(ie.index.get_level_values("worker"))
            lab = ann.classes.get_indexer(ie.index.get_level_values("label"))
            cols = _positions(ann.classes, pd.Index(ie.columns))
            self.errors_ = pd.DataFrame(conf[w[:, None], cols[None, :], lab[:, None]],
                                        index=ie.index, columns=ie.columns)
            return self
        index, w, lab = self._pairs(data, ann)
        self.errors_ = pd.DataFrame(conf[w[:, None], pos[None, :], lab[:, None]], index=index,
                                    columns=pd.Index(order))
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
        if data is None:
            self._empty()
            self.skills_ = _empty_series("skill")
            return self
        ann = Annotations.from_frame(data)
        model = _OneCoinModel(accuracy_prior=(1.0, 1.0), class_prior=1.0, eps=_EPS)
        state = self._state(model, ann, e_step=False, subtract_prior=True)
        order, pos = self._outputs(data, state)
        skill = state.params["accuracy"]
        self.skills_ = pd.Series(skill, index=pd.Index(ann.worker_ids, name="worker"),
                                 name="skill")
        index, w, lab = self._pairs(data, ann)
        K = len(order)
        hit = lab[:, None] == pos[None, :]
        err = np.where(hit, skill[w][:, None], ((1.0 - skill[w]) / (K - 1))[:, None])
        self.errors_ = pd.DataFrame(np.clip(err, _EPS, 1 - _EPS), index=index,
                                    columns=pd.Index(order))
        return self

    def fit_predict(self, data) -> pd.Series:  # type: ignore[override]  # noqa: D102
        return self.fit(data).labels_

    def fit_predict_proba(self, data) -> pd.DataFrame:  # type: ignore[override]  # noqa: D102
        return self.fit(data).probas_


# ----------------------------------------------------------------------------- GLAD
def _align_by_ids(value, ids: pd.Index, what: str):
    """Turn a dict / Series keyed by the user's ids into a float array in ``ids`` order.

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
        if data is None:
            self.probas_, self.fit_, self.loss_history_ = pd.DataFrame(), None, []
            self.labels_, self.priors_ = _empty_series("agg_label"), _empty_series("prior")
            self.alphas_, self.betas_ = _empty_series("alpha"), _empty_series("beta")
            return self
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
        state = self._state(model, ann, e_step=True, subtract_prior=False)
        probas = pd.DataFrame(state.probs, index=pd.Index(ann.task_ids, name="task"),
                              columns=pd.Index(ann.classes, name="variable"))
        self.probas_ = probas.sort_index().sort_index(axis=1)
        self.labels_ = _named(self.probas_.idxmax(axis=1), "agg_label")
        self.alphas_ = pd.Series(state.params["alpha"],
                                 index=pd.Index(ann.worker_ids, name="worker"), name="alpha")
        self.betas_ = pd.Series(state.params["log_beta"],
                                index=pd.Index(ann.task_ids, name="task"), name="beta")
        self.priors_ = priors.copy()
        self.loss_history_ = state.history
        return self

    def fit_predict(self, data, true_labels=None) -> pd.Series:  # noqa: D102
        return self.fit(data, true_labels).labels_

    def fit_predict_proba(self, data, true_labels=None) -> pd.DataFrame:  # noqa: D102
        return self.fit(data, true_labels).probas_



# ----------------------------------------------------------------------------- MACE
def _mace_e_step(task, worker, label, weights, xi, n_tasks: int, n_classes: int):
    """MACE's E-step in log space: label posterior, log evidence, expected counts.

    ``p(y_n | z = k) = s_w xi_w[y_n] + c_w [y_n = k]`` with ``(s_w, c_w)`` = ``weights[w]``
    (the worker spams with probability ``s_w``, else copies the truth; for VB the
    geometric-mean weights, as in Crowd-Kit); ``z ~ Uniform``. Returns ``q (T, K)``,
    ``log p(y)``, the expected spam answers per ``(worker, label)`` and the expected number of
    spammed / known answers per worker.
    """
    W = weights.shape[0]
    p_spam = weights[worker, 0] * xi[worker, label]  # (N,)
    know = weights[worker, 1]
    emit = p_spam[:, None] + know[:, None] * (label[:, None] == np.arange(n_classes)[None, :])
    log_emit = np.log(np.maximum(emit, 1e-300))
    logits = np.zeros((n_tasks, n_classes))
    np.add.at(logits, task, log_emit)
    logits -= np.log(n_classes)
    top = logits.max(1, keepdims=True)
    evidence = top[:, 0] + np.log(np.exp(logits - top).sum(1))
    q = np.exp(logits - evidence[:, None])
    # p(spamming | y, z = k) averaged over q: the answer was spammed
    spammed = (q[task] * (p_spam[:, None] / np.maximum(emit, 1e-300))).sum(1)
    strategy = np.zeros((W, n_classes))
    np.add.at(strategy, (worker, label), spammed)
    knowing = np.stack([np.bincount(worker, spammed, W),
                        np.bincount(worker, 1.0 - spammed, W)], axis=1)
    return q, float(evidence.sum()), strategy, knowing


class MACE(_Estimator):
    r"""MACE, Multi-Annotator Competence Estimation (Hovy et al. 2013; Crowd-Kit's ``MACE``).

    Each worker ``w`` spams with probability ``1 - theta_w`` (``s ~ Bernoulli(1 - theta_w)``);
    a spamming answer is drawn from the worker's own label distribution ``xi_w``, a
    non-spamming answer copies the true label ``z`` (uniform prior)::

        p(y | z = k) = (1 - theta_w) xi_w[y] + theta_w [y = k]

    Fitted by EM (``method="em"``: the expected counts plus ``smoothing``) or mean-field
    variational Bayes (``method="vb"``, the default: ``exp(digamma)`` of counts plus the
    Beta(``alpha``, ``beta``) prior of the spam/know split and a Dirichlet(10) prior of
    ``xi``), as Crowd-Kit does, from ``n_restarts`` starts; the start with the highest
    evidence wins. The E-step works in log space (Crowd-Kit multiplies raw probabilities, which
    underflows for tasks with many answers) and counts per worker code (Crowd-Kit's
    ``thetas_`` M-step reads its counts in *sorted* worker and label order against
    first-appearance codes, which mixes workers' rows up unless the answers come sorted).

    Restarts: Crowd-Kit draws every restart's start with the same ``random_state``, so its
    ``n_restarts`` runs are identical (one run, repeated). Here restart 0 is Crowd-Kit's start
    (the same draws: ``Uniform(1, 1 + default_noise)`` rows, normalized) and restart ``r``
    draws from ``numpy.random.default_rng([random_state, r])``: the restarts explore.

    Parameters
    ----------
    n_restarts, n_iter, method, smoothing, default_noise, alpha, beta, random_state, verbose
        Crowd-Kit 1.4's parameters and defaults (``verbose`` is accepted, no bar is shown).

    Attributes
    ----------
    labels_ : pandas.Series
        Most probable label per task (``agg_label``).
    probas_ : pandas.DataFrame
        Label posterior, tasks x labels (columns named ``label``).
    spamming_ : numpy.ndarray (W, 2)
        Per worker (first-appearance order): ``[p(spamming), p(knowing)]`` (normalized for
        ``"em"``; VB's geometric-mean weights for ``"vb"``, as Crowd-Kit).
    thetas_ : numpy.ndarray (W, K)
        Each worker's spamming label distribution ``xi_w`` (labels in first-appearance order).
    theta_priors_, strategy_priors_ : numpy.ndarray or None
        The VB priors (``None`` for ``"em"``).
    smoothing_ : float
        ``0.01 / K``, the EM smoothing Crowd-Kit uses (its ``smoothing`` is not used).
    log_marginal_likelihood_ : float
        ``log p(answers)`` at the result (a crowdzoo extra).

    References
    ----------
    1. D. Hovy, T. Berg-Kirkpatrick, A. Vaswani and E. Hovy. Learning Whom to Trust with MACE.
       NAACL-HLT 2013, 1120-1130. https://aclanthology.org/N13-1132
    """

    _param_names = ("n_restarts", "n_iter", "method", "smoothing", "default_noise", "alpha",
                    "beta", "random_state", "verbose")

    def __init__(self, n_restarts: int = 10, n_iter: int = 50, method: str = "vb",
                 smoothing: float = 0.1, default_noise: float = 0.5, alpha: float = 0.5,
                 beta: float = 0.5, random_state: int = 0, verbose: int = 0):
        self.n_restarts = n_restarts
        self.n_iter = n_iter
        self.method = method
        self.smoothing = smoothing
        self.default_noise = default_noise
        self.alpha = alpha
        self.beta = beta
        self.random_state = random_state
        self.verbose = verbose
        self.fit_options = None

    def _start(self, W: int, K: int, restart: int):  # type: ignore[override]
        if restart == 0:
            from scipy import stats

            draw = stats.uniform(1, 1 + self.default_noise)
            spam = draw.rvs(size=(W, 2), random_state=self.random_state)
            xi = draw.rvs(size=(W, K), random_state=self.random_state)
        else:
            rng = np.random.default_rng([int(self.random_state), restart])
            spam = rng.uniform(1, 2 + self.default_noise, size=(W, 2))
            xi = rng.uniform(1, 2 + self.default_noise, size=(W, K))
        spam = spam / spam.sum(1, keepdims=True)
        return spam[:, 0], xi / xi.sum(1, keepdims=True)

    def _m_step(self, strategy, knowing, K):
        from scipy.special import digamma

        if self.method == "vb":
            prior = np.array([self.alpha, self.beta])
            k = knowing + prior
            weights = np.exp(digamma(k) - digamma(k.sum(1, keepdims=True)))
            s = strategy + 10.0
            xi = np.exp(digamma(s) - digamma(s.sum(1, keepdims=True)))
        else:
            k = knowing + 0.01 / K
            weights = k / k.sum(1, keepdims=True)
            s = strategy + 0.01 / K
            xi = s / s.sum(1, keepdims=True)
        return weights, xi

    def fit(self, data: pd.DataFrame) -> MACE:
        """Fit by EM or VB from ``n_restarts`` starts.

        Parameters
        ----------
        data : pandas.DataFrame
            Answers with columns ``task``, ``worker``, ``label``.

        Returns
        -------
        MACE
            ``self``, fitted.
        """
        if self.method not in ("vb", "em"):
            raise ValueError(f"method must be 'vb' or 'em', got {self.method!r}")
        if int(self.n_restarts) < 1 or int(self.n_iter) < 0:
            raise ValueError("n_restarts must be >= 1 and n_iter >= 0")
        data = _frame(data)
        self.smoothing_ = None
        self.theta_priors_ = self.strategy_priors_ = None
        if data is None:
            self.probas_, self.labels_ = pd.DataFrame(), _empty_series("agg_label")
            self.spamming_ = self.thetas_ = np.empty((0, 0))
            return self
        task, task_names = pd.factorize(data["task"])
        worker, worker_names = pd.factorize(data["worker"])
        label, label_names = pd.factorize(data["label"])
        T, W, K = len(task_names), len(worker_names), len(label_names)
        self.smoothing_ = 0.01 / K
        if self.method == "vb":
            self.theta_priors_ = np.tile([float(self.alpha), float(self.beta)], (W, 1))
            self.strategy_priors_ = np.full((W, K), 10.0)
        best = None
        for restart in range(int(self.n_restarts)):
            spam, xi = self._start(W, K, restart)
            weights = np.stack([spam, 1 - spam], 1)
            for it in range(int(self.n_iter) + 1):
                q, evidence, strategy, knowing = _mace_e_step(task, worker, label, weights,
                                                              xi, T, K)
                if it == int(self.n_iter):
                    break
                weights, xi = self._m_step(strategy, knowing, K)
            if best is None or evidence > best[0]:
                best = (evidence, weights, xi, q)
        evidence, weights, xi, q = best
        self.spamming_, self.thetas_ = weights, xi
        self.log_marginal_likelihood_ = evidence
        self.probas_ = pd.DataFrame(q, index=pd.Index(task_names, name="task"),
                                    columns=pd.Index(label_names, name="label"))
        self.labels_ = _named(self.probas_.idxmax(axis="columns"), "agg_label")
        return self


# ----------------------------------------------------------------------------- skill-weighted votes
def _accuracy(data: pd.DataFrame, true_labels: pd.Series) -> pd.Series:
    """Each worker's share of answers equal to ``true_labels`` (Crowd-Kit's ``get_accuracy``).

    Answers on tasks without a true label are left out; repeated identical answers count once.
    Indexed by worker (sorted), named ``skill``.
    """
    acc = data[_COLS].join(pd.Series(true_labels).rename("true_label"), on="task")
    acc = acc[acc["true_label"].notna()]
    acc = acc.assign(score=(acc["label"] == acc["true_label"]).astype(float))
    acc = acc.sort_values("score").drop_duplicates(_COLS, keep="last")
    return _named(acc.groupby("worker")["score"].mean(), "skill")


def _vote(data: pd.DataFrame, skills: pd.Series | None, mv: MajorityVote | None = None):
    """Take the (skill-weighted) majority vote: ``(probas, labels)`` with Crowd-Kit's types."""
    if skills is None:
        scores = data[["task", "label"]].value_counts()
    else:
        data = (mv or MajorityVote())._weights(data, skills)
        scores = data.groupby(["task", "label"])["skill"].sum()
    counts = scores.unstack("label", fill_value=0)
    probas = counts.div(counts.sum(axis=1), axis=0)
    return probas, _named(probas.idxmax(axis="columns"), "agg_label")


class _SkillVote(_Estimator):
    """Estimators that learn worker skills, then take the skill-weighted majority vote."""

    def _empty(self):
        self.probas_, self.fit_ = pd.DataFrame(), None
        self.labels_, self.skills_ = _empty_series("agg_label"), _empty_series("skill")
        return self

    def _apply(self, data: pd.DataFrame):
        if not hasattr(self, "skills_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")
        data = _frame(data)
        if data is None:
            self.probas_, self.labels_ = pd.DataFrame(), _empty_series("agg_label")
        else:
            self.probas_, self.labels_ = _vote(data, self.skills_)
        return self

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Return the skill-weighted majority vote of every task (``labels_``)."""
        return self._apply(data).labels_

    def predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        """Return the skill-weighted vote shares of every task (``probas_``)."""
        return self._apply(data).probas_

    def fit_predict(self, data, *args) -> pd.Series:  # noqa: D102
        return self.fit(data, *args).predict(data)

    def fit_predict_proba(self, data, *args) -> pd.DataFrame:  # noqa: D102
        return self.fit(data, *args).predict_proba(data)


class Wawa(_SkillVote):
    """Worker Agreement with Aggregate (Crowd-Kit's ``Wawa``).

    1. the majority vote; 2. each worker's skill = the share of their answers equal to it;
    3. the skill-weighted majority vote. Crowd-Kit 1.4's own ``Wawa`` fails on scikit-learn
    1.9 (``'Wawa' object has no attribute '__sklearn_tags__'``); this one does not depend on
    scikit-learn.

    Attributes
    ----------
    skills_ : pandas.Series
        Agreement of each worker with the majority vote (``skill``, indexed by worker).
    labels_, probas_ : pandas.Series, pandas.DataFrame
        The skill-weighted vote (``agg_label``) and its shares (tasks x labels).

    References
    ----------
    1. Appen, "Calculating Worker Agreement with Aggregate (Wawa)". As in Crowd-Kit.
    """

    def __init__(self):
        super().__init__()

    def fit(self, data: pd.DataFrame) -> Wawa:
        """Estimate the workers' skills from their agreement with the majority vote."""
        data = _frame(data)
        if data is None:
            return self._empty()
        _, labels = _vote(data, None)
        self.skills_ = _accuracy(data, labels)
        return self


class GoldMajorityVote(_SkillVote):
    """Majority vote weighted by each worker's accuracy on gold tasks (Crowd-Kit's).

    ``fit(data, true_labels)`` measures every worker's share of correct answers on the tasks
    of ``true_labels``; ``predict`` takes the skill-weighted vote (every worker of ``predict``'s
    answers needs a skill, else ``ValueError``). Crowd-Kit 1.4's own version fails on
    scikit-learn 1.9 (``__sklearn_tags__``).

    Attributes
    ----------
    skills_ : pandas.Series
        Accuracy on gold of each worker who answered a gold task (``skill``).
    labels_, probas_ : pandas.Series, pandas.DataFrame
        The skill-weighted vote and its shares.
    """

    def __init__(self):
        super().__init__()

    def fit(self, data: pd.DataFrame, true_labels) -> GoldMajorityVote:
        """Measure each worker's accuracy on the gold tasks.

        Parameters
        ----------
        data : pandas.DataFrame
            Answers with columns ``task``, ``worker``, ``label``.
        true_labels : pandas.Series
            Gold labels indexed by task (a frame with ``task`` and ``label`` columns works too).

        Returns
        -------
        GoldMajorityVote
            ``self``, fitted.
        """
        if isinstance(true_labels, pd.DataFrame):
            missing = [c for c in ("task", "label") if c not in true_labels.columns]
            if missing:
                raise MissingColumnError(f"missing column(s) {missing} in the true_labels "
                                         f"frame; available columns: "
                                         f"{list(true_labels.columns)}")
            true_labels = true_labels.set_index("task")["label"]
        data = _frame(data)
        if data is None:
            return self._empty()
        self.skills_ = _accuracy(data, true_labels)
        return self

    def fit_predict(self, data: pd.DataFrame, true_labels) -> pd.Series:  # noqa: D102
        return self.fit(data, true_labels).predict(data)

    def fit_predict_proba(self, data: pd.DataFrame, true_labels) -> pd.DataFrame:  # noqa: D102
        return self.fit(data, true_labels).predict_proba(data)


class ZeroBasedSkill(_SkillVote):
    """Zero-Based Skill (Crowd-Kit's ``ZeroBasedSkill``): skills by a decaying-step update.

    Skills start at ``1 / K + eps``; each of ``n_iter`` rounds takes the skill-weighted vote
    and moves every skill towards the worker's agreement with it,
    ``s <- s + lr (agreement - s)``, with ``lr = lr_init`` multiplied by
    ``lr_reduce_factor`` every ``lr_steps_to_reduce`` rounds. The rounds run vectorized over
    integer codes (the vote of a round: ties go to the first label in sorted order, as in
    Crowd-Kit's). Crowd-Kit 1.4's own version fails on scikit-learn 1.9.

    Attributes
    ----------
    skills_ : pandas.Series
        The learned skills (``skill``, indexed by worker).
    labels_, probas_ : pandas.Series, pandas.DataFrame
        The skill-weighted vote and its shares.
    """

    _param_names = ("n_iter", "lr_init", "lr_steps_to_reduce", "lr_reduce_factor", "eps")

    def __init__(self, n_iter: int = 100, lr_init: float = 1.0, lr_steps_to_reduce: int = 20,
                 lr_reduce_factor: float = 0.5, eps: float = 1e-5):
        super().__init__()
        self.n_iter = n_iter
        self.lr_init = lr_init
        self.lr_steps_to_reduce = lr_steps_to_reduce
        self.lr_reduce_factor = lr_reduce_factor
        self.eps = eps

    def fit(self, data: pd.DataFrame) -> ZeroBasedSkill:
        """Learn the skills by ``n_iter`` rounds of vote and update."""
        data = _frame(data)
        if data is None:
            return self._empty()
        n_iter = self._n_iter()
        task, _ = pd.factorize(data["task"])
        worker, workers = pd.factorize(data["worker"], sort=True)
        label, labels = pd.factorize(data["label"], sort=True)
        T, W, K = task.max() + 1, len(workers), len(labels)
        # agreement counts each distinct (task, worker, label) answer once
        first = ~data.duplicated(_COLS).to_numpy()
        n_distinct = np.bincount(worker[first], minlength=W)
        skills = np.full(W, 1.0 / K + self.eps)
        lr = float(self.lr_init)
        for it in range(1, n_iter + 1):
            if it % int(self.lr_steps_to_reduce) == 0:
                lr *= float(self.lr_reduce_factor)
            scores = np.bincount(task * K + label, skills[worker], T * K).reshape(T, K)
            agg = scores.argmax(1)  # the first maximum: sorted label order
            hit = (label == agg[task]) & first
            agreement = np.bincount(worker, hit.astype(float), W) / n_distinct
            skills = skills + lr * (agreement - skills)
        self.skills_ = pd.Series(skills, index=pd.Index(workers, name="worker"), name="skill")
        return self


class KOS(_Estimator):
    """Karger, Oh & Shah's iterative message passing for binary tasks (Crowd-Kit's ``KOS``).

    The first label (in order of appearance) is +1, the other -1; worker-to-task messages
    start at ``Normal(1, 1)`` draws (``numpy.random.seed(random_state)``, as Crowd-Kit) and
    ``n_iter`` rounds pass ``x_{t->w} = sum_{w' != w} A_{tw'} y_{w'->t}`` and
    ``y_{w->t} = sum_{t' != t} A_{t'w} x_{t'->w}`` (stopping early before a message passes
    1e300); the label is the sign of ``sum_w A_{tw} y_{w->t}``. Vectorized over answers
    (Crowd-Kit runs two pandas group-bys per round). A task whose sum is exactly 0 gets the
    first label (Crowd-Kit raises ``KeyError`` there).

    Attributes
    ----------
    labels_ : pandas.Series
        The label of every task (``agg_label``, indexed by task, sorted).

    References
    ----------
    1. D. R. Karger, S. Oh and D. Shah. Budget-Optimal Task Allocation for Reliable
       Crowdsourcing Systems. Operations Research 62(1):1-24, 2014.
       https://doi.org/10.1287/opre.2013.1235
    """

    _param_names = ("n_iter", "random_state")

    def __init__(self, n_iter: int = 100, random_state: int = 0):
        super().__init__()
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, data: pd.DataFrame) -> KOS:
        """Pass messages for ``n_iter`` rounds; label every task."""
        np.random.seed(self.random_state)
        data = _frame(data)
        if data is None:
            self.labels_ = pd.Series([], dtype="O", name="agg_label")
            return self
        names = pd.unique(data["label"])
        if len(names) != 2:
            raise ValueError(f"KOS is binary: the answers must have exactly 2 labels, got "
                             f"{len(names)}")
        a = np.where(data["label"].to_numpy() == names[0], 1.0, -1.0)
        task, tasks = pd.factorize(data["task"], sort=True)
        worker, _ = pd.factorize(data["worker"])
        T, W = len(tasks), worker.max() + 1
        y = np.random.normal(loc=1, scale=1, size=len(data))
        big = 10.0 ** 300
        for _ in range(self._n_iter()):
            m = a * y
            s = np.bincount(task, m, T)[task]
            if (np.abs(s) > big).any():
                break
            x = s - m
            m = a * x
            s = np.bincount(worker, m, W)[worker]
            if (np.abs(s) > big).any():
                break
            y = s - m
        total = np.bincount(task, a * y, T)
        self.labels_ = pd.Series(np.where(total >= 0, names[0], names[1]),
                                 index=pd.Index(tasks, name="task"), name="agg_label")
        return self


class MMSR(_Estimator):
    r"""Matrix Mean-Subsequence-Reduced (Ma & Olshevsky 2020; Crowd-Kit's ``MMSR``).

    Worker skills from a robust rank-one completion of the workers' agreement matrix:
    ``E[M / (M - 1) C - 1 / (M - 1)] = s s^T`` (``M`` classes, ``C[i, j]`` the agreement of
    workers ``i`` and ``j`` on their common tasks); the iteration trims the ``F`` largest
    and smallest ratios (``F = floor(sparsity / 2) - 1``) before averaging, then signs are
    resolved and the skill is turned into the weight ``log((M - 1) p / (1 - p))`` of a
    weighted majority vote. The agreement matrix is built with matrix products (Crowd-Kit:
    a Python loop over answers and worker pairs) and the trimmed means of each half-step are
    taken for all workers at once; otherwise the iteration is Crowd-Kit's, except that a
    ratio over a zero entry (``0 / 0``: a worker whose agreement with every co-worker is
    exactly chance) is left out -- Crowd-Kit keeps it and every skill becomes NaN (on
    product, after one iteration).

    Attributes
    ----------
    skills_ : pandas.Series
        Vote weight of every worker (``skill``, first-appearance order).
    scores_ : pandas.DataFrame
        Each label's share of the weighted vote, tasks x labels.
    labels_ : pandas.Series
        The weighted vote (``agg_label``).
    loss_history_ : list of float
        Frobenius change of ``u v^T`` per iteration.

    References
    ----------
    1. Q. Ma and A. Olshevsky. Adversarial Crowdsourcing Through Robust Rank-One Matrix
       Completion. NeurIPS 2020. https://arxiv.org/abs/2010.12181
    """

    _param_names = ("n_iter", "tol", "random_state")

    def __init__(self, n_iter: int = 10000, tol: float = 1e-10, random_state: int | None = 0):
        super().__init__()
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state

    @classmethod
    def _trimmed_means(cls, ratios, mask, current, F: int, n_tasks: int) -> np.ndarray:
        """Return the trimmed mean of every column of ``ratios`` (where ``mask``), vectorized.

        Column ``j`` drops its ``min(F, #below current[j])`` smallest and ``min(F, #above)``
        largest values (for ``F < 0``: keeps its largest), as Crowd-Kit's
        ``_remove_largest_and_smallest_F_value`` does one column at a time; a column left
        empty keeps ``current[j]``, a column left with a single 0 gets ``1 / sqrt(T)``.
        """
        # a ratio over a zero skill (0 / 0: a worker whose agreement with every co-worker is
        # exactly chance) is left out; Crowd-Kit keeps it, and its NaN spreads to every skill
        mask = mask & np.isfinite(ratios)
        vals = np.where(mask, ratios, np.nan)
        n = mask.sum(0)
        ordered = np.sort(vals, axis=0)  # NaN (unobserved) last
        pos = np.arange(vals.shape[0])[:, None]
        if F < 0:
            keep = pos == n - 1
        else:
            below = np.minimum(np.sum(mask & (vals < current), 0), F)
            above = np.minimum(np.sum(mask & (vals > current), 0), F)
            keep = (pos >= below) & (pos < n - above)
        count = keep.sum(0)
        total = np.where(keep, ordered, 0.0).sum(0)
        out = current.copy()
        has = count > 0
        out[has] = total[has] / count[has]
        lone_zero = (count == 1) & (total == 0)
        out[lone_zero] = 1 / np.sqrt(n_tasks)
        return out

    @staticmethod
    def _signs(C: np.ndarray, s_abs: np.ndarray) -> np.ndarray:
        from scipy.sparse import linalg as sla

        S = np.sign(C)
        n = len(s_abs)
        valid = np.where(np.sum(C, axis=1) != 0)[0]
        S_valid = S[valid[:, None], valid]
        k = S_valid.shape[0]
        ends_i, ends_j = np.where(S_valid * np.triu(np.ones((k, k))) == 1)
        S_valid[S_valid == 1] = 0
        eye = np.eye(k)
        S_new = eye[ends_i, :] + eye[ends_j, :]
        m = S_new.shape[0]
        A = np.vstack((np.hstack((np.abs(S_valid), S_new.T)),
                       np.hstack((S_new, np.zeros((m, m))))))
        Wt = (1.0 / np.sum(A, axis=1)).reshape(-1, 1) * A
        _, V = sla.eigs(Wt + np.eye(A.shape[0]), 1, which="SM")
        sign = np.sign(V.real)
        out = np.zeros((n, 1))
        out[valid] = np.sign(np.sum(sign[:k])) * s_abs[valid] * sign[:k]
        return out

    def fit(self, data: pd.DataFrame) -> MMSR:
        """Estimate the workers' vote weights."""
        from scipy import stats

        data = _frame(data)
        if data is None:
            self.skills_, self.loss_history_ = _empty_series("skill"), []
            return self
        worker, workers = pd.factorize(data["worker"])
        task, tasks = pd.factorize(data["task"])
        label, labels = pd.factorize(data["label"])
        W, T, M = len(workers), len(tasks), len(labels)
        obs = np.zeros((W, T))
        obs[worker, task] = label + 1  # the last answer of a (worker, task) pair wins
        seen = np.sign(obs)
        common = seen @ seen.T
        np.fill_diagonal(common, 0)
        same = np.zeros((W, W))
        for k in range(1, M + 1):
            hot = (obs == k).astype(float)
            same += hot @ hot.T
        with np.errstate(invalid="ignore", divide="ignore"):
            C = np.where(common > 0, same / np.where(common > 0, common, 1), 0.0)
        C = C * M / (M - 1) - 1.0 / (M - 1)
        sparsity = np.min(np.sign(common).sum(axis=0))
        F = int(np.floor(sparsity / 2)) - 1
        u = stats.uniform.rvs(size=(W, 1), random_state=self.random_state)
        v = stats.uniform.rvs(size=(W, 1), random_state=self.random_state)
        observed = np.abs(np.sign(common)) == 1
        X = np.abs(C)
        self.loss_history_ = []
        for _ in range(self._n_iter()):
            u_prev, v_prev = u.copy(), v.copy()
            with np.errstate(invalid="ignore", divide="ignore"):
                v[:, 0] = self._trimmed_means(X / u, observed, v[:, 0], F, T)
                u[:, 0] = self._trimmed_means((X / v[:, 0]).T, observed.T, u[:, 0], F, T)
            loss = float(np.linalg.norm(u @ v.T - u_prev @ v_prev.T, ord="fro"))
            self.loss_history_.append(loss)
            if loss < self.tol:
                break
        k = np.sqrt(np.linalg.norm(u) / np.linalg.norm(v))
        x = self._signs(C, u / k)
        x = np.minimum(x, 1 - 1.0 / np.sqrt(T))
        x = np.maximum(x, -1 / (M - 1) + 1.0 / np.sqrt(T))
        p = (x * (M - 1) / M + 1 / M).ravel()
        self.skills_ = pd.Series(np.log(p * (M - 1) / (1 - p)),
                                 index=pd.Index(workers, name="worker"), name="skill")
        return self

    def _apply(self, data: pd.DataFrame) -> MMSR:
        data = _frame(data)
        if data is None:
            self.scores_, self.labels_ = pd.DataFrame(), _empty_series("agg_label")
        else:
            self.scores_, self.labels_ = _vote(data, self.skills_)
        return self

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Return the weighted vote of every task (``labels_``)."""
        return self._apply(data).labels_

    def predict_score(self, data: pd.DataFrame) -> pd.DataFrame:
        """Return each label's share of the weighted vote (``scores_``)."""
        return self._apply(data).scores_

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:  # noqa: D102
        return self.fit(data).predict(data)

    def fit_predict_score(self, data: pd.DataFrame) -> pd.DataFrame:  # noqa: D102
        return self.fit(data).predict_score(data)
