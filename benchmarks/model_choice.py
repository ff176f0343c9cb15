"""Which model for which crowd? One run, two tables (issues 13 and 17).

For every shared dataset with gold, fit every registered generative model that takes the data
(:func:`crowdzoo.inference.compare.applicable_models`: binary-only models on binary sets, the
learning-from-crowds ``raykar`` where the set has task features; the pseudo-likelihood
``difficulty_fixed`` and the ``majority_vote`` baseline have no LOO and are left out), with
gold left out of every fit, one model at a time through
:func:`~crowdzoo.inference.compare.compare_models`, and record per (dataset, model): method,
accuracy and top-label ECE on gold, PSIS-LOO elpd per task (integrated terms for models with
per-task parameters), the number of tasks with Pareto k > 0.7, max r_hat, whether the fit
converged, and its seconds. Crowd-Kit 1.4's MV, OneCoinDS, DS, GLAD and MACE run on the same
answers (accuracy and ECE; no LOO).

Inference: NUTS started from the MAP, 2 chains x (``--warmup`` + ``--draws``) — a long warmup
and few draws, as LOO needs only a few hundred draws — on sets with at most
``--nuts-max-answers`` answers; SVI (mean-field normal guide started from the MAP, its draws
give an approximate LOO) above that, for ``--svi-models`` everywhere (logistic random effects,
whose NUTS took over 5 minutes on wsd's 1,770 answers; raykar, with a weight per feature and
class; item_difficulty on the 8- and 10-class sets, whose NUTS ran over 6 minutes on labelme),
and for the rest of a dataset's models once one NUTS fit there took longer than
``--nuts-budget`` seconds. The ``method`` column says which.

Outputs (rewritten after every fit, so an interrupted run keeps what it measured, and a rerun
skips the (dataset, model) pairs the CSV already holds):

* ``results/model_choice.csv`` — one row per (dataset, model), machine-readable;
* ``results/model_choice.md`` — the model a user would pick without gold (highest elpd among
  converged fits with no Pareto k > 0.7) against Crowd-Kit's best chosen with hindsight;
* ``results/paun.md`` — the Paun et al. (2018)-style table of every row
  (written by ``benchmarks/paun.py`` from the CSV).

Usage::

    python benchmarks/model_choice.py                       # every set with gold, small first
    python benchmarks/model_choice.py --datasets wsd,bluebirds --models dawid_skene,glad
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from crowdzoo.inference.compare import applicable_models, compare_models, expected_calibration_error

import crowdzoo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import paun  # noqa: E402  (benchmarks/paun.py: writes paun.md from the CSV)

RESULTS = HERE / "results"
CSV = RESULTS / "model_choice.csv"
MD = RESULTS / "model_choice.md"
DATA = Path(os.environ.get("CROWDZOO_DATA_DIR", HERE.parents[1] / "shared" / "data"))

#: Crowd-Kit 1.4's best of MV, OneCoinDS, DS, GLAD, MACE on gold, chosen with hindsight
#: (issue 17, measured on main at 58e952a)
CROWDKIT_BEST = {"adult_content": 0.766, "bluebirds": 0.889, "dog": 0.843, "duchenne": 0.786,
                 "labelme": 0.792, "music_genre": 0.797, "product": 0.940, "rte": 0.928,
                 "sentiment_polarity": 0.917, "temp": 0.942, "trec2010_relevance": 0.617,
                 "wsd": 0.994}
#: smallest first (by answers), so a partial run covers as many sets as possible
ORDER = ["wsd", "labelme", "music_genre", "bluebirds", "temp", "rte", "dog", "product",
         "sentiment_polarity", "duchenne", "adult_content", "trec2010_relevance"]
CROWDKIT = [("MajorityVote", {}), ("OneCoinDawidSkene", {"n_iter": 100}),
            ("DawidSkene", {"n_iter": 100}), ("GLAD", {}), ("MACE", {})]
#: no LOO: a pseudo-likelihood, and the baseline
EXCLUDED = {"difficulty_fixed": "pseudo-likelihood (no LOO)", "majority_vote": "baseline"}
#: learning-from-crowds models: fitted only where the set has task features
FEATURE_MODELS = {"raykar": "needs task features: fitted on labelme and music_genre only",
                  "yan": "binary and needs task features: no shared set has both",
                  "difficulty_adaptive": "binary and needs task features: no shared set has "
                                         "both"}
#: models fitted by SVI on sets with more than MANY_CLASSES classes (labelme: 8, music_genre:
#: 10): item_difficulty's NUTS (a quadrature over K - 1 item effects) ran over 6 min on labelme
MANY_CLASSES = 4
SVI_MANY_CLASSES = ["item_difficulty"]
#: the pick's second tier: max r_hat at most this (see :func:`loo_pick`)
LOOSE_R_HAT = 1.1
COLUMNS = ["dataset", "model", "method", "accuracy", "ece", "log_loss", "elpd_loo", "se",
           "elpd_per_task", "loo_terms", "k_bad", "k_max", "r_hat", "ess", "divergences",
           "converged", "seconds", "n_tasks", "n_answers", "settings", "vote_agreement"]


def crowdkit_scores(name, kwargs, ann):
    """Accuracy (ties split) and ECE of a Crowd-Kit aggregator's probabilities on gold."""
    import crowdkit.aggregation as ck

    frame = ann.to_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agg = getattr(ck, name)(**kwargs)
        if hasattr(agg, "fit_predict_proba"):
            probs = agg.fit_predict_proba(frame)
        else:  # MajorityVote's probabilities come with fit
            probs = agg.fit(frame).probas_
    classes = list(ann.classes)
    probs = probs.reindex(columns=classes, fill_value=0.0)
    probs.index = probs.index.astype(str)
    g = np.asarray(ann.gold)
    keep = g >= 0
    task_ids = [str(t) for t in ann.task_ids]
    p = probs.reindex([task_ids[i] for i in np.flatnonzero(keep)]).fillna(1 / len(classes))
    p = p.to_numpy(float)
    gg = g[keep]
    top = np.isclose(p, p.max(1, keepdims=True), rtol=0, atol=1e-9)
    acc = float((top[np.arange(len(gg)), gg] / top.sum(1)).mean())
    return {"accuracy": acc, "ece": expected_calibration_error(p, gg)}


