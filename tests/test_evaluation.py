"""How models are measured (intervals, calibration, gates per domain), VADER and the gated stack, and
`make evaluate` against the test store."""

from __future__ import annotations

import json

import bentoml
import numpy as np
import pytest
from scipy.stats import binomtest

from tasks.sentiment.pipelines import load_pipeline
from tasks.sentiment.pipelines.vader import VaderPipeline
from train import evaluation


@pytest.mark.parametrize(("correct", "n"), [(0, 10), (8, 10), (10, 10), (813, 839), (1777, 2113)])
def test_wilson_interval_matches_scipy(correct, n):
    ours = evaluation.wilson_interval(correct, n)
    theirs = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours == pytest.approx((theirs.low, theirs.high), abs=1e-5)


def test_calibration_error_is_small_when_probabilities_mean_what_they_say():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    truth = (rng.uniform(0, 1, p.size) < p).astype(int)  # positive with exactly probability p
    proba = np.column_stack([1 - p, p])
    assert evaluation.expected_calibration_error(proba, truth) < 0.02
    overconfident = np.column_stack([1 - (p > 0.5), (p > 0.5)]).astype(float)
    assert evaluation.expected_calibration_error(overconfident, truth) > 0.2


def test_measure_reports_interval_and_calibration():
    proba = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    m = evaluation.measure(proba, ["positive", "negative", "negative", "negative"])
    assert m["accuracy"] == 0.75 and m["n"] == 4
    assert m["ci95"][0] < 0.75 < m["ci95"][1]
    assert 0 < m["ece"] < 1


def test_claims_fail_by_domain():
    measured = {"movies": {"accuracy": 0.86}, "tweets": {"accuracy": 0.93}}
    assert evaluation.claim_failures(measured, {"movies": 0.85}) == []
    failures = evaluation.claim_failures(measured, {"movies": 0.85, "tweets": 0.94, "nyt": 0.6})
    assert failures == ["tweets: accuracy 0.9300 is below the gate 0.940", "nyt: not measured (gate 0.600)"]


def test_vader_follows_the_papers_rule_and_calibrates(tmp_path):
    vader = VaderPipeline()
    texts = ["I love this, it is wonderful :)", "This is terrible and I hate it", "The table is brown."]
    labels = vader.predict(texts)
    assert labels == ["positive", "negative", "positive"]  # compound 0 (no sentiment word) is positive
    assert vader.scores(texts)[2, 0] == 0.0
    assert np.allclose(vader.predict_proba(texts).sum(axis=1), 1.0)

    vader.fit(texts[:2] * 3 + ["not good", "good"], ["positive", "negative"] * 3 + ["negative", "positive"])
    assert 0 < vader.temperature < 150
    vader.save(str(tmp_path))
    assert {p.name for p in tmp_path.iterdir()} >= {"vader_lexicon.txt", "emoji_utf8_lexicon.txt", "vader.json"}
    loaded = VaderPipeline.load(str(tmp_path))
    assert loaded.lexicon_dir == tmp_path  # the stored lexicon, not the package's
    assert np.allclose(loaded.predict_proba(texts), vader.predict_proba(texts))


def test_stack_cascade_sends_only_unsure_texts_to_the_transformer(tiny_models):
    model = bentoml.models.get(tiny_models["stacked"])
    stack = load_pipeline("stacked", model.path, device="cpu")
    texts = ["a gorgeous, witty film", "an utterly boring mess", "it was a film", "@someone thanks!! :)"]
    seen: list[str] = []

    def embed(batch):
        seen.extend(batch)
        return stack.transformer.embed(batch)

    stack.skip_margin = 0.0  # never unsure: the cheap members answer everything
    cheap = stack.predict_proba(texts, embed)
    assert seen == [] and stack.last_transformer_share == 0.0
    stack.skip_margin = 0.5  # always unsure: every text goes through the transformer
    full = stack.predict_proba(texts, embed)
    assert seen == texts and stack.last_transformer_share == 1.0
    assert np.allclose(full.sum(axis=1), 1.0) and not np.allclose(full, cheap)
    assert model.info.metadata["params"]["member_tags"]["transformer"] == tiny_models["transformer"]


