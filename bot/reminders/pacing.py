"""Pace of bulk sending: an overall rate, a flood-control pause, and one message/s per chat.

One `Pacer` is shared by everything that sends in bulk in a process (the daily reminder pass
and broadcasts), so together they never exceed `BROADCAST_RATE` and a 429 from Telegram pauses
all of them: the flood limit is per bot, not per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

PER_CHAT_INTERVAL = 1.0  # Telegram: about one message per second per chat
# The rate's "second", with a millisecond to spare: on an exact grid the send `rate` places on
# is exactly 1 s later, and a clock read a few microseconds apart would count one too many.
WINDOW = 1.001


class Slot:
    """One granted send; `unused()` when it turned out there was nothing to send."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = True

    def unused(self) -> None:
        self.used = False


class Pacer:
    """Never more than `rate` sends in any 1-second window, measured where the sends start.

    `async with pacer.slot():` waits for this send's turn, then runs the last checks before it
    (the opt-out claim: a database round trip) while holding the turn; when the block ends the
    send starts. Turns follow a grid 1/rate apart, granted a little early (by the usual time
    of those checks), so the rate is kept rather than undershot; a send that starts late (a
    slow check, a timer waking late) lets the next one catch up by at most `tolerance`. What
    makes the limit hard is the window: a send never starts less than 1 s (and 1 ms) after the
    one `rate` sends before it, so no burst can exceed the rate where Telegram counts.
    """

    def __init__(
        self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._interval = 1.0 / rate
        self._tolerance = min(0.002, self._interval / 4)
        self._recent: deque[float] = deque(maxlen=max(1, math.floor(rate)))
        self._clock = clock
        self._sleep = sleep
        self._planned = -math.inf  # when the next send is due on the grid
        self._lead = 0.0  # how long the checks before a send take, lately at most
        self._paused_until = 0.0
        self._turn = asyncio.Lock()  # FIFO: workers get their turns in order

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        async with self._turn:
            planned = max(self._planned, self._clock())  # idle: no burst to catch up
            await self._until(planned - self._lead)
            granted = self._clock()
            slot = Slot()
            yield slot
            if not slot.used:
                return
            checks = self._clock() - granted
            full = len(self._recent) == self._recent.maxlen
            await self._until(max(planned, self._recent[0] + WINDOW if full else planned))
            started = self._clock()
            self._recent.append(started)
            self._planned = max(planned, started - self._tolerance) + self._interval
            self._lead = min(max(checks, self._lead * 0.9), self._interval / 2)

    async def acquire(self) -> None:
        """Wait for a turn and send at once (a retry: no checks to run first)."""
        async with self.slot():
            pass

    async def _until(self, moment: float) -> None:
        # Loops: a 429 may arrive from another send while this one waits.
        while (wait := max(moment, self._paused_until) - self._clock()) > 0:
            await self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Nobody sends for `seconds` from now (Telegram's retry_after)."""
        self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())


class ChatSpacing:
    """At most one message per `interval` to the same chat (a family gets several reminders)."""

    def __init__(
        self,
        interval: float = PER_CHAT_INTERVAL,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}

    async def wait(self, chat: str) -> None:
        now = self._clock()
        slot = max(now, self._next.get(chat, 0.0))
        self._next[chat] = slot + self.interval
        if len(self._next) > 4096:
            self._forget_idle(now)
        if slot > now:
            await self._sleep(slot - now)

    def _forget_idle(self, now: float) -> None:
        # Only chats sent to in the last second matter; keeps memory flat over 100,000 chats.
        self._next = {chat: t for chat, t in self._next.items() if t > now}
