"""Paun et al. (2018)-style comparison: accuracy, ECE and per-task LOO on the shared gold sets.

For each dataset and each model of Paun et al.'s comparison that the zoo has (pooled
multinomial, Dawid-Skene, hierarchical Dawid-Skene, item difficulty, logistic random
effects; MACE when registered) plus rater's class-conditional Dawid-Skene, fit with gold
left out, score the task posteriors on gold (accuracy with ties split, top-label ECE over
10 bins) and compute PSIS-LOO of the per-task answers (elpd per task: the mean over tasks
of the expected log predictive density of a held-out task's answers; the number of tasks
with Pareto k > 0.7). NUTS where it fits in minutes on 2 cores, SVI (a mean-field normal
guide, LOO from its draws: an approximation) on the larger sets and for the logistic
random effects model (its NUTS took over 5 minutes on wsd's 1,770 answers); the ``method``
column says which. Crowd-Kit's MajorityVote, DawidSkene and OneCoinDawidSkene run on the same
answers (accuracy and ECE; they have no LOO). Writes benchmarks/results/paun.md.

    python benchmarks/paun.py [--datasets rte,temp] [--models dawid_skene,multinomial]
                              [--svi-datasets dog,product] [--num-warmup 150 --num-samples 150]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from crowdzoo.inference.compare import (
    expected_calibration_error,
    gold_scores,
    loo,
    pareto_k_summary,
)
from crowdzoo.inference.diagnostics import ConvergenceWarning
from crowdzoo.models import REGISTRY

import crowdzoo

RESULTS = Path(__file__).resolve().parent / "results" / "paun.md"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAUN = ["multinomial", "dawid_skene", "class_conditional_dawid_skene", "hierarchical_dawid_skene",
        "item_difficulty", "logistic_random_effects", "mace"]
CROWDKIT = [("MajorityVote", {}), ("DawidSkene", {"n_iter": 100}),
            ("OneCoinDawidSkene", {"n_iter": 100})]


def crowdkit_scores(name, kwargs, ann):
    """Accuracy (ties split) and ECE of a Crowd-Kit aggregator's probabilities on gold."""
    import crowdkit.aggregation as ck

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = getattr(ck, name)(**kwargs).fit_predict_proba(ann.to_frame())
    classes = list(ann.classes)
    probs = probs.reindex(columns=classes, fill_value=0.0)
    probs.index = probs.index.astype(str)
    task_ids = [str(t) for t in ann.task_ids]
    g = np.asarray(ann.gold)
    keep = g >= 0
    p = probs.reindex([task_ids[i] for i in np.flatnonzero(keep)]).to_numpy(float)
    gg = g[keep]
    top = np.isclose(p, p.max(1, keepdims=True), rtol=0, atol=1e-9)
    acc = float((top[np.arange(len(gg)), gg] / top.sum(1)).mean())
    return {"accuracy": acc, "ece": expected_calibration_error(p, gg)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--datasets", default="rte,temp,dog,bluebirds,wsd,product")
    p.add_argument("--models", default=None)
    p.add_argument("--svi-datasets", default="dog,product",
                   help="datasets fitted by SVI instead of NUTS (NUTS takes too long there)")
    p.add_argument("--svi-models", default="logistic_random_effects",
                   help="models fitted by SVI on every dataset (NUTS takes too long for them)")
    p.add_argument("--num-warmup", type=int, default=150)
    p.add_argument("--num-samples", type=int, default=150)
    p.add_argument("--num-chains", type=int, default=2)
    p.add_argument("--svi-steps", type=int, default=1500)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if not (DATA / "rte" / "answers.csv").exists():
        print(f"no datasets under {DATA}; nothing to do")
        return 0
    names = args.models.split(",") if args.models else [n for n in PAUN if n in REGISTRY]
    svi_sets = set(args.svi_datasets.split(",")) if args.svi_datasets else set()
    svi_models = set(args.svi_models.split(",")) if args.svi_models else set()
    rows = []
    for ds in args.datasets.split(","):
        ann = crowdzoo.load_dataset(ds, data_dir=DATA)
        for name in names:
            method = "svi" if ds in svi_sets or name in svi_models else "nuts"
            opts = ({"num_steps": args.svi_steps, "num_draws": 200} if method == "svi" else
                    {"num_warmup": args.num_warmup, "num_samples": args.num_samples,
                     "num_chains": args.num_chains})
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    fit = crowdzoo.fit(name, ann, method=method, use_gold=False, progress=False,
                                       seed=0, **opts)
                s = gold_scores(fit)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    elpd = loo(fit)
                k = pareto_k_summary(elpd)
                conv = fit.convergence().attrs
            except ValueError as err:  # a model that does not take these data
                print(f"{ds} {name}: skipped ({err})", file=sys.stderr)
                continue
            rows.append({"dataset": ds, "model": name, "method": method,
                         "accuracy": s["accuracy"], "ece": s["ece"],
                         "elpd_per_task": float(elpd.elpd) / ann.n_tasks,
                         "k_bad": int(k["k_bad"]), "converged": bool(conv.get("converged", True)),
                         "seconds": time.perf_counter() - start})
            r = rows[-1]
            print(f"{ds:10s} {name:30s} {method} acc={r['accuracy']:.4f} ece={r['ece']:.4f} "
                  f"elpd/task={r['elpd_per_task']:.3f} k_bad={r['k_bad']} "
                  f"({r['seconds']:.0f} s)", flush=True)
            _write(pd.DataFrame(rows), args)
        for ck_name, kw in CROWDKIT:
            start = time.perf_counter()
            s = crowdkit_scores(ck_name, kw, ann)
            rows.append({"dataset": ds, "model": f"crowdkit {ck_name}",
                         "method": "vote" if ck_name == "MajorityVote" else "EM",
                         "accuracy": s["accuracy"], "ece": s["ece"], "elpd_per_task": np.nan,
                         "k_bad": np.nan, "converged": True,
                         "seconds": time.perf_counter() - start})
            print(f"{ds:10s} crowdkit {ck_name:21s} acc={s['accuracy']:.4f} ece={s['ece']:.4f}",
                  flush=True)
        _write(pd.DataFrame(rows), args)
    return 0


def _fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def _write(df, args):
    lines = [
        "# Paun et al.-style comparison of models of annotation (benchmarks/paun.py)",
        "",
        "<!-- begin: readme-paun -->",
        "Gold left out of every fit and used only to score. **accuracy**: on gold, ties split; "
        "**ECE**: top-label expected calibration error on gold (10 bins); **elpd/task**: "
        "PSIS-LOO expected log predictive density of a held-out task's answers, averaged over "
        "tasks (higher is better; comparable across models of one dataset, not across "
        "datasets); **k>0.7**: tasks whose Pareto k marks their LOO term unreliable. "
        f"NUTS: {args.num_chains} chains x {args.num_samples} draws ({args.num_warmup} "
        f"warmup); SVI: mean-field normal guide, {args.svi_steps} steps, 200 draws (its "
        "LOO is an approximation). Crowd-Kit's estimators run on the same answers (no LOO).",
        "",
        "| dataset | model | method | accuracy | ECE | elpd/task | k>0.7 | converged | s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['method']} | {_fmt(r['accuracy'], '.4f')} | "
            f"{_fmt(r['ece'], '.4f')} | {_fmt(r['elpd_per_task'], '.3f')} | "
            f"{_fmt(r['k_bad'], '.0f')} | {'yes' if r['converged'] else 'no'} | "
            f"{r['seconds']:.0f} |")
    done = list(dict.fromkeys(df["dataset"]))
    lines += ["", f"Datasets run: {', '.join(done)}.", "<!-- end: readme-paun -->"]
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
