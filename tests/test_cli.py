"""The ``crowdzoo`` command line, run in-process through ``main([...])``.

One test runs the installed entry point in a subprocess (``crowdzoo models``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crowdzoo.data import load_demo_truth

from crowdzoo import list_models
from crowdzoo.cli import _netcdf_engine, main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    """A small one-coin crowd written as CSV files with the user's own column names.

    Plain numpy (the simulators are tested elsewhere): 80 items, 8 annotators of accuracy
    0.6-0.9, 4 answers per item, classes a/b/c.
    """
    root = tmp_path_factory.mktemp("crowd")
    rng = np.random.default_rng(3)
    n_tasks, n_workers, k = 80, 8, 3
    truth = rng.integers(0, k, n_tasks)
    task = np.repeat(np.arange(n_tasks), 4)
    worker = np.concatenate([rng.choice(n_workers, 4, replace=False) for _ in range(n_tasks)])
    accuracy = rng.uniform(0.6, 0.9, n_workers)
    right = rng.random(task.size) < accuracy[worker]
    label = np.where(right, truth[task], (truth[task] + rng.integers(1, k, task.size)) % k)
    classes = np.array(["a", "b", "c"])
    answers = pd.DataFrame(
        {
            "item": [f"i{t:03d}" for t in task],
            "annotator": [f"u{w}" for w in worker],
            "answer": classes[label],
        }
    )
    answers.to_csv(root / "answers.csv", index=False)
    gold = pd.Series(
        classes[truth],
        index=pd.Index([f"i{t:03d}" for t in range(n_tasks)], name="task"),
        name="label",
    )
    gold.reset_index().to_csv(root / "gold.csv", index=False)
    cols = ["--task-col", "item", "--worker-col", "annotator", "--label-col", "answer"]
    return {
        "answers": root / "answers.csv",
        "gold": root / "gold.csv",
        "cols": cols,
        "n_tasks": n_tasks,
        "truth": gold,
    }


def _one_line_error(capsys, code, *needles):
    out = capsys.readouterr()
    assert code == 2
    err = out.err.strip()
    assert err and "\n" not in err, f"expected one line on stderr, got: {out.err!r}"
    assert "Traceback" not in out.err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


def test_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    m = re.search(
        r"accuracy against the simulated truth \((\d+) tasks\): "
        r"Dawid-Skene ([0-9.]+) \| majority vote ([0-9.]+)",
        text,
    )
    assert m, text
    n, ds, mv = int(m.group(1)), float(m.group(2)), float(m.group(3))
    assert n == 600
    # the demo crowd has spammers and biased workers: modelling workers must beat the vote
    assert 0.5 < mv < ds <= 1.0
    assert "5 least reliable workers" in text
    assert (out / "demo.png").read_bytes()[:8] == PNG
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    assert list(labels.columns) == ["task", "label"] and len(labels) == 600
    # the printed accuracy is the accuracy of the written labels (no ties in this crowd)
    truth = load_demo_truth()
    written = labels.set_index("task")["label"].reindex(truth.index)
    assert abs((written == truth).mean() - ds) < 1.5e-3
    assert str(out / "demo.png") in text


def test_fit_map_with_gold(crowd, tmp_path, capsys):
    out = tmp_path / "map"
    code = main(
        [
            "fit",
            str(crowd["answers"]),
            *crowd["cols"],
            "--gold",
            str(crowd["gold"]),
            "--method",
            "map",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    assert list(labels.columns) == ["task", "label"]
    assert len(labels) == crowd["n_tasks"]
    post = pd.read_csv(out / "task_posterior.csv", dtype={"task": str}).set_index("task")
    assert list(post.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-5)
    assert (post.idxmax(axis=1) == labels.set_index("task")["label"]).all()
    workers = pd.read_csv(out / "workers.csv", dtype={"worker": str})
    assert {"worker", "n_answers", "accuracy"} <= set(workers.columns)
    assert len(workers) == 8 and workers["n_answers"].sum() == crowd["n_tasks"] * 4
    assert (out / "workers.png").read_bytes()[:8] == PNG
    assert not (out / "posterior.nc").exists()
    # gold is only scored: the printed accuracy is that of the written labels
    m = re.search(
        r"accuracy on (\d+) gold tasks \(gold not used to fit\): "
        r"dawid_skene ([0-9.]+) \| majority vote ([0-9.]+)",
        text,
    )
    assert m, text
    assert int(m.group(1)) == crowd["n_tasks"]
    truth = crowd["truth"]
    hit = (labels.set_index("task")["label"].reindex(truth.index) == truth).mean()
    assert abs(hit - float(m.group(2))) < 1.5e-3


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::crowdzoo.inference.diagnostics.ConvergenceWarning")
def test_fit_nuts_writes_posterior(crowd, tmp_path, capsys):
    out = tmp_path / "nuts"
    code = main(
        [
            "fit",
            str(crowd["answers"]),
            *crowd["cols"],
            "--method",
            "nuts",
            "--num-chains",
            "2",
            "--num-warmup",
            "50",
            "--num-samples",
            "50",
            "--seed",
            "1",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "divergences" in captured.out and "max r_hat" in captured.out
    assert "min ESS bulk" in captured.out
    # 2 x 50 draws: not converged, and the command says so
    assert "NOT CONVERGED" in captured.out and "ConvergenceWarning" not in captured.err
    workers = pd.read_csv(out / "workers.csv")
    assert {"accuracy_low", "accuracy_high"} <= set(workers.columns)
    assert (workers["accuracy_low"] <= workers["accuracy"]).all()
    assert (workers["accuracy"] <= workers["accuracy_high"]).all()
    for name in ("workers.png", "rank.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    assert not (out / "forest.png").exists() and not (out / "trace.png").exists()
    if _netcdf_engine() is None:
        assert "posterior.nc not written" in captured.err
        pytest.skip("no netCDF engine that writes groups (h5netcdf+h5py or netCDF4)")
    import xarray as xr

    with xr.open_datatree(out / "posterior.nc") as dt:
        assert {"posterior", "log_likelihood", "sample_stats", "observed_data"} <= set(dt.children)
        conf = dt["posterior"]["confusion"]
        assert conf.dims == ("chain", "draw", "worker", "true_class", "answer_class")
        assert conf.shape == (2, 50, 8, 3, 3)
        np.testing.assert_allclose(conf.sum("answer_class"), 1.0, atol=1e-4)
        assert list(dt["posterior"]["answer_class"].values) == ["a", "b", "c"]
        assert "posterior_predictive" in dt.children
        assert dt["log_likelihood"]["answers"].shape == (2, 50, crowd["n_tasks"])
        assert list(dt["posterior"]["true_class"].values) == ["a", "b", "c"]


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    code = main(["fit", str(missing), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, "nope.csv", "not found")
    code = main(["summary", str(missing)])
    _one_line_error(capsys, code, "nope.csv")


def test_missing_labels_advice_names_the_flag(tmp_path, capsys):
    """Empty labels / empty gold: the advice is the flag that fixes it, and the flag does."""
    answers = tmp_path / "a.csv"
    answers.write_text("task,worker,label\nt1,w1,a\nt1,w2,\nt2,w1,b\nt2,w2,b\n")
    code = main(["fit", str(answers), "--out", str(tmp_path / "o")])
    err = _one_line_error(capsys, code, "empty values at 1 row", "--na-values ''")
    assert "na_values" not in err
    assert main(["fit", str(answers), "--out", str(tmp_path / "o"), "--na-values", ""]) == 0
    gold = tmp_path / "g.csv"
    gold.write_text("task,label\nt1,\nt2,b\n")
    code = main(["fit", str(answers), "--gold", str(gold), "--na-values", "",
                 "--out", str(tmp_path / "o2")])
    assert code == 0, capsys.readouterr().err
    code = main(["fit", str(answers), "--gold", str(gold), "--out", str(tmp_path / "o3")])
    err = _one_line_error(capsys, code, "--na-values")
    assert "na_values" not in err


def test_wrong_column(crowd, tmp_path, capsys):
    # the file has columns item, annotator, answer: the defaults task, worker, label are wrong
    code = main(["fit", str(crowd["answers"]), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, "missing column", "'task'", "item")
    code = main(
        [
            "fit",
            str(crowd["answers"]),
            *crowd["cols"][:4],
            "--label-col",
            "lbl",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    _one_line_error(capsys, code, "'lbl'")


def test_bad_model_and_options(crowd, tmp_path, capsys):
    base = ["fit", str(crowd["answers"]), *crowd["cols"], "--out", str(tmp_path / "o")]
    _one_line_error(
        capsys, main([*base, "--model", "no_such_model"]), "no_such_model", "dawid_skene"
    )
    _one_line_error(capsys, main([*base, "--num-chains", "2"]), "--num-chains", "map")
    _one_line_error(capsys, main([*base, "--method", "svi", "--num-samples", "5"]), "--num-samples")
    _one_line_error(
        capsys,
        main([*base, "--model", "majority_vote", "--method", "nuts"]),
        "majority_vote",
        "nuts",
    )
    assert main(["fit", str(crowd["answers"])]) == 2  # argparse: --out is required
    assert "--out" in capsys.readouterr().err


def test_summary(crowd, capsys):
    assert (
        main(["summary", str(crowd["answers"]), *crowd["cols"], "--gold", str(crowd["gold"])]) == 0
    )
    text = capsys.readouterr().out
    assert "tasks:    80" in text
    assert "gold:     80 of 80 tasks" in text


def test_models_in_process(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for m in list_models():
        line = next(ln for ln in text.splitlines() if ln.split()[0] == m["name"])
        assert m["methods"] in line and m["reference"] in line


def test_models_entry_point():
    exe = shutil.which("crowdzoo", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the crowdzoo entry point is not installed in this environment")
    res = subprocess.run([exe, "models"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    names = {ln.split()[0] for ln in res.stdout.splitlines()[1:] if ln.strip()}
    assert {m["name"] for m in list_models()} <= names
    assert {"dawid_skene", "majority_vote"} <= names


def test_fit_temper(crowd, tmp_path, capsys):
    out = tmp_path / "temper"
    args = ["fit", str(crowd["answers"]), *crowd["cols"], "--gold", str(crowd["gold"]),
            "--out", str(out)]
    assert main([*args, "--temper", "auto"]) == 0
    text = capsys.readouterr().out
    m = re.search(r"likelihood power ([0-9.]+) \(chosen without gold.*ECE on gold ([0-9.]+) "
                  r"untempered, ([0-9.]+) tempered", text)
    assert m, text
    power = float(m.group(1))
    assert 0 < power <= 1
    post = pd.read_csv(out / "task_posterior.csv", dtype={"task": str}).set_index("task")
    tempered = pd.read_csv(out / "task_posterior_tempered.csv",
                           dtype={"task": str}).set_index("task")
    assert list(tempered.columns) == list(post.columns) and list(tempered.index) == list(
        post.index)
    np.testing.assert_allclose(tempered.sum(axis=1), 1.0, atol=1e-6)
    if power == 1.0:
        np.testing.assert_allclose(tempered, post, atol=1e-5)
    else:  # a weaker likelihood: no task more confident than before
        assert (tempered.max(axis=1) <= post.max(axis=1) + 1e-5).all()
    manifest = json.loads((out / "crowdzoo-manifest.json").read_text())
    assert "task_posterior_tempered.csv" in json.dumps(manifest)
    # a given power, an item-effect model, a bad value
    assert main([*args, "--temper", "0.5", "--overwrite"]) == 0
    assert "likelihood power 0.5 (given)" in capsys.readouterr().out
    _one_line_error(capsys, main([*args, "--temper", "1.5", "--overwrite"]), "--temper",
                    "(0, 1]")
    _one_line_error(capsys, main([*args, "--temper", "auto", "--overwrite", "--model",
                                  "item_difficulty"]), "--temper", "item effect")
