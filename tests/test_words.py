"""biased_worker_words (MBML ch. 7.5): texts -> word counts, recovery, the words lending
strength to tasks with one answer, clear errors, and ``crowdzoo fit --texts``.

The model's exactness (vs NumPyro enumeration, each word a site) is a row of
tests/test_exactness.py; its conformance and SBC run in tests/test_fit.py and
tests/test_criticism.py with the registry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crowdzoo.data import AnnotationsError, simulate
from crowdzoo.data.texts import read_texts, tokenize, with_words, word_count_frame
from crowdzoo.models import crowd_data, get_model

import crowdzoo

K, T, W, V, WORDS = 2, 600, 20, 30, 15


@pytest.fixture(scope="module")
def thin_crowd():
    """600 tasks with ONE answer each (workers right 70% of the time) and 15 words each."""
    rng = np.random.default_rng(7)
    conf = np.tile(np.array([[0.7, 0.3], [0.3, 0.7]]), (W, 1, 1))
    params = {"pi": np.array([0.6, 0.4]), "confusion": conf,
              "word_probs": rng.dirichlet(np.ones(V), size=K)}
    model = type(get_model("biased_worker_words"))(vocabulary_size=V, words_per_task=WORDS)
    sim = simulate(model, T, W, K, 1, params=params, seed=3)
    words = crowdzoo.fit(model, sim.annotations, progress=False)
    plain = crowdzoo.fit("biased_worker", sim.annotations, progress=False)
    return sim, params, words, plain


def test_simulator_generates_the_words(thin_crowd):
    sim, params, _, _ = thin_crowd
    x = sim.annotations.features
    assert x.shape == (T, V) and np.all(x == np.round(x)) and np.all(x >= 0)
    np.testing.assert_array_equal(x.sum(1), WORDS)
    # the words follow the true label: class-wise word frequencies near word_probs
    z = sim.true_labels.to_numpy().astype(int)
    for k in range(K):
        freq = x[z == k].sum(0) / x[z == k].sum()
        assert np.abs(freq - params["word_probs"][k]).max() < 0.03


def test_recovers_word_probs_class_frequencies_and_workers(thin_crowd):
    """Stated tolerances: word probabilities within 0.03 (entries ~1/30, ~4,500 words per
    class), pi within 0.06, mean worker accuracy within 0.08 of 0.7 (20 workers x 30
    answers each)."""
    _, params, fit, _ = thin_crowd
    phi = np.asarray(fit.params["word_probs"])
    assert np.abs(phi - params["word_probs"]).max() < 0.03
    assert np.abs(np.asarray(fit.params["pi"]) - params["pi"]).max() < 0.06
    diag = np.diagonal(np.asarray(fit.params["confusion"]), axis1=1, axis2=2)
    assert abs(diag.mean() - 0.7) < 0.08


def test_words_lend_strength_to_tasks_with_one_answer(thin_crowd):
    """One answer per task at 70%: answers alone cannot beat ~0.7; the words can."""
    sim, _, words, plain = thin_crowd
    acc_words = words.accuracy(sim.true_labels)
    acc_plain = plain.accuracy(sim.true_labels)
    assert acc_plain < 0.8
    assert acc_words > 0.9 and acc_words > acc_plain + 0.15
    text = words.tasks()[["text_prob[0]", "text_prob[1]"]].to_numpy()
    np.testing.assert_allclose(text.sum(1), 1.0, atol=1e-5)


def test_simulate_conditions_on_given_counts():
    counts = np.random.default_rng(0).poisson(2.0, size=(30, 6)).astype(float)
    sim = simulate("biased_worker_words", 30, 6, 2, 2, features=counts, seed=1)
    np.testing.assert_array_equal(sim.annotations.features, counts)
    assert sim.params["word_probs"].shape == (2, 6)


def test_counts_survive_standardization_exactly():
    from crowdzoo.models.biased_worker_words import word_counts

    sim = simulate("biased_worker_words", 40, 6, 2, 2, seed=2)
    data = crowd_data(sim.annotations)
    assert data.feature_scale is not None  # the data layer standardized them
    np.testing.assert_array_equal(np.asarray(word_counts(data)), sim.annotations.features)


def test_clear_errors_without_words_or_with_non_counts():
    ann = simulate("dawid_skene", 20, 5, 2, 2, seed=0).annotations
    with pytest.raises(ValueError, match="reads each task's words"):
        crowdzoo.fit("biased_worker_words", ann, progress=False)
    feats = pd.DataFrame({"a": np.linspace(-1, 1, 20)}, index=ann.task_ids)
    bad = type(ann).from_frame(ann.to_frame(), features=feats)
    with pytest.raises(ValueError, match="non-negative integers"):
        crowdzoo.fit("biased_worker_words", bad, progress=False)
    with pytest.raises(ValueError, match="word_prior"):
        type(get_model("biased_worker_words"))(word_prior=0.0)


# --- texts -> word counts -------------------------------------------------------------------
def test_tokenize_and_count_by_hand():
    assert tokenize("It's GOOD, good!") == ["it", "s", "good", "good"]
    texts = pd.Series({"a": "good good film", "b": "bad film", "c": "good plot", "d": ""})
    frame = word_count_frame(texts, min_tasks=2, max_words=None)
    assert list(frame.columns) == ["film", "good"]  # in 2 texts each; ties by the word
    np.testing.assert_array_equal(frame.to_numpy(), [[1, 2], [1, 0], [0, 1], [0, 0]])
    assert list(word_count_frame(texts, min_tasks=1, max_words=2).columns) == ["film", "good"]


def _answers(ids):
    return pd.DataFrame({"task": np.repeat(ids, 2), "worker": ["u", "v"] * len(ids),
                         "label": ["pos", "neg"] * len(ids)})


def test_read_texts_joins_text_and_hypothesis(tmp_path):
    path = tmp_path / "texts.csv"
    pd.DataFrame({"task": ["1", "2"], "subtask": ["IR", "QA"], "text": ["A cat.", "Dogs"],
                  "hypothesis": ["cat sat", "no"]}).to_csv(path, index=False)
    texts = read_texts(path)
    assert texts.to_dict() == {"1": "A cat. cat sat", "2": "Dogs no"}
    pd.DataFrame({"task": ["1", "1"], "text": ["x", "y"]}).to_csv(path, index=False)
    with pytest.raises(AnnotationsError, match="several rows for 1 task: '1'"):
        read_texts(path)
    pd.DataFrame({"task": ["1"], "sentence": ["x"]}).to_csv(path, index=False)
    with pytest.raises(AnnotationsError, match=r"no 'text' column \(it has \['task', 'sentence'\]\)"
                       r": rename the text column to 'text'"):
        read_texts(path)


def test_with_words_aligns_by_id_and_names_tasks_without_text():
    ann = crowdzoo.data.Annotations.from_frame(_answers(["t1", "t2", "t3"]))
    texts = pd.Series({"t3": "good good", "t1": "good bad", "t2": "bad", "x": "unused words"})
    before = texts.copy()
    out = with_words(ann, texts, min_tasks=1)
    pd.testing.assert_series_equal(texts, before)  # not mutated
    assert ann.features is None  # the input annotations are untouched
    frame = out.features_frame()
    assert list(frame.columns) == ["bad", "good"] and list(frame.index) == ["t1", "t2", "t3"]
    np.testing.assert_array_equal(frame.to_numpy(), [[1, 1], [1, 0], [0, 2]])
    with pytest.raises(AnnotationsError, match="texts have no row for 1 task: 't2'"):
        with_words(ann, texts.drop("t2"), min_tasks=1)


def test_cli_fit_with_texts(tmp_path, capsys):
    from crowdzoo.cli import main

    sim = simulate("biased_worker_words", 30, 6, 2, 3, seed=4)
    answers = tmp_path / "answers.csv"
    sim.annotations.to_frame().to_csv(answers, index=False)
    vocab = np.array([f"w{i}" for i in range(sim.annotations.features.shape[1])])
    texts = pd.DataFrame({"task": sim.annotations.task_ids, "text": [
        " ".join(np.repeat(vocab, row.astype(int))) for row in sim.annotations.features]})
    texts.to_csv(tmp_path / "texts.csv", index=False)
    out = tmp_path / "out"
    code = main(["fit", str(answers), "--model", "biased_worker_words", "--texts",
                 str(tmp_path / "texts.csv"), "--out", str(out)])
    assert code == 0, capsys.readouterr()
    post = pd.read_csv(out / "task_posterior.csv", dtype={"task": str}).set_index("task")
    ref = crowdzoo.fit("biased_worker_words", with_words(sim.annotations, texts.set_index(
        "task")["text"], min_tasks=3), progress=False).task_posterior()
    np.testing.assert_allclose(post.to_numpy(), ref.to_numpy(), atol=1e-4)
    texts.iloc[1:].to_csv(tmp_path / "texts.csv", index=False)
    assert main(["fit", str(answers), "--model", "biased_worker_words", "--texts",
                 str(tmp_path / "texts.csv"), "--out", str(tmp_path / "o2")]) == 2
    assert "texts have no row for 1 task: 't00000'" in capsys.readouterr().err


def test_real_texts_cover_every_task():
    """rte's texts.csv: every task gets text + hypothesis; counts are whole numbers."""
    from conftest import SHARED_DATA, require_dataset

    ann = require_dataset("rte")
    texts = read_texts(SHARED_DATA / "rte" / "texts.csv")
    raw = pd.read_csv(SHARED_DATA / "rte" / "texts.csv", dtype=str, keep_default_na=False)
    first = raw.iloc[0]
    assert texts[first["task"]] == f"{first['text']} {first['hypothesis']}"
    out = with_words(ann, texts)
    x = out.features
    assert x.shape[0] == ann.n_tasks and 0 < x.shape[1] <= 2000
    assert np.all(x == np.round(x)) and np.all(x.sum(1) > 0)


