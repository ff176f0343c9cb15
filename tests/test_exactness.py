"""Every model's hand-marginalized likelihood equals NumPyro's own enumeration (funsor), to 1e-5.

One table, one row per registered model (and per variant worth checking): the row writes the
model the long way — the paper's emission by hand, an explicit discrete ``z`` per task
enumerated in parallel, one ``Categorical`` per answer, and where the model has other
discrete variables (the honest worker's isCorrect gate, a worker's community) those as
enumerated sites too — on a small dense crowd; the test compares its log joint with the
zoo's program, which sums them out by hand. A new model adds one row.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import dense_crowd, enumerated_log_joint, explicit_crowd_program, prior_draw
from crowdzoo.models import REGISTRY, crowd_data, get_model
from crowdzoo.models.classifiers import Logistic
from crowdzoo.models.dawid_skene import confusion_concentration
from numpyro.infer.util import log_density

#: a logistic classifier on the raw features, so the rows can write it by hand
RAW = Logistic(standardize=False)


def _sigmoid(v):
    return 1.0 / (1.0 + jnp.exp(-v))


def _classifier_log_prior(params, x, K):
    s = jnp.asarray(x, jnp.float32) @ params["weights"] + params["bias"]
    if K == 2:
        return jnp.stack([jax.nn.log_sigmoid(-s[:, 0]), jax.nn.log_sigmoid(s[:, 0])], -1)
    return jax.nn.log_softmax(s, -1)


def _two_coin(alpha, beta):
    """(T, W, 2, 2) log table from sensitivities / specificities shaped (T, W)."""
    return jnp.log(jnp.stack([jnp.stack([beta, 1 - beta], -1),
                              jnp.stack([1 - alpha, alpha], -1)], -2))


def _tiled(table, T):
    return jnp.broadcast_to(table[None], (T,) + table.shape)


# --- the rows: model -> the same model written the long way ----------------------------------
def confusion_row(model, data, labels, x, params):
    T, _ = labels.shape

    def table(p):
        return jnp.log(p["pi"]), _tiled(jnp.log(p["confusion"]), T)

    return explicit_crowd_program(model, data, labels, table), params


def one_coin_row(model, data, labels, x, params):
    T, _ = labels.shape
    K = data.n_classes

    def table(p):
        acc = p["accuracy"][:, None, None]
        t = jnp.where(jnp.eye(K, dtype=bool)[None], acc, (1 - acc) / (K - 1))
        return jnp.log(p["pi"]), _tiled(jnp.log(t), T)

    return explicit_crowd_program(model, data, labels, table), params


def glad_row(model, data, labels, x, params):
    K = data.n_classes

    def table(p):
        s = (jnp.exp(p["log_beta"])[:, None] * p["alpha"][None, :])[..., None, None]  # (T, W)
        # log a and log((1 - a) / (K - 1)), a = sigmoid(alpha beta), without under/overflow
        t = jnp.where(jnp.eye(K, dtype=bool), jax.nn.log_sigmoid(s),
                      jax.nn.log_sigmoid(-s) - jnp.log(K - 1.0))
        prior = jnp.asarray(model.labels_priors, jnp.float32)
        return jnp.log(prior / prior.sum()), t

    return explicit_crowd_program(model, data, labels, table), params


def honest_worker_row(model, data, labels, x, params):
    """The book's factor graph, every discrete variable a site: trueLabel and isCorrect."""
    T, W = labels.shape
    K = data.n_classes

    def program():
        p = model.sample_params(data)
        with numpyro.plate("task", T, dim=-2):
            z = numpyro.sample("true_label", dist.Categorical(p["pi"]))  # (K, 1, 1)
            with numpyro.plate("explicit_worker", W, dim=-1):
                c = numpyro.sample("is_correct", dist.Bernoulli(p["ability"]))  # (2, 1, 1, 1)
                probs = jnp.where(c[..., None] > 0, jax.nn.one_hot(z, K), 1.0 / K)
                numpyro.sample("label", dist.Categorical(probs=probs), obs=jnp.asarray(labels))

    return program, params


