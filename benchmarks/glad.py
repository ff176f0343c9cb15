"""GLAD: accuracy on real data and speed, side by side with Crowd-Kit's GLAD, in one run.

Accuracy (gold never shown to the models): ``product`` (Zheng et al. report 92.20 for GLAD,
Crowd-Kit 0.928) and ``duchenne`` (the GLAD paper's own dataset), crowdzoo's GLAD and
Dawid-Skene next to Crowd-Kit's GLAD (its defaults: ``n_iter=100, tol=1e-5``) and
DawidSkene. Needs ``../shared/data``; skipped cleanly without it.

Speed: crowds simulated by GLAD itself with 10k and 100k answers; both libraries run the
same number of EM iterations (``tol=-inf``). Crowd-Kit's GLAD is slow (a pandas reindex in
every conjugate-gradient evaluation), so it runs ``--ck-iters`` iterations (default 2) and
the ratio is per iteration. crowdzoo is timed after one warm-up call (compilation is
reported separately).

Usage::

    python benchmarks/glad.py                    # accuracy + speed
    python benchmarks/glad.py --skip-accuracy --sizes 10000
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import crowdzoo
import crowdzoo.aggregation as cz
from crowdzoo.models import DawidSkene


def _accuracy(post, gold):
    p = post.loc[gold.index].to_numpy()
    top = np.isclose(p, p.max(1, keepdims=True), rtol=0, atol=1e-9)
    cols = {str(c): i for i, c in enumerate(post.columns)}
    g = np.array([cols[str(v)] for v in gold.to_numpy()])
    return float((top[np.arange(len(g)), g] / top.sum(1)).mean())


def accuracy(datasets, with_crowdkit=True):
    try:
        from crowdkit import aggregation as ck
    except ImportError:  # pragma: no cover
        ck, with_crowdkit = None, False
    print("| dataset | method | accuracy | EM iterations | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for name in datasets:
        try:
            ann = crowdzoo.load_dataset(name)
        except FileNotFoundError as err:
            print(f"| {name} | skipped: {err} | | | |")
            continue
        gold = ann.gold_series()
        df = ann.to_frame()
        runs = [
            ("crowdzoo glad (MAP)", lambda: crowdzoo.fit("glad", ann, use_gold=False)),
            ("crowdzoo dawid_skene (MAP)", lambda: crowdzoo.fit("dawid_skene", ann,
                                                                use_gold=False)),
            ("crowdzoo dawid_skene (flat)", lambda: crowdzoo.fit(
                DawidSkene(confusion_prior=1.0, class_prior=1.0), ann, use_gold=False,
                max_iter=100, tol=1e-5)),
            ("crowdzoo.aggregation.GLAD()", lambda: cz.GLAD().fit(df)),
        ]
        if with_crowdkit:
            runs += [("crowdkit GLAD()", lambda: ck.GLAD().fit(df)),
                     ("crowdkit DawidSkene(100)", lambda: ck.DawidSkene(100).fit(df))]
        for label, run in runs:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run()
            secs = time.perf_counter() - start
            if isinstance(res, crowdzoo.Fit):
                post, iters = res.task_posterior(), res.diagnostics.get("n_iter", "")
            else:
                post = res.probas_
                iters = len(getattr(res, "loss_history_", []) or [])
            print(f"| {name} | {label} | {_accuracy(post, gold):.4f} | {iters} | {secs:.1f} |",
                  flush=True)


def speed(sizes, zoo_iters=20, ck_iters=2, with_crowdkit=True):
    from crowdzoo.data import simulate

    print("\n| answers | crowdzoo s/iter | crowdzoo compile s | crowdkit s/iter | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for n in sizes:
        apt = 10
        sim = simulate("glad", n_tasks=n // apt, n_workers=max(30, n // 500), n_classes=2,
                       answers_per_task=apt, seed=0)
        df = sim.annotations.to_frame()
        est = cz.GLAD(n_iter=zoo_iters, tol=-np.inf)
        start = time.perf_counter()
        est.fit(df)
        first = time.perf_counter() - start
        start = time.perf_counter()
        est.fit(df)
        ours = (time.perf_counter() - start) / zoo_iters
        theirs, ratio = float("nan"), float("nan")
        if with_crowdkit:
            from crowdkit import aggregation as ck

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                ck.GLAD(n_iter=ck_iters, tol=-np.inf).fit(df)
                theirs = (time.perf_counter() - start) / ck_iters
            ratio = theirs / ours
        print(f"| {len(df):,} | {ours:.4f} | {first - ours * zoo_iters:.1f} | {theirs:.2f} | "
              f"{ratio:.0f}x |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="product,duchenne")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--zoo-iters", type=int, default=20)
    parser.add_argument("--ck-iters", type=int, default=2)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--no-crowdkit", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_accuracy:
        accuracy(args.datasets.split(","), with_crowdkit=not args.no_crowdkit)
    if not args.skip_speed:
        speed([int(s) for s in args.sizes.split(",")], args.zoo_iters, args.ck_iters,
              with_crowdkit=not args.no_crowdkit)


if __name__ == "__main__":
    main()
