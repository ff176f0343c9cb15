"""Which task to label next, replayed on finished crowds: information gain vs round robin.

rte, temp and dog have 10 answers per task. Each is replayed as if its answers had been bought
in rounds (:func:`crowdzoo.inference.active.replay`): every task starts with 2 answers drawn
from its pool; each round Dawid-Skene is fitted (MAP) to the answers revealed so far and 5% of
the tasks get one more pool answer, chosen by

* ``eig``: :func:`crowdzoo.next_tasks` — expected information gain about the task's label of one
  more answer from a worker drawn from the crowd (answer shares);
* ``entropy``: uncertainty sampling — the highest entropy of the label posterior;
* ``round_robin``: uniform allocation — the tasks with the fewest answers;

until 5 answers per task on average are spent. Accuracy on gold (ties split evenly) is
recorded after every round; the gold labels are never shown to the model. The same on a crowd
simulated from Dawid-Skene (truth known; 600 tasks, 60 workers, 3 classes, 10 answers per task,
parameters drawn from the prior). Several seeds (the starting answers, each pool's order and
the tie-breaks).

Usage::

    python benchmarks/active_labelling.py                 # writes results/active_labelling.{md,png}
    python benchmarks/active_labelling.py --seeds 2 --datasets temp --output /tmp/a.md
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from crowdzoo.inference.active import STRATEGIES, replay

import crowdzoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy as acc_bench  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "active_labelling.md"
DATASETS = ["rte", "temp", "dog", "simulated"]
START, BUDGET, BATCH = 2, 5.0, 0.05
LABELS = {"eig": "expected information gain", "entropy": "uncertainty (entropy)",
          "round_robin": "round robin"}
COLORS = {"eig": "C0", "entropy": "C1", "round_robin": "C2"}


def load(name: str):
    """(pool, truth) of a real dataset, or of the simulated Dawid-Skene crowd."""
    if name == "simulated":
        sim = crowdzoo.data.simulate("dawid_skene", n_tasks=600, n_workers=60, n_classes=3,
                                     answers_per_task=10, seed=2026)
        return sim.annotations, sim.true_labels
    data = crowdzoo.load_dataset(name)
    return data, data.gold_series()


def first_reaching(curve: pd.DataFrame, target: float) -> float:
    """Answers spent when ``curve``'s accuracy first reaches ``target`` (NaN: never)."""
    hit = curve.index[curve.to_numpy() >= target - 1e-12]
    return float(hit[0]) if len(hit) else float("nan")


def run_dataset(name: str, seeds: int, progress: bool):
    pool, truth = load(name)
    curves, seconds, alloc = {}, {}, {}
    tic = time.perf_counter()
    for seed in range(seeds):
        for strategy in STRATEGIES:
            t0 = time.perf_counter()
            df = replay(pool, truth, strategy, start=START, budget=BUDGET, batch=BATCH,
                        seed=seed)
            seconds[(strategy, seed)] = time.perf_counter() - t0
            curves[(strategy, seed)] = df.set_index("answers")["accuracy"]
            alloc[(strategy, seed)] = df.attrs["answers_per_task"]
            if progress:
                print(f"{name} seed {seed} {strategy}: final {df['accuracy'].iloc[-1]:.4f} "
                      f"({seconds[(strategy, seed)]:.1f} s, {len(df)} fits)", flush=True)
    full = crowdzoo.fit("dawid_skene", pool, use_gold=False).accuracy(truth)
    return {"pool": pool, "curves": curves, "seconds": seconds, "alloc": alloc,
            "full": full, "wall": time.perf_counter() - tic, "seeds": seeds}