def mace_row(model, data, labels, x, params):
    """MACE with the true label and the spamming gate as enumerated sites (uniform z)."""
    T, W = labels.shape
    K = data.n_classes

    def program():
        p = model.sample_params(data)
        with numpyro.plate("task", T, dim=-2):
            z = numpyro.sample("true_label", dist.Categorical(jnp.full(K, 1.0 / K)))
            with numpyro.plate("explicit_worker", W, dim=-1):
                s = numpyro.sample("spamming", dist.Bernoulli(1.0 - p["competence"]))
                probs = jnp.where(s[..., None] > 0, p["spam_label"], jax.nn.one_hot(z, K))
                numpyro.sample("label", dist.Categorical(probs=probs), obs=jnp.asarray(labels))

    return program, params


def community_row(model, data, labels, x, params):
    """CBCC with each worker's community and each task's label as enumerated sites."""
    T, W = labels.shape
    K, M = data.n_classes, model.n_communities
    # the inference program's confusion base is flat: compare at a draw from a community's prior
    conc = model.worker_concentration(params["community_confusion"])[0]
    params = {**params, "confusion": dist.Dirichlet(conc).sample(jax.random.PRNGKey(7), (W,))}

    def program():
        pi = numpyro.sample("pi", dist.Dirichlet(jnp.ones(K) * model.class_prior))
        rho = numpyro.sample("community_prob", dist.Dirichlet(jnp.full(M, model.community_prior)))
        cc = confusion_concentration(model.community_confusion_prior, K)
        with numpyro.plate("community", M, dim=-2), numpyro.plate("true_class", K, dim=-1):
            C = numpyro.sample("community_confusion", dist.Dirichlet(cc))
        with numpyro.plate("worker", W, dim=-2):
            m = numpyro.sample("worker_community", dist.Categorical(rho))  # (M, 1, 1)
            with numpyro.plate("true_class", K, dim=-1):
                row = C[m, jnp.arange(K)]  # (M, 1, K, K): community m's row k
                confusion = numpyro.sample("confusion", dist.Dirichlet(1 + model.precision * row))
        with numpyro.plate("task", T, dim=-1):
            z = numpyro.sample("true_label", dist.Categorical(pi))  # (K, 1, 1, 1)
            with numpyro.plate("worker", W, dim=-2):
                probs = confusion[jnp.arange(W)[:, None], z]  # (K, 1, W, 1, K)
                numpyro.sample("label", dist.Categorical(probs=probs), obs=jnp.asarray(labels.T))

    return program, params


def raykar_row(model, data, labels, x, params):
    T, _ = labels.shape
    K = data.n_classes

    def table(p):
        prior = _classifier_log_prior(p, x, K)
        if K == 2:
            ones = jnp.ones((T, 1))
            return prior, _two_coin(ones * p["sensitivity"], ones * p["specificity"])
        return prior, _tiled(jnp.log(p["confusion"]), T)

    return explicit_crowd_program(model, data, labels, table), params


def yan_row(model, data, labels, x, params):
    def table(p):
        eta = _sigmoid(jnp.asarray(x, jnp.float32) @ p["expertise_weights"].T
                       - p["expertise_offset"])[..., None, None]  # (T, W, 1, 1)
        t = jnp.where(jnp.eye(2, dtype=bool), eta, 1 - eta)
        return _classifier_log_prior(p, x, 2), jnp.log(t)

    return explicit_crowd_program(model, data, labels, table), params


def difficulty_row(model, data, labels, x, params):
    def table(p):
        prior = _classifier_log_prior(p, x, 2)
        share = jnp.asarray(labels == 1, jnp.float32).mean(1)
        q = share if model.fixed else jnp.exp(prior[:, 1])
        d = ((q - 0.5) ** 2)[:, None]
        return prior, _two_coin(_sigmoid(p["lambda_sensitivity"] * d),
                                _sigmoid(p["lambda_specificity"] * d))

    return explicit_crowd_program(model, data, labels, table), params


