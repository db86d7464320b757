"""The entry service's traffic policies, fallback, ensemble and prediction records, on a real in-process
service instance (real runners, tiny real models). Faults are injected into the runner hop."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import time
from pathlib import Path

import pytest

from bundle import samples
from tests.conftest import TEST_MONITORING_DIR


@pytest.fixture()
def make_service(tiny_models, monkeypatch):
    import service
    from bundle.settings import parse_settings

    base = service.SETTINGS.model_dump()
    service.BundleService.inject_config()  # BENTOML_CONFIG(+_OPTIONS), as `bentoml serve` would load it

    def make(limits=None, **sentiment):
        """The service with these keys changed in serving.yaml's ``tasks.sentiment`` (and ``limits``)."""
        tasks = {**base["tasks"], "sentiment": {**base["tasks"]["sentiment"], **sentiment}}
        changed = {**base, "tasks": tasks, "limits": {**base["limits"], **(limits or {})}}
        monkeypatch.setattr(service, "SETTINGS", parse_settings(changed))
        return service.BundleService()

    return make


class BrokenRunner:
    """Stands in for a runner whose process is down: every call fails like a refused connection."""

    def __init__(self, delay: float = 0.0) -> None:
        self.to_async = self
        self.delay = delay
        self.calls = 0

    async def predict(self, items):
        self.calls += 1
        await asyncio.sleep(self.delay)
        raise ConnectionRefusedError("runner is down")

    async def models(self):
        raise ConnectionRefusedError("runner is down")


def run(coro):
    return asyncio.run(coro)


def refused(answer, status: int) -> str:
    """The error message of a refusal the service answered itself (status, Retry-After, JSON body)."""
    from starlette.responses import JSONResponse

    assert isinstance(answer, JSONResponse), answer
    assert answer.status_code == status
    assert int(answer.headers["retry-after"]) >= 1
    return json.loads(answer.body)["error"]


def test_ab_split_routes_and_reports_the_arm(make_service, tiny_models):
    svc = make_service(
        routing={"policy": "ab", "arms": [{"family": "logreg", "weight": 50}, {"family": "naive_bayes", "weight": 50}]}
    )

    async def scenario():
        answers = [await svc.sentiment(text=samples.POSITIVE, user=f"user-{i}") for i in range(60)]
        again = [await svc.sentiment(text=samples.NEGATIVE, user=f"user-{i}") for i in range(60)]
        return answers, again

    answers, again = run(scenario())
    assert {a.family for a in answers} == {"logreg", "naive_bayes"}
    assert all(a.policy == "ab" for a in answers)
    assert [a.model for a in answers] == [a.model for a in again]  # sticky per user
    assert {a.model for a in answers} == {tiny_models["logreg"], tiny_models["naive_bayes"]}


def test_an_arm_whose_runner_is_down_falls_back_to_the_default(make_service, tiny_models):
    svc = make_service(
        default_model="logreg",
        routing={
            "policy": "canary",
            "arms": [{"family": "logreg", "weight": 50}, {"family": "transformer", "weight": 50}],
        },
    )
    run(svc.pool.catalog())  # the runner was up at first ...
    broken = BrokenRunner()
    svc.pool.clients["gpu"] = broken  # ... and then went down

    async def scenario():
        return [await svc.sentiment(text=samples.POSITIVE, user=f"u{i}") for i in range(40)]

    answers = run(scenario())
    assert broken.calls > 5  # the canary arm was tried ...
    assert {a.model for a in answers} == {tiny_models["logreg"]}  # ... and the default answered every time
    assert {a.arm for a in answers} == {"logreg", "fallback:logreg"}
    assert all(a.label == "positive" for a in answers)


def test_explicit_model_on_a_down_runner_is_503_not_a_silent_switch(make_service):
    svc = make_service()
    svc.pool.clients["gpu"] = BrokenRunner()  # down from the start: the service cannot even list its models
    assert "'transformer' is temporarily unavailable" in refused(
        run(svc.sentiment(text="fine", model="transformer")), 503
    )
    assert run(svc.sentiment(text="fine", model="logreg")).family == "logreg"


def test_failing_and_slow_shadows_never_change_the_answer(make_service, tiny_models):
    from bundle.observability import SHADOW

    svc = make_service(
        default_model="logreg",
        routing={
            "policy": "single",
            "arms": [{"family": "logreg", "weight": 100}],
            "shadows": [{"family": "transformer", "timeout_ms": 100}, {"family": "naive_bayes"}],
        },
    )
    run(svc.pool.catalog())
    svc.pool.clients["gpu"] = BrokenRunner(delay=1.0)  # slow *and* failing: the timeout cuts it off first

    def counter(shadow, outcome):
        return SHADOW.labels(task="sentiment", shadow=shadow, outcome=outcome)._value.get()

    before = {o: counter("transformer", o) for o in ("timeout", "error")}
    agree_before = counter("naive_bayes", "agree") + counter("naive_bayes", "disagree")

    async def scenario():
        timings, answers = [], []
        for text, _ in samples.LABELLED:
            started = time.perf_counter()
            answers.append(await svc.sentiment(text=text))
            timings.append(time.perf_counter() - started)
        await svc.gateways["sentiment"].shadows.drain()
        return answers, timings

    answers, timings = run(scenario())
    assert [a.label for a in answers] == [label for _, label in samples.LABELLED]
    assert {a.model for a in answers} == {tiny_models["logreg"]}
    assert max(timings) < 1.0  # never waited for the 1 s shadow
    assert counter("transformer", "timeout") - before["timeout"] == len(samples.LABELLED)
    compared = counter("naive_bayes", "agree") + counter("naive_bayes", "disagree") - agree_before
    assert compared == len(samples.LABELLED)


