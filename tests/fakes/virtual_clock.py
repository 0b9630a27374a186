"""A virtual clock for pacing over real connections: waits cost no wall time.

`Pacer` and `ChatSpacing` sleep on it (`bot.reminders.pacing.Timer(clock, clock.sleep)`), and
the fake Graph API stamps each request with it, so a test checks gaps of 6 s and rates per
second on the recorded times without waiting for them. Time jumps to the earliest wake-up, but
never while a send is on its way (`on_the_wire`): a request arrives at the fake at the virtual
moment the bot let it go, so what the fake records is what the bot's pacing decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Iterator


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._wire = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), future))
        await future

    @contextlib.contextmanager
    def on_the_wire(self) -> Iterator[None]:
        self._wire += 1
        try:
            yield
        finally:
            self._wire -= 1

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[VirtualClock]:
        """Moves time while the block runs."""
        task = asyncio.create_task(self._advance(), name="virtual-clock")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _advance(self) -> None:
        while True:
            # Real time for real work (database, sockets) to get on; then, with nothing on
            # the wire, the earliest sleeper wakes.
            await asyncio.sleep(0.001)
            if self._wire:
                continue
            while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
                heapq.heappop(self._sleepers)
            if self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                future.set_result(None)
