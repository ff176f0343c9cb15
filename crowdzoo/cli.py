"""The ``crowdzoo`` command line: ``demo``, ``fit``, ``models``, ``summary``, ``compare``, ``next``.

::

    crowdzoo demo [--out DIR] [--method map|nuts] [--overwrite]
    crowdzoo fit ANSWERS.csv --out DIR [--model dawid_skene] [--method map|svi|nuts]
                 [--gold GOLD.csv] [--features FEATURES.csv | --texts TEXTS.csv] [--classes a,b,c]
                 [--na-values N/A,NA] [--task-col task] [--worker-col worker]
                 [--label-col label] [--overwrite]
                 [--seed 0] [--num-samples N --num-warmup N --num-chains N] [--num-steps N]
    crowdzoo models
    crowdzoo summary ANSWERS.csv [--gold GOLD.csv] [--classes ...] [--na-values ...]
    crowdzoo compare ANSWERS.csv --models dawid_skene,one_coin,glad [--gold GOLD.csv]
                 [--method nuts|svi|map] [--num-warmup N --num-samples N --num-chains N]
                 [--reloo [--reloo-max-refits N]] [--out DIR] [--overwrite]
    crowdzoo next ANSWERS.csv --out NEXT.csv [--model dawid_skene] [--n 100]
                 [--workers IDS.txt] [--method map|svi|nuts] [--allow-repeats]
                 [--gold GOLD.csv] [--features FEATURES.csv] [--task-col ...] [--seed 0]

Bad input (a missing file, a wrong column name, an unknown model, an option out of range)
gets a one-line error on stderr and exit code 2; set ``CROWDZOO_DEBUG=1`` to see the
traceback instead. Plots are drawn with matplotlib's Agg backend (no display needed). JAX
and the models are imported only once a command needs them, so ``crowdzoo --help`` is
instant.

Output folders (``--out``): every file is written to a temporary name in the folder and
renamed into place only when complete, and ``crowdzoo-manifest.json`` records which run
wrote which files (:mod:`crowdzoo.outputs`). A folder holding another run's files is refused
unless ``--overwrite``, which removes that run's files (only those) first; a file of yours
under a name the run would write is never replaced.

Labels and ids are normalized as in :mod:`crowdzoo.data.normalize` (whitespace stripped,
``1`` / ``"1.0"`` one class); nothing in the CSV files is read as missing unless
``--na-values`` lists it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

#: exit code of bad input (as argparse uses for bad arguments)
EXIT_USAGE = 2
#: exit code of a fit that failed numerically
EXIT_FAILURE = 1

#: the seed is a 32-bit unsigned integer (NumPyro / JAX PRNG keys)
SEED_LIMIT = 2**32


class CliError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``crowdzoo fit: error: ...``) and exit code 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} "
                              f"(see {self.prog} --help)\n")


def _count(text: str) -> int:
    """Parse an integer >= 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    """Parse a seed: a whole number in [0, 2**32) (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number in [0, 2**32), got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must lie in [0, 2**32 = {SEED_LIMIT}), got {value}")
    return value


def _temper(text: str):
    """``--temper``: 'auto' or a power in (0, 1]."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        power = float(text)
    except ValueError:
        power = float("nan")
    if not 0.0 < power <= 1.0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number in (0, 1], got {text!r}")
    return power


#: the library's advice in Python (keyword arguments) -> the same advice as flags
_PYTHON_TO_CLI = (("pass na_values=['']", "pass --na-values ''"),
                  ("pass na_values", "pass --na-values"))


def _as_cli_advice(msg: str) -> str:
    """Rewrite an error's advice to name the command's flags, not Python's arguments."""
    for python, flag in _PYTHON_TO_CLI:
        msg = msg.replace(python, flag)
    return msg


def _csv_list(text: str) -> list[str]:
    """Split comma-separated values (an empty item stays: ``'N/A,'``)."""
    return text.split(",")


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
    p.add_argument(
        "--texts",
        metavar="TEXTS.csv",
        help="task texts (a task column plus 'text', and 'hypothesis' where present): their "
        "word counts become the task features, for biased_worker_words",
    )
    _add_label_args(p)


