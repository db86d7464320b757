"""Encoder runtimes: the choice at load time, and the exported artefacts of real (tiny) stored models."""

from __future__ import annotations

import json

import bentoml
import numpy as np
import pytest

from tasks.embedding import runtimes


def write_manifest(folder, entries):
    (folder / runtimes.RUNTIME_DIR).mkdir(parents=True, exist_ok=True)
    for name in entries:
        if name in runtimes.ONNX_FILES:
            (folder / runtimes.RUNTIME_DIR / runtimes.ONNX_FILES[name]).write_bytes(b"")
    runtimes.write_manifest(folder, {"runtimes": entries})


def entry(ok, rate=None, machine=None):
    speed = {"machine": machine or runtimes.machine_signature("cpu"), "sentences_per_s": {"1": rate, "16": rate}}
    return {"quality_ok": ok, "speed": speed}


def test_without_measurements_auto_is_fp32_and_says_how_to_add_them(tmp_path):
    runtime, why = runtimes.choose("auto", tmp_path, "cpu")
    assert runtime == "fp32"
    assert "python -m train.export_runtimes" in why


def test_auto_takes_the_fastest_measured_here_among_those_within_quality(tmp_path):
    write_manifest(tmp_path, {"fp32": entry(True, 50), "onnx": entry(True, 90), "onnx_int8": entry(False, 200)})
    runtime, why = runtimes.choose("auto", tmp_path, "cpu")
    assert runtime == "onnx"  # int8 is faster but failed its quality check
    assert "fastest measured on this machine" in why


def test_speed_weighs_a_quiet_and_a_busy_service_alike():
    # level at batch 16, twice as fast at batch 1: the faster runtime when it serves
    assert runtimes.serving_rate({"1": 130, "16": 120}) > runtimes.serving_rate({"1": 70, "16": 122})
    assert runtimes.serving_rate({"16": 50}) == 50


def test_auto_on_another_machine_uses_the_preference_order(tmp_path):
    other = "cpu Some Other CPU, 64 threads"
    write_manifest(
        tmp_path, {"fp32": entry(True, 900, other), "onnx": entry(True, 10, other), "onnx_int8": entry(True, 5, other)}
    )
    runtime, why = runtimes.choose("auto", tmp_path, "cpu")
    assert runtime == "onnx_int8"
    assert "not measured on this machine" in why


def test_a_runtime_asked_for_by_name_must_exist_and_run_here(tmp_path):
    with pytest.raises(runtimes.RuntimeUnavailable, match="python -m train.export_runtimes"):
        runtimes.choose("onnx", tmp_path, "cpu")
    with pytest.raises(runtimes.RuntimeUnavailable, match="unknown runtime 'tensorrt'"):
        runtimes.choose("tensorrt", tmp_path, "cpu")
    if not runtimes.native_bf16("cpu"):
        with pytest.raises(runtimes.RuntimeUnavailable, match="no native bfloat16"):
            runtimes.choose("bf16", tmp_path, "cpu")
    assert runtimes.choose("fp32", tmp_path, "cpu") == ("fp32", "asked for by name")


@pytest.mark.parametrize("family", ["transformer", "stacked"])
def test_trained_models_are_stored_with_measured_runtimes(tiny_models, family):
    from train.export_runtimes import encoder_dirs

    model = bentoml.models.get(tiny_models[family])
    measured = model.info.metadata["runtimes"]
    for name in ("fp32", "onnx", "onnx_int8"):
        assert set(measured[name]["quality"]["validation_accuracy"]) == set(model.info.metadata["claims"])
        assert measured[name]["speed"]["sentences_per_s"]["16"] > 0
    assert measured["fp32"]["quality_ok"]  # the reference qualifies against itself
    (folder,) = encoder_dirs(model.path)
    manifest = json.loads((folder / runtimes.RUNTIME_DIR / runtimes.MANIFEST).read_text())
    assert manifest["runtimes"]["onnx"]["sha256"] == measured["onnx"]["sha256"]


def test_onnx_reproduces_fp32_and_int8_stays_close(tiny_models):
    from tasks.sentiment.pipelines import load_pipeline

    path = bentoml.models.get(tiny_models["transformer"]).path
    texts = ["a gorgeous, witty film", "dull and far too long", "ok", "the plot makes no sense at all, sadly"]
    fp32 = load_pipeline("transformer", path, runtime="fp32")
    onnx = load_pipeline("transformer", path, runtime="onnx")
    int8 = load_pipeline("transformer", path, runtime="onnx_int8")
    np.testing.assert_allclose(onnx.predict_proba(texts), fp32.predict_proba(texts), atol=1e-4)
    # the tiny model's head has huge weights (40 training sentences), so compare what int8 changes: the
    # sentence vectors
    cosine = (int8.inner.encoder.embed(texts) * fp32.inner.encoder.embed(texts)).sum(axis=1)
    assert cosine.min() > 0.97


def test_int8_answers_do_not_depend_on_batch_neighbours(tiny_models):
    from tasks.embedding.encoder import SentenceEncoder

    path = bentoml.models.get(tiny_models["embedding"]).path
    encoder = SentenceEncoder(path, device="cpu", runtime="onnx_int8")
    texts = ["ok", "a gorgeous, witty film with a long and winding plot that never lets go of you"]
    alone = np.vstack([encoder.embed([t]) for t in texts])
    np.testing.assert_allclose(encoder.embed(texts), alone, atol=1e-6)


def test_embedding_model_runtimes_are_measured_by_cosine(tiny_models):
    measured = bentoml.models.get(tiny_models["embedding"]).info.metadata["runtimes"]
    assert measured["onnx"]["quality"]["min_cosine_to_fp32"] > 0.9999
    assert measured["onnx"]["quality_ok"]


def test_a_new_version_gets_runtimes_added(tiny_models, tiny_data_dir):
    from train.export_runtimes import export_new_version

    source = tiny_models["transformer"]
    assert export_new_version(source) == source  # it has them already
    new = export_new_version(source, force=True, data_dir=tiny_data_dir)
    try:
        assert new != source
        info = bentoml.models.get(new).info
        assert info.metadata["runtimes_added_to"] == source
        assert info.labels == bentoml.models.get(source).info.labels
        assert info.metadata["runtimes"]["onnx"]["quality_ok"]
    finally:
        bentoml.models.delete(new)  # the other tests serve the tiny model as trained


def test_bf16_runs_the_encoder_under_autocast_where_the_hardware_has_it(monkeypatch, tiny_models):
    from tasks.embedding.encoder import SentenceEncoder

    path = bentoml.models.get(tiny_models["embedding"]).path
    texts = ["a gorgeous, witty film", "dull and far too long"]
    reference = SentenceEncoder(path, device="cpu").embed(texts)
    # this CPU may lack native bf16 (then "auto" never picks it); the code path is the same either way
    monkeypatch.setattr(runtimes, "native_bf16", lambda device: True)
    encoder = SentenceEncoder(path, device="cpu", runtime="bf16")
    assert encoder.runtime == "bf16"
    cosine = (encoder.embed(texts) * reference).sum(axis=1)
    assert cosine.min() > 0.99