def test_stack_carries_the_movie_trained_members_it_was_fitted_with(tiny_models):
    from tasks.sentiment.pipelines import PIPELINES

    model = bentoml.models.get(tiny_models["stacked"])
    stack = load_pipeline("stacked", model.path, device="cpu")
    assert list(stack.domain_members) == ["naive_bayes", "logreg"]
    texts = ["a gorgeous, witty film", "an utterly boring mess"]
    for name, family in (("naive_bayes", "naive_bayes"), ("logreg", "logreg")):
        stored = bentoml.models.get(tiny_models[family])
        assert model.info.metadata["params"]["member_tags"][name] == tiny_models[family]
        original = PIPELINES[stored.info.labels["pipeline"]].load(stored.path)
        # the copy inside the stack answers as the stored model does (without its temperature)
        assert np.allclose(stack.domain_members[name].predict_proba(texts), original.predict_proba(texts))
    # their scores are columns of the combiner's input: the cheap stage takes 4 VADER + 3 text scores
    assert stack.text_scores(texts).shape == (2, 3)
    assert stack.cheap_combiner.n_features_in_ == 7 * (1 + len(stack.domains)) + len(stack.domains)


def test_cross_fitting_predicts_each_movie_training_text_from_members_that_did_not_learn_it(
    tiny_models, tiny_data_dir, tmp_path
):
    """The movie training rows can teach the combiner only through fold copies of the movie-trained members;
    the result is cached by what it depends on, and the recipe records that it learned from those rows."""
    from train import dataset
    from train.stack_crossfit import cross_fit, fold_transformers_like
    from train.stacked import domain_members_of_store, member

    _, transformer = member("transformer")
    _, members = domain_members_of_store()
    examples = dataset.split(dataset.load_domain("movies", tiny_data_dir), seed=42).train
    oof = cross_fit(examples, fold_transformers_like(transformer), members, seed=42, folds=2, cache=tmp_path)
    n = len(examples)
    assert oof.transformer_p.shape == (n,) and oof.embeddings.shape == (n, 384)
    assert oof.domain_member_p.shape == (n, 2) and sorted(set(oof.fold_of.tolist())) == [0, 1]
    assert np.all((oof.transformer_p > 0) & (oof.transformer_p < 1))
    # a text's prediction comes from a copy fitted on the other fold: the stored Naive Bayes, which
    # learned every one of these texts, is more sure of their labels than its fold copies are
    y = np.array([e.label == "positive" for e in examples])
    stored_nb = members["naive_bayes"].predict_proba([e.text for e in examples])[:, 1]
    assert np.mean(np.abs(stored_nb - y)) < np.mean(np.abs(oof.domain_member_p[:, 0] - y))
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = cross_fit(examples, fold_transformers_like(transformer), members, seed=42, folds=2, cache=tmp_path)
    assert np.array_equal(again.transformer_p, oof.transformer_p) and again.seconds == oof.seconds
    other = cross_fit(examples, fold_transformers_like(transformer), members, seed=43, folds=2, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2 and not np.array_equal(other.fold_of, oof.fold_of)
    # the recipe takes them as rows of the combiner's fit, and says so
    from train.stack_recipe import EmbeddingCache, fit_recipe

    _, vader = member("vader")
    splits = evaluation.domain_splits(42, tiny_data_dir)
    fixed = {"C": 1.0, "skip_margin": 0.5}
    with_rows, _ = fit_recipe(
        splits, evaluation.DOMAINS, vader, transformer, EmbeddingCache(transformer), 42, members, **fixed, movie_oof=oof
    )
    without, _ = fit_recipe(
        splits, evaluation.DOMAINS, vader, transformer, EmbeddingCache(transformer), 42, members, **fixed
    )
    assert (
        with_rows.recipe["movie_training_rows"] == "cross-fitted"
        and without.recipe["movie_training_rows"] == "left out"
    )
    movie_test = [e.text for e in splits["movies"].test]
    assert not np.allclose(with_rows.predict_proba(movie_test), without.predict_proba(movie_test))


def test_make_evaluate_writes_every_model_and_refuses_a_failed_claim(tiny_models, tiny_data_dir, tmp_path):
    from lifecycle import evaluate

    out = tmp_path / "evaluation"
    assert evaluate.main(["--data-dir", str(tiny_data_dir), "--output", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert list(report["models"])[0] == "vader"  # the baseline first
    assert set(report["models"]) >= {"vader", "stacked", "transformer", "logreg", "naive_bayes"}
    assert "vs_baseline" in report["models"]["stacked"]
    stored = bentoml.models.get(tiny_models["stacked"]).info.metadata["evaluation"]
    assert stored["domains"] == report["models"]["stacked"]["domains"]
    assert "| stacked (default) |" in (out / "evaluation.md").read_text()
    assert 0 <= report["models"]["stacked"]["vs_baseline"]["tweets"]["mcnemar_p"] <= 1

    # a model that claims more than it measures is refused, by name and domain
    model = bentoml.models.get(tiny_models["logreg"])
    claims = model.info.metadata.get("claims")
    model.info.metadata["claims"] = {"nyt": 1.01}
    model.flush()
    try:
        assert evaluate.main(["--data-dir", str(tiny_data_dir), "--output", str(out), "--no-write"]) == 1
        report = json.loads((out / "evaluation.json").read_text())
        assert report["models"]["logreg"]["gate_failures"] == [
            f"nyt: accuracy {report['models']['logreg']['domains']['nyt']['accuracy']:.4f} is below the gate 1.010"
        ]
    finally:
        model.info.metadata["claims"] = claims
        model.flush()


def test_temperature_scaling_fixes_overconfidence_without_changing_labels():
    from tasks.sentiment.pipelines.calibration import fit_temperature, scale

    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 5000)
    truth = (rng.uniform(0, 1, p.size) < p).astype(int)
    logit = np.log(p / (1 - p)) * 3  # the same ranking, three times too sure of itself
    sure = 1 / (1 + np.exp(-logit))
    proba = np.column_stack([1 - sure, sure])
    labels = ["positive" if t else "negative" for t in truth]
    temperature = fit_temperature(proba, labels)
    assert temperature == pytest.approx(3.0, rel=0.15)
    fixed = scale(proba, temperature)
    assert (fixed.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert evaluation.expected_calibration_error(fixed, truth) < evaluation.expected_calibration_error(proba, truth) / 3


def test_trained_models_are_stored_with_their_temperature(tiny_models):
    model = bentoml.models.get(tiny_models["logreg"])
    meta = model.info.metadata
    assert meta["calibration"]["temperature"] > 0
    loaded = load_pipeline("tfidf_logreg", model.path)
    assert loaded.params()["calibration"]["temperature"] == meta["calibration"]["temperature"]
    assert bentoml.models.get(tiny_models["vader"]).info.metadata["calibration"] == {}  # VADER fits its own


def test_mcnemar_counts_only_the_texts_where_the_models_disagree():
    from lifecycle.evaluate import mcnemar_p

    same = np.array([True, False, True, True])
    assert mcnemar_p(same, same) == 1.0
    ours = np.array([True] * 40 + [True] * 20)
    theirs = np.array([True] * 40 + [False] * 20)  # 20 discordant texts, all ours
    assert mcnemar_p(ours, theirs) < 1e-5
    assert mcnemar_p(theirs, ours) == mcnemar_p(ours, theirs)


def test_leave_one_domain_out_reports_each_held_out_domain_beside_vader(tiny_models, tiny_data_dir):
    from lifecycle.leave_one_domain_out import leave_one_domain_out

    report = leave_one_domain_out(42, tiny_data_dir)
    assert report["stack"] == tiny_models["stacked"]
    assert set(report["table"]) == set(evaluation.DOMAINS)
    for row in report["table"].values():
        assert set(row) == {"stack (trained without this domain)", "vader"}
        assert all(0 <= m["accuracy"] <= 1 and m["n"] > 0 for m in row.values())