def _add_label_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--classes", type=_csv_list, metavar="A,B,C",
        help="every class, comma-separated, in this order (default: the labels the workers "
        "gave); needed when a class appears only in the gold labels")
    p.add_argument(
        "--na-values", type=_csv_list, metavar="N/A,NA",
        help="labels that mean 'no answer' (their rows are dropped), comma-separated; an "
        "empty item (a trailing comma) means empty cells. By default nothing is missing: "
        "'N/A', 'NA', 'None', 'null' are labels like any other")


def _add_overwrite_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace the files of an earlier crowdzoo run in --out (only those its "
        "manifest lists; your own files are never replaced)")


def _add_sampler_args(p: argparse.ArgumentParser, svi: bool) -> None:
    g = p.add_argument_group("inference options (defaults: those of crowdzoo.fit)")
    g.add_argument("--seed", type=_seed, default=0,
                   help="random seed, a whole number in [0, 2**32) (default: 0)")
    g.add_argument("--num-samples", type=_count, help="nuts: draws per chain (1000)")
    g.add_argument("--num-warmup", type=_count, help="nuts: warmup steps per chain (500)")
    g.add_argument("--num-chains", type=_count, help="nuts: chains (4)")
    if svi:
        g.add_argument("--num-steps", type=_count, help="svi: optimisation steps (3000)")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``crowdzoo`` command."""
    parser = _Parser(
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
    _add_overwrite_arg(p)
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
    p.add_argument(
        "--temper", type=_temper, metavar="auto|POWER",
        help="also write task_posterior_tempered.csv: the task posteriors with the answers' "
        "likelihood raised to POWER in (0, 1], or to the power chosen without gold by "
        "leave-one-answer-out predictive density ('auto'); for crowds whose answers to one "
        "task are not independent (crowdzoo.inference.calibrate)")
    _add_overwrite_arg(p)
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
                   help="comma-separated registry names, or 'all' for every model that "
                   "applies to the data (default: dawid_skene,one_coin)")
    p.add_argument("--gold", metavar="GOLD.csv",
                   help="gold labels (columns task, label): accuracy, log loss and ECE")
    p.add_argument("--features", metavar="FEATURES.csv",
                   help="task features, for the learning-from-crowds models")
    p.add_argument("--texts", metavar="TEXTS.csv",
                   help="task texts (a task column plus 'text', and 'hypothesis' where "
                   "present): their word counts become the task features, for "
                   "biased_worker_words (and, with --models all, for the "
                   "learning-from-crowds models too)")
    p.add_argument("--method", default="nuts", choices=("nuts", "svi", "map"),
                   help="inference method (default: nuts; LOO needs draws)")
    p.add_argument("--num-warmup", type=_count, default=300,
                   help="nuts: warmup steps per chain (default: 300)")
    p.add_argument("--num-samples", type=_count, default=300,
                   help="nuts: draws per chain (default: 300); LOO needs chains x draws >= 25")
    p.add_argument("--num-chains", type=_count, default=2, help="nuts: chains (default: 2)")
    p.add_argument("--reloo", action="store_true",
                   help="refit each model without its tasks whose Pareto k stays > 0.7 and "
                   "use those exact leave-out terms (each refit costs a fit; off by default)")
    p.add_argument("--reloo-max-refits", type=_count, default=None, metavar="N",
                   help="with --reloo: most refits per model; more flagged tasks are refitted "
                   "in N folds (K-fold terms) (default: 10)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="random seed, a whole number in [0, 2**32) (default: 0)")
    p.add_argument("--out", metavar="DIR", help="write compare.csv and the plots here")
    _add_overwrite_arg(p)
    p.add_argument("--task-col", default="task")
    p.add_argument("--worker-col", default="worker")
    p.add_argument("--label-col", default="label")
    _add_label_args(p)


# --- helpers -----------------------------------------------------------------------------
def _input_files(args) -> dict:
    return {"answers": args.answers, "gold": args.gold, "features": args.features,
            "texts": getattr(args, "texts", None)}


def _read_answers(args):
    """Read the answers (and gold) CSV named on the command line."""
    from .data import read_csv

    for what, path in _input_files(args).items():
        if path is not None and not Path(path).is_file():
            raise CliError(f"{what} file {path!r} not found")
    classes = getattr(args, "classes", None)
    if classes is not None:
        classes = [c.strip() for c in classes]
        if any(not c for c in classes):
            raise CliError(f"--classes has an empty class name: {','.join(classes)!r}")
    from .large import is_large_input

    texts = getattr(args, "texts", None)
    if texts is not None and args.features is not None:
        raise CliError("give --texts or --features, not both (the word counts of --texts "
                       "are the task features)")
    if texts is not None:
        from .data.texts import with_words

        without = argparse.Namespace(**{**vars(args), "texts": None})
        return with_words(_read_answers(without), texts)
    if is_large_input(args.answers):  # parquet, or a big CSV: pyarrow, no object per answer
        from .data.columnar import read_csv_arrow, read_parquet
        from .large import is_parquet

        if args.features is not None:
            raise CliError("--features is not read with parquet or large CSV answers; fit "
                           "from Python with crowdzoo.data.read_parquet and the features")
        reader = read_parquet if is_parquet(args.answers) else read_csv_arrow
        try:
            return reader(args.answers, gold=args.gold, task=args.task_col,
                          worker=args.worker_col, label=args.label_col, classes=classes,
                          na_values=getattr(args, "na_values", None))
        except ImportError as err:  # pyarrow is the optional extra crowdzoo[parquet]
            raise CliError(str(err)) from None
    return read_csv(
        args.answers,
        gold=args.gold,
        features=args.features,
        task=args.task_col,
        worker=args.worker_col,
        label=args.label_col,
        classes=classes,
        na_values=getattr(args, "na_values", None),
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
        if d["converged"]:
            text += f"; {d['n_iter']} iterations, converged: True"
        else:
            text += (f"; {d['n_iter']} iterations, converged: False -- STOPPED AT THE "
                     f"ITERATION CAP before its tolerance (the results are not at the optimum)")
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
        if d.get("relabelled_draws"):
            text += (f"\n{d['relabelled_draws']:.0%} of the draws were in the mirror labelling of "
                     f"the classes (every worker adversarial; as likely under this model's "
                     f"symmetric prior) and were relabelled")
    return text


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


#: the tables every fit writes
TABLES = ("labels.csv", "task_posterior.csv", "workers.csv")


def _write_tables(fit, out) -> list[Path]:
    """labels.csv, task_posterior.csv and workers.csv (atomically, through ``out``)."""
    labels = fit.labels().rename_axis("task").reset_index()
    post = fit.task_posterior().reset_index()
    workers = fit.workers()
    return [
        out.write(TABLES[0], lambda p: labels.to_csv(p, index=False)),
        out.write(TABLES[1], lambda p: post.to_csv(p, index=False)),
        out.write(TABLES[2], lambda p: workers.to_csv(p)),
    ]


#: the tempered task posteriors of ``crowdzoo fit --temper``
TEMPERED = "task_posterior_tempered.csv"


def _write_tempered(fit, temper, gold, out) -> Path:
    """Tempered task posteriors (``--temper``), with the power and, on gold, both ECEs."""
    import numpy as np

    from .inference.calibrate import choose_temperature, tempered_posterior
    from .inference.compare import expected_calibration_error, gold_codes

    if temper == "auto":
        power = choose_temperature(fit).power
        how = "chosen without gold by leave-one-answer-out predictive density"
    else:
        power, how = float(temper), "given"
    post = tempered_posterior(fit, power)
    out.run["temper_power"] = power
    line = f"tempered task posteriors: likelihood power {power:g} ({how})"
    if gold is not None:
        g = gold_codes(fit, gold)
        if np.any(g >= 0):
            plain = expected_calibration_error(fit.task_posterior().to_numpy(), g)
            tempered = expected_calibration_error(post.to_numpy(), g)
            line += f"; ECE on gold {plain:.3f} untempered, {tempered:.3f} tempered"
    print(line)
    table = post.reset_index()
    return out.write(TEMPERED, lambda p: table.to_csv(p, index=False))


def _netcdf_engine() -> str | None:
    """Name a netCDF engine able to write groups (an ArviZ DataTree), or None."""
    from importlib.util import find_spec

    if find_spec("h5netcdf") is not None and find_spec("h5py") is not None:
        return "h5netcdf"
    if find_spec("netCDF4") is not None:
        return "netcdf4"
    return None


def write_posterior(fit, out, name: str = "posterior.nc") -> Path | None:
    """Write ``fit.to_arviz()`` to a netCDF4 file (groups: one per ArviZ group).

    ``out`` is an :class:`~crowdzoo.outputs.OutputDir` (the file is written atomically and
    listed in its manifest) or a file path (written atomically). Returns the path, or None
    (with a note on stderr) when no netCDF engine that writes groups is installed: h5netcdf
    with h5py, or netCDF4. scipy's netCDF3 has no groups.
    """
    from .outputs import atomic_write

    engine = _netcdf_engine()
    if engine is None:
        print(
            f"crowdzoo: note: {name} not written: saving the ArviZ DataTree needs "
            "h5netcdf and h5py (pip install h5netcdf h5py) or netCDF4",
            file=sys.stderr,
        )
        return None
    dt = fit.to_arviz()

    def writer(p):
        dt.to_netcdf(p, engine=engine)

    if isinstance(out, (str, Path)):
        return atomic_write(out, writer)
    return out.write(name, writer)


def _save(fig, out, name: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure (or an ArviZ PlotCollection) as ``name`` in ``out``, atomically."""
    import matplotlib.pyplot as plt

    path = out.write(name, lambda p: fig.savefig(p, dpi=dpi))
    plt.close(fig.viz["figure"].item() if hasattr(fig, "viz") else fig)
    return path