def irt_row(model, data, labels, x, params):
    """Han et al.'s Stan ``LOG-LIKELIHOOD.stan``: lambda + (1 - lambda) inv_logit(...)."""
    T, W = labels.shape

    def table(p):
        sens = (p["alpha_sum"] + p["alpha_diff"]) / 2  # (W,)
        spec = (p["alpha_sum"] - p["alpha_diff"]) / 2
        beta = p["difficulty"][:, None]  # (T, 1)
        delta = p["discrimination"][:, None] if "discrimination" in p else 1.0
        lam = p["guessing"][:, None] if "guessing" in p else 0.0
        pos = lam + (1 - lam) * _sigmoid(delta * (sens[None] - beta))  # Pr(y=1 | z=1)
        neg = (1 - lam) * _sigmoid(-delta * (spec[None] - beta))  # Pr(y=1 | z=0)
        return jnp.log(p["pi"]), _two_coin(pos, 1 - neg)

    return explicit_crowd_program(model, data, labels, table), params


def irt_integrated_row(model, data, labels, x, params):
    """The IRT models with the item effects integrated by quadrature (``integrate_items``):
    the true label *and* the task's quadrature node (a Categorical over the rule's weights,
    each node a (difficulty, discrimination, guessing) triple) enumerated per task, the
    answers by Stan's ``LOG-LIKELIHOOD.stan`` at that node."""
    T, W = labels.shape
    nodes, logw = model.item_rule()

    def program():
        p = model.sample_params(data)
        sens = (p["alpha_sum"] + p["alpha_diff"]) / 2  # (W,)
        spec = (p["alpha_sum"] - p["alpha_diff"]) / 2
        with numpyro.plate("explicit_task", T, dim=-2):
            z = numpyro.sample("z", dist.Categorical(p["pi"]))  # (K, 1, 1)
            s = numpyro.sample("node", dist.Categorical(logits=logw))  # (S, 1, 1, 1)
            beta = nodes["difficulty"][s]
            delta = nodes["discrimination"][s] if "discrimination" in nodes else 1.0
            lam = nodes["guessing"][s] if "guessing" in nodes else 0.0
            pos = lam + (1 - lam) * _sigmoid(delta * (sens - beta))  # Pr(y=1 | z=1)
            neg = (1 - lam) * _sigmoid(-delta * (spec - beta))  # Pr(y=1 | z=0)
            with numpyro.plate("explicit_worker", W, dim=-1):
                numpyro.sample("y", dist.Bernoulli(probs=jnp.where(z == 1, pos, neg)),
                               obs=jnp.asarray(labels))

    return program, params


def class_conditional_row(model, data, labels, x, params):
    T, _ = labels.shape
    K = data.n_classes

    def table(p):
        acc = p["accuracy"][:, :, None]  # (W, K, 1)
        t = jnp.where(jnp.eye(K, dtype=bool)[None], acc, (1 - acc) / (K - 1))
        return jnp.log(p["pi"]), _tiled(jnp.log(t), T)

    return explicit_crowd_program(model, data, labels, table), params


def pooled_row(model, data, labels, x, params):
    T, W = labels.shape

    def table(p):
        conf = jnp.broadcast_to(p["confusion"], (W,) + p["confusion"].shape)
        return jnp.log(p["pi"]), _tiled(jnp.log(conf), T)

    return explicit_crowd_program(model, data, labels, table), params


def hier_ds_row(model, data, labels, x, params):
    T, _ = labels.shape

    def table(p):
        beta = p["mu"] + p["sigma"] * p["beta_raw"]  # (W, K, K)
        return jnp.log(p["pi"]), _tiled(beta - jax.nn.logsumexp(beta, -1, keepdims=True), T)

    return explicit_crowd_program(model, data, labels, table), params


