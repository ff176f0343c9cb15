"""Nothing lost, nothing silent: the inputs of issue 11's bad-input and fault campaign, kept.

Each test is one input that once gave a silent wrong result, lost data or an opaque
traceback, with what it must give now:

* labels and ids: one normalization at the data layer (``crowdzoo.data.normalize``);
* ``"N/A"``-like strings are values unless ``na_values`` asks otherwise;
* features standardized in float64 before the float32 cast;
* the CLI: every numeric option validated (one line, exit code 2), ``compare`` refusing too
  few draws for LOO, a gold class nobody answered (``--classes``);
* output folders: atomic files, a manifest, ``--overwrite`` removing only crowdzoo's files,
  and a kill test (a subprocess killed at every write checkpoint and at random times);
* an adversarial crowd: the fit says when its labels disagree with gold below chance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crowdzoo.data import Annotations, AnnotationsError, ConstantFeatureWarning, read_csv

import crowdzoo
from crowdzoo.cli import main
from crowdzoo.outputs import MANIFEST, TMP_PREFIX, file_digest


def _one_line_error(capsys, code, *needles):
    out = capsys.readouterr()
    assert code == 2, out
    err = out.err.strip()
    assert err and "\n" not in err, f"expected one line on stderr, got: {out.err!r}"
    assert "Traceback" not in out.err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


def _crowd(n_tasks=60, n_workers=6, k=3, per_task=3, seed=0, accuracy=0.8):
    """A small one-coin crowd as a long frame (plain numpy), with its truth."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_tasks)
    task = np.repeat(np.arange(n_tasks), per_task)
    worker = np.concatenate([rng.choice(n_workers, per_task, replace=False)
                             for _ in range(n_tasks)])
    right = rng.random(task.size) < accuracy
    label = np.where(right, truth[task], (truth[task] + rng.integers(1, k, task.size)) % k)
    frame = pd.DataFrame({"task": [f"t{t}" for t in task], "worker": [f"w{w}" for w in worker],
                          "label": label})
    return frame, pd.Series(truth, index=[f"t{t}" for t in range(n_tasks)])


# --- labels and ids -----------------------------------------------------------------------
def test_same_number_is_one_class_whatever_its_spelling():
    frame, _ = _crowd()
    spellings = {0: ["0", 0, 0.0, " 0", "0.0"], 1: ["1", 1, 1.0, "1 ", "+1"], 2: [2, "2", 2.0]}
    rng = np.random.default_rng(1)
    mixed = frame.assign(label=[spellings[v][rng.integers(len(spellings[v]))]
                                for v in frame["label"]])
    a = Annotations.from_frame(mixed)
    ref = Annotations.from_frame(frame)
    assert a.n_classes == 3  # was 6 before: "1", 1 and 1.0 were three classes
    np.testing.assert_array_equal(a.label, ref.label)
    assert [int(c) for c in a.classes] == [0, 1, 2]


def test_ids_that_print_alike_are_one_id_and_coordinates_stay_unique():
    frame, _ = _crowd(n_tasks=30)
    ids = frame["task"].str[1:].astype(int)
    mixed = frame.assign(task=[i if n % 2 else str(i) for n, i in enumerate(ids)],
                         worker=[w if n % 3 else f" {w} " for n, w in enumerate(frame["worker"])])
    a = Annotations.from_frame(mixed)
    assert a.n_tasks == 30 and a.n_workers == frame["worker"].nunique()
    fit = crowdzoo.fit("glad", a)  # GLAD has a per-task parameter: a task coordinate
    assert fit.task_posterior().index.is_unique
    dt = fit.to_arviz()
    for dim, n in (("task", 30), ("worker", a.n_workers)):
        coords = list(dt["posterior"][dim].values)
        assert len(set(coords)) == len(coords) == n


def test_class_names_that_collide_after_str_keep_every_confusion_column():
    # 1 and "1" used to be two classes that both print "1": workers() lost columns
    frame, _ = _crowd(k=2)
    mixed = frame.assign(label=[v if n % 2 else str(v) for n, v in enumerate(frame["label"])])
    fit = crowdzoo.fit("dawid_skene", Annotations.from_frame(mixed))
    cols = [c for c in fit.workers().columns if c.startswith("confusion[")]
    assert len(cols) == len(set(cols)) == 4


