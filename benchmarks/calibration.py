"""Calibration of the task posteriors on gold: ECE, log loss and accuracy, MAP vs NUTS.

For each real dataset with full gold and no features (bluebirds, rte, temp, wsd, dog: small
enough for NUTS in minutes) and each generative model of the registry that needs no
features, fit with MAP (plug-in posterior p(z | theta_MAP, y)) and with NUTS (the posterior
averaged over draws), gold left out of the fit, and score the task posteriors on gold.
Writes benchmarks/results/calibration.md. Runs in ~10-15 min on 2 cores at the defaults.

    python benchmarks/calibration.py [--datasets rte,dog] [--models dawid_skene,glad]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import crowdzoo
from crowdzoo.inference.criticism import gold_scores, needs_features
from crowdzoo.models import REGISTRY, get_model

RESULTS = Path(__file__).resolve().parent / "results" / "calibration.md"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--datasets", default="bluebirds,wsd,temp,rte,dog")
    p.add_argument("--models", default=None)
    p.add_argument("--num-warmup", type=int, default=300)
    p.add_argument("--num-samples", type=int, default=300)
    p.add_argument("--num-chains", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if not (DATA / "rte" / "answers.csv").exists():
        print(f"no datasets under {DATA}; nothing to do")
        return 0
    names = args.models.split(",") if args.models else sorted(
        n for n, c in REGISTRY.items() if "nuts" in c.methods and not needs_features(c()))
    rows = []
    for ds in args.datasets.split(","):
        ann = crowdzoo.load_dataset(ds, data_dir=DATA)
        for name in names:
            model = get_model(name)
            for method in ("map", "nuts"):
                opts = ({"num_warmup": args.num_warmup, "num_samples": args.num_samples,
                         "num_chains": args.num_chains} if method == "nuts" else {})
                start = time.perf_counter()
                try:
                    fit = crowdzoo.fit(model, ann, method=method, use_gold=False, progress=False,
                                       **opts)
                    s = gold_scores(fit)
                except ValueError as err:  # e.g. a binary-only model on K > 2
                    print(f"{ds} {name} {method}: skipped ({err})", file=sys.stderr)
                    break
                rows.append({"dataset": ds, "model": name, "method": method, **s,
                             "seconds": time.perf_counter() - start})
                print(f"{ds:10s} {name:20s} {method:4s} acc={s['accuracy']:.4f} "
                      f"ece={s['ece']:.4f} logloss={s['log_loss']:.4f} "
                      f"({rows[-1]['seconds']:.0f} s)", flush=True)
                _write(pd.DataFrame(rows), args)
    return 0


def _write(df, args):
    wide = df.pivot_table(index=["dataset", "model"], columns="method",
                          values=["ece", "log_loss", "accuracy"], sort=False)
    lines = [
        "# Calibration of task posteriors on gold (benchmarks/calibration.py)",
        "",
        "Gold is left out of every fit and used only to score. ECE: top-label expected "
        "calibration error, 10 equal-width confidence bins. MAP: plug-in posterior "
        "p(z | theta_MAP, y); NUTS: p(z | y) averaged over "
        f"{args.num_chains} chains x {args.num_samples} draws ({args.num_warmup} warmup). "
        "Datasets: those with full gold and no features that NUTS fits in minutes.",
        "",
        "| dataset | model | accuracy MAP | accuracy NUTS | ECE MAP | ECE NUTS | "
        "log loss MAP | log loss NUTS | NUTS better calibrated? |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    wins = total = 0
    for (ds, model), r in wide.iterrows():
        def g(stat, m):
            v = r.get((stat, m), np.nan)
            return "-" if pd.isna(v) else f"{v:.4f}"

        better = "-"
        if not pd.isna(r.get(("ece", "nuts"), np.nan)) and not pd.isna(r.get(("ece", "map"),
                                                                              np.nan)):
            b = r[("ece", "nuts")] < r[("ece", "map")]
            wins += int(b)
            total += 1
            better = "yes" if b else "no"
        lines.append(f"| {ds} | {model} | {g('accuracy', 'map')} | {g('accuracy', 'nuts')} | "
                     f"{g('ece', 'map')} | {g('ece', 'nuts')} | {g('log_loss', 'map')} | "
                     f"{g('log_loss', 'nuts')} | {better} |")
    lines += ["", f"NUTS has the lower ECE in {wins} of {total} (dataset, model) pairs."]
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
