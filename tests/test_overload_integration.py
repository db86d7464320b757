"""The overload and failure contract end to end, against a real ``bentoml serve``: a runner process that
is wedged (SIGSTOP) or killed after the entry service cached its model catalog, and capacity limits."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psutil
import pytest

from bundle import samples
from tests.conftest import ROOT, free_port
from tests.serving import ServerURL, running_server

pytestmark = pytest.mark.integration


def runner_pid(server: ServerURL, name: str) -> int:
    for child in psutil.Process(server.pid).children(recursive=True):
        if f"--service-name {name}" in " ".join(child.cmdline()):
            return child.pid
    raise LookupError(f"no {name} process under {server.pid}")


@contextmanager
def serving(tmp_path_factory: pytest.TempPathFactory, overlay: str) -> Iterator[ServerURL]:
    path = tmp_path_factory.mktemp("overload") / "serving.yaml"
    path.write_text(f"extends: {ROOT / 'serving.yaml'}\n{overlay}")
    with running_server(free_port(), env={"BUNDLE_SERVING_CONFIG": str(path)}) as url:
        yield url


def assert_refused(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.text
    assert int(r.headers["retry-after"]) >= 1


@pytest.fixture(scope="module")
def ab_server(tiny_models, tmp_path_factory):
    """Routed sentiment traffic goes to the transformer; logreg is the default that stands in."""
    overlay = (
        "tasks:\n  sentiment:\n    default_model: logreg\n"
        "    routing: {policy: single, arms: [{family: transformer, weight: 100}]}\n"
    )
    with serving(tmp_path_factory, overlay) as url:
        yield url


def test_a_wedged_runner_costs_each_request_its_deadline_and_nothing_more(ab_server):
    with httpx.Client(base_url=ab_server, timeout=60) as client:
        assert client.post("/sentiment", json={"text": "fine"}).json()["arm"] == "transformer"  # catalog cached
        gpu = runner_pid(ab_server, "GPURunner")
        os.kill(gpu, signal.SIGSTOP)
        try:
            deadline = {"x-deadline-ms": "1500"}
            started = time.monotonic()
            routed = client.post("/sentiment", json={"text": samples.POSITIVE}, headers=deadline)
            routed_s = time.monotonic() - started
            assert routed.status_code == 200, routed.text
            assert routed.json()["arm"] == "fallback:logreg" and routed.json()["family"] == "logreg"
            assert routed_s < 10  # its deadline, then the default model; not the 30 s traffic timeout

            explicit = client.post("/sentiment", json={"text": "fine", "model": "transformer"}, headers=deadline)
            assert_refused(explicit, 503, "did not answer within 1500 ms")
            assert_refused(client.post("/embed", json={"texts": ["fine"]}, headers=deadline), 503, "did not answer")
            ensemble = client.post("/sentiment/ensemble", json={"text": "fine"}, headers=deadline)
            assert_refused(ensemble, 503, "did not answer")
            assert client.post("/sentiment", json={"text": "fine", "model": "naive_bayes"}).status_code == 200
            metrics = client.get("/metrics").text
            assert 'bundle_runner_failures_total{reason="deadline",runner="gpu"}' in metrics
            assert 'bundle_fallbacks_total{arm="transformer",reason="deadline",task="sentiment"}' in metrics
        finally:
            os.kill(gpu, signal.SIGCONT)
        # awake again: the transformer answers
        again = client.post("/sentiment", json={"text": "fine", "model": "transformer"})
        assert again.status_code == 200, again.text


def test_a_runner_that_dies_after_start_up_is_503_with_a_body_not_a_blank_500(ab_server):
    """BentoML's arbiter restarts a dead runner; until the new one has loaded its models, requests that
    need it get a 503 that says why (or, routed, the default model), within their deadline."""
    with httpx.Client(base_url=ab_server, timeout=60) as client:
        assert client.post("/sentiment", json={"text": "fine", "model": "transformer"}).status_code == 200
        os.kill(runner_pid(ab_server, "GPURunner"), signal.SIGKILL)
        deadline = {"x-deadline-ms": "1000"}
        explicit = client.post("/sentiment/batch", json={"texts": ["fine"], "model": "transformer"}, headers=deadline)
        assert explicit.status_code == 503, explicit.text
        assert "'transformer'" in explicit.json()["error"] and int(explicit.headers["retry-after"]) >= 1
        # the restart is in progress: "did not answer within" or, queued behind it, "overloaded"
        assert_refused(client.post("/embed", json={"texts": ["fine"]}, headers=deadline), 503, "gpu")
        routed = client.post("/sentiment", json={"text": samples.NEGATIVE}, headers=deadline)
        assert routed.status_code == 200 and routed.json()["arm"] == "fallback:logreg", routed.text


@pytest.fixture(scope="module")
def narrow_server(tiny_models, tmp_path_factory):
    """A small queue for the gpu runner, so a burst overflows it."""
    overlay = "runners:\n  gpu: {max_queued_texts: 64}\n"
    with serving(tmp_path_factory, overlay) as url:
        yield url


async def _burst(url: str, n: int, concurrency: int, body: dict) -> collections.Counter:
    statuses: collections.Counter = collections.Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                r = await client.post("/sentiment/batch", json=body)
                statuses[r.status_code] += 1
                if r.status_code in (429, 503):
                    assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]

        await asyncio.gather(*(one() for _ in range(n)))
    return statuses


def test_a_full_queue_answers_429_with_retry_after_and_every_request_gets_an_answer(narrow_server):
    long_texts = {"texts": [samples.MIXED * 20] * 16, "model": "transformer"}
    statuses = asyncio.run(_burst(narrow_server, n=64, concurrency=32, body=long_texts))
    assert sum(statuses.values()) == 64
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[200] > 0 and statuses[429] > 0, statuses
