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

    def make(**changes):
        monkeypatch.setattr(service, "SETTINGS", parse_settings({**base, **changes}))
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
    run(svc.catalog())  # the runner was up at first ...
    broken = BrokenRunner()
    svc.runners["gpu"] = broken  # ... and then went down

    async def scenario():
        return [await svc.sentiment(text=samples.POSITIVE, user=f"u{i}") for i in range(40)]

    answers = run(scenario())
    assert broken.calls > 5  # the canary arm was tried ...
    assert {a.model for a in answers} == {tiny_models["logreg"]}  # ... and the default answered every time
    assert {a.arm for a in answers} == {"logreg", "fallback:logreg"}
    assert all(a.label == "positive" for a in answers)


def test_explicit_model_on_a_down_runner_is_503_not_a_silent_switch(make_service):
    import bentoml

    svc = make_service()
    svc.runners["gpu"] = BrokenRunner()  # down from the start: the service cannot even list its models
    with pytest.raises(bentoml.exceptions.ServiceUnavailable, match="'transformer' is temporarily unavailable"):
        run(svc.sentiment(text="fine", model="transformer"))
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
    run(svc.catalog())
    svc.runners["gpu"] = BrokenRunner(delay=1.0)  # slow *and* failing: the timeout cuts it off first

    def counter(shadow, outcome):
        return SHADOW.labels(shadow=shadow, outcome=outcome)._value.get()

    before = {o: counter("transformer", o) for o in ("timeout", "error")}
    agree_before = counter("naive_bayes", "agree") + counter("naive_bayes", "disagree")

    async def scenario():
        timings, answers = [], []
        for text, _ in samples.LABELLED:
            started = time.perf_counter()
            answers.append(await svc.sentiment(text=text))
            timings.append(time.perf_counter() - started)
        await svc.shadows.drain()
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
    mine = [r for r in records if r.get("model") == tiny_models["naive_bayes"] and r["text_chars"] == len(marker)]
    assert mine, records[-3:]
    record = mine[-1]
    assert record["label"] in ("positive", "negative")
    assert len(record["text_sha256"]) == 64 and "text" not in record
    assert record["policy"] == "explicit" and record["role"] == "primary"
    assert record["latency_ms"] >= 0
    assert marker not in "".join(Path(f).read_text() for f in files)
