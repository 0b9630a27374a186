"""Admin broadcasts: preview, confirm (create), deliver, resume after a restart, cancel, list.

The flow the admin dialogue (Telegram `/broadcast`) and the CLI share:

    preview(audience, content)      -> how many recipients, and exactly what one will see
    create(audience, content, who)  -> broadcast id; recipients are fixed at this moment
    run(id, on_progress)            -> delivers, calling on_progress every few seconds
    resume_unfinished()             -> at start-up: every broadcast a crash left unfinished
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo

from bot.conversation.replies import Message
from bot.domain.audience import Audience, ChannelChoice, Content
from bot.domain.policy import Insurer, today_in
from bot.i18n import Translator, translator_for
from bot.reminders.delivery import Deliverer, DeliveryResult, Progress, ProgressCallback
from bot.reminders.texts import (
    broadcast_line,
    broadcast_list_text,
    broadcast_message,
    expiry_message,
    local_time_text,
    progress_text,
    report_text,
)
from bot.store.broadcasts import (
    BroadcastStatus,
    BroadcastStore,
    BroadcastSummary,
    EmptyAudience,
    UnknownInsurer,
)
from bot.store.locks import exclusive
from bot.store.subscriptions import Claim, DeliveryStatus, Recipient

log = logging.getLogger(__name__)

Outcome = Literal["done", "cancelled", "interrupted", "busy", "joined"]
CLAIM_BATCH = 8  # recipients a process claims at a time: it claims again as its workers take them

__all__ = [
    "BroadcastPreview",
    "BroadcastReport",
    "BroadcastRunner",
    "EmptyAudience",
    "UnknownInsurer",
    "broadcasts_text",
    "progress_message",
]


@dataclass(frozen=True)
class BroadcastPreview:
    audience: Audience
    content: Content
    recipients: int
    # Exactly what the first recipient will see (their language, their policy), or None.
    sample: Message | None
    sample_locale: str | None


@dataclass(frozen=True)
class BroadcastReport:
    """One run of a broadcast: `summary` counts every run (a resumed broadcast's earlier
    ones too), `took_seconds` and `sent_this_run` this run only."""

    summary: BroadcastSummary
    outcome: Outcome
    took_seconds: float
    sent_this_run: int = 0
    stopped_because: str | None = None  # the sender became unusable (e.g. a refused token)

    @property
    def rate(self) -> float:
        """Messages per second this run sent (0 for a run that took no time)."""
        return self.sent_this_run / self.took_seconds if self.took_seconds > 0 else 0.0

    def text(self, tr: Translator) -> str:
        """The admin's final report, in the admin's language."""
        s = self.summary
        # "busy" and "joined" never reach an admin (the run that leads reports), but say
        # "not finished here" if they did.
        outcome: Literal["done", "cancelled", "interrupted"] = "interrupted"
        if self.outcome == "done" or self.outcome == "cancelled":
            outcome = self.outcome
        return report_text(
            s.id,
            outcome,
            s.total,
            s.sent,
            s.failed,
            s.blocked,
            s.skipped,
            s.resent,
            self.took_seconds,
            tr,
            outside_window=s.outside_window,
            stopped_because=self.stopped_because,
        )


def progress_message(broadcast_id: int, progress: Progress, tr: Translator) -> str:
    """The admin's progress message (sent, failed, blocked, remaining, ETA)."""
    return progress_text(
        broadcast_id,
        progress.sent,
        progress.failed,
        progress.blocked,
        progress.skipped,
        progress.remaining,
        progress.eta_seconds,
        tr,
        outside_window=progress.outside_window,
    )


def broadcasts_text(
    summaries: list[BroadcastSummary],
    tr: Translator,
    tz: ZoneInfo,
    insurers: Mapping[str, Insurer] | None = None,
) -> str:
    """/broadcasts: recent broadcasts with their counts, newest first (`insurers` by code
    names an insurer audience in the reader's language)."""
    lines = [
        broadcast_line(
            s.id,
            local_time_text(s.created_at, tz),
            s.audience,
            s.status.value,
            s.total,
            s.sent,
            s.failed,
            s.blocked,
            tr,
            (insurers or {}).get(s.audience.insurer),
        )
        for s in summaries
    ]
    return broadcast_list_text(lines, tr)


