"""Request coalescing: concurrent requests for one runner travel to it as one call.

The runner batches adaptively, but without this every public request would still cost one HTTP round
trip between the entry service and the runner: a request to build and parse on both sides, a pydantic
list to validate, a response to write, access-log and tracing middleware to pass, all on the same two
cores the model needs. A :class:`Coalescer` sends a call at once while fewer than ``max_in_flight`` of
its calls are outstanding; requests that arrive meanwhile queue up and leave together in the next call
(up to ``max_batch`` items). There is no timer: at low load every request goes straight through, and
under load the queue fills exactly while the runner is busy, so the runner's dispatcher receives whole
batches instead of assembling them one HTTP request at a time. Results are split back in order; an error
of a call goes to every request that was in it (each then falls back or answers as it would alone).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

logger = logging.getLogger("bentoml.sentiment.coalesce")


class Coalescer(Generic[Item, Result]):
    """Merge concurrent ``submit(items)`` calls into calls of ``call(all_items)``.

    ``call`` must return one result per item, in order. ``max_in_flight=0`` turns merging off: every
    submission is its own call.
    """

    def __init__(
        self,
        call: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        max_batch: int,
        max_in_flight: int,
    ) -> None:
        if max_batch < 1 or max_in_flight < 0:
            raise ValueError(f"max_batch must be >= 1 and max_in_flight >= 0, got {max_batch}, {max_in_flight}")
        self.call = call
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._queue: deque[tuple[list[Item], asyncio.Future[Sequence[Result]]]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each call finishes
        self.calls = 0  # calls sent, for tests and debugging
        self.items = 0

    async def submit(self, items: list[Item]) -> Sequence[Result]:
        if self.max_in_flight == 0 or len(items) >= self.max_batch:
            self.calls += 1
            self.items += len(items)
            return await self.call(items)
        future: asyncio.Future[Sequence[Result]] = asyncio.get_running_loop().create_future()
        self._queue.append((items, future))
        self._send_what_fits()
        return await future

    def _send_what_fits(self) -> None:
        while self._queue and self._in_flight < self.max_in_flight:
            batch = [self._queue.popleft()]
            size = len(batch[0][0])
            while self._queue and size + len(self._queue[0][0]) <= self.max_batch:
                size += len(self._queue[0][0])
                batch.append(self._queue.popleft())
            # a waiter that gave up (client gone, timeout) needs no answer
            batch = [(items, future) for items, future in batch if not future.done()]
            if not batch:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[list[Item], asyncio.Future[Sequence[Result]]]]) -> None:
        flat = [item for items, _ in batch for item in items]
        self.calls += 1
        self.items += len(flat)
        try:
            results = await self.call(flat)
            if len(results) != len(flat):
                raise RuntimeError(f"the runner answered {len(results)} results for {len(flat)} inputs")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            start = 0
            for items, future in batch:
                if not future.done():
                    future.set_result(results[start : start + len(items)])
                start += len(items)
        finally:
            self._in_flight -= 1
            self._send_what_fits()