def item_effect_row(model, data, labels, x, params):
    """Paun's ItemDiff / LogRndEff with the true label *and* the item effect's quadrature node
    as enumerated sites per task (the node: a Categorical over the Gauss-Hermite weights)."""
    T, W = labels.shape
    nodes, logw = (jnp.asarray(a) for a in model.nodes(data))
    lre = model.name == "logistic_random_effects"

    def pad(v):
        return jnp.concatenate([v, jnp.zeros(v.shape[:-1] + (1,))], -1)

    def program():
        p = model.sample_params(data)
        with numpyro.plate("explicit_task", T, dim=-2):
            z = numpyro.sample("z", dist.Categorical(p["pi"]))  # (K, 1, 1)
            s = numpyro.sample("node", dist.Categorical(logits=logw))  # (S, 1, 1, 1)
            with numpyro.plate("explicit_worker", W, dim=-1):
                if lre:
                    worker = p["zeta"][z] + p["omega"][z] * p["beta_raw"][jnp.arange(W), z]
                    logits = worker - p["chi"][z] * nodes[s]
                else:
                    logits = p["eta"][z] + p["chi"][z] * nodes[s]
                numpyro.sample("y", dist.Categorical(logits=pad(logits)),
                               obs=jnp.asarray(labels))

    return program, params


def words_row(model, data, labels, x, params):
    """MBML 7.5: each word of a task one Categorical site given the enumerated true label."""
    T, W = labels.shape
    counts = np.asarray(x, int)
    L = max(int(counts.sum(1).max()), 1)
    tokens, mask = np.zeros((T, L), int), np.zeros((T, L), bool)
    for t in range(T):
        words = np.repeat(np.arange(counts.shape[1]), counts[t])
        tokens[t, :words.size], mask[t, :words.size] = words, True

    def program():
        p = model.sample_params(data)
        with numpyro.plate("explicit_task", T, dim=-2):
            z = numpyro.sample("true_label", dist.Categorical(p["pi"]))  # (K, 1, 1)
            with numpyro.plate("explicit_word", L, dim=-1), numpyro.handlers.mask(mask=mask):
                numpyro.sample("word", dist.Categorical(p["word_probs"][z]), obs=tokens)
            with numpyro.plate("explicit_worker", W, dim=-1):
                numpyro.sample("label", dist.Categorical(p["confusion"][jnp.arange(W), z]),
                               obs=jnp.asarray(labels))

    return program, params


