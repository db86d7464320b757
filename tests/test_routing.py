"""Traffic policies at unit level: split ratios, stickiness, canary steps, shadow isolation."""

from __future__ import annotations

import asyncio
import collections
import math
import random
import time

import pytest

from bundle.routing import BUCKETS, Router, ShadowLauncher, bucket_of
from bundle.settings import Routing, SettingsError, Shadow, parse_settings


def routing(*weights: float, policy: str = "ab") -> Routing:
    families = ["logreg", "naive_bayes", "transformer"]
    return Routing(policy=policy, arms=[{"family": families[i], "weight": w} for i, w in enumerate(weights)])


@pytest.mark.parametrize("weights", [(90, 10), (50, 50), (70, 20, 10), (99, 1)])
def test_random_split_matches_weights_within_statistical_tolerance(weights):
    router = Router(routing(*weights), rng=random.Random(1234))
    n = 20_000
    counts = collections.Counter(router.decide().family for _ in range(n))
    for arm in router.arms:
        p = arm.weight / 100
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[arm.family] - n * p) < 4 * sigma, (arm.family, counts)


def test_sticky_split_matches_weights_over_many_callers():
    router = Router(routing(80, 20))
    n = 20_000
    counts = collections.Counter(router.decide(f"user-{i}").family for i in range(n))
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(counts["naive_bayes"] - 0.2 * n) < 4 * sigma, counts


def test_the_same_caller_always_gets_the_same_arm():
    router = Router(routing(50, 50), rng=random.Random(0))
    for i in range(200):
        first = router.decide(f"session-{i}")
        assert all(router.decide(f"session-{i}").arm == first.arm for _ in range(5))


def test_raising_a_canary_only_moves_callers_into_it():
    before = Router(routing(95, 5, policy="canary"))
    after = Router(routing(80, 20, policy="canary"))
    users = [f"user-{i}" for i in range(5_000)]
    in_canary_before = {u for u in users if before.decide(u).family == "naive_bayes"}
    in_canary_after = {u for u in users if after.decide(u).family == "naive_bayes"}
    assert in_canary_before <= in_canary_after
    assert len(in_canary_after) > 2 * len(in_canary_before)


def test_buckets_are_uniform_and_salted():
    buckets = [bucket_of(f"k{i}") for i in range(10_000)]
    assert min(buckets) >= 0 and max(buckets) < BUCKETS
    assert bucket_of("alice") != bucket_of("alice", salt="experiment-2") or bucket_of("bob") != bucket_of(
        "bob", salt="experiment-2"
    )


BASE = {
    "models": {
        "logreg": {
            "task": "sentiment",
            "store_name": "sentiment_logreg",
            "runner": "cpu",
            "versions": ["latest", "abc"],
        },
        "naive_bayes": {"task": "sentiment", "store_name": "sentiment_nb", "runner": "cpu"},
    },
    "runners": {"cpu": {"max_batch_size": 64, "max_latency_ms": 1000}},
    "limits": {"max_text_chars": 100, "max_batch_texts": 8},
}


@pytest.mark.parametrize(
    "routing_section, message",
    [
        (
            {"policy": "ab", "arms": [{"family": "logreg", "weight": 90}, {"family": "naive_bayes", "weight": 5}]},
            "sum to 100",
        ),
        ({"policy": "ab", "arms": [{"family": "nope", "weight": 100}]}, "model 'nope' is not one of task 'sentiment'"),
        ({"policy": "ab", "arms": [{"family": "logreg", "version": "zzz", "weight": 100}]}, "version 'zzz'"),
        (
            {"policy": "single", "arms": [{"family": "logreg", "weight": 50}, {"family": "naive_bayes", "weight": 50}]},
            "exactly one arm",
        ),
        ({"policy": "canary", "arms": [{"family": "logreg", "weight": 100}]}, "two arms"),
        (
            {"policy": "ab", "arms": [{"family": "logreg", "weight": 100}], "shadows": [{"family": "gone"}]},
            "routing.shadows",
        ),
    ],
)
def test_routing_configuration_errors_are_clear(routing_section, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings(with_routing(routing_section), "serving.yaml")


def with_routing(routing_section: dict) -> dict:
    return {**BASE, "tasks": {"sentiment": {"default_model": "logreg", "routing": routing_section}}}


def test_versions_of_one_family_can_be_split():
    settings = parse_settings(
        with_routing(
            {
                "policy": "canary",
                "arms": [{"family": "logreg", "weight": 90}, {"family": "logreg", "version": "abc", "weight": 10}],
            }
        )
    )
    routing = settings.tasks["sentiment"].routing
    assert routing is not None
    labels = {Router(routing).decide(f"u{i}").arm for i in range(500)}
    assert labels == {"logreg", "logreg:abc"}


# ---- shadows ----------------------------------------------------------------------------------------


async def _primary(launcher: ShadowLauncher | None, results: list) -> tuple[str, float]:
    """A stand-in primary request: 20 ms of work, then shadows are launched, then it answers."""
    started = time.perf_counter()
    await asyncio.sleep(0.02)
    answer = "positive"
    if launcher is not None:

        async def call(shadow: Shadow):
            if shadow.family == "slow":
                await asyncio.sleep(5)
            if shadow.family == "failing":
                raise ConnectionError("runner is down")
            return "negative"

        launcher.launch(call, lambda shadow, outcome, result, seconds: results.append((shadow.family, outcome)))
    return answer, time.perf_counter() - started


def test_slow_and_failing_shadows_do_not_change_the_answer_or_its_latency():
    shadows = [
        Shadow(family="slow", timeout_ms=200),
        Shadow(family="failing"),
        Shadow(family="fine"),
    ]

    async def scenario():
        results: list = []
        baseline = [await _primary(None, results) for _ in range(20)]
        launcher = ShadowLauncher(shadows, max_in_flight=1000)
        shadowed = [await _primary(launcher, results) for _ in range(20)]
        await launcher.drain()
        return baseline, shadowed, results

    baseline, shadowed, results = asyncio.run(scenario())
    assert {a for a, _ in shadowed} == {a for a, _ in baseline} == {"positive"}
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    # Same run, same machine: a shadow that sleeps 5 s or fails must add far less than its own cost.
    assert median([t for _, t in shadowed]) < median([t for _, t in baseline]) + 0.05
    outcomes = collections.Counter(results)
    assert outcomes[("slow", "timeout")] == 20
    assert outcomes[("failing", "error")] == 20
    assert outcomes[("fine", "ok")] == 20


def test_shadow_overflow_is_dropped_and_counted():
    async def scenario():
        results: list = []
        launcher = ShadowLauncher([Shadow(family="slow", timeout_ms=1000)], max_in_flight=3)

        async def call(shadow):
            await asyncio.sleep(0.5)

        for _ in range(10):
            launcher.launch(call, lambda shadow, outcome, result, seconds: results.append(outcome))
        assert len(launcher.in_flight) == 3
        await launcher.drain()
        return collections.Counter(results)

    assert asyncio.run(scenario()) == {"dropped": 7, "ok": 3}


def test_shadow_sample_rate():
    async def scenario():
        launcher = ShadowLauncher([Shadow(family="fine", sample_rate=0.25)], max_in_flight=10_000, rng=random.Random(3))

        async def call(shadow):
            return None

        started = sum(launcher.launch(call, lambda *a: None) for _ in range(4000))
        await launcher.drain()
        return started

    started = asyncio.run(scenario())
    assert abs(started - 1000) < 4 * math.sqrt(4000 * 0.25 * 0.75)