def summarize(name: str, res: dict) -> dict:
    """Final accuracies (mean, sd, min, max over seeds) and answers to reach round robin."""
    seeds = range(res["seeds"])
    pool = res["pool"]
    total = int(round(BUDGET * pool.n_tasks))
    out = {"dataset": name, "tasks": pool.n_tasks, "budget": total, "full": res["full"]}
    mean = {}
    for s in STRATEGIES:
        frame = pd.concat([res["curves"][(s, k)] for k in seeds], axis=1)
        mean[s] = frame.mean(axis=1)
        final = frame.iloc[-1].to_numpy()
        out[f"{s}_final"] = final
        out[f"{s}_start"] = frame.iloc[0].mean()
    target = mean["round_robin"].iloc[-1]
    for s in ("eig", "entropy"):
        need = first_reaching(mean[s], target)
        out[f"{s}_need"] = need
        out[f"{s}_saving"] = 1 - need / total
        per_seed = [first_reaching(res["curves"][(s, k)], res["curves"][("round_robin", k)]
                                   .iloc[-1]) for k in seeds]
        out[f"{s}_saving_seeds"] = 1 - np.asarray(per_seed) / total
    out["mean"] = mean
    return out


def fmt(values) -> str:
    v = np.asarray(values, float)
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return f"{v.mean():.4f} ± {sd:.4f} [{v.min():.4f}, {v.max():.4f}]"


