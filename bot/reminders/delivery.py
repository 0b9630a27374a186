"""Delivering a queue of messages kept in SQLite, losing nobody.

Shared by the daily reminder pass and admin broadcasts. Each message row goes
pending -> sending -> sent | failed | blocked | skipped:

- Just before the platform call the row is re-checked (still subscribed?) and marked
  `sending`; right after it, marked with the outcome. A process that dies leaves only the
  messages that were in flight as `sending`, and those are sent again on resume: nobody is
  skipped, and only they can arrive twice.
- `RetryLater` (Telegram's 429) pauses all sending for the time asked; `Blocked` records the
  recipient and stops the chat's subscriptions; `Transient` errors are retried with back-off a
  bounded number of times, then recorded as failed with the reason.
- Pace: one shared `Pacer` (overall rate), one message per second per chat, and a small pool of
  workers fed from SQLite in pages, so 100,000 recipients cost no more memory than 1,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.conversation.replies import Message
from bot.reminders.pacing import ChatSpacing, Pacer
from bot.reminders.sending import (
    Blocked,
    Rejected,
    RetryLater,
    Sender,
    SenderUnavailable,
    Transient,
)
from bot.store.subscriptions import Claim, DeliveryStatus, Recipient

log = logging.getLogger(__name__)


class DeliveryJob(Protocol):
    """One persisted queue of messages (a broadcast, or one day's reminders)."""

    async def page(self, after_seq: int, limit: int) -> list[Recipient]: ...

    async def claim(self, recipient: Recipient) -> Claim: ...

    def render(self, recipient: Recipient) -> Message | None: ...

    async def finish(
        self, recipient: Recipient, status: DeliveryStatus, reason: str | None, attempts: int
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
    flood_waits: int = 20  # 429s one message may meet before it is recorded as failed


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


@dataclass(eq=False)  # identity-hashed: kept in a set while running
class _Run:
    job: DeliveryJob
    progress: Progress
    queue: asyncio.Queue[Recipient | None]
    started: float
    stop_requested: bool = False
    aborted: str | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def stopping(self) -> bool:
        return self.stop_requested or self.aborted is not None


class Deliverer:
    """Runs delivery jobs through the channels' senders; one per process, shared by jobs."""

    def __init__(
        self,
        senders: Mapping[str, Sender],
        pacer: Pacer,
        *,
        on_blocked: BlockedHandler,
        workers: int | None = None,
        retry: RetryPolicy | None = None,
        spacing: ChatSpacing | None = None,
        page_size: int = 500,
        progress_every: float = 3.0,
    ) -> None:
        self.senders = dict(senders)
        self.pacer = pacer
        self.on_blocked = on_blocked
        self.workers = workers or workers_for(pacer.rate)
        self.retry = retry or RetryPolicy()
        self.spacing = spacing or ChatSpacing()
        self.page_size = page_size
        self.progress_every = progress_every
        self._runs: set[_Run] = set()
        self._closed = False

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted(self.senders))

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
        progress.configured_rate = self.pacer.rate
        if self._closed:
            return DeliveryResult(progress, stopped=True)
        run = _Run(job, progress, asyncio.Queue(maxsize=self.workers * 2), time.monotonic())
        self._runs.add(run)
        try:
            run.tasks = [
                asyncio.create_task(self._worker(run), name=f"delivery-worker-{i}")
                for i in range(self.workers)
            ]
            ticker = asyncio.create_task(self._ticker(run, on_progress), name="delivery-ticker")
            try:
                await self._produce(run)
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

    async def _produce(self, run: _Run) -> None:
        """Feed the workers page by page: only a few hundred recipients are in memory."""
        after = -1
        try:
            while not run.stopping:
                page = await run.job.page(after, self.page_size)
                if not page:
                    break
                for recipient in page:
                    if run.stopping:
                        break
                    await run.queue.put(recipient)
                after = page[-1].seq
        finally:
            for _ in run.tasks:
                await run.queue.put(None)

    async def _worker(self, run: _Run) -> None:
        while (recipient := await run.queue.get()) is not None:
            if run.stopping:
                continue  # keep draining so the producer never blocks; rows stay pending
            try:
                await self._deliver(run, recipient)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Unexpected (e.g. the database stayed locked): stop this run cleanly; what is
                # left stays pending and the next sweep or run goes on with it.
                log.exception("delivery of queued message %s failed", recipient.key)
                run.aborted = run.aborted or "internal error (see the log)"

    async def _deliver(self, run: _Run, recipient: Recipient) -> None:
        job, progress = run.job, run.progress
        sender = self.senders.get(recipient.channel)
        if sender is None:
            missing = f"no sender for {recipient.channel}"
            await self._settle(run, recipient, DeliveryStatus.FAILED, missing, 0)
            return
        await self.spacing.wait(f"{recipient.channel}:{recipient.chat_id}")
        async with self.pacer.slot() as slot:
            # Checked in the send's own turn: an opt-out or a block found by the send just
            # before is seen here.
            claim = await job.claim(recipient)
            message = None
            if claim.go:
                try:
                    message = job.render(recipient)
                except Exception:
                    log.exception("could not render queued message %s", recipient.key)
                    slot.unused()
                    await self._settle(run, recipient, DeliveryStatus.FAILED, "could not render", 0)
                    return
            if message is None:
                slot.unused()
        if not claim.go:
            if claim.reason is not None:
                progress.skipped += 1
                progress.done_this_run += 1
            return
        if message is None:  # e.g. a personalised reminder for someone with no policy left
            await self._settle(run, recipient, DeliveryStatus.SKIPPED, "no current policy", 0)
            return
        if run.stopping:
            await job.release(recipient)
            return
        status, reason, attempts = await self._send(run, sender, recipient, message)
        if status is None:  # the sender is unusable: back to pending for the next start
            await job.release(recipient)
            return
        await self._settle(run, recipient, status, reason, attempts)

    async def _settle(
        self,
        run: _Run,
        recipient: Recipient,
        status: DeliveryStatus,
        reason: str | None,
        attempts: int,
    ) -> None:
        await run.job.finish(recipient, status, reason, attempts)
        if status is DeliveryStatus.BLOCKED:
            await self.on_blocked(recipient.channel, recipient.chat_id)
        progress = run.progress
        setattr(progress, status.value, getattr(progress, status.value) + 1)
        progress.done_this_run += 1

    async def _send(
        self, run: _Run, sender: Sender, recipient: Recipient, message: Message
    ) -> tuple[DeliveryStatus | None, str | None, int]:
        attempts = flood_waits = 0
        while True:
            attempts += 1
            try:
                await sender.send(recipient.chat_id, message)
            except RetryLater as exc:
                # Telegram's flood limit is per bot: everyone waits, then this one goes first.
                attempts -= 1
                flood_waits += 1
                self.pacer.pause(exc.seconds)
                log.warning("flood control: pausing all bulk sending for %.1f s", exc.seconds)
                if flood_waits > self.retry.flood_waits:
                    return DeliveryStatus.FAILED, f"flood control: {exc.reason}", attempts
                await self.pacer.acquire()
            except Blocked as exc:
                return DeliveryStatus.BLOCKED, exc.reason, attempts
            except Rejected as exc:
                return DeliveryStatus.FAILED, exc.reason, attempts
            except Transient as exc:
                if attempts >= self.retry.attempts:
                    return DeliveryStatus.FAILED, f"{exc.reason} ({attempts} attempts)", attempts
                await asyncio.sleep(self.retry.backoff * 2 ** (attempts - 1))
                await self.pacer.acquire()
            except SenderUnavailable as exc:
                log.error("bulk sending stopped: %s", exc.reason)
                run.aborted = exc.reason
                return None, exc.reason, attempts
            else:
                return DeliveryStatus.SENT, None, attempts

    def _stamp(self, run: _Run) -> None:
        run.progress.elapsed = time.monotonic() - run.started
        run.progress.paused_for = self.pacer.paused_for

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


async def _safely(callback: ProgressCallback, progress: Progress) -> None:
    """A progress message that fails to update (e.g. Telegram busy) must not stop delivery."""
    try:
        await callback(progress)
    except Exception:
        log.exception("progress callback failed")