def _write_plots(fit, out) -> list[Path]:
    """Draw the plots ArviZ does not draw, and rank plots where the chains mixed worst.

    ``workers.png`` (accuracy per worker, sorted, intervals, answer counts), ``rank.png``
    (NUTS: rank plots of the parameter elements with the largest r_hat),
    ``difficulty.png`` (models with item difficulty), ``communities.png`` (community model).
    Every file goes through ``out`` (:class:`~crowdzoo.outputs.OutputDir`): atomic, listed in
    the manifest.
    """
    from .plots import plot_communities, plot_difficulty, plot_rank_worst, plot_worker_accuracy

    written = []
    if "accuracy" in fit.workers().columns:
        written.append(_save(plot_worker_accuracy(fit), out, "workers.png"))
    if "difficulty" in fit.tasks().columns:
        written.append(_save(plot_difficulty(fit), out, "difficulty.png"))
    if "community_confusion" in fit.params:
        written.append(_save(plot_communities(fit), out, "communities.png"))
    if fit.method == "nuts":
        written.append(_save(plot_rank_worst(fit, 6), out, "rank.png", dpi=90))
    return written


def _plot_names(method: str) -> list[str]:
    """Every file name a fit by ``method`` may write (checked before fitting)."""
    names = [*TABLES, "workers.png", "difficulty.png", "communities.png"]
    if method in ("svi", "nuts"):
        names.append("posterior.nc")
    if method == "nuts":
        names.append("rank.png")
    return names


