"""Unit tests of the entry service's request coalescing (coalesce.py)."""

import asyncio
import time
from collections import Counter

import pytest

from bundle.coalesce import Coalescer
from bundle.overload import QueueFull, WouldMissDeadline


class FakeRunner:
    """Answers each item with its double after ``delay`` seconds; records the calls it received."""

    def __init__(self, delay: float = 0.02, fail_with: Exception | None = None) -> None:
        self.delay = delay
        self.fail_with = fail_with
        self.calls: list[list[int]] = []
        self.outstanding = 0
        self.max_outstanding = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_with is not None:
                raise self.fail_with
            return [2 * x for x in items]
        finally:
            self.outstanding -= 1


def run(coro):
    return asyncio.run(coro)


def test_a_lone_request_goes_straight_through():
    async def main():
        runner = FakeRunner()
        coalescer = Coalescer(runner, max_batch=64, max_in_flight=1)
        assert await coalescer.submit([1, 2]) == [2, 4]
        assert runner.calls == [[1, 2]]

    run(main())


def test_concurrent_requests_share_calls_and_get_their_own_answers_in_order():
    async def main():
        runner = FakeRunner()
        coalescer = Coalescer(runner, max_batch=64, max_in_flight=1)
        requests = [[i, 100 + i] for i in range(20)]
        answers = await asyncio.gather(*(coalescer.submit(r) for r in requests))
        assert [list(a) for a in answers] == [[2 * x for x in r] for r in requests]
        # the first request left alone; the other 19 queued behind it and left together
        assert len(runner.calls) == 2
        assert runner.calls[0] == [0, 100]
        assert sorted(runner.calls[1]) == sorted(x for r in requests[1:] for x in r)
        assert runner.max_outstanding == 1

    run(main())


def test_calls_never_exceed_max_batch_or_max_in_flight():
    async def main():
        runner = FakeRunner()
        coalescer = Coalescer(runner, max_batch=8, max_in_flight=2)
        requests = [[i] * (1 + i % 3) for i in range(40)]
        answers = await asyncio.gather(*(coalescer.submit(r) for r in requests))
        assert [list(a) for a in answers] == [[2 * x for x in r] for r in requests]
        assert max(len(c) for c in runner.calls) <= 8
        assert runner.max_outstanding == 2
        assert sum(len(c) for c in runner.calls) == sum(len(r) for r in requests)

    run(main())


def test_in_flight_zero_means_one_call_per_request():
    async def main():
        runner = FakeRunner()
        coalescer = Coalescer(runner, max_batch=64, max_in_flight=0)
        await asyncio.gather(*(coalescer.submit([i]) for i in range(10)))
        assert len(runner.calls) == 10
        assert runner.max_outstanding == 10

    run(main())


