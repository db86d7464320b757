"""The Python client SDK (client/, package ``model-bundle-client``) against real servers.

Happy paths and the 400/404 errors run against a real ``bentoml serve`` of the project with tiny models.
Failures a healthy server does not produce on demand (503 load shedding, 429, 502/504, timeouts, resets)
come from real HTTP servers in this process: a Starlette app on uvicorn that answers from a script and
then forwards to the real server, and a raw TCP server that resets every connection. Each counts the
attempts it receives, which is how retries, backoff and giving up are proven.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bundle_client
import httpx
import pytest
import uvicorn
import yaml
from bundle_client import (
    AsyncBundleClient,
    BadRequestError,
    BatchResult,
    BundleAPIError,
    BundleClient,
    EmbeddingResult,
    EnsembleResult,
    ModelsListing,
    NotFoundError,
    OverloadedError,
    RetryPolicy,
    SentimentResult,
    ServerError,
    UnavailableError,
    UnexpectedResponseError,
    endpoints,
)
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bundle import samples
from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = pytest.mark.integration

FAST = {"backoff_base": 0.05, "backoff_max": 2.0}  # quick retries for tests; the defaults are 0.25 s and 10 s
LABELLED_TEXTS = [text for text, _ in samples.LABELLED]
LABELLED_LABELS = [label for _, label in samples.LABELLED]


ENSEMBLE = {"members": [{"family": "logreg", "weight": 3}, {"family": "naive_bayes", "weight": 1}]}


@pytest.fixture(scope="module")
def server(tiny_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service with the project's serving.yaml (given an ensemble of the CPU models if it has none).

    The tests read the default family, routing and ensemble from ``/models`` and the answers rather than
    assume them, and check labels only with the CPU models named explicitly: they know the tiny data.
    """
    settings = yaml.safe_load((ROOT / "serving.yaml").read_text())
    settings["tasks"]["sentiment"].setdefault("ensemble", ENSEMBLE)
    serving = tmp_path_factory.mktemp("client-sdk") / "serving.yaml"
    serving.write_text(yaml.safe_dump(settings))
    with running_server(free_port(), env={"BUNDLE_SERVING_CONFIG": str(serving)}) as url:
        yield url


# ---- fault-injecting servers ---------------------------------------------------------------------


@dataclass
class Fault:
    """One scripted answer: a status (with headers and body), a delay before forwarding, or forwarding."""

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


FORWARD = Fault()
OVERLOADED_503 = Fault(503, {"error": "An unexpected error has occurred, please check the server log."})
TOO_MANY_429 = Fault(429, {"error": "Too many requests"})


class FaultServer:
    """A real HTTP server in a thread: answers from ``script`` in order, then with ``then`` forever.

    A fault without a status forwards the request to ``upstream`` (the real service) after its delay.
    ``attempts`` records (monotonic time, path) of every request received.
    """

    def __init__(self, script: list[Fault], then: Fault = FORWARD, upstream: str | None = None) -> None:
        self.script = list(script)
        self.then = then
        self.upstream = upstream
        self.attempts: list[tuple[float, str]] = []
        self.url = ""
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def count(self) -> int:
        return len(self.attempts)

    def gaps(self) -> list[float]:
        times = [t for t, _ in self.attempts]
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    async def _handle(self, request: Request) -> Response:
        self.attempts.append((time.monotonic(), request.url.path))
        fault = self.script.pop(0) if self.script else self.then
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is not None:
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        assert self.upstream, "FORWARD needs an upstream"
        async with httpx.AsyncClient(timeout=30) as forward:
            answer = await forward.request(
                request.method,
                self.upstream + request.url.path,
                content=await request.body(),
                headers={"content-type": request.headers.get("content-type", "application/json")},
            )
        return Response(answer.content, status_code=answer.status_code, media_type=answer.headers.get("content-type"))

    def __enter__(self) -> FaultServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "fault server did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextlib.contextmanager