def figure(summaries, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(4.2 * len(summaries), 3.8),
                             layout="constrained", squeeze=False)
    for ax, (sm, res) in zip(axes[0], summaries, strict=True):
        n_tasks = sm["tasks"]
        for s in STRATEGIES:
            frame = pd.concat([res["curves"][(s, k)] for k in range(res["seeds"])], axis=1)
            x = frame.index.to_numpy() / n_tasks
            ax.fill_between(x, frame.min(axis=1), frame.max(axis=1), color=COLORS[s], alpha=0.15,
                            lw=0)
            ax.plot(x, frame.mean(axis=1), color=COLORS[s], label=LABELS[s], lw=1.6)
        ax.axhline(sm["full"], color="0.4", ls=":", lw=1, label="all 10 answers per task")
        ax.axhline(sm["round_robin_final"].mean(), color=COLORS["round_robin"], ls="--", lw=0.8)
        ax.set_title(f"{sm['dataset']} ({n_tasks} tasks)")
        ax.set_xlabel("answers per task (average)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy on gold (Dawid-Skene MAP)")
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Replay: 2 answers per task to start, then 5% of the tasks get one more per "
                 f"round; mean of {summaries[0][1]['seeds']} seeds, band = min-max", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(summaries, seeds, wall, figure_name) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for sm, _ in summaries:
        rows.append(
            f"| {sm['dataset']} | {sm['tasks']} | {sm['eig_start']:.4f} | {fmt(sm['eig_final'])} | "
            f"{fmt(sm['entropy_final'])} | {fmt(sm['round_robin_final'])} | {sm['full']:.4f} |")
    need = []
    for sm, _ in summaries:
        cells = []
        for s in ("eig", "entropy"):
            seeds_saving = sm[f"{s}_saving_seeds"]
            reached = np.isfinite(seeds_saving)
            per_seed = (f"{np.nanmedian(seeds_saving):.0%} [{np.nanmin(seeds_saving):.0%}, "
                        f"{np.nanmax(seeds_saving):.0%}]" if reached.any() else "never")
            if not reached.all():
                per_seed += f", {int((~reached).sum())} seed(s) never"
            n = sm[f"{s}_need"]
            cells.append(f"{n / sm['tasks']:.2f} ({sm[f'{s}_saving']:.0%}) | {per_seed}"
                         if np.isfinite(n) else "never | " + per_seed)
        need.append(f"| {sm['dataset']} | {sm['round_robin_final'].mean():.4f} | "
                    + " | ".join(cells) + " |")
    times = []
    for sm, res in summaries:
        first = {s: res["seconds"][(s, 0)] for s in STRATEGIES}
        later = {s: np.median([res["seconds"][(s, k)] for k in range(min(1, seeds - 1), seeds)])
                 for s in STRATEGIES}
        times.append(f"| {sm['dataset']} | {res['wall']:.0f} | " + " | ".join(
            f"{first[s]:.1f} / {later[s]:.1f}" for s in STRATEGIES) + " |")
    accept = []
    for sm, _ in summaries:
        if sm["dataset"] == "simulated":
            continue
        ok_final = sm["eig_final"].mean() >= sm["round_robin_final"].mean()
        accept.append(f"{sm['dataset']}: EIG final {sm['eig_final'].mean():.4f} vs round robin "
                      f"{sm['round_robin_final'].mean():.4f} ({'≥' if ok_final else '<'}); "
                      f"saving {sm['eig_saving']:.0%}")
    n_saving = sum(sm["eig_saving"] >= 0.25 for sm, _ in summaries if sm["dataset"] != "simulated")
    all_final = all(sm["eig_final"].mean() >= sm["round_robin_final"].mean()
                    for sm, _ in summaries if sm["dataset"] != "simulated")
    return "\n\n".join([
        "# Which task to label next: a replay of finished crowds",
        f"Generated by `python benchmarks/active_labelling.py` on {stamp}; "
        f"{acc_bench.environment()}. Seeds 0..{seeds - 1}; total wall time {wall:.0f} s.",
        "Every task starts with 2 answers drawn at random from its pool (10 answers per task); "
        "each round Dawid-Skene (MAP) is fitted to the answers revealed so far and 5% of the "
        "tasks get their next pool answer (pool order random per seed; the worker is not "
        "chosen, as on a crowdsourcing platform), chosen by expected information gain "
        "(`crowdzoo.next_tasks`, crowd mode), by the entropy of the label posterior, or round "
        "robin (fewest answers first); until 5 answers per task on average are spent. Gold is "
        "never shown to the model. `simulated`: 600 tasks, 60 workers, 3 classes, Dawid-Skene "
        "with parameters drawn from its prior (seed 2026), truth known.",
        f"![accuracy vs answers]({figure_name})",
        "## Accuracy on gold at 5 answers per task (mean ± sd [min, max] over seeds)",
        "| dataset | tasks | at 2 answers | EIG | entropy | round robin | all 10 answers |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows),
        "## Answers needed to reach round robin's final accuracy",
        "Answers per task (average) at which the seed-mean curve first reaches the seed-mean "
        "accuracy of round robin at 5 answers per task, and the saving against 5; then the "
        "saving seed by seed (each seed against its own round robin run): median [min, max].\n\n"
        "| dataset | round robin at 5 | EIG: answers per task (saving) | EIG per seed | "
        "entropy: answers per task (saving) | entropy per seed |\n|---|---|---|---|---|---|\n"
        + "\n".join(need),
        "## Acceptance (issue 15)",
        "\n".join(f"* {line}" for line in accept)
        + f"\n* EIG at least as accurate as round robin on rte, temp and dog: "
        f"{'met' if all_final else 'missed'}; >= 25% fewer answers on at least two: "
        f"{'met' if n_saving >= 2 else 'missed'} ({n_saving} of 3).",
        "## Wall time (s)",
        "Per dataset: the whole replay (all seeds and strategies); per strategy: the first "
        "seed (JIT compilation included: every round has a new number of answers, so the EM "
        "kernel compiles once per round; later seeds and strategies reuse it) / the median of "
        "the later seeds.\n\n"
        "| dataset | total | " + " | ".join(STRATEGIES) + " |\n|---|---|---|---|---|\n"
        + "\n".join(times),
    ]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    crowdzoo.setup()
    names = [d for d in args.datasets.split(",") if d]
    tic = time.perf_counter()
    summaries = []
    for name in names:
        res = run_dataset(name, args.seeds, not args.quiet)
        summaries.append((summarize(name, res), res))
    wall = time.perf_counter() - tic
    output = args.output or (RESULTS if names == DATASETS else None)
    png = (output or RESULTS).with_suffix(".png")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        figure(summaries, png)
    text = report(summaries, args.seeds, wall, png.name)
    acc_bench.write_report(text, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
