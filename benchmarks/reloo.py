"""Exact LOO by refitting for the tasks whose Pareto k stays > 0.7, on a real crowd.

For each model: a NUTS fit from the MAP (``crowdzoo compare``'s path: ``use_gold=False``),
its LOO as ``compare`` computes it (PSIS, integrated terms where the model has task
parameters, moment matching where it can work), then the flagged terms refitted
(:func:`crowdzoo.inference.compare.reloo_tasks`) with ``--max-refits`` refits (exact LOO
when the flagged tasks are no more, K-fold folds of them otherwise) and with a single fold
(all flagged tasks left out together, one refit), with JAX's compile cache on disk off (the
times are a first run's). ``--exact-check N`` also refits N flagged
tasks one at a time and sets their exact LOO terms beside their fold terms. Rows go to
``results/reloo.csv``; ``results/reloo.md`` (with a README section) is rendered from it.

Usage::

    python benchmarks/reloo.py --dataset music_genre \
        --models hierarchical_dawid_skene,mace --exact-check 3
    python benchmarks/reloo.py --render
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import crowdzoo

HERE = Path(__file__).resolve().parent
CSV = HERE / "results" / "reloo.csv"
MD = HERE / "results" / "reloo.md"
DATA = Path(os.environ.get("CROWDZOO_DATA_DIR", HERE.parents[0] / ".." / "shared" / "data"))


def exact_terms(fit, elpd, tasks, n_nodes: int = 24) -> list[float]:
    """Exact LOO terms of ``tasks``, one refit each (what ``reloo_tasks`` does alone)."""
    from crowdzoo.inference.compare import integrated_log_likelihood
    from crowdzoo.inference.result import Fit
    from crowdzoo.inference.runner import refit
    from scipy.special import logsumexp

    out = []
    for t in tasks:
        res = refit(fit, fit.model.drop_tasks(fit.data, [int(t)]))
        full = Fit(fit.model, res.method, fit.annotations, fit.data, samples=res.samples)
        ll = (integrated_log_likelihood(full, n_nodes) if elpd.integrated
              else full.log_likelihood())[..., int(t)].ravel()
        out.append(float(logsumexp(ll) - np.log(ll.size)))
    return out


def measure(dataset: str, name: str, chains: int, warmup: int, draws: int, max_refits: int,
            exact_check: int, seed: int = 0) -> dict:
    """Fit one model; time its LOO, then the refits; return its row."""
    from crowdzoo.inference.compare import loo, pareto_k_summary, reloo_tasks

    ann = crowdzoo.load_dataset(dataset, data_dir=DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fit = crowdzoo.fit(name, ann, method="nuts", use_gold=False, seed=seed, progress=False,
                           num_chains=chains, num_warmup=warmup, num_samples=draws)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        elpd = loo(fit)
        loo_s = time.perf_counter() - start
        many = reloo_tasks(fit, elpd, max_refits=max_refits)
        one = reloo_tasks(fit, elpd, max_refits=1)
    row = {"dataset": dataset, "model": name, "setting": f"{chains}x({warmup}+{draws})",
           "n_tasks": ann.n_tasks, "n_answers": ann.n_answers,
           "r_hat": float(fit.convergence().attrs["max_r_hat"]), "fit_s": fit_s,
           "loo_s": loo_s, "k_bad_psis": elpd.k_bad_before, "moment_matched": elpd.moment_matched,
           "k_bad": pareto_k_summary(elpd)["k_bad"], "elpd": float(elpd.elpd),
           "se": float(elpd.se), "max_refits": max_refits, "refits": many.refits,
           "elpd_reloo": float(many.elpd), "se_reloo": float(many.se),
           "k_bad_reloo": pareto_k_summary(many)["k_bad"], "reloo_s": many.reloo_seconds,
           "refit_r_hat": many.refit_max_r_hat,
           "max_mcse": float(np.max(many.refit_mcse)) if many.refitted else np.nan,
           "elpd_one_fold": float(one.elpd), "one_fold_s": one.reloo_seconds,
           "exact_tasks": "", "exact_terms": "", "fold_terms": "", "one_fold_terms": "",
           "psis_terms": ""}
    if exact_check and many.refitted:
        tasks = many.refit_tasks[:exact_check]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exact = exact_terms(fit, elpd, tasks)

        def fmt(values):
            return " ".join(f"{v:.3f}" for v in values)

        row.update(exact_tasks=" ".join(str(ann.task_ids[t]) for t in tasks),
                   exact_terms=fmt(exact),
                   fold_terms=fmt(np.asarray(many.elpd_i)[tasks]),
                   one_fold_terms=fmt(np.asarray(one.elpd_i)[tasks]),
                   psis_terms=fmt(np.asarray(elpd.elpd_i)[tasks]))
    return row


def render(df: pd.DataFrame) -> None:
    """Write ``results/reloo.md`` from the rows."""
    lines = ["# Exact LOO by refitting the high-k tasks", "",
             "<!-- begin: readme-reloo -->",
             "NUTS from the MAP, `use_gold=False` (as `crowdzoo compare`); `k>0.7`: tasks "
             "whose PSIS term is unreliable, before and after moment matching, then after "
             "the refits; `refits`: fits run (exact LOO when the flagged tasks are at most "
             "`--max-refits`, otherwise that many K-fold folds of them); `1 fold`: all "
             "flagged tasks left out of a single refit. Seconds: wall time with no compile "
             "cache on disk (each fit and each refit with a new number of answers compiles), on "
             "a shared 2-core machine under load (pessimistic); `reloo s` is all the refits, "
             "`1 fold s` the single refit.", "",
             "| dataset | model | setting | fit s | LOO s | k>0.7 PSIS / MM / reloo | "
             "refits | reloo s | refit r_hat | elpd (se) before | elpd after (refits) | "
             "elpd after (1 fold) | 1 fold s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['setting']} | {r['fit_s']:.0f} | "
            f"{r['loo_s']:.0f} | {r['k_bad_psis']:.0f} / {r['k_bad']:.0f} / "
            f"{r['k_bad_reloo']:.0f} | {r['refits']:.0f} | {r['reloo_s']:.0f} | "
            f"{r['refit_r_hat']:.3f} | {r['elpd']:.1f} ({r['se']:.1f}) | "
            f"{r['elpd_reloo']:.1f} ({r['se_reloo']:.1f}) | {r['elpd_one_fold']:.1f} | "
            f"{r['one_fold_s']:.0f} |")
    checks = df[df["exact_tasks"].fillna("") != ""]
    if len(checks):
        lines += ["", "Terms of single tasks (nats): PSIS (unreliable), the fold term of the "
                  "refits, the single-fold term, and the exact LOO term (one refit per task):",
                  "", "| dataset | model | task | PSIS | fold | 1 fold | exact |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in checks.iterrows():
            cols = [str(r[c]).split() for c in ("exact_tasks", "psis_terms", "fold_terms",
                                                  "one_fold_terms", "exact_terms")]
            for task, psis, fold, one, exact in zip(*cols, strict=True):
                lines.append(f"| {r['dataset']} | {r['model']} | {task} | {psis} | {fold} | "
                             f"{one} | {exact} |")
    lines += ["<!-- end: readme-reloo -->", ""]
    MD.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="music_genre")
    p.add_argument("--models", default="hierarchical_dawid_skene")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--max-refits", type=int, default=10)
    p.add_argument("--exact-check", type=int, default=0)
    p.add_argument("--render", action="store_true", help="only render results/reloo.md")
    args = p.parse_args()
    # no compile cache on disk: every fit and refit compiles, as on a first run
    crowdzoo.setup(compilation_cache=False)
    df = pd.read_csv(CSV) if CSV.exists() else pd.DataFrame()
    if not args.render:
        for name in args.models.split(","):
            row = measure(args.dataset, name, args.chains, args.warmup, args.draws,
                          args.max_refits, args.exact_check)
            print(row, flush=True)
            if len(df):
                df = df[~((df["dataset"] == row["dataset"]) & (df["model"] == row["model"]))]
            df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
            df.to_csv(CSV, index=False)
    render(df)
    print(MD.read_text())


if __name__ == "__main__":
    main()
