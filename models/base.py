"""Base class of the zoo's models: what a model declares so that one runner can fit it."""

from __future__ import annotations

import functools
import itertools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .core import CrowdData, marginalize, observe_or_generate

__all__ = ["Baseline", "CrowdModel", "Params", "best_class_order", "soft_majority_vote"]

Params = dict[str, jax.Array]


def soft_majority_vote(data: CrowdData) -> jax.Array:
    """Per-task vote shares ``(T, K)`` (ties split evenly), gold-clamped: the usual EM start."""
    counts = jnp.zeros((data.n_tasks, data.n_classes)).at[data.task, data.label].add(1.0)
    counts = counts + 1e-6  # a task whose answers were all dropped still gets a distribution
    share = counts / counts.sum(-1, keepdims=True)
    onehot = jax.nn.one_hot(data.gold, data.n_classes)
    return jnp.where(data.gold[:, None] >= 0, onehot, share)


def best_class_order(scores) -> np.ndarray:
    """Return the relabelling of the true classes that maximizes a score, per draw.

    ``scores[..., k, j]``: how well old class ``k`` fits the new label ``j`` (for a confusion
    model, how often workers answer ``j`` when the truth is ``k``). Returns ``order (..., K)``
    with new class ``j`` = old class ``order[..., j]``, the permutation maximizing
    ``sum_k scores[k, sigma(k)]`` (ties keep the labelling as it is). Exhaustive for
    ``K <= 6``, else the Hungarian assignment per draw.
    """
    scores = np.asarray(scores, np.float64)
    K = scores.shape[-1]
    lead = scores.shape[:-2]
    if K <= 6:
        perms = np.array(list(itertools.permutations(range(K))))  # (P, K); perms[0]: identity
        total = scores[..., np.arange(K), perms].sum(-1)  # (..., P)
        sigma = perms[np.argmax(total, axis=-1)]  # old k -> new sigma[k]
    else:
        from scipy.optimize import linear_sum_assignment

        flat = scores.reshape((-1, K, K))
        sigma = np.empty((flat.shape[0], K), np.int64)
        for s, m in enumerate(flat):
            rows, cols = linear_sum_assignment(-m)
            sigma[s, rows] = cols
        sigma = sigma.reshape(lead + (K,))
    return np.argsort(sigma, axis=-1)


