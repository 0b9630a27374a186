"""Delivering a queue of messages kept in SQLite, losing nobody.

Shared by the daily reminder pass and admin broadcasts. Each message row goes
pending -> sending -> sent | failed | blocked | skipped:

- Just before the platform call the row is re-checked (still subscribed? for free-form text on
  a channel with a window: has the person written recently enough?) and marked `sending`;
  right after it, marked with the outcome. A process that dies leaves only the messages that
  were in flight as `sending`, and those are sent again on resume: nobody is skipped, and only
  they can arrive twice.
- `RetryLater` (Telegram's 429, WhatsApp's 130429) pauses all sending on that channel for the
  time asked; `RetryRecipientLater` (WhatsApp's 131056) waits for that one recipient only;
  `Blocked` records the recipient and stops the chat's subscriptions; `Skipped` records why the
  platform declined; `Transient` errors are retried with back-off a bounded number of times,
  then recorded as failed with the reason; `SenderUnavailable` stops the run.
- Pace: each channel is a lane of its own (its `Pace`: an overall rate, a gap per chat, and a
  pool of workers fed from SQLite in pages), so one channel's limits never slow another's,
  and 100,000 recipients cost no more memory than 1,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.conversation.replies import Message
from bot.reminders.pacing import ChatSpacing, ChatTurn, Pace, Pacer, Timer
from bot.reminders.sending import (
    Blocked,
    Rejected,
    RetryLater,
    RetryRecipientLater,
    Sender,
    SenderUnavailable,
    Skipped,
    Transient,
)
from bot.store.subscriptions import OUTSIDE_WINDOW, Claim, DeliveryStatus, Recipient

log = logging.getLogger(__name__)


class DeliveryJob(Protocol):
    """One persisted queue of messages (a broadcast, or one day's reminders)."""

    @property
    def free_form(self) -> bool:
        """Its messages are free-form (an admin's text), not a pre-approved template: on a
        channel with a window they only reach people who wrote recently."""
        ...

    async def channels(self) -> list[str]:
        """The channels of the messages still pending."""
        ...

    async def page(self, channel: str, after_seq: int, limit: int) -> list[Recipient]: ...

    async def claim(self, recipient: Recipient, reachable_since: float | None) -> Claim:
        """Re-check and mark `sending`; with `reachable_since` (epoch seconds), skip a
        recipient who has not written to us since then."""
        ...

    def render(self, recipient: Recipient) -> Message | None: ...

    async def finish(
        self,
        recipient: Recipient,
        status: DeliveryStatus,
        reason: str | None,
        attempts: int,
        message_id: str | None = None,
    ) -> None: ...

    async def release(self, recipient: Recipient) -> None: ...

    async def cancelled(self) -> bool: ...


@dataclass
class Progress:
    """Counts for the whole job (earlier runs included), for progress messages and reports."""

    total: int
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    skipped: int = 0
    outside_window: int = 0  # of `skipped`: outside the channel's window for free-form text
    elapsed: float = 0.0  # seconds since this run started
    done_this_run: int = 0
    paused_for: float = 0.0  # seconds left of a flood-control pause
    configured_rate: float = 0.0

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.sent - self.failed - self.blocked - self.skipped)

    @property
    def rate(self) -> float:
        """Messages finished per second in this run."""
        return self.done_this_run / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate if self.done_this_run >= 10 else self.configured_rate
        if rate <= 0:
            return None
        return self.remaining / rate + self.paused_for


