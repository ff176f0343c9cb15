"""Simulators: every model of the zoo generates crowds with its own NumPyro program.

:func:`simulate` runs a model with the answers left out, so the model samples the true
labels and then the answers (the same program that, with answers, computes the likelihood).
Parameters are drawn from the prior unless given.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["SimulatedCrowd", "random_design", "simulate", "load_demo", "make_demo", "DEMO_DIR"]

DEMO_DIR = Path(__file__).resolve().parent / "datasets"


class SimulatedCrowd(NamedTuple):
    """A crowd simulated by a model.

    Attributes
    ----------
    annotations : Annotations
        The simulated answers (no gold attached: fitting them is honest).
    true_labels : pandas.Series
        The sampled true label of every task (class names), indexed by task id.
    params : dict of numpy arrays
        The parameters that generated the answers.
    """

    annotations: object
    true_labels: pd.Series
    params: dict


def random_design(n_tasks: int, n_workers: int, answers_per_task: int, seed: int = 0,
                  worker_weights=None):
    """Who answers what: each task gets ``answers_per_task`` distinct random workers.

    Returns ``(task, worker)`` int arrays of length ``n_tasks * answers_per_task``.
    ``worker_weights`` (length ``n_workers``) makes some workers busier than others.
    """
    if answers_per_task > n_workers:
        raise ValueError(f"answers_per_task={answers_per_task} > n_workers={n_workers}")
    rng = np.random.default_rng(seed)
    p = None
    if worker_weights is not None:
        p = np.asarray(worker_weights, float)
        p = p / p.sum()
    if p is None:
        keys = rng.random((n_tasks, n_workers))
    else:  # Gumbel-top-k: weighted sampling without replacement, vectorized
        keys = np.log(p)[None, :] + rng.gumbel(size=(n_tasks, n_workers))
    worker = np.argsort(-keys, axis=1)[:, :answers_per_task]
    task = np.repeat(np.arange(n_tasks), answers_per_task)
    return task.astype(np.int32), worker.reshape(-1).astype(np.int32)


def simulate(model, n_tasks: int = 1000, n_workers: int = 30, n_classes: int = 3,
             answers_per_task: int = 5, *, params: dict | None = None, design=None,
             features=None, seed: int = 0, class_names=None) -> SimulatedCrowd:
    """Simulate a crowd with a model's own generative program.

    Parameters
    ----------
    model : str or CrowdModel
        Registry name or model object.
    n_tasks, n_workers, n_classes, answers_per_task : int
        Sizes of the crowd (ignored where ``design`` gives them).
    params : dict, optional
        Parameter values to use (constrained space, e.g. ``{"confusion": (W, K, K)}``);
        parameters not given are drawn from the prior.
    design : (task, worker) arrays or Annotations, optional
        Who answers what; default :func:`random_design`.
    features : array (T, D), optional
        Task features, for models that use them. A model that generates its own (its
        ``generates_features`` site: the word counts of ``biased_worker_words``) needs none:
        the crowd then carries the generated ones; given, they are conditioned on.
    seed : int
        Seed of the design and of every draw.
    class_names : list, optional
        Names of the classes (default ``0..K-1``).

    Returns
    -------
    SimulatedCrowd
        ``(annotations, true_labels, params)``.
    """
    import jax
    import jax.numpy as jnp

    from ..models import Baseline, get_model
    from ..models.core import CrowdData
    from .annotations import Annotations

    model = get_model(model)
    if isinstance(model, Baseline):
        raise ValueError(f"{model.name} is a baseline without a generative model")
    if design is None:
        task, worker = random_design(n_tasks, n_workers, answers_per_task, seed=seed)
    elif isinstance(design, Annotations):
        task, worker = np.asarray(design.task), np.asarray(design.worker)
        n_tasks, n_workers = design.n_tasks, design.n_workers
    else:
        task, worker = (np.asarray(a, np.int32) for a in design)
        n_tasks, n_workers = int(task.max()) + 1, int(worker.max()) + 1
    feats = center = scale = None
    if features is not None:  # as crowd_data does: standardized in float64, then cast
        from .features import feature_scaling, standardize_features

        center, scale = feature_scaling(np.asarray(features, np.float64))
        feats = jnp.asarray(standardize_features(features, center, scale), jnp.float32)
        center, scale = jnp.asarray(center, jnp.float32), jnp.asarray(scale, jnp.float32)
    data = CrowdData(
        task=jnp.asarray(task, jnp.int32), worker=jnp.asarray(worker, jnp.int32), label=None,
        gold=jnp.full(n_tasks, -1, jnp.int32), features=feats,
        n_tasks=n_tasks, n_workers=n_workers, n_classes=n_classes,
        feature_center=center, feature_scale=scale,
    )
    fixed = {k: jnp.asarray(v) for k, v in (params or {}).items()}
    values = {k: np.asarray(v) for k, v in
              _simulate_program()(model, jax.random.PRNGKey(seed), data, fixed).items()}
    z, y = values.pop("z"), values.pop("y")
    site = getattr(model, "generates_features", None)
    if site is not None and features is None:  # the model generated its own covariates
        features = values.pop(site).astype(np.float64)
    for k in [k for k in values if k not in model.dims and k not in fixed]:
        values.pop(k)  # auxiliary sites (e.g. explicit gates) stay out of the params
    names = list(class_names) if class_names is not None else list(range(n_classes))
    if len(names) != n_classes:
        raise ValueError(f"class_names has {len(names)} names for {n_classes} classes")
    task_ids = pd.Index([f"t{i:05d}" for i in range(n_tasks)], name="task")
    worker_ids = pd.Index([f"w{i:04d}" for i in range(n_workers)], name="worker")
    ann = Annotations(
        task=np.asarray(task, np.int32), worker=np.asarray(worker, np.int32),
        label=np.asarray(y, np.int32), task_ids=task_ids, worker_ids=worker_ids,
        classes=pd.Index(names), features=None if features is None else np.asarray(features,
                                                                                     float),
        feature_names=None if features is None else tuple(
            f"x{i}" for i in range(np.asarray(features).shape[1])),
    )
    truth = pd.Series(np.asarray(names, dtype=object)[z], index=task_ids, name="label")
    return SimulatedCrowd(ann, truth, values)


def _simulate_program():
    """Return the model's own program without answers, under ``jit`` (one compilation per shape)."""
    global _SIMULATE
    if _SIMULATE is None:
        from functools import partial

        import jax
        import numpyro

        @partial(jax.jit, static_argnames=("model",))
        def run(model, key, data, fixed):
            program = numpyro.handlers.substitute(model, data=fixed)
            with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=key):
                program(data)
            return {k: s["value"] for k, s in tr.items() if s["type"] == "sample"}

        _SIMULATE = run
    return _SIMULATE


