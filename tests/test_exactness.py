"""The hand-marginalized likelihoods equal NumPyro's own enumeration (funsor), to 1e-5.

Each test writes the model the long way — an explicit discrete ``z`` site per task,
enumerated in parallel, and one ``Categorical`` per answer — on a small dense crowd, and
compares the log joint with the zoo's program, which sums ``z`` out by hand.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.contrib.funsor import config_enumerate, enum
from numpyro.contrib.funsor import log_density as funsor_log_density
from numpyro.infer.util import log_density

import pandas as pd

from crowdzoo.data import Annotations
from crowdzoo.models import DawidSkene, OneCoin, crowd_data
from crowdzoo.models.dawid_skene import confusion_concentration

T, W, K = 7, 4, 3


def dense_crowd(seed=0, gold_tasks=()):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, size=(T, W))
    labels[0] = 0  # every class appears
    labels[1] = 1
    labels[2] = 2
    frame = pd.DataFrame(labels, index=[f"t{i}" for i in range(T)],
                         columns=[f"w{j}" for j in range(W)])
    gold = pd.Series({f"t{i}": int(labels[i, 0]) for i in gold_tasks}, dtype=object) if gold_tasks else None
    ann = Annotations.from_wide(frame, gold=gold, classes=list(range(K)))
    return ann, labels


def random_params(model, ann, seed=1):
    """A draw from the model's prior: a generic point at which to compare densities."""
    data = crowd_data(ann)
    with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=seed):
        model.sample_params(data)
    return {k: s["value"] for k, s in tr.items() if s["type"] == "sample"}


def explicit_dawid_skene(model, labels):
    def program():
        conc = confusion_concentration(model.confusion_prior, K)
        pi = numpyro.sample("pi", dist.Dirichlet(jnp.full(K, float(model.class_prior))))
        with numpyro.plate("worker", W, dim=-2), numpyro.plate("true_class", K, dim=-1):
            confusion = numpyro.sample("confusion", dist.Dirichlet(conc))
        with numpyro.plate("task", T, dim=-2):
            z = numpyro.sample("z", dist.Categorical(pi), infer={"enumerate": "parallel"})
            with numpyro.plate("w", W, dim=-1):
                # enumerated z has shape (K, 1, 1): index rows of each worker's matrix
                probs = confusion[jnp.arange(W)[None, None, :], z]
                numpyro.sample("y", dist.Categorical(probs), obs=jnp.asarray(labels))
    return program


def explicit_one_coin(model, labels):
    def program():
        pi = numpyro.sample("pi", dist.Dirichlet(jnp.full(K, float(model.class_prior))))
        with numpyro.plate("worker", W):
            acc = numpyro.sample("accuracy", dist.Beta(*model.accuracy_prior))
        table = jnp.where(jnp.eye(K, dtype=bool)[None], acc[:, None, None],
                          ((1 - acc) / (K - 1))[:, None, None])  # (W, K, K)
        with numpyro.plate("task", T, dim=-2):
            z = numpyro.sample("z", dist.Categorical(pi), infer={"enumerate": "parallel"})
            with numpyro.plate("w", W, dim=-1):
                probs = table[jnp.arange(W)[None, None, :], z]
                numpyro.sample("y", dist.Categorical(probs), obs=jnp.asarray(labels))
    return program


def enumerated_log_joint(program, params):
    model = enum(config_enumerate(program), first_available_dim=-3)
    lp, _ = funsor_log_density(model, (), {}, params)
    return float(lp)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dawid_skene_marginal_equals_enumeration(seed):
    model = DawidSkene()
    ann, labels = dense_crowd(seed)
    params = random_params(model, ann, seed)
    ours, _ = log_density(model, (crowd_data(ann),), {}, params)
    theirs = enumerated_log_joint(explicit_dawid_skene(model, labels), params)
    assert abs(float(ours) - theirs) < 1e-5 * max(1.0, abs(theirs))


@pytest.mark.parametrize("seed", [0, 1])
def test_one_coin_marginal_equals_enumeration(seed):
    model = OneCoin()
    ann, labels = dense_crowd(seed)
    params = random_params(model, ann, seed)
    ours, _ = log_density(model, (crowd_data(ann),), {}, params)
    theirs = enumerated_log_joint(explicit_one_coin(model, labels), params)
    assert abs(float(ours) - theirs) < 1e-5 * max(1.0, abs(theirs))


def test_gold_clamps_z_like_an_observed_site():
    """Gold tasks: the enumerated model *observes* z there; ours clamps the prior."""
    model = DawidSkene()
    ann, labels = dense_crowd(3, gold_tasks=(0, 4, 5))
    params = random_params(model, ann, 3)
    data = crowd_data(ann)
    ours = float(log_density(model, (data,), {}, params)[0])
    # long way: sum over z for non-gold tasks, z fixed at gold elsewhere
    pi, conf = np.asarray(params["pi"], float), np.asarray(params["confusion"], float)
    gold = np.asarray(data.gold)
    total = 0.0
    for t in range(T):
        per_k = np.log(pi) + np.array([sum(np.log(conf[w, k, labels[t, w]]) for w in range(W))
                                       for k in range(K)])
        total += per_k[gold[t]] if gold[t] >= 0 else np.logaddexp.reduce(per_k)
    prior = float(log_density(model.sample_params, (data,), {}, params)[0])
    assert abs(ours - (total + prior)) < 1e-4


def test_marginal_pieces_are_consistent():
    """Per-task terms sum to the total, and the posterior logits normalize to the terms."""
    model = DawidSkene()
    ann, _ = dense_crowd(0)
    params = random_params(model, ann, 0)
    m = model.log_likelihood(params, crowd_data(ann))
    np.testing.assert_allclose(float(m.log_lik), float(m.per_task.sum()), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.nn.logsumexp(m.logits, -1)), np.asarray(m.per_task),
                               rtol=1e-6)