def resetting_server() -> Iterator[tuple[str, list[float]]]:
    """A TCP server that reads each request and resets the connection (RST) without answering."""
    accepted: list[float] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(time.monotonic())
            with contextlib.suppress(OSError):
                conn.settimeout(2)
                conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [r.retry_delay for r in caplog.records if r.name == "bundle_client" and hasattr(r, "retry_delay")]


@pytest.fixture
def retry_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="bundle_client")
    return caplog


# ---- happy paths against the real service --------------------------------------------------------


def test_sync_client_every_endpoint(server: str, tiny_models: dict[str, str]) -> None:
    with BundleClient(server) as client:
        assert client.ready() is True

        listing = client.models()
        assert isinstance(listing, ModelsListing)
        assert listing.default_family in listing.families
        assert {"logreg", "naive_bayes"} <= set(listing.families)
        assert {tiny_models["logreg"], tiny_models["naive_bayes"]} <= {m.tag for m in listing.models}
        assert listing.default("naive_bayes").tag == tiny_models["naive_bayes"]
        assert all("accuracy" in str(m.metrics) for m in listing.models if m.family in ("logreg", "naive_bayes"))

        routed = client.sentiment(samples.POSITIVE)  # no model named: the service's routing chooses
        assert isinstance(routed, SentimentResult)
        assert routed.model in {m.tag for m in listing.models} and routed.family in listing.families
        assert routed.policy in {"single", "ab", "canary"} and routed.arm
        assert routed.probabilities["positive"] + routed.probabilities["negative"] == pytest.approx(1.0, abs=1e-5)

        one = client.sentiment(samples.POSITIVE, model="logreg", user="alice")
        assert one.label == "positive" and one.model == tiny_models["logreg"] and one.family == "logreg"
        assert one.policy == "explicit"
        assert one.version == tiny_models["logreg"].split(":")[1]

        many = client.sentiment_batch(LABELLED_TEXTS, model="naive_bayes", user="alice")
        assert isinstance(many, BatchResult)
        assert many.labels == LABELLED_LABELS and many.model == tiny_models["naive_bayes"]
        assert many.policy == "explicit"

        ensemble = client.sentiment_ensemble(samples.MIXED)
        assert isinstance(ensemble, EnsembleResult)
        assert len(ensemble.members) >= 2 and {m.family for m in ensemble.members} <= set(listing.families)
        assert sum(m.weight for m in ensemble.members) == pytest.approx(1.0)
        average = sum(m.weight * m.probabilities["positive"] for m in ensemble.members)
        assert ensemble.probabilities["positive"] == pytest.approx(average, abs=1e-5)

        vectors = client.embed([samples.POSITIVE, samples.NEGATIVE, samples.POSITIVE])
        assert isinstance(vectors, EmbeddingResult) and vectors.model == tiny_models["embedding"]
        assert len(vectors.embeddings) == 3 and all(len(v) == vectors.dim for v in vectors.embeddings)
        assert all(sum(x * x for x in v) == pytest.approx(1.0, abs=1e-4) for v in vectors.embeddings)
        assert vectors.embeddings[0] == pytest.approx(vectors.embeddings[2], abs=1e-5)


def test_sync_client_pins_an_exact_version(server: str, tiny_models: dict[str, str]) -> None:
    version = tiny_models["naive_bayes"].split(":")[1]
    with BundleClient(server) as client:
        result = client.sentiment(samples.NEGATIVE, model="naive_bayes", version=version)
    assert result.model == tiny_models["naive_bayes"] and result.version == version


def test_async_client_every_endpoint(server: str, tiny_models: dict[str, str]) -> None:
    async def main() -> tuple[bool, SentimentResult, BatchResult, EnsembleResult, EmbeddingResult, ModelsListing]:
        async with AsyncBundleClient(server) as client:
            return (
                await client.ready(),
                await client.sentiment(samples.POSITIVE, model="logreg", user="bob"),
                await client.sentiment_batch(LABELLED_TEXTS, model="naive_bayes"),
                await client.sentiment_ensemble(samples.POSITIVE),
                await client.embed(LABELLED_TEXTS),
                await client.models(),
            )

    ready, one, many, ensemble, vectors, listing = asyncio.run(main())
    assert ready is True
    assert one.label == "positive" and one.model == tiny_models["logreg"] and one.policy == "explicit"
    assert many.labels == LABELLED_LABELS
    assert len(ensemble.members) >= 2
    assert len(vectors.embeddings) == len(LABELLED_TEXTS) and vectors.model == tiny_models["embedding"]
    assert {tiny_models["logreg"], tiny_models["naive_bayes"]} <= {m.tag for m in listing.models}


