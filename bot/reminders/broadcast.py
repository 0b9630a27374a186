"""Admin broadcasts: preview, confirm (create), deliver, resume after a restart, cancel, list.

The flow the admin dialogue (Telegram `/broadcast`) and the CLI share:

    preview(audience, content)      -> how many recipients, and exactly what one will see
    create(audience, content, who)  -> broadcast id; recipients are fixed at this moment
    run(id, on_progress)            -> delivers, calling on_progress every few seconds
    resume_unfinished()             -> at start-up: every broadcast a crash left unfinished
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo

from bot.conversation.replies import Message
from bot.domain.audience import Audience, ChannelChoice, Content
from bot.domain.policy import Insurer, today_in
from bot.i18n import Translator, translator_for
from bot.reminders.delivery import Deliverer, Progress, ProgressCallback
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
    Leases,
    UnknownInsurer,
)
from bot.store.subscriptions import Claim, DeliveryStatus, Recipient

log = logging.getLogger(__name__)

Outcome = Literal["done", "cancelled", "interrupted", "busy"]

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
        outcome: Literal["done", "cancelled", "interrupted"] = (
            "interrupted" if self.outcome == "busy" else self.outcome
        )
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
    def __init__(
        self, store: BroadcastStore, broadcast_id: int, content: Content, today: Today
    ) -> None:
        self.store = store
        self.broadcast_id = broadcast_id
        self.content = content
        self.today = today

    @property
    def free_form(self) -> bool:
        return self.content.text is not None

    async def channels(self) -> list[str]:
        return await self.store.channels(self.broadcast_id)

    async def page(self, channel: str, after_seq: int, limit: int) -> list[Recipient]:
        return await self.store.page(self.broadcast_id, channel, after_seq, limit)

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
        await self.store.ledger.release(recipient.key)

    async def cancelled(self) -> bool:
        return await self.store.status(self.broadcast_id) is BroadcastStatus.CANCELLED


ProgressFor = Callable[[BroadcastSummary], ProgressCallback | None]
ReportCallback = Callable[[BroadcastReport], Awaitable[None]]


class BroadcastRunner:
    def __init__(
        self,
        store: BroadcastStore,
        deliverer: Deliverer,
        leases: Leases,
        *,
        tz: ZoneInfo,
        today: Today | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.leases = leases
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
        """Deliver (or go on delivering) one broadcast; returns its report.

        Outcome "busy" when another process or task is delivering it right now."""
        started = self.monotonic()
        sent_before = 0
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
            async with self.leases.hold(f"broadcast:{broadcast_id}") as mine:
                if not mine:
                    return BroadcastReport(summary, "busy", 0.0)
                resent = await self.store.reset_in_flight(broadcast_id)
                if resent:
                    log.warning(
                        "broadcast #%d: %d message(s) were in flight when the previous run "
                        "stopped; sending them again",
                        broadcast_id,
                        resent,
                    )
                counts = await self.store.counts(broadcast_id)
                sent_before = counts.get(DeliveryStatus.SENT, 0)  # by earlier runs
                progress = Progress(
                    total=summary.total,
                    sent=sent_before,
                    failed=counts.get(DeliveryStatus.FAILED, 0),
                    blocked=counts.get(DeliveryStatus.BLOCKED, 0),
                    skipped=counts.get(DeliveryStatus.SKIPPED, 0),
                    outside_window=await self.store.outside_window(broadcast_id),
                )
                job = BroadcastJob(self.store, broadcast_id, summary.content, self.today)
                result = await self.deliverer.run(job, progress, on_progress)
                cancelled = await self.store.status(broadcast_id) is BroadcastStatus.CANCELLED
                if cancelled:
                    await self.store.finish_broadcast(broadcast_id, BroadcastStatus.CANCELLED)
                    outcome = "cancelled"
                elif result.complete:
                    await self.store.finish_broadcast(broadcast_id, BroadcastStatus.DONE)
                    outcome = "done"
                else:
                    outcome = "interrupted"
        finally:
            self._running.discard(broadcast_id)
        final = await self.store.get(broadcast_id)
        assert final is not None
        took = self.monotonic() - started
        return BroadcastReport(final, outcome, took, final.sent - sent_before, result.aborted)

    async def resume_unfinished(
        self,
        progress_for: ProgressFor | None = None,
        on_report: ReportCallback | None = None,
    ) -> list[BroadcastReport]:
        """Deliver every broadcast left unfinished (by a crash, a restart or a dead CLI), one
        after another. Those another process is delivering are left to it."""
        reports = []
        for broadcast_id in await self.store.unfinished():
            if broadcast_id in self._running or broadcast_id in self._reserved:
                continue
            summary = await self.store.get(broadcast_id)
            if summary is None:
                continue
            callback = progress_for(summary) if progress_for else None
            report = await self.run(broadcast_id, callback)
            if report.outcome == "busy":
                continue
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