def _outdir(args, command: str, planned, inputs: dict | None = None, **run):
    """Open the run's output folder (:class:`~crowdzoo.outputs.OutputDir`) before any work."""
    from .outputs import OutputDir, OutputError

    info = {"command": command, **run, "argv": list(sys.argv[1:])}
    try:
        return OutputDir(args.out, info, inputs=inputs, planned=planned,
                         overwrite=bool(getattr(args, "overwrite", False)))
    except OutputError as err:
        raise CliError(str(err)) from None


def _fit_quietly(*fargs, **fkwargs):
    """``crowdzoo.fit`` with its warnings as one line each on stderr.

    A ``ConvergenceWarning`` is held back: :func:`_describe_fit` prints the numbers and marks
    a fit that stopped at its cap or did not converge.
    """
    import warnings

    import crowdzoo

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = crowdzoo.fit(*fargs, **fkwargs)
    for w in caught:
        if not issubclass(w.category, crowdzoo.ConvergenceWarning):
            print(f"crowdzoo: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    return result


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
    from .data.simulate import DEMO_DIR

    out = _outdir(args, "demo", ["demo.png", *TABLES],
                  inputs={"answers": str(DEMO_DIR / "demo_answers.csv")},
                  model="dawid_skene", method=args.method, seed=args.seed, options=opts)
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

    fig = plt.figure(figsize=(10.0, 8.5), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.25, 1.0])
    plot_worker_accuracy(fit, ax=left.subplots())
    plot_confusion(fit, worst[:3], axes=right.subplots(3, 1))
    right.suptitle("confusion matrices of the 3 least reliable workers", fontsize=9)
    written = [_save(fig, out, "demo.png"), *_write_tables(fit, out)]
    out.finish()
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
    from .large import fits_large_path, is_parquet

    if getattr(args, "texts", None) is not None and model.generates_features != "words":
        raise CliError(f"--texts gives each task's word counts, which {model.name} does not "
                       f"read; use --model biased_worker_words (or drop --texts)")
    temper = getattr(args, "temper", None)
    if temper is not None and not model.answers_independent_given_label:
        raise CliError(f"--temper: {model.name} models the dependence of a task's answers "
                       f"itself (an item effect); its likelihood has no per-answer terms to "
                       f"temper")
    if fits_large_path(model, args.method) and (
            is_parquet(args.answers) or _large_csv(args.answers)):
        if temper is not None:
            raise CliError("--temper is not available for parquet or large CSV answers")
        return _cmd_fit_large(args, model, opts)
    data = _read_answers(args)
    planned = _plot_names(args.method) + ([TEMPERED] if temper is not None else [])
    out = _outdir(args, "fit", planned, inputs=_input_files(args),
                  model=model.name, method=args.method, seed=args.seed, options=opts,
                  classes=[str(c) for c in data.classes], temper=temper)
    print(data.summary() + "\n")
    fit = _fit_quietly(model, data, method=args.method, seed=args.seed, use_gold=False, **opts)
    print(_describe_fit(fit))
    gold = None
    if data.has_gold:
        gold = data.gold_series()
        mv = crowdzoo.fit("majority_vote", data, use_gold=False)
        print(
            f"accuracy on {len(gold)} gold tasks (gold not used to fit): "
            f"{model.name} {fit.accuracy(gold):.3f} | majority vote {mv.accuracy(gold):.3f}"
        )
    from .inference.chance import chance_note

    note = chance_note(fit, gold)
    if note:
        print(f"note: {note}")
    out.run["diagnostics"] = {k: v for k, v in fit.diagnostics.items()
                              if isinstance(v, (bool, int, float, str))}
    written = _write_tables(fit, out)
    if temper is not None:
        written.append(_write_tempered(fit, temper, gold, out))
    if fit.has_draws:
        path = write_posterior(fit, out)
        if path is not None:
            written.append(path)
    written += _write_plots(fit, out)
    out.finish()
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _large_csv(path) -> bool:
    from .large import LARGE_CSV_BYTES

    return Path(path).is_file() and Path(path).stat().st_size >= LARGE_CSV_BYTES