def _freeze(value):
    """Return a hashable stand-in for a model setting (arrays and frames by content)."""
    import hashlib

    import numpy as np
    import pandas as pd

    if isinstance(value, (pd.DataFrame, pd.Series)):
        digest = hashlib.sha1(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        return ("pandas", value.shape, digest.hexdigest(), tuple(map(str, value.columns))
                if isinstance(value, pd.DataFrame) else ())
    if isinstance(value, (np.ndarray, jax.Array)):
        arr = np.asarray(value)
        return ("array", arr.shape, str(arr.dtype), hashlib.sha1(arr.tobytes()).hexdigest())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


class CrowdModel:
    """A generative model of crowd answers, written as a NumPyro program.

    Subclasses write :meth:`sample_params` (the priors, reading like the paper's plate
    diagram) and :meth:`log_terms` (the per-task prior over the true label and the
    per-answer emission log-probabilities). Calling the model object runs the NumPyro
    program: with labels it adds the exact marginal likelihood; without labels it generates
    them, so every model is its own simulator.

    Every capability the runner may use is declared here once, with a default; the runner
    asks these, it never probes with ``hasattr``:

    * :attr:`has_em` and :meth:`em_update` — a closed-form M-step (EM-like MAP without
      gradients); without it the MAP is L-BFGS on the exact marginal posterior;
    * :meth:`init_params` — the MAP's starting point; or :meth:`warm_start` +
      :meth:`init_from`, a simpler model whose MAP the runner fits first;
    * :attr:`has_classifier` and :meth:`predict_proba` — a classifier of task features
      (learning from crowds);
    * :meth:`worker_stats` / :meth:`task_stats` — derived per-worker / per-task quantities;
    * :meth:`generate` — the simulator (default: the program itself, with no answers);
    * :meth:`check_data` — refuse data the model cannot take, with a clear message;
    * :meth:`task_quadrature` and :meth:`integrated_task_log_lik` — per-task parameters
      (a task's difficulty) integrated out of that task's likelihood, for a LOO over tasks
      that can be trusted;
    * :meth:`drop_tasks` — the data with all that is observed of some tasks removed, for
      refits that leave tasks out (exact LOO).

    Models are immutable values: settings are fixed in ``__init__`` (writing an attribute
    afterwards raises), equal settings compare and hash equal, and the hash never changes —
    a model is a static argument of jitted kernels, so equal models share compilations.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    #: inference methods the model supports
    methods: ClassVar[tuple[str, ...]] = ("map", "svi", "nuts")
    #: whether :meth:`init_params` is pure JAX (then the runner jit-compiles it: an eager
    #: first call dispatches op by op, which costs seconds)
    jit_init: ClassVar[bool] = True
    #: whether the model learns from task features (then ``data.features`` is required)
    needs_features: ClassVar[bool] = False
    #: the site at which the program, run without answers on data without features,
    #: generates the task features itself (the word counts of biased_worker_words): the
    #: simulator then returns them as the crowd's features. None: features are given.
    generates_features: ClassVar[str | None] = None
    #: whether the model takes two classes only
    binary_only: ClassVar[bool] = False
    #: whether ``p(answers | parameters)`` is a normalized distribution of the answers. False
    #: for a model whose likelihood plugs in a statistic of the answers themselves
    #: (difficulty_fixed): no simulator matches it, so simulation-based calibration does not
    #: apply and NUTS / SVI give a pseudo-posterior
    proper_likelihood: ClassVar[bool] = True
    #: whether a task's answers are independent given its true label and the parameters.
    #: False for a model with a per-task random effect summed out next to the label
    #: (item_difficulty, logistic_random_effects): the next answer's distribution then
    #: depends on the task's answers so far, which an emission table cannot say, so the
    #: information gain of one more answer (crowdzoo.inference.active) refuses it
    answers_independent_given_label: ClassVar[bool] = True
    #: whether the likelihood itself sums each task's own random effect out (item_difficulty,
    #: logistic_random_effects, the IRT models with ``integrate_items``): its per-task terms
    #: are then the integrated ones a LOO over tasks wants, with nothing left for
    #: :meth:`task_quadrature` to do
    integrates_task_parameters: ClassVar[bool] = False
    #: whether the MAP's closed-form EM runs SQUAREM-accelerated by default (``fit`` option
    #: ``accelerate``): worth it where plain EM crawls, as with a jointly learned classifier
    em_accelerate: ClassVar[bool] = False
    #: NUTS options in which this model departs from :func:`crowdzoo.fit`'s defaults (the
    #: options the caller passes still win), e.g. a higher ``target_accept_prob`` where the
    #: default step size leaves a direction of the posterior mixing slowly (community)
    nuts_defaults: ClassVar[dict[str, Any]] = {}
    #: whether :meth:`em_update` is a closed-form M-step (else the MAP is L-BFGS)
    has_em: ClassVar[bool] = False
    #: whether :meth:`predict_proba` classifies new items from their features
    has_classifier: ClassVar[bool] = False
    #: ArviZ dims of each parameter site (the leading sample dims excluded)
    dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: dims along which components are exchangeable (their labels can permute between prior
    #: draws and posterior modes: the community model's communities). Quantities along them
    #: are identified only up to relabelling, so SBC ranks only label-invariant quantities.
    exchangeable_dims: ClassVar[tuple[str, ...]] = ()

    # --- immutability ----------------------------------------------------------------------
    def __init_subclass__(cls, **kwargs):
        """Freeze instances once the outermost ``__init__`` has returned."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def frozen_init(self, *args, **kw):
            depth = self.__dict__.get("_init_depth", 0)
            object.__setattr__(self, "_init_depth", depth + 1)
            try:
                init(self, *args, **kw)
            finally:
                object.__setattr__(self, "_init_depth", depth)
            if depth == 0:
                object.__setattr__(self, "_frozen", True)

        cls.__init__ = frozen_init

    def __setattr__(self, name, value):
        if self.__dict__.get("_frozen", False):
            raise AttributeError(
                f"{type(self).__name__} is immutable (its hash keys compiled kernels): "
                f"build a new model instead of setting {name!r}"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def settings(self) -> dict[str, Any]:
        """Return the model's settings (constructor arguments as stored)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    # --- to be written by each model -------------------------------------------------
    def sample_params(self, data: CrowdData) -> Params:
        """Sample the parameters from their priors (NumPyro statements); return them."""
        raise NotImplementedError(f"{type(self).__name__} must write sample_params")

    def log_terms(self, params: Params, data: CrowdData, labels):
        """Return ``(log_prior, log_emit)``.

        ``log_prior`` is ``(T, K)`` or ``(K,)``; ``log_emit`` is ``(N, K)`` for the given
        ``labels`` or, when ``labels`` is None, the full ``(N, K, L)`` table.
        """
        raise NotImplementedError(f"{type(self).__name__} must write log_terms")

    # --- declared capabilities, with their defaults ----------------------------------------
    def em_update(self, params: Params, resp: jax.Array, data: CrowdData) -> Params:
        """Closed-form M-step: new parameters given the ``(T, K)`` label posterior ``resp``.

        Declared by models with :attr:`has_em`; ``params`` (the current point) is always
        given. The default raises: the runner then uses L-BFGS.
        """
        raise NotImplementedError(f"{self.name} has no closed-form EM update")

    def init_params(self, data: CrowdData) -> Params:
        """Return a starting point for the MAP (constrained space).

        Typically one M-step from the soft majority vote (:func:`soft_majority_vote`). Pure JAX
        when :attr:`jit_init`.
        """
        raise NotImplementedError(f"{self.name}: no init_params")

    def relabel_draws(self, samples: dict, data: CrowdData | None = None) -> dict:
        """Give every posterior draw the same labelling of exchangeable components.

        The Fit applies it to NUTS / SVI draws before any summary. By default, draws are
        returned as they are, unless the posterior is symmetric under relabelling the true
        classes (:meth:`class_symmetric` on ``data``): then each draw gets the labelling of
        :meth:`canonical_class_order` (workers better than chance on average), so that the
        reported posterior is the identified one. A model whose other components can permute
        (the community model's communities) relabels them itself.
        """
        if data is None or not self.class_symmetric(data):
            return dict(samples)
        return self.permute_classes(samples, self.canonical_class_order(samples))

    # --- relabelling the true classes -------------------------------------------------------
    def class_symmetric(self, data: CrowdData) -> bool:
        """Whether the joint density is unchanged when the true classes are relabelled.

        Then the posterior has one mode per labelling, of equal mass: every task's label is
        50/50 under the exact posterior of a two-class crowd, and a sampler reports whichever
        mode it sits in. A model that says True here gets its draws put in one labelling
        (:meth:`relabel_draws`), and simulation-based calibration labels the true parameters
        alike. Default: False (a prior that favours honest workers breaks the symmetry, and
        so do gold labels).
        """
        return False

    def canonical_class_order(self, params) -> np.ndarray:
        """``order (..., K)``: new class ``j`` is old class ``order[..., j]``, per draw.

        Needed by models whose :meth:`class_symmetric` can be True: the labelling under which
        the workers are right most often (:func:`best_class_order` of a ``(K, K)`` score).
        """
        raise NotImplementedError(f"{self.name} does not define a canonical class labelling")

    def permute_classes(self, params, order) -> dict:
        """Relabel the true classes of ``params`` (a new dict).

        Along every ``true_class`` axis (:attr:`dims`), new entry ``j`` is old entry
        ``order[..., j]``; ``order``'s leading axes are the draws'. Sites without a
        ``true_class`` axis are kept as they are.
        """
        order = np.asarray(order)
        lead = order.ndim - 1
        out = dict(params)
        for site, dims in self.dims.items():
            if site not in params or "true_class" not in dims:
                continue
            value = np.asarray(params[site])
            ax = lead + tuple(dims).index("true_class")
            shape = (order.shape[:-1] + (1,) * (ax - lead) + order.shape[-1:]
                     + (1,) * (value.ndim - ax - 1))
            out[site] = np.take_along_axis(value, order.reshape(shape), axis=ax)
        return out

    def warm_start(self) -> CrowdModel | None:
        """Return a simpler model whose MAP the runner fits first to start this one (None: none)."""
        return None

    def init_from(self, warm_params: Params, data: CrowdData) -> Params:
        """Return the MAP start built from :meth:`warm_start`'s MAP (used when it is not None)."""
        raise NotImplementedError(f"{self.name}: no init_from")

    def predict_proba(self, params: Params, features: jax.Array, data: CrowdData) -> jax.Array:
        """``p(z = k | x)`` of new items (models with :attr:`has_classifier`)."""
        raise NotImplementedError(
            f"model {self.name!r} has no classifier of task features; predict_proba needs a "
            f"learning-from-crowds model such as 'raykar'"
        )

    def worker_stats(self, params: Params, data: CrowdData) -> dict[str, Any]:
        """Return derived per-worker quantities (leading dim: worker)."""
        return {}

    def task_stats(self, params: Params, data: CrowdData) -> dict[str, Any]:
        """Return derived per-task quantities (leading dim: task)."""
        return {}

    def check_data(self, data: CrowdData) -> None:
        """Raise a clear error when the model cannot take these data (e.g. binary only)."""
        if self.binary_only and data.n_classes != 2:
            raise ValueError(f"{self.name} is binary (2 classes) but the data have "
                             f"{data.n_classes} classes")
        if self.needs_features and data.features is None:
            raise ValueError(
                f"{self.name} learns from task features, but these data have none; pass them "
                f"with Annotations.from_frame(..., features=frame indexed by task id)"
            )

    def task_quadrature(self, data: CrowdData, n_nodes: int = 24):
        """Return a quadrature rule over one task's own parameters under their prior, or None.

        Models whose tasks have their own parameters (a difficulty, a discrimination), with a
        prior that does not depend on the other parameters, return ``(nodes, log_weights)``:
        ``nodes[site]`` is ``(Q,)`` or ``(Q, T)`` (the value of that per-task site at node
        ``q``, for every task or per task) and ``log_weights`` is ``(Q,)`` with
        ``sum_q exp(log_weights[q]) f(node_q) ~= E_prior[f]``. The default None: the model
        has no per-task parameters.
        """
        return None

    def integrated_task_log_lik(self, params: Params, data: CrowdData,
                                n_nodes: int = 24) -> jax.Array:
        """Per-task log-likelihood with the task's own parameters integrated out, ``(T,)``.

        ``log p(y_t | theta) = log E_{phi_t ~ prior}[ p(y_t | theta, phi_t) ]``, by the rule
        of :meth:`task_quadrature`: every task's parameters are set to node ``q`` at once (the
        tasks' terms are independent given the global parameters ``theta``), and the terms
        are combined with ``logsumexp`` over nodes. Models without per-task parameters return
        the plain per-task log-likelihood.
        """
        rule = self.task_quadrature(data, n_nodes)
        if rule is None:
            return self.log_likelihood(params, data).per_task
        nodes, log_w = rule

        def at_node(carry, q):
            node = {k: jnp.broadcast_to(v[q], (data.n_tasks,)) for k, v in nodes.items()}
            term = self.log_likelihood({**params, **node}, data).per_task + log_w[q]
            return jnp.logaddexp(carry, term), None

        init = jnp.full((data.n_tasks,), -jnp.inf)
        out, _ = jax.lax.scan(at_node, init, jnp.arange(log_w.shape[0]))
        return out

    def drop_tasks(self, data: CrowdData, tasks) -> CrowdData:
        """Return ``data`` with everything observed of ``tasks`` removed, sizes and codes kept.

        Their answers go, and their gold labels (a clamped label is observed too: it adds
        ``log pi_gold`` to the task's term). Every task code stays, so parameters keep their
        shapes and a draw fitted without the tasks evaluates their terms on the full data;
        a task without answers contributes ``log sum_k p(z_t = k) = 0`` to the likelihood
        (and its own parameters, where the model has them, keep their prior). A model that
        also models something else about a task (its words) removes that too.

        Parameters
        ----------
        data : CrowdData
            The answers.
        tasks : int array
            Codes of the tasks to leave out.
        """
        import dataclasses

        import numpy as np

        tasks = np.asarray(tasks, dtype=np.int64).ravel()
        if tasks.size and (tasks.min() < 0 or tasks.max() >= data.n_tasks):
            raise ValueError(f"task codes must be in [0, {data.n_tasks}), got {tasks.tolist()}")
        keep = ~np.isin(np.asarray(data.task), tasks)
        gold = np.asarray(data.gold).copy()
        gold[tasks] = -1
        return dataclasses.replace(
            data, task=data.task[keep], worker=data.worker[keep],
            label=None if data.label is None else data.label[keep],
            gold=jnp.asarray(gold, dtype=data.gold.dtype))

    def generate(self, params: Params, data: CrowdData):
        """Simulate ``(z, y)`` given the parameters (sites ``z`` and ``y``; NumPyro statements).

        The default draws ``z`` from the per-task prior (gold-clamped) and each answer from
        the emission table; a model overrides it to show extra discrete variables explicitly.
        """
        log_prior, table = self.log_terms(params, data, None)
        return observe_or_generate(log_prior, lambda _: table, data)

    # --- the NumPyro program --------------------------------------------------------------
    def __call__(self, data: CrowdData):
        """Run the model as a NumPyro program: priors, parameters, then the answers."""
        params = self.sample_params(data)
        if data.label is None:
            return self.generate(params, data)
        log_prior, log_emit = self.log_terms(params, data, data.label)
        return observe_or_generate(log_prior, lambda _: log_emit, data)

    def log_likelihood(self, params: Params, data: CrowdData):
        """Exact marginal log-likelihood and posterior logits for given parameters."""
        lp, le = self.log_terms(params, data, data.label)
        return marginalize(lp, le, data)

    # Models are static arguments of jitted kernels: equal settings -> equal hash -> one
    # compilation, however many times a user builds ``DawidSkene()``.
    def _static_key(self):
        return (type(self), tuple(sorted((k, _freeze(v)) for k, v in self.settings().items())))

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({inner})"


class Baseline:
    """A label aggregator that is not a generative model (majority vote): MAP-like only.

    It has no parameters and no likelihood, so it lives apart from the registry of
    generative models (no SVI / NUTS, no simulation, no LOO); ``crowdzoo.fit`` still accepts
    its name and returns a :class:`~crowdzoo.inference.Fit` with its task posterior.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    methods: ClassVar[tuple[str, ...]] = ("map",)
    needs_features: ClassVar[bool] = False
    binary_only: ClassVar[bool] = False
    dims: ClassVar[dict[str, tuple[str, ...]]] = {}

    def task_posterior(self, data: CrowdData) -> jax.Array:
        """``(T, K)`` label distribution of every task (gold-clamped)."""
        raise NotImplementedError

    def check_data(self, data: CrowdData) -> None:
        """Baselines take any crowd."""

    def worker_stats(self, params, data) -> dict[str, Any]:
        """No per-worker parameters."""
        return {}

    def task_stats(self, params, data) -> dict[str, Any]:
        """No per-task parameters."""
        return {}

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
