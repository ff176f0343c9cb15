"""The ``crowdzoo`` command line: ``demo``, ``fit``, ``models``, ``summary``, ``compare``, ``next``.

::

    crowdzoo demo [--out DIR] [--method map|nuts]
    crowdzoo fit ANSWERS.csv --out DIR [--model dawid_skene] [--method map|svi|nuts]
                 [--gold GOLD.csv] [--features FEATURES.csv]
                 [--task-col task] [--worker-col worker] [--label-col label]
                 [--seed 0] [--num-samples N --num-warmup N --num-chains N] [--num-steps N]
    crowdzoo models
    crowdzoo summary ANSWERS.csv [--gold GOLD.csv] [--task-col ...]
    crowdzoo compare ANSWERS.csv --models dawid_skene,one_coin,glad [--gold GOLD.csv]
                 [--method nuts|svi|map] [--num-warmup N --num-samples N --num-chains N]
                 [--out DIR]
    crowdzoo next ANSWERS.csv --out NEXT.csv [--model dawid_skene] [--n 100]
                 [--workers IDS.txt] [--method map|svi|nuts] [--allow-repeats]
                 [--gold GOLD.csv] [--features FEATURES.csv] [--task-col ...] [--seed 0]

Bad input (a missing file, a wrong column name, an unknown model) gets a one-line error on
stderr and exit code 2; set ``CROWDZOO_DEBUG=1`` to see the traceback instead. Plots are
drawn with matplotlib's Agg backend (no display needed). JAX and the models are imported
only once a command needs them, so ``crowdzoo --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

#: exit code of bad input (as argparse uses for bad arguments)
EXIT_USAGE = 2
#: exit code of a fit that failed numerically
EXIT_FAILURE = 1


class CliError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


# --- parser ------------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser, gold_help: str) -> None:
    p.add_argument(
        "answers",
        metavar="ANSWERS.csv",
        help="long CSV, one row per answer (columns task, worker, label)",
    )
    p.add_argument("--gold", metavar="GOLD.csv", help=gold_help)
    p.add_argument("--task-col", default="task", help="task id column (default: task)")
    p.add_argument("--worker-col", default="worker", help="worker id column (default: worker)")
    p.add_argument("--label-col", default="label", help="label column (default: label)")
    p.add_argument(
        "--features",
        metavar="FEATURES.csv",
        help="task features (a task column plus numeric columns), for the "
        "learning-from-crowds models",
    )


def _add_sampler_args(p: argparse.ArgumentParser, svi: bool) -> None:
    g = p.add_argument_group("inference options (defaults: those of crowdzoo.fit)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g.add_argument("--num-samples", type=int, help="nuts: draws per chain (1000)")
    g.add_argument("--num-warmup", type=int, help="nuts: warmup steps per chain (500)")
    g.add_argument("--num-chains", type=int, help="nuts: chains (4)")
    if svi:
        g.add_argument("--num-steps", type=int, help="svi: optimisation steps (3000)")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``crowdzoo`` command."""
    parser = argparse.ArgumentParser(
        prog="crowdzoo",
        description="Bayesian models of crowdsourced annotation (NumPyro): infer true labels "
        "and worker reliability from noisy crowd answers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="fit Dawid-Skene to the bundled demo crowd and plot it",
        description="Fit Dawid-Skene to the bundled demo crowd (simulated: 600 "
        "tasks, 40 workers, 3 classes, the truth is known), compare "
        "with majority vote, and plot worker reliability.",
    )
    p.add_argument(
        "--out",
        default="crowdzoo-demo",
        metavar="DIR",
        help="output folder (default: crowdzoo-demo)",
    )
    p.add_argument(
        "--method",
        choices=("map", "nuts"),
        default="map",
        help="map: EM-like MAP, a second or two (default); nuts: posterior draws",
    )
    _add_sampler_args(p, svi=False)

    p = sub.add_parser(
        "fit",
        help="fit a model to a CSV of answers and write the results",
        description="Fit a crowd model; write labels.csv, task_posterior.csv, "
        "workers.csv, plots, and posterior.nc for svi/nuts.",
    )
    _add_data_args(p, "gold labels (columns task, label): used only to score, not to fit")
    p.add_argument(
        "--model",
        default="dawid_skene",
        help="registry name (see `crowdzoo models`; default: dawid_skene)",
    )
    p.add_argument(
        "--method", choices=("map", "svi", "nuts"), default="map", help="map (default), svi or nuts"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_sampler_args(p, svi=True)

    sub.add_parser(
        "models",
        help="list the registered models",
        description="List the models of the zoo: name, methods, reference.",
    )

    p = sub.add_parser(
        "summary",
        help="describe a CSV of answers",
        description="Print counts of tasks, workers, answers, classes, "
        "duplicates and gold coverage.",
    )
    _add_data_args(p, "gold labels (columns task, label), to report their coverage")

    p = sub.add_parser(
        "compare",
        help="fit several models and compare them (PSIS-LOO, accuracy and calibration on gold)",
        description="Fit each model to the same answers; print one table: LOO elpd +- se "
        "over tasks, Pareto k, and accuracy, log loss and calibration error on gold (when "
        "given); write compare.csv and the plots to --out.",
    )
    _add_compare_args(p)
    _add_next_parser(sub)
    return parser


def _add_compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("answers", metavar="ANSWERS.csv",
                   help="long CSV, one row per answer (columns task, worker, label)")
    p.add_argument("--models", default="dawid_skene,one_coin",
                   help="comma-separated registry names (default: dawid_skene,one_coin)")
    p.add_argument("--gold", metavar="GOLD.csv",
                   help="gold labels (columns task, label): accuracy, log loss and ECE")
    p.add_argument("--features", metavar="FEATURES.csv",
                   help="task features, for the learning-from-crowds models")
    p.add_argument("--method", default="nuts", choices=("nuts", "svi", "map"),
                   help="inference method (default: nuts; LOO needs draws)")
    p.add_argument("--num-warmup", type=int, default=300)
    p.add_argument("--num-samples", type=int, default=300)
    p.add_argument("--num-chains", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write compare.csv and the plots here")
    p.add_argument("--task-col", default="task")
    p.add_argument("--worker-col", default="worker")
    p.add_argument("--label-col", default="label")


# --- helpers -----------------------------------------------------------------------------
def _read_answers(args):
    """Read the answers (and gold) CSV named on the command line."""
    from .data import read_csv

    files = (("answers", args.answers), ("gold", args.gold), ("features", args.features))
    for what, path in files:
        if path is not None and not Path(path).is_file():
            raise CliError(f"{what} file {path!r} not found")
    return read_csv(
        args.answers,
        gold=args.gold,
        features=args.features,
        task=args.task_col,
        worker=args.worker_col,
        label=args.label_col,
    )


def _options(args, method: str) -> dict:
    """Inference options given on the command line, checked against the method."""
    given = {
        "num_samples": args.num_samples,
        "num_warmup": args.num_warmup,
        "num_chains": args.num_chains,
        "num_steps": getattr(args, "num_steps", None),
    }
    valid = {"map": (), "svi": ("num_steps",), "nuts": ("num_samples", "num_warmup", "num_chains")}[
        method
    ]
    opts = {}
    for name, value in given.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name not in valid:
            raise CliError(f"{flag} does not apply to --method {method}")
        if value < 1:
            raise CliError(f"{flag} must be at least 1, got {value}")
        opts[name] = value
    return opts


def _fmt_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def _describe_fit(fit) -> str:
    d = fit.diagnostics
    how = f"map ({d.get('algorithm')})" if fit.method == "map" else d.get("algorithm", fit.method)
    text = f"{fit.model.name} fitted by {how} in {fit.elapsed:.1f} s"
    if fit.method == "map" and "n_iter" in d:
        text += f"; {d['n_iter']} iterations, converged: {d['converged']}"
    if fit.has_draws:
        conv = fit.convergence().attrs
        if fit.method == "nuts":
            text += (
                f"; max r_hat {conv['max_r_hat']:.3f}, min ESS bulk {conv['min_ess_bulk']:.0f}"
                f" / tail {conv['min_ess_tail']:.0f}, divergences: {conv['divergences']}"
            )
        else:
            text += f"; final ELBO {d.get('final_elbo', float('nan')):.1f}"
        if not conv["converged"]:
            text += "\nNOT CONVERGED: " + "; ".join(conv["problems"])
    return text


def _fit_quietly(*args, **kwargs):
    """``crowdzoo.fit`` with its ConvergenceWarning held back (the CLI prints the numbers)."""
    import warnings

    import crowdzoo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", crowdzoo.ConvergenceWarning)
        return crowdzoo.fit(*args, **kwargs)


def _worker_rows(fit, workers, truth=None) -> tuple[list[str], list[list[str]]]:
    """Rows of the least-reliable-workers table."""
    import numpy as np

    table = fit.workers()
    header = ["worker", "answers", "accuracy"]
    interval = "accuracy_low" in table.columns
    if interval:
        header.append(f"{table.attrs.get('interval', 0.89):.0%} interval")
    observed = None
    if truth is not None:
        header.append("share right vs truth")
        a = fit.annotations
        true_codes = a.classes.get_indexer(truth.reindex(a.task_ids).to_numpy())
        right = (np.asarray(a.label) == true_codes[np.asarray(a.task)]).astype(float)
        observed = np.bincount(a.worker, right, a.n_workers) / np.maximum(
            np.bincount(a.worker, minlength=a.n_workers), 1
        )
        observed = dict(zip(map(str, a.worker_ids), observed, strict=True))
    rows = []
    for w in workers:
        r = table.loc[w]
        row = [str(w), str(int(r["n_answers"])), f"{r['accuracy']:.3f}"]
        if interval:
            row.append(f"[{r['accuracy_low']:.3f}, {r['accuracy_high']:.3f}]")
        if observed is not None:
            row.append(f"{observed[str(w)]:.3f}")
        rows.append(row)
    return header, rows


def _write_tables(fit, out: Path) -> list[Path]:
    """labels.csv, task_posterior.csv and workers.csv."""
    paths = [out / "labels.csv", out / "task_posterior.csv", out / "workers.csv"]
    fit.labels().rename_axis("task").reset_index().to_csv(paths[0], index=False)
    fit.task_posterior().reset_index().to_csv(paths[1], index=False)
    fit.workers().to_csv(paths[2])
    return paths


def _netcdf_engine() -> str | None:
    """Name a netCDF engine able to write groups (an ArviZ DataTree), or None."""
    from importlib.util import find_spec

    if find_spec("h5netcdf") is not None and find_spec("h5py") is not None:
        return "h5netcdf"
    if find_spec("netCDF4") is not None:
        return "netcdf4"
    return None


def write_posterior(fit, path: Path) -> Path | None:
    """Write ``fit.to_arviz()`` to a netCDF4 file (groups: one per ArviZ group).

    Returns the path, or None (with a note on stderr) when no netCDF engine that writes
    groups is installed: h5netcdf with h5py, or netCDF4. scipy's netCDF3 has no groups.
    """
    engine = _netcdf_engine()
    if engine is None:
        print(
            f"crowdzoo: note: {path.name} not written: saving the ArviZ DataTree needs "
            "h5netcdf and h5py (pip install h5netcdf h5py) or netCDF4",
            file=sys.stderr,
        )
        return None
    fit.to_arviz().to_netcdf(path, engine=engine)
    return path


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write_plots(fit, out: Path) -> list[Path]:
    """The plots ArviZ does not draw, and rank plots where the chains mixed worst.

    ``workers.png`` (accuracy per worker, sorted, intervals, answer counts), ``rank.png``
    (NUTS: rank plots of the parameter elements with the largest r_hat),
    ``difficulty.png`` (models with item difficulty), ``communities.png`` (community model).
    """
    import matplotlib.pyplot as plt

    from .plots import plot_communities, plot_difficulty, plot_rank_worst, plot_worker_accuracy

    written = []
    if "accuracy" in fit.workers().columns:
        written.append(_save(plot_worker_accuracy(fit), out / "workers.png"))
    if "difficulty" in fit.tasks().columns:
        written.append(_save(plot_difficulty(fit), out / "difficulty.png"))
    if "community_confusion" in fit.params:
        written.append(_save(plot_communities(fit), out / "communities.png"))
    if fit.method == "nuts":
        pc = plot_rank_worst(fit, 6)
        pc.savefig(out / "rank.png", dpi=90)
        plt.close(pc.viz["figure"].item())
        written.append(out / "rank.png")
    return written


def _outdir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"cannot create the output folder {path!r}: {err.strerror or err}") from None
    return out


# --- commands ----------------------------------------------------------------------------
def cmd_models(args) -> int:
    """``crowdzoo models``: the registry."""
    from . import list_models

    rows = [[m["name"], m["methods"], m["reference"]] for m in list_models()]
    print(_fmt_table(rows, ["name", "methods", "reference"]))
    return 0


def cmd_summary(args) -> int:
    """``crowdzoo summary ANSWERS.csv``."""
    print(_read_answers(args).summary())
    return 0


def cmd_demo(args) -> int:
    """``crowdzoo demo``: Dawid-Skene on the bundled demo crowd, against majority vote."""
    import matplotlib.pyplot as plt

    import crowdzoo

    from .plots import plot_confusion, plot_worker_accuracy, worst_workers

    opts = _options(args, args.method)
    out = _outdir(args.out)
    data = crowdzoo.data.load_demo()
    truth = crowdzoo.data.load_demo_truth()
    print("crowdzoo demo: the bundled demo crowd, simulated from Dawid-Skene (truth known;")
    print("four workers answer at random, two answer 'cat' 90% of the time).\n")
    print(data.summary() + "\n")
    fit = _fit_quietly("dawid_skene", data, method=args.method, seed=args.seed, **opts)
    mv = crowdzoo.fit("majority_vote", data)
    print(_describe_fit(fit))
    print(
        f"accuracy against the simulated truth ({len(truth)} tasks): "
        f"Dawid-Skene {fit.accuracy(truth):.3f} | majority vote {mv.accuracy(truth):.3f}\n"
    )
    worst = worst_workers(fit, 5)
    header, rows = _worker_rows(fit, worst, truth)
    print(
        "5 least reliable workers (accuracy = sum_k pi_k confusion[k, k], the chance an "
        "answer is right):"
    )
    print(_fmt_table(rows, header) + "\n")

    fig = plt.figure(figsize=(11.0, 8.5), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.5, 1.0])
    plot_worker_accuracy(fit, ax=left.subplots())
    plot_confusion(fit, worst[:3], axes=right.subplots(3, 1))
    right.suptitle("confusion matrices of the 3 least reliable workers", fontsize=9)
    written = [_save(fig, out / "demo.png"), *_write_tables(fit, out)]
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_fit(args) -> int:
    """``crowdzoo fit ANSWERS.csv --out DIR``."""
    import crowdzoo

    opts = _options(args, args.method)
    model = crowdzoo.get_model(args.model)
    if args.method not in model.methods:
        raise CliError(
            f"model {model.name!r} cannot be fitted with --method {args.method}; "
            f"it supports: {', '.join(model.methods)}"
        )
    data = _read_answers(args)
    out = _outdir(args.out)
    print(data.summary() + "\n")
    fit = _fit_quietly(model, data, method=args.method, seed=args.seed, use_gold=False, **opts)
    print(_describe_fit(fit))
    if data.has_gold:
        gold = data.gold_series()
        mv = crowdzoo.fit("majority_vote", data, use_gold=False)
        print(
            f"accuracy on {len(gold)} gold tasks (gold not used to fit): "
            f"{model.name} {fit.accuracy(gold):.3f} | majority vote {mv.accuracy(gold):.3f}"
        )
    written = _write_tables(fit, out)
    if fit.has_draws:
        path = write_posterior(fit, out / "posterior.nc")
        if path is not None:
            written.append(path)
    written += _write_plots(fit, out)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_compare(args) -> int:
    """``crowdzoo compare``: fit several models; print LOO and gold scores; write files."""
    import warnings

    import numpy as np

    from .data import read_csv
    from .inference.compare import PARETO_K_BAD, compare_models
    from .inference.diagnostics import ConvergenceWarning

    for what, path in (("answers", args.answers), ("gold", args.gold),
                       ("features", args.features)):
        if path is not None and not Path(path).is_file():
            raise CliError(f"{what} file {path!r} not found")
    data = read_csv(args.answers, gold=args.gold, features=args.features, task=args.task_col,
                    worker=args.worker_col, label=args.label_col)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise CliError("--models is empty")
    options = {}
    if args.method == "nuts":
        options = {"num_warmup": args.num_warmup, "num_samples": args.num_samples,
                   "num_chains": args.num_chains}
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the table marks a model that has not converged ("!"), with its r_hat, ESS, divergences
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = compare_models(data, names, method=args.method, seed=args.seed, **options)
    print(f"{data.n_tasks} tasks, {data.n_workers} workers, {data.n_answers} answers, "
          f"{data.n_classes} classes; method={args.method}"
          + (f" ({args.num_chains} chains x {args.num_samples} draws)" if args.method == "nuts"
             else ""))
    print(result.to_string())
    if result.loo:
        bad = int(np.nansum(result.table["k_bad"]))
        print(f"Pareto k > {PARETO_K_BAD}: {bad} task(s) in total "
              f"(their LOO terms are unreliable)" if bad else
              f"All Pareto k <= {PARETO_K_BAD}: the LOO estimates are reliable.")
    print(f"total time {time.perf_counter() - start:.1f} s")
    if args.out:
        from .inference.criticism_plots import plot_calibration, plot_compare, plot_pareto_k

        out = _outdir(args.out)
        result.table.to_csv(out / "compare.csv")
        if result.loo:
            if len(result.loo) >= 2:
                plot_compare(result.loo).savefig(out / "compare_elpd.png", dpi=100)
            for name, elpd in result.loo.items():
                plot_pareto_k(elpd, name).savefig(out / f"pareto_k_{name}.png", dpi=100)
        if data.has_gold:
            plot_calibration(result.fits).savefig(out / "calibration.png", dpi=100)
        print(f"wrote {out}")
    return 0


