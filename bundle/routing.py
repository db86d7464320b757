"""Traffic policies, free of BentoML so they can be tested on their own.

- :class:`Router` splits requests that name no model between weighted arms (A/B test or canary).
  A request that carries a caller key (``user``) is sticky: the key is hashed into one of 10,000
  buckets, so the same caller always lands on the same arm for as long as the weights stay put, and
  raising a canary from 5 % to 20 % moves only callers into the canary, never out of it. Without a
  key, the arm is drawn at random.
- :class:`ShadowLauncher` sends copies of a request to shadow models off the critical path: the caller's
  answer never waits for a shadow, a slow shadow is cut off at its timeout, a failing one is counted
  and logged, and at most ``max_in_flight`` shadow calls run at once (extra copies are dropped and
  counted) so a stuck shadow cannot pile up memory.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from bundle.settings import Arm, Routing, Shadow

logger = logging.getLogger("bentoml.bundle.routing")

BUCKETS = 10_000


@dataclass(frozen=True)
class Decision:
    policy: str  # "single", "ab", "canary", or "explicit" when the request named its model
    arm: str  # the arm's label, e.g. "logreg" or "logreg:j46mfrxgfknroax4"
    family: str
    version: str | None


def bucket_of(key: str, salt: str = "") -> int:
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


class Router:
    def __init__(self, routing: Routing, rng: random.Random | None = None, salt: str = "") -> None:
        self.policy = routing.policy
        self.arms: list[Arm] = list(routing.arms)
        self.salt = salt
        self.rng = rng or random.Random()
        # cumulative bucket boundaries: arm i owns buckets [bounds[i-1], bounds[i])
        total, bounds = 0.0, []
        for arm in self.arms:
            total += arm.weight
            bounds.append(round(total / 100 * BUCKETS))
        bounds[-1] = BUCKETS
        self.bounds = bounds

    def decide(self, key: str | None = None) -> Decision:
        bucket = bucket_of(key, self.salt) if key else self.rng.randrange(BUCKETS)
        arm = self.arms[bisect.bisect_right(self.bounds, bucket)]
        return Decision(self.policy, arm.label(), arm.family, arm.version)


Outcome = Literal["ok", "error", "timeout", "dropped"]


class ShadowLauncher:
    def __init__(self, shadows: list[Shadow], max_in_flight: int = 64, rng: random.Random | None = None) -> None:
        self.shadows = list(shadows)
        self.max_in_flight = max_in_flight
        self.rng = rng or random.Random()
        self.in_flight: set[asyncio.Task[None]] = set()

    def launch(
        self,
        call: Callable[[Shadow], Awaitable[Any]],
        on_done: Callable[[Shadow, Outcome, Any, float], None],
    ) -> int:
        """Start one background call per sampled shadow; return how many started. Never raises."""
        started = 0
        for shadow in self.shadows:
            if shadow.sample_rate < 1 and self.rng.random() >= shadow.sample_rate:
                continue
            if len(self.in_flight) >= self.max_in_flight:
                _safe(on_done, shadow, "dropped", None, 0.0)
                continue
            task = asyncio.get_running_loop().create_task(self._run(shadow, call, on_done))
            self.in_flight.add(task)  # keep a reference, or the task may be garbage-collected mid-flight
            task.add_done_callback(self.in_flight.discard)
            started += 1
        return started

    async def _run(
        self,
        shadow: Shadow,
        call: Callable[[Shadow], Awaitable[Any]],
        on_done: Callable[[Shadow, Outcome, Any, float], None],
    ) -> None:
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(call(shadow), timeout=shadow.timeout_ms / 1000)
        except TimeoutError:
            _safe(on_done, shadow, "timeout", None, time.perf_counter() - started)
        except Exception as exc:  # a shadow's failure must never reach the caller
            logger.warning("shadow %s failed: %s: %s", shadow.label(), type(exc).__name__, exc)
            _safe(on_done, shadow, "error", exc, time.perf_counter() - started)
        else:
            _safe(on_done, shadow, "ok", result, time.perf_counter() - started)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the shadow calls in flight (tests, and graceful shutdown)."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=timeout)


def _safe(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:  # recording must not break the shadow machinery either
        logger.exception("recording a shadow result failed")