def _cmd_fit_large(args, model, opts) -> int:
    """``crowdzoo fit`` on parquet / large CSV answers: lean Dawid-Skene MAP, parquet out."""
    from .large import LARGE_TABLES, large_summary, run_large_fit

    data = _read_answers(args)
    out = _outdir(args, "fit", LARGE_TABLES, inputs=_input_files(args), model=model.name,
                  method=args.method, seed=args.seed, options=opts,
                  classes=[str(c) for c in data.classes])
    print(large_summary(data) + "\n")
    holder = [data]
    del data  # run_large_fit drops the answers once they are on the device
    written, diagnostics = run_large_fit(holder, model, out)
    out.run["diagnostics"] = diagnostics
    out.finish()
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _skip_reason(name: str, reason: str, data) -> str:
    """Why ``compare --models all`` skips a model, in the command line's terms."""
    from .models import get_model

    model = get_model(name)
    if getattr(model, "generates_features", None) == "words":
        if data.features is None:
            return "it reads each task's words; pass --texts TEXTS.csv"
        return ("it reads each task's word counts, which --features are not; pass --texts "
                "TEXTS.csv instead")
    if getattr(model, "needs_features", False) and data.features is None:
        return "it learns from task features; pass --features FEATURES.csv"
    return reason


def _reads_other_features(name: str) -> bool:
    """Whether a model learns from numeric task features other than word counts."""
    from .models import get_model

    model = get_model(name)
    return (bool(getattr(model, "needs_features", False))
            and getattr(model, "generates_features", None) != "words")


