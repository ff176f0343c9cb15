r"""Crowdsourcing with difficulty: Han, Adiguzel & Carpenter's IRT family of rating models.

Dawid and Skene's two-coin raters (a sensitivity and a specificity per rater, on the log-odds
scale) meet item-response theory: each item has a difficulty (1PL), a discrimination (2PL)
and a guessing chance (3PL). Binary ratings only.

Generative story (plates: ``worker`` J, ``task`` I, ``answer`` N)::

    pi                     ~ Dirichlet(2, 2)            class frequencies (pi_1 ~ Beta(2, 2))
    alpha_spec_j           ~ Normal(2, 2)               rater j's specificity, log odds
    alpha_sens_j           ~ Normal(1, 2)               rater j's sensitivity, log odds,
                             restricted to  alpha_sens_j + alpha_spec_j > 0   (cooperative)
    beta_i                 ~ Normal(0, 1)               difficulty               (1PL, 2PL, 3PL)
    delta_i                ~ LogNormal(0, 0.25)         discrimination           (2PL, 3PL)
    lambda_i               ~ Beta(2, 2)                 guessing                 (3PL)
    z_i                    ~ Bernoulli(pi_1)
    Pr(y_n = 1 | z = 1)    = lambda_i + (1 - lambda_i) logit^-1(delta_i (alpha_sens_j - beta_i))
    Pr(y_n = 1 | z = 0)    = (1 - lambda_i) logit^-1(-delta_i (alpha_spec_j - beta_i))

with ``i = task_n``, ``j = worker_n``; the 1PL fixes ``delta = 1``, ``lambda = 0``, the 2PL
``lambda = 0``. With ``beta = 0``, ``delta = 1`` and ``lambda = 0`` this is two-coin
Dawid-Skene with sensitivity ``logit^-1(alpha_sens_j)`` and specificity
``logit^-1(alpha_spec_j)`` (``tests/test_irt.py`` checks it). These are the Stan programs
``stan/ab.stan`` (1PL), ``stan/a.stan`` (2PL) and ``stan/full.stan`` (3PL) of the paper's
repository, priors included.

**The cooperative constraint.** Stan declares ``vector<lower=-alpha_spec>[J] alpha_sens``:
the sensitivity/specificity pair of each rater lies above the spam line
(``sens + spec > 1``), which removes the likelihood's second, adversarial mode (the labels
flipped and every rater lying). The joint prior is the two independent normals restricted to
``alpha_sens + alpha_spec > 0``. Because both normals have scale 2, their sum and difference
are independent::

    alpha_sum_j  = alpha_sens_j + alpha_spec_j  ~ Normal(3, 2 sqrt 2) truncated to (0, inf)
    alpha_diff_j = alpha_sens_j - alpha_spec_j  ~ Normal(-1, 2 sqrt 2)

so the program samples ``alpha_sum`` and ``alpha_diff`` (a linear map with a constant
Jacobian: the same posterior as Stan's) and is its own exact simulator, as simulation-based
calibration needs. ``alpha_sens = (alpha_sum + alpha_diff) / 2`` and
``alpha_spec = (alpha_sum - alpha_diff) / 2`` are reported per worker.

Likelihood: with the true label summed out exactly (the shared
:func:`~crowdzoo.models.core.marginalize`), in log space: ``log Pr(y = 1 | z = 1) =
logaddexp(log lambda, log(1 - lambda) + log_sigmoid(delta (alpha_sens - beta)))`` and so on.

**The item effects integrated out inside the model** (``integrate_items=True``, opt-in).
The per-task parameters (``difficulty``, ``discrimination``, ``guessing``) have priors that
do not depend on anything else, so each task's likelihood with them summed out is a 1-3
dimensional integral, done by a fixed tensor-grid rule :meth:`IRT.item_rule` (Gauss-Hermite
nodes ``beta_q`` of ``Normal(0, 1)``, of ``log delta``, Gauss-Legendre nodes of
``Beta(2, 2)``; weights ``w_q``)::

    p(y_i | pi, alpha) = sum_q w_q sum_k pi_k prod_{n in i} Pr(y_n | z = k, beta_q, delta_q,
                                                                     lambda_q)

exact up to the quadrature error (below 5e-4 in log on the tests' crowds; on bluebirds, 39
answers per task, at most 0.004 per task with 24 difficulty nodes; the default is 40). NUTS
and SVI then sample only ``pi`` and the raters (2 J + 1 dimensions instead of 2 J + 1 + I to
3 I). The MAP is then the *marginal* posterior mode (item-response theory's marginal maximum
likelihood, Bock & Aitkin 1981), not the joint mode over the difficulties. Each task's
effects are reported as their conditional posterior mean and sd given the parameters
(:meth:`IRT.task_stats`: node weights ``w_q p(y_i | q) / p(y_i)``, item-response theory's
EAP), averaged over the draws; the per-task log-likelihood is the integrated one, as
PSIS-LOO over tasks wants. The simulator draws each task's effects from their continuous prior
(sites ``difficulty``, ...), so ``simulate(params=...)`` can fix them; posterior predictive
replicates (``Fit.posterior_predictive``, :func:`~crowdzoo.inference.ppc.ppc`) therefore
draw every task's effects afresh from the prior (new items on the same design), not from the
task's posterior as Han et al.'s ``GQ.stan`` does.

It pays where a task has many answers, which makes its difficulty the direction NUTS mixes
slowest along: bluebirds (39 answers per task), 1PL, 2 x (400 + 200) draws from the MAP: max
r_hat 1.21 -> 1.02, min ESS 7 -> 130 (2PL: 1.23 -> 1.03, 7 -> 121). Where tasks have few
answers and raters many parameters (rte: 10 answers per task, 164 raters) the raters mix as
slowly once the difficulties are gone and it hardly helps (1PL: r_hat 1.07 -> 1.05,
ESS 29 -> 34), while every gradient costs the grid: 40 nodes for the 1PL (~5x the joint model's
gradient), 40 x 8 for the 2PL and 40 x 8 x 8 for the 3PL (hundreds to thousands of times).
Hence opt-in (``benchmarks/results/irt_integrated.md`` has the numbers). With the effects as
parameters (the default, Stan's programs) the MAP is L-BFGS on the joint posterior and the
LOO integrates them out of each term afterwards (:meth:`IRT.task_quadrature`). The MAP is
L-BFGS either way (there is no closed-form M-step), started from two-coin estimates on the
soft majority vote.

References
----------
1. J. Han, M. Adiguzel, B. Carpenter. Crowdsourcing with Difficulty: A Bayesian Rating Model
   for Heterogeneous Items. arXiv:2405.19521, 2024. Stan code:
   https://github.com/bob-carpenter/crowdsource-computo (``stan/``).
2. A. P. Dawid and A. M. Skene. Maximum Likelihood Estimation of Observer Error-Rates Using
   the EM Algorithm. JRSS C 28(1):20-28, 1979.
3. A. Birnbaum. Some latent trait models and their use in inferring an examinee's ability.
   In Lord & Novick, Statistical Theories of Mental Test Scores, 1968 (the 2PL / 3PL).
4. R. D. Bock and M. Aitkin. Marginal maximum likelihood estimation of item parameters:
   application of an EM algorithm. Psychometrika 46(4):443-459, 1981 (item effects summed
   out by quadrature). https://doi.org/10.1007/BF02293801
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .base import CrowdModel, Params, soft_majority_vote
from .core import CrowdData, clamp_gold, observe_or_generate
from .quadrature import gauss_hermite_normal, gauss_legendre_beta
from .raykar import binary_table, pick_labels

__all__ = ["IRT", "IRT1PL", "IRT2PL", "IRT3PL"]

_SQRT8 = float(np.sqrt(8.0))
#: answers x nodes above which the integrated likelihood runs over chunks of nodes
_MAX_NODE_ANSWERS = 2 ** 21


@functools.lru_cache(maxsize=64)
def _item_rule(n_nodes: int, n_other: int, difficulty_prior, discrimination_prior,
               guessing_prior):
    """Return the tensor-grid rule over (difficulty[, discrimination][, guessing]).

    ``n_nodes`` difficulty nodes, ``n_other`` on each other axis (numpy constants).
    """
    b, lb = gauss_hermite_normal(n_nodes, *difficulty_prior)
    axes = [("difficulty", b, lb)]
    m = n_other
    if discrimination_prior is not None:
        x, lw = gauss_hermite_normal(m, *discrimination_prior)
        axes.append(("discrimination", np.exp(x), lw))
    if guessing_prior is not None:
        x, lw = gauss_legendre_beta(m, *guessing_prior)
        axes.append(("guessing", x, lw))
    grids = np.meshgrid(*[np.arange(len(a[2])) for a in axes], indexing="ij")
    nodes, log_w = {}, 0.0
    for (name, values, lw), idx in zip(axes, grids, strict=True):
        nodes[name] = np.asarray(values[idx.ravel()], np.float32)
        log_w = log_w + lw[idx.ravel()]
    return nodes, np.asarray(log_w, np.float32)


class IRT(CrowdModel):
    r"""Han, Adiguzel & Carpenter's rating model with item effects (the 3PL; see subclasses).

    Parameters
    ----------
    class_prior : float
        Dirichlet concentration of ``pi`` (the paper: ``pi ~ Beta(2, 2)``).
    spec_prior, sens_prior : (loc, scale)
        Normal priors of ``alpha_spec`` and ``alpha_sens`` before the cooperative restriction
        (the paper: ``(2, 2)`` and ``(1, 2)``). Both scales must be equal (the restriction is
        sampled through the independent sum and difference).
    difficulty_prior : (loc, scale)
        Normal prior of ``beta`` (the paper: ``(0, 1)``).
    discrimination_prior : (loc, scale)
        LogNormal prior of ``delta`` (the paper: ``(0, 0.25)``).
    guessing_prior : (a, b)
        Beta prior of ``lambda`` (the paper: ``(2, 2)``).
    integrate_items : bool
        True: sum each task's own parameters (difficulty, discrimination, guessing) out of
        its likelihood by quadrature inside the model, so MAP, SVI and NUTS see only ``pi``
        and the raters' parameters; the per-task effects are reported as their conditional
        posterior mean and sd given each draw (:meth:`task_stats`). False (default): the
        per-task effects are parameters (Stan's programs; the MAP is the joint mode over
        them). Worth it where a task has many answers (see the module docstring).
    item_nodes : int
        Gauss-Hermite nodes of the difficulty when ``integrate_items`` (the log
        discrimination and the guessing get ``max(3, item_nodes // 5)`` each; a tensor grid:
        40, 320 and 2,560 nodes for the 1PL, 2PL, 3PL by default).
    """

    name = "irt_3pl"
    title = "IRT 3PL rating model (Han et al.: sens/spec + difficulty, discrimination, guessing)"
    reference = ("Han, Adiguzel & Carpenter (2024), Crowdsourcing with Difficulty: A Bayesian "
                 "Rating Model for Heterogeneous Items, arXiv:2405.19521")
    binary_only = True
    #: which item effects the model has
    has_discrimination: ClassVar[bool] = True
    has_guessing: ClassVar[bool] = True

    def __init__(self, class_prior: float = 2.0, spec_prior=(2.0, 2.0), sens_prior=(1.0, 2.0),
                 difficulty_prior=(0.0, 1.0), discrimination_prior=(0.0, 0.25),
                 guessing_prior=(2.0, 2.0), integrate_items: bool = False,
                 item_nodes: int = 40):
        if not isinstance(integrate_items, (bool, np.bool_)):
            raise TypeError(f"integrate_items must be True or False, got {integrate_items!r}")
        if isinstance(item_nodes, bool) or not isinstance(item_nodes, (int, np.integer)) \
                or not 3 <= int(item_nodes) <= 200:
            raise ValueError(f"item_nodes must be an integer in [3, 200], got {item_nodes!r}")
        self.integrate_items = bool(integrate_items)
        self.item_nodes = int(item_nodes)
        pairs = {"spec_prior": spec_prior, "sens_prior": sens_prior,
                 "difficulty_prior": difficulty_prior,
                 "discrimination_prior": discrimination_prior, "guessing_prior": guessing_prior}
        for what, value in pairs.items():
            v = tuple(float(x) for x in value)
            if len(v) != 2 or not np.isfinite(v).all() or v[1] <= 0:
                raise ValueError(f"{what} must be two finite numbers, the second > 0; got "
                                 f"{value!r}")
            setattr(self, what, v)
        if self.spec_prior[1] != self.sens_prior[1]:
            raise ValueError(f"spec_prior and sens_prior must have the same scale, got "
                             f"{self.spec_prior[1]} and {self.sens_prior[1]}")
        if self.guessing_prior[0] <= 0:
            raise ValueError(f"guessing_prior must be positive, got {guessing_prior!r}")
        if not float(class_prior) > 0:
            raise ValueError(f"class_prior must be > 0, got {class_prior!r}")
        self.class_prior = float(class_prior)

    @property
    def answers_independent_given_label(self):  # type: ignore[override]
        """False when the item effects are summed out: they couple a task's answers."""
        return not self.integrate_items

    @property
    def integrates_task_parameters(self):  # type: ignore[override]
        """True when the item effects are summed out inside the likelihood."""
        return self.integrate_items

    @property
    def dims(self):  # type: ignore[override]
        """ArviZ dims of the parameter sites."""
        d = {"pi": ("true_class",), "alpha_sum": ("worker",), "alpha_diff": ("worker",),
             "difficulty": ("task",)}
        if self.has_discrimination:
            d["discrimination"] = ("task",)
        if self.has_guessing:
            d["guessing"] = ("task",)
        return d

    # --- priors ---------------------------------------------------------------------------
    def _sum_diff_prior(self):
        scale = self.sens_prior[1] * np.sqrt(2.0)
        return (self.sens_prior[0] + self.spec_prior[0], self.sens_prior[0] - self.spec_prior[0],
                scale)

    def sample_params(self, data: CrowdData) -> Params:
        """Sample ``pi``, per worker ``alpha_sum > 0`` and ``alpha_diff``, per task its effects."""
        sum_loc, diff_loc, scale = self._sum_diff_prior()
        pi = numpyro.sample("pi", dist.Dirichlet(jnp.full(data.n_classes, self.class_prior)))
        with numpyro.plate("worker", data.n_workers):
            alpha_sum = numpyro.sample("alpha_sum", dist.TruncatedNormal(sum_loc, scale, low=0.0))
            alpha_diff = numpyro.sample("alpha_diff", dist.Normal(diff_loc, scale))
        params = {"pi": pi, "alpha_sum": alpha_sum, "alpha_diff": alpha_diff}
        if not self.integrate_items:
            params.update(self.sample_item_effects(data))
        return params

    def sample_item_effects(self, data: CrowdData) -> Params:
        """Sample every task's difficulty (and discrimination, guessing) from its prior."""
        params = {}
        with numpyro.plate("task", data.n_tasks):
            params["difficulty"] = numpyro.sample("difficulty",
                                                  dist.Normal(*self.difficulty_prior))
            if self.has_discrimination:
                params["discrimination"] = numpyro.sample(
                    "discrimination", dist.LogNormal(*self.discrimination_prior))
            if self.has_guessing:
                params["guessing"] = numpyro.sample("guessing", dist.Beta(*self.guessing_prior))
        return params

    # --- likelihood -----------------------------------------------------------------------
    @staticmethod
    def alphas(params: Params):
        """``(alpha_sens, alpha_spec)`` from the sampled sum and difference."""
        s, d = params["alpha_sum"], params["alpha_diff"]
        return (s + d) / 2, (s - d) / 2

    def emission_table(self, sens, spec, beta, delta=1.0, lam=None):
        """Return ``log Pr(y = l | z = k)``, shape ``broadcast(...) + (2, 2)``.

        Raters with log-odds sensitivity ``sens`` and specificity ``spec`` on items with
        difficulty ``beta``, discrimination ``delta`` and guessing ``lam`` (None: no
        guessing); all broadcast.
        """
        a1 = delta * (sens - beta)  # z = 1: log odds of a correct "1"
        a0 = delta * (spec - beta)  # z = 0: log odds of a correct "0"
        ok1, bad1 = jax.nn.log_sigmoid(a1), jax.nn.log_sigmoid(-a1)
        ok0, bad0 = jax.nn.log_sigmoid(a0), jax.nn.log_sigmoid(-a0)
        if lam is not None:
            log_lam, log1m_lam = jnp.log(lam), jnp.log1p(-lam)
            ok1, bad1 = jnp.logaddexp(log_lam, log1m_lam + ok1), log1m_lam + bad1
            ok0, bad0 = jnp.logaddexp(log_lam, log1m_lam + ok0), log1m_lam + bad0
        return binary_table(ok1, bad1, ok0, bad0)

    def log_terms(self, params: Params, data: CrowdData, labels):
        """``log pi`` and each answer's two-coin emission with its task's item effects.

        With ``integrate_items``: the per-task ``log pi_k + log sum_q w_q prod_{n in t}
        Pr(y_n | z = k, node q)`` (the item effects summed out by :meth:`item_rule`) and
        zero emissions; with ``labels=None``, ``log pi`` and every answer's table with the
        item effects integrated for that answer alone (the simulator draws them per task
        instead: :meth:`generate`).
        """
        if self.integrate_items:
            log_pi = jnp.log(params["pi"])
            if labels is None:
                nodes, log_w = self.item_rule()
                sens, spec = self.alphas(params)
                table = self.emission_table(sens[data.worker][:, None],
                                            spec[data.worker][:, None], *self._node_effects(
                                                nodes, (None, slice(None))))  # (N, Q, 2, 2)
                one = jax.nn.logsumexp(table + log_w[None, :, None, None], axis=1)
                return log_pi, one
            per_node = self.per_node_log_lik(params, data, labels)  # (T, Q, K)
            _, log_w = self.item_rule()
            integrated = jax.nn.logsumexp(per_node + log_w[None, :, None], axis=1)
            return log_pi + integrated, jnp.zeros((labels.shape[0], data.n_classes))
        sens, spec = self.alphas(params)
        table = self.emission_table(
            sens[..., data.worker], spec[..., data.worker], params["difficulty"][..., data.task],
            params["discrimination"][..., data.task] if self.has_discrimination else 1.0,
            params["guessing"][..., data.task] if self.has_guessing else None)
        return jnp.log(params["pi"]), pick_labels(table, labels)

    # --- per-task parameters integrated out -----------------------------------------------
    def _node_effects(self, nodes, index):
        """``(beta, delta, lam)`` at the nodes, indexed by ``index`` (to broadcast)."""
        beta = nodes["difficulty"][index]
        delta = nodes["discrimination"][index] if self.has_discrimination else 1.0
        lam = nodes["guessing"][index] if self.has_guessing else None
        return beta, delta, lam

    def item_rule(self, n_nodes: int | None = None):
        """Quadrature over one task's own parameters under their prior.

        Returns ``(nodes, log_weights)``: ``nodes[site]`` is ``(Q,)`` (one value per node,
        the same for every task) and ``sum_q exp(log_weights[q]) f(nodes[.][q])``
        approximates ``E[f]`` under the prior of the per-task sites. Gauss-Hermite for the
        difficulty (and the log discrimination), Gauss-Legendre for the guessing chance; a
        tensor grid. By default (the rule inside the model) :attr:`item_nodes` difficulty
        nodes and ``max(3, item_nodes // 5)`` on each other axis: the difficulty is where a
        task's many answers make the integrand narrow (bluebirds' 39 answers per task, 2PL at
        its MAP: 24 x 8 nodes leave 0.04 of error on a task's log-likelihood, 40 x 8 0.005,
        40 x 6 as much; the discrimination axis hardly matters). With ``n_nodes`` (the LOO
        rule of :meth:`task_quadrature`): ``n_nodes`` x ``max(3, n_nodes // 3)``.
        """
        if n_nodes is None:
            n, other = self.item_nodes, max(3, self.item_nodes // 5)
        else:
            n = int(n_nodes)
            other = max(3, n // 3)
        nodes, log_w = _item_rule(n, other, self.difficulty_prior, self.discrimination_prior
                                  if self.has_discrimination else None,
                                  self.guessing_prior if self.has_guessing else None)
        return {k: jnp.asarray(v) for k, v in nodes.items()}, jnp.asarray(log_w)

    def task_quadrature(self, data: CrowdData, n_nodes: int = 24):
        """Return the LOO rule (:meth:`item_rule` with ``n_nodes``), or None.

        For the model whose item effects are parameters; None when the model integrates them
        itself (``integrate_items``: its per-task log-likelihood is the integrated one).
        """
        if self.integrate_items:
            return None
        return self.item_rule(n_nodes)

    def per_node_log_lik(self, params: Params, data: CrowdData, labels=None,
                         rule=None) -> jax.Array:
        """``log Pr(y_t | z_t = k, item effects at node q, raters)``, shape ``(T, Q, K)``.

        ``rule``: ``(nodes, log_weights)`` of :meth:`item_rule` (default: the model's own).
        An answer's term depends on the task only through the node, so it is tabled once per
        rater, observed label, node and class (``W x 2 x Q x 2``, ``N / W`` times fewer
        sigmoids than one per answer), gathered per answer and summed per task; over large
        grids (the 3PL's on thousands of answers) in chunks of nodes, so the ``(N, Q, K)``
        array stays small.
        """
        labels = data.label if labels is None else labels
        nodes, log_w = self.item_rule() if rule is None else rule
        sens, spec = self.alphas(params)
        sens_w, spec_w = sens[:, None, None], spec[:, None, None]  # (W, 1, 1)
        sign = jnp.array([-1.0, 1.0])[:, None]  # (2, 1): the observed label 0 / 1
        yes = jnp.array([False, True])[:, None]

        def block(sub):  # nodes (C,) -> (T, C, K)
            beta, delta, lam = self._node_effects(sub, (None, slice(None)))  # (1, C)
            e1 = jax.nn.log_sigmoid(sign * delta * (sens_w - beta))  # z = 1: (W, 2, C)
            e0 = jax.nn.log_sigmoid(-sign * delta * (spec_w - beta))  # z = 0
            if lam is not None:  # a correct answer may be a guess: lambda + (1 - lambda) p
                log_lam, log1m_lam = jnp.log(lam), jnp.log1p(-lam)
                e1 = jnp.where(yes, jnp.logaddexp(log_lam, log1m_lam + e1), log1m_lam + e1)
                e0 = jnp.where(yes, log1m_lam + e0, jnp.logaddexp(log_lam, log1m_lam + e0))
            table = jnp.stack([e0, e1], axis=-1)  # (W, 2, C, K)
            emit = table[data.worker, labels]  # (N, C, K): each answer's own label
            return jax.ops.segment_sum(emit, data.task, num_segments=data.n_tasks,
                                       indices_are_sorted=data.tasks_sorted)

        q = log_w.shape[0]
        chunk = max(1, min(q, _MAX_NODE_ANSWERS // max(int(labels.shape[0]), 1)))
        if chunk >= q:
            return block(nodes)
        n_chunks = -(-q // chunk)
        pad = n_chunks * chunk - q  # repeat the last node; its weight is not read twice
        stacked = {k: jnp.concatenate([v, jnp.repeat(v[-1:], pad)]).reshape(n_chunks, chunk)
                   for k, v in nodes.items()}
        out = jax.lax.map(block, stacked)  # (n_chunks, T, chunk, K)
        out = jnp.moveaxis(out, 0, 1).reshape(data.n_tasks, n_chunks * chunk, -1)
        return out[:, :q]

    def integrated_task_log_lik(self, params: Params, data: CrowdData,
                                n_nodes: int = 24) -> jax.Array:
        """Per-task log-likelihood with the task's item effects integrated out, ``(T,)``.

        The rule of :meth:`task_quadrature`, all nodes at once through
        :meth:`per_node_log_lik` (the base class scans the nodes one full likelihood at a
        time): ``log sum_k pi_k sum_q w_q p(y_t | k, node_q)``, gold clamped as everywhere.
        """
        rule = self.task_quadrature(data, n_nodes)
        if rule is None:
            return super().integrated_task_log_lik(params, data, n_nodes)
        per_node = self.per_node_log_lik(params, data, rule=rule)  # (T, Q, K)
        integrated = jax.nn.logsumexp(per_node + rule[1][None, :, None], axis=1)  # (T, K)
        logits = clamp_gold(jnp.log(params["pi"]) + integrated, data.gold)
        return jax.nn.logsumexp(logits, axis=-1)

    def item_posterior(self, params: Params, data: CrowdData) -> jax.Array:
        """Return the log posterior weights ``(T, Q)`` of each task's item-effect nodes.

        Given the parameters, the true label summed out, gold clamped.
        """
        from .core import clamp_gold

        nodes, log_w = self.item_rule()
        per_node = self.per_node_log_lik(params, data)  # (T, Q, K)
        log_pi = clamp_gold(jnp.broadcast_to(jnp.log(params["pi"]),
                                             (data.n_tasks, data.n_classes)), data.gold)
        joint = jax.nn.logsumexp(per_node + log_pi[:, None, :], axis=-1) + log_w[None]
        return joint - jax.nn.logsumexp(joint, axis=-1, keepdims=True)

    def task_stats(self, params: Params, data: CrowdData):
        """With ``integrate_items``: each task's effects' posterior mean and sd given the draw.

        ``difficulty`` / ``difficulty_sd`` (and ``discrimination``, ``guessing`` with their
        ``_sd``) under ``p(effects_t | y_t, pi, raters)``, from the node weights of
        :meth:`item_posterior`. Averaged over NUTS / SVI draws (``Fit.tasks()``) the mean is
        the posterior mean; its ``_low`` / ``_high`` are the interval of that conditional
        mean, narrower than the effect's own credible interval (``difficulty_sd`` gives its
        within-draw spread). Without integration: none (the effects are parameters).
        """
        if not self.integrate_items:
            return {}
        nodes, _ = self.item_rule()
        w = jnp.exp(self.item_posterior(params, data))  # (T, Q)
        out = {}
        for site, values in nodes.items():
            mean = w @ values
            out[site] = mean
            out[f"{site}_sd"] = jnp.sqrt(jnp.maximum(w @ values ** 2 - mean ** 2, 0.0))
        return out

    def generate(self, params: Params, data: CrowdData):
        """Simulate ``(z, y)``.

        With ``integrate_items`` each task's effects are drawn from their prior first (sites
        ``difficulty``, ...: the continuous model the quadrature integrates).
        """
        if not self.integrate_items:
            return super().generate(params, data)
        full = {**params, **self.sample_item_effects(data)}
        sens, spec = self.alphas(full)
        table = self.emission_table(
            sens[data.worker], spec[data.worker], full["difficulty"][data.task],
            full["discrimination"][data.task] if self.has_discrimination else 1.0,
            full["guessing"][data.task] if self.has_guessing else None)
        return observe_or_generate(jnp.log(full["pi"]), lambda _: table, data)

    # --- MAP start and derived quantities -------------------------------------------------
    def init_params(self, data: CrowdData) -> Params:
        """Start the MAP from two-coin estimates on the soft majority vote.

        A rater below the spam line is moved just above it; with the item effects as
        parameters (``integrate_items=False``) they start at ``beta = 0``, ``delta = 1``,
        ``lambda = 0.1``.
        """
        resp = soft_majority_vote(data)
        r = resp[data.task]
        y1 = (data.label == 1).astype(jnp.float32)
        w = data.n_workers
        n1 = jax.ops.segment_sum(r[:, 1], data.worker, w) + 2.0
        n0 = jax.ops.segment_sum(r[:, 0], data.worker, w) + 2.0
        sens = (jax.ops.segment_sum(r[:, 1] * y1, data.worker, w) + 1.0) / n1
        spec = (jax.ops.segment_sum(r[:, 0] * (1 - y1), data.worker, w) + 1.0) / n0
        a_sens, a_spec = jax.scipy.special.logit(sens), jax.scipy.special.logit(spec)
        pi1 = (resp[:, 1].sum() + 1.0) / (data.n_tasks + 2.0)
        params = {"pi": jnp.stack([1 - pi1, pi1]),
                  "alpha_sum": jnp.maximum(a_sens + a_spec, 0.5),
                  "alpha_diff": a_sens - a_spec,
                  }
        if self.integrate_items:
            return params
        params["difficulty"] = jnp.zeros(data.n_tasks)
        if self.has_discrimination:
            params["discrimination"] = jnp.ones(data.n_tasks)
        if self.has_guessing:
            params["guessing"] = jnp.full(data.n_tasks, 0.1)
        return params

    def worker_stats(self, params: Params, data: CrowdData):
        """Log-odds sensitivity / specificity and their probabilities at difficulty 0."""
        sens, spec = self.alphas(params)
        return {"alpha_sens": sens, "alpha_spec": spec, "sensitivity": jax.nn.sigmoid(sens),
                "specificity": jax.nn.sigmoid(spec)}


class IRT3PL(IRT):
    """IRT 3PL rating model: difficulty, discrimination and guessing per item (``full.stan``)."""


class IRT2PL(IRT):
    """IRT 2PL rating model: difficulty and discrimination per item (``a.stan``)."""

    name = "irt_2pl"
    title = "IRT 2PL rating model (Han et al.: sens/spec + difficulty, discrimination)"
    has_guessing = False


class IRT1PL(IRT):
    """IRT 1PL rating model: a difficulty per item (``ab.stan``)."""

    name = "irt_1pl"
    title = "IRT 1PL rating model (Han et al.: sens/spec + item difficulty)"
    has_discrimination = False
    has_guessing = False
