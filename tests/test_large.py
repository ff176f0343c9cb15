"""Large data: the Arrow readers, the lean Dawid-Skene MAP, its sharded and multi-process runs.

The lean MAP must reach the fixed point of ``crowdzoo.fit("dawid_skene", method="map")``; the
readers must build the Annotations ``read_csv`` builds (same normalization); sharding over 4
simulated devices and over two processes (jax.distributed, 127.0.0.1) must not change the
result. Subprocesses get a fresh JAX (the device count is fixed once JAX starts).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from crowdzoo.data import AnnotationsError, read_csv, simulate
from crowdzoo.data.columnar import read_csv_arrow, read_parquet
from crowdzoo.inference import large
from crowdzoo.models import DawidSkene

import crowdzoo
from crowdzoo.cli import main

try:  # the optional extra crowdzoo[parquet]
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:
    pa = pq = None
needs_arrow = pytest.mark.skipif(pa is None, reason="pyarrow is not installed "
                                 "(pip install 'crowdzoo[parquet]')")

T, W, K = 300, 12, 3


@pytest.fixture(scope="module")
def crowd():
    sim = simulate(DawidSkene(), n_tasks=T, n_workers=W, n_classes=K, answers_per_task=4, seed=3)
    return sim.annotations


@pytest.fixture(scope="module")
def reference(crowd):
    return crowdzoo.fit("dawid_skene", crowd, method="map")


def _rows(ann):
    """The answers as a set of (task, worker, class) strings: order- and code-free."""
    f = ann.to_frame().astype(str)
    return sorted(zip(f["task"], f["worker"], f["label"], strict=True))


MESSY = pd.DataFrame({
    "task": ["t1", " t1", "t2", "t3", "t2", "007", "7"],
    "worker": ["a", "b", "a ", "b", "c", "a", "a"],
    "label": ["1", "1.0", " 2", "x", "2", "+1", "01"],
})


@needs_arrow
def test_readers_normalize_like_read_csv(tmp_path):
    path = tmp_path / "a.csv"
    MESSY.to_csv(path, index=False)
    want = read_csv(path)
    pq.write_table(pa.Table.from_pandas(MESSY, preserve_index=False), tmp_path / "a.parquet")
    table = pa.Table.from_pandas(MESSY, preserve_index=False)
    dict_table = pa.table({c: table.column(c).dictionary_encode() for c in table.column_names})
    pq.write_table(dict_table, tmp_path / "d.parquet")
    for got in (read_csv_arrow(path), read_parquet(tmp_path / "a.parquet"),
                read_parquet(tmp_path / "d.parquet")):
        assert got.classes.tolist() == want.classes.tolist()
        assert [str(t) for t in got.task_ids] == [str(t) for t in want.task_ids]
        assert got.task.tolist() == want.task.tolist()
        assert got.worker.tolist() == want.worker.tolist()
        assert got.label.tolist() == want.label.tolist()


@needs_arrow
def test_integer_ids_dense_and_sparse(tmp_path):
    task = np.array([10, 10, 12, 11, 12], np.int64)
    for offset in (0, 10**12):  # a dense range (lookup table) and a sparse one (hash)
        df = pd.DataFrame({"task": task + offset, "worker": [3, 4, 3, 4, 4],
                           "label": [0, 1, 1, 1, 0]})
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "i.parquet")
        got = read_parquet(tmp_path / "i.parquet", gold={str(10 + offset): 1})
        assert got.task_ids.dtype == np.int64
        assert _rows(got) == _rows(crowdzoo.data.Annotations.from_frame(df))
        assert got.gold_series().to_dict() == {10 + offset: 1}


@needs_arrow
def test_reader_errors_name_rows(tmp_path):
    df = pd.DataFrame({"task": ["a", None, "b"], "worker": ["x", "y", "y"],
                       "label": ["1", "0", None]})
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "n.parquet")
    with pytest.raises(AnnotationsError, match=r"column 'label' has NaN/None values.*row.*2"):
        read_parquet(tmp_path / "n.parquet")
    with pytest.raises(AnnotationsError, match=r"column 'task' has NaN/None values.*1 row: 1"):
        read_parquet(tmp_path / "n.parquet", na_values=True)
    df.loc[1, "task"] = "c"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "n.parquet")
    got = read_parquet(tmp_path / "n.parquet", na_values=True)
    assert got.n_answers == 2 and got.n_dropped == 1
    with pytest.raises(AnnotationsError, match=r"missing column\(s\) \['answer'\]"):
        read_parquet(tmp_path / "n.parquet", label="answer")


def test_lean_map_is_the_fit_fixed_point(crowd, reference, monkeypatch):
    # chunks of 257 answers (a remainder chunk included) exercise the chunked E/M loops
    monkeypatch.setattr(large, "CHUNK", 257)
    got = large.dawid_skene_map(crowd.task, crowd.worker, crowd.label, T, W, K)
    assert got.converged and got.n_iter == reference.diagnostics["n_iter"]
    np.testing.assert_allclose(got.confusion, np.asarray(reference.params["confusion"]), atol=1e-5)
    np.testing.assert_allclose(got.pi, np.asarray(reference.params["pi"]), atol=1e-5)
    np.testing.assert_allclose(got.posterior, reference.task_posterior().to_numpy(), atol=1e-5)


@needs_arrow
def test_cli_fit_parquet(crowd, reference, tmp_path, capsys):
    frame = crowd.to_frame()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "a.parquet")
    assert main(["fit", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "o")]) == 0
    assert "large-data path" in capsys.readouterr().out
    labels = pq.read_table(tmp_path / "o" / "labels.parquet").to_pandas()
    post = pq.read_table(tmp_path / "o" / "task_posterior.parquet").to_pandas()
    want = reference.task_posterior()
    assert labels["task"].astype(str).tolist() == [str(t) for t in want.index]
    assert labels["label"].astype(str).tolist() == [str(c) for c in reference.labels()]
    np.testing.assert_allclose(post[[str(c) for c in want.columns]].to_numpy(),
                               want.to_numpy(), atol=1e-5)
    workers = pd.read_csv(tmp_path / "o" / "workers.csv", dtype={"worker": str})
    want_acc = reference.workers()["accuracy"].rename(index=str)
    np.testing.assert_allclose(workers.set_index("worker")["accuracy"].reindex(want_acc.index),
                               want_acc.to_numpy(), atol=1e-5)


def _run(code: str, env_extra: dict, *args: str) -> subprocess.Popen:
    env = {**os.environ, **env_extra, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc, timeout=120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


SHARDED = """
import sys, numpy as np, jax
from crowdzoo.data import simulate
from crowdzoo.inference import large
from crowdzoo.models import DawidSkene
ann = simulate(DawidSkene(), n_tasks=300, n_workers=12, n_classes=3, answers_per_task=4,
               seed=3).annotations
