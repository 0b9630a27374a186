"""The daily reminder pass: who is due a reminder today, and delivering them.

Run by the bot every day at REMINDER_TIME (TIMEZONE), at start-up when today's pass was missed,
and by `python -m bot remind`. Safe to run any number of times a day: each reminder is a row
keyed by (subscription, expiry date, threshold), so a second run finds nothing new to send.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from gettext import ngettext
from zoneinfo import ZoneInfo

from bot.conversation.replies import Message
from bot.domain.policy import today_in
from bot.domain.schedule import due_threshold
from bot.i18n import translator_for
from bot.reminders.delivery import (
    Deliverer,
    DeliveryResult,
    Progress,
    ProgressCallback,
)
from bot.reminders.texts import expiry_message
from bot.store.locks import exclusive
from bot.store.subscriptions import (
    Claim,
    DeliveryStatus,
    Recipient,
    ReminderKey,
    ReminderLog,
)

LEASE = "reminder-pass"


def _days(n: int) -> str:
    """'1 day', '7 days': operators read English (gettext's own rule, no catalog)."""
    return ngettext("{n} day", "{n} days", n).format(n=n)


@dataclass
class ReminderReport:
    day: date
    dry_run: bool = False
    busy: bool = False  # another process (or task) is running the pass right now
    # threshold (days before expiry; 0 = the expiry day) -> reminders queued for today
    due: dict[int, int] = field(default_factory=dict)
    already_done: int = 0  # due today but delivered (or settled) by an earlier run
    resent: int = 0  # in flight when an earlier run died: sent again
    result: DeliveryResult | None = None

    @property
    def due_total(self) -> int:
        return sum(self.due.values())

    def summary(self) -> str:
        """One paragraph for operators (CLI, logs)."""
        if self.busy:
            return f"Reminder pass for {self.day}: already running elsewhere; nothing done."
        parts = ", ".join(
            f"{'expiry day' if t == 0 else _days(t)}: {n}"
            for t, n in sorted(self.due.items(), reverse=True)
        )
        verb = "would send" if self.dry_run else "due"
        text = f"Reminder pass for {self.day}: {self.due_total} {verb}"
        text += f" ({parts})" if parts else ""
        text += f"; {self.already_done} already sent earlier."
        if self.resent:
            text += f" {self.resent} were in flight when a previous run stopped: sent again."
        if self.result is not None:
            p = self.result.progress
            text += f" Sent {p.sent}, failed {p.failed}, blocked {p.blocked}, skipped {p.skipped}."
            if self.result.aborted:
                text += f" Stopped: {self.result.aborted}."
            elif self.result.stopped:
                text += " Stopped before the end; the rest goes on the next run."
        return text


class ReminderJob:
    """Today's queued reminders, as a delivery job; `stop` is set if the pass's lock is lost
    (another instance may run the pass then)."""

    def __init__(self, log: ReminderLog, day: date, stop: asyncio.Event | None = None) -> None:
        self.log = log
        self.day = day
        self.stop = stop

    # Reminders are the approved template on every channel: no window applies.
    free_form = False

    async def channels(self) -> list[str]:
        return await self.log.channels(self.day)

    async def page(self, channel: str, after_seq: int, limit: int) -> list[Recipient]:
        return await self.log.page(self.day, channel, after_seq, limit)

    async def claim(self, recipient: Recipient, reachable_since: float | None) -> Claim:
        return await self.log.claim(recipient.key)

    def render(self, recipient: Recipient) -> Message | None:
        r = recipient
        if r.subscription_id is None or r.id_masked is None:
            return None
        if r.insurer is None or r.expiry_date is None:
            return None
        tr = translator_for(r.locale)
        return expiry_message(
            r.subscription_id, r.id_masked, r.insurer, r.expiry_date, self.day, tr
        )

    async def finish(
        self,
        recipient: Recipient,
        status: DeliveryStatus,
        reason: str | None,
        attempts: int,
        message_id: str | None = None,
    ) -> None:
        await self.log.ledger.finish(recipient.key, status.value, reason, attempts, message_id)

    async def release(self, recipient: Recipient) -> None:
        await self.log.ledger.release(recipient.key)

    async def cancelled(self) -> bool:
        return self.stop is not None and self.stop.is_set()


class ReminderPass:
    def __init__(
        self,
        log: ReminderLog,
        deliverer: Deliverer,
        *,
        thresholds: tuple[int, ...],
        tz: ZoneInfo,
        reminder_time: time,
        today: Callable[[], date] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`clock` (tests) replaces the wall clock; `today` by default is its day in `tz`."""
        self.log = log
        self.deliverer = deliverer
        self.thresholds = thresholds
        self.tz = tz
        self.reminder_time = reminder_time
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.today: Callable[[], date] = today or (lambda: today_in(tz, self.clock()))

    async def plan(
        self, today: date, channels: tuple[str, ...] | None
    ) -> tuple[list[ReminderKey], dict[int, int], int]:
        """(reminders to queue in delivery order, count per threshold, already done)."""
        horizon = today + timedelta(days=max(self.thresholds))
        candidates = await self.log.candidates(today, horizon, channels)
        statuses = await self.log.statuses(today)
        ordered: list[tuple[int, int, ReminderKey]] = []
        per_threshold: Counter[int] = Counter()
        rounds: Counter[tuple[str, str]] = Counter()
        already = 0
        for c in candidates:
            consented_on = c.consented_at.astimezone(self.tz).date()
            threshold = due_threshold(c.expiry_date, today, consented_on, self.thresholds)
            if threshold is None:
                continue
            key = (c.subscription_id, c.expiry_date.isoformat(), threshold)
            status = statuses.get(key)
            if status is not None and status not in ReminderLog.RETRYABLE:
                already += 1
                continue
            # A family's reminders are spread over rounds so one chat never holds up others.
            chat = (c.channel, c.chat_id)
            ordered.append((rounds[chat], c.subscription_id, key))
            rounds[chat] += 1
            per_threshold[threshold] += 1
        ordered.sort()
        return [key for _, _, key in ordered], dict(per_threshold), already

    async def run(
        self,
        today: date | None = None,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ReminderReport:
        day = today or self.today()
        channels = self.deliverer.channels or None
        if dry_run:
            _, due, already = await self.plan(day, channels)
            return ReminderReport(day, dry_run=True, due=due, already_done=already)
        # One instance at a time, whichever runs the schedule (each would find the same rows).
        async with exclusive(self.log.db, LEASE) as mine:
            if not mine:
                return ReminderReport(day, busy=True)
            resent = await self.log.reset_in_flight(day)
            keys, due, already = await self.plan(day, channels)
            await self.log.start_pass(day)
            await self.log.schedule(day, keys)
            total = await self.log.pending_count(day)
            result = await self.deliverer.run(
                ReminderJob(self.log, day, mine.lost), Progress(total=total), progress
            )
            if result.complete:
                await self.log.finish_pass(day)
            return ReminderReport(day, due=due, already_done=already, resent=resent, result=result)

    async def run_if_due(self, now: datetime | None = None) -> ReminderReport | None:
        """At start-up: run today's pass now if its time has come and it has not finished
        (the bot was down at REMINDER_TIME). Before that time the daily job will run it; the
        pass itself catches up on missed days by sending the nearest due threshold."""
        local = (now or self.clock()).astimezone(self.tz)
        if local.time() < self.reminder_time:
            return None
        if await self.log.pass_finished(local.date()):
            return None
        return await self.run(local.date())
