"""Minibatch SVI over tasks against full-batch SVI: time to the full-data MAP's accuracy.

A simulated Dawid-Skene crowd (``benchmarks/speed.py``'s generator: K = 4, 5 answers per task,
one worker per 100 tasks) of ``--answers`` answers. The target is the accuracy (against the
simulated truth) of the full-data MAP (``crowdzoo.inference.large.dawid_skene_map``) minus
0.2 points. Both SVI runs fit ``DawidSkene()`` with an AutoNormal guide (init_to_median, init
scale 0.05, initialized on 64 tasks: the guide needs only the parameters' shapes), Adam
(``--lr``), one particle, through
:func:`crowdzoo.inference.minibatch.minibatch_model`: full batch = every task at every step
(``subsample_size = T``), minibatch = ``--batch`` tasks per step. Every ``--every`` steps the
labels at the guide's median are scored on all tasks; the clock counts SVI steps only (compile
included, scoring and NumPyro's one-off initialization warm-up excluded). A run stops at the
target or after ``--budget`` seconds.

Usage::

    python benchmarks/minibatch_svi.py --answers 10000000 --budget 150   # results/minibatch_svi.md
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results" / "minibatch_svi.md"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--answers", type=int, default=10_000_000)
    p.add_argument("--batch", type=int, default=20_000)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--halve-every", type=int, default=300,
                   help="halve the learning rate every this many steps (0: constant)")
    args = p.parse_args()

    import jax
    import jax.numpy as jnp
    import optax
    from crowdzoo.inference import large
    from crowdzoo.inference.minibatch import minibatch_model, task_layout
    from crowdzoo.models import DawidSkene
    from crowdzoo.models.core import CrowdData
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.infer.initialization import init_to_median
    from speed import make_crowd

    task, worker, label, truth, (T, W, K) = make_crowd(args.answers, seed=0)
    t0 = time.perf_counter()
    fit = large.dawid_skene_map(task, worker, label, T, W, K)
    map_s = time.perf_counter() - t0
    acc_map = float((fit.posterior.argmax(1) == truth).mean())
    target = acc_map - 0.002
    model = DawidSkene()
    layout = task_layout(task, worker, label, T)
    design = CrowdData(task=jnp.asarray(task), worker=jnp.asarray(worker),
                       label=jnp.asarray(label), gold=jnp.full((T,), -1, jnp.int32),
                       features=None, n_tasks=T, n_workers=W, n_classes=K, tasks_sorted=True)
    del task, worker, label
    truth_j = jnp.asarray(truth)

    @jax.jit
    def accuracy(pi, confusion):
        m = model.log_likelihood({"pi": pi, "confusion": confusion}, design)
        return jnp.mean(jnp.argmax(m.logits, -1) == truth_j)

    # one-off costs both runs share (NumPyro's initialization compiles many small programs):
    # paid once, untimed, on a tiny layout
    small = type(layout)(*(x[:64] for x in layout))
    tiny = dataclasses.replace(design, task=design.task[:1], worker=design.worker[:1],
                               label=design.label[:1], gold=design.gold[:1])  # sizes only
    warm = minibatch_model(model, 64)
    SVI(warm, AutoNormal(warm, init_loc_fn=init_to_median(), init_scale=0.05),
        optax.adam(args.lr), Trace_ELBO()).init(jax.random.PRNGKey(0), small, tiny)

    rows = []
    for name, batch in (("minibatch", args.batch), ("full batch", T)):
        program = minibatch_model(model, batch)
        guide = AutoNormal(program, init_loc_fn=init_to_median(), init_scale=0.05)
        lr = (optax.exponential_decay(args.lr, args.halve_every, 0.5) if args.halve_every
              else args.lr)
        svi = SVI(program, guide, optax.adam(lr), Trace_ELBO())
        every = args.every if batch < T else max(1, args.every // 20)

        @jax.jit
        def advance(state, layout, design, every=every, svi=svi):
            return jax.lax.scan(lambda s, _: svi.update(s, layout, design), state, None,
                                length=every)

        clock = time.perf_counter()
        # the guide needs only the parameters' shapes: initialize on the first tasks (NumPyro's
        # init traces the program with its arguments as constants: minutes on 10M answers)
        state = svi.init(jax.random.PRNGKey(0), small, tiny)
        print(f"{name}: init {time.perf_counter() - clock:.1f} s", flush=True)
        spent, steps, acc = 0.0, 0, 0.0
        while True:
            state, _ = advance(state, layout, design)
            jax.block_until_ready(state)
            spent += time.perf_counter() - clock
            steps += every
            med = guide.median(svi.get_params(state))
            acc = float(accuracy(med["pi"], med["confusion"]))
            print(f"{name}: {steps} steps, {spent:.1f} s, accuracy {acc:.4f}", flush=True)
            if acc >= target or spent > args.budget:
                break
            clock = time.perf_counter()
        rows.append((name, batch, steps, spent, acc, acc >= target))

    full = next(r for r in rows if r[0] == "full batch")
    mini = next(r for r in rows if r[0] == "minibatch")
    lines = [
        "<!-- begin: readme -->",
        f"Minibatch SVI (`benchmarks/minibatch_svi.py`, Dawid-Skene, {args.answers:,} answers = "
        f"{T:,} tasks x 5, K = {K}): target = the full-data MAP's accuracy {acc_map:.4f} "
        f"(EM: {map_s:.1f} s) minus 0.2 points.",
        "",
        "| SVI | tasks per step | steps | time (SVI steps, compile included) | accuracy | "
        "target reached |",
        "|---|---|---|---|---|---|",
    ]
    for name, batch, steps, spent, acc, ok in rows:
        lines.append(f"| {name} | {batch:,} | {steps:,} | {spent:.1f} s | {acc:.4f} | "
                     f"{'yes' if ok else f'no (stopped at the {args.budget:.0f} s budget)'} |")
    if mini[5] and (not full[5] or mini[3] < full[3]):
        verdict = (f"Minibatch SVI reaches the target in {mini[3]:.1f} s"
                   + (f", {full[3] / mini[3]:.1f}x faster than full-batch SVI." if full[5] else
                      f"; full-batch SVI had not after {full[3]:.0f} s."))
    else:
        verdict = "Minibatch SVI does **not** reach the target faster than full-batch SVI here."
    lines += ["", verdict, "<!-- end: readme -->",
              f"<!-- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load "
              f"average {os.getloadavg()[0]:.1f} (shared machine); Adam lr {args.lr}"
              f"{f' halved every {args.halve_every} steps' if args.halve_every else ''}, "
              f"AutoNormal -->", ""]
    RESULTS.write_text("\n".join(lines))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
