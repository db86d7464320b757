"""Request coalescing: concurrent requests for one runner travel to it as one call.

The runner batches adaptively, but without this every public request would still cost one HTTP round
trip between the entry service and the runner: a request to build and parse on both sides, a pydantic
list to validate, a response to write, access-log and tracing middleware to pass, all on the same cores
the model needs. A :class:`Coalescer` sends a call at once while fewer than ``max_in_flight`` of its calls
are outstanding; requests that arrive meanwhile queue up and leave together in the next call (up to
``max_batch`` items). There is no timer: at low load every request goes straight through, and under load
the queue fills exactly while the runner is busy, so the runner's dispatcher receives whole batches
instead of assembling them one HTTP request at a time. Results are split back in order; an error of a
call goes to every request that was in it (each then falls back or answers as it would alone).

Because the runner then sees one call at a time, its own dispatcher never sheds load, so the queue here
is where overload is decided: it holds at most ``max_queued`` items (beyond: :class:`QueueFull`, 429), and
a request whose predicted wait passes its budget (the smaller of ``max_wait`` and the time left to its
deadline) is refused at once (:class:`WouldMissDeadline`, 503) instead of waiting to time out. The
prediction is the sum, over the queued and in-flight items, of the median cost per item of recent calls
*of the same kind* (``key``: the model, since one runner hosts models of very different costs: a
transformer and a translation model must not price each other's requests), each call weighing as many
items as it carried. With several calls in flight the runner still computes one at a time, so a call's
cost is the time from when it could start (when it was sent, or when the call before it ended, whichever
is later) to its end: its wait behind the other call is not its cost (counting it priced a lone small
call sent during a large one at the large one's duration, and the inflated estimate then shed nearly
every request of a burst). Weighing by items matters when calls alternate between large and tiny (two
calls in flight do that): a call of one item pays a forward pass's whole fixed cost, and a plain median
over calls priced every queued item at it (an estimate ~7x too high shed 145 of 1,000 requests at
c=64 in one runner configuration). The first call of each kind pays for its warm-up and does not
count; an idle runner always gets a try, so a stale estimate heals. A caller that gave up (cancelled,
deadline passed) leaves the queue before a batch is built, so its items never reach the model.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bundle.overload import QueueFull, WouldMissDeadline

Item = TypeVar("Item")
Result = TypeVar("Result")

logger = logging.getLogger("bentoml.bundle.coalesce")

_SAMPLES = 9  # recent calls whose cost per item the estimate is the (item-weighted) median of


def weighted_median(samples: Sequence[tuple[float, int]]) -> float:
    """The value below which half of the total weight lies: ``(value, weight)`` pairs, weights >= 1."""
    ordered = sorted(samples)
    half, seen = sum(w for _, w in ordered) / 2, 0
    for value, weight in ordered:
        seen += weight
        if seen >= half:
            return value
    return ordered[-1][0]


@dataclass(eq=False)
class _Waiting(Generic[Item, Result]):
    items: list[Item]
    future: asyncio.Future[Sequence[Result]]
    deadline: float | None  # time.monotonic() seconds
    queued: bool = field(default=True)


class Coalescer(Generic[Item, Result]):
    """Merge concurrent ``submit(items)`` calls into calls of ``call(all_items)``.

    ``call`` must return one result per item, in order. ``max_in_flight=0`` turns merging off: every
    submission is its own call (and the runner's own dispatcher decides about overload). ``key`` names
    an item's kind for the cost estimate (one kind when not given).
    """

    def __init__(
        self,
        call: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        max_batch: int,
        max_in_flight: int,
        max_queued: int = 1_000_000,
        max_wait: float = float("inf"),
        name: str = "runner",
        key: Callable[[Item], Hashable] = lambda item: None,
    ) -> None:
        if max_batch < 1 or max_in_flight < 0 or max_queued < 1:
            raise ValueError(
                f"max_batch and max_queued must be >= 1 and max_in_flight >= 0, got {max_batch}, {max_queued}, "
                f"{max_in_flight}"
            )
        self.call = call
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.max_wait = max_wait
        self.name = name
        self.key = key
        self._queue: deque[_Waiting[Item, Result]] = deque()
        self.queued_items = 0
        self.in_flight_items = 0
        self._in_flight = 0
        self._in_flight_kinds: Counter[Hashable] = Counter()  # items of each kind in calls now running
        self.cost: dict[Hashable, float] = {}  # seconds per item, per kind, once a call after its first ended
        self._calls_of: Counter[Hashable] = Counter()
        self._samples: dict[Hashable, deque[tuple[float, int]]] = {}  # (seconds per item, items) per call
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each call finishes
        self._last_end = 0.0  # time.monotonic() when the latest call ended

    @property
    def seconds_per_item(self) -> float | None:
        """The cost per item when all items are of one kind (the typical one otherwise)."""
        if not self.cost:
            return None
        return statistics.median_low(self.cost.values())

    def _cost(self, kinds: Counter[Hashable]) -> float:
        """Seconds for these items: each kind at its own recent cost, an unknown kind at the typical one."""
        typical = self.seconds_per_item or 0.0
        return sum(n * self.cost.get(kind, typical) for kind, n in kinds.items())

    def predicted_wait(self, extra: Sequence[Item] = ()) -> float:
        """Seconds until ``extra`` would be answered: the work queued and in flight ahead of it, and its own."""
        if not self.cost:
            return 0.0
        ahead = Counter(self.key(item) for w in self._queue if w.queued for item in w.items)
        ahead.update(self._in_flight_kinds)
        ahead.update(self.key(item) for item in extra)
        return self._cost(ahead)

    async def submit(
        self, items: list[Item], deadline: float | None = None, max_wait: float | None = None
    ) -> Sequence[Result]:
        """The results of ``items``; ``max_wait`` (seconds) replaces the coalescer's own for this request."""
        if self.max_in_flight == 0:
            self._flying(items, +1)
            try:
                return await self._timed(items)
            finally:
                self._flying(items, -1)
        n = len(items)
        if self.queued_items + n > self.max_queued:
            raise QueueFull(
                f"too many requests are waiting for the {self.name} runner ({self.queued_items} inputs queued, "
                f"at most {self.max_queued}); retry later",
                retry_after=self.predicted_wait(),
            )
        limit = self.max_wait if max_wait is None else max_wait
        budget = limit if deadline is None else min(limit, deadline - time.monotonic())
        expected = self.predicted_wait(items)
        idle = self.queued_items == 0 and self.in_flight_items == 0  # an idle runner always gets a try,
        if expected > budget and not idle:  # so a stale estimate is corrected by the next call
            raise WouldMissDeadline(
                f"the {self.name} runner is overloaded: this request would wait about {expected * 1000:.0f} ms, "
                f"more than its {max(budget, 0) * 1000:.0f} ms budget; retry later",
                retry_after=expected,
            )
        waiting: _Waiting[Item, Result] = _Waiting(items, asyncio.get_running_loop().create_future(), deadline)
        waiting.future.add_done_callback(lambda _: self._unqueue(waiting))
        self._queue.append(waiting)
        self.queued_items += n
        self._send_what_fits()
        return await waiting.future

    def _unqueue(self, waiting: _Waiting[Item, Result]) -> None:
        if waiting.queued:
            waiting.queued = False
            self.queued_items -= len(waiting.items)

    def _take_batch(self) -> list[_Waiting[Item, Result]]:
        batch: list[_Waiting[Item, Result]] = []
        size = 0
        now = time.monotonic()
        while self._queue:
            head = self._queue[0]
            if head.future.done():  # the caller gave up (client gone, its deadline handled elsewhere)
                self._queue.popleft()
                continue
            if head.deadline is not None and head.deadline <= now:
                self._queue.popleft()
                self._unqueue(head)
                head.future.set_exception(
                    WouldMissDeadline(f"the {self.name} runner did not get to this request in time", 1.0)
                )
                continue
            if batch and size + len(head.items) > self.max_batch:
                break
            self._queue.popleft()
            self._unqueue(head)
            batch.append(head)
            size += len(head.items)
        return batch

    def _send_what_fits(self) -> None:
        while self._queue and self._in_flight < self.max_in_flight:
            batch = self._take_batch()
            if not batch:
                continue
            self._in_flight += 1
            self._flying([item for waiting in batch for item in waiting.items], +1)
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _timed(self, flat: list[Item]) -> Sequence[Result]:
        kinds = Counter(self.key(item) for item in flat)
        sent = time.monotonic()
        results = await self.call(flat)
        ended = time.monotonic()
        # the runner's time for this call began when it was sent or when the previous call ended
        started, self._last_end = max(sent, self._last_end), ended
        if len(results) != len(flat):
            raise RuntimeError(f"the runner answered {len(results)} results for {len(flat)} inputs")
        self._learn(kinds, ended - started)
        return results

    def _learn(self, kinds: Counter[Hashable], seconds: float) -> None:
        """Update each kind's cost from one call. A call of several kinds is shared out in proportion to
        what each kind was expected to cost (evenly per item while a kind is still unknown)."""
        known = all(kind in self.cost for kind in kinds)
        expected = self._cost(kinds) if known else 0.0
        for kind, n in kinds.items():
            self._calls_of[kind] += 1
            if self._calls_of[kind] == 1:  # its first call pays for warm-up: not a cost estimate
                continue
            share = (
                seconds * (n * self.cost[kind] / expected) if known and expected > 0 else seconds * n / kinds.total()
            )
            samples = self._samples.setdefault(kind, deque(maxlen=_SAMPLES))
            samples.append((share / n, n))
            # a median of recent calls: one call that hung (a runner paused, then resumed) must not make
            # every later request look hopeless; weighted by items, so tiny calls do not set the price
            self.cost[kind] = weighted_median(samples)

    async def _send(self, batch: list[_Waiting[Item, Result]]) -> None:
        flat = [item for waiting in batch for item in waiting.items]
        try:
            results = await self._timed(flat)
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.future.cancel()
            raise
        except Exception as exc:
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
        else:
            start = 0
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_result(results[start : start + len(waiting.items)])
                start += len(waiting.items)
        finally:
            self._in_flight -= 1
            self._flying(flat, -1)
            self._send_what_fits()

    def _flying(self, items: Sequence[Item], sign: int) -> None:
        """Count items into (+1) or out of (-1) the calls in flight."""
        self.in_flight_items += sign * len(items)
        for item in items:
            self._in_flight_kinds[self.key(item)] += sign
        self._in_flight_kinds = +self._in_flight_kinds  # forget kinds at zero
