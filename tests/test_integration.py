"""A real ``bentoml serve`` (entry service + runner processes) with configuration.yaml."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
from pathlib import Path

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
            "whisper_base",
            "whisper_tiny_en",
            "basic_pitch",
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
    # The client drops a connection idle for 2 s, before the server's keep-alive timeout (uvicorn's 5 s)
    # closes it: with httpx's default (also 5 s) a connection the pool had left idle could be reused at
    # the instant the server closed it, and that request died with ReadError before the server read it.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0)
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


def test_audio_endpoints_through_the_real_server(server):
    """Uploads through a real ``bentoml serve``: the entry decodes, the runners (separate processes)
    transcribe and transcribe music, concurrent clips share a batch, and bad audio leaves them serving."""
    import io

    import numpy as np
    import soundfile

    def wav(samples: np.ndarray, rate: int) -> bytes:
        buf = io.BytesIO()
        soundfile.write(buf, samples, rate, format="WAV")
        return buf.getvalue()

    prompts = Path("/usr/share/asterisk/sounds/en/digits")
    if not prompts.is_dir():
        pytest.skip("asterisk-core-sounds-en-wav is not installed (.ci/run installs it)")

    async def transcribe_all(names: list[str]) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=120) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/transcribe",
                        files={"audio": (f"{n}.wav", (prompts / f"{n}.wav").read_bytes(), "audio/wav")},
                        data={"model": "whisper_tiny_en"},
                    )
                    for n in names
                )
            )

    answers = asyncio.run(transcribe_all(["1", "2", "3", "4", "5", "6"]))
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    words = {"1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six"}
    for n, r in zip(["1", "2", "3", "4", "5", "6"], answers, strict=True):
        assert r.json()["text"].strip(" .").lower() in {n, words[n]}, r.json()

    bad = httpx.post(f"{server}/transcribe", files={"audio": ("x.wav", b"RIFF0000WAVEjunk", "audio/wav")}, timeout=60)
    assert bad.status_code == 400 and "could not be decoded" in bad.json()["error"]
    rate = 22_050
    t = np.arange(rate) / rate
    notes = httpx.post(
        f"{server}/music/notes",
        files={"audio": ("c4.wav", wav(0.4 * np.sin(2 * np.pi * 261.63 * t), rate), "audio/wav")},
        timeout=60,
    )
    assert notes.status_code == 200 and "C4" in {n["pitch_name"] for n in notes.json()["notes"]}
    assert httpx.get(f"{server}/readyz", timeout=30).status_code == 200
