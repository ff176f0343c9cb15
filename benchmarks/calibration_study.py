"""What moves the calibration of the task posteriors? (issue 17, item 4)

For each dataset (default: the three hard small sets bluebirds, dog, duchenne, and the easy
rte, temp) fit a list of configurations -- model x priors x method -- with gold left out of
every fit, and score the task posteriors on gold: accuracy, top-label ECE (10 bins), log
loss, plus the gold-free numbers a user would choose by (PSIS-LOO elpd over tasks, with each
task's own parameters integrated out where the model has them; r_hat, ESS, divergences).
Gold only scores; nothing is tuned on it.

Configurations (``--configs``, comma-separated keys of ``CONFIGS``):

* ``ds_map`` / ``ds_nuts``: Dawid-Skene, plug-in MAP posterior vs posterior averaged over
  NUTS draws;
* ``ds_flat_nuts`` / ``ds_strong_nuts``: Dawid-Skene with a flat Dirichlet(1, 1) on confusion
  rows / a strong diagonal Dirichlet(20, 2);
* ``hds_nuts``: hierarchical (pooled) Dawid-Skene;
* ``irt1_nuts``, ``irt2_nuts``, ``glad_nuts``, ``itemdiff_nuts``, ``lre_nuts``: item
  heterogeneity (IRT 1PL/2PL, GLAD, Paun et al.'s item-difficulty and logistic random effects);
* ``ds_map_tempered``: Dawid-Skene MAP with the answers' likelihood tempered by a power
  chosen *without gold* by leave-one-answer-out predictive density
  (:func:`crowdzoo.inference.calibrate.choose_temperature`).

Every fit's task posterior is cached under ``--cache`` (default
``$TMPDIR/crowdzoo-calibration``) with its scores, so runs add up; the markdown report
(``benchmarks/results/calibration_study.md``) and a reliability diagram per dataset
(``benchmarks/results/calibration_<dataset>.png``, confidence vs accuracy with each bin's
count) are rebuilt from everything cached.

    python benchmarks/calibration_study.py --datasets bluebirds --configs ds_map,ds_nuts,irt2_nuts
    python benchmarks/calibration_study.py --report-only
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from crowdzoo.inference.compare import (
    convergence_columns,
    expected_calibration_error,
    gold_codes,
    gold_scores,
    log_loss,
    loo,
    pareto_k_summary,
)
from crowdzoo.inference.diagnostics import ConvergenceWarning
from crowdzoo.models import get_model

import crowdzoo

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = os.environ.get("CROWDZOO_DATA_DIR", str(HERE.parents[0].parent / "shared" / "data"))

#: key -> (label, model name, model settings, method[, NUTS options overriding the CLI's])
CONFIGS = {
    "ds_map": ("Dawid-Skene, MAP plug-in", "dawid_skene", {}, "map"),
    "ds_nuts": ("Dawid-Skene, NUTS average", "dawid_skene", {}, "nuts"),
    "ds_flat_nuts": ("Dawid-Skene, flat Dirichlet(1,1) rows, NUTS", "dawid_skene",
                     {"confusion_prior": (1.0, 1.0)}, "nuts"),
    "ds_strong_nuts": ("Dawid-Skene, strong Dirichlet(20,2) rows, NUTS", "dawid_skene",
                       {"confusion_prior": (20.0, 2.0)}, "nuts"),
    "hds_nuts": ("hierarchical Dawid-Skene, NUTS", "hierarchical_dawid_skene", {}, "nuts"),
    "irt1_nuts": ("IRT 1PL (difficulty), NUTS", "irt_1pl", {}, "nuts"),
    "irt2_nuts": ("IRT 2PL (difficulty, discrimination), NUTS", "irt_2pl", {}, "nuts"),
    "irt1_nuts_long": ("IRT 1PL, NUTS 2 x 2000 draws after 2000 warmup", "irt_1pl", {},
                       "nuts", {"num_warmup": 2000, "num_samples": 2000}),
    "irt2_nuts_long": ("IRT 2PL, NUTS 2 x 2000 draws after 2000 warmup", "irt_2pl", {},
                       "nuts", {"num_warmup": 2000, "num_samples": 2000}),
    "glad_nuts": ("GLAD, NUTS", "glad", {}, "nuts"),
    "itemdiff_nuts": ("item difficulty (Paun), NUTS", "item_difficulty", {}, "nuts"),
    "lre_nuts": ("logistic random effects (Paun), NUTS", "logistic_random_effects", {}, "nuts"),
    "ds_map_tempered": ("Dawid-Skene, MAP plug-in, tempered", "dawid_skene", {},
                        "map+temper"),
    "ds_nuts_tempered": ("Dawid-Skene, NUTS average, tempered", "dawid_skene", {},
                         "nuts+temper"),
}
#: the tempered-only configurations are the tempered twins of these (one cache entry)
ALIASES = {"ds_map_tempered": "ds_map+T", "ds_nuts_tempered": "ds_nuts+T"}
DEFAULT_CONFIGS = ("ds_map,ds_nuts,ds_flat_nuts,ds_strong_nuts,hds_nuts,irt1_nuts,irt2_nuts,"
                   "glad_nuts,itemdiff_nuts")

#: issue 17's acceptance: ECE of the zoo's gold-free choice at most this, with accuracy at
#: least the filed one (filed: dog ECE 0.143 acc 0.840, bluebirds 0.097 / 0.889, duchenne
#: 0.210 / 0.780; the target is half the filed ECE there, and 0.05 on the easy sets)
TARGETS = {"bluebirds": (0.049, 0.889), "dog": (0.072, 0.840), "duchenne": (0.105, 0.780),
           "rte": (0.05, None), "temp": (0.05, None), "product": (0.05, None),
           "sentiment_polarity": (0.05, None)}


def loo_pick(df):
    """The configuration a user picks without gold: the highest PSIS-LOO elpd.

    Untempered fits with LOO only. Pareto k > 0.7 and r_hat are reported, not used to
    exclude: at 2 x 500 draws several fits stop short of r_hat <= 1.01 (the IRT models at
    1.05-1.09), and the elpd gaps between models (tens to hundreds) dwarf what a handful of
    unreliable task terms could change; excluding on "fewest k > 0.7" picked Paun's
    item-difficulty model on dog (elpd 726 below hierarchical Dawid-Skene, accuracy 0.674).
    """
    c = df[df["elpd_loo"].notna()] if "elpd_loo" in df else df.iloc[:0]
    if c.empty:
        return None, ""
    pick = c.loc[c["elpd_loo"].idxmax()]
    note = f"r_hat {pick['r_hat']:.3f}" + (f", {int(pick['k_bad'])} k > 0.7"
                                          if pick["k_bad"] else "")
    return pick, note


def _scores(probs, g):
    keep = g >= 0
    return {"accuracy": float((probs.argmax(1) == g)[keep].mean()),
            "log_loss": log_loss(probs, g), "ece": expected_calibration_error(probs, g),
            "n_gold": int(keep.sum())}


def run_one(ds, ann, key, args):
    """Fit one configuration; return ``[(key, row, probs_and_gold), ...]``.

    A model whose answers are independent given the label (and its parameters) also gets a
    tempered twin, ``<key>+T``: the same fit's task posterior with the likelihood power
    chosen without gold (:func:`crowdzoo.inference.calibrate.choose_temperature`).
    """
    from crowdzoo.inference.calibrate import choose_temperature, tempered_posterior

    label, name, settings, method, *over = CONFIGS[key]
    model = get_model(name)
    if settings:
        model = type(model)(**settings)
    if model.binary_only and ann.n_classes != 2:
        return []
    base, _, post = method.partition("+")
    opts = ({"num_warmup": args.num_warmup, "num_samples": args.num_samples,
             "num_chains": args.num_chains, **(over[0] if over else {})}
            if base == "nuts" else {})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = crowdzoo.fit(model, ann, method=base, use_gold=False, progress=False,
                           seed=args.seed, **opts)
    seconds = time.perf_counter() - start
    row = {"dataset": ds, "config": key, "label": label, "model": name, "method": method,
           **convergence_columns(fit)}
    g = gold_codes(fit)
    out = []
    if post != "temper":
        if fit.has_draws and model.proper_likelihood:
            elpd = loo(fit)
            row.update(elpd_loo=float(elpd.elpd), se=float(elpd.se),
                       loo_terms="integrated" if elpd.integrated else "plain",
                       **pareto_k_summary(elpd))
        probs = fit.task_posterior().to_numpy()
        out.append((key, {**row, **gold_scores(fit), "seconds": seconds},
                    np.column_stack([probs, g])))
    if model.answers_independent_given_label:
        t0 = time.perf_counter()
        choice = choose_temperature(fit)
        probs = tempered_posterior(fit, choice.power).to_numpy()
        twin = key if post == "temper" else f"{key}+T"
        tlabel = label if post == "temper" else f"{label}, tempered"
        out.append((twin, {**row, "config": twin, "label": tlabel, "temperature": choice.power,
                           **_scores(probs, g),
                           "seconds": seconds + time.perf_counter() - t0},
                    np.column_stack([probs, g])))
    return out


def load_cache(cache: Path) -> pd.DataFrame:
    rows = [json.loads(p.read_text()) for p in sorted(cache.glob("*.json"))]
    return pd.DataFrame(rows)


def write_report(cache: Path, out: Path, args) -> None:
    df = load_cache(cache)
    if df.empty:
        return
    order = {k: i for i, k in enumerate(CONFIGS)}
    rank = df["config"].map(lambda k: 2 * order.get(k.removesuffix("+T"), 99)
                            + k.endswith("+T"))
    df = df.assign(_o=rank).sort_values(["dataset", "_o"])
    lines = [
        "# What moves the calibration of task posteriors (benchmarks/calibration_study.py)",
        "",
        "Gold is left out of every fit and only scores it. **ECE**: top-label expected "
        "calibration error, 10 equal-width confidence bins; **elpd**: PSIS-LOO over tasks "
        "(integrated over a task's own parameters where the model has them), the gold-free "
        "criterion; **k>0.7**: unreliable LOO terms; **r_hat**: max over parameters "
        f"(NUTS: {args.num_chains} chains x {args.num_samples} draws after "
        f"{args.num_warmup} warmup, started from the MAP); **power**: the likelihood power "
        "of a tempered configuration, chosen without gold (leave-one-answer-out).",
        "",
        "| dataset | configuration | accuracy | ECE | log loss | elpd | k>0.7 | r_hat | "
        "div | power | s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def f(v, fmt):
        return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)

    for _, r in df.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['label']} | {r['accuracy']:.3f} | {r['ece']:.3f} | "
            f"{r['log_loss']:.3f} | {f(r.get('elpd_loo'), '{:.1f}')} | "
            f"{f(r.get('k_bad'), '{:.0f}')} | {f(r.get('r_hat'), '{:.3f}')} | "
            f"{f(r.get('divergences'), '{:.0f}')} | {f(r.get('temperature'), '{:.2f}')} | "
            f"{r['seconds']:.0f} |")
    effects = [("ds_map", "DS MAP plug-in"), ("ds_nuts", "DS NUTS average"),
               ("ds_flat_nuts", "DS flat prior"), ("ds_strong_nuts", "DS strong prior"),
               ("hds_nuts", "hierarchical DS"), ("irt1_nuts", "IRT 1PL"),
               ("irt2_nuts", "IRT 2PL"), ("irt1_nuts_long", "IRT 1PL, 2 x 2000 draws"),
               ("irt2_nuts_long", "IRT 2PL, 2 x 2000 draws"), ("glad_nuts", "GLAD"),
               ("itemdiff_nuts", "item difficulty"), ("ds_map+T", "DS MAP tempered"),
               ("ds_nuts+T", "DS NUTS tempered")]
    lines += ["", "## What moves ECE", "", "<!-- begin: readme-calibration-study -->",
              "ECE (accuracy) on gold of each configuration, gold held out of every fit "
              "(`benchmarks/calibration_study.py`; NUTS "
              f"{args.num_chains} x {args.num_samples} draws after {args.num_warmup} warmup; "
              "tempered: the likelihood power chosen without gold by leave-one-answer-out, "
              "in brackets). `-`: not run (binary-only model on K > 2, or machine time).", "",
              "| dataset | " + " | ".join(h for _, h in effects) + " |",
              "|" + " --- |" * (len(effects) + 1)]
    for ds in df["dataset"].unique():
        d = df[df["dataset"] == ds].set_index("config")
        cells = []
        for key, _ in effects:
            if key not in d.index:
                cells.append("-")
                continue
            r = d.loc[key]
            extra = f" [{r['temperature']:.2f}]" if key.endswith("+T") else ""
            cells.append(f"{r['ece']:.3f} ({r['accuracy']:.3f}){extra}")
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    lines += ["<!-- end: readme-calibration-study -->"]
    lines += ["", "## Confidently wrong tasks", "",
              "Dawid-Skene MAP's errors on gold: how many had a confidence >= 0.99, and how "
              "many had most of the task's answers (>= 70%) on the wrong label. Those are "
              "tasks where the crowd agrees on the wrong answer: the answers alone cannot "
              "tell them from the tasks it gets right, so no gold-free method can lower "
              "their confidence without lowering every well-supported task's too.", "",
              "| dataset | gold tasks | errors | errors at confidence >= 0.99 | errors with "
              ">= 70% of answers on the wrong label | median share of answers on the gold "
              "label, over errors |", "| --- | --- | --- | --- | --- | --- |"]
    for ds in df["dataset"].unique():
        path = cache / f"{ds}__ds_map.npy"
        if not path.exists():
            continue
        arr = np.load(path)
        probs, g = arr[:, :-1], arr[:, -1].astype(int)
        ann = crowdzoo.load_dataset(ds, data_dir=DATA)
        votes = np.zeros(probs.shape)
        np.add.at(votes, (np.asarray(ann.task), np.asarray(ann.label)), 1)
        share = votes / votes.sum(1, keepdims=True)
        lab = probs.argmax(1)
        wrong = (g >= 0) & (lab != g)
        idx = np.flatnonzero(wrong)
        lines.append(
            f"| {ds} | {int((g >= 0).sum())} | {int(wrong.sum())} | "
            f"{int((probs.max(1)[wrong] >= 0.99).sum())} | "
            f"{int((share[idx, lab[idx]] >= 0.7).sum())} | "
            f"{np.median(share[idx, g[idx]]):.2f} |")
    lines += ["", "## The gold-free choice against issue 17's targets", "",
              "LOO pick: the configuration with the highest elpd among the untempered NUTS "
              "fits above (Pareto k and r_hat reported, not required); "
              "tempered: the same fit's posterior with the likelihood power chosen by "
              "leave-one-answer-out "
              "predictive density (no gold).", "",
              "| dataset | LOO pick | accuracy | ECE | tempered: power | accuracy | ECE | "
              "target ECE (acc >=) | met by | note |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ds in df["dataset"].unique():
        d = df[df["dataset"] == ds]
        pick, note = loo_pick(d)
        if pick is None:
            continue
        twin = d[d["config"] == pick["config"] + "+T"]
        tw = twin.iloc[0] if len(twin) else None
        target, acc_min = TARGETS.get(ds, (np.nan, None))
        met = []
        for tag, r in (("pick", pick), ("tempered", tw)):
            if r is not None and r["ece"] <= target and (acc_min is None
                                                          or r["accuracy"] >= acc_min - 5e-4):
                met.append(tag)
        tcols = ("- | - | -" if tw is None else
                 f"{tw['temperature']:.2f} | {tw['accuracy']:.3f} | {tw['ece']:.3f}")
        tstr = f"{target:.3f}" + ("" if acc_min is None else f" ({acc_min:.3f})")
        lines.append(f"| {ds} | {pick['config']} | {pick['accuracy']:.3f} | {pick['ece']:.3f} | "
                     f"{tcols} | {tstr} | {', '.join(met) or 'neither'} | {note} |")
    out.write_text("\n".join(lines) + "\n")
    for ds in df["dataset"].unique():
        plot_dataset(ds, df[df["dataset"] == ds], cache, RESULTS / f"calibration_{ds}.png")


def plot_dataset(ds, df, cache, path):
    from matplotlib.figure import Figure

    from crowdzoo.plots import plot_reliability

    keys = list(df["config"])
    n = len(keys)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 3.6 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, (ax, key) in enumerate(zip(axes, keys, strict=False)):
        arr = np.load(cache / f"{ds}__{key}.npy")
        r = df[df["config"] == key].iloc[0]
        plot_reliability(arr[:, :-1], arr[:, -1].astype(int), ax=ax, legend=i == 0,
                         title=f"{key}\nacc {r['accuracy']:.3f} ECE {r['ece']:.3f}")
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{ds}: reliability of the task posteriors on gold (bin counts above)")
    fig.savefig(path, dpi=80)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--datasets", default="bluebirds,dog,duchenne,rte,temp")
    p.add_argument("--configs", default=DEFAULT_CONFIGS)
    p.add_argument("--num-warmup", type=int, default=1000)
    p.add_argument("--num-samples", type=int, default=500)
    p.add_argument("--num-chains", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                    "crowdzoo-calibration"))
    p.add_argument("--out", default=str(RESULTS / "calibration_study.md"))
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--redo", action="store_true", help="refit configurations already cached")
    args = p.parse_args(argv)
    crowdzoo.setup()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for ds in args.datasets.split(","):
            ann = crowdzoo.load_dataset(ds, data_dir=DATA)
            for key in args.configs.split(","):
                stem = cache / f"{ds}__{ALIASES.get(key, key)}"
                if stem.with_suffix(".json").exists() and not args.redo:
                    continue
                for k, row, arr in run_one(ds, ann, key, args):
                    k = ALIASES.get(k, k)
                    row["config"] = k
                    kstem = cache / f"{ds}__{k}"
                    np.save(kstem.with_suffix(".npy"), arr)
                    kstem.with_suffix(".json").write_text(json.dumps(
                        {c: (v.item() if hasattr(v, "item") else v) for c, v in row.items()}))
                    print(f"{ds:10s} {k:18s} acc={row['accuracy']:.4f} ece={row['ece']:.4f} "
                          f"elpd={row.get('elpd_loo', float('nan')):.1f} "
                          f"r_hat={row.get('r_hat', float('nan')):.3f} "
                          f"power={row.get('temperature', float('nan'))} "
                          f"({row['seconds']:.0f} s)", flush=True)
                write_report(cache, Path(args.out), args)
    write_report(cache, Path(args.out), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