def render(content: Content, recipient: Recipient, today: date) -> Message | None:
    """What one recipient gets: the admin's text, or their own personalised reminder."""
    tr = translator_for(recipient.locale)
    if content.text is not None:
        return broadcast_message(content.text, tr)
    r = recipient
    if r.subscription_id is None or r.id_masked is None:
        return None
    if r.insurer is None or r.expiry_date is None:
        return None
    return expiry_message(r.subscription_id, r.id_masked, r.insurer, r.expiry_date, today, tr)


Today = Callable[[], date]


class BroadcastJob:
    """`stop`: set when this run must stop (its leader's lock was lost)."""

    def __init__(
        self,
        store: BroadcastStore,
        broadcast_id: int,
        content: Content,
        today: Today,
        *,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.store = store
        self.broadcast_id = broadcast_id
        self.content = content
        self.today = today
        self.stop = stop

    @property
    def free_form(self) -> bool:
        return self.content.text is not None

    async def channels(self) -> list[str]:
        return await self.store.channels(self.broadcast_id)

    async def page(self, channel: str, after_seq: int, limit: int) -> list[Recipient]:
        # Claimed for this process, a few at a time so that processes share the list: what it
        # claimed is never offered again (`after_seq` is not needed).
        return await self.store.page(self.broadcast_id, channel, min(limit, CLAIM_BATCH))

    async def claim(self, recipient: Recipient, reachable_since: float | None) -> Claim:
        return await self.store.claim(recipient.key, reachable_since)

    def render(self, recipient: Recipient) -> Message | None:
        # "Today" when it is sent: a broadcast resumed tomorrow counts days from tomorrow.
        return render(self.content, recipient, self.today())

    async def finish(
        self,
        recipient: Recipient,
        status: DeliveryStatus,
        reason: str | None,
        attempts: int,
        message_id: str | None = None,
    ) -> None:
        await self.store.ledger.finish(recipient.key, status.value, reason, attempts, message_id)

    async def release(self, recipient: Recipient) -> None:
        await self.store.release(recipient.key)

    async def cancelled(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            return True
        return await self.store.status(self.broadcast_id) is BroadcastStatus.CANCELLED


ProgressFor = Callable[[BroadcastSummary], ProgressCallback | None]
ReportCallback = Callable[[BroadcastReport], Awaitable[None]]


class BroadcastRunner:
    def __init__(
        self,
        store: BroadcastStore,
        deliverer: Deliverer,
        *,
        tz: ZoneInfo,
        today: Today | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.tz = tz
        self.today: Today = today or (lambda: today_in(tz))
        self.monotonic = monotonic  # times a run (a test's clock may replace it)
        self._running: set[int] = set()
        # Created here and about to be run by their creator: a resume sweep must not take
        # them (the admin's progress message and report belong to the creator's run).
        self._reserved: set[int] = set()

    def _today(self, today: date | None) -> date:
        return today or self.today()

    def channels(self, choice: ChannelChoice = ChannelChoice.ALL) -> tuple[str, ...]:
        """The channels a broadcast with this choice reaches from here (those with a sender)."""
        return choice.pick(self.deliverer.channels)

    async def preview(
        self,
        audience: Audience,
        content: Content,
        *,
        channel: ChannelChoice = ChannelChoice.ALL,
        today: date | None = None,
    ) -> BroadcastPreview:
        """Raises UnknownInsurer for an insurer audience with an unknown code."""
        await self.store.check_audience(audience)
        day, channels = self._today(today), self.channels(channel)
        count = await self.store.count_audience(audience, content, day, channels)
        sample = await self.store.sample(audience, content, day, channels)
        message = render(content, sample, day) if sample is not None else None
        return BroadcastPreview(
            audience, content, count, message, sample.locale if sample else None
        )

    async def create(
        self,
        audience: Audience,
        content: Content,
        created_by: str,
        *,
        channel: ChannelChoice = ChannelChoice.ALL,
        today: date | None = None,
        progress_ref: str | None = None,
    ) -> int:
        """The admin confirmed: record the broadcast and fix its recipients. Run it with
        `run(id)`; if the process dies first, `resume_unfinished()` delivers it.

        `created_by` names the admin ("telegram:<user id>", "cli:<login>"); `progress_ref` is
        kept for the adapter (e.g. "<chat id>:<message id>" of the progress message) so a
        resumed broadcast can go on editing it. Raises EmptyAudience, UnknownInsurer."""
        await self.store.check_audience(audience)
        broadcast_id, total = await self.store.create(
            audience,
            content,
            created_by,
            self._today(today),
            self.channels(channel),
            progress_ref,
        )
        self._reserved.add(broadcast_id)
        log.info(
            "broadcast #%d created by %s: %s on %s, %d recipients",
            broadcast_id,
            created_by,
            audience,
            channel,
            total,
        )
        return broadcast_id

    async def set_progress_ref(self, broadcast_id: int, ref: str | None) -> None:
        await self.store.set_progress_ref(broadcast_id, ref)

    async def run(
        self, broadcast_id: int, on_progress: ProgressCallback | None = None
    ) -> BroadcastReport:
        """Deliver (or go on delivering) one broadcast, together with any other process that
        delivers it (bot instances, the CLI); returns its report.

        One of them leads it (a lock on the database, `exclusive`): it shows `on_progress`,
        waits for what the others still have in flight, sends again what a dead one left in
        flight, and closes the broadcast. Any other joins: it claims recipients from the same
        list and sends them, under the same shared rate, and its outcome is "joined" (the
        leader reports the end). Outcome "busy" when this process runs it already."""
        started = self.monotonic()
        self._reserved.discard(broadcast_id)
        summary = await self.store.get(broadcast_id)
        if summary is None:
            raise KeyError(f"no broadcast #{broadcast_id}")
        if summary.status is not BroadcastStatus.RUNNING or broadcast_id in self._running:
            settled: dict[BroadcastStatus, Outcome] = {
                BroadcastStatus.DONE: "done",
                BroadcastStatus.CANCELLED: "cancelled",
            }
            outcome: Outcome = settled.get(summary.status, "busy")
            return BroadcastReport(summary, outcome, 0.0)
        self._running.add(broadcast_id)
        try:
            sent_before = (await self.store.counts(broadcast_id)).get(DeliveryStatus.SENT, 0)
            async with (
                exclusive(self.store.db, f"broadcast:{broadcast_id}") as leading,
                self._claims_kept(broadcast_id),
            ):
                if leading:
                    outcome, result = await self._lead(summary, on_progress, leading.lost)
                else:
                    outcome, result = await self._join(summary)
        finally:
            self._running.discard(broadcast_id)
        final = await self.store.get(broadcast_id)
        assert final is not None
        took = self.monotonic() - started
        return BroadcastReport(final, outcome, took, final.sent - sent_before, result.aborted)

    async def _lead(
        self,
        summary: BroadcastSummary,
        on_progress: ProgressCallback | None,
        lost: asyncio.Event,
    ) -> tuple[Outcome, DeliveryResult]:
        broadcast_id = summary.id
        job = BroadcastJob(self.store, broadcast_id, summary.content, self.today, stop=lost)
        while True:
            resent = await self.store.reset_in_flight(broadcast_id)
            if resent:
                log.warning(
                    "broadcast #%d: %d message(s) were in flight when a run stopped (this "
                    "process's or another's); sending them again",
                    broadcast_id,
                    resent,
                )
            progress = await self._progress(summary)
            shown = self._shown(broadcast_id, progress, on_progress) if on_progress else None
            result = await self.deliverer.run(job, progress, shown)
            if await self.store.status(broadcast_id) is BroadcastStatus.CANCELLED:
                await self.store.finish_broadcast(broadcast_id, BroadcastStatus.CANCELLED)
                return "cancelled", result
            if not result.complete or lost.is_set():
                return "interrupted", result
            if not await self.store.unsettled(broadcast_id):
                await self.store.finish_broadcast(broadcast_id, BroadcastStatus.DONE)
                return "done", result
            # Other processes still hold recipients (claimed, or in flight): wait for them to
            # finish, or for their claims to lapse if they died, then look again.
            await asyncio.sleep(self.deliverer.progress_every)

    async def _join(self, summary: BroadcastSummary) -> tuple[Outcome, DeliveryResult]:
        job = BroadcastJob(self.store, summary.id, summary.content, self.today)
        result = await self.deliverer.run(job, await self._progress(summary), None)
        if await self.store.status(summary.id) is BroadcastStatus.CANCELLED:
            return "cancelled", result
        return ("joined" if result.complete else "interrupted"), result

    async def _progress(self, summary: BroadcastSummary) -> Progress:
        counts = await self.store.counts(summary.id)
        return Progress(
            total=summary.total,
            sent=counts.get(DeliveryStatus.SENT, 0),
            failed=counts.get(DeliveryStatus.FAILED, 0),
            blocked=counts.get(DeliveryStatus.BLOCKED, 0),
            skipped=counts.get(DeliveryStatus.SKIPPED, 0),
            outside_window=await self.store.outside_window(summary.id),
        )

    def _shown(
        self, broadcast_id: int, start: Progress, on_progress: ProgressCallback
    ) -> ProgressCallback:
        """The leader's progress: every process's sends as the store counts them."""
        settled_before = start.total - start.remaining

        async def show(progress: Progress) -> None:
            counts = await self.store.counts(broadcast_id)
            progress.sent = counts.get(DeliveryStatus.SENT, 0)
            progress.failed = counts.get(DeliveryStatus.FAILED, 0)
            progress.blocked = counts.get(DeliveryStatus.BLOCKED, 0)
            progress.skipped = counts.get(DeliveryStatus.SKIPPED, 0)
            progress.outside_window = await self.store.outside_window(broadcast_id)
            progress.done_this_run = progress.total - progress.remaining - settled_before
            await on_progress(progress)

        return show

    @contextlib.asynccontextmanager
    async def _claims_kept(self, broadcast_id: int) -> AsyncIterator[None]:
        """This process's claims on the broadcast's recipients renewed while it runs, and
        what it claimed but did not send handed back when it stops."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.store.claim_seconds / 3)
                try:
                    await self.store.renew_claims(broadcast_id)
                except Exception:  # the database is busy or gone: the next try may do
                    log.warning("broadcast #%d: could not renew claims", broadcast_id)

        task = asyncio.create_task(renew(), name=f"claims-{broadcast_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):  # they lapse by themselves otherwise
                await self.store.unclaim(broadcast_id)

    async def resume_unfinished(
        self,
        progress_for: ProgressFor | None = None,
        on_report: ReportCallback | None = None,
    ) -> list[BroadcastReport]:
        """Deliver every broadcast still running, one after another: those left unfinished (by
        a crash, a restart or a dead CLI) are led from here; those another process leads are
        joined, and reported by it."""
        reports = []
        for broadcast_id in await self.store.unfinished():
            if broadcast_id in self._running or broadcast_id in self._reserved:
                continue
            summary = await self.store.get(broadcast_id)
            if summary is None:
                continue
            callback = progress_for(summary) if progress_for else None
            report = await self.run(broadcast_id, callback)
            if report.outcome in ("busy", "joined"):
                continue  # its leader, in another process, reports
            log.info("broadcast #%d resumed: %s", broadcast_id, report.outcome)
            reports.append(report)
            if on_report is not None:
                await on_report(report)
        return reports

    async def cancel(self, broadcast_id: int) -> bool:
        """Stop a running broadcast; recipients not yet reached are recorded as skipped."""
        return await self.store.cancel(broadcast_id)

    async def get(self, broadcast_id: int) -> BroadcastSummary | None:
        return await self.store.get(broadcast_id)

    async def recent(self, limit: int = 10) -> list[BroadcastSummary]:
        return await self.store.recent(limit)
