"""The gateway's runner pool at unit level: the stale-connection retry, and failures as 503s."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bundle.overload import Deadline, ModelUnavailable, WouldMissDeadline
from bundle.runner_contract import LoadedModel
from bundle.runner_pool import RunnerPool
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


# ---- degrading to a cheaper model under overload -------------------------------------------------


class SaturatedPool:
    """Two sentiment models; the routed one's runner is saturated (its queue predicts a missed deadline)."""

    def __init__(self, saturated: set[str]) -> None:
        from bundle.runner_contract import LoadedModel

        self.saturated = saturated
        self.models = [
            LoadedModel(
                family=family,
                task="sentiment",
                tag=f"sentiment_{family}:v1",
                requested=f"sentiment_{family}:latest",
                default=True,
                runner=runner,
                pipeline=family,
                created_at="2026-12-03T00:00:00+00:00",
                labels={},
                metadata={},
            )
            for family, runner in (("transformer", "gpu"), ("logreg", "cpu"))
        ]

    async def catalog(self, timeout: float = 5.0):
        return self.models

    def listed_runners(self):
        return {"cpu", "gpu"}

    async def predict(self, model, inputs, deadline, max_wait=None):
        if model.family in self.saturated:
            raise WouldMissDeadline(f"the {model.runner} runner is overloaded", retry_after=2.0)
        return [[0.1, 0.9] for _ in inputs]


def sentiment_gateway(degrade_to: str | None, saturated: set[str]):
    from bundle.gateway import TaskGateway
    from bundle.settings import ServingSettings
    from tasks.sentiment import SentimentTask

    settings = ServingSettings.model_validate(
        {
            "models": {
                "transformer": {"task": "sentiment", "store_name": "sentiment_transformer", "runner": "gpu"},
                "logreg": {"task": "sentiment", "store_name": "sentiment_logreg", "runner": "cpu"},
            },
            "tasks": {"sentiment": {"default_model": "transformer", "degrade_to": degrade_to}},
            "runners": {
                "cpu": {"max_batch_size": 64, "max_latency_ms": 5000},
                "gpu": {"max_batch_size": 64, "max_latency_ms": 5000},
            },
            "limits": {"max_text_chars": 100, "max_batch_texts": 8},
        }
    )
    return TaskGateway(SentimentTask(), settings, SaturatedPool(saturated))  # type: ignore[arg-type]


def test_an_overloaded_default_model_degrades_to_the_configured_cheaper_one():
    answer = asyncio.run(sentiment_gateway("logreg", {"transformer"}).infer(["a fine film"]))
    assert answer.degraded and answer.model.family == "logreg" and answer.decision.arm == "degraded:logreg"
    assert answer.outputs == [[0.1, 0.9]]


def test_without_degrade_to_or_for_an_explicit_model_overload_is_a_503():
    with pytest.raises(WouldMissDeadline):
        asyncio.run(sentiment_gateway(None, {"transformer"}).infer(["a fine film"]))
    with pytest.raises(WouldMissDeadline):  # the caller asked for this model by name: no substitute
        asyncio.run(sentiment_gateway("logreg", {"transformer"}).infer(["a fine film"], model="transformer"))
    with pytest.raises(WouldMissDeadline):  # the cheaper model is saturated too: the first refusal stands
        asyncio.run(sentiment_gateway("logreg", {"transformer", "logreg"}).infer(["a fine film"]))
    calm = asyncio.run(sentiment_gateway("logreg", set()).infer(["a fine film"]))
    assert not calm.degraded and calm.model.family == "transformer"


def test_degrade_to_must_be_a_model_of_the_task():
    with pytest.raises(ValueError, match="degrade_to"):
        sentiment_gateway("minilm", set())