def test_direct_construction_refuses_names_that_normalize_alike():
    ok = dict(task=np.array([0, 1]), worker=np.array([0, 0]), label=np.array([0, 1]),
              task_ids=pd.Index(["a", "b"]), worker_ids=pd.Index(["u"]),
              classes=pd.Index(["x", "y"]))
    with pytest.raises(AnnotationsError, match="task_ids.*same"):
        Annotations(**{**ok, "task_ids": pd.Index([1, "1"], dtype=object)})
    with pytest.raises(AnnotationsError, match="classes.*same"):
        Annotations(**{**ok, "classes": pd.Index(["1", 1.0], dtype=object)})
    with pytest.raises(AnnotationsError, match="classes.*same"):
        Annotations.from_frame(pd.DataFrame({"task": ["a"], "worker": ["u"], "label": ["1"]}),
                               classes=[1, "1.0"])


def test_csv_whitespace_and_number_spellings(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("task,worker,label\n t1,w1, a\nt1 ,w2,a\nt2,w1,1\nt2,w2,1.0\nt3,w1,b\n")
    a = read_csv(p)
    assert a.task_ids.tolist() == ["t1", "t2", "t3"] and a.worker_ids.tolist() == ["w1", "w2"]
    assert a.classes.tolist() == ["1", "a", "b"]
    assert a.label.tolist() == [1, 1, 0, 0, 2]


def test_na_like_strings_are_values_unless_asked(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("task,worker,label\nNA,w1,N/A\nNA,w2,yes\nNone,w1,null\nNone,w2,None\n"
                 "t3,w1,NA\nt3,w2,yes\nt4,w1,no\nt4,w2,no\n")
    a = read_csv(p)  # was: "column 'label' has NaN/None values"
    assert a.task_ids.tolist() == ["NA", "None", "t3", "t4"]
    assert a.classes.tolist() == ["N/A", "NA", "None", "no", "null", "yes"]
    b = read_csv(p, na_values=["N/A", "NA", "None", "null"])
    assert b.n_answers == 4 and b.n_dropped == 4 and b.classes.tolist() == ["no", "yes"]
    assert "4 rows without a label dropped" in b.summary()
    assert b.task_ids.tolist() == ["NA", "t3", "t4"]  # ids are never missing values
    gold = pd.Series({"NA": "N/A", "t3": "NA"})
    c = Annotations.from_frame(pd.DataFrame({"task": ["NA", "NA", "t3"], "worker": ["a", "b", "a"],
                                             "label": ["N/A", "NA", "NA"]}), gold=gold)
    assert c.gold_series().to_dict() == {"NA": "N/A", "t3": "NA"}


def test_empty_and_missing_labels_get_clear_errors(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("task,worker,label\nt1,w1,a\nt1,w2,\nt2,w1,b\n")
    with pytest.raises(AnnotationsError, match=r"empty values at 1 row: 1.*na_values"):
        read_csv(p)
    assert read_csv(p, na_values=[""]).n_answers == 2
    df = pd.DataFrame({"task": ["t1", "t1", "t2"], "worker": ["a", "b", "a"],
                       "label": ["x", None, "y"]})
    with pytest.raises(AnnotationsError, match="na_values"):
        Annotations.from_frame(df)
    assert Annotations.from_frame(df, na_values=True).n_answers == 2
    # missing gold with na_values: that task has no gold (was "output array is read-only"
    # under pandas 3, whose isna() array is a read-only view); the caller's gold is untouched
    gold = pd.Series({"t1": None, "t2": "y"})
    kept = gold.copy()
    a = Annotations.from_frame(df, gold=gold, na_values=True)
    assert a.gold_series().to_dict() == {"t2": "y"}
    pd.testing.assert_series_equal(gold, kept)
    b = Annotations.from_frame(df, gold=pd.Series({"t1": "", "t2": "y"}), na_values=[""])
    assert b.gold_series().to_dict() == {"t2": "y"}


# --- features -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def raykar_crowd():
    from crowdzoo.data import simulate
    from crowdzoo.models import Raykar

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    sim = simulate(Raykar(), n_tasks=400, n_workers=5, n_classes=2, answers_per_task=3,
                   features=x, params={"weights": np.array([[2.0], [-1.5]]),
                                       "bias": np.array([0.0])}, seed=0)
    return sim


@pytest.mark.parametrize("transform", [lambda v: v + 1.7e9, lambda v: v * 1e20,
                                       lambda v: v * 1e-30 - 5e-29], ids=["+1.7e9", "*1e20",
                                                                         "tiny"])
def test_features_survive_offsets_and_scales(raykar_crowd, transform):
    ann = raykar_crowd.annotations
    base = crowdzoo.fit("raykar", ann)
    moved = Annotations.from_frame(ann.to_frame(), features=transform(ann.features_frame()))
    fit = crowdzoo.fit("raykar", moved)
    truth = raykar_crowd.true_labels
    assert abs(fit.accuracy(truth) - base.accuracy(truth)) <= 0.01
    np.testing.assert_allclose(fit.task_posterior(), base.task_posterior(), atol=1e-3)
    # new items: the same float64 standardization as the training features
    new = ann.features_frame().iloc[:7]
    np.testing.assert_allclose(fit.predict_proba(transform(new)), base.predict_proba(new),
                               atol=1e-3)


def test_constant_feature_column_warns(raykar_crowd):
    ann = raykar_crowd.annotations
    feats = ann.features_frame().assign(const=1.7e9)
    data = Annotations.from_frame(ann.to_frame(), features=feats)
    with pytest.warns(ConstantFeatureWarning, match="position 2"):
        crowdzoo.fit("raykar", data)


# --- the command line ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def answers_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    frame, truth = _crowd()
    frame.to_csv(root / "answers.csv", index=False)
    truth.rename_axis("task").rename("label").reset_index().to_csv(root / "gold.csv",
                                                                   index=False)
    return root


BAD_OPTIONS = [
    (["--seed", "-1"], "--seed"), (["--seed", "1.5"], "--seed"), (["--seed", "abc"], "--seed"),
    (["--seed", str(2**32)], "--seed"), (["--seed", str(2**64)], "--seed"),
    (["--method", "nuts", "--num-chains", "0"], "--num-chains"),
    (["--method", "nuts", "--num-chains", "-1"], "--num-chains"),
    (["--method", "nuts", "--num-samples", "0"], "--num-samples"),
    (["--method", "nuts", "--num-warmup", "-5"], "--num-warmup"),
    (["--method", "nuts", "--num-samples", "2.5"], "--num-samples"),
    (["--method", "svi", "--num-steps", "0"], "--num-steps"),
]


@pytest.mark.parametrize("extra,flag", BAD_OPTIONS, ids=[" ".join(b[0]) for b in BAD_OPTIONS])
def test_cli_numeric_options_are_validated(answers_csv, tmp_path, capsys, extra, flag):
    code = main(["fit", str(answers_csv / "answers.csv"), "--out", str(tmp_path / "o"), *extra])
    _one_line_error(capsys, code, flag)
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_cli_compare_refuses_too_few_draws_for_loo(answers_csv, capsys):
    code = main(["compare", str(answers_csv / "answers.csv"), "--num-samples", "20",
                 "--num-chains", "1"])
    _one_line_error(capsys, code, "at least 25", "--num-samples")
    for bad in (["--num-chains", "0"], ["--seed", "-3"], ["--num-warmup", "x"]):
        _one_line_error(capsys, main(["compare", str(answers_csv / "answers.csv"), *bad]),
                        bad[0])


def test_cli_gold_class_nobody_answered(answers_csv, tmp_path, capsys):
    gold = tmp_path / "gold.csv"
    gold.write_text("task,label\nt0,7\n")
    base = ["fit", str(answers_csv / "answers.csv"), "--gold", str(gold)]
    err = _one_line_error(capsys, main([*base, "--out", str(tmp_path / "a")]), "'7'",
                          "--classes")
    assert "classes=[" not in err.split("--classes")[-1]
    code = main([*base, "--classes", "0,1,2,7", "--out", str(tmp_path / "b")])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "classes:  4" in text
    assert pd.read_csv(tmp_path / "b" / "task_posterior.csv").shape[1] == 5


def test_cli_reads_na_like_labels_as_values(tmp_path, capsys):
    frame, _ = _crowd(k=3)
    frame["label"] = np.array(["N/A", "ok", "bad"])[frame["label"]]
    frame.to_csv(tmp_path / "a.csv", index=False)
    assert main(["summary", str(tmp_path / "a.csv")]) == 0
    assert "N/A = " in capsys.readouterr().out
    assert main(["summary", str(tmp_path / "a.csv"), "--na-values", "N/A,NA"]) == 0
    text = capsys.readouterr().out
    assert "N/A = " not in text and "rows without a label dropped" in text


def test_describe_fit_marks_the_iteration_cap(answers_csv):
    from crowdzoo.inference import ConvergenceWarning

    from crowdzoo.cli import _describe_fit

    data = read_csv(answers_csv / "answers.csv")
    with pytest.warns(ConvergenceWarning):
        fit = crowdzoo.fit("dawid_skene", data, max_iter=2)
    assert "STOPPED AT THE ITERATION CAP" in _describe_fit(fit)
    assert "CAP" not in _describe_fit(crowdzoo.fit("dawid_skene", data))


# --- output folders -----------------------------------------------------------------------
def _fit_cli(answers_csv, out, *extra):
    return main(["fit", str(answers_csv / "answers.csv"), "--out", str(out), *extra])


def test_output_folder_manifest_and_overwrite(answers_csv, tmp_path, capsys):
    out = tmp_path / "out"
    assert _fit_cli(answers_csv, out) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["status"] == "complete" and manifest["command"] == "fit"
    assert manifest["model"] == "dawid_skene" and manifest["method"] == "map"
    assert manifest["crowdzoo_version"] == crowdzoo.__version__
    assert manifest["inputs"]["answers"]["sha256"] == file_digest(answers_csv / "answers.csv")
    names = {f["name"] for f in manifest["files"]}
    assert names == {"labels.csv", "task_posterior.csv", "workers.csv", "workers.png"}
    for f in manifest["files"]:
        assert file_digest(out / f["name"]) == f["sha256"]
    assert not list(out.glob(TMP_PREFIX + "*"))
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    # a second run into the same folder is refused, naming the earlier run
    _one_line_error(capsys, _fit_cli(answers_csv, out, "--model", "one_coin"),
                    "earlier run", "--overwrite")
    before = (out / "labels.csv").read_bytes()
    assert (out / "labels.csv").read_bytes() == before
    # --overwrite replaces that run's files only
    assert _fit_cli(answers_csv, out, "--model", "one_coin", "--overwrite") == 0
    assert json.loads((out / MANIFEST).read_text())["model"] == "one_coin"
    assert (out / "notes.txt").read_text() == "mine"
    # a crowdzoo file the user changed since is not removed
    (out / "workers.csv").write_text("edited")
    capsys.readouterr()
    _one_line_error(capsys, _fit_cli(answers_csv, out, "--overwrite"), "workers.csv", "changed")
    # the user's own labels.csv (no manifest lists it) is never replaced
    user = tmp_path / "user"
    user.mkdir()
    (user / "labels.csv").write_text("task,label\nmine,1\n")
    for extra in ([], ["--overwrite"]):
        _one_line_error(capsys, _fit_cli(answers_csv, user, *extra), "labels.csv",
                        "not written by crowdzoo")
        assert (user / "labels.csv").read_text() == "task,label\nmine,1\n"


def test_svi_then_map_leaves_no_stale_posterior(answers_csv, tmp_path, capsys):
    # issue 11 item 2: posterior.nc / forest.png of an SVI run stayed next to a MAP run's labels
    out = tmp_path / "o"
    assert _fit_cli(answers_csv, out, "--method", "svi", "--num-steps", "20") == 0
    assert (out / "posterior.nc").exists()
    assert _fit_cli(answers_csv, out, "--overwrite") == 0
    assert not (out / "posterior.nc").exists()
    capsys.readouterr()


KILL_DRIVER = textwrap.dedent('''
    """Run `crowdzoo fit` and kill it (SIGKILL) at every write checkpoint and at random times.

    The fit is computed once, in this process; each kill point forks a child that runs the
    CLI's whole command (parse, read, print, write) with the cached fit and dies at its
    point, so only the writing differs between kill points. The parent checks the folder.
    """
    import json, os, random, shutil, signal, sys, threading, time
    from pathlib import Path

    import crowdzoo
    from crowdzoo import cli, outputs

    crowdzoo.setup()
    answers, root, n_random = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    base = ["fit", answers, "--method", "svi", "--num-steps", "20"]
    real_fit, fits = crowdzoo.fit, {}

    def cached_fit(model, data, method="map", seed=0, **kw):
        key = (str(getattr(model, "name", model)), method, seed)
        if key not in fits:
            f = real_fit(model, data, method=method, seed=seed,
                         **({"num_draws": 100} if method == "svi" else {}), **kw)
            f.task_posterior()
            wk, dt = f.workers(), f.to_arviz()
            f.workers, f.to_arviz = (lambda wk=wk: wk.copy()), (lambda dt=dt: dt)
            fits[key] = f  # no JAX work is left for the forked writers
        return fits[key]

    crowdzoo.fit = cached_fit
    # speed only, the write path is unchanged: a cheap figure instead of the worker plot (each
    # child draws it again), no fsync (it guards against power loss; a killed process loses
    # nothing the kernel already has)
    import matplotlib.pyplot as plt

    def cheap_figure(*args, **kwargs):
        fig = plt.figure(figsize=(2, 2))
        fig.add_subplot().plot([0, 1], [0, 1])
        return fig

    crowdzoo.plots.plot_worker_accuracy = cheap_figure
    os.fsync = lambda fd: None

    def run(out, seed, *extra):
        return cli.main([*base, "--seed", str(seed), "--out", str(out), *extra])

    old, new = root / "old", root / "new"
    assert run(old, 1) == 0 and run(new, 2) == 0
    events = []
    outputs._checkpoint = lambda stage, name: events.append((stage, name))
    work = root / "work"
    shutil.copytree(old, work)
    t0 = time.perf_counter()
    assert run(work, 2, "--overwrite") == 0
    t_write = time.perf_counter() - t0
    outputs._checkpoint = lambda stage, name: None

    def kill_at(i):
        count = [0]
        def hook(stage, name):
            count[0] += 1
            if count[0] == i:
                os.kill(os.getpid(), signal.SIGKILL)
        return hook

    points = [("checkpoint", i + 1, events[i]) for i in range(len(events))]
    rng = random.Random(0)
    points += [("random", None, round(rng.uniform(0, t_write), 4)) for _ in range(n_random)]
    results = []
    for idx, (kind, i, where) in enumerate(points):
        shutil.rmtree(work)
        shutil.copytree(old, work)
        sys.stdout.flush(); sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: the CLI, killed at its point
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1); os.dup2(devnull, 2)
            if kind == "checkpoint":
                outputs._checkpoint = kill_at(i)
            else:
                threading.Timer(where, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
            code = run(work, 2, "--overwrite")
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        files = sorted(p.name for p in work.iterdir())
        manifest = None
        if (work / outputs.MANIFEST).exists():
            manifest = json.loads((work / outputs.MANIFEST).read_text())
        snapshot = root / f"kill{len(results):02d}"
        shutil.copytree(work, snapshot)
        # recovery: the same command with --overwrite completes (every third point, the last)
        recover = idx % 3 == 0 or idx == len(points) - 1
        rc = run(work, 2, "--overwrite") if recover else 0
        results.append({"kind": kind, "where": where, "killed": killed, "files": files,
                        "snapshot": str(snapshot), "manifest": manifest, "recovery": rc})
    print(json.dumps({"events": events, "t_write": t_write, "results": results}))
''')


def _same_netcdf(a: Path, b: Path) -> bool:
    import xarray as xr

    with xr.open_datatree(a) as x, xr.open_datatree(b) as y:
        return bool(np.array_equal(x["posterior"]["pi"].values, y["posterior"]["pi"].values))


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill driver forks")
def test_kill_during_writes_never_leaves_a_partial_file(tmp_path):
    """Kill `crowdzoo fit --overwrite` (an SVI run: 5 files + the manifest) at every write
    checkpoint (before writing, written but not renamed, renamed) and at random times; every
    file under a final name must be the old run's or the complete new one, every file must be
    listed by the manifest present, and rerunning with --overwrite must succeed."""
    from crowdzoo.cli import _netcdf_engine

    if _netcdf_engine() is None:
        pytest.skip("no netCDF engine")
    rng = np.random.default_rng(5)
    k, n_tasks = 10, 1500  # task_posterior.csv ~ 0.3 MB: random kills land mid-write
    truth = rng.integers(0, k, n_tasks)
    task = np.repeat(np.arange(n_tasks), 3)
    worker = rng.integers(0, 25, task.size)
    label = np.where(rng.random(task.size) < 0.7, truth[task], rng.integers(0, k, task.size))
    pd.DataFrame({"task": task, "worker": worker, "label": label}).to_csv(
        tmp_path / "answers.csv", index=False)
    driver = tmp_path / "driver.py"
    driver.write_text(KILL_DRIVER)
    root = tmp_path / "runs"
    root.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, str(driver), str(tmp_path / "answers.csv"), str(root),
                          "6"], capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    old, new = root / "old", root / "new"
    old_files = {p.name for p in old.iterdir()}
    new_files = {p.name for p in new.iterdir()}
    assert {"labels.csv", "task_posterior.csv", "workers.csv", "posterior.nc",
            "workers.png"} <= new_files
    results = report["results"]
    print(f"kill points: {len(results)} ({len(report['events'])} checkpoints + "
          f"{len(results) - len(report['events'])} random), killed: "
          f"{sum(r['killed'] for r in results)}")
    assert len(results) >= 10
    assert sum(r["killed"] for r in results) >= 10
    for r in results:
        snap = Path(r["snapshot"])
        listed = {f["name"] for f in (r["manifest"] or {"files": []})["files"]}
        for name in r["files"]:
            path = snap / name
            if name.startswith(TMP_PREFIX) or name == MANIFEST:
                continue  # temporaries are hidden; the manifest was read as JSON above
            assert name in listed, (r["where"], name, "not listed by the manifest")
            candidates = [d / name for d in (old, new) if (d / name).exists()]
            if name.endswith(".nc"):
                ok = any(_same_netcdf(path, c) for c in candidates)
            else:
                ok = any(path.read_bytes() == c.read_bytes() for c in candidates)
            assert ok, (r["kind"], r["where"], name, "partial or foreign file under a final name")
        assert set(r["files"]) - {MANIFEST} <= old_files | new_files | {
            n for n in r["files"] if n.startswith(TMP_PREFIX)}
        assert r["recovery"] == 0, r
    # a recovered folder holds exactly the new run
    last = root / "work"
    assert {p.name for p in last.iterdir()} == new_files
    for name in new_files - {MANIFEST, "posterior.nc"}:
        assert (last / name).read_bytes() == (new / name).read_bytes(), name


# --- an adversarial crowd -----------------------------------------------------------------
def test_adversarial_crowd_is_flagged():
    """Every answer wrong: without gold the fit reads the crowd as reliable and flips the
    labels (the likelihood cannot tell); scored on gold, or with the labelling fixed, the
    below-chance note says so."""
    from crowdzoo.inference.chance import below_chance, chance_note

    rng = np.random.default_rng(0)
    n_tasks, n_workers = 200, 8
    truth = rng.integers(0, 2, n_tasks)
    task = np.repeat(np.arange(n_tasks), 4)
    worker = np.concatenate([rng.choice(n_workers, 4, replace=False) for _ in range(n_tasks)])
    frame = pd.DataFrame({"task": task, "worker": worker, "label": 1 - truth[task]})
    data = Annotations.from_frame(frame)
    gold = pd.Series(truth, index=np.arange(n_tasks))
    fit = crowdzoo.fit("dawid_skene", data)
    assert fit.accuracy(gold) < 0.05 and fit.workers()["accuracy"].min() > 0.9
    assert chance_note(fit) is None  # undetectable from the answers alone...
    note = chance_note(fit, gold)  # ...but not when scored on gold
    assert note and "less often than chance" in note
    # the same crowd with the labelling fixed (MAP started at the truth): workers below chance
    init = {k: np.asarray(v) for k, v in fit.params.items()}
    init["confusion"] = init["confusion"][:, ::-1, :]
    init["pi"] = init["pi"][::-1]
    flipped = crowdzoo.fit("dawid_skene", data, init=init)
    assert flipped.accuracy(gold) > 0.95
    stats = below_chance(flipped)
    assert stats["n_below"] == n_workers and stats["answer_share"] == 1.0
    assert "below chance" in chance_note(flipped)
    assert "note: " in flipped.summary() and "below chance" in flipped.summary()
    assert "note:" not in fit.summary()


def test_cli_prints_the_chance_note(tmp_path, capsys):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 80)
    task = np.repeat(np.arange(80), 3)
    worker = rng.integers(0, 6, task.size)
    pd.DataFrame({"task": task, "worker": worker, "label": 1 - truth[task]}).to_csv(
        tmp_path / "a.csv", index=False)
    pd.DataFrame({"task": np.arange(80), "label": truth}).to_csv(tmp_path / "g.csv",
                                                                  index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["fit", str(tmp_path / "a.csv"), "--gold", str(tmp_path / "g.csv"),
                     "--out", str(tmp_path / "o")])
    text = capsys.readouterr().out
    assert code == 0
    assert "note:" in text and "less often than chance" in text