def _compare_progress(i: int, n: int, row: dict) -> None:
    """One line per fitted model while ``crowdzoo compare`` runs (flushed: logs show it)."""
    import math

    def num(key):
        v = row.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    took = f"{row['seconds']:.1f} s"
    if num("loo_seconds") is not None:
        took += f" + LOO {row['loo_seconds']:.1f} s"
    parts = [f"[{i:>{len(str(n))}}/{n}] {row['model']} ({row['method']}) {took}"]
    if num("elpd_loo") is not None:
        parts.append(f"elpd_loo {row['elpd_loo']:.1f} +- {row['se']:.1f}")
        if num("k_bad"):
            parts.append(f"{int(row['k_bad'])} task(s) with Pareto k > 0.7")
        if num("refitted"):
            parts.append(f"{int(row['refitted'])} high-k task term(s) refitted "
                         f"({int(row['refits'])} refit(s), {row['reloo_seconds']:.0f} s)")
    if num("r_hat") is not None:
        parts.append(f"max r_hat {row['r_hat']:.3f}")
    if num("accuracy") is not None:
        parts.append(f"accuracy {row['accuracy']:.4f}")
    if not row.get("converged", True):
        parts.append(f"NOT CONVERGED ({row['problems']})")
    print(", ".join(parts), flush=True)


def _compare_notes(table, has_loo: bool, args) -> list[str]:
    """Return what the user should make of the table's flags (lines printed below it)."""
    from .inference.compare import PARETO_K_BAD

    notes = []
    if has_loo:
        k_bad = table["k_bad"].dropna()
        flagged = int((k_bad > 0).sum())
        if flagged:
            # per model, not summed: the same task counts once per model it is flagged in
            fix = ("" if getattr(args, "reloo", False) else
                   " Rerun with --reloo to refit without them (exact terms; a fit per refit).")
            notes.append(
                f"Pareto k > {PARETO_K_BAD} in {flagged} of {len(k_bad)} models (column "
                f"k>0.7, marked ?): PSIS cannot estimate those tasks' leave-one-out terms "
                f"from these draws, so those elpd_loo values are approximate.{fix}")
        else:
            notes.append(f"All Pareto k <= {PARETO_K_BAD}: the LOO estimates are reliable.")
        terms = table["loo_terms"].dropna() if "loo_terms" in table else []
        for what, say in (("moment-matched", "Moment matching (no refit) repaired"),
                          ("refitted", "Refits without them (exact LOO; K-fold where "
                                       "loo_terms says folds) replaced")):
            counts = [int(m.group(1)) for t in terms
                      if (m := re.search(rf"(\d+) {what}", t)) is not None]
            if counts:
                notes.append(
                    f"{say} {sum(counts)} task term(s) that had Pareto k > {PARETO_K_BAD} in "
                    f"{len(counts)} model(s); column loo_terms of compare.csv says which.")
    if "converged" in table and not table["converged"].all() and args.method == "nuts":
        n_bad = int((~table["converged"].astype(bool)).sum())
        notes.append(
            f"{n_bad} of {len(table)} models not converged (marked !): fit longer, e.g. "
            f"--num-warmup {max(2 * args.num_warmup, 1000)} --num-samples "
            f"{max(2 * args.num_samples, 1000)}, before trusting their elpd_loo and rank.")
    return notes