ProgressCallback = Callable[[Progress], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries per message on time-outs and network/server errors
    backoff: float = 1.0  # seconds before the 2nd try; doubled each time after
    flood_waits: int = 20  # "too many" pauses one message may meet before it is failed
    recipient_waits: int = 5  # "too many to this person" waits, likewise


@dataclass
class DeliveryResult:
    progress: Progress
    stopped: bool = False  # stop() or cancellation: unsent rows stay pending
    aborted: str | None = None  # the sender became unusable (e.g. revoked token)

    @property
    def complete(self) -> bool:
        return not self.stopped and self.aborted is None


def workers_for(rate: float) -> int:
    """Sends in flight needed to keep up: rate x a pessimistic 300 ms round trip, bounded
    (more would hold connections open without adding throughput)."""
    return max(4, min(64, math.ceil(rate * 0.3)))


BlockedHandler = Callable[[str, str], Awaitable[object]]
# A channel's pacer from its name and pace (SharedPacer: the rate shared with other processes).
PacerFor = Callable[[str, Pace], Pacer]
Outcome = tuple[DeliveryStatus | None, str | None, int, str | None]  # status, reason, tries, id


@dataclass(eq=False)
class _Lane:
    """One channel's way out: its sender (None: nothing can reach it here), its pace, and the
    pacer and per-chat spacing every job on the channel shares."""

    channel: str
    sender: Sender | None
    pace: Pace
    pacer: Pacer
    spacing: ChatSpacing
    workers: int


@dataclass(eq=False)  # identity-hashed: kept in a set while running
class _Run:
    job: DeliveryJob
    progress: Progress
    lanes: list[_Lane]
    started: float
    stop_requested: bool = False
    aborted: str | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def stopping(self) -> bool:
        return self.stop_requested or self.aborted is not None


class Deliverer:
    """Runs delivery jobs through the channels' senders; one per process, shared by jobs.

    `pace` is for channels registered without one of their own (`add(sender, pace)`);
    `per_chat` (tests) replaces every channel's gap per chat; `pacer_for` makes each channel's
    pacer (by default one of this process's own, on `timer`)."""

    def __init__(
        self,
        senders: Mapping[str, Sender],
        pace: Pace,
        *,
        on_blocked: BlockedHandler,
        paces: Mapping[str, Pace] | None = None,
        retry: RetryPolicy | None = None,
        per_chat: float | None = None,
        timer: Timer | None = None,
        pacer_for: PacerFor | None = None,
        page_size: int = 500,
        progress_every: float = 3.0,
    ) -> None:
        self.default_pace = pace
        self.pacer_for = pacer_for
        self.on_blocked = on_blocked
        self.retry = retry or RetryPolicy()
        self.per_chat = per_chat
        self.timer = timer or Timer()
        self.page_size = page_size
        self.progress_every = progress_every
        self._lanes: dict[str, _Lane] = {}
        self._runs: set[_Run] = set()
        self._closed = False
        for channel, sender in senders.items():
            self.add(sender, (paces or {}).get(channel), channel=channel)

    def add(self, sender: Sender, pace: Pace | None = None, *, channel: str | None = None) -> None:
        """A channel's bulk sender and its pace (replacing an earlier one of the channel)."""
        name = channel or sender.channel
        self._lanes[name] = self._lane(name, sender, pace or self.default_pace)

    def _lane(self, channel: str, sender: Sender | None, pace: Pace) -> _Lane:
        timer = self.timer
        per_chat = pace.per_chat if self.per_chat is None else self.per_chat
        pacer = (
            self.pacer_for(channel, pace)
            if self.pacer_for is not None
            else Pacer(pace.rate, clock=timer.clock, sleep=timer.sleep)
        )
        return _Lane(
            channel,
            sender,
            pace,
            pacer,
            ChatSpacing(per_chat, clock=timer.clock, sleep=timer.sleep),
            workers_for(pace.rate),
        )

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, lane in self._lanes.items() if lane.sender))

    def pace(self, channel: str) -> Pace | None:
        lane = self._lanes.get(channel)
        return lane.pace if lane is not None else None

    def stop_all(self) -> None:
        """Finish the messages in flight, leave the rest pending for the next start."""
        for run in self._runs:
            run.stop_requested = True

    def close(self) -> None:
        """Shutdown: stop the running jobs and start no new ones (a resume loop would)."""
        self._closed = True
        self.stop_all()

    async def run(
        self,
        job: DeliveryJob,
        progress: Progress,
        on_progress: ProgressCallback | None = None,
    ) -> DeliveryResult:
        if self._closed:
            return DeliveryResult(progress, stopped=True)
        run = _Run(job, progress, [], time.monotonic())
        self._runs.add(run)  # from here on, stop_all() reaches it
        try:
            run.lanes = [
                self._lanes.get(channel) or self._lane(channel, None, self.default_pace)
                for channel in await job.channels()
            ]
            progress.configured_rate = sum(lane.pace.rate for lane in run.lanes if lane.sender)
            for lane in run.lanes:
                queue: asyncio.Queue[Recipient | None] = asyncio.Queue(maxsize=lane.workers * 2)
                workers = [
                    asyncio.create_task(
                        self._worker(run, lane, queue), name=f"delivery-{lane.channel}-{i}"
                    )
                    for i in range(lane.workers)
                ]
                run.tasks += workers
                run.tasks.append(
                    asyncio.create_task(
                        self._produce(run, lane, queue, len(workers)),
                        name=f"delivery-{lane.channel}-pages",
                    )
                )
            ticker = asyncio.create_task(self._ticker(run, on_progress), name="delivery-ticker")
            try:
                await asyncio.gather(*run.tasks)
            except asyncio.CancelledError:
                run.stop_requested = True
                raise
            finally:
                for task in run.tasks:
                    task.cancel()
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*run.tasks, ticker, return_exceptions=True)
            self._stamp(run)
            if on_progress is not None:
                await _safely(on_progress, run.progress)
            return DeliveryResult(run.progress, stopped=run.stop_requested, aborted=run.aborted)
        finally:
            self._runs.discard(run)

    async def _produce(
        self, run: _Run, lane: _Lane, queue: asyncio.Queue[Recipient | None], workers: int
    ) -> None:
        """Feed a lane's workers page by page: only a few hundred recipients are in memory."""
        after = -1
        try:
            while not run.stopping:
                page = await run.job.page(lane.channel, after, self.page_size)
                if not page:
                    break
                for recipient in page:
                    if run.stopping:
                        break
                    await queue.put(recipient)
                after = page[-1].seq
        finally:
            for _ in range(workers):
                await queue.put(None)

    async def _worker(self, run: _Run, lane: _Lane, queue: asyncio.Queue[Recipient | None]) -> None:
        while (recipient := await queue.get()) is not None:
            if run.stopping:
                continue  # keep draining so the producer never blocks; rows stay pending
            try:
                await self._deliver(run, lane, recipient)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Unexpected (e.g. the database stayed locked): stop this run cleanly; what is
                # left stays pending and the next sweep or run goes on with it.
                log.exception("delivery of queued message %s failed", recipient.key)
                run.aborted = run.aborted or "internal error (see the log)"

    async def _deliver(self, run: _Run, lane: _Lane, recipient: Recipient) -> None:
        job, progress = run.job, run.progress
        if lane.sender is None:
            missing = f"no sender for {recipient.channel}"
            await self._settle(run, recipient, DeliveryStatus.FAILED, missing, 0)
            return
        window = lane.pace.window if job.free_form else None
        async with lane.spacing.turn(recipient.chat_id) as turn:
            async with lane.pacer.slot() as slot:
                # Checked in the send's own turn: an opt-out or a block found by the send just
                # before is seen here; and the window is judged now, at send time, so someone
                # who writes while a long broadcast runs is reached.
                since = time.time() - window if window is not None else None
                claim = await job.claim(recipient, since)
                message = None
                if claim.go:
                    try:
                        message = job.render(recipient)
                    except Exception:
                        log.exception("could not render queued message %s", recipient.key)
                        slot.unused()
                        failed = DeliveryStatus.FAILED
                        await self._settle(run, recipient, failed, "could not render", 0)
                        return
                if message is None:
                    slot.unused()
            if not claim.go:
                if claim.reason is not None:
                    progress.skipped += 1
                    if claim.reason == OUTSIDE_WINDOW:
                        progress.outside_window += 1
                    progress.done_this_run += 1
                return
            if message is None:  # e.g. a personalised reminder for someone with no policy left
                await self._settle(run, recipient, DeliveryStatus.SKIPPED, "no current policy", 0)
                return
            if run.stopping:
                await job.release(recipient)
                return
            turn.started()
            status, reason, attempts, message_id = await self._send(
                run, lane, lane.sender, recipient, message, turn
            )
            if status is None:  # the sender is unusable: back to pending for the next start
                await job.release(recipient)
                return
            # Inside the chat's turn: its next message sees a block recorded by this one.
            await self._settle(run, recipient, status, reason, attempts, message_id)

    async def _settle(
        self,
        run: _Run,
        recipient: Recipient,
        status: DeliveryStatus,
        reason: str | None,
        attempts: int,
        message_id: str | None = None,
    ) -> None:
        await run.job.finish(recipient, status, reason, attempts, message_id)
        if status is DeliveryStatus.BLOCKED:
            await self.on_blocked(recipient.channel, recipient.chat_id)
        progress = run.progress
        setattr(progress, status.value, getattr(progress, status.value) + 1)
        if status is DeliveryStatus.SKIPPED and reason == OUTSIDE_WINDOW:
            progress.outside_window += 1
        progress.done_this_run += 1

    async def _send(
        self,
        run: _Run,
        lane: _Lane,
        sender: Sender,
        recipient: Recipient,
        message: Message,
        turn: ChatTurn,
    ) -> Outcome:
        attempts = flood_waits = recipient_waits = 0
        while True:
            attempts += 1
            try:
                message_id = await sender.send(recipient.chat_id, message)
            except RetryLater as exc:
                # The platform's limit is per bot or number: everyone on the channel waits,
                # then this one goes first.
                attempts -= 1
                flood_waits += 1
                lane.pacer.pause(exc.seconds)
                log.warning(
                    "%s asked to slow down: pausing its bulk sending for %.1f s",
                    lane.channel,
                    exc.seconds,
                )
                if flood_waits > self.retry.flood_waits:
                    return DeliveryStatus.FAILED, f"flood control: {exc.reason}", attempts, None
                await turn.again()
            except RetryRecipientLater as exc:
                attempts -= 1
                recipient_waits += 1
                if recipient_waits > self.retry.recipient_waits:
                    reason = f"{exc.reason} ({recipient_waits} tries)"
                    return DeliveryStatus.FAILED, reason, attempts, None
                await turn.again(exc.seconds)  # this recipient only: other workers go on
            except Blocked as exc:
                return DeliveryStatus.BLOCKED, exc.reason, attempts, None
            except Skipped as exc:
                return DeliveryStatus.SKIPPED, exc.reason, attempts, None
            except Rejected as exc:
                return DeliveryStatus.FAILED, exc.reason, attempts, None
            except Transient as exc:
                if attempts >= self.retry.attempts:
                    reason = f"{exc.reason} ({attempts} attempts)"
                    return DeliveryStatus.FAILED, reason, attempts, None
                await self.timer.sleep(self.retry.backoff * 2 ** (attempts - 1))
                await turn.again()
            except SenderUnavailable as exc:
                # One clear line for the operator; the run stops and keeps everyone pending.
                log.error("bulk sending stopped: %s", exc.reason)
                run.aborted = exc.reason
                return None, exc.reason, attempts, None
            else:
                return DeliveryStatus.SENT, None, attempts, message_id
            if run.aborted is not None:  # another worker found the sender unusable meanwhile
                return None, run.aborted, attempts, None
            await lane.pacer.acquire()  # a retry counts against the rate like any send
            turn.started()

    def _stamp(self, run: _Run) -> None:
        run.progress.elapsed = time.monotonic() - run.started
        run.progress.paused_for = max(_paused(run.lanes), default=0.0)

    async def _ticker(self, run: _Run, on_progress: ProgressCallback | None) -> None:
        while True:
            await asyncio.sleep(self.progress_every)
            self._stamp(run)
            try:
                if await run.job.cancelled():
                    run.stop_requested = True
            except Exception:
                log.exception("could not check whether the job was cancelled")
            if on_progress is not None:
                await _safely(on_progress, run.progress)


def _paused(lanes: Iterable[_Lane]) -> list[float]:
    return [lane.pacer.paused_for for lane in lanes]


async def _safely(callback: ProgressCallback, progress: Progress) -> None:
    """A progress message that fails to update (e.g. Telegram busy) must not stop delivery."""
    try:
        await callback(progress)
    except Exception:
        log.exception("progress callback failed")
