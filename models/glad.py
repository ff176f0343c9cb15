r"""GLAD: worker ability and task difficulty together (Whitehill et al. 2009).

Generative story (plates: ``worker`` W, ``task`` T, ``answer`` N; K classes)::

    alpha_i       ~ Normal(alphas_priors_mean_i, 1)      ability of worker i, in (-inf, inf)
    log beta_j    ~ Normal(betas_priors_mean_j, 1)       beta_j > 0: inverse difficulty of task j
    z_j           ~ Categorical(p)                       p fixed (``labels_priors``; uniform)
    a(i, j)       = sigmoid(alpha_i * beta_j)            chance that i answers j correctly
    y_n | z       = z_{task_n}                           with probability a(worker_n, task_n)
                    any other class, uniformly           with probability 1 - a(worker_n, task_n)

i.e. :math:`\Pr(y = k \mid z = c) = a` if :math:`k = c` and :math:`(1 - a) / (K - 1)` otherwise.
A worker with ``alpha > 0`` beats chance, ``alpha = 0`` guesses, ``alpha < 0`` is adversarial;
as ``beta_j -> 0`` task j becomes a coin flip for everyone, as ``beta_j -> inf`` every worker
with ``alpha > 0`` answers it correctly. The *difficulty* of a task is ``1 / beta_j``.

The MAP is found by EM, as in the paper: the E-step is the exact label posterior (the shared
:func:`~crowdzoo.models.core.marginalize`, gold labels clamp ``z``); the M-step maximizes the
expected complete-data log posterior

.. math::

    Q(\alpha, \log\beta) = \sum_n \sum_c q_{t_n}(c) \log \Pr(y_n \mid z = c, \alpha, \beta)
        + \sum_i \log \mathcal N(\alpha_i; \mu^\alpha_i, 1)
        + \sum_j \log \mathcal N(\log\beta_j; \mu^\beta_j, 1)

by at most ``m_step_max_iter`` L-BFGS steps (the paper and Crowd-Kit use conjugate gradient;
L-BFGS with a Wolfe line search needs fewer evaluations and every step increases ``Q``, so the
EM log posterior stays monotone — a generalized EM). The inner loop stops when the largest
gradient entry of ``Q`` is below ``m_step_tol`` (SciPy's ``gtol`` in Crowd-Kit). Everything
is pure JAX, so the whole EM runs jitted inside the shared ``lax.while_loop``.

Numerics: ``log a = log_sigmoid(alpha beta)`` and ``log(1 - a) = log_sigmoid(-alpha beta)``
never under- or overflow.

References
----------
1. J. Whitehill, P. Ruvolo, T. Wu, J. Bergsma and J. Movellan. Whose Vote Should Count More:
   Optimal Integration of Labels from Labelers of Unknown Expertise. Advances in Neural
   Information Processing Systems 22 (NIPS 2009), 2035-2043.
   https://proceedings.neurips.cc/paper/2009/hash/f899139df5e1059396431415e770c6dd-Abstract.html
2. D. Ustalov, N. Pavlichenko, B. Tseitlin. Learning from Crowds with Crowd-Kit. JOSS 9(96):
   6227, 2024 (the ``crowdkit.aggregation.GLAD`` implementation and parameterization).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params
from .core import CrowdData

__all__ = ["GLAD"]


def _array(value, what: str) -> np.ndarray:
    """Return a scalar or 1-d prior setting as a read-only float array, checked finite."""
    import pandas as pd

    if isinstance(value, (dict, pd.Series, pd.DataFrame)):
        raise TypeError(
            f"{what} must be a number or an array in the data's order; a dict / Series keyed "
            f"by ids is aligned by crowdzoo.aggregation.GLAD"
        )
    arr = np.array(value, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError(f"{what} must be a scalar or 1-d, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} has non-finite values")
    arr.setflags(write=False)
    return arr


class GLAD(CrowdModel):
    r"""GLAD (Generative model of Labels, Abilities and Difficulties), K classes.

    Parameters
    ----------
    labels_priors : None or array (K,)
        Fixed class probabilities ``p`` in the data's class order (normalized here).
        ``None``: uniform.
    alphas_priors_mean : float or array (W,)
        Prior mean of each worker's ability ``alpha_i`` (default 1, as in the paper's code and
        Crowd-Kit), in the data's worker order.
    betas_priors_mean : float or array (T,)
        Prior mean of each task's ``log beta_j`` (default 1), in the data's task order.
    m_step_max_iter : int
        Most L-BFGS steps per M-step (Crowd-Kit: conjugate-gradient iterations, 25).
    m_step_tol : float
        An M-step stops when ``max |dQ/dtheta| < m_step_tol`` (Crowd-Kit: 0.01).
    init_alpha, init_log_beta : float
        Starting point of EM (1 and 1, as in Crowd-Kit: a positive ability breaks the
        symmetry between a labelling and its mirror image).

    Notes
    -----
    Priors keyed by the user's ids (Crowd-Kit's Series) are aligned to arrays by
    :class:`crowdzoo.aggregation.GLAD` before the model is built: a model only sees codes.

    Examples
    --------
    >>> import crowdzoo
    >>> data = crowdzoo.data.load_demo()
    >>> fit = crowdzoo.fit("glad", data, method="map")
    >>> hardest = fit.tasks().sort_values("difficulty").tail(5)
    """

    name = "glad"
    title = "GLAD (worker ability x task difficulty)"
    reference = (
        "Whitehill, Ruvolo, Wu, Bergsma & Movellan (2009), Whose Vote Should Count More: "
        "Optimal Integration of Labels from Labelers of Unknown Expertise, NIPS 22"
    )
    dims = {"alpha": ("worker",), "log_beta": ("task",)}

    def __init__(
        self,
        labels_priors=None,
        alphas_priors_mean=1.0,
        betas_priors_mean=1.0,
        m_step_max_iter: int = 25,
        m_step_tol: float = 0.01,
        init_alpha: float = 1.0,
        init_log_beta: float = 1.0,
    ):
        if int(m_step_max_iter) < 1:
            raise ValueError(f"m_step_max_iter must be >= 1, got {m_step_max_iter}")
        if not float(m_step_tol) > 0:
            raise ValueError(f"m_step_tol must be > 0, got {m_step_tol}")
        self.labels_priors = None if labels_priors is None else _array(labels_priors,
                                                                       "labels_priors")
        if self.labels_priors is not None and (self.labels_priors <= 0).any():
            raise ValueError("labels_priors must be positive and finite")
        self.alphas_priors_mean = _array(alphas_priors_mean, "alphas_priors_mean")
        self.betas_priors_mean = _array(betas_priors_mean, "betas_priors_mean")
        self.m_step_max_iter = int(m_step_max_iter)
        self.m_step_tol = float(m_step_tol)
        self.init_alpha = float(init_alpha)
        self.init_log_beta = float(init_log_beta)

    # --- priors -------------------------------------------------------------------------
    def _setting(self, attr: str, size: int) -> jax.Array:
        arr = jnp.asarray(getattr(self, attr), jnp.float32)
        return jnp.full((size,), arr) if arr.ndim == 0 else arr

    def log_class_prior(self, data: CrowdData) -> jax.Array:
        """``log p`` (K,): the fixed class probabilities, normalized."""
        if self.labels_priors is None:
            return jnp.full((data.n_classes,), -jnp.log(float(data.n_classes)))
        p = self._setting("labels_priors", data.n_classes)
        return jnp.log(p) - jnp.log(p.sum())

    def alpha_prior_mean(self, data: CrowdData) -> jax.Array:
        """Prior mean of ``alpha`` per worker (W,)."""
        return self._setting("alphas_priors_mean", data.n_workers)

    def log_beta_prior_mean(self, data: CrowdData) -> jax.Array:
        """Prior mean of ``log beta`` per task (T,)."""
        return self._setting("betas_priors_mean", data.n_tasks)

    def check_data(self, data: CrowdData) -> None:
        """Check that the array-valued priors have one entry per worker / task / class."""
        super().check_data(data)
        for attr, size, what in (("alphas_priors_mean", data.n_workers, "worker"),
                                 ("betas_priors_mean", data.n_tasks, "task"),
                                 ("labels_priors", data.n_classes, "class")):
            value = getattr(self, attr)
            if value is not None and value.ndim > 0 and value.shape != (size,):
                raise ValueError(f"{attr} must be a scalar or have shape ({size},) (one per "
                                 f"{what}), got shape {value.shape}")

    # --- the NumPyro program --------------------------------------------------------------
    def sample_params(self, data: CrowdData) -> Params:
        """``alpha_i ~ Normal`` in plate worker, ``log beta_j ~ Normal`` in plate task."""
        with numpyro.plate("worker", data.n_workers):
            alpha = numpyro.sample("alpha", dist.Normal(self.alpha_prior_mean(data), 1.0))
        with numpyro.plate("task", data.n_tasks):
            log_beta = numpyro.sample("log_beta", dist.Normal(self.log_beta_prior_mean(data), 1.0))
        return {"alpha": alpha, "log_beta": log_beta}

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log p`` and ``log Pr(y_n | z=c)``: ``log a`` if ``y_n = c``, else ``log((1-a)/(K-1))``.

        With ``labels=None``, the full ``(N, K, K)`` table ``[answer, true class, label]``.
        """
        K = data.n_classes
        x = params["alpha"][data.worker] * jnp.exp(params["log_beta"][data.task])
        right = jax.nn.log_sigmoid(x)[:, None]
        wrong = (jax.nn.log_sigmoid(-x) - jnp.log(K - 1.0))[:, None]
        log_p = self.log_class_prior(data)
        if labels is None:
            eye = jnp.eye(K, dtype=bool)[None]
            return log_p, jnp.where(eye, right[:, :, None], wrong[:, :, None])
        hit = labels[:, None] == jnp.arange(K)[None, :]
        return log_p, jnp.where(hit, right, wrong)

    # --- EM with a gradient M-step ----------------------------------------------------------
    def m_step_objective(self, params: Params, resp: jax.Array, data: CrowdData) -> jax.Array:
        """``Q``: the expected complete-data log posterior of ``(alpha, log beta)``.

        ``resp`` is the ``(T, K)`` label posterior of the E-step. The class-prior term
        ``sum_t q_t . log p`` is left out: ``p`` is fixed, so it does not move the optimum.
        """
        _, log_emit = self.log_terms(params, data, data.label)
        expected = (resp[data.task] * log_emit).sum()
        prior = (dist.Normal(self.alpha_prior_mean(data), 1.0).log_prob(params["alpha"]).sum()
                 + dist.Normal(self.log_beta_prior_mean(data), 1.0)
                 .log_prob(params["log_beta"]).sum())
        return expected + prior

    has_em = True

    def em_update(self, params, resp, data: CrowdData) -> Params:
        """M-step: up to ``m_step_max_iter`` L-BFGS steps on ``-Q``, warm-started at ``params``.

        Pure JAX (a ``lax.while_loop``), so it runs inside the jitted EM loop. The objective is
        divided by the number of answers for a well-scaled line search; the stopping rule is
        on the gradient of ``Q`` itself, as in Crowd-Kit.
        """
        import optax

        n = float(max(data.n_answers, 1))
        x0 = {"alpha": params["alpha"], "log_beta": params["log_beta"]}

        def objective(x):
            return -self.m_step_objective(x, resp, data) / n

        def grad_inf_norm(g):
            return n * jnp.maximum(jnp.abs(g["alpha"]).max(), jnp.abs(g["log_beta"]).max())

        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(objective)
        _, g0 = jax.value_and_grad(objective)(x0)

        def cond(state):
            _, _, it, gnorm = state
            return (it < self.m_step_max_iter) & (gnorm >= self.m_step_tol)

        def body(state):
            x, opt_state, it, _ = state
            value, grad = value_and_grad(x, state=opt_state)
            updates, opt_state = opt.update(grad, opt_state, x, value=value, grad=grad,
                                            value_fn=objective)
            x = optax.apply_updates(x, updates)
            # the line search leaves the gradient at the accepted point in the state
            new_grad = optax.tree_utils.tree_get(opt_state, "grad")
            return x, opt_state, it + 1, grad_inf_norm(new_grad)

        state = (x0, opt.init(x0), jnp.asarray(0), grad_inf_norm(g0))
        x, *_ = jax.lax.while_loop(cond, body, state)
        return {"alpha": x["alpha"], "log_beta": x["log_beta"]}

    def _start(self, data: CrowdData) -> Params:
        return {"alpha": jnp.full((data.n_workers,), self.init_alpha, jnp.float32),
                "log_beta": jnp.full((data.n_tasks,), self.init_log_beta, jnp.float32)}

    def init_params(self, data: CrowdData) -> Params:
        """EM's start (``alpha = 1``, ``log beta = 1``, as Crowd-Kit).

        The first EM iteration's E-step at this start is a soft majority vote (all workers
        alike), as in the paper's and Crowd-Kit's code.
        """
        return self._start(data)

    # --- derived quantities ---------------------------------------------------------------
    def task_stats(self, params: Params, data: CrowdData):
        """``beta`` (inverse difficulty) and ``difficulty = 1 / beta`` per task."""
        log_beta = params["log_beta"]
        return {"beta": jnp.exp(log_beta), "difficulty": jnp.exp(-log_beta)}

    def worker_stats(self, params: Params, data: CrowdData):
        """``accuracy``: the mean of ``a(i, j) = sigmoid(alpha_i beta_j)`` over i's own tasks."""
        a = jax.nn.sigmoid(params["alpha"][data.worker] * jnp.exp(params["log_beta"][data.task]))
        total = jax.ops.segment_sum(a, data.worker, num_segments=data.n_workers)
        count = jax.ops.segment_sum(jnp.ones_like(a), data.worker, num_segments=data.n_workers)
        return {"accuracy": total / jnp.maximum(count, 1.0)}
