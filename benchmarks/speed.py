"""Speed: crowdzoo's Dawid-Skene MAP against Crowd-Kit's DawidSkene, and NUTS on 10k answers.

What it measures (simulated Dawid-Skene crowds, K = 4 classes, 5 answers per task, one
worker per 100 tasks: 10k answers = 2k tasks x 20 workers, 100k = 20k x 200,
1M = 200k x 2k; a vectorized numpy generator, :func:`make_crowd`):

(a) **per EM iteration at the same iteration count** — crowdzoo's jitted ``run_em`` with
    ``tol=0`` (runs exactly ``max_iter`` iterations) timed after a warm-up call that
    compiles it; Crowd-Kit's ``DawidSkene(tol=-inf)`` timed at ``n_iter = 1`` and
    ``n_iter = 1 + n`` and differenced, so its initialisation (majority vote + first M-step)
    is not counted. Both iterations compute the E-step, the M-step and the objective.
(b) **end to end** — ``crowdzoo.fit("dawid_skene", ann, method="map")`` plus the task
    posterior, to crowdzoo's default tolerance, in a **fresh process** (JAX and crowdzoo
    imported and the data built before the clock starts; nothing compiled: the compile is
    included), and again warm (second call, same process); against
    ``DawidSkene(n_iter=100).fit_predict_proba(df)`` with Crowd-Kit's default tolerance.
(c) **NUTS** on 10k answers (2k tasks x 5 answers, 50 workers, K = 3):
    ``crowdzoo.fit(DawidSkene(), ann, method="nuts", progress=False)`` with its defaults
    (4 chains x (200 warmup + 1000 draws), started from the MAP, the Laplace mass matrix);
    wall and CPU time (fresh process, compile included), min bulk ESS from
    ``fit.convergence()``, ESS per second, and a profile (MAP time, time of one gradient of
    the log density, gradients per chain in warmup and in the draws).

Every stage runs in its own subprocess, so the cold numbers are honest and the peak memory
(``resource.getrusage(...).ru_maxrss``) is per stage. Crowd-Kit is given integer-coded
``task, worker, label`` columns (its fastest input).

Usage::

    python benchmarks/speed.py                 # all; writes benchmarks/results/speed.md
    python benchmarks/speed.py --sizes 10000 --no-nuts
    python benchmarks/speed.py --stage zoo_iter --size 100000   # one stage, JSON out
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "speed.md"
SIZES = (10_000, 100_000, 1_000_000)
PER_TASK = 5
N_CLASSES = 4
ZOO_ITERS = 20  # crowdzoo EM iterations timed per size
CK_ITERS = {10_000: 20, 100_000: 20, 1_000_000: 10}  # Crowd-Kit: capped, ~0.25-1 s/iter at 1M
CK_E2E_MAX_ITER = 100  # Crowd-Kit's default n_iter


# --- data --------------------------------------------------------------------------------
def make_crowd(n_answers: int, n_classes: int = N_CLASSES, per_task: int = PER_TASK,
               tasks_per_worker: int = 100, n_workers: int | None = None, seed: int = 0):
    """A Dawid-Skene crowd, vectorized: returns ``(task, worker, label, truth, sizes)``.

    Worker ``w`` answers correctly with probability ``acc_w ~ U(0.5, 0.9)`` and spreads its
    errors by a Dirichlet(1) draw per true class; true classes ~ Categorical(Dirichlet(5)).
    Each task gets ``per_task`` distinct workers (a random start plus random strides).
    """
    rng = np.random.default_rng(seed)
    T = n_answers // per_task
    W = n_workers or max(T // tasks_per_worker, per_task)
    K = n_classes
    pi = rng.dirichlet(np.full(K, 5.0))
    truth = rng.choice(K, size=T, p=pi)
    acc = rng.uniform(0.5, 0.9, size=W)
    spread = rng.dirichlet(np.ones(K - 1), size=(W, K))  # (W, K, K-1)
    conf = np.empty((W, K, K))
    for k in range(K):
        others = [j for j in range(K) if j != k]
        conf[:, k, k] = acc
        conf[:, k, others] = (1 - acc)[:, None] * spread[:, k]
    strides = rng.integers(1, max(W // per_task, 1) + 1, size=(T, per_task))
    strides[:, 0] = 0
    worker = (rng.integers(0, W, size=(T, 1)) + strides.cumsum(axis=1)) % W
    task = np.repeat(np.arange(T), per_task)
    worker = worker.reshape(-1)
    cdf = conf.cumsum(axis=-1)[worker, truth[task]]
    label = np.minimum((rng.random(task.size)[:, None] > cdf).sum(axis=1), K - 1)
    return (task.astype(np.int32), worker.astype(np.int32), label.astype(np.int32), truth,
            (T, W, K))


def annotations_of(task, worker, label, sizes):
    import pandas as pd
    from crowdzoo.data import Annotations

    T, W, K = sizes
    return Annotations(task=task, worker=worker, label=label,
                       task_ids=pd.Index([f"t{i}" for i in range(T)], name="task"),
                       worker_ids=pd.Index([f"w{i}" for i in range(W)], name="worker"),
                       classes=pd.Index(range(K)))


def frame_of(task, worker, label):
    import pandas as pd

    return pd.DataFrame({"task": task, "worker": worker, "label": label})


def peak_mib() -> float:
    """Peak resident memory of this process so far (Linux: ru_maxrss is in KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


# --- stages (each runs in its own process) ------------------------------------------------
def stage_zoo_iter(n: int) -> dict:
    import jax
    import jax.numpy as jnp
    from crowdzoo.inference.map import run_em
    from crowdzoo.models import DawidSkene, crowd_data

    t, w, y, _, sizes = make_crowd(n)
    ann = annotations_of(t, w, y, sizes)
    model = DawidSkene()
    cdata = crowd_data(ann, use_gold=False)
    params0 = model.init_params(cdata)
    start = time.perf_counter()
    jax.block_until_ready(run_em(model, params0, cdata, jnp.float32(0.0), ZOO_ITERS))
    first = time.perf_counter() - start
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        res = jax.block_until_ready(run_em(model, params0, cdata, jnp.float32(0.0), ZOO_ITERS))
        runs.append(time.perf_counter() - start)
    assert int(res.n_iter) == ZOO_ITERS
    best = min(runs)
    return {"iters": ZOO_ITERS, "per_iter_s": best / ZOO_ITERS,
            "compile_s": first - best, "peak_mib": peak_mib()}


def stage_ck_iter(n: int) -> dict:
    import warnings

    from crowdkit.aggregation import DawidSkene

    warnings.simplefilter("ignore")
    t, w, y, _, _ = make_crowd(n)
    df = frame_of(t, w, y)
    iters = CK_ITERS.get(n, 10)

    def timed(k):
        agg = DawidSkene(n_iter=k, tol=-np.inf)
        start = time.perf_counter()
        agg.fit(df)
        assert len(agg.loss_history_) == k
        return time.perf_counter() - start

    base = timed(1)
    full = timed(1 + iters)
    return {"iters": iters, "per_iter_s": (full - base) / iters, "init_plus_1_s": base,
            "peak_mib": peak_mib()}


def stage_zoo_e2e(n: int) -> dict:
    import crowdzoo

    t, w, y, truth, sizes = make_crowd(n)
    ann = annotations_of(t, w, y, sizes)
    out = {}
    for which in ("cold", "warm"):
        start = time.perf_counter()
        fit = crowdzoo.fit("dawid_skene", ann, method="map")
        post = fit.task_posterior().to_numpy()
        out[f"{which}_s"] = time.perf_counter() - start
    out["n_iter"] = fit.diagnostics["n_iter"]
    out["converged"] = fit.diagnostics["converged"]
    out["truth_acc"] = float((post.argmax(1) == truth).mean())
    out["peak_mib"] = peak_mib()
    return out


def stage_ck_e2e(n: int) -> dict:
    import warnings

    from crowdkit.aggregation import DawidSkene

    warnings.simplefilter("ignore")
    t, w, y, truth, _ = make_crowd(n)
    df = frame_of(t, w, y)
    agg = DawidSkene(n_iter=CK_E2E_MAX_ITER)
    start = time.perf_counter()
    probs = agg.fit_predict_proba(df)
    elapsed = time.perf_counter() - start
    probs = probs.reindex(index=np.arange(truth.size), columns=np.arange(N_CLASSES),
                          fill_value=0.0).to_numpy()
    return {"s": elapsed, "n_iter": len(agg.loss_history_),
            "truth_acc": float((probs.argmax(1) == truth).mean()), "peak_mib": peak_mib()}


def stage_nuts(n: int) -> dict:
    import jax
    import jax.numpy as jnp
    from crowdzoo.models import DawidSkene, crowd_data
    from numpyro.infer.util import initialize_model

    import crowdzoo

    # as the CLI and the notebooks do (one XLA device per chain), but no disk cache: cold
    crowdzoo.setup(compilation_cache=False)
    t, w, y, _, sizes = make_crowd(n, n_classes=3, n_workers=50)
    ann = annotations_of(t, w, y, sizes)
    model = DawidSkene()
    start, cpu = time.perf_counter(), time.process_time()
    fit = crowdzoo.fit(model, ann, method="nuts", progress=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    conv = fit.convergence().attrs
    out = {"tasks": sizes[0], "workers": sizes[1], "classes": sizes[2], "answers": int(n),
           "wall_s": wall, "cpu_s": cpu, "num_warmup": fit.diagnostics["num_warmup"],
           "num_samples": fit.diagnostics["num_samples"],
           "mass_matrix": fit.diagnostics["mass_matrix"],
           "warmup_grads_per_chain": fit.diagnostics["warmup_gradients"] // 4,
           "min_ess_bulk": conv["min_ess_bulk"],
           "min_ess_tail": conv["min_ess_tail"], "max_r_hat": conv["max_r_hat"],
           "divergences": conv["divergences"], "peak_mib": peak_mib(),
           "devices": jax.local_device_count(), "chain_method": conv["algorithm"]}
    out["ess_per_s"] = out["min_ess_bulk"] / wall
    steps = fit.sample_stats["num_steps"]
    out["mean_leapfrog_per_draw"] = float(steps.mean())
    out["max_leapfrog_per_draw"] = int(steps.max())
    out["mean_accept"] = float(fit.sample_stats["accept_prob"].mean())
    # --- profile: MAP start, one gradient, the implied compute ------------------------
    start = time.perf_counter()
    crowdzoo.fit(model, ann, method="map")
    out["map_warm_s"] = time.perf_counter() - start
    cdata = crowd_data(ann)
    info = initialize_model(jax.random.PRNGKey(0), model, model_args=(cdata,))
    grad = jax.jit(jax.value_and_grad(info.potential_fn))
    u = info.param_info.z
    jax.block_until_ready(grad(u))
    start = time.perf_counter()
    for _ in range(200):
        jax.block_until_ready(grad(u))
    out["grad_ms"] = (time.perf_counter() - start) / 200 * 1e3
    batched = jax.jit(jax.vmap(jax.value_and_grad(info.potential_fn)))
    u4 = jax.tree.map(lambda a: jnp.stack([a] * 4), u)
    jax.block_until_ready(batched(u4))
    start = time.perf_counter()
    for _ in range(200):
        jax.block_until_ready(batched(u4))
    out["grad4_vmap_ms"] = (time.perf_counter() - start) / 200 * 1e3
    # the fixed cost of a NUTS fit (MAP start + tracing + compiling the sampler): a 2 + 2 run
    start = time.perf_counter()
    crowdzoo.fit(model, ann, method="nuts", progress=False, num_warmup=2, num_samples=2)
    out["fixed_s"] = time.perf_counter() - start
    out["n_unconstrained"] = int(sum(jnp.size(v) for v in jax.tree.leaves(u)))
    # gradient evaluations of the sampling phase (warmup adapts: usually longer trees)
    out["sampling_grads_per_chain"] = int(steps.sum() / steps.shape[0])
    return out


def _nuts_cached(n: int, num_samples: int | None) -> dict:
    """NUTS as a user's later process runs it: crowdzoo's on-disk compile cache already filled.

    ``crowdzoo.setup()`` keeps compiled kernels on disk by default (the CLI and the notebooks
    call it), so only a user's first process pays XLA's compilation in full; tracing and
    lowering are paid every time. The cache folder is ``$CROWDZOO_BENCH_CACHE`` (the driver
    fills it with one run first).
    """
    from crowdzoo.models import DawidSkene

    import crowdzoo

    crowdzoo.setup(compilation_cache=os.environ["CROWDZOO_BENCH_CACHE"])
    t, w, y, _, sizes = make_crowd(n, n_classes=3, n_workers=50)
    ann = annotations_of(t, w, y, sizes)
    opts = {} if num_samples is None else {"num_samples": num_samples}
    start = time.perf_counter()
    fit = crowdzoo.fit(DawidSkene(), ann, method="nuts", progress=False, **opts)
    wall = time.perf_counter() - start
    conv = fit.convergence().attrs
    return {"wall_s": wall, "num_samples": fit.diagnostics["num_samples"],
            "num_warmup": fit.diagnostics["num_warmup"], "max_r_hat": conv["max_r_hat"],
            "min_ess_bulk": conv["min_ess_bulk"], "min_ess_tail": conv["min_ess_tail"],
            "divergences": conv["divergences"]}


def stage_nuts_cached(n: int) -> dict:
    return _nuts_cached(n, None)


def stage_nuts_cached_500(n: int) -> dict:
    """The issue's own setting: 4 chains x 500 draws (its baseline: 500 warmup + 500)."""
    return _nuts_cached(n, 500)


STAGES = {"zoo_iter": stage_zoo_iter, "ck_iter": stage_ck_iter, "zoo_e2e": stage_zoo_e2e,
          "ck_e2e": stage_ck_e2e, "nuts": stage_nuts, "nuts_cached": stage_nuts_cached,
          "nuts_cached_500": stage_nuts_cached_500}


# --- driver --------------------------------------------------------------------------------
def run_stage(name: str, n: int, timeout: float) -> dict:
    """Run one stage in a fresh Python process; return its JSON result (or an error)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--size", str(n)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        return {"error": f"exit {proc.returncode}"}
    res = json.loads(lines[-1])
    res["process_s"] = time.perf_counter() - start
    return res


def fmt(x, spec=".3g", unit=""):
    return "-" if x is None else f"{x:{spec}}{unit}"


def report(results: dict, nuts: dict | None, wall: float) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    import jax
    import numpyro

    try:
        from importlib.metadata import version

        ck = version("crowd-kit")
    except Exception:
        ck = "?"
    load = os.getloadavg()
    lines = [
        "# Speed: crowdzoo Dawid-Skene vs Crowd-Kit, and NUTS",
        f"Generated by `python benchmarks/speed.py` on {stamp} in {wall:.0f} s; "
        f"numpyro {numpyro.__version__}, jax {jax.__version__}, crowd-kit {ck}, Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores. "
        f"**The machine was shared with other engineers' jobs** (load average at the end: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores), so "
        f"absolute times are noisy; the ratios compare runs made minutes apart in this run.",
        "",
        "Simulated Dawid-Skene crowds: K = 4, 5 answers per task, one worker per 100 tasks.",
        "",
        "## (a) Dawid-Skene EM: time per iteration, same iteration count",
        "",
        "| answers | tasks x workers | crowdzoo ms/iter | Crowd-Kit ms/iter | ratio (CK / zoo) "
        "| crowdzoo compile s | peak MiB zoo / CK |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in results.items():
        z, c = r.get("zoo_iter", {}), r.get("ck_iter", {})
        zi, ci = z.get("per_iter_s"), c.get("per_iter_s")
        ratio = ci / zi if zi and ci else None
        T = n // PER_TASK
        lines.append(
            f"| {n:,} | {T:,} x {max(T // 100, PER_TASK):,} | {fmt(zi and zi * 1e3)} "
            f"({z.get('iters', '-')} it) | {fmt(ci and ci * 1e3)} ({c.get('iters', '-')} it) | "
            f"**{fmt(ratio, '.1f')}x** | {fmt(z.get('compile_s'), '.2f')} | "
            f"{fmt(z.get('peak_mib'), '.0f')} / {fmt(c.get('peak_mib'), '.0f')} |")
    lines += [
        "",
        "## (b) End to end, each to its own tolerance",
        "",
        "crowdzoo: `fit(\"dawid_skene\", ann, method=\"map\")` + `task_posterior()`, default "
        "priors, tol 1e-6 per answer; cold = first call in a fresh process (imports and data "
        "built before the clock; JIT compile included), warm = second call. Crowd-Kit: "
        f"`DawidSkene(n_iter={CK_E2E_MAX_ITER}).fit_predict_proba`, tol 1e-5.",
        "",
        "| answers | crowdzoo cold s | crowdzoo warm s | zoo iters | Crowd-Kit s | CK iters "
        "| ratio cold (CK / zoo) | ratio warm | acc. vs truth zoo / CK | peak MiB zoo / CK |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in results.items():
        z, c = r.get("zoo_e2e", {}), r.get("ck_e2e", {})
        cold, warm, ck = z.get("cold_s"), z.get("warm_s"), c.get("s")
        lines.append(
            f"| {n:,} | {fmt(cold, '.2f')} | {fmt(warm, '.3f')} | {z.get('n_iter', '-')} | "
            f"{fmt(ck, '.2f')} | {c.get('n_iter', '-')} | "
            f"**{fmt(ck / cold if ck and cold else None, '.1f')}x** | "
            f"{fmt(ck / warm if ck and warm else None, '.1f')}x | "
            f"{fmt(z.get('truth_acc'), '.4f')} / {fmt(c.get('truth_acc'), '.4f')} | "
            f"{fmt(z.get('peak_mib'), '.0f')} / {fmt(c.get('peak_mib'), '.0f')} |")
    errors = [(n, s, r["error"]) for n, rr in results.items() for s, r in rr.items()
              if "error" in r]
    if nuts is not None:
        grads = nuts.get("warmup_grads_per_chain", 0) + nuts.get("sampling_grads_per_chain", 0)
        work = 4 * grads * nuts.get("grad_ms", 0.0) / 1e3 / 2
        lines += ["", "## (c) NUTS, Dawid-Skene, 10k answers", ""]
        if "error" in nuts:
            lines.append(f"failed: {nuts['error']}")
        else:
            lines += [
                f"{nuts['tasks']:,} tasks x 5 answers, {nuts['workers']} workers, K = "
                f"{nuts['classes']}; {nuts['n_unconstrained']} unconstrained parameters; "
                f"`crowdzoo.fit(DawidSkene(), ann, method=\"nuts\")` = 4 chains x "
                f"({nuts['num_warmup']} warmup + {nuts['num_samples']} draws), mass matrix "
                f"{nuts['mass_matrix']}, {nuts['chain_method']}, {nuts['devices']} XLA host "
                "devices; wall time of the call in a fresh process (MAP start, JIT compile "
                "and the convergence check included).",
                "",
                "| wall s | CPU s | min ESS bulk | min ESS tail | ESS bulk / s | max r_hat | "
                "divergences | leapfrog / draw (mean, max) | accept | peak MiB |",
                "|---|---|---|---|---|---|---|---|---|---|",
                f"| {nuts['wall_s']:.1f} | {nuts['cpu_s']:.1f} | {nuts['min_ess_bulk']:.0f} | "
                f"{nuts['min_ess_tail']:.0f} | {nuts['ess_per_s']:.1f} | "
                f"{nuts['max_r_hat']:.3f} | {nuts['divergences']} | "
                f"{nuts['mean_leapfrog_per_draw']:.1f}, {nuts['max_leapfrog_per_draw']} | "
                f"{nuts['mean_accept']:.2f} | {nuts['peak_mib']:.0f} |",
                "",
                f"Profile: a second NUTS fit with 2 warmup + 2 draws (MAP start + tracing + "
                f"compiling the sampler for its warmup length; a later fit with the same "
                f"settings and shapes reuses the compiled sampler) took "
                f"{nuts['fixed_s']:.1f} s. Warm MAP {nuts['map_warm_s']:.2f} s. One jitted "
                f"value-and-gradient of the log density: {nuts['grad_ms']:.2f} ms; four at once "
                f"(vmap, as `chain_method=\"vectorized\"` would): {nuts['grad4_vmap_ms']:.2f} ms. "
                f"Gradients per chain: {nuts['warmup_grads_per_chain']:,} in warmup, "
                f"{nuts['sampling_grads_per_chain']:,} in the {nuts['num_samples']} draws; "
                f"{work:.1f} s of gradient work for 4 chains on 2 cores at the single-call rate.",
            ]
            for c in nuts.get("cached", []):
                if "error" in c:
                    lines += ["", f"With the compile cache: failed: {c['error']}"]
                    continue
                lines += [
                    "",
                    f"A later process, crowdzoo's on-disk compile cache filled (the default of "
                    f"`crowdzoo.setup()`, which the CLI and the notebooks call; tracing and "
                    f"lowering are still paid), 4 chains x ({c['num_warmup']} + "
                    f"{c['num_samples']}): **{c['wall_s']:.1f} s** wall, max r_hat "
                    f"{c['max_r_hat']:.5f}, min ESS bulk {c['min_ess_bulk']:.0f} / tail "
                    f"{c['min_ess_tail']:.0f}, divergences {c['divergences']}.",
                ]
    if errors:
        lines += ["", "Failed stages: " + "; ".join(f"{n} {s}: {e}" for n, s, e in errors)]
    lines += [
        "",
        "Targets (owner): at 1M answers >= 20x faster per EM iteration and >= 10x end to end; "
        "NUTS on 10k answers <= 12 s on 2 cores with max r_hat <= 1.01 and min ESS >= 400.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated numbers of answers")
    parser.add_argument("--no-nuts", action="store_true")
    parser.add_argument("--no-ck-e2e", action="store_true",
                        help="skip Crowd-Kit end to end (slow at 1M)")
    parser.add_argument("--output", type=Path, help=f"default {RESULTS} for a full run")
    parser.add_argument("--timeout", type=float, default=600, help="per stage, seconds")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        print(json.dumps(STAGES[args.stage](args.size)))
        return 0
    start = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = {}
    for n in sizes:
        results[n] = {}
        for stage in ("zoo_iter", "ck_iter", "zoo_e2e", "ck_e2e"):
            if stage == "ck_e2e" and args.no_ck_e2e:
                continue
            res = run_stage(stage, n, args.timeout)
            results[n][stage] = res
            print(f"{n:>9,} {stage:<9} {json.dumps(res)}", file=sys.stderr)
    nuts = None
    if not args.no_nuts:
        nuts = run_stage("nuts", 10_000, args.timeout)
        print(f"nuts {json.dumps(nuts)}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as cache:  # a later process: the disk cache filled
            os.environ["CROWDZOO_BENCH_CACHE"] = cache
            run_stage("nuts_cached", 10_000, args.timeout)  # fills it
            nuts["cached"] = [run_stage(name, 10_000, args.timeout)
                              for name in ("nuts_cached", "nuts_cached_500")]
        print(f"nuts cached {json.dumps(nuts['cached'])}", file=sys.stderr)
    text = report(results, nuts, time.perf_counter() - start)
    print(text)
    full = sizes == list(SIZES) and not args.no_nuts and not args.no_ck_e2e
    output = args.output or (RESULTS if full else None)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
