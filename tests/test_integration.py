"""A real ``bentoml serve`` (entry service + runner processes) with configuration.yaml."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys

import bentoml
import httpx
import pytest

from bundle import samples
from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tiny_models):
    with running_server(free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def server_without_coalescing(tiny_models, tmp_path_factory):
    """One runner call per request: many calls in flight on each runner client at once, which is what
    the session-refresh race needs (with coalescing there is at most one)."""
    overlay = tmp_path_factory.mktemp("no-coalescing") / "serving.yaml"
    overlay.write_text(
        f"extends: {ROOT / 'serving.yaml'}\n"
        "runners: {cpu: {entry_calls_in_flight: 0}, gpu: {entry_calls_in_flight: 0}}\n"
    )
    with running_server(free_port(), env={"BUNDLE_SERVING_CONFIG": str(overlay)}) as url:
        yield url


def test_client_calls_every_endpoint(server, tiny_models):
    with bentoml.SyncHTTPClient(server) as client:
        one = client.sentiment(text=samples.POSITIVE)
        assert one["label"] == "positive" and one["model"] == tiny_models["stacked"]
        many = client.sentiment_batch(texts=[t for t, _ in samples.LABELLED], model="naive_bayes")
        assert [p["label"] for p in many["predictions"]] == [label for _, label in samples.LABELLED]
        listing = client.models()
        assert {m["family"] for m in listing["models"]} == {
            "logreg",
            "naive_bayes",
            "vader",
            "stacked",
            "transformer",
            "minilm",
            "marian_en_pt",
            "marian_pt_en",
        }
        vectors = client.embed(texts=["a fine film", "the stock market"])
        assert vectors["dim"] == 384 and len(vectors["embeddings"]) == 2
        translated = client.translate(
            texts=["The children were playing happily in the garden."], source="en", target="pt"
        )
        assert translated["translations"] == ["As crianças estavam brincando alegremente no jardim."]
        portuguese = client.sentiment(text="Um filme maravilhoso.", lang="pt", model="logreg")
        assert portuguese["translation_model"].startswith("translation_pt_en:")


async def _burst(url: str, n: int, concurrency: int) -> collections.Counter:
    statuses: collections.Counter = collections.Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                text, _ = samples.LABELLED[i % len(samples.LABELLED)]
                # every family, so both runner connections are exercised
                body = {"text": f"{text} #{i}", "model": ("logreg", "naive_bayes", "transformer")[i % 3]}
                try:
                    r = await client.post("/sentiment", json=body)
                    statuses[r.status_code] += 1
                except httpx.TransportError as exc:
                    statuses[type(exc).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


@pytest.mark.parametrize("coalescing", [True, False], ids=["coalescing", "one-call-per-request"])
def test_burst_through_entry_and_runner_has_no_5xx(request, coalescing):
    """Regression test for the session-refresh disconnect (BentoML issue 4971): see configuration.yaml."""
    url = request.getfixturevalue("server" if coalescing else "server_without_coalescing")
    statuses = asyncio.run(_burst(url, n=600, concurrency=64))
    assert sum(statuses.values()) == 600
    assert statuses == {200: 600}, statuses


def test_bad_input_then_still_serving(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        assert (
            client.post("/sentiment", content=b"{oops", headers={"content-type": "application/json"}).status_code == 400
        )
        assert client.post("/sentiment", json={"text": "   "}).status_code == 400
        assert client.post("/sentiment", json={"text": "x", "model": "nope"}).status_code == 404
        assert client.post("/sentiment/batch", json={"texts": ["x"] * 1000}).status_code == 400
        r = client.post("/sentiment", json={"text": samples.NEGATIVE})
        assert r.status_code == 200 and r.json()["label"] == "negative"
        assert client.get("/readyz").status_code == 200


def test_metrics_show_adaptive_batching(server):
    asyncio.run(_burst(server, n=100, concurrency=32))
    metrics = httpx.get(f"{server}/metrics", timeout=10).text
    assert "adaptive_batch_size" in metrics  # BentoML's dispatcher: requests per batch

    # the runners' own histogram: inputs per model call, at least the 100 texts of the burst
    def total(series: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(series) and 'task="sentiment"' in line
        )

    inputs, calls = total("bundle_runner_batch_inputs_sum"), total("bundle_runner_batch_inputs_count")
    assert inputs >= 100
    assert inputs / calls > 1, (inputs, calls)  # batching happened: model calls took several texts


def test_missing_model_stops_start_up_with_instructions(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_CONFIG": str(ROOT / "configuration.yaml")}
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "serve", "service:BundleService", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "is not in the Bento model store" in output
    assert "make models" in output
    assert "Traceback" not in output
