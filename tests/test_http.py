"""The entry service's ASGI app, in process, with the runner in process too and tiny real models."""

from __future__ import annotations

import numpy as np
import pytest

from bundle import samples


@pytest.fixture(scope="module")
def client(service_client):
    return service_client


def test_sentiment_answers_label_probabilities_and_model(client, tiny_models):
    r = client.post("/sentiment", json={"text": samples.POSITIVE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "positive"
    assert set(body["probabilities"]) == {"negative", "positive"}
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert body["model"] == tiny_models["stacked"]  # the default family, latest version
    assert body["family"] == "stacked"
    assert (body["policy"], body["arm"]) == ("single", "stacked")
    assert body["elapsed_ms"] >= 0


@pytest.mark.parametrize("family", ["logreg", "naive_bayes", "transformer", "vader", "stacked"])
def test_each_family_classifies_clear_cases(client, tiny_models, family):
    for text, label in samples.LABELLED:
        r = client.post("/sentiment", json={"text": text, "model": family})
        assert r.status_code == 200, r.text
        assert (r.json()["label"], r.json()["model"]) == (label, tiny_models[family])


def test_exact_version_can_be_requested(client, tiny_models):
    version = tiny_models["naive_bayes"].split(":")[1]
    r = client.post("/sentiment", json={"text": "fine", "model": "naive_bayes", "version": version})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == tiny_models["naive_bayes"]


def test_input_is_normalised_before_the_model_sees_it(client):
    plain = client.post("/sentiment", json={"text": "a wonderful film"}).json()
    messy = client.post("/sentiment", json={"text": "  a\twonderful\n\nfilm\u200b  "}).json()
    assert messy["probabilities"] == plain["probabilities"]


def test_batch_keeps_input_order(client):
    texts = [t for t, _ in samples.LABELLED]
    r = client.post("/sentiment/batch", json={"texts": texts, "model": "naive_bayes"})
    assert r.status_code == 200, r.text
    labels = [p["label"] for p in r.json()["predictions"]]
    assert labels == [label for _, label in samples.LABELLED]


LONG = "The film goes on and on, scene after scene, without ever finding its point. " * 64  # ~5,000 chars


@pytest.mark.parametrize("family", ["transformer", "logreg"])
def test_a_result_does_not_depend_on_its_batch_neighbours(client, family):
    alone = client.post("/sentiment", json={"text": samples.MIXED, "model": family}).json()
    mixed = client.post(
        "/sentiment/batch", json={"texts": [LONG[:4990], "ok", samples.MIXED, "no"], "model": family}
    ).json()
    assert mixed["predictions"][2]["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-5)


def test_embed_returns_unit_vectors_in_input_order(client, tiny_models):
    texts = ["a wonderful, moving film", "a delightful and touching movie", "the stock market fell sharply today"]
    r = client.post("/embed", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == tiny_models["embedding"]
    assert body["dim"] == 384
    vectors = np.array(body["embeddings"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2

    alone = np.array(client.post("/embed", json={"texts": [texts[2]]}).json()["embeddings"][0])
    with_long = np.array(client.post("/embed", json={"texts": [LONG[:4990], texts[2]]}).json()["embeddings"][1])
    np.testing.assert_allclose(with_long, alone, atol=1e-5)
    np.testing.assert_allclose(alone, vectors[2], atol=1e-5)


def test_ensemble_answers_with_every_member(client, tiny_models):
    r = client.post("/sentiment/ensemble", json={"text": samples.POSITIVE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "positive"
    assert {m["model"] for m in body["members"]} == {tiny_models[f] for f in ("transformer", "logreg", "naive_bayes")}
    assert sum(m["weight"] for m in body["members"]) == pytest.approx(1.0)


def test_models_listing_shows_versions_and_metrics(client, tiny_models):
    r = client.post("/models", json={})
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["default_family"] == "stacked"
    assert listing["routing"]["policy"] == "single"
    by_family = {m["family"]: m for m in listing["models"]}
    assert {f"{m['name']}:{m['version']}" for m in listing["models"]} == set(tiny_models.values())
    nb = by_family["naive_bayes"]
    assert nb["default"] is True
    assert nb["pipeline"] == "naive_bayes"
    assert 0 <= nb["metrics"]["test"]["accuracy"] <= 1
    assert set(nb["evaluation"]["domains"]) == {"movies", "tweets", "amazon", "nyt"}
    assert by_family["stacked"]["evaluation"]["domains"]["tweets"]["ci95"][1] <= 1
    assert len(nb["data_sha256"]) == 64
    assert nb["created_at"].startswith("20")
    # the encoder models say how they run and why; the classic ones have one way to run
    assert nb["runtime"] is None
    for family in ("transformer", "stacked", "minilm"):
        runtime, why = by_family[family]["runtime"].split(": ", 1)
        assert runtime in ("fp32", "onnx", "onnx_int8") and why, by_family[family]["runtime"]


BAD_INPUTS = [
    # (route, body, status, words the message must contain)
    ("/sentiment", {"text": ""}, 400, "text: must not be empty"),
    ("/sentiment", {"text": " \n\t "}, 400, "text: must not be empty"),
    ("/sentiment", {"text": "x" * 5001}, 400, "5001 characters; the maximum is 5000"),
    ("/sentiment", {"text": 42}, 400, "text: Input should be a valid string"),
    ("/sentiment", {"text": ["a list"]}, 400, "text: Input should be a valid string"),
    ("/sentiment", {}, 400, "text: this field is required"),
    ("/sentiment", {"text": "ok", "modle": "logreg"}, 400, "modle: unknown field"),
    (
        "/sentiment",
        {"text": "ok", "model": "gpt"},
        404,
        "unknown model 'gpt'; available models: logreg, naive_bayes, stacked, transformer, vader",
    ),
    ("/sentiment", {"text": "ok", "version": "doesnotexist"}, 404, "version 'doesnotexist' of model 'stacked'"),
    ("/sentiment", {"text": "ok", "user": "u" * 101}, 400, "user: String should have at most 100 characters"),
    ("/sentiment", {"text": "ok", "model": "m" * 101}, 400, "model: String should have at most 100 characters"),
    ("/sentiment", {"text": "ok", "version": "v" * 101}, 400, "version: String should have at most 100 characters"),
    ("/sentiment/ensemble", {"text": " "}, 400, "text: must not be empty"),
    ("/sentiment", ["text"], 400, "request body must be a JSON object"),
    ("/sentiment/batch", {"texts": []}, 400, "texts: List should have at least 1 item"),
    ("/sentiment/batch", {"texts": ["ok"] * 65}, 400, "at most 64 items, not 65"),
    ("/sentiment/batch", {"texts": ["ok", "  "]}, 400, "item 1 must not be empty"),
    ("/sentiment/batch", {"texts": "not a list"}, 400, "texts: Input should be a valid array"),
    ("/models", {"unexpected": True}, 400, "unexpected: unknown field"),
    ("/embed", {"texts": [""]}, 400, "item 0 must not be empty"),
    ("/embed", {"texts": ["ok"] * 65}, 400, "at most 64 items"),
    ("/embed", {"texts": ["ok"], "modle": "minilm"}, 400, "modle: unknown field"),
    (
        "/embed",
        {"texts": ["ok"], "model": "logreg"},
        404,
        "unknown model 'logreg'; available models: minilm",
    ),
    ("/sentiment", {"text": "ok", "model": "minilm"}, 404, "unknown model 'minilm'"),
]


@pytest.mark.parametrize("route, body, status, message", BAD_INPUTS)
def test_bad_input_gets_a_clear_4xx(client, route, body, status, message):
    r = client.post(route, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert "Traceback" not in r.text and "pydantic.dev" not in r.text


@pytest.mark.parametrize("payload", [b"not json", b'{"text": "unterminated', b"\xff\xfe"])
def test_body_that_is_not_json_gets_400(client, payload):
    r = client.post("/sentiment", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "not valid JSON" in r.json()["error"]


def test_service_keeps_serving_after_bad_input(client):
    for route, body, *_ in BAD_INPUTS:
        client.post(route, json=body)
    r = client.post("/sentiment", json={"text": samples.NEGATIVE})
    assert r.status_code == 200 and r.json()["label"] == "negative"


def test_openapi_spec_documents_the_public_api(client):
    from openapi_spec_validator import validate

    spec = client.get("/docs.json").json()
    validate(spec)  # a valid OpenAPI 3 document
    for path in ("/sentiment", "/sentiment/batch", "/sentiment/ensemble", "/models", "/embed"):
        operation = spec["paths"][path]["post"]
        assert operation["summary"], path
        assert {"200", "400", "404", "429", "503"} <= set(operation["responses"]), path
        assert operation["responses"]["400"]["content"]["application/json"]["example"]["error"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        for name, field in schema.get("properties", {}).items():
            assert "example" in field, (path, name)


def test_swagger_try_it_out_defaults_succeed(client):
    """Build each request body from the examples in the spec, as Swagger UI's "Try it out" does."""
    spec = client.get("/docs.json").json()
    for path in ("/sentiment", "/sentiment/batch", "/sentiment/ensemble", "/embed"):
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        body = {name: field["example"] for name, field in schema["properties"].items() if "example" in field}
        r = client.post(path, json=body)
        assert r.status_code == 200, (path, body, r.text)


def test_multipart_without_a_boundary_is_a_400_not_a_500(client):
    for route in ("/sentiment", "/embed", "/models"):
        r = client.post(route, content=b"text=hi", headers={"content-type": "multipart/form-data"})
        assert r.status_code == 400, r.text
        assert "boundary" in r.json()["error"]


@pytest.mark.parametrize("value", ["soon", "-5", "0", "nan"])
def test_a_deadline_header_that_is_not_a_duration_is_a_400(client, value):
    r = client.post("/sentiment", json={"text": "ok"}, headers={"x-deadline-ms": value})
    assert r.status_code == 400, r.text
    assert "X-Deadline-Ms" in r.json()["error"]


def test_a_generous_deadline_header_is_accepted(client):
    r = client.post("/sentiment", json={"text": "ok"}, headers={"x-deadline-ms": "5000"})
    assert r.status_code == 200, r.text


def test_open_inference_protocol_in_process(client, tiny_models):
    body = {
        "id": "req-1",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [samples.POSITIVE]}],
        "outputs": [{"name": "label"}],
    }
    r = client.post("/v2/models/naive_bayes/infer", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["id"] == "req-1" and answer["model_version"] == tiny_models["naive_bayes"].split(":")[1]
    assert answer["outputs"] == [{"name": "label", "datatype": "BYTES", "shape": [1], "data": ["positive"]}]
    assert client.get("/v2").json()["name"] == "model-bundle"
    for bad, message in [
        (b"{not json", "not valid JSON"),
        (b'{"inputs": []}', "exactly one input"),
        (b'{"inputs": [{"name": "txt", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}', "unknown input 'txt'"),
    ]:
        r = client.post("/v2/models/logreg/infer", content=bad, headers={"content-type": "application/json"})
        assert r.status_code == 400 and message in r.json()["error"], r.text
    r = client.post("/v2/models/logreg/infer", json={**body, "outputs": [{"name": "nope"}]})
    assert r.status_code == 400 and "unknown output 'nope'" in r.json()["error"]