def test_ensemble_combines_members_concurrently(make_service, tiny_models):
    svc = make_service(
        ensemble={"members": [{"family": "transformer", "weight": 2}, {"family": "logreg", "weight": 1}]}
    )
    answer = run(svc.sentiment_ensemble(text=samples.POSITIVE))
    assert [m.family for m in answer.members] == ["transformer", "logreg"]
    assert [round(m.weight, 4) for m in answer.members] == [0.6667, 0.3333]
    expected = sum(m.weight * m.probabilities["positive"] for m in answer.members)
    assert answer.probabilities["positive"] == pytest.approx(expected, abs=1e-5)
    assert answer.label == "positive"


def test_predictions_are_recorded_without_raw_text_by_default(make_service, tiny_models):
    svc = make_service()
    marker = "a wonderfully distinctive sentence for the monitoring test"
    run(svc.sentiment(text=marker, model="naive_bayes"))
    files = glob.glob(os.path.join(TEST_MONITORING_DIR, "bundle_predictions", "data", "*.log*"))
    assert files
    records = [json.loads(line) for f in files for line in Path(f).read_text().splitlines()]
    mine = [r for r in records if r.get("model") == tiny_models["naive_bayes"] and r["text_chars"] == [len(marker)]]
    assert mine, records[-3:]
    record = mine[-1]  # one record per request; its lists hold one entry per text
    assert record["task"] == "sentiment"
    assert record["label"][0] in ("positive", "negative")
    assert len(record["text_sha256"][0]) == 64 and "text" not in record
    assert record["policy"] == "explicit" and record["role"] == "primary"
    assert record["latency_ms"] >= 0
    assert marker not in "".join(Path(f).read_text() for f in files)


class WedgedRunner:
    """Stands in for a runner that stops answering without dying: calls are accepted, never answered."""

    def __init__(self) -> None:
        self.to_async = self
        self.calls = 0

    async def predict(self, items):
        self.calls += 1
        await asyncio.sleep(3600)

    async def models(self):
        await asyncio.sleep(3600)


def test_a_wedged_runner_costs_a_routed_request_its_deadline_then_the_default_answers(make_service, tiny_models):
    from bundle.observability import FALLBACKS, RUNNER_FAILURES

    svc = make_service(
        limits={"deadline_ms": 300},
        default_model="logreg",
        routing={"policy": "single", "arms": [{"family": "transformer", "weight": 100}]},
    )
    run(svc.pool.catalog())
    wedged = WedgedRunner()
    svc.pool.clients["gpu"] = wedged
    wedges = RUNNER_FAILURES.labels(runner="gpu", reason="deadline")._value.get()
    fallbacks = FALLBACKS.labels(task="sentiment", arm="transformer", reason="deadline")._value.get()

    async def scenario():
        started = time.perf_counter()
        answer = await svc.sentiment(text=samples.POSITIVE)
        return answer, time.perf_counter() - started

    answer, seconds = run(scenario())
    assert wedged.calls == 1
    assert answer.arm == "fallback:logreg" and answer.model == tiny_models["logreg"]
    assert 0.25 < seconds < 5  # the deadline, not the 30 s traffic timeout
    assert RUNNER_FAILURES.labels(runner="gpu", reason="deadline")._value.get() == wedges + 1
    assert FALLBACKS.labels(task="sentiment", arm="transformer", reason="deadline")._value.get() == fallbacks + 1


def test_a_wedged_runner_without_a_fallback_is_503_with_retry_after_at_the_deadline(make_service):
    svc = make_service(limits={"deadline_ms": 300})  # the default model is the transformer itself
    run(svc.pool.catalog())
    svc.pool.clients["gpu"] = WedgedRunner()

    async def scenario():
        started = time.perf_counter()
        routed = await svc.sentiment(text="fine")
        explicit = await svc.sentiment_batch(texts=["fine"], model="transformer")
        ensemble = await svc.sentiment_ensemble(text="fine")
        embedded = await svc.embed(texts=["fine"])
        return [routed, explicit, ensemble, embedded], time.perf_counter() - started

    answers, seconds = run(scenario())
    for answer in answers:
        assert "did not answer within 300 ms" in refused(answer, 503)
    assert seconds < 5  # four deadlines of 0.3 s
    assert run(svc.sentiment(text="fine", model="logreg")).family == "logreg"  # the CPU models stay healthy
