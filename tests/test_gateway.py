"""The gateway's runner pool at unit level: the stale-connection retry, and failures as 503s."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bundle.gateway import RunnerPool
from bundle.overload import Deadline, ModelUnavailable, WouldMissDeadline
from bundle.runner_contract import LoadedModel
from bundle.settings import RunnerSettings

KNOBS = {"cpu": RunnerSettings(max_batch_size=8, max_latency_ms=1000, entry_calls_in_flight=1)}
MODEL = LoadedModel(
    family="logreg",
    task="sentiment",
    tag="sentiment_logreg:abc",
    requested="sentiment_logreg:latest",
    default=True,
    runner="cpu",
    pipeline="tfidf_logreg",
    created_at="2026-11-30T00:00:00+00:00",
    labels={},
    metadata={},
)


class FlakyRunner:
    """Fails its first ``failures`` calls with ``error``, then answers each input with its length."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.to_async = self
        self.failures = failures
        self.error = error
        self.calls = 0

    async def predict(self, items):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return [len(item.data) for item in items]


def predict(runner, inputs):
    pool = RunnerPool({"cpu": runner}, KNOBS)
    return asyncio.run(pool.predict(MODEL, inputs, Deadline(5)))


def test_a_stale_connection_is_retried_once_on_a_fresh_one():
    runner = FlakyRunner(failures=1, error=aiohttp.ServerDisconnectedError())
    assert predict(runner, ["ab", "abc"]) == [2, 3]
    assert runner.calls == 2


def test_a_runner_that_keeps_failing_is_a_503_not_a_500():
    runner = FlakyRunner(failures=2, error=aiohttp.ServerDisconnectedError())
    with pytest.raises(ModelUnavailable, match="its runner \\(cpu\\) is not answering") as refused:
        predict(runner, ["ab"])
    assert refused.value.status == 503 and refused.value.headers()["Retry-After"]
    assert runner.calls == 2  # one retry, no more


def test_other_errors_are_not_retried():
    runner = FlakyRunner(failures=1, error=ConnectionRefusedError("down"))
    with pytest.raises(ModelUnavailable):
        predict(runner, ["ab"])
    assert runner.calls == 1


def test_a_runner_that_sheds_is_overloaded_not_broken():
    import bentoml

    runner = FlakyRunner(failures=1, error=bentoml.exceptions.ServiceUnavailable("process is overloaded"))
    with pytest.raises(WouldMissDeadline, match="the cpu runner is overloaded") as refused:
        predict(runner, ["ab"])
    assert refused.value.status == 503 and refused.value.retry_after
