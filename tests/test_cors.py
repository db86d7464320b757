"""CORS on a real ``bentoml serve``: origins on configuration.yaml's allow-list may call the API from a
page they host; any other origin gets no CORS headers, so browsers refuse it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml

from bundle import samples
from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = pytest.mark.integration

CORS = yaml.safe_load((ROOT / "configuration.yaml").read_text())["services"]["BundleService"]["http"]["cors"]
ALLOWED = CORS["access_control_allow_origins"]
FOREIGN = ["http://127.0.0.1:8081", "http://attacker.example", "null"]


@pytest.fixture(scope="module")
def client(tiny_models: dict[str, str]) -> Iterator[httpx.Client]:
    with running_server(free_port()) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def preflight(client: httpx.Client, origin: str, path: str = "/sentiment", method: str = "POST") -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_configuration_allows_the_documented_origins():
    assert CORS["enabled"] is True
    assert {"http://localhost:8080", "http://127.0.0.1:8080"} <= set(ALLOWED)


@pytest.mark.parametrize("origin", ALLOWED)
def test_allowed_origin_preflight_and_requests(client, origin):
    answer = preflight(client, origin)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"].lower()

    r = client.post("/sentiment", json={"text": samples.POSITIVE}, headers={"Origin": origin})
    assert r.status_code == 200 and r.json()["label"] == "positive"
    assert r.headers["access-control-allow-origin"] == origin

    # error answers carry the header too, so a page elsewhere can show the service's message
    bad = client.post("/sentiment", json={"text": " "}, headers={"Origin": origin})
    assert bad.status_code == 400
    assert bad.headers["access-control-allow-origin"] == origin
    assert bad.json()["error"] == "text: must not be empty or only whitespace"

    # the page's live charts read /metrics cross-origin
    metrics = client.get("/metrics", headers={"Origin": origin})
    assert metrics.status_code == 200
    assert metrics.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize("origin", FOREIGN)
def test_foreign_origin_gets_no_cors_headers(client, origin):
    answer = preflight(client, origin)
    assert not answer.is_success
    assert "access-control-allow-origin" not in answer.headers

    # a simple request still runs (CORS is the browser's rule), but nothing lets the browser read it
    r = client.post("/sentiment", json={"text": samples.POSITIVE}, headers={"Origin": origin})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in client.get("/metrics", headers={"Origin": origin}).headers


def test_allowed_origin_cannot_use_other_methods(client):
    answer = preflight(client, ALLOWED[0], method="DELETE")
    assert not answer.is_success
    assert "DELETE" not in answer.headers.get("access-control-allow-methods", "")
