"""Paun et al. (2018)-style comparison of models of annotation, on every shared set with gold.

The fits are those of ``benchmarks/model_choice.py`` (one run, two tables): this script only
writes ``results/paun.md`` from the per-(dataset, model) rows of ``results/model_choice.csv``:
accuracy on gold (ties split), top-label ECE on gold (10 bins), PSIS-LOO elpd per task (plain
or integrated terms), tasks with Pareto k > 0.7, max r_hat, converged, seconds, method; and
Crowd-Kit's estimators on the same answers side by side.

    python benchmarks/model_choice.py   # fits, and writes paun.md through this module
    python benchmarks/paun.py           # rewrite paun.md from the CSV only
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def _short(model: str) -> str:
    return model.replace("crowdkit ", "CK ")


def write(df: pd.DataFrame, out: Path = RESULTS / "paun.md") -> None:
    """Write paun.md: an accuracy / ECE matrix (in the README) and every row."""
    from model_choice import ORDER, loo_pick, not_run

    done = [d for d in ORDER if d in set(df["dataset"])]
    zoo = sorted({m for m in df["model"] if not m.startswith("crowdkit")})
    ck = [m for m in dict.fromkeys(df["model"]) if m.startswith("crowdkit")]
    picks = {d: loo_pick(df[df["dataset"] == d])[0] for d in done}
    missing = not_run(df)

    def cell(d, m):
        r = df[(df["dataset"] == d) & (df["model"] == m)]
        if not len(r):
            return "n/r" if m in missing.get(d, []) else "·"
        r = r.iloc[0]
        s = f"{r['accuracy']:.3f} / {r['ece']:.3f}"
        if r["method"] == "svi":
            s += " ˢ"
        elif r["method"] == "map":
            s += " ᵐ"
        if not r["converged"]:
            s += " !"
        return f"**{s}**" if picks.get(d) == m else s

    lines = [
        "# Paun et al.-style comparison of models of annotation (benchmarks/paun.py)",
        "",
        "<!-- begin: readme-paun -->",
        "Every model that applies to each shared set with gold, fitted with the gold left out "
        "(`benchmarks/model_choice.py`); each cell is **accuracy / ECE** on gold (ties split; "
        "top-label expected calibration error, 10 bins); bold: the model PSIS-LOO picks "
        "without gold (see the model-choice table); ˢ: fitted by SVI (approximate LOO), "
        "otherwise NUTS from the MAP; !: not converged (r_hat > 1.01, low ESS or "
        "divergences); ·: does not apply (binary-only model on a multi-class set, or needs "
        "task features); n/r: not run (time). `CK`: Crowd-Kit 1.4 on the same answers. "
        "elpd per task, Pareto k, r_hat and seconds of every fit: "
        "`benchmarks/results/paun.md` and `model_choice.csv`.",
        "",
        "| model | " + " | ".join(done) + " |",
        "|---" * (len(done) + 1) + "|",
    ]
    for m in zoo + ck:
        lines.append(f"| {_short(m)} | " + " | ".join(cell(d, m) for d in done) + " |")
    lines += ["<!-- end: readme-paun -->", "", "## Every fit", "",
              "elpd/task: PSIS-LOO expected log predictive density of a held-out task's "
              "answers, averaged over tasks (comparable across the models of one set, not "
              "across sets); terms: integrated (each task's own parameters integrated out) or "
              "plain; k>0.7: tasks whose LOO term is unreliable.", "",
              "| dataset | model | method | accuracy | ECE | elpd/task | terms | k>0.7 | "
              "max r_hat | converged | s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['method']} | {_fmt(r['accuracy'], '.4f')} | "
            f"{_fmt(r['ece'], '.4f')} | {_fmt(r['elpd_per_task'], '.3f')} | "
            f"{r['loo_terms'] if isinstance(r['loo_terms'], str) else '-'} | "
            f"{_fmt(r['k_bad'], '.0f')} | {_fmt(r['r_hat'], '.3f')} | "
            f"{'yes' if r['converged'] else 'no'} | {r['seconds']:.0f} |")
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    write(pd.read_csv(RESULTS / "model_choice.csv"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
