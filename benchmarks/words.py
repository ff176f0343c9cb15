"""Reading the tasks' words (MBML ch. 7.5): biased_worker_words vs biased_worker vs Crowd-Kit DS.

On the text datasets of ``../shared/data`` (``sentiment_polarity``: one movie-review
sentence per task; ``rte``: text + hypothesis), the words are turned into counts by
:func:`crowdzoo.data.texts.with_words` (lower-cased ``\\w+`` tokens, words found in >= 3
tasks, the 2,000 most widespread) and three aggregators are scored on gold:

* ``biased_worker`` (crowdzoo, MAP): the book's confusion-matrix model, answers only;
* ``biased_worker_words`` (crowdzoo, MAP): the same plus naive Bayes on the words;
* Crowd-Kit's ``DawidSkene`` (100 EM iterations), answers only.

Every fit leaves gold out (``use_gold=False``). Scores: accuracy on gold (exact ties split
evenly), top-label ECE (10 bins). Then the crowd is thinned to ``k = 1, 2`` random answers
per task (seeds 0, 1, 2; means over the seeds) to show the words lending strength to tasks
with few answers; and, on the full crowd, accuracy by the number of answers a task has.
"words alone" is ``p(z | words)`` of the fitted words model (its naive Bayes, learned from the
crowd, without the task's own answers). Writes ``benchmarks/results/words.md``.

    python benchmarks/words.py [--datasets sentiment_polarity,rte] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from crowdzoo.data import Annotations, load_dataset
from crowdzoo.data.loaders import _resolve_data_dir
from crowdzoo.data.texts import read_texts, with_words
from crowdzoo.inference.compare import expected_calibration_error

import crowdzoo

RESULTS = Path(__file__).resolve().parent / "results" / "words.md"
MAX_ITER = 2000
METHODS = ("crowd-kit DawidSkene", "biased_worker", "biased_worker_words", "words alone")


def scores(probs: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """Accuracy (ties split evenly) and ECE of ``(T, K)`` posteriors on gold codes (-1: none)."""
    m = gold >= 0
    p, g = probs[m], gold[m]
    top = np.isclose(p, p.max(1, keepdims=True), rtol=0, atol=1e-9)
    acc = float((top[np.arange(len(g)), g] / top.sum(1)).mean())
    return acc, expected_calibration_error(p, g, 10)


def _fit(name: str, ann: Annotations, capped: set):
    """MAP fit (EM up to 2,000 iterations); ``capped`` collects the models that hit the cap."""
    from crowdzoo.inference.diagnostics import ConvergenceWarning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = crowdzoo.fit(name, ann, use_gold=False, progress=False, max_iter=MAX_ITER)
    if any(issubclass(w.category, ConvergenceWarning) for w in seen):
        capped.add(name)
    return fit


def posteriors(ann: Annotations, capped: set) -> dict[str, np.ndarray]:
    """``(T, K)`` task posteriors of every method, rows in ``ann``'s task order."""
    from crowdkit.aggregation import DawidSkene as CKDawidSkene

    out = {}
    frame = ann.to_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ck = CKDawidSkene(n_iter=100).fit_predict_proba(frame)
    ck.columns = [str(c) for c in ck.columns]
    ck.index = ck.index.astype(str)
    out[METHODS[0]] = (ck.reindex(columns=[str(c) for c in ann.classes], fill_value=0.0)
                       .loc[[str(t) for t in ann.task_ids]].to_numpy())
    bw = _fit("biased_worker", ann, capped)
    out[METHODS[1]] = bw.task_posterior().to_numpy()
    bww = _fit("biased_worker_words", ann, capped)
    out[METHODS[2]] = bww.task_posterior().to_numpy()
    tasks = bww.tasks()
    out[METHODS[3]] = tasks[[c for c in tasks.columns if c.startswith("text_prob")]].to_numpy()
    return out


