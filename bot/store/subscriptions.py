"""Reminder subscriptions: who consented, from which chat, for which identity (HMAC only).

A subscription is the record of consent (time, channel, chat, identity HMAC, language). It is
never deleted: stopping it sets `active = 0` with the time and the reason, so the history of
consent and its withdrawal stays provable. Reminders find the policy through the identity HMAC,
so a renewal imported later moves them to the new expiry date by itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from bot.domain.policy import Insurer
from bot.domain.subscriptions import (
    SubscribeOutcome,
    SubscribeResult,
    Subscription,
    SubscriptionView,
)
from bot.store.database import Database, Queries
from bot.store.ledger import Ledger, parse_timestamp, timestamp

# The policy reminders follow: the person's active policy with the latest expiry.
CURRENT_POLICY_ID = """(
    SELECT cp.id FROM policies cp
    WHERE cp.id_hmac = {hmac} AND cp.status = 'active'
    ORDER BY cp.expiry_date DESC, cp.id DESC LIMIT 1
)"""


class StopReason(StrEnum):
    USER = "user"
    BLOCKED = "blocked"  # the person blocked the bot or the chat is gone


_SUB_COLUMNS = (
    "s.id, s.channel, s.chat_id, s.id_masked, s.locale, s.consented_at, s.active, s.id_hmac"
)


def _subscription(r: tuple[Any, ...]) -> Subscription:
    return Subscription(
        id=int(r[0]),
        channel=str(r[1]),
        chat_id=str(r[2]),
        id_masked=str(r[3]),
        locale=str(r[4]),
        consented_at=parse_timestamp(str(r[5])),
        active=bool(r[6]),
        id_hmac=bytes(r[7]),
    )


class SubscriptionStore:
    def __init__(self, db: Database, max_per_chat: int = 5) -> None:
        self.db = db
        self.max_per_chat = max_per_chat

    async def subscribe(
        self,
        channel: str,
        chat_id: str | int,
        id_hmac: bytes,
        id_masked: str,
        locale: str,
        *,
        now: datetime | None = None,
    ) -> SubscribeResult:
        """Record consent to reminders for one identity number in one chat.

        One transaction (the writer's turn), so two taps at once can neither pass the limit nor
        subscribe twice."""
        chat = str(chat_id)
        async with self.db.transaction() as unit:
            rows = await unit.read(
                "SELECT id, id_hmac FROM subscriptions "
                "WHERE channel = ? AND chat_id = ? AND active = 1",
                (channel, chat),
            )
            mine = next((int(r[0]) for r in rows if bytes(r[1]) == id_hmac), None)
            if mine is not None:
                # The language they use now is the one reminders should speak.
                await unit.write("UPDATE subscriptions SET locale = ? WHERE id = ?", (locale, mine))
                return SubscribeResult(SubscribeOutcome.ALREADY, mine, len(rows), self.max_per_chat)
            if len(rows) >= self.max_per_chat:
                return SubscribeResult(
                    SubscribeOutcome.LIMIT_REACHED, None, len(rows), self.max_per_chat
                )
            [new] = await unit.write_returning(
                "INSERT INTO subscriptions "
                "(channel, chat_id, id_hmac, id_masked, locale, consented_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (channel, chat, id_hmac, id_masked, locale, timestamp(now)),
            )
            return SubscribeResult(
                SubscribeOutcome.SUBSCRIBED, int(new[0]), len(rows) + 1, self.max_per_chat
            )

    async def list_for_chat(self, channel: str, chat_id: str | int) -> list[SubscriptionView]:
        """The chat's active subscriptions, oldest first, with the policy reminders follow."""
        rows = await self.db.read(
            f"""
            SELECT {_SUB_COLUMNS}, p.expiry_date, i.code, i.name_ar, i.name_en
            FROM subscriptions s
            LEFT JOIN policies p ON p.id = {CURRENT_POLICY_ID.format(hmac="s.id_hmac")}
            LEFT JOIN insurers i ON i.code = p.insurer_code
            WHERE s.channel = ? AND s.chat_id = ? AND s.active = 1
            ORDER BY s.id
            """,
            (channel, str(chat_id)),
        )
        views = []
        for row in rows:
            r = tuple(row)
            insurer = None
            if r[9] is not None:
                insurer = Insurer(code=str(r[9]), name_ar=str(r[10]), name_en=str(r[11]))
            expiry = date.fromisoformat(str(r[8])) if r[8] is not None else None
            views.append(SubscriptionView(_subscription(r[:8]), insurer, expiry))
        return views

    async def get(self, subscription_id: int) -> Subscription | None:
        rows = list(
            await self.db.read(
                f"SELECT {_SUB_COLUMNS} FROM subscriptions s WHERE s.id = ?", (subscription_id,)
            )
        )
        return _subscription(tuple(rows[0])) if rows else None

    async def unsubscribe(
        self, subscription_id: int, channel: str, chat_id: str | int, *, now: datetime | None = None
    ) -> bool:
        """Stop one subscription of this chat. Button data is untrusted, hence the chat check:
        a forged `stop_sub:<id>` cannot stop someone else's reminders. False if there was
        nothing active to stop."""
        written = await self.db.write(
            "UPDATE subscriptions SET active = 0, stopped_at = ?, stop_reason = ? "
            "WHERE id = ? AND channel = ? AND chat_id = ? AND active = 1",
            (timestamp(now), StopReason.USER.value, subscription_id, channel, str(chat_id)),
        )
        return written.rowcount > 0

    async def unsubscribe_all(
        self, channel: str, chat_id: str | int, *, now: datetime | None = None
    ) -> int:
        """/stop: every subscription of the chat; returns how many were active."""
        return await self._deactivate(channel, chat_id, StopReason.USER, now)

    async def deactivate_chat(
        self,
        channel: str,
        chat_id: str | int,
        reason: StopReason = StopReason.BLOCKED,
        *,
        now: datetime | None = None,
    ) -> int:
        return await self._deactivate(channel, chat_id, reason, now)

    async def _deactivate(
        self, channel: str, chat_id: str | int, reason: StopReason, now: datetime | None
    ) -> int:
        written = await self.db.write(
            "UPDATE subscriptions SET active = 0, stopped_at = ?, stop_reason = ? "
            "WHERE channel = ? AND chat_id = ? AND active = 1",
            (timestamp(now), reason.value, channel, str(chat_id)),
        )
        return written.rowcount

    async def set_locale(self, channel: str, chat_id: str | int, locale: str) -> int:
        """The person switched language: their reminders follow."""
        written = await self.db.write(
            "UPDATE subscriptions SET locale = ? WHERE channel = ? AND chat_id = ? AND active = 1",
            (locale, channel, str(chat_id)),
        )
        return written.rowcount

    async def insurers_of_subscribers(self) -> list[Insurer]:
        """Insurers of the policies active subscriptions follow (the admin's audience choice)."""
        rows = await self.db.read(
            f"""
            SELECT DISTINCT i.code, i.name_ar, i.name_en
            FROM subscriptions s
            JOIN policies p ON p.id = {CURRENT_POLICY_ID.format(hmac="s.id_hmac")}
            JOIN insurers i ON i.code = p.insurer_code
            WHERE s.active = 1
            ORDER BY i.code
            """
        )
        return [Insurer(code=str(r[0]), name_ar=str(r[1]), name_en=str(r[2])) for r in rows]

    async def count_active(self, channels: tuple[str, ...] | None = None) -> int:
        """Active subscriptions (on `channels` only, if given)."""
        channel_filter, params = _channel_filter(channels)
        rows = await self.db.read(
            f"SELECT count(*) FROM subscriptions s WHERE s.active = 1 {channel_filter}", params
        )
        return int(next(iter(rows))[0])


class DeliveryStatus(StrEnum):
    """A queued message: pending -> sending -> sent | failed | blocked | skipped.

    `sending` is written just before the platform call and replaced right after it, so rows
    still `sending` after a crash are exactly the messages that were in flight.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


# The reason of a message skipped because the person is outside the channel's window for
# free-form messages (WhatsApp: 24 hours after their last message); counted apart in reports.
OUTSIDE_WINDOW = "outside the messaging window"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One queued message and what is needed to write it (read when it is about to go out)."""

    key: tuple[int | str, ...]  # primary key of the row in its table
    seq: int
    channel: str
    chat_id: str
    locale: str
    subscription_id: int | None = None
    id_masked: str | None = None
    expiry_date: date | None = None
    insurer: Insurer | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """What re-checking a recipient right before sending found."""

    go: bool  # marked `sending`: send now
    reason: str | None = None  # why not (marked `skipped`); None with go=False: not pending

    @classmethod
    def of(cls, returned: Iterable[Any]) -> Claim:
        """From a claiming UPDATE's `RETURNING status, reason` (no row: it was not pending)."""
        rows = list(returned)
        if not rows:
            return cls(go=False)
        status, reason = tuple(rows[0])
        return cls(go=status == DeliveryStatus.SENDING, reason=reason)


def recipient_from_row(key: tuple[int | str, ...], r: tuple[Any, ...]) -> Recipient:
    """Row layout: seq, channel, chat_id, locale, subscription_id, id_masked, expiry_date,
    insurer code, name_ar, name_en."""
    insurer = None
    if r[7] is not None:
        insurer = Insurer(code=str(r[7]), name_ar=str(r[8]), name_en=str(r[9]))
    return Recipient(
        key=key,
        seq=int(r[0]),
        channel=str(r[1]),
        chat_id=str(r[2]),
        locale=str(r[3]),
        subscription_id=int(r[4]) if r[4] is not None else None,
        id_masked=str(r[5]) if r[5] is not None else None,
        expiry_date=date.fromisoformat(str(r[6])) if r[6] is not None else None,
        insurer=insurer,
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """An active subscription whose policy expires soon enough for a reminder to be due."""

    subscription_id: int
    channel: str
    chat_id: str
    consented_at: datetime
    expiry_date: date


ReminderKey = tuple[int, str, int]  # subscription id, expiry date (ISO), threshold


class ReminderLog:
    """The `reminders` table: one row per reminder ever due, keyed by (subscription, expiry
    date, threshold), which is what makes the daily pass idempotent."""

    RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED)

    def __init__(self, db: Database) -> None:
        self.db = db
        self.ledger = Ledger(db, "reminders", ("subscription_id", "expiry_date", "threshold"))

    async def candidates(
        self, first: date, last: date, channels: tuple[str, ...] | None
    ) -> list[Candidate]:
        """Active subscriptions whose current policy expires between `first` and `last`."""
        channel_filter, params = _channel_filter(channels)
        rows = await self.db.read(
            f"""
            SELECT s.id, s.channel, s.chat_id, s.consented_at, p.expiry_date
            FROM subscriptions s
            JOIN policies p ON p.id = {CURRENT_POLICY_ID.format(hmac="s.id_hmac")}
            WHERE s.active = 1 {channel_filter}
              AND p.expiry_date BETWEEN ? AND ?
            ORDER BY s.id
            """,
            (*params, first.isoformat(), last.isoformat()),
        )
        return [
            Candidate(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                parse_timestamp(str(r[3])),
                date.fromisoformat(str(r[4])),
            )
            for r in rows
        ]

    async def statuses(self, since_expiry: date) -> dict[ReminderKey, DeliveryStatus]:
        rows = await self.db.read(
            "SELECT subscription_id, expiry_date, threshold, status FROM reminders "
            "WHERE expiry_date >= ?",
            (since_expiry.isoformat(),),
        )
        return {(int(r[0]), str(r[1]), int(r[2])): DeliveryStatus(str(r[3])) for r in rows}

    async def schedule(self, day: date, due: list[ReminderKey]) -> None:
        """Queue today's reminders in delivery order; an unfinished or failed row for the same
        key is queued again, a finished one is left alone. Older unfinished rows that are not
        due any more (a nearer threshold took over, or the policy was renewed) are skipped."""
        now = timestamp()
        retry = ", ".join(f"'{s.value}'" for s in self.RETRYABLE)
        # One transaction: queued and superseded together, or (a crash) not at all.
        async with self.db.transaction() as unit:
            await unit.write_many(
                f"""
                INSERT INTO reminders
                  (subscription_id, expiry_date, threshold, due_on, seq, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (subscription_id, expiry_date, threshold) DO UPDATE SET
                  due_on = excluded.due_on, seq = excluded.seq, status = 'pending',
                  reason = NULL, updated_at = excluded.updated_at
                WHERE reminders.status IN ({retry})
                """,
                [(k[0], k[1], k[2], day.isoformat(), seq, now) for seq, k in enumerate(due)],
            )
            await unit.write(
                "UPDATE reminders SET status = 'skipped', reason = 'superseded', updated_at = ? "
                "WHERE status IN ('pending', 'sending') AND due_on < ?",
                (now, day.isoformat()),
            )

    async def reset_in_flight(self, day: date) -> int:
        """Rows left `sending` by a process that died: maybe delivered, sent again."""
        written = await self.db.write(
            "UPDATE reminders SET status = 'pending' WHERE due_on = ? AND status = 'sending'",
            (day.isoformat(),),
        )
        return written.rowcount

    async def channels(self, day: date) -> list[str]:
        """The channels of the day's reminders still to send."""
        rows = await self.db.read(
            "SELECT DISTINCT s.channel FROM reminders r "
            "JOIN subscriptions s ON s.id = r.subscription_id "
            "WHERE r.due_on = ? AND r.status = 'pending' ORDER BY s.channel",
            (day.isoformat(),),
        )
        return [str(r[0]) for r in rows]

    async def page(self, day: date, channel: str, after_seq: int, limit: int) -> list[Recipient]:
        rows = await self.db.read(
            """
            SELECT r.seq, s.channel, s.chat_id, s.locale, s.id, s.id_masked, r.expiry_date,
                   i.code, i.name_ar, i.name_en, r.subscription_id, r.expiry_date, r.threshold
            FROM reminders r
            JOIN subscriptions s ON s.id = r.subscription_id
            LEFT JOIN policies p ON p.id = (
                SELECT pp.id FROM policies pp
                WHERE pp.id_hmac = s.id_hmac AND pp.status = 'active'
                  AND pp.expiry_date = r.expiry_date
                ORDER BY pp.id LIMIT 1)
            LEFT JOIN insurers i ON i.code = p.insurer_code
            WHERE r.due_on = ? AND s.channel = ? AND r.status = 'pending' AND r.seq > ?
            ORDER BY r.seq LIMIT ?
            """,
            (day.isoformat(), channel, after_seq, limit),
        )
        return [
            recipient_from_row((int(r[10]), str(r[11]), int(r[12])), tuple(r)[:10]) for r in rows
        ]

    async def claim(self, key: tuple[int | str, ...]) -> Claim:
        """Re-check just before sending: still subscribed, and still the current expiry (a
        renewal imported since the pass began moves the reminder to the new date)."""
        sub_id, expiry, threshold = key
        rows = list(
            await self.db.write_returning(
                f"""
                UPDATE reminders SET
                  status = CASE WHEN c.active = 1
                                AND c.current IS NOT DISTINCT FROM reminders.expiry_date
                           THEN 'sending' ELSE 'skipped' END,
                  reason = CASE WHEN c.active = 0 THEN 'opted out'
                           WHEN c.current IS DISTINCT FROM reminders.expiry_date
                           THEN 'expiry changed' END,
                  updated_at = ?
                FROM (
                  SELECT s.active AS active,
                         (SELECT p.expiry_date FROM policies p
                          WHERE p.id = {CURRENT_POLICY_ID.format(hmac="s.id_hmac")}) AS current
                  FROM subscriptions s WHERE s.id = ?
                ) AS c
                WHERE reminders.subscription_id = ? AND reminders.expiry_date = ?
                  AND reminders.threshold = ? AND reminders.status = 'pending'
                RETURNING reminders.status, reminders.reason
                """,
                (timestamp(), sub_id, sub_id, expiry, threshold),
            )
        )
        return Claim.of(rows)

    async def counts(self, day: date, unit: Queries | None = None) -> dict[DeliveryStatus, int]:
        rows = await (unit or self.db).read(
            "SELECT status, count(*) FROM reminders WHERE due_on = ? GROUP BY status",
            (day.isoformat(),),
        )
        return {DeliveryStatus(str(r[0])): int(r[1]) for r in rows}

    async def pending_count(self, day: date) -> int:
        return (await self.counts(day)).get(DeliveryStatus.PENDING, 0)

    async def start_pass(self, day: date) -> None:
        await self.db.write(
            "INSERT INTO reminder_passes (day, started_at) VALUES (?, ?) "
            "ON CONFLICT (day) DO UPDATE SET started_at = excluded.started_at, finished_at = NULL",
            (day.isoformat(), timestamp()),
        )

    async def finish_pass(self, day: date) -> None:
        async with self.db.transaction() as unit:  # the counts as of the moment they are kept
            counts = await self.counts(day, unit)
            await unit.write(
                "UPDATE reminder_passes SET finished_at = ?, due = ?, sent = ?, failed = ?, "
                "blocked = ?, skipped = ? WHERE day = ?",
                (
                    timestamp(),
                    sum(counts.values()),
                    counts.get(DeliveryStatus.SENT, 0),
                    counts.get(DeliveryStatus.FAILED, 0),
                    counts.get(DeliveryStatus.BLOCKED, 0),
                    counts.get(DeliveryStatus.SKIPPED, 0),
                    day.isoformat(),
                ),
            )

    async def pass_finished(self, day: date) -> bool:
        rows = list(
            await self.db.read(
                "SELECT finished_at FROM reminder_passes WHERE day = ?", (day.isoformat(),)
            )
        )
        return bool(rows) and rows[0][0] is not None


def _channel_filter(channels: tuple[str, ...] | None) -> tuple[str, tuple[str, ...]]:
    if channels is None:
        return "", ()
    if not channels:
        return "AND FALSE", ()
    return f"AND s.channel IN ({', '.join('?' * len(channels))})", channels
