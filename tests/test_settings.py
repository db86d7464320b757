import pytest
import yaml

from bundle import settings

VALID = {
    "models": {
        "logreg": {"task": "sentiment", "store_name": "sentiment_logreg", "runner": "cpu", "versions": ["latest"]}
    },
    "tasks": {"sentiment": {"default_model": "logreg"}},
    "runners": {"cpu": {"max_batch_size": 64, "max_latency_ms": 1000}},
    "limits": {"max_text_chars": 100, "max_batch_texts": 8},
}


def test_the_shipped_serving_yaml_is_valid():
    loaded = settings.load_settings(settings.DEFAULT_PATH)
    for task in loaded.tasks.values():
        assert task.default_model in loaded.models
    assert loaded.limits.max_batch_texts <= loaded.runners["cpu"].max_batch_size


def _model(**change):
    return {"models": {"logreg": {"task": "sentiment", "store_name": "x", "runner": "cpu", **change}}}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tasks": {"sentiment": {"default_model": "nope"}}}, "model 'nope' is not one of task 'sentiment'"),
        (_model(runner="tpu"), "models.logreg.runner"),
        (_model(runner="gpu"), "uses runner 'gpu', which has no section"),
        (_model(versions=["a", "a"]), "unique"),
        (_model(task="speech"), "task 'speech' has no section under tasks"),
        (_model(runtime="ONNX!"), "models.logreg.runtime"),
        ({"limits": {"max_text_chars": 100, "max_batch_texts": 65}}, "exceeds runners.cpu.max_batch_size"),
        ({"runners": {"cpu": {"max_batch_size": 0, "max_latency_ms": 5}}}, "runners.cpu.max_batch_size"),
        ({"runners": {"cpu": {"max_batch_size": 8, "max_latency_ms": 5, "threads": 2}}}, "threads: Extra inputs"),
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


def test_only_runners_with_models_are_started():
    gpu_only = {
        **VALID,
        "models": {"transformer": {"task": "sentiment", "store_name": "t", "runner": "gpu"}},
        "tasks": {"sentiment": {"default_model": "transformer"}},
        "runners": {"gpu": {"max_batch_size": 64, "max_latency_ms": 1000}},
    }
    assert settings.parse_settings(gpu_only).runners_in_use() == ["gpu"]
    assert settings.parse_settings(VALID).runners_in_use() == ["cpu"]


def test_an_overlay_changes_only_what_it_names(tmp_path):
    base = tmp_path / "serving.yaml"
    base.write_text(yaml.safe_dump({**VALID, "limits": {"max_text_chars": 100, "max_batch_texts": 8}}))
    overlay = tmp_path / "small.yaml"
    overlay.write_text("extends: serving.yaml\nlimits:\n  max_text_chars: 50\n")
    loaded = settings.load_settings(overlay)
    assert loaded.limits.max_text_chars == 50
    assert loaded.limits.max_batch_texts == 8  # kept from the base
    assert loaded.models["logreg"].store_name == "sentiment_logreg"
    null = tmp_path / "drop.yaml"
    null.write_text("extends: serving.yaml\ntasks:\n  sentiment:\n    routing: null\n")
    assert settings.load_settings(null).tasks["sentiment"].routing is None


@pytest.mark.parametrize("example", ["serving-ab-shadow.yaml", "serving-cpu-only.yaml"])
def test_the_examples_are_valid_overlays_of_serving_yaml(example):
    path = settings.DEFAULT_PATH.parent / "examples" / example
    assert yaml.safe_load(path.read_text())["extends"] == "../serving.yaml"
    settings.load_settings(path)


def test_only_runners_keeps_the_models_tasks_and_runners_of_those_runners():
    full = {
        **VALID,
        "models": {
            **VALID["models"],
            "transformer": {"task": "sentiment", "store_name": "t", "runner": "gpu"},
            "encoder": {"task": "embedding", "store_name": "e", "runner": "gpu"},
        },
        "tasks": {"sentiment": {"default_model": "logreg"}, "embedding": {"default_model": "encoder"}},
        "runners": {**VALID["runners"], "gpu": {"max_batch_size": 64, "max_latency_ms": 1000}},
    }
    cpu = settings.parse_settings({**full, "only_runners": ["cpu"]})
    assert set(cpu.models) == {"logreg"} and set(cpu.tasks) == {"sentiment"} and set(cpu.runners) == {"cpu"}
    assert settings.parse_settings(full).runners_in_use() == ["cpu", "gpu"]
