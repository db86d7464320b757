from pathlib import Path

import numpy as np
import pytest

from bundle import samples
from tasks.sentiment.pipelines import PIPELINES, load_pipeline
from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
from tasks.sentiment.pipelines.tfidf_logreg import TfidfLogRegPipeline
from train import dataset

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_ground_truth.txt"


@pytest.fixture(scope="module")
def examples():
    return dataset.parse_ground_truth(FIXTURE)


@pytest.mark.parametrize("make", [lambda: NaiveBayesPipeline(min_df=1), lambda: TfidfLogRegPipeline(C=10.0)])
def test_fit_predict_save_load_round_trip(make, examples, tmp_path):
    pipe = make().fit([e.text for e in examples], [e.label for e in examples])
    texts = [t for t, _ in samples.LABELLED]
    proba = pipe.predict_proba(texts)
    assert proba.shape == (len(texts), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert pipe.predict(texts) == [label for _, label in samples.LABELLED]

    pipe.save(str(tmp_path))
    loaded = load_pipeline(pipe.kind, str(tmp_path))
    np.testing.assert_array_equal(loaded.predict_proba(texts), proba)
    assert loaded.params() == pipe.params()


def test_naive_bayes_uses_binary_features_and_bigrams():
    pipe = NaiveBayesPipeline(min_df=1)
    feats = pipe.features("Good good movies")
    assert feats == {"good": True, "movi": True, "good good": True, "good movi": True}


def test_naive_bayes_drops_rare_features(examples):
    pipe = NaiveBayesPipeline(min_df=2).fit([e.text for e in examples], [e.label for e in examples])
    assert "gorgeous" not in pipe.vocabulary  # appears once in the fixture
    assert "wonder" in pipe.vocabulary


def test_unknown_pipeline_kind_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown pipeline kind 'nope'"):
        load_pipeline("nope", str(tmp_path))
    assert set(PIPELINES) >= {"naive_bayes", "tfidf_logreg"}