def loo_pick(t: pd.DataFrame) -> tuple[str, str]:
    """The model a user picks without gold (rows of one dataset), and how reliable it is.

    The highest elpd among the NUTS fits that converged by the zoo's test (r_hat <= 1.01, ESS
    >= 100 per chain, no divergences) and have no Pareto k > 0.7; failing that, among the SVI
    fits and the NUTS fits with max r_hat <= ``LOOSE_R_HAT`` (with a few hundred draws the
    maximum r_hat over hundreds of parameters exceeds 1.01 by chance alone) and no k > 0.7;
    failing that, the highest elpd among the fewest k > 0.7.
    """
    t = t[t["model"].map(lambda m: not m.startswith("crowdkit"))].dropna(subset=["elpd_loo"])
    if not len(t):
        return "", "no fit with LOO"
    nuts = t["method"] == "nuts"
    conv = nuts & t["converged"].astype(bool)
    loose = ~nuts | (t["r_hat"] <= LOOSE_R_HAT)  # SVI has no r_hat: it joins the second tier
    for ok, note in ((conv, "converged"), (loose, f"max r_hat {{:.3f}} <= {LOOSE_R_HAT}")):
        ok = t[ok & (t["k_bad"] == 0)]
        if len(ok):
            r = ok.loc[ok["elpd_loo"].idxmax()]
            if r["method"] != "nuts":
                note = "SVI (approximate LOO)"
            return str(r["model"]), note.format(r["r_hat"])
    r = t.sort_values(["k_bad", "elpd_loo"], ascending=[True, False]).iloc[0]
    rhat = f", max r_hat {r['r_hat']:.2f}" if pd.notna(r["r_hat"]) else " (SVI)"
    return str(r["model"]), (f"every fit has k > 0.7 or r_hat > {LOOSE_R_HAT}: fewest k > 0.7 "
                             f"({int(r['k_bad'])}){rhat}")