def test_async_client_under_concurrency_maps_results_to_inputs(server: str) -> None:
    """50 concurrent calls on one client: all succeed, and each answer is the one for its own text."""
    texts = [f"{LABELLED_TEXTS[i % len(LABELLED_TEXTS)]} {'!' * (i // len(LABELLED_TEXTS))}" for i in range(50)]
    families = ["logreg" if i % 2 else "naive_bayes" for i in range(50)]

    async def main() -> tuple[list[SentimentResult], dict[str, BatchResult]]:
        async with AsyncBundleClient(server) as client:
            singles = await asyncio.gather(
                *(client.sentiment(t, model=f) for t, f in zip(texts, families, strict=True))
            )
            reference = {f: await client.sentiment_batch(texts, model=f) for f in ("logreg", "naive_bayes")}
        return list(singles), reference

    singles, reference = asyncio.run(main())
    assert len(singles) == 50
    for i, (result, family) in enumerate(zip(singles, families, strict=True)):
        expected = reference[family].predictions[i]
        assert result.family == family
        assert result.label == expected.label
        assert result.probabilities["positive"] == pytest.approx(expected.probabilities["positive"], abs=1e-5)
    # The unpunctuated copies of the labelled sentences also get their known labels from naive_bayes.
    nb = [(r.label, i) for i, r in enumerate(singles) if families[i] == "naive_bayes" and i < len(LABELLED_TEXTS)]
    assert all(label == LABELLED_LABELS[i] for label, i in nb)


