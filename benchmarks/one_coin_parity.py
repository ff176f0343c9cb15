"""One-coin Dawid-Skene: crowdzoo against Crowd-Kit's OneCoinDawidSkene, and what differs.

The accuracy table (``benchmarks/accuracy.py``) puts crowdzoo's ``one_coin`` next to
Crowd-Kit's ``OneCoinDawidSkene(n_iter=100)``. They are not the same estimator, for two
reasons this script measures on every gold dataset of ``../shared/data``:

1. **the prior**: crowdzoo's ``one_coin`` is a MAP with a Beta(3, 2) prior on each worker's
   accuracy and a Dirichlet(2) prior on the class frequencies; Crowd-Kit's is maximum
   likelihood. ``OneCoin(accuracy_prior=(1, 1), class_prior=1.0)`` is the same likelihood
   and the same EM updates as Crowd-Kit's.
2. **the stopping rule**: Crowd-Kit stops when its ELBO per answer rises by less than
   ``tol = 1e-5`` (or drops), after at most ``n_iter`` iterations -- often far from the fixed
   point. crowdzoo runs the flat model to ``tol = 1e-9``.

The fixed-point check: one Crowd-Kit EM iteration (its own ``_e_step`` / ``_m_step`` /
``_process_skills_to_errors``) started from crowdzoo's flat fixed point; if crowdzoo's point
is Crowd-Kit's fixed point too, the iteration does not move it (``max |Δ posterior|`` and
``max |Δ skill|`` near 0).

Usage::

    python benchmarks/one_coin_parity.py                  # writes results/one_coin_parity.md
    python benchmarks/one_coin_parity.py --datasets rte,temp
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy as acc_bench  # noqa: E402  (the scoring and the report writer)
from crowdzoo.models import OneCoin  # noqa: E402

import crowdzoo  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "one_coin_parity.md"
#: crowdzoo's flat one-coin, run to the fixed point
FLAT = dict(tol=1e-9, param_tol=1e-7, max_iter=20000)


def crowdkit_step(frame: pd.DataFrame, probas: pd.DataFrame, skills: pd.Series):
    """One Crowd-Kit one-coin EM iteration from (probas, skills): new (probas, skills)."""
    from crowdkit.aggregation.classification.dawid_skene import OneCoinDawidSkene as CK

    priors = probas.mean()
    errors = CK._process_skills_to_errors(frame, probas, skills)
    new_probas = CK._e_step(frame, priors, errors)
    return new_probas, CK._m_step(frame, new_probas)


def run(name: str) -> dict:
    ann = crowdzoo.load_dataset(name)
    gold = ann.gold_series()
    frame = ann.to_frame()
    row: dict = {"dataset": name}
    default = crowdzoo.fit("one_coin", ann, use_gold=False)
    row["crowdzoo one_coin (Beta(3,2) prior)"] = default.accuracy(gold)
    flat = crowdzoo.fit(OneCoin(accuracy_prior=(1.0, 1.0), class_prior=1.0), ann,
                        use_gold=False, **FLAT)
    row["crowdzoo flat, to tol 1e-9"] = flat.accuracy(gold)
    row["flat iterations"] = flat.diagnostics["n_iter"]
    post = flat.task_posterior()
    post.columns = list(post.columns)
    skills = pd.Series(flat.params["accuracy"], index=ann.worker_ids)
    skills.index.name = "worker"
    new_post, new_skills = crowdkit_step(frame, post.copy(), skills)
    new_post = new_post.reindex(index=post.index, columns=post.columns)
    row["fixed point: max Δ posterior"] = float(np.abs(new_post.to_numpy()
                                                         - post.to_numpy()).max())
    row["fixed point: max Δ skill"] = float(np.abs(
        new_skills.reindex(skills.index).to_numpy() - skills.to_numpy()).max())
    import crowdkit.aggregation as ck

    start = time.perf_counter()
    est = ck.OneCoinDawidSkene(n_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = est.fit_predict_proba(frame)
    row["Crowd-Kit n_iter=100 (defaults)"] = acc_bench.Posterior(probs).accuracy(gold)
    row["Crowd-Kit iterations"] = len(est.loss_history_)
    theirs = probs.copy()
    theirs.columns = theirs.columns.map(str)
    theirs = theirs.reindex(index=post.index, columns=[str(c) for c in post.columns]).fillna(0.0)
    row["Crowd-Kit vs flat: max Δ posterior"] = float(np.abs(theirs.to_numpy()
                                                               - post.to_numpy()).max())
    row["Crowd-Kit seconds"] = time.perf_counter() - start
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", help="comma-separated dataset names")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    try:
        available = crowdzoo.data.list_datasets()
    except FileNotFoundError as err:
        print(f"no data: {err}", file=sys.stderr)
        return 0
    names = args.datasets.split(",") if args.datasets else available
    rows = []
    for name in names:
        if crowdzoo.load_dataset(name).gold_series().empty:
            continue
        print(f"# {name}", file=sys.stderr)
        rows.append(run(name))
        print(pd.Series(rows[-1]).to_string(), file=sys.stderr)
    df = pd.DataFrame(rows).set_index("dataset")
    shown = df.copy()
    for c in shown.columns:
        if "iterations" in c:
            shown[c] = shown[c].map(lambda v: f"{int(v)}")
        elif "Δ" in c:
            shown[c] = shown[c].map(lambda v: f"{v:.1e}")
        elif "seconds" in c:
            shown[c] = shown[c].map(lambda v: f"{v:.1f}")
        else:
            shown[c] = shown[c].map(lambda v: f"{v:.4f}")
    fixed = df["fixed point: max Δ posterior"]
    same_flat = int((np.round(df["crowdzoo flat, to tol 1e-9"], 4)
                     == np.round(df["Crowd-Kit n_iter=100 (defaults)"], 4)).sum())
    same_default = int((np.round(df["crowdzoo one_coin (Beta(3,2) prior)"], 4)
                        == np.round(df["Crowd-Kit n_iter=100 (defaults)"], 4)).sum())
    summary = (
        f"On {len(df)} datasets: crowdzoo's flat one-coin fixed point is Crowd-Kit's fixed point "
        f"(one Crowd-Kit EM iteration from it moves the task posterior by at most "
        f"{fixed.max():.1e}). Crowd-Kit with its defaults stops after "
        f"{int(df['Crowd-Kit iterations'].min())}-{int(df['Crowd-Kit iterations'].max())} "
        f"iterations, up to {df['Crowd-Kit vs flat: max Δ posterior'].max():.2f} away from "
        f"it in a task posterior; its accuracy equals the flat fixed point's to the fourth "
        f"digit on {same_flat} of {len(df)} datasets, and crowdzoo's default `one_coin` (with "
        f"its Beta(3, 2) prior) on {same_default} of {len(df)}.")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n\n".join([
        "# One-coin Dawid-Skene: crowdzoo vs Crowd-Kit's OneCoinDawidSkene",
        f"Generated by `python benchmarks/one_coin_parity.py` on {stamp}; "
        f"{acc_bench.environment()}.",
        "Accuracy on the gold tasks (ties split evenly, gold never used to fit).",
        acc_bench.to_markdown(shown, "dataset"),
        "<!-- begin: summary -->\n" + summary + "\n<!-- end: summary -->",
        "## Notes",
        "\n".join(f"* {n}" for n in [
            "`crowdzoo flat` = `OneCoin(accuracy_prior=(1, 1), class_prior=1.0)`, the same "
            "likelihood and EM updates as Crowd-Kit's, run to `tol=1e-9` (change of the log "
            "posterior per answer), `param_tol=1e-7`.",
            "`fixed point` columns: one Crowd-Kit EM iteration (its `_e_step`, `_m_step`, "
            "`_process_skills_to_errors`) started from crowdzoo's flat fixed point.",
            "`Crowd-Kit n_iter=100` = `OneCoinDawidSkene(n_iter=100)` with its default "
            "`tol=1e-5`: it stops when its ELBO per answer rises by less than 1e-5 (or "
            "drops), as in benchmarks/accuracy.py.",
        ]),
    ]) + "\n"
    out = args.output or (RESULTS if not args.datasets else None)
    acc_bench.write_report(text, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