rng = np.random.default_rng(0)
perm = rng.permutation(ann.n_answers)  # answers in no particular order
t, w, y = ann.task[perm], ann.worker[perm], ann.label[perm]
one = large.dawid_skene_map(t, w, y, 300, 12, 3)
assert len(jax.devices()) == 4
part = large.partition_by_task(t, w, y, 300, 3, 4)
pi, conf, post, hist, it, done = large.sharded_dawid_skene_map(part, 12, 3)
post = post.reshape(4, part.tasks_per_block, 3)
rows = np.concatenate([post[s, : part.task_start[s + 1] - part.task_start[s]] for s in range(4)])
print(it, one.n_iter, done, np.abs(conf - one.confusion).max(), np.abs(pi - one.pi).max(),
      np.abs(rows - one.posterior).max())
"""


def test_sharded_over_four_devices_matches_one():
    out = _wait(_run(SHARDED, {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}))
    it, it1, done, *diffs = out.split()
    assert it == it1 and done == "True"
    assert max(float(d) for d in diffs) < 1e-5, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_arrow
def test_two_processes_match_one(crowd, tmp_path):
    pq.write_table(pa.table({"task": crowd.task.astype(np.int64), "worker": crowd.worker,
                             "label": crowd.label}), tmp_path / "a.parquet")
    code = "import sys; from crowdzoo.inference.large import main; sys.exit(main(sys.argv[1:]))"
    base = [str(tmp_path / "a.parquet")]
    port = _free_port()
    procs = [_run(code, {}, *base, "--out", str(tmp_path / "two"), "--coordinator",
                  f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i))
             for i in range(2)]
    for p in procs:
        _wait(p)
    single = large.dawid_skene_map(crowd.task, crowd.worker, crowd.label, T, W, K)
    conf = np.load(tmp_path / "two" / "confusion.npy")
    np.testing.assert_allclose(conf, single.confusion, atol=1e-5)
    post = pd.concat([pd.read_parquet(tmp_path / "two" / f"task_posterior-{i:05d}.parquet")
                      for i in range(2)]).set_index("task").sort_index()
    assert len(post) == T and post.index.tolist() == list(range(T))
    np.testing.assert_allclose(post.to_numpy(), single.posterior, atol=1e-5)


# --- minibatch SVI over tasks -------------------------------------------------------------
def _minibatch_parts(crowd, batch):
    import jax.numpy as jnp
    from crowdzoo.inference.minibatch import minibatch_model, task_layout
    from crowdzoo.models.core import crowd_data

    design = crowd_data(crowd, use_gold=False)
    layout = task_layout(crowd.task, crowd.worker, crowd.label, T)
    program = minibatch_model(DawidSkene(), batch)
    return design, lambda: program(layout, design), jnp


def test_minibatch_program_is_the_exact_marginal(crowd, reference):
    """Full batch: the model's own log joint; a batch: T/B x the batch's exact per-task terms."""
    from numpyro import handlers
    from numpyro.infer.util import log_density

    params = {k: np.asarray(v) for k, v in reference.params.items()}
    design, program, jnp = _minibatch_parts(crowd, T)
    full, _ = log_density(DawidSkene(), (design,), {}, params)
    mini, _ = log_density(program, (), {}, params)
    np.testing.assert_allclose(float(mini), float(full), rtol=1e-5)

    B = 40
    design, program, jnp = _minibatch_parts(crowd, B)
    with handlers.seed(rng_seed=1):
        tr = handlers.trace(handlers.substitute(program, params)).get_trace()
    idx = np.asarray(tr["task"]["value"])
    assert idx.shape == (B,) and idx.min() >= 0 and idx.max() < T  # drawn with replacement
    per_task = np.asarray(DawidSkene().log_likelihood(
        {k: jnp.asarray(v) for k, v in params.items()}, design).per_task)
    site = tr["answers"]
    got = float(site["scale"]) * float(np.sum(site["fn"].log_prob(site["value"])))
    np.testing.assert_allclose(got, T / B * per_task[idx].sum(), rtol=1e-5)


def test_minibatch_refuses_per_task_parameters(crowd):
    from crowdzoo.inference.minibatch import check_minibatch_model

    with pytest.raises(ValueError, match="per-task parameters"):
        check_minibatch_model(crowdzoo.get_model("glad"))
    check_minibatch_model(crowdzoo.get_model("one_coin"))