def test_a_failed_call_fails_every_request_in_it_and_the_next_call_still_runs():
    async def main():
        runner = FakeRunner(fail_with=ConnectionError("runner down"))
        coalescer = Coalescer(runner, max_batch=64, max_in_flight=1)
        results = await asyncio.gather(*(coalescer.submit([i]) for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        runner.fail_with = None
        assert await coalescer.submit([7]) == [14]

    run(main())


def test_a_wrong_number_of_results_is_an_error_not_a_silent_mismatch():
    async def short(items: list[int]) -> list[int]:
        return [0] * (len(items) - 1)

    async def main():
        coalescer = Coalescer(short, max_batch=64, max_in_flight=1)
        with pytest.raises(RuntimeError, match="answered 1 results for 2 inputs"):
            await coalescer.submit([1, 2])

    run(main())


def test_a_caller_that_gives_up_does_not_break_the_others():
    async def main():
        runner = FakeRunner(delay=0.05)
        coalescer = Coalescer(runner, max_batch=64, max_in_flight=1)
        first = asyncio.create_task(coalescer.submit([1]))
        await asyncio.sleep(0)
        impatient = asyncio.create_task(coalescer.submit([2]))
        patient = asyncio.create_task(coalescer.submit([3]))
        await asyncio.sleep(0)
        impatient.cancel()
        assert await first == [2]
        assert await patient == [6]
        assert impatient.cancelled()
        assert [3] in runner.calls  # the cancelled request was dropped from the queued call

    run(main())


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError):
        Coalescer(FakeRunner(), max_batch=0, max_in_flight=1)


def test_a_full_queue_refuses_new_requests_with_429_and_retry_after():
    async def main():
        runner = FakeRunner(delay=0.05)
        coalescer = Coalescer(runner, max_batch=4, max_in_flight=1, max_queued=6)
        first = asyncio.create_task(coalescer.submit([0] * 4))  # goes out at once
        await asyncio.sleep(0)
        queued = [asyncio.create_task(coalescer.submit([i] * 3)) for i in (1, 2)]  # 6 queued inputs
        await asyncio.sleep(0)
        with pytest.raises(QueueFull) as refused:
            await coalescer.submit([9])
        assert refused.value.status == 429
        assert "Retry-After" in refused.value.headers()
        assert "queued" in refused.value.message
        await asyncio.gather(first, *queued)
        assert coalescer.queued_items == 0
        assert await coalescer.submit([9]) == [18]  # room again

    run(main())


def test_a_request_that_cannot_meet_its_budget_is_shed_at_once():
    async def main():
        runner = FakeRunner(delay=0.05)
        coalescer = Coalescer(runner, max_batch=1, max_in_flight=1, max_wait=0.12)
        await coalescer.submit([0])  # warm-up: not counted
        assert coalescer.seconds_per_item is None
        await coalescer.submit([1])  # teaches it ~50 ms per item
        assert coalescer.seconds_per_item == pytest.approx(0.05, rel=0.5)
        accepted = [asyncio.create_task(coalescer.submit([i])) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(WouldMissDeadline) as shed:  # a third would wait ~150 ms > 120 ms
            await coalescer.submit([5])
        assert shed.value.status == 503 and shed.value.retry_after > 0
        # a deadline tighter than max_wait sheds earlier still
        with pytest.raises(WouldMissDeadline):
            await coalescer.submit([6], deadline=time.monotonic() + 0.01)
        # a task with a budget of its own (serving.yaml tasks.<task>.max_wait_ms) queues where others are shed
        patient = asyncio.create_task(coalescer.submit([7], max_wait=5.0))
        await asyncio.gather(*accepted)
        assert await patient == [14]

    run(main())


def test_expired_and_cancelled_requests_leave_the_queue_before_a_batch_is_built():
    async def main():
        runner = FakeRunner(delay=0.05)
        coalescer = Coalescer(runner, max_batch=4, max_in_flight=1)
        first = asyncio.create_task(coalescer.submit([0]))
        await asyncio.sleep(0)
        expiring = asyncio.create_task(coalescer.submit([1, 1, 1], deadline=time.monotonic() + 0.01))
        gone = asyncio.create_task(coalescer.submit([2, 2, 2]))
        kept = [asyncio.create_task(coalescer.submit([x])) for x in (3, 4, 5, 6)]
        await asyncio.sleep(0)
        gone.cancel()
        await first
        assert await asyncio.gather(*kept) == [[6], [8], [10], [12]]
        with pytest.raises(WouldMissDeadline):
            await expiring
        # the four live requests filled one call; the dead ones took no room in it
        assert runner.calls[1] == [3, 4, 5, 6]
        assert coalescer.queued_items == 0

    run(main())


def test_an_idle_runner_always_gets_a_try_so_a_bad_estimate_heals():
    async def main():
        runner = FakeRunner(delay=0.01)
        coalescer = Coalescer(runner, max_batch=8, max_in_flight=1, max_wait=0.5)
        coalescer.cost = {None: 10.0}  # as if a slow call had taught it 10 s per item
        assert await coalescer.submit([1]) == [2]  # idle: admitted despite the estimate
        await coalescer.submit([2])
        assert coalescer.seconds_per_item < 10.0

    run(main())


def test_one_hung_call_does_not_move_the_estimate():
    async def main():
        runner = FakeRunner(delay=0.01)
        coalescer = Coalescer(runner, max_batch=8, max_in_flight=1)
        for i in range(4):  # warm-up, then three ordinary calls
            await coalescer.submit([i])
        before = coalescer.seconds_per_item
        runner.delay = 0.5  # the runner was paused during this call
        await coalescer.submit([9])
        assert coalescer.seconds_per_item == before

    run(main())


def test_each_kind_of_item_is_priced_at_its_own_cost():
    """One runner, two models: a slow one must not make the fast one's requests look hopeless."""

    class TwoSpeeds(FakeRunner):
        async def __call__(self, items):
            self.calls.append(list(items))
            await asyncio.sleep(sum(0.05 if x < 0 else 0.001 for x in items))
            return [x * 2 for x in items]

    async def main():
        runner = TwoSpeeds()
        coalescer = Coalescer(runner, max_batch=64, max_in_flight=1, max_wait=0.2, key=lambda x: x < 0)
        for items in ([-1], [-2], [1], [2]):  # each kind: a warm-up call, then one that teaches its cost
            await coalescer.submit(items)
        assert coalescer.cost[True] == pytest.approx(0.05, rel=0.5)
        assert coalescer.cost[False] == pytest.approx(0.001, abs=0.005)
        # a slow call in flight, then 60 fast inputs: ~50 ms + 60 ms of work, within the 200 ms budget
        slow = asyncio.create_task(coalescer.submit([-3]))
        await asyncio.sleep(0)
        fast = [asyncio.create_task(coalescer.submit([i])) for i in range(10, 70)]
        await asyncio.sleep(0)
        # ... but four more slow inputs would not be (200 ms of their own)
        with pytest.raises(WouldMissDeadline):
            await coalescer.submit([-4, -5, -6, -7])
        assert len(await asyncio.gather(slow, *fast)) == 61

    run(main())


def test_a_mixed_call_is_shared_out_by_expected_cost():
    async def main():
        coalescer = Coalescer(FakeRunner(), max_batch=8, max_in_flight=1, key=lambda x: x < 0)
        coalescer.cost = {True: 0.09, False: 0.01}
        coalescer._calls_of.update({True: 1, False: 1})  # past their warm-up calls
        coalescer._learn(Counter({True: 1, False: 1}), 0.2)  # twice as slow as expected, for both
        assert coalescer.cost == {True: pytest.approx(0.18), False: pytest.approx(0.02)}

    run(main())


class SerialRunner:
    """Computes one call at a time (as a runner worker does), ``per_item`` seconds per item."""

    def __init__(self, per_item: float) -> None:
        self.per_item = per_item
        self.lock = asyncio.Lock()

    async def __call__(self, items: list[int]) -> list[int]:
        async with self.lock:
            await asyncio.sleep(self.per_item * len(items))
        return items


def test_with_two_calls_in_flight_the_wait_behind_the_other_call_is_not_cost():
    async def scenario():
        runner = SerialRunner(per_item=0.002)
        c = Coalescer(runner, max_batch=64, max_in_flight=2)
        await c.submit([0])  # the warm-up call, not counted
        for _ in range(6):
            # a large call, then a lone item sent while it computes: the lone one waits ~64 ms behind it
            big = asyncio.create_task(c.submit(list(range(32))))
            await asyncio.sleep(0.005)
            await asyncio.gather(big, c.submit([1]))
        return c.seconds_per_item

    per_item = run(scenario())
    # before the fix the lone item was priced at the big call's duration (~0.064 s per item)
    assert per_item < 0.01


class OverheadRunner:
    """One call at a time, ``overhead`` seconds per call plus ``per_item`` per item (a forward pass's
    fixed cost, which a call of one item pays in full)."""

    def __init__(self, overhead: float, per_item: float) -> None:
        self.overhead, self.per_item = overhead, per_item

    async def __call__(self, items: list[int]) -> list[int]:
        await asyncio.sleep(self.overhead + self.per_item * len(items))
        return items


def test_tiny_calls_between_large_ones_do_not_set_the_price_per_item():
    async def scenario():
        c = Coalescer(OverheadRunner(overhead=0.02, per_item=0.001), max_batch=64, max_in_flight=1)
        await c.submit([0])  # the warm-up call, not counted
        for call in range(9):  # tiny, large, tiny, ...: five calls of one item, four of 32
            await c.submit([1] if call % 2 == 0 else list(range(32)))
        return c.seconds_per_item, c.predicted_wait(list(range(64)))

    per_item, wait_for_64 = run(scenario())
    # a large call costs ~1.6 ms per item, a lone item ~21 ms: a plain median over calls said 21 ms
    assert per_item < 0.005
    assert wait_for_64 < 0.3  # two large calls' worth (~0.13 s), not 64 x 21 ms = 1.3 s


def test_weighted_median():
    from bundle.coalesce import weighted_median

    assert weighted_median([(5.0, 1)]) == 5.0
    assert weighted_median([(1.0, 1), (2.0, 1), (3.0, 1)]) == 2.0
    assert weighted_median([(0.02, 1), (0.02, 1), (0.002, 32)]) == 0.002
    assert weighted_median([(9.0, 1), (0.002, 1), (0.003, 1)]) == 0.003  # one outlier does not move it
