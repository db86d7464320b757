import pytest
import yaml

import settings

VALID = {
    "default_model": "logreg",
    "models": {"logreg": {"store_name": "sentiment_logreg", "runner": "cpu", "versions": ["latest"]}},
    "runners": {"cpu": {"max_batch_size": 64, "max_latency_ms": 1000}},
    "limits": {"max_text_chars": 100, "max_batch_texts": 8},
}


def test_the_shipped_serving_yaml_is_valid():
    loaded = settings.load_settings(settings.DEFAULT_PATH)
    assert loaded.default_model in loaded.models
    assert loaded.limits.max_batch_texts <= loaded.runners["cpu"].max_batch_size


@pytest.mark.parametrize(
    "change, message",
    [
        ({"default_model": "nope"}, "default_model 'nope' is not one of models"),
        ({"models": {"logreg": {"store_name": "x", "runner": "tpu"}}}, "models.logreg.runner"),
        ({"models": {"logreg": {"store_name": "x", "runner": "gpu"}}}, "uses runner 'gpu', which has no section"),
        ({"models": {"logreg": {"store_name": "x", "runner": "cpu", "versions": ["a", "a"]}}}, "unique"),
        ({"limits": {"max_text_chars": 100, "max_batch_texts": 65}}, "exceeds runners.cpu.max_batch_size"),
        ({"runners": {"cpu": {"max_batch_size": 0, "max_latency_ms": 5}}}, "runners.cpu.max_batch_size"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_name_the_problem(change, message):
    with pytest.raises(settings.SettingsError, match=message):
        settings.parse_settings({**VALID, **change}, "serving.yaml")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(settings.SettingsError, match="does not exist"):
        settings.load_settings(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(settings.SettingsError, match="not valid YAML"):
        settings.load_settings(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(VALID))
    assert settings.load_settings(good).limits.max_text_chars == 100


def test_max_batch_size_1_turns_batching_off():
    """BentoML refuses max_batch_size 1 on a batchable API, so 1 means plain APIs, and a client batch of
    any allowed size goes to the model in one call (no dispatcher limit to fit under)."""
    off = settings.parse_settings(
        {**VALID, "runners": {"cpu": {"max_batch_size": 1, "max_latency_ms": 1000}}}, "serving.yaml"
    )
    assert off.runners["cpu"].batching is False
    assert off.runners["cpu"].api_options() == {}
    on = settings.parse_settings(VALID, "serving.yaml").runners["cpu"]
    assert on.api_options() == {"batchable": True, "max_batch_size": 64, "max_latency_ms": 1000}
    assert on.forward_batch_size is None