_SIMULATE = None


# --- the bundled demo crowd ----------------------------------------------------------------
def make_demo(seed: int = 2026) -> SimulatedCrowd:
    """Return the demo crowd: 600 tasks, 40 workers, 3 classes, 5 answers per task, Dawid-Skene.

    Most workers are decent (accuracy 0.6-0.95); four are spammers who answer at random and
    two always answer ``"cat"`` whatever the truth — the workers a good model should find.
    """
    rng = np.random.default_rng(seed)
    K, W = 3, 40
    conf = np.empty((W, K, K))
    for w in range(W):
        acc = rng.uniform(0.6, 0.95)
        off = rng.dirichlet(np.ones(K - 1)) * (1 - acc)
        for k in range(K):
            conf[w, k] = np.insert(off, k, acc)
    conf[[5, 17, 26, 33]] = 1.0 / K  # spammers
    conf[[11, 29]] = np.array([0.9, 0.05, 0.05])  # always "cat"
    params = {"pi": np.array([0.5, 0.3, 0.2]), "confusion": conf}
    return simulate("dawid_skene", n_tasks=600, n_workers=W, n_classes=K, answers_per_task=5,
                    params=params, seed=seed, class_names=["cat", "dog", "fox"])


def load_demo(gold: bool = False):
    """Return the bundled demo crowd (made by :func:`make_demo`, stored in ``data/datasets``).

    Parameters
    ----------
    gold : bool
        Attach the simulated true labels as gold (then ``fit`` clamps them unless
        ``use_gold=False``). By default the truth is left out; get it with
        :func:`load_demo_truth`.
    """
    from .loaders import read_csv

    ann = read_csv(DEMO_DIR / "demo_answers.csv", classes=["cat", "dog", "fox"])
    return ann.with_gold(load_demo_truth()) if gold else ann


def load_demo_truth() -> pd.Series:
    """Return the simulated true label of every demo task."""
    df = pd.read_csv(DEMO_DIR / "demo_truth.csv", dtype=str)
    return df.set_index("task")["label"]


def write_demo(directory: Path = DEMO_DIR) -> None:
    """Regenerate the bundled demo files (``python -m crowdzoo.data.simulate``)."""
    sim = make_demo()
    directory.mkdir(parents=True, exist_ok=True)
    sim.annotations.to_frame().to_csv(directory / "demo_answers.csv", index=False)
    sim.true_labels.rename("label").reset_index().to_csv(directory / "demo_truth.csv",
                                                         index=False)


if __name__ == "__main__":
    write_demo()
