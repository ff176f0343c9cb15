"""Shared fixtures: seeds, the real datasets of ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import crowdzoo

# what the CLI and the notebooks do: parallel NUTS chains, compiled kernels kept on disk
crowdzoo.setup()

#: Linux's default limit on a process's memory mappings (vm.max_map_count)
MAX_MAPS = 65530


def _n_maps() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return 0


@pytest.fixture(autouse=True)
def _bounded_compiled_code():
    """Free JAX's compiled programs when a worker holds too many.

    Every compiled XLA program maps its code into the process (~3 mappings; a conformance
    case compiles hundreds, ~1,000 mappings). A test worker that runs a few hundred tests
    passes Linux's limit of 65,530 mappings, and then the next mmap fails: LLVM aborts, a
    serialization segfaults or Python raises MemoryError, in whichever test is running.
    Past half the limit the caches are cleared (later tests compile again).
    """
    yield
    if _n_maps() > MAX_MAPS // 2:
        import gc

        import jax

        jax.clear_caches()
        gc.collect()

#: The small crowd that the registry-wide tests fit (conformance in test_fit.py, SBC in
#: test_criticism.py, the immutability and compile-once checks): one shape and one NUTS
#: setting, so that each model's samplers, MAP, posterior and predictive programs compile
#: once per test run and are shared (in process, and across xdist workers through JAX's
#: disk cache) instead of once per test file.
SMALL_CROWD = dict(n_tasks=20, n_workers=4, n_classes=2, answers_per_task=3)
#: features of the small crowd for models that need them (SBC draws the same shape)
SMALL_FEATURES = 2
#: NUTS settings shared by the small-crowd tests (the compiled kernel depends on all three)
SMALL_NUTS = dict(num_warmup=150, target_accept_prob=0.8, max_tree_depth=8)
#: posterior draws of the small-crowd tests (flattened: NUTS 2 x 200, SVI 400, SBC 1 x 400)
SMALL_DRAWS = 400


#: ../shared/data beside the repository (CI lays it there); override with CROWDZOO_DATA_DIR
SHARED_DATA = Path(
    os.environ.get("CROWDZOO_DATA_DIR",
                   Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def has_dataset(name: str) -> bool:
    """Whether a real dataset folder is available."""
    return (SHARED_DATA / name / "answers.csv").exists()


def require_dataset(name: str):
    """Load a real dataset, or skip the calling test when ../shared/data is absent."""
    if not has_dataset(name):
        pytest.skip(f"dataset {name!r} not found under {SHARED_DATA} (../shared/data absent)")
    from crowdzoo.data import load_dataset

    return load_dataset(name, data_dir=SHARED_DATA)


#: test files of the longest tests (each notebook runs for 15-50 s in its own kernel): run
#: first, so that xdist's work stealing hands out the short tests last and the workers end
#: together instead of one running a notebook while the other idles
RUN_FIRST = ("test_notebooks.py",)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name not in RUN_FIRST)  # stable: else in order


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)


@pytest.fixture(scope="session")
def demo():
    from crowdzoo.data import load_demo

    return load_demo()


@pytest.fixture(scope="session")
def demo_truth():
    from crowdzoo.data import load_demo_truth

    return load_demo_truth()


# --- exactness helpers (tests/test_exactness.py's table; any test may use them) --------------
def dense_crowd(n_classes: int, seed: int = 0, n_tasks: int = 7, n_workers: int = 4,
                features: bool = False, gold_tasks=()):
    """A small dense crowd (every worker answers every task) where every class appears.

    Returns ``(annotations, labels (T, W), x (T, 2) or None)`` (``features="counts"``: ``x``
    is ``(T, 5)`` word counts); with ``gold_tasks`` the
    first worker's answer to those tasks is attached as gold.
    """
    import pandas as pd
    from crowdzoo.data import Annotations

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=(n_tasks, n_workers))
    labels[:n_classes, 0] = np.arange(n_classes)
    ids = [f"t{i}" for i in range(n_tasks)]
    frame = pd.DataFrame(labels, index=ids, columns=[f"w{j}" for j in range(n_workers)])
    if features == "counts":  # word counts (biased_worker_words), 5 words
        x = rng.poisson(1.5, size=(n_tasks, 5)).astype(float)
    else:
        x = rng.normal(size=(n_tasks, 2)) if features else None
    feats = (pd.DataFrame(x, index=ids, columns=[f"x{i}" for i in range(x.shape[1])])
             if features else None)
    gold = (pd.Series({ids[i]: int(labels[i, 0]) for i in gold_tasks}, dtype=object)
            if gold_tasks else None)
    ann = Annotations.from_wide(frame, gold=gold, features=feats, classes=list(range(n_classes)))
    return ann, labels, x


def prior_draw(model, data, seed: int = 0) -> dict:
    """A draw of every latent site of ``model.sample_params``: a generic point to compare at."""
    import numpyro

    with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=seed):
        model.sample_params(data)
    return {k: s["value"] for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}


def enumerated_log_joint(program, params) -> float:
    """``log p(params, y)`` of an explicit program, its discrete sites enumerated by funsor."""
    from numpyro.contrib.funsor import config_enumerate, enum
    from numpyro.contrib.funsor import log_density as funsor_log_density

    lp, _ = funsor_log_density(enum(config_enumerate(program), first_available_dim=-3), (), {},
                               params)
    return float(lp)


def explicit_crowd_program(model, data, labels, table_fn):
    """The long way: the model's priors, an enumerated ``z`` per task, one site per answer.

    ``table_fn(params) -> (log_prior (T, K), log_table (T, W, K, L))`` is the paper's
    emission written out by hand for the dense crowd ``labels (T, W)``.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    n_tasks, n_workers = labels.shape

    def program():
        params = model.sample_params(data)
        log_prior, table = table_fn(params)
        log_prior = jnp.broadcast_to(log_prior, (n_tasks, jnp.shape(table)[-2]))
        with numpyro.plate("explicit_task", n_tasks, dim=-2):
            z = numpyro.sample("z", dist.Categorical(logits=jnp.asarray(log_prior)[:, None, :]),
                               infer={"enumerate": "parallel"})
            with numpyro.plate("explicit_worker", n_workers, dim=-1):
                logits = jnp.asarray(table)[jnp.arange(n_tasks)[:, None],
                                            jnp.arange(n_workers)[None, :], z]
                numpyro.sample("y", dist.Categorical(logits=logits), obs=jnp.asarray(labels))

    return program