# --- next: which task to label next --------------------------------------------------------
def _add_next_parser(sub) -> None:
    p = sub.add_parser(
        "next",
        help="rank the tasks whose next answer is worth most (expected information gain)",
        description="Fit a model, then rank the tasks (or, with --workers, the task-worker "
        "pairs) by the expected information gain of one more answer about the task's true "
        "label; write the top --n to --out (CSV) and print how many tasks are settled.",
    )
    _add_data_args(p, "gold labels (columns task, label): known labels, used to fit; gold "
                      "tasks are never suggested")
    p.add_argument("--model", default="dawid_skene",
                   help="registry name (see `crowdzoo models`; default: dawid_skene)")
    p.add_argument("--method", choices=("map", "svi", "nuts"), default="map",
                   help="map (default), svi or nuts (the gain is averaged over the draws)")
    p.add_argument("--n", type=int, default=100, help="how many tasks / pairs (default: 100)")
    p.add_argument("--workers", metavar="IDS.txt",
                   help="worker ids, one per line: rank (task, worker) pairs for them; "
                   "default: tasks, answered by a worker drawn from the crowd in proportion to "
                   "their share of the answers")
    p.add_argument("--allow-repeats", action="store_true",
                   help="also suggest a worker for a task they already answered")
    p.add_argument("--threshold", type=float, default=0.95,
                   help="a task is settled when its most probable label has at least this "
                   "posterior probability (default: 0.95); reported, not written")
    p.add_argument("--out", required=True, metavar="NEXT.csv", help="output CSV")
    _add_sampler_args(p, svi=True)


