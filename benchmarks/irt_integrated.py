"""IRT models with each task's item effects integrated out inside the model, against sampled.

``integrate_items=True`` (:mod:`crowdzoo.models.irt`) sums every task's difficulty (and
discrimination, guessing) out of its likelihood by quadrature, so NUTS samples only ``pi``
and the raters. This script fits both forms by NUTS from the MAP (``crowdzoo compare``'s
path: ``use_gold=False``, scored on gold) and records max r_hat, min bulk ESS, the mean tree
size, wall time, accuracy and ECE on gold and the PSIS-LOO elpd (integrated terms in both
forms); ``--gradients`` times one gradient of the potential of each form instead (the cost
the quadrature grid adds). Rows accumulate in ``results/irt_integrated.csv``;
``results/irt_integrated.md`` is rendered from it.

Usage::

    python benchmarks/irt_integrated.py --datasets bluebirds,rte --models irt_1pl,irt_2pl
    python benchmarks/irt_integrated.py --datasets bluebirds --gradients
    python benchmarks/irt_integrated.py --render
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import crowdzoo

HERE = Path(__file__).resolve().parent
CSV = HERE / "results" / "irt_integrated.csv"
MD = HERE / "results" / "irt_integrated.md"
DATA = HERE.parents[0] / ".." / "shared" / "data"
COLUMNS = ["dataset", "model", "integrate", "setting", "accuracy", "ece", "elpd_loo", "se",
           "k_bad", "r_hat", "ess", "worst", "mean_steps", "divergences", "seconds"]


def _model(name: str, integrate: bool):
    from crowdzoo.models.irt import IRT1PL, IRT2PL, IRT3PL

    return {"irt_1pl": IRT1PL, "irt_2pl": IRT2PL, "irt_3pl": IRT3PL}[name](
        integrate_items=integrate)


def measure(dataset: str, name: str, integrate: bool, chains: int, warmup: int, draws: int,
            seed: int = 0) -> dict:
    """Fit one form by NUTS through ``compare_models``; return its row."""
    from crowdzoo.inference.compare import compare_models
    from crowdzoo.inference.diagnostics import convergence_table

    ann = crowdzoo.load_dataset(dataset, data_dir=DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare_models(ann, [_model(name, integrate)], method="nuts", seed=seed,
                             num_chains=chains, num_warmup=warmup, num_samples=draws)
    r = res.table.iloc[0]
    fit = res.fits[name]
    table = convergence_table(fit)
    return {"dataset": dataset, "model": name, "integrate": bool(integrate),
            "setting": f"{chains}x({warmup}+{draws})", "accuracy": r["accuracy"],
            "ece": r["ece"], "elpd_loo": r["elpd_loo"], "se": r["se"], "k_bad": r["k_bad"],
            "r_hat": r["r_hat"], "ess": r["ess"], "worst": str(table["worst"].iloc[0]),
            "mean_steps": float(np.mean(fit.sample_stats["num_steps"])),
            "divergences": r["divergences"], "seconds": r["seconds"]}


def gradient_costs(dataset: str, n: int = 20) -> list[str]:
    """Milliseconds per gradient of the potential, both forms of the three models."""
    import jax
    from crowdzoo.models import crowd_data
    from numpyro.infer.util import initialize_model

    ann = crowdzoo.load_dataset(dataset, data_dir=DATA)
    data = crowd_data(ann, use_gold=False)
    lines = []
    for name in ("irt_1pl", "irt_2pl", "irt_3pl"):
        for integrate in (False, True):
            info = initialize_model(jax.random.PRNGKey(0), _model(name, integrate),
                                    model_args=(data,))
            grad = jax.jit(jax.value_and_grad(info.potential_fn))
            x = info.param_info.z
            jax.block_until_ready(grad(x))
            start = time.perf_counter()
            for _ in range(n):
                out = grad(x)
            jax.block_until_ready(out)
            dim = sum(int(np.size(v)) for v in x.values())
            ms = (time.perf_counter() - start) / n * 1e3
            lines.append(f"| {dataset} | {name} | {'integrated' if integrate else 'sampled'} | "
                         f"{dim} | {ms:.2f} |")
    return lines


def render(df: pd.DataFrame, notes: str = "") -> None:
    """Write ``results/irt_integrated.md`` from the rows.

    ``notes`` (markdown) go under a ``## Notes`` heading; without them, the notes of the
    existing file are kept (what was measured by hand: quadrature errors, gradient costs).
    """
    if not notes and MD.exists() and "\n## Notes\n" in MD.read_text():
        notes = MD.read_text().split("\n## Notes\n", 1)[1].strip()
    lines = ["# IRT: item effects sampled vs integrated out inside the model", "",
             "NUTS from the MAP, `use_gold=False`, scored on gold (as `crowdzoo compare`); "
             "r_hat: the largest over every sampled parameter; ESS: the smallest bulk ESS; "
             "steps: mean leapfrog steps per draw; elpd: PSIS-LOO over tasks, integrated "
             "terms in both forms. Measured on a shared 2-core machine under heavy load "
             "(load average 4-13): wall times are pessimistic and not comparable between "
             "rows run at different loads; the steps and the ESS are.", "",
             "| dataset | model | item effects | setting | max r_hat (worst) | min ESS | steps | "
             "accuracy | ECE | elpd (se) | k > 0.7 | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['model']} | "
            f"{'integrated' if r['integrate'] else 'sampled'} | {r['setting']} | "
            f"{r['r_hat']:.3f} ({r['worst']}) | {r['ess']:.0f} | {r['mean_steps']:.1f} | "
            f"{r['accuracy']:.3f} | {r['ece']:.3f} | {r['elpd_loo']:.1f} ({r['se']:.1f}) | "
            f"{r['k_bad']:.0f} | {r['seconds']:.0f} |")
    if notes:
        lines += ["", "## Notes", "", notes]
    MD.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="bluebirds,rte")
    parser.add_argument("--models", default="irt_1pl,irt_2pl")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--gradients", action="store_true",
                        help="time one gradient of each form instead of fitting")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown")
    args = parser.parse_args(argv)
    if args.gradients:
        print("| dataset | model | item effects | dimensions | ms per gradient |")
        print("|---|---|---|---|---|")
        for d in args.datasets.split(","):
            print("\n".join(gradient_costs(d)), flush=True)
        return 0
    df = pd.read_csv(CSV) if CSV.exists() else pd.DataFrame(columns=COLUMNS)
    if not args.render:
        for d in args.datasets.split(","):
            for name in args.models.split(","):
                for integrate in (True, False):
                    row = measure(d, name, integrate, args.chains, args.warmup, args.draws)
                    print(row, flush=True)
                    df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
                    df.to_csv(CSV, index=False)
    render(df)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
