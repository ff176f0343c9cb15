"""Large runs of ``crowdzoo fit``: parquet in, lean Dawid-Skene MAP, parquet out.

``crowdzoo fit answers.parquet`` (or a CSV of at least :data:`LARGE_ANSWERS` answers) with the
Dawid-Skene model and ``--method map`` takes this path:

1. the answers are read by :mod:`crowdzoo.data.columnar` (Arrow dictionary encoding, one
   column at a time, int32 codes; no Python object per answer);
2. the MAP is :func:`crowdzoo.inference.large.dawid_skene_map` (the fixed point of
   ``crowdzoo.fit("dawid_skene", ..., method="map")``, ~8 bytes per answer on the device plus
   the per-task ``(T, K)`` tables);
3. ``labels.parquet`` (task, label), ``task_posterior.parquet`` (task, one float32 column per
   class) and ``workers.csv`` (answers, accuracy and confusion matrix per worker) are written
   through the run's :class:`~crowdzoo.outputs.OutputDir` (atomic, listed in the manifest).
   No plots and no posterior.nc (a MAP has no draws; a 20-million-task plot says nothing).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

__all__ = ["LARGE_ANSWERS", "LARGE_TABLES", "is_large_input", "large_summary", "run_large_fit"]

#: answers from which a CSV run takes the large path (a parquet input always does)
LARGE_ANSWERS = 1_000_000
#: the files a large run writes
LARGE_TABLES = ("labels.parquet", "task_posterior.parquet", "workers.csv")
#: a CSV of at least this many bytes is read by pyarrow (parallel blocks, no Python objects)
LARGE_CSV_BYTES = 64 << 20


def is_parquet(path) -> bool:
    """Whether ``path`` names a parquet file (by its suffix)."""
    return str(path).lower().endswith((".parquet", ".pq"))


def is_large_input(path) -> bool:
    """Whether the answers file is read by pyarrow: parquet, or a CSV of 64 MiB or more.

    Without pyarrow (a dependency; someone may have removed it) a large CSV takes the
    ordinary reader, and a parquet file gets the install hint from the parquet reader.
    """
    import importlib.util
    from pathlib import Path

    if is_parquet(path):
        return True
    return (Path(path).stat().st_size >= LARGE_CSV_BYTES
            and importlib.util.find_spec("pyarrow") is not None)


def fits_large_path(model, method: str) -> bool:
    """Whether the lean MAP computes exactly this model's MAP (Dawid-Skene, its priors)."""
    from crowdzoo.models.dawid_skene import DawidSkene

    if type(model) is not DawidSkene or method != "map" or model.initial_error is not None:
        return False
    cp = model.confusion_prior
    return (isinstance(cp, tuple) and len(cp) == 2) or np.ndim(cp) == 0 and np.ndim(
        model.class_prior) == 0


def large_summary(ann) -> str:
    """Describe the answers cheaply (no duplicate scan, which sorts N pairs)."""
    per_class = np.bincount(ann.label, minlength=ann.n_classes)
    per_task = np.bincount(ann.task, minlength=ann.n_tasks)
    counts = " | ".join(f"{c} = {n:,}" for c, n in zip(ann.classes.tolist(), per_class.tolist(),
                                                          strict=True))
    return "\n".join([
        "Annotations summary",
        f"  tasks:    {ann.n_tasks:,}",
        f"  workers:  {ann.n_workers:,}",
        f"  answers:  {ann.n_answers:,}" + (
            f" ({ann.n_dropped:,} rows without a label dropped: na_values)"
            if ann.n_dropped else ""),
        f"  classes:  {ann.n_classes} (answers per class: {counts})",
        f"  answers per task:   min {per_task.min():,} / mean {per_task.mean():.2f} / "
        f"max {per_task.max():,}",
    ])


def _arrow_ids(index: pd.Index):
    import pyarrow as pa

    if isinstance(index.dtype, pd.StringDtype):
        return pa.array(index.array)
    if pd.api.types.is_integer_dtype(index.dtype):
        return pa.array(index.to_numpy())
    return pa.array([str(v) for v in index])


def _class_dictionary(classes: pd.Index, codes: np.ndarray):
    import pyarrow as pa

    names = classes.tolist()
    values = pa.array(names) if len({type(v) for v in names}) == 1 else pa.array(
        [str(v) for v in names])
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), values)


