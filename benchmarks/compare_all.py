"""``crowdzoo compare --models all`` by NUTS, through the command line, on shared sets (issue 10).

For each dataset, run the command a user would run::

    crowdzoo compare DATA/<set>/answers.csv --gold DATA/<set>/gold.csv [--features ...]
        --models all --method nuts --num-warmup W --num-samples S --num-chains C --out OUT/<set>

under ``/usr/bin/time -v`` (wall time and peak resident memory of the whole command), keep
what it printed in ``OUT/<set>.log``, and write ``results/compare_all.md``: per set the
command, wall time, peak RSS and the printed table. ``--render`` only rewrites the .md from
the logs of an earlier run (a set without a log is listed as not run; a hand-written
``OUT/<set>.note.md``, what we saw, is appended to its section). One set at a time:
every model of a set runs in the one process, as a user's command would.

Usage::

    python benchmarks/compare_all.py                        # rte dog music_genre labelme
    python benchmarks/compare_all.py rte --num-warmup 300 --num-samples 300
    python benchmarks/compare_all.py --render               # the .md from the logs in --out
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "compare_all.md"
DATA = Path(os.environ.get("CROWDZOO_DATA_DIR", HERE.parent.parent / "shared" / "data"))
SETS = ["rte", "dog", "music_genre", "labelme"]


def command(name: str, args) -> list[str]:
    """The ``crowdzoo compare`` command line for one set (``--features`` where it has them)."""
    d = DATA / name
    exe = Path(sys.executable).with_name("crowdzoo")
    cmd = [str(exe), "compare", str(d / "answers.csv"), "--gold", str(d / "gold.csv")]
    if (d / "features.csv").is_file():
        cmd += ["--features", str(d / "features.csv")]
    cmd += ["--models", "all", "--method", "nuts", "--num-warmup", str(args.num_warmup),
            "--num-samples", str(args.num_samples), "--num-chains", str(args.num_chains),
            "--out", str(Path(args.out) / name), "--overwrite"]
    return cmd


def run(name: str, args) -> None:
    """Run one set's command under ``/usr/bin/time -v``; its output goes to ``OUT/<set>.log``."""
    log = Path(args.out) / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = command(name, args)
    timed = ["/usr/bin/time", "-v", *cmd] if Path("/usr/bin/time").exists() else cmd
    with open(log, "w") as fh:
        fh.write("$ " + shlex.join(cmd) + "\n")
        fh.flush()
        code = subprocess.call(timed, stdout=fh, stderr=subprocess.STDOUT)
    print(f"{name}: exit {code}, log {log}")


def parse_log(text: str) -> dict:
    """Pull the command, wall time, peak RSS, the per-model lines and the table from a log."""
    out = {"command": None, "wall": None, "rss_gb": None, "exit": None, "lines": [],
           "table": [], "skipped": []}
    m = re.search(r"^\$ (.*)$", text, re.M)
    if m:
        out["command"] = m.group(1)
    m = re.search(r"Command being timed: \"(.*)\"", text)
    if m and out["command"] is None:
        out["command"] = m.group(1)
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    if m:
        out["wall"] = m.group(1)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["rss_gb"] = int(m.group(1)) / 1024**2
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        out["exit"] = int(m.group(1))
    out["signal"] = "Command terminated by signal" in text
    lines = text.splitlines()
    out["skipped"] = [ln for ln in lines if ln.startswith("skipping ")]
    out["lines"] = [ln for ln in lines if re.match(r"\[\s*\d+/\d+\] ", ln)]
    start = next((i for i, ln in enumerate(lines) if re.match(r"\d+ tasks, \d+ workers", ln)),
                 None)
    if start is not None:
        end = next((i for i in range(start, len(lines))
                    if lines[i].startswith(("wrote ", "\tCommand being timed"))), len(lines))
        out["table"] = lines[start:end]
    return out


def render(args) -> str:
    """The results page from the logs in ``--out``."""
    parts = [
        "# `crowdzoo compare --models all` by NUTS on the shared sets (issue 10)",
        "",
        "Written by `benchmarks/compare_all.py` from the logs of the command itself (the CLI "
        "a user runs, not the Python API). NUTS from the MAP, gold left out of every fit and "
        "used only to score it. Wall time and peak resident memory (RSS) are "
        "`/usr/bin/time -v`'s, for the whole command (reading, every model, LOO, plots). "
        "**The machine was shared** (2 cores; how loaded is said under each set): the times "
        "are pessimistic, up to 2-3x a quiet machine's.",
        "",
        "Reading the table: `?` after a name: some task's Pareto k > 0.7 (its elpd_loo, and "
        "rank, unreliable; the count is in `k>0.7`); `!`: not converged by the zoo's test "
        "(max r_hat > 1.01, ESS < 100 per chain, or divergences); `elpd_diff` is the best "
        "model's elpd minus this one's, with the se of the pointwise difference.",
        "",
    ]
    for name in args.sets:
        log = Path(args.out) / f"{name}.log"
        parts.append(f"## {name}")
        parts.append("")
        note = Path(args.out) / f"{name}.note.md"
        if not log.is_file():
            parts += ["Not run.", ""]
            if note.is_file():
                parts += [note.read_text().strip(), ""]
            continue
        info = parse_log(log.read_text())
        complete = bool(info["table"]) and info["exit"] in (0, None) and not info["signal"]
        parts.append("```bash")
        parts.append(_short(info["command"] or "?"))
        parts.append("```")
        parts.append("")
        rss = f"{info['rss_gb']:.2f} GiB" if info["rss_gb"] is not None else "?"
        status = "completed" if complete else (
            "**did not complete** (stopped by a signal)" if info["signal"]
            else f"**did not complete** (exit {info['exit']})")
        parts.append(f"Wall time {info['wall'] or '?'}, peak RSS {rss}, {status}; "
                     f"{len(info['lines'])} model(s) fitted.")
        parts.append("")
        if info["skipped"]:
            parts.append("Skipped by `--models all`: " + "; ".join(
                ln.removeprefix("skipping ") for ln in info["skipped"]) + ".")
            parts.append("")
        if info["table"]:
            parts += ["```text", *info["table"], "```", ""]
        elif info["lines"]:
            parts += ["Models that finished before it stopped:", "", "```text",
                      *info["lines"], "```", ""]
        if note.is_file():
            parts += [note.read_text().strip(), ""]
    return "\n".join(parts)


def _short(cmd: str) -> str:
    """The command with the data folder and the interpreter's folder written short."""
    cmd = cmd.replace(str(DATA) + "/", "$DATA/")
    return re.sub(r"\S*/crowdzoo compare", "crowdzoo compare", cmd)


def main(argv=None) -> int:
    """Run the sets (or only render), then write ``results/compare_all.md``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="*", default=SETS)
    p.add_argument("--num-warmup", type=int, default=200)
    p.add_argument("--num-samples", type=int, default=200)
    p.add_argument("--num-chains", type=int, default=2)
    p.add_argument("--out", default="/tmp/compare_all", help="logs and compare's output folders")
    p.add_argument("--render", action="store_true", help="only write the .md from the logs")
    args = p.parse_args(argv)
    if not args.render:
        for name in args.sets:
            if not (DATA / name / "answers.csv").is_file():
                print(f"{name}: no {DATA / name / 'answers.csv'}; skipped")
                continue
            run(name, args)
    RESULTS.write_text(render(args) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
