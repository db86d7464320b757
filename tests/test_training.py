"""Training on the tiny fixture into the test's temporary Bento store: gate, metadata, round trip."""

import bentoml
import numpy as np
import pytest

from bundle import samples
from tasks.sentiment.pipelines import load_pipeline
from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
from train.common import GateError, evaluate, train_and_save
from train.dataset import Example


def test_saved_model_carries_what_a_reader_needs(tiny_models):
    model = bentoml.models.get(tiny_models["naive_bayes"])
    meta = model.info.metadata
    assert model.info.labels == {"task": "sentiment", "pipeline": "naive_bayes", "gate": "passed"}
    assert set(meta["metrics"]) == {"validation", "test"}
    by_domain = meta["evaluation"]["domains"]
    assert set(by_domain) == {"movies", "tweets", "amazon", "nyt"}
    for m in by_domain.values():  # every domain's test split, with its interval and calibration error
        assert m["ci95"][0] <= m["accuracy"] <= m["ci95"][1]
        assert 0 <= m["ece"] <= 1
    assert meta["claims"] == {"movies": 0.5}
    assert 0.0 <= meta["metrics"]["test"]["accuracy"] <= 1.0
    assert len(meta["data"]["sha256"]) == 64
    assert meta["seed"] == 42
    assert meta["library_versions"]["bentoml"] == bentoml.__version__
    assert meta["params"]["min_df"] == 1


def test_store_round_trip_predicts_like_the_fitted_pipeline(tiny_models, tiny_data_dir):
    model = bentoml.models.get(tiny_models["logreg"])
    loaded = load_pipeline(model.info.labels["pipeline"], model.path)
    texts = [t for t, _ in samples.LABELLED]
    assert loaded.predict(texts) == [label for _, label in samples.LABELLED]


def test_same_data_and_seed_give_same_metrics(tiny_data_dir):
    runs = [
        train_and_save(
            store_name="determinism_check",
            make_pipeline=lambda seed: NaiveBayesPipeline(min_df=1),
            gate=0.0,
            data_dir=tiny_data_dir,
        )
        for _ in range(2)
    ]
    assert runs[0].tag != runs[1].tag
    assert runs[0].metrics == runs[1].metrics


def test_gate_refuses_to_save_a_weak_model_unless_overridden(tiny_data_dir):
    with pytest.raises(GateError, match="movies: accuracy .* is below the gate 1.010"):
        train_and_save(
            store_name="gated_out",
            make_pipeline=lambda s: NaiveBayesPipeline(min_df=1),
            gate=1.01,
            data_dir=tiny_data_dir,
        )
    assert [m for m in bentoml.models.list() if m.tag.name == "gated_out"] == []

    saved = train_and_save(
        store_name="gated_out",
        make_pipeline=lambda s: NaiveBayesPipeline(min_df=1),
        gate=1.01,
        data_dir=tiny_data_dir,
        allow_below_gate=True,
    )
    model = bentoml.models.get(saved.tag)
    assert model.info.labels["gate"] == "failed"
    assert model.info.metadata["gate_passed"] is False


def test_evaluate_counts_accuracy():
    class Always:  # a stand-in classifier with fixed output, to check the arithmetic
        def predict_proba(self, texts):
            return np.tile([0.2, 0.8], (len(texts), 1))

    data = [Example("a", "positive", 1.0), Example("b", "negative", -1.0), Example("c", "positive", 2.0)]
    result = evaluate(Always(), data)  # type: ignore[arg-type]
    assert result["accuracy"] == pytest.approx(0.6667, abs=1e-4)
    assert result["n"] == 3
