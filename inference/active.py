r"""Which task to label next: the expected information gain of one more answer.

A fit gives, for every task ``t``, the exact posterior of its true label ``z_t`` and, for every
worker, the model's parameters. One more answer ``y'`` to task ``t`` is worth what it is
expected to teach about ``z_t``. :func:`next_tasks` ranks tasks (or task-worker pairs) by that
expected information gain; :func:`settled_tasks` lists the tasks that need no more answers.

The gain
--------
Write ``q_s(k) = p(z_t = k | y, theta_s)`` for the exact label posterior of task ``t`` given
the answers so far ``y`` and one set of parameters ``theta_s`` (the MAP, or one posterior draw
of SVI / NUTS), and ``e_s(k, l) = p(y' = l | z_t = k, theta_s)`` for the emission of the next
answer, by worker ``w``: the model's own table, ``model.log_terms(params, pairs, None)`` on a
:class:`~crowdzoo.models.CrowdData` whose task / worker arrays are the candidate pairs (same
sizes, features and gold as the fit's data, so per-task parameters such as GLAD's difficulty
and per-task features index correctly). Then, exactly,

.. math::

    p_s(y' = l) = \sum_k q_s(k) e_s(k, l), \qquad
    p_s(z_t = k \mid y' = l) = q_s(k) e_s(k, l) / p_s(y' = l),

    g_s(t, w) = H[q_s] - \sum_l p_s(y' = l) H[p_s(z_t \mid y' = l)]
             = \sum_{k, l} q_s(k) e_s(k, l) \log \frac{e_s(k, l)}{p_s(y' = l)},

the mutual information of ``z_t`` and ``y'`` given ``theta_s``, computed in the second form
(a Kullback-Leibler divergence, so no difference of two nearly equal entropies). The reported
gain averages it over the ``S`` draws (``S = 1`` for a MAP fit):

.. math::

    \mathrm{EIG}(t, w) = \frac1S \sum_s g_s(t, w)
        \approx E_{\theta \mid y}\big[ I(z_t; y' \mid \theta, y) \big]
        = H(z_t \mid \theta, y) - E_{y' \mid y}\, H(z_t \mid \theta, y, y').

It is the expected reduction of the *posterior-averaged* entropy
``H(z_t | theta, y) = E_{theta | y} H[p(z_t | theta, y)]``, with the draws re-weighted by the
new answer as Bayes' rule does: ``p(y' | y) p(theta | y, y') = p(theta | y) p(y' | theta, y)``,
so ``E_{y'|y} E_{theta|y,y'} H(z_t | theta, y, y') = E_{theta|y} E_{y'|theta,y} H(z_t | theta,
y, y')``, which is the per-draw average above. We use the per-draw conditional posteriors, not
the averaged one: the mutual information of ``z_t`` and ``y'`` under the averaged posterior
``mean_s q_s`` (the Rao-Blackwellized :meth:`~crowdzoo.inference.Fit.task_posterior`) would
also count what the answer says about ``theta`` (``I(z; y') = EIG + I(theta; y') -
I(theta; y' | z)``); the per-draw gain is the part about the task's label. For a MAP fit the
two agree. Every parameter is held at its value (per draw): the gain does not count what the
answer would teach about the worker or a classifier.

Who gives the next answer
-------------------------
* ``workers=None`` (the usual case on a crowdsourcing platform, where the requester picks the
  task and the platform the worker): the next answer to task ``t`` comes from a worker drawn
  from the crowd in proportion to their share of the answers so far, ``r_t(w) ∝ n_w``, among
  the workers who have not answered ``t`` yet. The worker's identity comes with the answer and
  is independent of ``z_t``, so ``I(z_t; (w, y')) = sum_w r_t(w) EIG(t, w)``: the gain of a
  task is the share-weighted average of its pairs' gains.
* ``workers=[ids]``: every (task, worker) pair with those workers is ranked with that worker's
  own parameters.

The models treat a repeated answer of the same worker to the same task as a new, independent
answer; in practice a worker asked again mostly repeats themself, so the model would overstate
its value. Pairs already answered are therefore left out (``allow_repeats=True`` keeps them).
Tasks whose label the fit knows (gold passed to the fit, which clamps ``z``) are never
suggested; gold held out for scoring (``fit(..., use_gold=False)``) does not count as known.

Which models
------------
Every model with a likelihood whose answers are conditionally independent given the true label
and the parameters: the emission of one more answer is a ``(K, L)`` table, and the gain above is
exact (Dawid-Skene and its relatives, one-coin, GLAD, honest / biased worker, community,
and the learning-from-crowds models Raykar and Yan, whose classifier only sets the task's prior:
it is held at its fitted value, as every parameter is). It does not apply to, and raises a
``ValueError`` for, a baseline without a likelihood (majority vote) and a model whose
likelihood plugs in a statistic of the task's own answers (``difficulty_fixed``: one more answer
changes the probability of every answer of its task).

:func:`replay` replays a finished crowd (a pool of answers per task) as if its answers had
been bought in rounds, to compare allocation rules on data with gold
(``benchmarks/active_labelling.py``).

Cost: ``O(S * (N + P) * K * L)`` for ``S`` draws, ``N`` answers and ``P`` candidate pairs
(``P = tasks x workers`` without ``workers``), in blocks of pairs that fit in memory.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

__all__ = ["check_model", "next_tasks", "pair_information_gain", "replay", "settled_tasks"]

#: columns of the table of :func:`next_tasks`
COLUMNS = ("expected_information_gain", "entropy", "p_max", "label", "n_answers")
#: draws are processed in chunks whose task posteriors hold at most this many numbers
POSTERIOR_ENTRIES = 2 ** 24


# --- the kernel (pure JAX) -------------------------------------------------------------------
def _mutual_information(log_q: jax.Array, table: jax.Array) -> jax.Array:
    """Compute ``sum_{k,l} q(k) e(k,l) log(e(k,l) / p(l))`` per pair.

    From ``log q (P, K)`` and ``log e (P, K, L)``; terms with ``q(k) e(k, l) = 0`` contribute 0.
    """
    joint = log_q[:, :, None] + table  # log p(z = k, y' = l)
    log_py = jax.nn.logsumexp(joint, axis=1, keepdims=True)  # log p(y' = l)
    alive = joint > -jnp.inf
    safe = jnp.where(alive, table - log_py, 0.0)
    return jnp.where(alive, jnp.exp(joint) * safe, 0.0).sum(axis=(1, 2))


@partial(jax.jit, static_argnames=("model",))
def _log_posteriors(model, draws, data):
    """``log p(z_t = k | y, theta_s)`` per draw, ``(S, T, K)``."""
    return jax.lax.map(
        lambda params: jax.nn.log_softmax(model.log_likelihood(params, data).logits, axis=-1),
        draws)


@partial(jax.jit, static_argnames=("model",))
def _block_gain(model, draws, weight, log_post, pairs):
    """Weighted sum over draws of the gain of each pair ``(pairs.task[i], pairs.worker[i])``.

    ``pairs`` is a :class:`CrowdData` without answers whose task / worker arrays are the
    candidate pairs; ``log_post`` the per-draw task posteriors; ``weight`` 1 per draw (0 for
    padding). Nothing here has the shape of the answers, so a new answer count does not
    recompile it.
    """
    task = pairs.task
    n_pairs, n_classes = task.shape[0], pairs.n_classes

    def step(acc, xs):
        params, w, log_q = xs
        _, table = model.log_terms(params, pairs, None)
        table = jnp.broadcast_to(table, (n_pairs, n_classes, table.shape[-1]))
        return acc + w * _mutual_information(log_q[task], table), None

    total, _ = jax.lax.scan(step, jnp.zeros(n_pairs, jnp.float32), (draws, weight, log_post))
    return total


def _block_size(n_classes: int) -> int:
    """Pairs per block: about 4M table entries (a few tens of MB of temporaries)."""
    return int(max(1024, 2 ** int(np.log2(max(1, 2 ** 22 // (n_classes * n_classes))))))


# --- the facade --------------------------------------------------------------------------------
def check_model(model) -> None:
    """Raise a ValueError when the gain does not apply to ``model`` (see the module docstring)."""
    from ..models import CrowdModel

    name = getattr(model, "name", type(model).__name__)
    if not isinstance(model, CrowdModel):  # a Baseline such as majority vote
        raise ValueError(
            f"{name} is a baseline without a likelihood: it has no model of the next answer, "
            f"so no information gain; fit a model such as 'dawid_skene' or 'one_coin'"
        )
    if not model.proper_likelihood:
        raise ValueError(
            f"{name}'s likelihood plugs in a statistic of each task's own answers, so one more "
            f"answer changes the probability of every answer of its task: the gain of one answer "
            f"is not defined by an emission table; use a model with a proper likelihood "
            f"(e.g. 'difficulty_adaptive' instead of 'difficulty_fixed')"
        )
    if not model.answers_independent_given_label:
        raise ValueError(
            f"{name} sums a per-task item effect out next to the true label, so a task's next "
            f"answer depends on its answers so far (not only on the label): the gain of one "
            f"answer is not defined by an emission table; use a model without an item effect "
            f"(e.g. 'hierarchical_dawid_skene' or 'dawid_skene')"
        )


def _check_fit(fit):
    from .result import Fit

    if not isinstance(fit, Fit):
        raise TypeError(f"expected a crowdzoo Fit (from crowdzoo.fit), got {type(fit).__name__}")
    check_model(fit.model)
    if not (fit.params or fit.has_draws):
        raise ValueError(
            f"{fit.model.name} is a baseline without a likelihood: it has no model of the next "
            f"answer, so no information gain; fit a model such as 'dawid_skene' or 'one_coin'"
        )
    return fit.model


def _draws(fit) -> dict:
    """Parameters with a leading draw axis (one draw for a MAP fit)."""
    if fit.has_draws:
        return {k: jnp.asarray(np.asarray(v).reshape((-1,) + v.shape[2:]))
                for k, v in fit.samples.items()}
    return {k: jnp.asarray(v)[None] for k, v in fit.params.items()}


def pair_information_gain(fit, task, worker) -> np.ndarray:
    """Compute the expected information gain of one answer of ``worker[i]`` to ``task[i]``.

    The low-level kernel of :func:`next_tasks` (see the module docstring for the formula):
    no candidate filtering, no ranking.

    Parameters
    ----------
    fit : Fit
        A fit of a model with a likelihood (MAP, SVI or NUTS).
    task, worker : int arrays (P,)
        Task and worker *codes* (``fit.annotations`` order), not the user's ids.

    Returns
    -------
    numpy.ndarray (P,)
        The gain in nats, averaged over the draws of an SVI / NUTS fit.
    """
    model = _check_fit(fit)
    data = fit.data
    task = np.asarray(task, np.int32).reshape(-1)
    worker = np.asarray(worker, np.int32).reshape(-1)
    if task.shape != worker.shape:
        raise ValueError(f"task and worker must have the same length, got {task.size} and "
                         f"{worker.size}")
    for what, codes, size in (("task", task, data.n_tasks), ("worker", worker, data.n_workers)):
        bad = (codes < 0) | (codes >= size)
        if bad.any():
            raise ValueError(f"{what} codes must lie in [0, {size}); out of range at positions "
                             f"{np.flatnonzero(bad)[:5].tolist()}")
    if task.size == 0:
        return np.zeros(0)
    draws = _draws(fit)
    n_draws = jax.tree.leaves(draws)[0].shape[0]
    block = _block_size(data.n_classes)
    template = dataclasses.replace(data, task=data.task[:0], worker=data.worker[:0], label=None,
                                   tasks_sorted=False)
    # pairs padded to a power of two (up to the block size): few shapes, few compilations
    size = min(block, max(256, 1 << int(np.ceil(np.log2(task.size)))))
    # draws in chunks whose task posteriors (chunk, T, K) take at most ~64 MB
    chunk = int(min(n_draws, max(1, POSTERIOR_ENTRIES // (data.n_tasks * data.n_classes))))
    n_chunks = -(-n_draws // chunk)
    out = np.zeros(task.size)
    try:
        for c in range(n_chunks):
            idx = np.arange(c * chunk, (c + 1) * chunk)
            weight = jnp.asarray(idx < n_draws, jnp.float32)
            take = np.minimum(idx, n_draws - 1)
            part = jax.tree.map(lambda v, take=take: v[take], draws)
            log_post = _log_posteriors(model, part, data)
            for start in range(0, task.size, size):
                t = task[start:start + size]
                w = worker[start:start + size]
                pad = size - t.size
                pairs = dataclasses.replace(template, task=jnp.asarray(np.pad(t, (0, pad))),
                                            worker=jnp.asarray(np.pad(w, (0, pad))))
                gain = _block_gain(model, part, weight, log_post, pairs)
                out[start:start + t.size] += np.asarray(gain, np.float64)[:t.size]
        out /= n_draws
    except NotImplementedError as err:
        raise ValueError(f"{model.name} has no emission table of the next answer ({err}); "
                         f"the information gain needs one") from None
    if not np.isfinite(out).all():
        raise FloatingPointError(f"{model.name}: non-finite information gain")
    # the exact gain is >= 0; float32 rounding can leave a -1e-8
    return np.maximum(out, 0.0)


def _worker_codes(fit, workers) -> np.ndarray:
    """Return the codes of the given worker ids (the user's ids; strings match too)."""
    if isinstance(workers, (str, bytes)) or not np.iterable(workers):
        raise TypeError(f"workers must be a list of worker ids, got {type(workers).__name__}")
    ids = list(dict.fromkeys(workers))  # unique, in the given order
    if not ids:
        raise ValueError("workers is empty; pass at least one worker id (or None for the crowd)")
    index = fit.annotations.worker_ids
    by_str = {str(w): i for i, w in enumerate(index)}
    codes, missing = [], []
    for w in ids:
        i = index.get_indexer([w])[0]
        if i < 0:
            i = by_str.get(str(w), -1)
        (missing if i < 0 else codes).append(w if i < 0 else int(i))
    if missing:
        raise ValueError(f"{len(missing)} worker id(s) not in the fitted data (only its workers "
                         f"have fitted parameters): {missing[:5]}")
    return np.asarray(codes, np.int32)


def _task_table(fit) -> pd.DataFrame:
    """Per-task entropy, p_max, label and answer count, from the fit's task posterior."""
    post = fit.task_posterior()
    p = post.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    a = fit.annotations
    return pd.DataFrame(
        {"entropy": np.maximum(entropy, 0.0), "p_max": p.max(axis=1),
         "label": np.asarray(a.classes)[p.argmax(axis=1)],
         "n_answers": np.bincount(a.task, minlength=a.n_tasks)},
        index=post.index,
    )


def _check_n(n):
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be a positive integer (or None for all), got {n!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return int(n)


def next_tasks(fit, n: int | None = 10, workers=None, *, allow_repeats: bool = False
               ) -> pd.DataFrame:
    """Rank the tasks (or task-worker pairs) whose next answer is expected to teach most.

    Ranks by the expected information gain about the task's true label of one more answer,
    under the model's posterior predictive of that answer (averaged over the draws of an SVI /
    NUTS fit); see :mod:`crowdzoo.inference.active` for the formula.

    Parameters
    ----------
    fit : Fit
        A fit of a model with a likelihood (not majority vote, not ``difficulty_fixed``).
    n : int or None
        How many rows to return (None: every candidate, ranked).
    workers : list of worker ids, optional
        None: rank tasks; the next answer comes from a worker drawn from the crowd in proportion
        to their number of answers, among those who have not answered the task. A list of ids
        (workers of the fitted data): rank (task, worker) pairs, each with that worker's own
        parameters. The gains are for one answer each, not jointly: two pairs of the same task
        in the top ``n`` overlap in what they teach.
    allow_repeats : bool
        Also consider a worker answering a task they already answered (the models count a
        repeat as independent evidence, which a repeat seldom is). Default False.

    Returns
    -------
    pandas.DataFrame
        Indexed by task id (``workers=None``) or by (task, worker); columns
        ``expected_information_gain`` (nats), ``entropy`` (nats, of
        :meth:`Fit.task_posterior`), ``p_max`` and ``label`` (its most probable class) and
        ``n_answers``; sorted by gain (ties: higher entropy first, then data order). Tasks
        whose label was given to the fit as gold are never suggested.

    Examples
    --------
    >>> import crowdzoo
    >>> fit = crowdzoo.fit("dawid_skene", crowdzoo.data.load_demo())
    >>> crowdzoo.next_tasks(fit, 5)  # doctest: +SKIP
    """
    _check_fit(fit)
    n = _check_n(n)
    a, data = fit.annotations, fit.data
    known = np.asarray(data.gold) >= 0
    answered = np.zeros((a.n_tasks, a.n_workers), bool)
    answered[np.asarray(a.task), np.asarray(a.worker)] = True
    share = np.bincount(a.worker, minlength=a.n_workers).astype(float)
    tasks = np.flatnonzero(~known).astype(np.int32)
    if workers is None:
        pool = np.flatnonzero(share > 0).astype(np.int32)
    else:
        pool = _worker_codes(fit, workers)
    t = np.repeat(tasks, pool.size)
    w = np.tile(pool, tasks.size)
    eligible = np.ones(t.size, bool) if allow_repeats else ~answered[t, w]
    t, w = t[eligible], w[eligible]
    gain = pair_information_gain(fit, t, w)
    table = _task_table(fit)
    if workers is None:
        weight = share[w]
        total = np.bincount(t, weights=weight, minlength=a.n_tasks)
        value = np.bincount(t, weights=weight * gain, minlength=a.n_tasks)
        cand = np.flatnonzero(total > 0)
        gain_of = value[cand] / total[cand]
        out = table.iloc[cand].copy()
        order_keys = (cand,)
        attrs = {"worker_distribution": "each worker's share of the answers, among the workers "
                                        "who have not answered the task"
                                        + (" (repeats allowed)" if allow_repeats else "")}
    else:
        rows = table.iloc[t]
        out = rows.copy()
        out.index = pd.MultiIndex.from_arrays([rows.index, a.worker_ids[w]],
                                              names=["task", "worker"])
        gain_of = gain
        order_keys = (w, t)
        attrs = {"worker_distribution": "the given workers"}
    out.insert(0, "expected_information_gain", gain_of)
    order = np.lexsort((*order_keys, -out["entropy"].to_numpy(), -gain_of))
    out = out.iloc[order if n is None else order[:n]]
    out.attrs.update(attrs, model=fit.model.name, method=fit.method)
    return out


def settled_tasks(fit, threshold: float = 0.95) -> pd.DataFrame:
    """Tasks whose label posterior's largest probability is at least ``threshold``.

    A stopping rule: such tasks need no more answers (under the model). Tasks whose label was
    given to the fit as gold are settled (``p_max = 1``, column ``gold`` True).

    Parameters
    ----------
    fit : Fit
        Any fit (the task posterior is all it reads; a majority-vote fit works too).
    threshold : float
        In (0, 1].

    Returns
    -------
    pandas.DataFrame
        Indexed by task id; columns ``label``, ``p_max``, ``entropy`` (nats), ``n_answers``,
        ``gold``; sorted by ``p_max`` (highest first), ties in data order.
    """
    from .result import Fit

    if not isinstance(fit, Fit):
        raise TypeError(f"expected a crowdzoo Fit (from crowdzoo.fit), got {type(fit).__name__}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
        raise TypeError(f"threshold must be a number in (0, 1], got {threshold!r}")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    table = _task_table(fit)[["label", "p_max", "entropy", "n_answers"]]
    table["gold"] = np.asarray(fit.data.gold) >= 0
    keep = table["p_max"].to_numpy() >= float(threshold)
    out = table[keep]
    order = np.lexsort((np.arange(len(out)), -out["p_max"].to_numpy()))
    return out.iloc[order]


# --- replaying a finished crowd: what an allocation rule would have bought ---------------------
STRATEGIES = ("eig", "entropy", "round_robin")


def replay(pool, truth, strategy: str = "eig", *, start: int = 2, budget: float = 5.0,
           batch: float | int = 0.05, model="dawid_skene", seed: int = 0,
           progress: bool = False) -> pd.DataFrame:
    """Replay a finished crowd as if its answers had been bought one round at a time.

    Every task starts with ``start`` answers drawn at random from its pool (its answers in
    ``pool``); then, in rounds, the model is fitted (MAP) to the answers revealed so far, the
    ``batch`` best tasks by ``strategy`` that still have unrevealed pool answers get one more
    (the next of their pool, in a random order fixed by ``seed``: the worker is not chosen, as
    on a crowdsourcing platform), until ``budget`` answers per task on average are spent.

    Parameters
    ----------
    pool : Annotations
        All the answers there are (e.g. 10 per task).
    truth : pandas.Series
        The true label of (some of) the tasks, by task id: used only to score.
    strategy : {"eig", "entropy", "round_robin"}
        ``"eig"``: :func:`next_tasks` (expected information gain, crowd mode);
        ``"entropy"``: uncertainty sampling, the highest entropy of the label posterior;
        ``"round_robin"``: uniform allocation, the tasks with the fewest answers.
        Ties are broken at random.
    start, budget : int, float
        Answers per task at the start, and on average at the end.
    batch : float or int
        Answers revealed per round: a fraction of the tasks (float < 1) or a number.
    model : str or CrowdModel
        The model fitted each round (MAP).
    seed : int
        Seed of the starting answers, of each pool's order and of the tie-breaks.
    progress : bool
        Print one line per round.

    Returns
    -------
    pandas.DataFrame
        One row per fit: ``round``, ``answers`` (revealed so far), ``answers_per_task``,
        ``accuracy`` (expected accuracy on ``truth``, exact ties split) and ``seconds`` (wall
        time of the round: fit and selection). ``attrs["answers_per_task"]``: the final number
        of revealed answers of every task (a dict by task id).
    """
    import time

    from ..data import Annotations
    from .runner import fit as fit_model

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    a = pool
    n_tasks = a.n_tasks
    per_task = np.bincount(a.task, minlength=n_tasks)
    if start < 1 or budget < start:
        raise ValueError(f"need 1 <= start <= budget, got start={start}, budget={budget}")
    if start > per_task.min():
        raise ValueError(f"start={start} answers per task, but some tasks have only "
                         f"{per_task.min()} in the pool")
    total_budget = int(round(budget * n_tasks))
    if total_budget > a.n_answers:
        raise ValueError(f"budget={budget} per task is more than the pool holds "
                         f"({a.n_answers / n_tasks:.2f} per task)")
    step = int(round(batch * n_tasks)) if isinstance(batch, float) and batch < 1 else int(batch)
    if step < 1:
        raise ValueError(f"batch gives {step} answers per round; it must give at least 1")
    rng = np.random.default_rng(seed)
    # each task's pool in a random order: rank[n] = position of answer n within its task
    order = np.lexsort((rng.random(a.n_answers), a.task))
    rank = np.empty(a.n_answers, np.int64)
    first = np.searchsorted(a.task[order], np.arange(n_tasks))
    rank[order] = np.arange(a.n_answers) - np.repeat(first, per_task)
    shown = np.full(n_tasks, start)

    def revealed():
        keep = rank < shown[a.task]
        return Annotations(task=a.task[keep], worker=a.worker[keep], label=a.label[keep],
                           task_ids=a.task_ids, worker_ids=a.worker_ids, classes=a.classes,
                           features=a.features, feature_names=a.feature_names)

    rows = []
    for rnd in range(10 ** 9):
        tic = time.perf_counter()
        data = revealed()
        fitted = fit_model(model, data, method="map", use_gold=False)
        spent = int(shown.sum())
        row = {"round": rnd, "answers": spent, "answers_per_task": spent / n_tasks,
               "accuracy": fitted.accuracy(truth)}
        left = total_budget - spent
        open_ = shown < per_task
        if left <= 0 or not open_.any():
            row["seconds"] = time.perf_counter() - tic
            rows.append(row)
            break
        take = min(step, left, int(open_.sum()))
        noise = rng.random(n_tasks)
        if strategy == "round_robin":
            score = -shown.astype(float)
        elif strategy == "entropy":
            p = fitted.task_posterior().to_numpy()
            score = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(1)
        else:
            table = next_tasks(fitted, None)
            score = np.full(n_tasks, -1.0)
            score[a.task_ids.get_indexer(table.index)] = table["expected_information_gain"]
        score = np.where(open_, score, -np.inf)
        chosen = np.lexsort((noise, -score))[:take]
        shown[chosen] += 1
        row["seconds"] = time.perf_counter() - tic
        rows.append(row)
        if progress:
            print(f"{strategy} round {rnd}: {spent} answers, accuracy {row['accuracy']:.4f}, "
                  f"{row['seconds']:.2f} s", flush=True)
    out = pd.DataFrame(rows)
    out.attrs["answers_per_task"] = dict(zip(a.task_ids, shown.tolist(), strict=True))
    return out
