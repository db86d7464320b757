"""Fuzzing every operation the service documents, with requests generated from its own OpenAPI document.

Schemathesis reads ``GET /docs.json`` and generates requests for each operation: valid ones (``positive``)
and ones that break the schema on purpose (``negative``: wrong types, missing fields, over-long texts,
unknown fields, broken multipart). Each answer is checked: never a 5xx; its status code, content type,
headers and body as documented; a request that breaks the schema is refused with a 4xx.

One check is left out: "valid data is accepted". The contract refuses text that is only whitespace or
invisible characters (bundle/contract.py), which JSON Schema cannot state exactly, so a generated
"valid" text such as a lone zero-width space is rightly refused with a 400.

The requests go through the in-process ASGI app (the ``service_client`` fixture: tiny real models), sent
with its Starlette test client; schemathesis's own ASGI transport would start and stop the app's lifespan
around every call. The integration tier sends the same requests over HTTP to a real ``bentoml serve``.
Generation is derandomised: every run sends the same requests.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.generation import GenerationMode

from tests.conftest import free_port
from tests.serving import running_server

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 25
# Prometheus text, not part of the JSON contract.
SKIPPED_PATHS = {"/metrics"}


@pytest.fixture(scope="module")
def spec(service_client) -> dict[str, Any]:
    return service_client.get("/docs.json").json()


@pytest.fixture(scope="module")
def real_server(tiny_models):
    with running_server(free_port()) as url:
        yield str(url)


def send(client: httpx.Client, base_url: str, case: Any) -> httpx.Response:
    """The generated request, through ``client`` (requests-style arguments mapped to httpx's)."""
    kw = case.as_transport_kwargs(base_url=base_url)
    unexpected = set(kw) - {"method", "url", "cookies", "headers", "params", "json", "data", "files"}
    assert not unexpected, f"the test does not forward {unexpected}"
    body: dict[str, Any] = {}
    if "json" in kw:
        body["json"] = kw["json"]
    if "files" in kw:
        body["files"] = kw["files"]
        if "data" in kw:
            body["data"] = kw["data"]  # the form fields beside the files
    elif "data" in kw:
        body["content"] = kw["data"]  # a raw body (negative cases send the wrong media type)
    request = client.build_request(kw["method"], kw["url"], headers=kw["headers"], params=kw["params"], **body)
    request.read()  # a multipart body streams; the failure report shows it, so keep it in memory
    return client.send(request)


def property_test(operation: Any, client: httpx.Client, base_url: str, mode: GenerationMode) -> Any:
    """A Hypothesis test: requests for ``operation`` drawn in ``mode``, each answer validated."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(mode))
        case.validate_response(send(client, base_url, case), checks=CHECKS)

    return check


def fuzz(
    spec: dict[str, Any], client: httpx.Client, mode: GenerationMode, base_url: str = "http://testserver"
) -> dict[str, str]:
    """Failures by operation (empty when every generated request was answered as documented)."""
    schema = schemathesis.openapi.from_dict(spec)
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED_PATHS:
            continue
        if mode is GenerationMode.NEGATIVE and not (list(operation.body) or list(operation.iter_parameters())):
            continue  # nothing to break in a request without parameters or body
        try:
            property_test(operation, client, base_url, mode)()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is a BaseExceptionGroup
            failures[operation.label] = str(exc)[:3000]
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_answers_generated_requests_as_documented(spec, service_client, mode):
    failures = fuzz(spec, service_client, mode)
    assert not failures, "\n\n".join(f"{label}:\n{report}" for label, report in failures.items())


def _answer_needs_a_field_it_lacks(post: dict[str, Any]) -> None:
    post["responses"]["200"]["content"]["application/json"]["schema"]["required"].append("confidence")


def _refusals_undocumented(post: dict[str, Any]) -> None:
    del post["responses"]["400"]


@pytest.mark.parametrize(
    ("lie", "mode", "noticed"),
    [
        (_answer_needs_a_field_it_lacks, GenerationMode.POSITIVE, "confidence"),
        (_refusals_undocumented, GenerationMode.NEGATIVE, "undocumented status code"),
    ],
    ids=["answer-schema", "status-codes"],
)
def test_the_fuzzer_notices_a_document_that_does_not_describe_the_service(spec, service_client, lie, mode, noticed):
    """The checks above are live: the same fuzzing fails against a document that misdescribes /sentiment."""
    lying = copy.deepcopy(spec)
    lying["paths"] = {"/sentiment": lying["paths"]["/sentiment"]}
    lie(lying["paths"]["/sentiment"]["post"])
    failures = fuzz(lying, service_client, mode)
    assert noticed in failures.get("POST /sentiment", "").lower(), failures


@pytest.mark.integration
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_a_real_server_answers_generated_requests_as_documented(real_server, mode):
    """The same fuzzing over real HTTP: BentoML's own request parsing (JSON, multipart) in front of the app."""
    with httpx.Client(base_url=real_server, timeout=60) as client:
        failures = fuzz(client.get("/docs.json").json(), client, mode, base_url=real_server)
    assert not failures, "\n\n".join(f"{label}:\n{report}" for label, report in failures.items())