def cmd_compare(args) -> int:
    """``crowdzoo compare``: fit several models; print LOO and gold scores; write files."""
    import warnings

    from .inference.compare import (
        MIN_LOO_DRAWS,
        RELOO_MAX_REFITS,
        applicable_models,
        compare_models,
    )
    from .inference.diagnostics import ConvergenceWarning

    if args.method == "nuts" and args.num_chains * args.num_samples < MIN_LOO_DRAWS:
        raise CliError(
            f"LOO needs at least {MIN_LOO_DRAWS} posterior draws in total, got --num-chains "
            f"{args.num_chains} x --num-samples {args.num_samples} = "
            f"{args.num_chains * args.num_samples}; raise --num-samples")
    data = _read_answers(args)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise CliError("--models is empty")
    if names == ["all"]:
        names, skipped = applicable_models(data)
        if args.texts is not None:
            # the word counts of --texts are for biased_worker_words, as in `crowdzoo fit`
            for name in [n for n in names if _reads_other_features(n)]:
                names.remove(name)
                skipped[name] = ("it learns from numeric task features (--features), not the "
                                 "word counts of --texts")
        for name, reason in skipped.items():
            print(f"skipping {name}: {_skip_reason(name, reason, data)}")
        if not names:
            raise CliError("no registered model applies to these data")
    elif args.texts is not None:
        other = [n for n in names if _reads_other_features(n)]
        if other:
            raise CliError(f"--texts gives each task's word counts, which {', '.join(other)} "
                           f"do(es) not read; pass --features instead (or drop --texts)")
    options = {}
    if args.method == "nuts":
        options = {"num_warmup": args.num_warmup, "num_samples": args.num_samples,
                   "num_chains": args.num_chains}
    if args.reloo_max_refits is not None and not args.reloo:
        raise CliError("--reloo-max-refits sets how many refits --reloo may run; add --reloo")
    if args.reloo and args.method == "map":
        raise CliError("--reloo refits a sampler's LOO terms; --method map has no LOO")
    refits = RELOO_MAX_REFITS if args.reloo_max_refits is None else args.reloo_max_refits
    out = None
    if args.out:
        planned = ["compare.csv", "compare_elpd.png", "calibration.png",
                   *[f"pareto_k_{m}.png" for m in names]]
        out = _outdir(args, "compare", planned, inputs=_input_files(args),
                      models=names, method=args.method, seed=args.seed, options=options,
                      reloo_max_refits=refits if args.reloo else None)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the table marks a model that has not converged ("!"), with its r_hat, ESS, divergences
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = compare_models(data, names, method=args.method, seed=args.seed,
                                progress=None, on_fit=_compare_progress, reloo=args.reloo,
                                reloo_max_refits=refits, **options)
    print(f"{data.n_tasks} tasks, {data.n_workers} workers, {data.n_answers} answers, "
          f"{data.n_classes} classes; method={args.method}"
          + (f" ({args.num_chains} chains x {args.num_samples} draws)" if args.method == "nuts"
             else ""))
    print(result.to_string())
    for line in _compare_notes(result.table, bool(result.loo), args):
        print(line)
    print(f"total time {time.perf_counter() - start:.1f} s")
    if out is not None:
        from .inference.criticism_plots import plot_calibration, plot_compare, plot_pareto_k

        table = result.table
        out.write("compare.csv", lambda p: table.to_csv(p))
        if result.loo:
            if len(result.loo) >= 2:
                _save(plot_compare(result.loo), out, "compare_elpd.png", dpi=100)
            for name, elpd in result.loo.items():
                _save(plot_pareto_k(elpd, name), out, f"pareto_k_{name}.png", dpi=100)
        if data.has_gold:
            _save(plot_calibration(result.fits), out, "calibration.png", dpi=100)
        out.finish()
        print(f"wrote {out.path}")
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
    p.add_argument("--n", type=_count, default=100,
                   help="how many tasks / pairs (default: 100)")
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
    from .outputs import atomic_write

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
    rows = table.reset_index()
    atomic_write(out, lambda p: rows.to_csv(p, index=False))
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
        msg = _as_cli_advice(" ".join(str(err).split()) or type(err).__name__)
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