def test_from_env(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_API_URL", server + "/")
    monkeypatch.setenv("SENTIMENT_API_TIMEOUT", "12.5")
    with BundleClient.from_env() as client:
        assert client.base_url == server and client.timeout.read == 12.5
        assert client.sentiment(samples.POSITIVE, model="logreg").label == "positive"

    monkeypatch.delenv("SENTIMENT_API_URL")
    monkeypatch.delenv("SENTIMENT_API_TIMEOUT")
    client = AsyncBundleClient.from_env(max_retries=1)
    assert client.base_url == "http://localhost:3000" and client.retry_policy.max_retries == 1
    asyncio.run(client.aclose())

    monkeypatch.setenv("BUNDLE_API_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="BUNDLE_API_TIMEOUT must be a positive number"):
        BundleClient.from_env()


def test_from_env_reads_the_new_names_first(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_API_URL", "http://old.invalid:1")
    monkeypatch.setenv("BUNDLE_API_URL", server)
    with BundleClient.from_env() as client:
        assert client.base_url == server


def test_the_0_1_names_still_work(server: str) -> None:
    import sentiment_client

    assert sentiment_client.SentimentClient is BundleClient
    with sentiment_client.SentimentClient(server) as client:
        assert client.sentiment(samples.POSITIVE, model="logreg").label == "positive"


def test_call_reaches_any_task_endpoint_with_typed_errors(server: str) -> None:
    with BundleClient(server, max_retries=0) as client:
        listing = client.models()
        assert set(listing.tasks) == {"sentiment", "embedding", "translation", "speech", "music"}
        assert {m.task for m in listing.models} == {"sentiment", "embedding", "translation", "speech", "music"}
        assert "/embed" in listing.tasks["embedding"]["routes"]
        answer = client.call("/sentiment/batch", {"texts": [samples.POSITIVE, samples.NEGATIVE], "model": "logreg"})
        assert [p["label"] for p in answer["predictions"]] == ["positive", "negative"]
        assert answer.family == "logreg"
        vectors = client.call("/embed", {"texts": ["one text"]})
        assert vectors.dim == 384 and len(vectors.embeddings) == 1
        with pytest.raises(BadRequestError, match="texts"):
            client.call("/embed", {"texts": []})


def test_injected_http_client_and_transport(server: str) -> None:
    with httpx.Client() as mine:
        with BundleClient(server, http_client=mine) as client:
            assert client.sentiment(samples.NEGATIVE, model="naive_bayes").label == "negative"
        assert not mine.is_closed  # a client passed in belongs to the caller
    with BundleClient(server, transport=httpx.HTTPTransport(retries=0)) as client:
        assert "logreg" in client.models().families
    with pytest.raises(ValueError, match="base_url must start with http"):
        BundleClient("localhost:3000")
    with BundleClient(server) as client, pytest.raises(TypeError, match="not one string"):
        client.sentiment_batch("one text, not a list")


# ---- errors from the real service ----------------------------------------------------------------


def test_bad_request_error_from_empty_text(server: str) -> None:
    with BundleClient(server) as client, pytest.raises(BadRequestError) as caught:
        client.sentiment("   ")
    error = caught.value
    assert error.status == 400 and error.attempts == 1
    assert error.message == "text: must not be empty or only whitespace"
    assert [(d.field, d.message) for d in error.detail] == [("text", "must not be empty or only whitespace")]
    assert str(error).startswith("400 Bad Request: text: must not be empty")


def test_not_found_error_from_unknown_model_and_version(server: str) -> None:
    async def main() -> None:
        async with AsyncBundleClient(server) as client:
            with pytest.raises(NotFoundError) as caught:
                await client.sentiment(samples.POSITIVE, model="nope")
            assert caught.value.status == 404
            assert re.search(r"available models: .*logreg.*naive_bayes", caught.value.message)
            with pytest.raises(NotFoundError, match="version 'abc' of model 'logreg'"):
                await client.sentiment_batch(LABELLED_TEXTS, model="logreg", version="abc")

    asyncio.run(main())


def test_unavailable_error_on_a_closed_port(retry_log: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with BundleClient(url, max_retries=2, **FAST) as client:
        assert client.ready() is False
        with pytest.raises(UnavailableError) as caught:
            client.sentiment(samples.POSITIVE)
    error = caught.value
    assert error.status is None and error.attempts == 3 and "ConnectError" in error.message
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert len(retry_delays(retry_log)) == 2


# ---- overload: the service's capacity limit --------------------------------------------------------------


@pytest.fixture(scope="module")
def narrow_server(tiny_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service with at most 2 requests in flight (serving.yaml limits), so bursts get 429s.

    Only the CPU models are served, which keeps start-up short.
    """
    folder = tmp_path_factory.mktemp("client-sdk-narrow")
    (folder / "serving.yaml").write_text(
        f"extends: {ROOT / 'examples' / 'serving-cpu-only.yaml'}\nlimits: {{max_requests_in_flight: 2}}\n"
    )
    env = {"BUNDLE_SERVING_CONFIG": str(folder / "serving.yaml")}
    with running_server(free_port(), env=env) as url:
        yield url


async def _burst(url: str, n: int, max_retries: int) -> tuple[list[SentimentResult], list[OverloadedError]]:
    answers: list[SentimentResult] = []
    overloaded: list[OverloadedError] = []
    async with AsyncBundleClient(url, max_retries=max_retries, **FAST) as client:

        async def one(i: int) -> None:
            try:
                answers.append(await client.sentiment(f"{samples.POSITIVE} #{i}"))
            except OverloadedError as exc:
                overloaded.append(exc)

        await asyncio.gather(*(one(i) for i in range(n)))
    return answers, overloaded


def test_a_429_is_overloaded_error_with_retry_after_and_retries_absorb_it(
    narrow_server: str, retry_log: pytest.LogCaptureFixture
) -> None:
    answers, overloaded = asyncio.run(_burst(narrow_server, n=40, max_retries=0))
    assert overloaded and len(answers) + len(overloaded) == 40
    assert {(e.status, e.attempts) for e in overloaded} == {(429, 1)}
    assert all("too many requests in flight (at most 2)" in e.message for e in overloaded)
    assert {e.retry_after for e in overloaded} == {1.0}

    answers, overloaded = asyncio.run(_burst(narrow_server, n=40, max_retries=10))
    assert not overloaded and len(answers) == 40
    assert retry_delays(retry_log)  # the same burst succeeded because the client backed off and retried


# ---- retries, backoff and giving up, against fault-injecting servers ------------------------------


def test_retries_503_with_backoff_then_succeeds(server: str, retry_log: pytest.LogCaptureFixture) -> None:
    with (
        FaultServer([OVERLOADED_503, OVERLOADED_503], upstream=server) as faults,
        BundleClient(faults.url, max_retries=3, **FAST) as client,
    ):
        result = client.sentiment(samples.POSITIVE, model="logreg")
    assert result.label == "positive"
    assert faults.count == 3  # two 503s, then the forwarded request
    delays = retry_delays(retry_log)
    assert len(delays) == 2
    # Equal jitter: retry n waits between half and all of backoff_base * 2**n, so the waits grow.
    assert 0.025 <= delays[0] <= 0.05 <= delays[1] <= 0.1
    # The server saw the client wait at least that long between attempts.
    assert all(gap >= delay - 0.002 for gap, delay in zip(faults.gaps(), delays, strict=True))


def test_gives_up_after_max_retries_with_overloaded_error(retry_log: pytest.LogCaptureFixture) -> None:
    with (
        FaultServer([], then=OVERLOADED_503) as faults,
        BundleClient(faults.url, max_retries=2, **FAST) as client,
        pytest.raises(OverloadedError) as caught,
    ):
        client.sentiment_batch(LABELLED_TEXTS)
    assert faults.count == 3  # one attempt and max_retries=2 retries, no more
    assert caught.value.status == 503 and caught.value.attempts == 3
    assert "after 3 attempts" in str(caught.value)
    assert len(retry_delays(retry_log)) == 2


def test_429_honours_retry_after(server: str, retry_log: pytest.LogCaptureFixture) -> None:
    with FaultServer([Fault(429, {"error": "Too many requests"}, {"Retry-After": "1"})], upstream=server) as faults:

        async def main() -> SentimentResult:
            async with AsyncBundleClient(faults.url, **FAST) as client:
                return await client.sentiment(samples.NEGATIVE, model="naive_bayes")

        result = asyncio.run(main())
    assert result.label == "negative" and faults.count == 2
    assert retry_delays(retry_log) == [1.0]  # the server's Retry-After, not the 0.05 s backoff
    assert faults.gaps()[0] >= 1.0 - 0.002


def test_429_with_retry_after_longer_than_backoff_max_gives_up_at_once() -> None:
    with (
        FaultServer([], then=Fault(429, {"error": "Too many requests"}, {"Retry-After": "120"})) as faults,
        BundleClient(faults.url, **FAST) as client,
        pytest.raises(OverloadedError) as caught,
    ):
        client.sentiment(samples.POSITIVE)
    assert faults.count == 1
    assert caught.value.status == 429 and caught.value.retry_after == 120.0


def test_async_client_retries_too(server: str) -> None:
    with FaultServer([OVERLOADED_503, TOO_MANY_429, Fault(502, None)], upstream=server) as faults:

        async def main() -> BatchResult:
            async with AsyncBundleClient(faults.url, max_retries=3, **FAST) as client:
                return await client.sentiment_batch(LABELLED_TEXTS, model="naive_bayes")

        result = asyncio.run(main())
    assert result.labels == LABELLED_LABELS and faults.count == 4


def test_504_is_retried_then_unavailable_error() -> None:
    with (
        FaultServer([], then=Fault(504, {"error": "Not able to process the request in 30 seconds"})) as faults,
        BundleClient(faults.url, max_retries=1, **FAST) as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.models()
    assert faults.count == 2
    assert caught.value.status == 504 and "Not able to process" in caught.value.message


def test_timeout_is_retried(server: str) -> None:
    with (
        FaultServer([Fault(delay=8.0)], upstream=server) as faults,
        BundleClient(faults.url, timeout=2.0, **FAST) as client,
    ):
        assert client.sentiment(samples.POSITIVE, model="logreg").label == "positive"
    assert faults.count == 2


def test_connection_reset_is_retried_then_unavailable_error() -> None:
    with resetting_server() as (url, accepted):

        async def main() -> None:
            async with AsyncBundleClient(url, max_retries=2, **FAST) as client:
                await client.sentiment(samples.POSITIVE)

        with pytest.raises(UnavailableError) as caught:
            asyncio.run(main())
    assert len(accepted) == 3 and caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, httpx.ReadError | httpx.RemoteProtocolError)


def test_client_errors_are_not_retried(server: str) -> None:
    """400 and 404 come from the real service through the proxy; each reaches it exactly once."""
    with FaultServer([], upstream=server) as faults, BundleClient(faults.url, **FAST) as client:
        with pytest.raises(BadRequestError):
            client.sentiment("")
        assert faults.count == 1
        with pytest.raises(NotFoundError):
            client.sentiment(samples.POSITIVE, model="nope")
        assert faults.count == 2


def test_server_error_is_not_retried() -> None:
    error_body = {"error": "An unexpected error has occurred, please check the server log."}
    with (
        FaultServer([], then=Fault(500, error_body)) as faults,
        BundleClient(faults.url, **FAST) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.sentiment(samples.POSITIVE)
    assert faults.count == 1 and caught.value.status == 500
    assert isinstance(caught.value, BundleAPIError) and not isinstance(caught.value, UnavailableError)


def test_an_answer_outside_the_contract_is_reported() -> None:
    with (
        FaultServer([], then=Fault(200, {"hello": "world"})) as faults,
        BundleClient(faults.url, **FAST) as client,
        pytest.raises(UnexpectedResponseError) as caught,
    ):
        client.sentiment(samples.POSITIVE)
    assert faults.count == 1
    assert "model: Field required" in caught.value.message and "is base_url the sentiment service?" in str(caught.value)


# ---- retry policy and contract, without a network --------------------------------------------------


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    import random

    policy = RetryPolicy(max_retries=10, backoff_base=0.25, backoff_max=3.0)
    rng = random.Random(7)
    for retry in range(10):
        ceiling = min(3.0, 0.25 * 2**retry)
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 4  # jittered, not constant
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


def test_sdk_models_mirror_the_service_contract() -> None:
    """The SDK's own copies of the response models have the service's fields and required fields.

    When this fails, the service contract changed: update client/bundle_client/models.py (and bump
    CONTRACT_VERSION if a field was removed or renamed).
    """
    from bundle import contract as shared
    from tasks.embedding import contract as embedding
    from tasks.music import contract as music
    from tasks.sentiment import contract
    from tasks.speech import contract as speech
    from tasks.translation import contract as translation

    pairs: list[tuple[type[BaseModel], type[BaseModel]]] = [
        (bundle_client.TranscriptionResult, speech.TranscribeResponse),
        (bundle_client.SpeechSentimentResult, speech.SpeechSentimentResponse),
        (bundle_client.NotesResult, music.NotesResponse),
        (bundle_client.Note, music.Note),
        (bundle_client.Prediction, contract.Prediction),
        (bundle_client.SentimentResult, contract.SentimentResponse),
        (bundle_client.BatchResult, contract.BatchResponse),
        (bundle_client.ModelInfo, shared.ModelInfo),
        (bundle_client.ModelsListing, shared.ModelsResponse),
        (bundle_client.EnsembleMember, contract.EnsembleMember),
        (bundle_client.EnsembleResult, contract.EnsembleResponse),
        (bundle_client.EmbeddingResult, embedding.EmbedResponse),
        (bundle_client.TranslationResult, translation.TranslateResponse),
    ]
    for sdk, served in pairs:
        assert set(sdk.model_fields) == set(served.model_fields), sdk.__name__
        # the client requires no field the server may leave out; fields added in 0.2 are optional in
        # the client, so it still reads a 0.1 server's answers
        required = {n for n, f in sdk.model_fields.items() if f.is_required()}
        assert required <= {n for n, f in served.model_fields.items() if f.is_required()}, sdk.__name__
    assert bundle_client.__version__ == bundle_client.CONTRACT_VERSION


def test_sdk_covers_every_endpoint_and_request_field(server: str) -> None:
    """Every POST route in the running service's OpenAPI spec has an SDK call taking the same fields."""
    from bundle import contract as shared
    from tasks.embedding import contract as embedding
    from tasks.music import contract as music
    from tasks.sentiment import contract
    from tasks.speech import contract as speech
    from tasks.translation import contract as translation

    calls: dict[str, tuple[Callable[..., Any], type[BaseModel]]] = {
        "/transcribe": (endpoints.transcribe, speech.TranscribeRequest),
        "/sentiment/speech": (endpoints.speech_sentiment, speech.SpeechSentimentRequest),
        "/music/notes": (endpoints.music_notes, music.NotesRequest),
        "/sentiment": (endpoints.sentiment, contract.SentimentRequest),
        "/sentiment/batch": (endpoints.sentiment_batch, contract.BatchRequest),
        "/sentiment/ensemble": (endpoints.sentiment_ensemble, contract.EnsembleRequest),
        "/embed": (endpoints.embed, embedding.EmbedRequest),
        "/models": (endpoints.models, shared.ModelsRequest),
        "/translate": (endpoints.translate, translation.TranslateRequest),
    }
    spec = httpx.get(f"{server}/docs.json", timeout=30).json()
    served = {path for path, ops in spec["paths"].items() if "post" in ops}
    assert served == set(calls)
    for path, (build, request) in calls.items():
        fields = set(inspect.signature(build).parameters)
        assert fields == set(request.model_fields), path


# ---- the README's examples run as written --------------------------------------------------------


def _readme_blocks() -> list[str]:
    readme = (ROOT / "client" / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)


def test_readme_examples_run(server: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocks = _readme_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        code = block.replace("http://localhost:3000", server)
        exec(compile(code, str(tmp_path / "readme_example.py"), "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert re.match(r"(positive|negative) \d\.\d+ \w+:\w+\n", out), out
    assert "fix the input: text: must not be empty or only whitespace" in out
    assert "pick another model: unknown model 'no_such_model'" in out


def test_translate_and_portuguese_sentiment(server: str) -> None:
    with BundleClient(server, max_retries=0) as client:
        answer = client.translate(["The children were playing happily in the garden."], "en", "pt")
        assert answer.translations == ["As crianças estavam brincando alegremente no jardim."]
        assert answer.family == "marian_en_pt" and (answer.source, answer.target) == ("en", "pt")
        result = client.sentiment("Um filme maravilhoso.", model="logreg", lang="pt")
        assert (
            result.translation
            and result.translation_model
            and result.translation_model.startswith("translation_pt_en:")
        )
        with pytest.raises(NotFoundError, match="language pairs served"):
            client.translate(["ok"], "en", "xx")


def test_audio_calls_upload_files_and_parse_the_answers(server: str, tmp_path: Path) -> None:
    import io

    import numpy as np
    import soundfile

    rate = 22_050
    t = np.arange(rate) / rate
    path = tmp_path / "a4.wav"
    soundfile.write(path, 0.4 * np.sin(2 * np.pi * 440.0 * t), rate)
    with BundleClient(server, max_retries=0) as client:
        notes = client.music_notes(path, midi=True)
        assert "A4" in {n.pitch_name for n in notes.notes} and notes.midi and notes.midi.startswith(b"MThd")
        silence = io.BytesIO()
        soundfile.write(silence, np.zeros(16_000), 16_000, format="WAV")
        heard = client.transcribe(silence.getvalue(), model="whisper_tiny_en")
        assert heard.language == "en" and heard.family == "whisper_tiny_en" and heard.duration_s == 1.0
        with pytest.raises(BadRequestError, match="could not be decoded"):
            client.transcribe(b"not audio at all" * 10)