def test_cli_refuses_texts_for_a_model_that_reads_no_words(tmp_path, capsys):
    from crowdzoo.cli import main

    answers = tmp_path / "answers.csv"
    answers.write_text("task,worker,label\n1,a,pos\n2,a,neg\n1,b,pos\n")
    texts = tmp_path / "texts.csv"
    texts.write_text("task,text\n1,good film\n2,bad film\n")
    assert main(["fit", str(answers), "--model", "dawid_skene", "--texts", str(texts),
                 "--out", str(tmp_path / "out")]) == 2
    assert "which dawid_skene does not read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_compare_with_texts(monkeypatch, tmp_path, capsys):
    """``crowdzoo compare --texts``: the word counts are for biased_worker_words; with
    ``--models all`` the models that learn from numeric features are skipped, named
    explicitly they are refused (as by ``crowdzoo fit``). Fits stubbed: the point is the
    selection."""
    import crowdzoo.inference.compare as C

    from crowdzoo.cli import main

    answers = tmp_path / "answers.csv"
    answers.write_text("task,worker,label\n1,a,pos\n2,a,neg\n1,b,pos\n3,b,neg\n3,a,neg\n")
    texts = tmp_path / "texts.csv"
    # "film" in all 3 texts (the vocabulary needs min_tasks=3), not a constant column
    texts.write_text("task,text\n1,good film film\n2,bad film\n3,bad film\n")
    seen = []
    real = C.compare_models

    def stub(data, names, method="nuts", **kw):
        seen.extend(names)
        assert data.features is not None  # the word counts
        return real(data, ["majority_vote"], method="map", seed=kw.get("seed", 0))

    monkeypatch.setattr(C, "compare_models", stub)
    assert main(["compare", str(answers), "--models", "all", "--texts", str(texts),
                 "--method", "map"]) == 0
    out = capsys.readouterr().out
    assert "biased_worker_words" in seen and "dawid_skene" in seen
    assert not {"raykar", "yan", "difficulty_adaptive", "difficulty_fixed"} & set(seen)
    assert ("skipping raykar: it learns from numeric task features (--features), not the "
            "word counts of --texts") in out
    # numeric --features are not word counts: said in the command line's terms
    features = tmp_path / "features.csv"
    features.write_text("task,x\n1,0.5\n2,-1.25\n3,2.0\n")
    assert main(["compare", str(answers), "--models", "all", "--features", str(features),
                 "--method", "map"]) == 0
    assert ("skipping biased_worker_words: it reads each task's word counts, which "
            "--features are not; pass --texts TEXTS.csv instead") in capsys.readouterr().out
    seen.clear()
    assert main(["compare", str(answers), "--models", "dawid_skene,raykar", "--texts",
                 str(texts), "--method", "map"]) == 2
    assert "raykar" in capsys.readouterr().err and not seen
