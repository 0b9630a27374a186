"""Pace of bulk sending: an overall rate, a flood-control pause, and a gap per chat.

Each channel has its own `Pace` (Telegram: BROADCAST_RATE and a second per chat; WhatsApp:
WHATSAPP_RATE and 6 s per person). One `Pacer` per channel is shared by everything that sends
in bulk on it in a process (the daily reminder pass and broadcasts), so together they never
exceed the channel's rate, and a "too many" from the platform (Telegram's 429, WhatsApp's
130429) pauses all of them on that channel: the limit is per bot or number, not per job.
With several processes on one database (bot instances, the CLI), `SharedPacer` takes each send
time from the database instead, so the rate holds for all of them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from bot.store.pace import SendSlots

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

PER_CHAT_INTERVAL = 1.0  # Telegram: about one message per second per chat
# The rate's "second", with a millisecond to spare: on an exact grid the send `rate` places on
# is exactly 1 s later, and a clock read a few microseconds apart would count one too many.
WINDOW = 1.001
# The same for the slots processes share: they cannot see each other's sends leave, and each
# process wakes for its slot a little late, by a varying few milliseconds: 2% to spare.
SHARED_WINDOW = 1.02


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


class SharedPacer(Pacer):
    """A channel's rate shared by every process on the database: each send's time is the next
    slot of the channel's row in `send_pace` (bot/store/pace.py), on the database's clock,
    whichever process asks; slots are SHARED_WINDOW/rate apart. The checks before a send (the
    opt-out claim) run as soon as the slot is reserved, and the send waits for the slot after
    them, so that their round trip does not stand between the slot and the send. A "too many"
    pushes the row back, so every process waits; the pause is also kept here, for the sends
    that already have their slot. Within the process, turns go one at a time, in order.
    """

    def __init__(
        self,
        slots: SendSlots,
        channel: str,
        rate: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(rate, clock=clock, sleep=sleep)
        self._slots = slots
        self._channel = channel
        self._spacing = SHARED_WINDOW / rate
        self._pushes: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        async with self._turn:
            await self._until(-math.inf)  # a pause this process was told of
            wait, reserved = await self._slots.reserve(self._channel, self._spacing)
            due = self._clock() + wait
            slot = Slot()
            yield slot
            if not slot.used:
                await self._slots.give_back(self._channel, self._spacing, reserved)
                return
            await self._until(due)

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        task = asyncio.ensure_future(self._slots.push_back(self._channel, max(seconds, 0.0)))
        self._pushes.add(task)
        task.add_done_callback(self._pushed)

    def _pushed(self, task: asyncio.Task[None]) -> None:
        self._pushes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not share a pause of %s's sending", self._channel)


class ChatTurn:
    """One chat's turn (`ChatSpacing.turn`): `started()` as each attempt leaves, `again()`
    before a retry."""

    __slots__ = ("_chat", "_spacing")

    def __init__(self, spacing: ChatSpacing, chat: str) -> None:
        self._spacing = spacing
        self._chat = chat

    def started(self) -> None:
        """An attempt to this chat is leaving now: the next waits `interval` from here."""
        self._spacing._last[self._chat] = self._spacing._clock()

    async def again(self, at_least: float = 0.0) -> None:
        """Before a retry: until `interval` (or `at_least`, if longer) after the last attempt."""
        spacing = self._spacing
        last = spacing._last.get(self._chat, -math.inf)
        await spacing._until(last + max(spacing.interval, at_least))


class ChatSpacing:
    """At most one message per `interval` to the same chat (a family gets several reminders;
    WhatsApp refuses a second message to one person within about 6 s).

    Measured between the moments the sends leave, not when they were queued: a send held back
    by a pause pushes the next one to the same chat back too. One send (with its retries) to a
    chat at a time; other chats are not held up.
    """

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
        self._last: dict[str, float] = {}  # when the last attempt to the chat left
        self._busy: dict[str, asyncio.Future[None]] = {}  # chats with a turn under way

    @contextlib.asynccontextmanager
    async def turn(self, chat: str) -> AsyncIterator[ChatTurn]:
        while True:
            busy = self._busy.get(chat)
            if busy is not None:
                await asyncio.wait([busy])  # not `await busy`: a cancelled waiter keeps it
                continue
            ready = self._last.get(chat, -math.inf) + self.interval
            if ready <= self._clock():
                break
            await self._until(ready)
        self._busy[chat] = asyncio.get_running_loop().create_future()
        try:
            yield ChatTurn(self, chat)
        finally:
            self._busy.pop(chat).set_result(None)
            if len(self._last) > 4096:
                self._forget_idle()

    async def _until(self, moment: float) -> None:
        while (wait := moment - self._clock()) > 0:
            await self._sleep(wait)

    def _forget_idle(self) -> None:
        # Only chats sent to within the interval matter; keeps memory flat over 100,000 chats.
        horizon = self._clock() - self.interval
        self._last = {chat: t for chat, t in self._last.items() if t > horizon}


@dataclass(frozen=True, slots=True)
class Pace:
    """How one channel sends in bulk; given by the channel when it registers its sender."""

    rate: float  # messages per second overall on the channel
    per_chat: float = PER_CHAT_INTERVAL  # seconds between two messages to one chat
    # Free-form messages (not a pre-approved template) reach a person only this many seconds
    # after their last message to us (WhatsApp: 24 hours); None: no such window.
    window: float | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """The clock and sleep pacing runs on (a test's virtual clock may replace them)."""

    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep
