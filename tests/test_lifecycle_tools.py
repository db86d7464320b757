"""Operator tools: promote/rollback against a temporary Bento store, and the drift report's statistics."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bundle.settings import load_settings
from lifecycle import drift, promote
from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
from tests.conftest import ROOT
from train.common import train_and_save


@pytest.fixture()
def config(tmp_path):
    """A copy of serving.yaml whose naive_bayes family points at a store name only this test uses."""
    path = tmp_path / "serving.yaml"
    text = (ROOT / "serving.yaml").read_text().replace("store_name: sentiment_nb", "store_name: promo_nb")
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def promo_versions(tiny_data_dir):
    def train(gate: float) -> str:
        return train_and_save(
            store_name="promo_nb",
            make_pipeline=lambda seed: NaiveBayesPipeline(min_df=1),
            gate=gate,
            data_dir=tiny_data_dir,
            allow_below_gate=True,
        ).tag.split(":")[1]

    return {"good": train(0.5), "other_good": train(0.5), "failed": train(1.01)}


def test_promote_then_rollback_edits_only_the_versions_line(config, promo_versions):
    original = config.read_text()
    assert promote.promote("naive_bayes", promo_versions["good"], config) == [promo_versions["good"], "latest"]
    after = config.read_text()
    assert load_settings(config).models["naive_bayes"].versions == [promo_versions["good"], "latest"]
    changed = [(a, b) for a, b in zip(original.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and "versions:" in changed[0][1]  # comments and layout untouched

    promote.promote("naive_bayes", promo_versions["other_good"], config)
    assert load_settings(config).models["naive_bayes"].versions[0] == promo_versions["other_good"]
    assert promote.rollback("naive_bayes", config)[0] == promo_versions["good"]
    assert promote.rollback("naive_bayes", config) == ["latest"]
    assert config.read_text() == original
    with pytest.raises(promote.PromotionError, match="no promotion of 'naive_bayes' to roll back"):
        promote.rollback("naive_bayes", config)


def test_promote_refuses_a_version_that_failed_its_gate(config, promo_versions):
    before = config.read_text()
    with pytest.raises(promote.PromotionError, match="failed its accuracy gate"):
        promote.promote("naive_bayes", promo_versions["failed"], config)
    with pytest.raises(promote.PromotionError, match="not in the Bento model store"):
        promote.promote("naive_bayes", "nosuchversion", config)
    with pytest.raises(promote.PromotionError, match="unknown family 'gpt'"):
        promote.promote("gpt", promo_versions["good"], config)
    assert config.read_text() == before


def test_promote_cli_reports_errors_in_words(config, promo_versions, monkeypatch, capsys):
    monkeypatch.setenv("BUNDLE_SERVING_CONFIG", str(config))
    assert promote.main(["promote", "naive_bayes", promo_versions["failed"]]) == 1
    assert "refusing to promote" in capsys.readouterr().err


# ---- drift --------------------------------------------------------------------------------------


def synthetic_reference(rng: np.random.Generator) -> dict:
    chars = rng.lognormal(mean=4.6, sigma=0.5, size=5000)
    return {"text_chars": chars, "text_words": chars / 5, "positive_share": 0.5}


def window(rng: np.random.Generator, n: int, scale: float, positive: float) -> list[dict]:
    chars = rng.lognormal(mean=4.6, sigma=0.5, size=n) * scale
    labels = rng.random(n) < positive
    return [
        {"text_chars": c, "text_words": c / 5, "label": "positive" if p else "negative"}
        for c, p in zip(chars, labels, strict=True)
    ]


def test_unshifted_window_is_ok_and_shifted_window_is_drift():
    rng = np.random.default_rng(7)
    reference = synthetic_reference(rng)
    same = drift.compare(window(rng, 800, 1.0, 0.5), reference)
    assert same.verdict == "OK", same.table()
    assert all(f.psi < drift.PSI_WATCH for f in same.features)

    shorter = drift.compare(window(rng, 800, 0.5, 0.5), reference)
    assert shorter.verdict == "DRIFT" and "text_chars PSI" in shorter.reasons[0]

    happier = drift.compare(window(rng, 800, 1.0, 0.75), reference)
    assert happier.verdict == "DRIFT" and any("positive share" in r for r in happier.reasons)
    assert happier.share_p_value < 1e-6


def test_psi_is_zero_for_identical_and_large_for_disjoint_samples():
    x = np.arange(1000, dtype=float)
    assert drift.psi(x, x) == pytest.approx(0.0, abs=1e-9)
    assert drift.psi(x, x + 5000) > 1.0


def test_read_records_filters_window_role_and_family(tmp_path):
    data = tmp_path / "bundle_predictions" / "data"
    data.mkdir(parents=True)
    rows = [
        {"timestamp": "2026-01-01T10:00:00", "role": "primary", "family": "logreg", "label": "positive"},
        {"timestamp": "2026-01-01T11:00:00", "role": "shadow", "family": "naive_bayes", "label": "negative"},
        {"timestamp": "2026-01-01T12:00:00", "role": "primary", "family": "transformer", "label": "negative"},
    ]
    (data / "data.1.log").write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\nnot json\n")
    (data / "data.1.log.1").write_text(json.dumps(rows[2]) + "\n")  # a rotated file is read too
    assert [r["family"] for r in drift.read_records(tmp_path)] == ["logreg", "transformer"]
    assert [r["family"] for r in drift.read_records(tmp_path, since="2026-01-01T11:30:00")] == ["transformer"]
    assert drift.read_records(tmp_path, family="logreg")[0]["label"] == "positive"
    shutil.rmtree(data)
    assert drift.read_records(tmp_path) == []


def test_a_record_of_a_whole_request_becomes_one_row_per_text(tmp_path):
    data = tmp_path / "bundle_predictions" / "data"
    data.mkdir(parents=True)
    request = {
        "timestamp": "2026-01-01T10:00:00",
        "task": "sentiment",
        "role": "primary",
        "family": "logreg",
        "text_chars": [10, 20],
        "text_words": [2, 4],
        "label": ["positive", "negative"],
    }
    other_task = {**request, "task": "embedding", "family": "minilm"}
    (data / "data.1.log").write_text(json.dumps(request) + "\n" + json.dumps(other_task) + "\n")
    rows = drift.read_records(tmp_path)
    assert [(r["text_chars"], r["text_words"], r["label"], r["family"]) for r in rows] == [
        (10, 2, "positive", "logreg"),
        (20, 4, "negative", "logreg"),
    ]