def thin(ann: Annotations, k: int, seed: int) -> Annotations:
    """Keep ``k`` random answers of every task (all of them where it has fewer)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(ann.n_answers)
    task = ann.task[order]
    rank = pd.Series(task).groupby(task).cumcount().to_numpy()
    keep = np.sort(order[rank < k])
    frame = ann.to_frame().iloc[keep]
    out = Annotations.from_frame(frame, gold=ann.gold_series(), classes=list(ann.classes))
    # same tasks, same texts: carry the word counts over, aligned by task id
    pos = pd.Index([str(t) for t in ann.task_ids]).get_indexer([str(t) for t in out.task_ids])
    import dataclasses

    return dataclasses.replace(out, features=ann.features[pos],
                               feature_names=ann.feature_names)


def run_dataset(folder: Path, seeds: int) -> dict:
    name = folder.name
    ann = with_words(load_dataset(folder), read_texts(folder / "texts.csv"))
    gold = ann.gold if ann.gold is not None else np.full(ann.n_tasks, -1)
    res = {"name": name, "T": ann.n_tasks, "N": ann.n_answers, "V": ann.features.shape[1],
           "words_per_task": float(ann.features.sum(1).mean()), "rows": {}, "by_n": None}
    t0 = time.perf_counter()
    capped = set()
    full = posteriors(ann, capped)
    res["rows"]["all answers"] = {m: scores(p, gold) for m, p in full.items()}
    # accuracy by the number of answers a task has (full crowd)
    n_ans = np.bincount(ann.task, minlength=ann.n_tasks)
    by_n = []
    for n in np.unique(n_ans):
        m = (n_ans == n) & (gold >= 0)
        row = {"answers": str(n), "tasks": int(m.sum())}
        for meth, p in full.items():
            row[meth] = scores(p[m], gold[m])[0] if m.any() else np.nan
        by_n.append(row)
    res["by_n"] = by_n
    for k in (1, 2):
        acc = {m: [] for m in METHODS}
        for s in range(seeds):
            sub = thin(ann, k, s)
            g = sub.gold if sub.gold is not None else np.full(sub.n_tasks, -1)
            for meth, p in posteriors(sub, capped).items():
                acc[meth].append(scores(p, g))
        res["rows"][f"{k} answer{'s' if k > 1 else ''} per task"] = {
            m: tuple(np.mean(v, axis=0)) for m, v in acc.items()}
    res["seconds"] = time.perf_counter() - t0
    res["capped"] = sorted(capped)
    return res


def render(results: list[dict], seeds: int) -> str:
    lines = ["# Reading the tasks' words: biased_worker_words (MBML ch. 7.5)", "",
             f"Written by `benchmarks/words.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
             "All crowdzoo fits are MAP (closed-form EM), gold left out of every fit; "
             "Crowd-Kit's DawidSkene runs 100 EM iterations. Accuracy = on gold, exact ties "
             "split evenly; ECE = top-label, 10 bins. Thinned crowds: k random answers per "
             f"task, mean over {seeds} seeds. 'words alone' = p(z | words) of the fitted "
             "words model (its naive Bayes, learned from the crowd).", ""]
    readme = []
    for r in results:
        lines += [f"## {r['name']}", "",
                  f"{r['T']:,} tasks, {r['N']:,} answers; vocabulary {r['V']:,} words (in >= 3 "
                  f"tasks, at most 2,000), {r['words_per_task']:.1f} vocabulary words per task; "
                  f"{r['seconds']:.0f} s for all fits. EM fits that stopped at the "
                  f"{MAX_ITER}-iteration cap before their tolerance: "
                  f"{', '.join(r['capped']) or 'none'}.", "",
                  "| answers used | " + " | ".join(f"{m} acc / ECE" for m in METHODS) + " |",
                  "|---|" + "---|" * len(METHODS)]
        for setting, row in r["rows"].items():
            cells = [f"{row[m][0]:.3f} / {row[m][1]:.3f}" for m in METHODS]
            lines.append(f"| {setting} | " + " | ".join(cells) + " |")
        lines += ["", "Accuracy by the number of answers a task has (all answers):", "",
                  "| answers | tasks | " + " | ".join(METHODS) + " |",
                  "|---|---|" + "---|" * len(METHODS)]
        for row in r["by_n"]:
            lines.append(f"| {row['answers']} | {row['tasks']} | "
                         + " | ".join(f"{row[m]:.3f}" for m in METHODS) + " |")
        lines.append("")
        a = r["rows"]
        readme.append(
            f"| `{r['name']}` | " + " | ".join(
                f"{a[s]['biased_worker'][0]:.3f} → {a[s]['biased_worker_words'][0]:.3f} "
                f"({a[s]['crowd-kit DawidSkene'][0]:.3f})" for s in a) + " |")
    claims = []
    for r in results:
        diff = {s: r["rows"][s]["biased_worker_words"][0] - r["rows"][s]["biased_worker"][0]
                for s in r["rows"]}
        better = [f"{s} ({d:+.3f})" for s, d in diff.items() if d >= 0.005]
        worse = [f"{s} ({d:+.3f})" for s, d in diff.items() if d <= -0.005]
        tied = [s for s, d in diff.items() if abs(d) < 0.005]
        parts = []
        if better:
            parts.append("the words raise accuracy with " + ", ".join(better))
        if worse:
            parts.append("the words lower accuracy with " + ", ".join(worse))
        if tied:
            parts.append("the two are within 0.005 with " + ", ".join(tied))
        claims.append(f"`{r['name']}`: " + "; ".join(parts) + ".")
    settings = list(results[0]["rows"]) if results else []
    block = ["| dataset | " + " | ".join(settings) + " |", "|---|" + "---|" * len(settings),
             *readme, "",
             "Accuracy on gold: `biased_worker` (answers only) → `biased_worker_words` "
             "(answers + words), Crowd-Kit DawidSkene in brackets; MAP, gold left out; thinned "
             f"crowds averaged over {seeds} seeds. Full tables (ECE, accuracy by answers per "
             "task, the words alone): `benchmarks/results/words.md`.", "", " ".join(claims)]
    lines += ["<!-- begin: readme -->", *block, "<!-- end: readme -->", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--datasets", default="sentiment_polarity,rte")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    try:  # the data layer's own search ($CROWDZOO_DATA_DIR, ../shared/data, ...)
        data = _resolve_data_dir(None)
    except FileNotFoundError as err:
        print(f"{err}; nothing to do")
        return
    names = [n for n in args.datasets.split(",") if (data / n / "texts.csv").is_file()]
    if not names:
        print(f"no text datasets under {data}; nothing to do")
        return
    results = []
    for n in names:
        print(f"{n} ...", flush=True)
        results.append(run_dataset(data / n, args.seeds))
    text = render(results, args.seeds)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