#: id -> (model factory, number of classes, needs features ("counts": word counts), row)
ROWS = {
    "dawid_skene": (lambda: get_model("dawid_skene"), 3, False, confusion_row),
    "biased_worker": (lambda: get_model("biased_worker"), 3, False, confusion_row),
    "biased_worker_words": (lambda: get_model("biased_worker_words"), 3, "counts", words_row),
    "one_coin": (lambda: get_model("one_coin"), 3, False, one_coin_row),
    "glad": (lambda: type(get_model("glad"))(labels_priors=np.array([0.5, 0.3, 0.2])), 3, False,
             glad_row),
    "honest_worker": (lambda: get_model("honest_worker"), 3, False, honest_worker_row),
    "mace": (lambda: get_model("mace"), 3, False, mace_row),
    "community-M2": (lambda: type(get_model("community"))(n_communities=2, precision=4.0), 3,
                     False, community_row),
    "community-M3": (lambda: type(get_model("community"))(n_communities=3, precision=4.0), 3,
                     False, community_row),
    "raykar-K2": (lambda: type(get_model("raykar"))(classifier=RAW), 2, True, raykar_row),
    "raykar-K3": (lambda: type(get_model("raykar"))(classifier=RAW), 3, True, raykar_row),
    "yan": (lambda: type(get_model("yan"))(classifier=RAW), 2, True, yan_row),
    "difficulty_adaptive": (lambda: type(get_model("difficulty_adaptive"))(classifier=RAW), 2,
                            True, difficulty_row),
    "difficulty_fixed": (lambda: type(get_model("difficulty_fixed"))(classifier=RAW), 2, True,
                         difficulty_row),
    "irt_1pl": (lambda: get_model("irt_1pl"), 2, False, irt_row),
    "irt_2pl": (lambda: get_model("irt_2pl"), 2, False, irt_row),
    "irt_3pl": (lambda: get_model("irt_3pl"), 2, False, irt_row),
    "irt_1pl-integrated": (lambda: type(get_model("irt_1pl"))(integrate_items=True), 2, False,
                           irt_integrated_row),
    "irt_2pl-integrated": (lambda: type(get_model("irt_2pl"))(integrate_items=True), 2, False,
                           irt_integrated_row),
    "irt_3pl-integrated": (lambda: type(get_model("irt_3pl"))(integrate_items=True,
                                                              item_nodes=12), 2, False,
                           irt_integrated_row),
    "class_conditional_dawid_skene": (lambda: get_model("class_conditional_dawid_skene"), 3,
                                      False, class_conditional_row),
    "multinomial": (lambda: get_model("multinomial"), 3, False, pooled_row),
    "hierarchical_dawid_skene": (lambda: get_model("hierarchical_dawid_skene"), 3, False,
                                 hier_ds_row),
    "item_difficulty-K2": (lambda: get_model("item_difficulty"), 2, False, item_effect_row),
    "item_difficulty-K3": (lambda: type(get_model("item_difficulty"))(max_nodes=16), 3, False,
                           item_effect_row),
    "logistic_random_effects-K2": (lambda: get_model("logistic_random_effects"), 2, False,
                                   item_effect_row),
    "logistic_random_effects-K3": (lambda: type(get_model("logistic_random_effects"))(
        max_nodes=16), 3, False, item_effect_row),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("row", list(ROWS))
def test_marginal_equals_enumeration(row, seed):
    make, K, features, build = ROWS[row]
    model = make()
    ann, labels, x = dense_crowd(K, seed, features=features)
    data = crowd_data(ann)
    params = prior_draw(model, data, seed + 1)
    program, params = build(model, data, labels, x, params)
    ours = float(log_density(model, (data,), {}, params)[0])
    theirs = enumerated_log_joint(program, params)
    assert np.isfinite(theirs)
    assert abs(ours - theirs) < 1e-5 * max(1.0, abs(theirs)), (ours, theirs)


def test_every_registered_model_has_a_row():
    covered = {ROWS[r][0]().name for r in ROWS} | {"majority_vote"}  # a baseline, no likelihood
    assert set(REGISTRY) <= covered, f"no exactness row for {sorted(set(REGISTRY) - covered)}"


def test_gold_clamps_z_like_an_observed_site():
    """Gold tasks: the enumerated model *observes* z there; ours clamps the prior."""
    model = get_model("dawid_skene")
    ann, labels, _ = dense_crowd(3, seed=3, gold_tasks=(0, 4, 5))
    data = crowd_data(ann)
    params = prior_draw(model, data, 3)
    ours = float(log_density(model, (data,), {}, params)[0])
    # long way: sum over z for non-gold tasks, z fixed at gold elsewhere
    pi, conf = np.asarray(params["pi"], float), np.asarray(params["confusion"], float)
    gold = np.asarray(data.gold)
    T, W = labels.shape
    total = 0.0
    for t in range(T):
        per_k = np.log(pi) + np.array([sum(np.log(conf[w, k, labels[t, w]]) for w in range(W))
                                       for k in range(3)])
        total += per_k[gold[t]] if gold[t] >= 0 else np.logaddexp.reduce(per_k)
    prior = float(log_density(model.sample_params, (data,), {}, params)[0])
    assert abs(ours - (total + prior)) < 1e-4


def test_marginal_pieces_are_consistent():
    """Per-task terms sum to the total, and the posterior logits normalize to the terms."""
    model = get_model("dawid_skene")
    ann, _, _ = dense_crowd(3)
    data = crowd_data(ann)
    m = model.log_likelihood(prior_draw(model, data, 0), data)
    np.testing.assert_allclose(float(m.log_lik), float(m.per_task.sum()), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.nn.logsumexp(m.logits, -1)), np.asarray(m.per_task),
                               rtol=1e-6)


# --- label switching: the models that say their posterior is symmetric --------------------
def _relabelled_log_joint(model, data, params, order):
    moved = model.permute_classes({k: np.asarray(v) for k, v in params.items()}, order)
    return float(log_density(model, (data,), {}, {k: jnp.asarray(v)
                                                    for k, v in moved.items()})[0])