def _read_worker_ids(path: str) -> list[str]:
    if not Path(path).is_file():
        raise CliError(f"workers file {path!r} not found")
    ids = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not ids:
        raise CliError(f"workers file {path!r} has no worker ids (one per line)")
    return ids


def cmd_next(args) -> int:
    """``crowdzoo next ANSWERS.csv --out NEXT.csv``: the tasks to label next."""
    import crowdzoo

    from .inference.active import check_model

    opts = _options(args, args.method)
    if args.n < 1:
        raise CliError(f"--n must be at least 1, got {args.n}")
    if not 0.0 < args.threshold <= 1.0:
        raise CliError(f"--threshold must lie in (0, 1], got {args.threshold}")
    model = crowdzoo.get_model(args.model)
    if args.method not in model.methods:
        raise CliError(f"model {model.name!r} cannot be fitted with --method {args.method}; "
                       f"it supports: {', '.join(model.methods)}")
    check_model(model)
    workers = _read_worker_ids(args.workers) if args.workers else None
    data = _read_answers(args)
    if workers is not None:
        known = {str(w) for w in data.worker_ids}
        missing = [w for w in workers if w not in known]
        if missing:
            raise CliError(f"{len(missing)} worker id(s) of {args.workers} have no answers in "
                           f"{args.answers}: {', '.join(missing[:5])}")
    out = Path(args.out)
    if out.parent and not out.parent.is_dir():
        raise CliError(f"the folder of --out {args.out!r} does not exist")
    print(data.summary() + "\n")
    fit = crowdzoo.fit(model, data, method=args.method, seed=args.seed, use_gold=True, **opts)
    print(_describe_fit(fit))
    table = crowdzoo.next_tasks(fit, args.n, workers=workers, allow_repeats=args.allow_repeats)
    settled = crowdzoo.settled_tasks(fit, args.threshold)
    tmp = out.with_name(out.name + ".tmp")
    table.reset_index().to_csv(tmp, index=False)
    os.replace(tmp, out)
    what = "tasks" if workers is None else "(task, worker) pairs"
    print(f"settled (p_max >= {args.threshold:g}): {len(settled)} of {data.n_tasks} tasks")
    if len(table):
        gain = table["expected_information_gain"]
        print(f"top {len(table)} {what} by expected information gain: "
              f"{gain.iloc[0]:.3f} .. {gain.iloc[-1]:.3f} nats")
    else:
        print(f"no {what} to suggest")
    print(f"wrote {out}")
    return 0


