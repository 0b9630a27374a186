"""Pacing on a virtual clock: behaviour, not wall-clock timing."""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any

from bot.reminders.pacing import ChatSpacing, Pacer


class VirtualClock:
    """Time moves only when every task is asleep: then it jumps to the earliest wake-up."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), future))
        await future

    async def drive(self, *work: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.create_task(w) for w in work]
        while not all(t.done() for t in tasks):
            for _ in range(5):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                future.set_result(None)
        await asyncio.gather(*tasks)


def busiest_second(stamps: list[float]) -> int:
    return max(bisect.bisect_left(stamps, t + 1.0 - 1e-9) - i for i, t in enumerate(stamps))


async def test_slots_are_never_closer_than_one_over_the_rate() -> None:
    clock = VirtualClock()
    pacer = Pacer(25, clock=clock, sleep=clock.sleep)
    stamps: list[float] = []

    async def one_by_one() -> None:
        for _ in range(100):
            await pacer.acquire()
            stamps.append(clock.now)

    await clock.drive(one_by_one())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 1 / 25 - 1e-9
    # ...and the rate is kept, not undershot: 100 slots take 99 intervals (and the window's
    # spare millisecond now and then).
    assert 99 / 25 <= stamps[-1] - stamps[0] < 99 / 25 + 0.005
    assert busiest_second(stamps) == 25


async def test_concurrent_acquirers_share_one_timeline() -> None:
    clock = VirtualClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    stamps: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            await pacer.acquire()
            stamps.append(clock.now)

    await clock.drive(*(worker() for _ in range(4)))
    assert len(stamps) == 20
    # Every slot distinct and on the 0.1 s grid: nobody jumped the queue.
    assert len({round(s, 6) for s in stamps}) == 20


async def test_a_pause_holds_everyone_back() -> None:
    clock = VirtualClock()
    pacer = Pacer(100, clock=clock, sleep=clock.sleep)

    async def paused() -> None:
        await pacer.acquire()
        pacer.pause(3.0)
        assert pacer.paused_for == 3.0
        await pacer.acquire()

    await clock.drive(paused())
    assert clock.now >= 3.0


async def test_one_message_per_interval_per_chat_others_unaffected() -> None:
    clock = VirtualClock()
    spacing = ChatSpacing(1.0, clock=clock, sleep=clock.sleep)

    async def send(chat: str) -> None:
        async with spacing.turn(chat) as turn:
            turn.started()

    async def family() -> None:
        await send("a")
        await send("b")
        assert clock.now == 0.0
        await send("a")

    await clock.drive(family())
    assert clock.now == 1.0


async def test_the_gap_counts_from_when_a_send_left_not_when_it_was_queued() -> None:
    clock = VirtualClock()
    spacing = ChatSpacing(6.0, clock=clock, sleep=clock.sleep)
    left: list[float] = []

    async def first() -> None:
        async with spacing.turn("a") as turn:
            await clock.sleep(4.0)  # held back (a pause of the whole channel)
            turn.started()
            left.append(clock.now)

    async def second() -> None:
        await clock.sleep(0.5)  # queued while the first one waits
        async with spacing.turn("a") as turn:
            turn.started()
            left.append(clock.now)

    await clock.drive(first(), second())
    assert left == [4.0, 10.0]


async def test_a_retry_waits_the_longer_of_the_gap_and_what_was_asked() -> None:
    clock = VirtualClock()
    spacing = ChatSpacing(1.0, clock=clock, sleep=clock.sleep)

    async def refused_then_retried() -> None:
        async with spacing.turn("a") as turn:
            turn.started()
            await clock.sleep(0.2)  # the refusal's round trip
            await turn.again(6.0)
            assert clock.now == 6.0
            await turn.again()
            assert clock.now == 6.0  # the gap since the last attempt has long passed

    await clock.drive(refused_then_retried())


async def test_sends_stay_apart_however_long_the_checks_before_them_take() -> None:
    clock = VirtualClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    starts: list[float] = []
    checks = iter([0.0, 0.09, 0.0, 0.03, 0.0, 0.0, 0.05, 0.0] * 3)

    async def worker() -> None:
        for _ in range(6):
            async with pacer.slot():
                await clock.sleep(next(checks))  # the opt-out claim, a database round trip
            starts.append(clock.now)

    await clock.drive(*(worker() for _ in range(4)))
    starts.sort()
    assert busiest_second(starts) <= 10
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.1 - 0.002 - 1e-9  # catching up after a late one, a little


async def test_the_usual_time_of_the_checks_is_granted_ahead_so_the_rate_is_kept() -> None:
    clock = VirtualClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def worker() -> None:
        for _ in range(25):
            async with pacer.slot():
                await clock.sleep(0.01)
            starts.append(clock.now)

    await clock.drive(*(worker() for _ in range(4)))
    # 100 sends in about 99 intervals (the first while the lead is learnt start late, and
    # the next catch up a little), never more than 10 in a second.
    assert 9.9 - 0.01 <= starts[-1] - starts[0] < 9.9 + 0.05
    assert busiest_second(starts) <= 10


async def test_a_slot_with_nothing_to_send_is_not_counted() -> None:
    clock = VirtualClock()
    pacer = Pacer(1, clock=clock, sleep=clock.sleep)

    async def skipping() -> None:
        await pacer.acquire()
        for _ in range(3):
            async with pacer.slot() as slot:
                slot.unused()  # e.g. the person had stopped their reminders
        await pacer.acquire()

    await clock.drive(skipping())
    assert 1.0 <= clock.now <= 1.001


async def test_a_429_during_a_wait_pushes_the_waiting_sends_back() -> None:
    clock = VirtualClock()
    pacer = Pacer(2, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def sender(n: int) -> None:
        await pacer.acquire()
        starts.append(clock.now)
        if n == 0:
            pacer.pause(5.0)

    await clock.drive(*(sender(n) for n in range(3)))
    assert starts[0] == 0.0 and min(starts[1:]) >= 5.0