def test_class_symmetry_claims_hold():
    """A model whose ``class_symmetric`` is True has the same log joint at every relabelling of
    the true classes (so its posterior's mirror modes have equal mass); which registry models
    claim it at two classes with their default priors is pinned: the book's biased worker,
    whose flat two-class prior makes it so, with and without words."""
    claimants = set()
    for name in sorted(REGISTRY):
        model = get_model(name)
        if not hasattr(model, "class_symmetric"):  # a baseline: no parameters
            continue
        features = "counts" if name == "biased_worker_words" else bool(model.needs_features)
        ann, _, _ = dense_crowd(2, 0, features=features)
        data = crowd_data(ann)
        if not model.class_symmetric(data):
            continue
        claimants.add(name)
        params = prior_draw(model, data, 1)
        base = float(log_density(model, (data,), {}, params)[0])
        moved = _relabelled_log_joint(model, data, params, np.array([1, 0]))
        assert abs(base - moved) < 1e-5 * max(1.0, abs(base)), (name, base, moved)
    assert claimants == {"biased_worker", "biased_worker_words"}
    # the check has teeth: Dawid-Skene's prior favours honest workers, its mirror image differs
    model = get_model("dawid_skene")
    data = crowd_data(dense_crowd(2, 0)[0])
    params = prior_draw(model, data, 1)
    base = float(log_density(model, (data,), {}, params)[0])
    assert abs(base - _relabelled_log_joint(model, data, params, np.array([1, 0]))) > 0.1


def test_flat_dawid_skene_is_symmetric_under_every_permutation_unless_gold():
    from crowdzoo.models import DawidSkene

    flat = DawidSkene(confusion_prior=1.0, class_prior=1.0)
    data = crowd_data(dense_crowd(3, 2)[0])
    assert flat.class_symmetric(data)
    assert not get_model("biased_worker").class_symmetric(data)  # K = 3: diagonal prior 2
    params = prior_draw(flat, data, 4)
    base = float(log_density(flat, (data,), {}, params)[0])
    for order in [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]:
        moved = _relabelled_log_joint(flat, data, params, np.array(order))
        assert abs(base - moved) < 1e-5 * max(1.0, abs(base)), order
    gold = crowd_data(dense_crowd(3, 2, gold_tasks=(0,))[0])
    assert not flat.class_symmetric(gold)  # a gold label tells the classes apart


def test_best_class_order_and_permute_classes():
    from crowdzoo.models.base import best_class_order

    # scores[k, j]: old class k fits new label j; the best labelling sends 0->2, 1->0, 2->1
    scores = np.array([[0.1, 0.2, 0.9], [0.8, 0.1, 0.1], [0.0, 0.7, 0.3]])
    order = best_class_order(scores)
    np.testing.assert_array_equal(order, [1, 2, 0])  # new j is old order[j]
    np.testing.assert_array_equal(best_class_order(np.eye(3)), [0, 1, 2])
    # per draw (leading axes), and the Hungarian branch for K > 6 agrees with brute force
    rng = np.random.default_rng(0)
    many = rng.random((5, 2, 6, 6))
    brute = best_class_order(many)
    perm = np.argsort(rng.permutation(7))
    big = np.zeros((7, 7))
    big[perm, np.arange(7)] = 1.0  # old class perm[j] fits new label j
    np.testing.assert_array_equal(best_class_order(big), perm)
    assert brute.shape == (5, 2, 6)
    model = get_model("dawid_skene")
    conf = rng.random((2, 4, 3, 3))  # (draw, worker, true_class, label)
    pi = rng.random((2, 3))
    orders = np.array([[2, 0, 1], [0, 1, 2]])
    out = model.permute_classes({"pi": pi, "confusion": conf, "other": 1.0}, orders)
    np.testing.assert_array_equal(out["pi"][0], pi[0, [2, 0, 1]])
    np.testing.assert_array_equal(out["confusion"][0], conf[0][:, [2, 0, 1], :])
    np.testing.assert_array_equal(out["confusion"][1], conf[1])
    assert out["other"] == 1.0 and out["pi"] is not pi
