"""Dawid-Skene MAP for large crowds: ~O(answers) small ints, sharded over devices and hosts.

The generic MAP (:mod:`crowdzoo.inference.map`) evaluates ``log_emit`` as a float ``(N, K)``
table and gathers ``resp[task]`` as another: 32 bytes per answer each at K = 4. Here the
answers are two int32 arrays, ``task[n]`` and ``code[n] = worker[n] * K + label[n]``, and
both EM statistics are accumulated chunk by chunk (``C`` answers at a time, a
``lax.fori_loop``), so the only float arrays are per task ``(T, K)`` and per
worker ``(W K, K)``:

E-step
    ``logits[t, k] = log pi_k + sum_{n: task(n) = t} log confusion[w_n, k, y_n]``: a row
    gather from the ``(W K, K)`` table ``L[w K + y, k] = log confusion[w, k, y]`` and a
    segment sum into tasks; ``resp = softmax(logits)``; the log likelihood is
    ``sum_t logsumexp_k logits[t, k]``.
M-step
    ``counts[w K + y, k] = sum_{n: code(n) = w K + y} resp[task_n, k]`` (a segment sum into
    the small table) and ``sum_t resp[t, k]``; the Dirichlet posterior modes follow exactly
    as in :meth:`crowdzoo.models.DawidSkene.m_step` (``counts + alpha - 1``, floored at
    ``eps``, normalized).

The start (soft majority vote, then one M-step) and the stopping rule (``|delta log
posterior| / N < tol`` and largest parameter change ``< param_tol``, the point the last step
started from returned) are those of :func:`crowdzoo.inference.map.run_map`, so the fixed
point is the one ``crowdzoo.fit("dawid_skene", ann, method="map")`` finds.

Sharding (:func:`sharded_dawid_skene_map`): tasks are split into ``S`` contiguous blocks
with about equal numbers of answers; a task's answers all live on its block's device, so the
E-step is local and only the M-step's sufficient statistics (``(W K, K)`` counts, ``(K,)``
class counts) and the log posterior are summed across devices (``jax.lax.psum`` inside
``jax.shard_map``). The same program runs across processes (hosts) once
``jax.distributed.initialize`` has been called: each process passes the blocks of its own
devices.

References
----------
1. A. P. Dawid and A. M. Skene (1979), JRSS C 28(1):20-28, doi:10.2307/2346806.
2. JAX, "Introduction to parallel programming" and "Distributed data loading"
   (``jax.shard_map``, ``jax.make_array_from_process_local_data``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LargeFit", "dawid_skene_map", "partition_by_task", "process_blocks", "select_blocks",
           "sharded_dawid_skene_map"]

#: answers per chunk of the E- and M-step loops (the float temporaries are C x K)
CHUNK = 1 << 21


class LargeFit(NamedTuple):
    """Result of :func:`dawid_skene_map`.

    Attributes
    ----------
    pi : (K,)
        Class frequencies at the MAP.
    confusion : (W, K, K)
        ``confusion[w, true, label]`` at the MAP.
    posterior : (T, K)
        ``p(z_t | y)`` at the returned parameters.
    history : (max_iter,)
        Log posterior (up to a constant) per iteration, NaN past ``n_iter``.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the tolerance was met before ``max_iter``.
    """

    pi: np.ndarray
    confusion: np.ndarray
    posterior: np.ndarray
    history: np.ndarray
    n_iter: int
    converged: bool


def _concentrations(n_classes, confusion_prior, class_prior):
    from crowdzoo.models.dawid_skene import confusion_concentration

    conf = confusion_concentration(confusion_prior, n_classes)
    cls = jnp.broadcast_to(jnp.asarray(class_prior, jnp.float32), (n_classes,))
    return conf, cls


def _em_program(task, code, valid, *, n_workers, n_classes, conf_conc, cls_conc, eps, tol,
                param_tol, max_iter, axis):
    """Run the whole EM over blocks of tasks (``axis``: the mesh axis to psum over, or None).

    ``task`` / ``code`` are ``(B, A)``: ``B`` blocks of whole tasks, ``A`` answer slots each
    (block-local task codes; padding slots carry ``task == T_b`` and are dropped);
    ``valid`` ``(B, T_b)`` marks real task slots. One EM iteration is one pass over the
    blocks (a ``fori_loop``): each block's logits, responsibilities and log likelihood live
    only while its statistics are added up, so no per-task array of the whole crowd exists
    until the final posterior is written.
    """
    K, W = n_classes, n_workers
    n_blocks, tb = valid.shape

    def psum(x):
        return x if axis is None else jax.lax.psum(x, axis)

    n_total = psum(jnp.sum(task < tb).astype(jnp.float32))  # real answers (not padding)

    def block_logits(b, table, log_pi):
        # the barrier keeps XLA from fusing the gather into the scatter: on CPU the fused
        # loop is ~2x slower than a gather, then a scatter of rows
        rows = jax.lax.optimization_barrier(table[code[b]])
        return log_pi + jnp.zeros((tb, K), jnp.float32).at[task[b]].add(rows, mode="drop")

    def block_votes(b):
        votes = jnp.zeros((tb, K), jnp.float32).at[task[b], code[b] % K].add(1.0, mode="drop")
        return jnp.log(votes + 1e-6)  # soft majority vote, as logits

    def sweep(logits_of):
        """Sum the M-step statistics and the log likelihood over every block."""

        def body(b, acc):
            counts, cls, ll = acc
            logits = logits_of(b)
            per_task = jax.nn.logsumexp(logits, axis=-1)
            v = valid[b]
            resp = jnp.where(v[:, None], jnp.exp(logits - per_task[:, None]), 0.0)
            rows = jax.lax.optimization_barrier(
                resp.at[task[b]].get(mode="fill", fill_value=0.0))
            return (counts.at[code[b]].add(rows), cls + resp.sum(0),
                    ll + jnp.sum(jnp.where(v, per_task, 0.0)))

        zero = (jnp.zeros((W * K, K), jnp.float32), jnp.zeros((K,), jnp.float32),
                jnp.zeros((), jnp.float32))
        counts, cls, ll = jax.lax.fori_loop(0, n_blocks, body, zero)
        counts = jnp.swapaxes(psum(counts).reshape(W, K, K), -1, -2)  # [w, k, y]
        return counts, psum(cls), psum(ll)

    def m_step(counts, cls):
        from crowdzoo.models.dawid_skene import dirichlet_map

        return dirichlet_map(cls, cls_conc, eps), dirichlet_map(counts, conf_conc, eps)

    def log_prior(pi, conf):
        # the Dirichlet log densities up to their (constant) normalizers
        return (jnp.sum((cls_conc - 1.0) * jnp.log(pi))
                + jnp.sum((conf_conc - 1.0) * jnp.log(conf)))

    def table_of(conf):
        return jnp.swapaxes(jnp.log(conf), -1, -2).reshape(W * K, K)  # [w K + y, k]

    counts0, cls0, _ = sweep(block_votes)
    pi0, conf0 = m_step(counts0, cls0)

    def cond(carry):
        return (carry[2] < max_iter) & ~carry[5]

    def body(carry):
        pi, conf, it, prev, hist, _ = carry
        table, log_pi = table_of(conf), jnp.log(pi)
        counts, cls, ll = sweep(lambda b: block_logits(b, table, log_pi))
        lp = ll + log_prior(pi, conf)
        new_pi, new_conf = m_step(counts, cls)
        change = jnp.maximum(jnp.max(jnp.abs(new_pi - pi)), jnp.max(jnp.abs(new_conf - conf)))
        done = (jnp.abs(lp - prev) / n_total < tol) & (change < param_tol)
        pi = jnp.where(done, pi, new_pi)
        conf = jnp.where(done, conf, new_conf)
        return pi, conf, it + 1, lp, hist.at[it].set(lp), done

    carry = (pi0, conf0, jnp.asarray(0), jnp.asarray(-jnp.inf, jnp.float32),
             jnp.full((max_iter,), jnp.nan, jnp.float32), jnp.asarray(False))
    pi, conf, it, _, hist, done = jax.lax.while_loop(cond, body, carry)
    table, log_pi = table_of(conf), jnp.log(pi)
    post = jax.lax.map(lambda b: jax.nn.softmax(block_logits(b, table, log_pi), axis=-1),
                       jnp.arange(n_blocks))
    return pi, conf, post, hist, it, done


@partial(jax.jit, static_argnames=("n_workers", "n_classes", "max_iter", "eps",
                                   "confusion_prior", "class_prior"))
def _single(task, code, valid, *, n_workers, n_classes, confusion_prior, class_prior, eps,
            tol, param_tol, max_iter):
    conf_conc, cls_conc = _concentrations(n_classes, confusion_prior, class_prior)
    return _em_program(task, code, valid, n_workers=n_workers, n_classes=n_classes,
                       conf_conc=conf_conc, cls_conc=cls_conc, eps=eps, tol=tol,
                       param_tol=param_tol, max_iter=max_iter, axis=None)


def blocks_for(n_answers: int, n_devices: int = 1) -> int:
    """Blocks per device so that one block holds about :data:`CHUNK` answers."""
    return max(1, -(-int(n_answers) // (CHUNK * n_devices)))


def unblock(post: np.ndarray, part: Partition) -> np.ndarray:
    """Gather the ``(T, K)`` posterior in task order from the ``(B, T_b, K)`` block slots."""
    post = np.asarray(post).reshape(-1, part.tasks_per_block, post.shape[-1])
    sizes = np.diff(part.task_start)
    return np.concatenate([post[b, : sizes[b]] for b in range(len(sizes))])


def _check(task, worker, label, n_tasks, n_workers, n_classes):
    task = np.asarray(task)
    if task.ndim != 1 or task.size == 0:
        raise ValueError("task must be a non-empty 1-d array of codes")
    for name, arr, size in (("task", task, n_tasks), ("worker", worker, n_workers),
                            ("label", label, n_classes)):
        arr = np.asarray(arr)
        if arr.shape != task.shape:
            raise ValueError(f"{name} has shape {arr.shape}, task {task.shape}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= size:
            raise ValueError(f"{name} codes must lie in [0, {size}), got [{lo}, {hi}]")
    if n_workers * n_classes >= 2**31:
        raise ValueError("n_workers * n_classes must fit in int32")


def answer_codes(worker, label, n_classes: int) -> np.ndarray:
    """``worker * K + label`` as int32: the one code per answer the E- and M-steps index by."""
    return np.asarray(worker, dtype=np.int32) * np.int32(n_classes) + np.asarray(label, np.int32)


def _prior_args(confusion_prior, class_prior):
    cp = confusion_prior
    if not (isinstance(cp, tuple) and len(cp) == 2):
        cp = float(np.asarray(cp)) if np.ndim(cp) == 0 else None
    if cp is None:
        raise ValueError("the large-data Dawid-Skene takes a (diag, off) pair or a scalar "
                         "confusion_prior")
    if np.ndim(class_prior) != 0:
        raise ValueError("the large-data Dawid-Skene takes a scalar class_prior")
    return (tuple(float(x) for x in cp) if isinstance(cp, tuple) else cp), float(class_prior)


def dawid_skene_map(task, worker, label, n_tasks: int, n_workers: int, n_classes: int, *,
                    confusion_prior=(3.0, 1.5), class_prior=2.0, eps: float = 1e-10,
                    tol: float = 1e-6, param_tol: float = 1e-5, max_iter: int = 500
                    ) -> LargeFit:
    """Dawid-Skene MAP by EM on integer codes: ~8 bytes per answer, streamed over task blocks.

    Parameters
    ----------
    task, worker, label : int arrays (N,)
        Codes of each answer (e.g. :attr:`crowdzoo.data.Annotations.task`).
    n_tasks, n_workers, n_classes : int
        Sizes T, W, K.
    confusion_prior, class_prior, eps
        As in :class:`crowdzoo.models.DawidSkene` (a ``(diag, off)`` pair or a scalar; a
        scalar class prior).
    tol, param_tol, max_iter
        The stopping rule of :func:`crowdzoo.inference.map.run_map`.

    Returns
    -------
    LargeFit
    """
    _check(task, worker, label, n_tasks, n_workers, n_classes)
    cp, clp = _prior_args(confusion_prior, class_prior)
    part = partition_by_task(task, worker, label, n_tasks, n_classes,
                             blocks_for(np.asarray(task).size))
    B = part.valid.size // part.tasks_per_block
    out = _single(jnp.asarray(part.task.reshape(B, -1)), jnp.asarray(part.code.reshape(B, -1)),
                  jnp.asarray(part.valid.reshape(B, -1)), n_workers=int(n_workers),
                  n_classes=int(n_classes), confusion_prior=cp, class_prior=clp, eps=float(eps),
                  tol=jnp.float32(tol), param_tol=jnp.float32(param_tol), max_iter=int(max_iter))
    pi, conf, post, hist, it, done = jax.device_get(out)
    return LargeFit(pi, conf, unblock(post, part), hist, int(it), bool(done))


# --- sharding ------------------------------------------------------------------------------
class Partition(NamedTuple):
    """Answers split into ``S`` blocks of contiguous tasks, padded to equal sizes.

    Attributes
    ----------
    task : int32 (S * A,)
        Block-local task code of each answer slot (``T_b`` = padding, dropped).
    code : int32 (S * A,)
        ``worker * K + label`` (0 in padding slots).
    valid : bool (S * T_b,)
        Whether a task slot holds a real task.
    task_start : int64 (S + 1,)
        Block ``s`` holds the global tasks ``task_start[s] .. task_start[s + 1] - 1``, in
        slots ``s * T_b ..``.
    answers_per_block, tasks_per_block : int
        ``A`` and ``T_b``.
    """

    task: np.ndarray
    code: np.ndarray
    valid: np.ndarray
    task_start: np.ndarray
    answers_per_block: int
    tasks_per_block: int


def partition_by_task(task, worker, label, n_tasks: int, n_classes: int,
                      n_blocks: int) -> Partition:
    """Split the answers by task into ``n_blocks`` blocks of about equal numbers of answers.

    Tasks are cut at the quantiles of the cumulative answer count, so each block owns whole
    tasks (and every answer of them); blocks are padded to the largest block.
    """
    task = np.asarray(task)
    per_task = np.bincount(task, minlength=n_tasks)
    cum = np.concatenate([[0], np.cumsum(per_task)])
    targets = np.linspace(0, cum[-1], n_blocks + 1)
    starts = np.searchsorted(cum, targets[1:-1], side="left")
    task_start = np.concatenate([[0], starts, [n_tasks]]).astype(np.int64)
    task_start = np.maximum.accumulate(task_start)
    sizes_t = np.diff(task_start)
    sizes_a = cum[task_start[1:]] - cum[task_start[:-1]]
    tb, ab = max(int(sizes_t.max()), 1), max(int(sizes_a.max()), 1)
    step = 1 << 24  # sortedness checked in slices: no N-sized temporaries
    last = max(task.size - 1, 0)
    unsorted = any(np.any(task[i + 1:min(i + step, last) + 1] < task[i:min(i + step, last)])
                   for i in range(0, last, step))
    order = np.argsort(task, kind="stable") if unsorted else None
    out_t = np.full((n_blocks, ab), tb, dtype=np.int32)
    out_c = np.zeros((n_blocks, ab), dtype=np.int32)
    valid = np.zeros((n_blocks, tb), dtype=bool)
    worker, label = np.asarray(worker), np.asarray(label)
    for s in range(n_blocks):
        a0, a1 = cum[task_start[s]], cum[task_start[s + 1]]
        for i in range(a0, a1, step):  # slice by slice: the codes are built in place
            j = min(a1, i + step)
            pick = slice(i, j) if order is None else order[i:j]
            out_t[s, i - a0:j - a0] = task[pick] - np.int32(task_start[s])
            out_c[s, i - a0:j - a0] = answer_codes(worker[pick], label[pick], n_classes)
        valid[s, : sizes_t[s]] = True
    return Partition(out_t.ravel(), out_c.ravel(), valid.ravel(), task_start, ab, tb)


def select_blocks(part: Partition, blocks) -> Partition:
    """Keep the blocks ``blocks`` (e.g. those of this process's devices) of a partition."""
    blocks = list(blocks)
    a, t = part.answers_per_block, part.tasks_per_block
    pick = np.asarray(blocks, dtype=np.int64)
    return Partition(part.task.reshape(-1, a)[pick].ravel(), part.code.reshape(-1, a)[pick].ravel(),
                     part.valid.reshape(-1, t)[pick].ravel(), part.task_start, a, t)


def process_blocks(mesh=None) -> list[int]:
    """Positions in the (1-d) mesh of this process's devices: the blocks it must supply."""
    devices = list(np.asarray(mesh.devices).ravel()) if mesh is not None else jax.devices()
    return [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]


def sharded_dawid_skene_map(part: Partition, n_workers: int, n_classes: int, *, mesh=None,
                            local: bool = False, confusion_prior=(3.0, 1.5), class_prior=2.0,
                            eps: float = 1e-10, tol: float = 1e-6, param_tol: float = 1e-5,
                            max_iter: int = 500):
    """:func:`dawid_skene_map` with the tasks split over the devices of ``mesh`` (all of them).

    Parameters
    ----------
    part : Partition or [Partition]
        From :func:`partition_by_task` with ``n_blocks`` = number of devices (in a one-element
        list: the list is emptied and the host arrays freed once on the devices). With
        ``local=True`` (several processes) it holds only this process's blocks, in the order
        of its devices in the mesh (``jax.make_array_from_process_local_data``).
    mesh : jax.sharding.Mesh, optional
        A 1-d mesh with axis ``"tasks"``; default: every device (``jax.devices()``), which
        across processes means every device of every host after
        ``jax.distributed.initialize``.

    Returns
    -------
    pi, confusion, posterior, history, n_iter, converged
        ``pi`` / ``confusion`` / ``history`` replicated (numpy); ``posterior`` the
        ``(S * T_b, K)`` block slots of this process's devices (numpy; rows of padding slots
        are meaningless: select with ``part.valid``).
    """
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    if mesh is None:
        mesh = Mesh(np.array(jax.devices()), ("tasks",))
    cp, clp = _prior_args(confusion_prior, class_prior)
    conf_conc, cls_conc = _concentrations(n_classes, cp, clp)
    sharded = NamedSharding(mesh, P("tasks"))

    def put(x):
        if local:
            return jax.make_array_from_process_local_data(sharded, x)
        return jax.device_put(x, sharded)

    def blocks(p):
        a, t = p.answers_per_block, p.tasks_per_block
        return (put(p.task.reshape(-1, a)), put(p.code.reshape(-1, a)),
                put(p.valid.reshape(-1, t)))

    if isinstance(part, list):  # a holder: drop the host copy once it is on the devices
        part = part.pop()
        task, code, valid = blocks(part)
        part = part._replace(task=None, code=None, valid=None)
    else:
        task, code, valid = blocks(part)
    program = partial(_em_program, n_workers=n_workers, n_classes=n_classes, conf_conc=conf_conc,
                      cls_conc=cls_conc, eps=float(eps), tol=jnp.float32(tol),
                      param_tol=jnp.float32(param_tol), max_iter=int(max_iter), axis="tasks")
    specs = {"mesh": mesh, "in_specs": (P("tasks"),) * 3,
             "out_specs": (P(), P(), P("tasks"), P(), P(), P())}
    if hasattr(jax, "shard_map"):
        fn = jax.jit(jax.shard_map(program, check_vma=False, **specs))
    else:  # jax < 0.7
        from jax.experimental.shard_map import shard_map

        fn = jax.jit(shard_map(program, check_rep=False, **specs))
    pi, conf, post, hist, it, done = fn(task, code, valid)
    local_post = np.concatenate([np.asarray(s.data) for s in sorted(
        post.addressable_shards, key=lambda s: s.index[0].start or 0)]).reshape(-1, n_classes)
    return (np.asarray(pi.addressable_data(0)), np.asarray(conf.addressable_data(0)), local_post,
            np.asarray(hist.addressable_data(0)), int(it.addressable_data(0)),
            bool(done.addressable_data(0)))


# --- several hosts -------------------------------------------------------------------------
def init_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """``jax.distributed.initialize`` (CPU collectives through gloo, so CPU hosts work too)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)


def pad_partition(part: Partition, answers_per_block: int, tasks_per_block: int) -> Partition:
    """Pad every block of ``part`` to the given sizes (all processes must agree on them)."""
    a0, t0 = part.answers_per_block, part.tasks_per_block
    s = part.task.size // a0
    task = part.task.reshape(s, a0)
    task = np.where(task >= t0, tasks_per_block, task)  # padding slots point past the end
    out_t = np.full((s, answers_per_block), tasks_per_block, np.int32)
    out_c = np.zeros((s, answers_per_block), np.int32)
    valid = np.zeros((s, tasks_per_block), bool)
    out_t[:, :a0] = task
    out_c[:, :a0] = part.code.reshape(s, a0)
    valid[:, :t0] = part.valid.reshape(s, t0)
    return Partition(out_t.ravel(), out_c.ravel(), valid.ravel(), part.task_start,
                     answers_per_block, tasks_per_block)


def _allgather_max(values) -> np.ndarray:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(values, np.int64))).reshape(
        jax.process_count(), -1).max(axis=0)


def fit_process_share(path: str, n_classes: int | None = None, *, task: str = "task",
                      worker: str = "worker", label: str = "label", **options):
    """Run the sharded Dawid-Skene MAP on this process's share of a parquet file.

    Every process (host) calls this after :func:`init_distributed` with the same file (a path
    every host can read). The answers must be integer-coded: integer task ids (any), worker
    codes ``0..W-1`` and labels ``0..K-1`` (:func:`crowdzoo.data.read_parquet` and
    :attr:`Annotations.task` etc. make them). Process ``i`` of ``P`` keeps the tasks with
    ``task % P == i`` (read batch by batch: its memory is its share), splits them over its
    own devices by :func:`partition_by_task`, and all processes agree on ``W``, ``K`` and the
    block sizes before the one program runs over every device.

    Returns
    -------
    task_ids : int64 (T_i,)
        This process's tasks.
    posterior : (T_i, K)
        Their label posteriors.
    pi, confusion, n_iter, converged
        As in :func:`dawid_skene_map` (the same on every process).
    """
    import pyarrow.dataset as ds

    n_proc, me = jax.process_count(), jax.process_index()
    dataset = ds.dataset(path, format="parquet")
    parts = {task: [], worker: [], label: []}
    for batch in dataset.to_batches(columns=[task, worker, label]):
        t = batch.column(task).to_numpy()
        keep = (t % n_proc) == me
        for c in parts:
            parts[c].append(batch.column(c).to_numpy()[keep])
    t_raw = np.concatenate(parts[task]).astype(np.int64)
    w = np.concatenate(parts[worker]).astype(np.int32)
    y = np.concatenate(parts[label]).astype(np.int32)
    del parts
    task_ids, t_local = np.unique(t_raw, return_inverse=True)
    del t_raw
    sizes = _allgather_max([int(w.max(initial=-1)) + 1, int(y.max(initial=-1)) + 1])
    W, K = int(sizes[0]), int(n_classes or sizes[1])
    devices = jax.devices()
    mine = process_blocks()
    bpd = int(_allgather_max([blocks_for(t_local.size, len(mine))])[0])
    part = partition_by_task(t_local.astype(np.int32), w, y, len(task_ids), K, len(mine) * bpd)
    a, t = _allgather_max([part.answers_per_block, part.tasks_per_block])
    part = pad_partition(part, int(a), int(t))
    from jax.sharding import Mesh

    mesh = Mesh(np.array(devices), ("tasks",))
    pi, conf, post, _, it, done = sharded_dawid_skene_map(part, W, K, mesh=mesh,
                                                          local=n_proc > 1, **options)
    rows = unblock(post, part)
    return task_ids, rows, pi, conf, it, done


def main(argv=None) -> int:
    """One host's command of a multi-host run (see the README, "Many machines").

    ::

        python -m crowdzoo.inference.large ANSWERS.parquet --out DIR
            --coordinator HOST0:PORT --num-processes P --process-id I

    Process ``I`` writes ``DIR/task_posterior-0000I.parquet`` (its tasks: ``task`` and one
    float32 column per class code); process 0 also writes ``DIR/confusion.npy`` and
    ``DIR/pi.npy``.
    """
    import argparse
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    p = argparse.ArgumentParser(prog="python -m crowdzoo.inference.large",
                                description="Sharded Dawid-Skene MAP, one process per host")
    p.add_argument("answers", help="parquet file (integer task ids, worker and label codes)")
    p.add_argument("--out", required=True)
    p.add_argument("--coordinator", help="HOST:PORT of process 0 (omit for one process)")
    p.add_argument("--num-processes", type=int, default=1)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--classes", type=int, help="number of classes K (default: max label + 1)")
    args = p.parse_args(argv)
    if args.num_processes > 1:
        init_distributed(args.coordinator, args.num_processes, args.process_id)
    task_ids, post, pi, conf, it, done = fit_process_share(args.answers, args.classes)
    os.makedirs(args.out, exist_ok=True)
    cols = {"task": pa.array(task_ids)}
    cols.update({str(k): pa.array(post[:, k]) for k in range(post.shape[1])})
    pq.write_table(pa.table(cols),
                   os.path.join(args.out, f"task_posterior-{jax.process_index():05d}.parquet"))
    if jax.process_index() == 0:
        np.save(os.path.join(args.out, "confusion.npy"), conf)
        np.save(os.path.join(args.out, "pi.npy"), pi)
    print(f"process {jax.process_index()} of {jax.process_count()}: {len(task_ids):,} tasks, "
          f"{it} iterations, converged: {done}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