_PLANNED: dict = {}


def planned(dataset: str, ann=None) -> list[str]:
    """The registered models this benchmark fits on a set: all that apply, less EXCLUDED."""
    if dataset not in _PLANNED:
        ann = ann if ann is not None else crowdzoo.load_dataset(dataset, data_dir=DATA)
        _PLANNED[dataset] = [m for m in applicable_models(ann)[0] if m not in EXCLUDED]
    return _PLANNED[dataset]


def not_run(df: pd.DataFrame) -> dict:
    """Dataset -> the planned models without a row (the run was stopped, or a fit failed)."""
    out = {}
    for d in [d for d in ORDER if d in set(df["dataset"])]:
        have = set(df.loc[df["dataset"] == d, "model"])
        miss = [m for m in planned(d) if m not in have]
        if miss:
            out[d] = miss
    return out


def top_elpd(t: pd.DataFrame) -> str:
    """The top row of ``crowdzoo compare --models all``: the highest elpd, flags or not."""
    t = t[~t["model"].str.startswith("crowdkit")].dropna(subset=["elpd_loo"])
    return str(t.loc[t["elpd_loo"].idxmax(), "model"]) if len(t) else ""


def picks(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: both LOO picks (no gold), their gold scores, and the hindsight bests."""
    out = []
    for d in [d for d in ORDER if d in set(df["dataset"])]:
        t = df[df["dataset"] == d]
        zoo = t[~t["model"].str.startswith("crowdkit")].set_index("model")
        top, (pick, note) = top_elpd(t), loo_pick(t)
        if not top:
            continue
        best = zoo["accuracy"].idxmax()
        out.append({"dataset": d, "top_elpd": top, "top_method": zoo.loc[top, "method"],
                    "top_accuracy": zoo.loc[top, "accuracy"], "top_ece": zoo.loc[top, "ece"],
                    "top_flags": _flags(zoo.loc[top]),
                    "pick": pick, "pick_method": zoo.loc[pick, "method"],
                    "pick_accuracy": zoo.loc[pick, "accuracy"], "pick_ece": zoo.loc[pick, "ece"],
                    "pick_note": note, "crowdkit_best": CROWDKIT_BEST[d],
                    "best_zoo": best, "best_zoo_accuracy": zoo.loc[best, "accuracy"]})
    return pd.DataFrame(out).set_index("dataset") if out else pd.DataFrame()


def _flags(r) -> str:
    """``?``: tasks with Pareto k > 0.7; ``!``: not converged (as ``crowdzoo compare`` marks)."""
    return ("?" if r["k_bad"] > 0 else "") + ("!" if not r["converged"] else "")


def write_model_choice(df: pd.DataFrame, settings: str, skipped: dict) -> None:
    p = picks(df)
    lines = ["# Model choice by LOO without gold, against the hindsight-best Crowd-Kit estimator",
             "", f"Generated by `benchmarks/model_choice.py` (last row "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
             f"{os.cpu_count()} CPUs); {settings}. Gold is "
             f"never shown to a fit. Per-model rows: `paun.md` and `model_choice.csv`.", "",
             "<!-- begin: readme-model-choice -->",
             "Two ways to pick a model without gold. **Top elpd**: the first row of "
             "`crowdzoo compare --models all`, the highest PSIS-LOO elpd whatever its flags "
             "(`?`: some task's Pareto k > 0.7, `!`: not converged by the zoo's test: r_hat <= "
             "1.01, ESS >= 100 per chain, no divergences). **Reliable pick**: the highest elpd "
             "among the NUTS fits that converged with no k > 0.7; where none did, among the "
             f"NUTS fits with max r_hat <= {LOOSE_R_HAT} and the SVI fits with no k > 0.7 "
             "(the note says which). Crowd-Kit's best is the best of its MV, OneCoinDS, DS, "
             "GLAD and MACE chosen *with* hindsight on gold (issue 17); the zoo's best on gold "
             "likewise.", "",
             "| dataset | top elpd | accuracy | ECE | reliable pick | accuracy | ECE | "
             "Crowd-Kit best (hindsight) | top - CK | reliable - CK | zoo best on gold | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d, r in p.iterrows():
        svi = " (SVI)" if r["top_method"] == "svi" else ""
        lines.append(
            f"| {d} | {r['top_elpd']} {r['top_flags']}{svi} | {r['top_accuracy']:.3f} | "
            f"{r['top_ece']:.3f} | {r['pick']} | "
            f"{r['pick_accuracy']:.3f} | {r['pick_ece']:.3f} | {r['crowdkit_best']:.3f} | "
            f"{r['top_accuracy'] - r['crowdkit_best']:+.3f} | "
            f"{r['pick_accuracy'] - r['crowdkit_best']:+.3f} | {r['best_zoo']} "
            f"({r['best_zoo_accuracy']:.3f}) | {r['pick_note']} |")
    if len(p):
        close_top = int((p["top_accuracy"] - p["crowdkit_best"] >= -0.003).sum())
        close_pick = int((p["pick_accuracy"] - p["crowdkit_best"] >= -0.003).sum())
        lines += ["", f"Within 0.3 points of Crowd-Kit's hindsight best, or above it: the top "
                  f"elpd on {close_top} of the {len(p)} sets run, the reliable pick on "
                  f"{close_pick}."]
    missing = [d for d in ORDER if d not in p.index]
    if missing:
        lines += ["", f"Not run (time): {', '.join(missing)}."]
    partial = not_run(df)
    if partial:
        lines += ["", "Models not run on a set (time; the picks are among those that were): "
                  + "; ".join(f"{d}: {', '.join(ms)}" for d, ms in partial.items()) + "."]
    if skipped:
        lines += ["", "Models left out: " + "; ".join(f"{m} ({why})" for m, why in
                                                      sorted(skipped.items())) + "."]
    lines += ["<!-- end: readme-model-choice -->", ""]
    MD.write_text("\n".join(lines) + "\n")


def fit_row(ann, name, method, opts, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare_models(ann, [name], method=method, seed=seed, **opts)
    r = res.table.iloc[0]
    out = {c: r.get(c, np.nan) for c in COLUMNS if c in r.index}
    out.update(model=name, method=r["method"])
    out["elpd_per_task"] = r["elpd_loo"] / ann.n_tasks if pd.notna(r["elpd_loo"]) else np.nan
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="all")
    parser.add_argument("--models", default=None, help="comma-separated (default: all that apply)")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--svi-steps", type=int, default=1500)
    parser.add_argument("--nuts-max-answers", type=int, default=5_000)
    parser.add_argument("--nuts-budget", type=float, default=120.0,
                        help="seconds; after a slower NUTS fit the set's other models get SVI")
    parser.add_argument("--svi-models", default="logistic_random_effects,raykar",
                        help="models fitted by SVI everywhere (logistic_random_effects: NUTS "
                        "over 5 min on wsd; raykar: hundreds of feature weights per class)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="ignore the rows already in the CSV")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite model_choice.md and paun.md from the CSV")
    args = parser.parse_args(argv)
    if not (DATA / "wsd" / "answers.csv").exists():
        print(f"no datasets under {DATA}; nothing to do")
        return 0
    names = ORDER if args.datasets == "all" else args.datasets.split(",")
    nuts = {"num_chains": args.chains, "num_warmup": args.warmup, "num_samples": args.draws}
    svi = {"num_steps": args.svi_steps, "num_draws": 300}
    settings = (f"NUTS from the MAP, {args.chains} chains x ({args.warmup} warmup + {args.draws} "
                f"draws), on sets with at most {args.nuts_max_answers:,} answers; SVI "
                f"(mean-field normal guide from the MAP, {args.svi_steps} steps, 300 draws: "
                f"approximate LOO) above that, for {args.svi_models} (and item_difficulty on the "
                f"sets with over {MANY_CLASSES} classes), and for the rest of a set "
                f"after a NUTS fit over {args.nuts_budget:.0f} s")
    df = (pd.read_csv(CSV) if CSV.exists() and not args.fresh else pd.DataFrame(columns=COLUMNS))
    skipped = dict(EXCLUDED, **FEATURE_MODELS)
    if args.render:
        write_model_choice(df, settings, skipped)
        paun.write(df)
        return 0
    t0 = time.perf_counter()
    for d in names:
        ann = crowdzoo.load_dataset(d, data_dir=DATA)
        have = set(df.loc[df["dataset"] == d, "model"])
        rows = []
        for ck_name, kw in CROWDKIT:
            if f"crowdkit {ck_name}" in have:
                continue
            start = time.perf_counter()
            s = crowdkit_scores(ck_name, kw, ann)
            rows.append({"dataset": d, "model": f"crowdkit {ck_name}",
                         "method": "vote" if ck_name == "MajorityVote" else "EM",
                         **s, "converged": True, "seconds": time.perf_counter() - start})
        models = planned(d, ann)
        if args.models:
            models = [m for m in args.models.split(",") if m in models]
        method = "nuts" if ann.n_answers <= args.nuts_max_answers else "svi"
        for m in models:
            if m in have:
                continue
            svi_models = args.svi_models.split(",")
            if ann.n_classes > MANY_CLASSES:
                svi_models += SVI_MANY_CLASSES
            how = "svi" if m in svi_models else method
            start = time.perf_counter()
            try:
                row = fit_row(ann, m, how, nuts if how == "nuts" else svi, args.seed)
            except Exception as err:  # noqa: BLE001  (a failed fit is a row, not a crash)
                print(f"{d} {m}: failed ({type(err).__name__}: {err})", flush=True)
                continue
            row.update(dataset=d, n_tasks=ann.n_tasks, n_answers=ann.n_answers,
                       settings=_settings(row["method"], args))
            rows.append(row)
            print(f"{d:20s} {m:30s} {row['method']} acc={row['accuracy']:.4f} "
                  f"ece={row['ece']:.4f} elpd/task={row['elpd_per_task']:.3f} "
                  f"k_bad={row.get('k_bad')} r_hat={row.get('r_hat')} "
                  f"({row['seconds']:.0f} s)", flush=True)
            if how == "nuts" and time.perf_counter() - start > args.nuts_budget:
                method = "svi"
                print(f"{d}: NUTS over budget; SVI for the rest", flush=True)
            df = _save(df, rows)
            rows = []
            write_model_choice(df, settings, skipped)
            paun.write(df)
        df = _save(df, rows)
        write_model_choice(df, settings, skipped)
        paun.write(df)
        print(f"{d} done at {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def _settings(method, args):
    if method == "nuts":
        return f"{args.chains}x({args.warmup}+{args.draws})"
    return f"svi {args.svi_steps}" if method == "svi" else method


def _save(df, rows):
    if rows:
        new = pd.DataFrame(rows).reindex(columns=COLUMNS)
        df = new if df.empty else pd.concat([df, new], ignore_index=True)
        order = {d: i for i, d in enumerate(ORDER)}
        df = df.sort_values("dataset", key=lambda s: s.map(order), kind="stable")
        df.to_csv(CSV, index=False, float_format="%.6g")
    return df


if __name__ == "__main__":
    raise SystemExit(main())
