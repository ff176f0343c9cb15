"""Simulation-based calibration of every registered model, NUTS and SVI.

Larger than the test (more replications, 3 classes where the model takes them); prints one
table per model and method and writes benchmarks/results/sbc.md.

    python benchmarks/sbc.py [--reps 100] [--models dawid_skene,glad] [--methods nuts,svi]
    python benchmarks/sbc.py --classes 2 --models biased_worker_words --methods nuts --as-is

``--as-is`` adds, for a model whose posterior is symmetric under relabelling the classes
(``class_symmetric``: the biased worker's flat two-class prior), a row "nuts as-is" where
neither the draws nor the true parameters are relabelled: the chain's one mode against the
exact, two-mode posterior (what the zoo did before it relabelled).

Settings are stated in the output. A model fails at family-wise level alpha = 0.01
(Bonferroni over the ranked quantities); SVI (mean-field AutoNormal) is not expected to be
calibrated, and is reported to show how far off it is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from crowdzoo.inference.criticism import run_sbc
from crowdzoo.models import REGISTRY, get_model

import crowdzoo  # noqa: F401  (sets up JAX devices)

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
    p.add_argument("--as-is", action="store_true",
                   help="also run symmetric models without relabelling (see the docstring)")
    args = p.parse_args(argv)
    names = args.models.split(",") if args.models else sorted(  # SBC needs a proper likelihood
        n for n, c in REGISTRY.items() if "nuts" in c.methods and c.proper_likelihood)
    rows = []
    for name in names:
        model = get_model(name)
        k = args.classes
        if k > 2:  # binary-only models (the IRT family) get K = 2
            from crowdzoo.inference.sbc import simulate_batch
            from crowdzoo.models import crowd_data

            try:
                sim = simulate_batch(model, 1, 8, 3, k, 2, seed=args.seed)[0]
                model.check_data(crowd_data(sim.annotations))
            except ValueError:
                k = 2
        runs = [(m, None) for m in args.methods.split(",")]
        if args.as_is and "nuts" in args.methods.split(",") and _symmetric(model, k, args):
            runs.append(("nuts as-is", _as_is(model)))
        for method, fit_model in runs:
            start = time.perf_counter()
            try:
                r = run_sbc(name, method=method.split()[0], n_reps=args.reps,
                            n_tasks=args.n_tasks, n_workers=args.n_workers, n_classes=k,
                            answers_per_task=args.answers_per_task, seed=args.seed,
                            fit_model=fit_model)
            except Exception as err:  # report, keep going
                print(f"{name} {method}: ERROR {err!r}", file=sys.stderr, flush=True)
                continue
            t = r.table()
            worst = t["p_value"].idxmin()
            row = {"model": name, "method": method, "K": k, "quantities": len(t),
                   "min_p": t["p_value"].min(), "adjusted_p": r.adjusted_p_value,
                   "worst": worst, "passed": r.passed,
                   "divergences": int(r.diagnostics.get("divergences", [0]).sum())
                   if method.startswith("nuts") else "-",
                   "relabelled": r.diagnostics.get("relabelled_truths", "-"),
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            print(f"{name:22s} {method:4s} K={k} m={len(t):2d} adjusted p={r.adjusted_p_value:.3g}"
                  f" worst={worst} passed={r.passed} ({row['seconds']:.0f} s)", flush=True)
            _write(rows, args)
    return 0


def _symmetric(model, k, args) -> bool:
    from crowdzoo.inference.sbc import simulate_batch
    from crowdzoo.models import crowd_data

    sim = simulate_batch(model, 1, args.n_tasks, args.n_workers, k, args.answers_per_task,
                         seed=args.seed)[0]
    return model.class_symmetric(crowd_data(sim.annotations))


def _as_is(model):
    """The same model (default settings), with its draws left in whatever mode they are."""
    base = type(model)

    class AsIs(base):
        name = base.name

        def class_symmetric(self, data):
            return False

    return AsIs()


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
        "`passed` = Bonferroni-adjusted p >= 0.01. `relabelled`: replications whose true "
        "parameters were put in the identified labelling (a posterior symmetric under "
        "relabelling the classes: `fit` relabels its draws, SBC the truth); `nuts as-is`: the "
        "same model with neither relabelled (`--as-is`), the chain's mode against the exact "
        "two-mode posterior.",
        "",
        "| model | method | K | quantities | min p | adjusted p | worst quantity | passed | "
        "divergences | relabelled | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['method']} | {r['K']} | {r['quantities']} | "
                     f"{r['min_p']:.3g} | {r['adjusted_p']:.3g} | {r['worst']} | "
                     f"{'yes' if r['passed'] else '**no**'} | {r['divergences']} | "
                     f"{r.get('relabelled', '-')} | "
                     f"{r['seconds']:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