#: commands that run JAX: :func:`crowdzoo.setup` is called before them
JAX_COMMANDS = ("demo", "fit", "compare", "next")

COMMANDS = {"demo": cmd_demo, "fit": cmd_fit, "models": cmd_models, "summary": cmd_summary,
            "compare": cmd_compare, "next": cmd_next}


def main(argv: list[str] | None = None) -> int:
    """Run the ``crowdzoo`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code: 0 on success, 2 for bad input or arguments (one line on stderr), 1 when a
        fit fails numerically.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad arguments (2, message printed)
        return int(exc.code or 0)
    import matplotlib

    matplotlib.use("Agg")
    if args.command in JAX_COMMANDS:
        from . import setup

        setup()  # parallel NUTS chains and the on-disk compilation cache
    debug = os.environ.get("CROWDZOO_DEBUG") == "1"
    start = time.perf_counter()
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `crowdzoo models | head`: stop quietly, as Unix tools do
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILURE
    except (CliError, OSError, ValueError) as err:
        if debug:
            raise
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"crowdzoo {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except FloatingPointError as err:
        if debug:
            raise
        print(f"crowdzoo {args.command}: fit failed: {err}", file=sys.stderr)
        return EXIT_FAILURE
    if args.command in ("demo", "fit", "next"):
        print(f"done in {time.perf_counter() - start:.1f} s")
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
