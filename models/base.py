"""Base class of the zoo's models: what a model declares so that one runner can fit it."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from .core import CrowdData, observe_or_generate

__all__ = ["CrowdModel", "soft_majority_vote"]

Params = dict[str, jax.Array]


def soft_majority_vote(data: CrowdData) -> jax.Array:
    """Per-task vote shares ``(T, K)`` (ties split evenly), gold-clamped: the usual EM start."""
    counts = jnp.zeros((data.n_tasks, data.n_classes)).at[data.task, data.label].add(1.0)
    counts = counts + 1e-6  # a task whose answers were all dropped still gets a distribution
    share = counts / counts.sum(-1, keepdims=True)
    onehot = jax.nn.one_hot(data.gold, data.n_classes)
    return jnp.where(data.gold[:, None] >= 0, onehot, share)


def _freeze(value):
    """A hashable stand-in for a model setting (arrays and frames by content)."""
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

    Optional declarations the runner uses when present:

    * :meth:`em_update` — a closed-form M-step (EM-like MAP without gradients);
    * :meth:`worker_stats` / :meth:`task_stats` — derived per-worker / per-task quantities.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    #: inference methods the model supports
    methods: ClassVar[tuple[str, ...]] = ("map", "svi", "nuts")
    #: whether ``init_params(data)`` is pure JAX (then the runner jit-compiles it: an eager
    #: first call dispatches op by op, which costs seconds)
    jit_init: ClassVar[bool] = True
    #: whether the model learns from task features (then ``data.features`` is required)
    needs_features: ClassVar[bool] = False
    #: whether the model takes two classes only
    binary_only: ClassVar[bool] = False
    #: whether ``p(answers | parameters)`` is a normalized distribution of the answers. False
    #: for a model whose likelihood plugs in a statistic of the answers themselves
    #: (difficulty_fixed): no simulator matches it, so simulation-based calibration does not
    #: apply and NUTS / SVI give a pseudo-posterior
    proper_likelihood: ClassVar[bool] = True
    #: whether the MAP's closed-form EM runs SQUAREM-accelerated by default (``fit`` option
    #: ``accelerate``): worth it where plain EM crawls, as with a jointly learned classifier
    em_accelerate: ClassVar[bool] = False
    #: ArviZ dims of each parameter site (the leading sample dims excluded)
    dims: ClassVar[dict[str, tuple[str, ...]]] = {}

    # --- to be written by each model -------------------------------------------------
    def sample_params(self, data: CrowdData) -> Params:
        """Sample the parameters from their priors (NumPyro statements); return them."""
        raise NotImplementedError

    def log_terms(self, params: Params, data: CrowdData, labels):
        """Return ``(log_prior, log_emit)``.

        ``log_prior`` is ``(T, K)`` or ``(K,)``; ``log_emit`` is ``(N, K)`` for the given
        ``labels`` or, when ``labels`` is None, the full ``(N, K, L)`` table.
        """
        raise NotImplementedError

    # --- optional ----------------------------------------------------------------------
    em_update = None  #: ``em_update(params, resp, data) -> params`` where available
    #: ``relabel_draws(samples) -> samples``: for a model with exchangeable components
    #: (communities), give every posterior draw the same labelling (the Fit applies it)
    relabel_draws = None

    def init_params(self, data: CrowdData, annotations=None) -> Params:
        """A starting point for MAP: one M-step from the soft majority vote, where available.

        ``annotations`` (the user's ids) is given so that a model can align inputs indexed by
        worker or task ids, such as Dawid-Skene's ``initial_error``.
        """
        if self.em_update is None:
            raise NotImplementedError(f"{self.name}: no init_params")
        return self.em_update(None, soft_majority_vote(data), data)

    def worker_stats(self, params: Params, data: CrowdData) -> dict[str, Any]:
        """Derived per-worker quantities (leading dim: worker)."""
        return {}

    def task_stats(self, params: Params, data: CrowdData) -> dict[str, Any]:
        """Derived per-task quantities (leading dim: task)."""
        return {}

    # --- the NumPyro program --------------------------------------------------------------
    def __call__(self, data: CrowdData):
        """Run the model as a NumPyro program: priors, parameters, then the answers."""
        params = self.sample_params(data)
        log_prior, log_emit = self.log_terms(params, data, data.label)
        return observe_or_generate(log_prior, lambda _: log_emit, data)

    def log_likelihood(self, params: Params, data: CrowdData):
        """Exact marginal log-likelihood and posterior logits for given parameters."""
        from .core import marginalize

        lp, le = self.log_terms(params, data, data.label)
        return marginalize(lp, le, data)

    def check_data(self, data: CrowdData) -> None:
        """Raise a clear error when the model cannot take these data (e.g. binary only)."""

    # Models are static arguments of jitted kernels: equal settings -> equal hash -> one
    # compilation, however many times a user builds ``DawidSkene()``.
    def _static_key(self):
        return (type(self), tuple(sorted((k, _freeze(v)) for k, v in vars(self).items())))

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{type(self).__name__}({inner})"