def posterior_tables(task_ids: pd.Index, classes: pd.Index, posterior: np.ndarray):
    """``(labels, task_posterior)`` as Arrow tables (labels dictionary-encoded, float32)."""
    import pyarrow as pa

    tasks = _arrow_ids(task_ids)
    labels = pa.table({"task": tasks,
                       "label": _class_dictionary(classes, posterior.argmax(axis=1))})
    cols = {"task": tasks}
    for k, c in enumerate(classes.tolist()):
        cols[str(c)] = pa.array(np.ascontiguousarray(posterior[:, k], dtype=np.float32))
    return labels, pa.table(cols)


def workers_frame(worker_ids, classes, n_answers, pi, confusion) -> pd.DataFrame:
    """Per worker: answers, accuracy ``sum_k pi_k confusion[w, k, k]``, confusion entries."""
    df = pd.DataFrame(index=pd.Index(worker_ids, name="worker"))
    df["n_answers"] = n_answers
    df["accuracy"] = (np.diagonal(confusion, axis1=-2, axis2=-1) * pi).sum(-1)
    names = [str(c) for c in classes]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            df[f"confusion[{a},{b}]"] = confusion[:, i, j]
    return df


def run_large_fit(holder: list, model, out, max_iter: int = 500) -> tuple[list, dict]:
    """Fit ``model`` (Dawid-Skene) by the lean MAP; write the tables through ``out``.

    ``holder`` is a one-element list holding the :class:`~crowdzoo.data.Annotations`; it is
    emptied, and once the codes are on the device the answers' host arrays are freed (only the
    ids are kept).
    """
    ann = holder.pop()
    import jax
    import pyarrow.parquet as pq

    from crowdzoo.inference import large

    ids = (ann.task_ids, ann.worker_ids, ann.classes)
    T, W, K = ann.n_tasks, ann.n_workers, ann.n_classes
    gold = np.asarray(ann.gold) if ann.has_gold else None
    per_worker = np.bincount(ann.worker, minlength=W)
    start = time.perf_counter()
    cp, clp = large._prior_args(model.confusion_prior, model.class_prior)
    opts = {"confusion_prior": cp, "class_prior": clp, "eps": float(model.eps),
            "max_iter": int(max_iter)}
    n_dev = min(len(jax.local_devices()), os.cpu_count() or 1, max(1, T))
    from jax.sharding import Mesh

    # one set of task blocks per core (crowdzoo.setup exposes the cores as CPU devices)
    n_blocks = n_dev * large.blocks_for(ann.n_answers, n_dev)
    held = [large.partition_by_task(ann.task, ann.worker, ann.label, T, K, n_blocks)]
    del ann
    mesh = Mesh(np.array(jax.local_devices()[:n_dev]), ("tasks",))
    shape = held[0]._replace(task=None, code=None, valid=None)
    # the holder is emptied (and the host blocks freed) once they are on the devices
    pi, conf, slots, hist, it, done = large.sharded_dawid_skene_map(
        held, W, K, mesh=mesh, **opts)
    post = large.unblock(slots, shape)
    del slots
    elapsed = time.perf_counter() - start
    n_iter, converged = int(it), bool(done)
    lp = float(hist[n_iter - 1]) if n_iter else float("nan")
    text = (f"{model.name} fitted by map (em, large-data path) in {elapsed:.1f} s; "
            f"{n_iter} iterations, converged: {converged}")
    if not converged:
        text += (" -- STOPPED AT THE ITERATION CAP before its tolerance (the results are not "
                 "at the optimum)")
    print(text)
    task_ids, worker_ids, classes = ids
    if gold is not None:
        mask = gold >= 0
        acc = float((post[mask].argmax(1) == gold[mask]).mean())
        print(f"accuracy on {int(mask.sum())} gold tasks (gold not used to fit): "
              f"{model.name} {acc:.3f}")
    labels, posterior = posterior_tables(task_ids, classes, post)
    del post
    written = [out.write(LARGE_TABLES[0], lambda p: pq.write_table(labels, p)),
               out.write(LARGE_TABLES[1], lambda p: pq.write_table(posterior, p))]
    workers = workers_frame(worker_ids, classes, per_worker, pi, conf)
    written.append(out.write(LARGE_TABLES[2], lambda p: workers.to_csv(p)))
    diagnostics = {"algorithm": "em (large-data path)", "n_iter": n_iter,
                   "converged": converged, "log_posterior_unnormalized": lp}
    sys.stdout.flush()
    return written, diagnostics
