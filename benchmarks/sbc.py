"""Simulation-based calibration of every registered model, NUTS and SVI.

Larger than the test (more replications, 3 classes where the model takes them); prints one
table per model and method and writes benchmarks/results/sbc.md.

    python benchmarks/sbc.py [--reps 100] [--models dawid_skene,glad] [--methods nuts,svi]

Settings are stated in the output. A model fails at family-wise level alpha = 0.01
(Bonferroni over the ranked quantities); SVI (mean-field AutoNormal) is not expected to be
calibrated, and is reported to show how far off it is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import crowdzoo  # noqa: F401  (sets up JAX devices)
from crowdzoo.inference.criticism import needs_features, run_sbc
from crowdzoo.models import REGISTRY, get_model

RESULTS = Path(__file__).resolve().parent / "results" / "sbc.md"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=100)
    p.add_argument("--models", default=None, help="comma-separated (default: all with nuts)")
    p.add_argument("--methods", default="nuts,svi")
    p.add_argument("--n-tasks", type=int, default=30)
    p.add_argument("--n-workers", type=int, default=5)
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--answers-per-task", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    names = args.models.split(",") if args.models else sorted(  # SBC needs a proper likelihood
        n for n, c in REGISTRY.items() if "nuts" in c.methods and c.proper_likelihood)
    rows = []
    for name in names:
        model = get_model(name)
        k = args.classes
        try:  # binary-only models get K = 2
            from crowdzoo.inference.sbc import _sizes_data
            import jax.numpy as jnp
            probe = _sizes_data([0, 1], [0, 1], 2, 2, k, jnp.zeros((2, 2)) if needs_features(
                model) else None)
            model.check_data(probe)
        except ValueError:
            k = 2
        for method in args.methods.split(","):
            start = time.perf_counter()
            try:
                r = run_sbc(name, method=method, n_reps=args.reps, n_tasks=args.n_tasks,
                            n_workers=args.n_workers, n_classes=k,
                            answers_per_task=args.answers_per_task, seed=args.seed)
            except Exception as err:  # report, keep going
                print(f"{name} {method}: ERROR {err!r}", file=sys.stderr, flush=True)
                continue
            t = r.table()
            worst = t["p_value"].idxmin()
            row = {"model": name, "method": method, "K": k, "quantities": len(t),
                   "min_p": t["p_value"].min(), "adjusted_p": r.adjusted_p_value,
                   "worst": worst, "passed": r.passed,
                   "divergences": int(r.diagnostics.get("divergences", [0]).sum())
                   if method == "nuts" else "-",
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            print(f"{name:22s} {method:4s} K={k} m={len(t):2d} adjusted p={r.adjusted_p_value:.3g}"
                  f" worst={worst} passed={r.passed} ({row['seconds']:.0f} s)", flush=True)
            _write(rows, args)
    return 0


def _write(rows, args):
    lines = [
        "# Simulation-based calibration (benchmarks/sbc.py)",
        "",
        f"R = {args.reps} replications per model and method; crowds of {args.n_tasks} tasks, "
        f"{args.n_workers} workers, {args.answers_per_task} answers per task, "
        f"K = {args.classes} (2 for binary-only models); seed {args.seed}. NUTS: 1 chain from "
        "the MAP, 150 warmup, 400 draws thinned by 4 (L = 100). SVI: AutoNormal from the MAP, "
        "1500 Adam steps (lr 0.02), L = 400 guide draws. Ranks of the class prior, two "
        "workers' and two tasks' parameters and two task labels; chi-square on 5 bins; "
        "`passed` = Bonferroni-adjusted p >= 0.01.",
        "",
        "| model | method | K | quantities | min p | adjusted p | worst quantity | passed | "
        "divergences | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['method']} | {r['K']} | {r['quantities']} | "
                     f"{r['min_p']:.3g} | {r['adjusted_p']:.3g} | {r['worst']} | "
                     f"{'yes' if r['passed'] else '**no**'} | {r['divergences']} | "
                     f"{r['seconds']:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
