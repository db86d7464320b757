"""The Open Inference Protocol (v2) against a real ``bentoml serve``, with a real client of the protocol:
``tritonclient[http]``. Every served model of every task, and the protocol's errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import free_port
from tests.serving import running_server

pytestmark = pytest.mark.integration
http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

TEXTS = ["The children were playing happily in the garden.", "An utterly boring, stupid and pointless mess."]


@pytest.fixture(scope="module")
def client(tiny_models):
    with (
        running_server(free_port()) as url,
        http.InferenceServerClient(url=url.removeprefix("http://"), connection_timeout=60, network_timeout=120) as c,
    ):
        yield c


def text_input(texts: list[str], datatype: str = "BYTES", shape: list[int] | None = None):
    tensor = http.InferInput("text", [len(texts)], datatype)
    if datatype == "BYTES":
        tensor.set_data_from_numpy(np.array(texts, dtype=object), binary_data=False)
    else:
        tensor.set_data_from_numpy(np.zeros(len(texts), dtype=np.float32), binary_data=False)
    if shape is not None:  # a shape that disagrees with the data, as a faulty client would send
        tensor.set_shape(shape)
    return tensor


def test_server_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["name"] == "model-bundle"


EXPECTED = {
    "logreg": {"label": (2,), "probabilities": (2, 2)},
    "naive_bayes": {"label": (2,), "probabilities": (2, 2)},
    "transformer": {"label": (2,), "probabilities": (2, 2)},
    "minilm": {"embedding": (2, 384)},
    "marian_en_pt": {"translation": (2,)},
    "marian_pt_en": {"translation": (2,)},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_served_model_answers_through_the_protocol(client, tiny_models, name):
    version = tiny_models[name if name != "minilm" else "embedding"].split(":")[1]
    assert client.is_model_ready(name) and client.is_model_ready(name, version)
    metadata = client.get_model_metadata(name)
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"] for o in metadata["outputs"]} == set(EXPECTED[name])
    assert version in metadata["versions"]
    result = client.infer(name, [text_input(TEXTS)], model_version=version)
    response = result.get_response()
    assert response["model_name"] == name and response["model_version"] == version
    for output, shape in EXPECTED[name].items():
        assert result.as_numpy(output).shape == shape, output
    if name == "marian_en_pt":
        assert result.as_numpy("translation")[0] in (
            "As crianças estavam brincando alegremente no jardim.",
            b"As crian\xc3\xa7as estavam brincando alegremente no jardim.",
        )
    if name in ("logreg", "naive_bayes"):
        probabilities = result.as_numpy("probabilities")
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.infer("no_such_model", [text_input(TEXTS)]), "unknown model 'no_such_model'"),
        (lambda c: c.infer("logreg", [text_input(TEXTS, datatype="FP32")]), "it must be BYTES"),
        (lambda c: c.infer("logreg", [text_input(TEXTS, shape=[3])]), "has shape [3] but 2 elements"),
        (lambda c: c.infer("logreg", [text_input(TEXTS)], model_version="not-served"), "version 'not-served'"),
        (lambda c: c.infer("logreg", [text_input(["  "])]), "element 0 must not be empty"),
        (lambda c: c.get_model_metadata("no_such_model"), "models served"),
    ],
)
def test_protocol_errors_are_4xx_with_the_protocols_error_object(client, call, message):
    with pytest.raises(InferenceServerException) as raised:
        call(client)
    assert message in raised.value.message()
    assert raised.value.status() in ("400", "404", 400, 404)
