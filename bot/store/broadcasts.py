"""Admin broadcasts: one row per broadcast (who, when, audience, text, counts) and one per
recipient.

Recipients are chosen once, when the broadcast is confirmed, and written in delivery order: a
restart resumes the same list instead of choosing again, so nobody is skipped or added midway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.audience import Audience, AudienceKind, Content, Template
from bot.store.database import Database, Queries
from bot.store.leases import Leases as Leases  # where it was first (callers import it here)
from bot.store.leases import new_owner, owner_gone
from bot.store.ledger import Ledger, parse_timestamp, timestamp
from bot.store.subscriptions import (
    CURRENT_POLICY_ID,
    OUTSIDE_WINDOW,
    Claim,
    DeliveryStatus,
    Recipient,
    recipient_from_row,
)


class BroadcastStatus(StrEnum):
    PREPARING = "preparing"  # recipients being written; never resumed (a crash here sent nothing)
    RUNNING = "running"  # confirmed; delivering, or waiting to be resumed
    DONE = "done"
    CANCELLED = "cancelled"


class UnknownInsurer(ValueError):
    pass


class EmptyAudience(ValueError):
    """Nobody to send to: nothing is recorded."""


@dataclass(frozen=True, slots=True)
class BroadcastSummary:
    id: int
    created_at: datetime
    created_by: str
    audience: Audience
    content: Content
    status: BroadcastStatus
    total: int
    sent: int
    failed: int
    blocked: int
    skipped: int
    resent: int  # in flight when a process died, sent again (possibly received twice)
    finished_at: datetime | None
    progress_ref: str | None  # opaque to the store: where the admin watches progress
    outside_window: int = 0  # of `skipped`: outside the channel's window for free-form text

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.sent - self.failed - self.blocked - self.skipped)


def _audience_filter(audience: Audience, today: date) -> tuple[str, tuple[Any, ...]]:
    if audience.kind is AudienceKind.EXPIRING:
        last = today + timedelta(days=audience.days)
        return "p.expiry_date BETWEEN ? AND ?", (today.isoformat(), last.isoformat())
    if audience.kind is AudienceKind.EXPIRED:
        return "p.expiry_date < ?", (today.isoformat(),)
    if audience.kind is AudienceKind.INSURER:
        return "p.insurer_code = ?", (audience.insurer,)
    return "TRUE", ()


def _members(
    audience: Audience, content: Content, today: date, channels: tuple[str, ...]
) -> tuple[str, tuple[Any, ...]]:
    """Active subscriptions in the audience, with the policy reminders follow."""
    where, params = _audience_filter(audience, today)
    needs_policy = "AND p.id IS NOT NULL" if content.per_subscription else ""
    channel_list = ", ".join("?" * len(channels)) or "NULL"
    sql = f"""
        SELECT s.id AS sub_id, s.channel AS channel, s.chat_id AS chat_id, s.locale AS locale
        FROM subscriptions s
        LEFT JOIN policies p ON p.id = {CURRENT_POLICY_ID.format(hmac="s.id_hmac")}
        WHERE s.active = 1 AND s.channel IN ({channel_list}) AND {where} {needs_policy}
    """
    return sql, (*channels, *params)


def _ordered(members: str, per_subscription: bool) -> str:
    """Recipients in delivery order: (seq, channel, chat_id, subscription_id, locale).

    Per subscription, a family's messages are spread over rounds (first number of every chat,
    then the second, ...) so the one-message-per-second-per-chat rule rarely makes anyone wait.
    A typed text goes once per chat, in the language of the chat's latest subscription.
    """
    if per_subscription:
        return f"""
            SELECT row_number() OVER (ORDER BY rnd, sub_id) AS seq, channel, chat_id,
                   sub_id AS subscription_id, locale
            FROM (SELECT m.*, row_number() OVER (PARTITION BY channel, chat_id ORDER BY sub_id)
                  AS rnd FROM ({members}) m) AS rounds
        """
    return f"""
        SELECT row_number() OVER (ORDER BY sub_id) AS seq, channel, chat_id,
               CAST(NULL AS INTEGER) AS subscription_id, locale
        FROM (SELECT m.*, row_number() OVER (PARTITION BY channel, chat_id ORDER BY sub_id DESC)
              AS newest FROM ({members}) m) AS chats
        WHERE newest = 1
    """


_RECIPIENT_SELECT = f"""
    SELECT r.seq, r.channel, r.chat_id, coalesce(s.locale, r.locale), r.subscription_id,
           s.id_masked, p.expiry_date, i.code, i.name_ar, i.name_en
    FROM {{source}} r
    LEFT JOIN subscriptions s ON s.id = r.subscription_id
    LEFT JOIN policies p ON p.id = {CURRENT_POLICY_ID.format(hmac="s.id_hmac")}
    LEFT JOIN insurers i ON i.code = p.insurer_code
"""


# A recipient claimed by a process that stops renewing the claim (it died, or lost the
# database) may be taken by another after this many seconds; at once if that process was on
# this machine and is gone.
CLAIM_SECONDS = 30.0


class BroadcastStore:
    """`owner` names this process's claims on recipients (several processes deliver one
    broadcast together: bot instances, the CLI)."""

    def __init__(
        self, db: Database, *, owner: str | None = None, claim_seconds: float = CLAIM_SECONDS
    ) -> None:
        self.db = db
        self.ledger = Ledger(db, "broadcast_recipients", ("broadcast_id", "seq"))
        self.owner = owner or new_owner()
        self.claim_seconds = claim_seconds

    async def check_audience(self, audience: Audience) -> None:
        if audience.kind is AudienceKind.INSURER:
            rows = list(
                await self.db.read("SELECT 1 FROM insurers WHERE code = ?", (audience.insurer,))
            )
            if not rows:
                raise UnknownInsurer(f"no insurer with code {audience.insurer!r}")

    async def count_audience(
        self, audience: Audience, content: Content, today: date, channels: tuple[str, ...]
    ) -> int:
        members, params = _members(audience, content, today, channels)
        rows = list(
            await self.db.read(
                f"SELECT count(*) FROM ({_ordered(members, content.per_subscription)}) AS r",
                params,
            )
        )
        return int(rows[0][0])

    async def sample(
        self, audience: Audience, content: Content, today: date, channels: tuple[str, ...]
    ) -> Recipient | None:
        """The first recipient, with what is needed to render exactly their message."""
        members, params = _members(audience, content, today, channels)
        ordered = _ordered(members, content.per_subscription)
        source = f"(SELECT * FROM ({ordered}) AS o ORDER BY seq LIMIT 1)"
        rows = list(await self.db.read(_RECIPIENT_SELECT.format(source=source), params))
        return recipient_from_row((0,), tuple(rows[0])) if rows else None

    async def create(
        self,
        audience: Audience,
        content: Content,
        created_by: str,
        today: date,
        channels: tuple[str, ...],
        progress_ref: str | None = None,
    ) -> tuple[int, int]:
        """Record the broadcast and fix its recipients; returns (id, recipients).

        One transaction: the broadcast and its whole list of recipients, or nothing. Raises
        EmptyAudience (nothing kept)."""
        members, params = _members(audience, content, today, channels)
        async with self.db.transaction() as unit:
            [new] = await unit.write_returning(
                "INSERT INTO broadcasts (created_at, created_by, audience, template, text, "
                "progress_ref) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    timestamp(),
                    created_by,
                    str(audience),
                    content.template.value if content.template else None,
                    content.text,
                    progress_ref,
                ),
            )
            broadcast_id = int(new[0])
            written = await unit.write(
                "INSERT INTO broadcast_recipients "
                "(broadcast_id, seq, channel, chat_id, subscription_id, locale) "
                f"SELECT ?, r.* FROM ({_ordered(members, content.per_subscription)}) AS r",
                (broadcast_id, *params),
            )
            total = written.rowcount
            if total == 0:
                raise EmptyAudience(str(audience))  # rolls the broadcast row back
            await unit.write(
                "UPDATE broadcasts SET total = ?, status = ? WHERE id = ?",
                (total, BroadcastStatus.RUNNING.value, broadcast_id),
            )
        return broadcast_id, total

    async def set_progress_ref(self, broadcast_id: int, ref: str | None) -> None:
        await self.db.write(
            "UPDATE broadcasts SET progress_ref = ? WHERE id = ?", (ref, broadcast_id)
        )

    async def channels(self, broadcast_id: int) -> list[str]:
        """The channels of the recipients still to reach."""
        rows = await self.db.read(
            "SELECT DISTINCT channel FROM broadcast_recipients "
            "WHERE broadcast_id = ? AND status = 'pending' ORDER BY channel",
            (broadcast_id,),
        )
        return [str(r[0]) for r in rows]

    async def page(self, broadcast_id: int, channel: str, limit: int) -> list[Recipient]:
        """Claim for this process up to `limit` pending recipients of `channel` that nobody
        holds, first in delivery order, and return them. Rows another process is claiming at
        this moment are skipped, not waited for (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite
        runs one write at a time), so processes split the list between them; what one has
        claimed is offered to nobody else until the claim lapses."""
        epoch, skip_locked = self.db.dialect.epoch, self.db.dialect.for_update_skip_locked
        # The choice is a CTE, MATERIALIZED: as a subquery of the UPDATE, PostgreSQL may scan
        # it again for each row (a nested-loop semi-join), each time past the rows just
        # claimed, and claim far more than `limit`.
        claimed = await self.db.write_returning(
            "WITH picked AS MATERIALIZED ("
            "  SELECT seq FROM broadcast_recipients"
            "  WHERE broadcast_id = ? AND channel = ? AND status = 'pending'"
            f"   AND (claimed_until IS NULL OR claimed_until < {epoch})"
            f"  ORDER BY seq LIMIT ?{skip_locked}"
            ") "
            f"UPDATE broadcast_recipients SET claimed_by = ?, claimed_until = {epoch} + ? "
            "WHERE broadcast_id = ? AND seq IN (SELECT seq FROM picked) RETURNING seq",
            (broadcast_id, channel, limit, self.owner, self.claim_seconds, broadcast_id),
        )
        seqs = sorted(int(row[0]) for row in claimed)
        if not seqs:
            return []
        rows = await self.db.read(
            _RECIPIENT_SELECT.format(source="broadcast_recipients")
            + f" WHERE r.broadcast_id = ? AND r.seq IN ({', '.join('?' * len(seqs))})"
            " ORDER BY r.seq",
            (broadcast_id, *seqs),
        )
        return [recipient_from_row((broadcast_id, int(r[0])), tuple(r)) for r in rows]

    async def renew_claims(self, broadcast_id: int) -> int:
        """This process is still working on what it claimed (pending or in flight)."""
        written = await self.db.write(
            f"UPDATE broadcast_recipients SET claimed_until = {self.db.dialect.epoch} + ? "
            "WHERE broadcast_id = ? AND claimed_by = ? AND status IN ('pending', 'sending')",
            (self.claim_seconds, broadcast_id, self.owner),
        )
        return written.rowcount

    async def unclaim(self, broadcast_id: int) -> None:
        """This process stops: its claimed recipients not yet sent are free for others now."""
        await self.db.write(
            "UPDATE broadcast_recipients SET claimed_by = NULL, claimed_until = NULL "
            "WHERE broadcast_id = ? AND claimed_by = ? AND status = 'pending'",
            (broadcast_id, self.owner),
        )

    async def release(self, key: tuple[int | str, ...]) -> None:
        """Back to pending, unclaimed: this run stopped before the message was sent."""
        broadcast_id, seq = key
        await self.db.write(
            "UPDATE broadcast_recipients SET status = 'pending', claimed_by = NULL, "
            "claimed_until = NULL WHERE broadcast_id = ? AND seq = ? AND status = 'sending'",
            (broadcast_id, seq),
        )

    async def unsettled(self, broadcast_id: int) -> int:
        """Recipients still pending or in flight, whoever holds them."""
        rows = await self.db.read(
            "SELECT count(*) FROM broadcast_recipients "
            "WHERE broadcast_id = ? AND status IN ('pending', 'sending')",
            (broadcast_id,),
        )
        return int(rows[0][0])

    async def claim(
        self, key: tuple[int | str, ...], reachable_since: float | None = None
    ) -> Claim:
        """Opt-out re-checked just before sending: the subscription (template) or any
        subscription of the chat (typed text) must still be active. With `reachable_since`
        (free-form text on a channel with a window), the chat must also have written to us
        since then: judged now, at send time, not when the broadcast was confirmed. Only a
        recipient this process claimed (or nobody did): one another process took over after
        this one's claim lapsed is its to send."""
        broadcast_id, seq = key
        reachable = "(1 = 1)"
        window: tuple[float, ...] = ()
        if reachable_since is not None:
            reachable = (
                "EXISTS (SELECT 1 FROM chat_activity a WHERE a.channel = r.channel "
                "AND a.chat_id = r.chat_id AND a.last_inbound_at > ?)"
            )
            window = (reachable_since,)
        rows = list(
            await self.db.write_returning(
                f"""
                UPDATE broadcast_recipients SET
                  status = CASE WHEN c.ok AND c.reachable THEN 'sending' ELSE 'skipped' END,
                  reason = CASE WHEN NOT c.ok THEN 'opted out'
                                WHEN NOT c.reachable THEN ? END,
                  updated_at = ?
                FROM (
                  SELECT CASE WHEN r.subscription_id IS NULL THEN EXISTS (
                           SELECT 1 FROM subscriptions s WHERE s.channel = r.channel
                           AND s.chat_id = r.chat_id AND s.active = 1)
                         ELSE EXISTS (SELECT 1 FROM subscriptions s
                                      WHERE s.id = r.subscription_id AND s.active = 1)
                         END AS ok,
                         {reachable} AS reachable
                  FROM broadcast_recipients r WHERE r.broadcast_id = ? AND r.seq = ?
                ) AS c
                WHERE broadcast_id = ? AND seq = ? AND status = 'pending'
                  AND (claimed_by IS NULL OR claimed_by = ?)
                RETURNING status, reason
                """,
                (
                    OUTSIDE_WINDOW,
                    timestamp(),
                    *window,
                    broadcast_id,
                    seq,
                    broadcast_id,
                    seq,
                    self.owner,
                ),
            )
        )
        return Claim.of(rows)

    async def reset_in_flight(self, broadcast_id: int) -> int:
        """Rows left `sending` by a process that died: maybe delivered, so sending them again
        is the only way to lose nobody; this is the only way anyone receives a duplicate.

        A process is taken for dead when its claims lapsed (it stopped renewing them), or at
        once when it ran on this machine and is gone; what it had claimed but not yet sent
        is free for anyone then, too. Rows in flight in a live process are left alone."""
        owners = await self.db.read(
            "SELECT DISTINCT claimed_by FROM broadcast_recipients WHERE broadcast_id = ? "
            "AND claimed_by IS NOT NULL AND status IN ('pending', 'sending')",
            (broadcast_id,),
        )
        for (owner,) in owners:
            if owner != self.owner and owner_gone(str(owner)):
                await self.db.write(
                    "UPDATE broadcast_recipients SET claimed_until = 0 "
                    "WHERE broadcast_id = ? AND claimed_by = ?",
                    (broadcast_id, owner),
                )
        written = await self.db.write(
            "UPDATE broadcast_recipients SET status = 'pending', resent = resent + 1, "
            "claimed_by = NULL, claimed_until = NULL WHERE broadcast_id = ? "
            "AND status = 'sending' "
            f"AND (claimed_until IS NULL OR claimed_until < {self.db.dialect.epoch})",
            (broadcast_id,),
        )
        return written.rowcount

    async def counts(
        self, broadcast_id: int, unit: Queries | None = None
    ) -> dict[DeliveryStatus, int]:
        rows = await (unit or self.db).read(
            "SELECT status, count(*) FROM broadcast_recipients WHERE broadcast_id = ? "
            "GROUP BY status",
            (broadcast_id,),
        )
        return {DeliveryStatus(str(r[0])): int(r[1]) for r in rows}

    async def outside_window(self, broadcast_id: int, unit: Queries | None = None) -> int:
        """Of the skipped: those outside the channel's window for free-form text."""
        row = await (unit or self.db).read_one(
            "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = ? "
            "AND status = 'skipped' AND reason = ?",
            (broadcast_id, OUTSIDE_WINDOW),
        )
        return int(row[0]) if row is not None else 0

    async def failure_reasons(self, broadcast_id: int, limit: int = 5) -> list[tuple[str, int]]:
        """The commonest reasons recipients failed, for the report."""
        rows = await self.db.read(
            "SELECT reason, count(*) AS n FROM broadcast_recipients "
            "WHERE broadcast_id = ? AND status = 'failed' GROUP BY reason ORDER BY n DESC LIMIT ?",
            (broadcast_id, limit),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def status(self, broadcast_id: int) -> BroadcastStatus | None:
        rows = list(
            await self.db.read("SELECT status FROM broadcasts WHERE id = ?", (broadcast_id,))
        )
        return BroadcastStatus(str(rows[0][0])) if rows else None

    async def finish_broadcast(self, broadcast_id: int, status: BroadcastStatus) -> None:
        """Close the record with its final counts (kept even if recipient rows are purged)."""
        async with self.db.transaction() as unit:
            if status is BroadcastStatus.CANCELLED:
                await self._skip_pending(unit, broadcast_id)
            await unit.write(
                "UPDATE broadcasts SET status = ? WHERE id = ? AND status = 'running'",
                (status.value, broadcast_id),
            )
            await self._store_counts(unit, broadcast_id)

    @staticmethod
    async def _skip_pending(unit: Queries, broadcast_id: int) -> None:
        await unit.write(
            "UPDATE broadcast_recipients SET status = 'skipped', reason = 'cancelled', "
            "updated_at = ? WHERE broadcast_id = ? AND status = 'pending'",
            (timestamp(), broadcast_id),
        )

    async def cancel(self, broadcast_id: int) -> bool:
        """Stop a running broadcast: whoever delivers it notices within seconds."""
        async with self.db.transaction() as unit:
            written = await unit.write(
                "UPDATE broadcasts SET status = ? WHERE id = ? AND status = ?",
                (BroadcastStatus.CANCELLED.value, broadcast_id, BroadcastStatus.RUNNING.value),
            )
            if written.rowcount:
                await self._skip_pending(unit, broadcast_id)
                await self._store_counts(unit, broadcast_id)
        return written.rowcount > 0

    async def _store_counts(self, unit: Queries, broadcast_id: int) -> None:
        counts = await self.counts(broadcast_id, unit)
        await unit.write(
            "UPDATE broadcasts SET sent = ?, failed = ?, blocked = ?, skipped = ?, "
            "outside_window = ?, finished_at = coalesce(finished_at, ?), resent = (SELECT "
            "count(*) FROM broadcast_recipients WHERE broadcast_id = broadcasts.id AND "
            "resent > 0) WHERE id = ?",
            (
                counts.get(DeliveryStatus.SENT, 0),
                counts.get(DeliveryStatus.FAILED, 0),
                counts.get(DeliveryStatus.BLOCKED, 0),
                counts.get(DeliveryStatus.SKIPPED, 0),
                await self.outside_window(broadcast_id, unit),
                timestamp(),
                broadcast_id,
            ),
        )

    @staticmethod
    async def _resent(unit: Queries, broadcast_id: int) -> int:
        rows = list(
            await unit.read(
                "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = ? AND resent > 0",
                (broadcast_id,),
            )
        )
        return int(rows[0][0])

    async def unfinished(self) -> list[int]:
        rows = await self.db.read(
            "SELECT id FROM broadcasts WHERE status = ? ORDER BY id",
            (BroadcastStatus.RUNNING.value,),
        )
        return [int(r[0]) for r in rows]

    async def get(self, broadcast_id: int) -> BroadcastSummary | None:
        found = await self._summaries("WHERE id = ?", (broadcast_id,))
        return found[0] if found else None

    async def recent(self, limit: int = 10) -> list[BroadcastSummary]:
        return await self._summaries(
            "WHERE status <> 'preparing' ORDER BY id DESC LIMIT ?", (limit,)
        )

    async def _summaries(self, tail: str, params: tuple[Any, ...]) -> list[BroadcastSummary]:
        async with self.db.snapshot() as unit:  # live counts as of the same moment as the rows
            return await self._read_summaries(unit, tail, params)

    async def _read_summaries(
        self, unit: Queries, tail: str, params: tuple[Any, ...]
    ) -> list[BroadcastSummary]:
        rows = await unit.read(
            "SELECT id, created_at, created_by, audience, template, text, status, total, sent, "
            "failed, blocked, skipped, resent, finished_at, progress_ref, outside_window "
            f"FROM broadcasts {tail}",
            params,
        )
        summaries = []
        for row in rows:
            r = tuple(row)
            status = BroadcastStatus(str(r[6]))
            counts = [int(r[8]), int(r[9]), int(r[10]), int(r[11])]
            resent, outside_window = int(r[12]), int(r[15])
            if status is BroadcastStatus.RUNNING:  # live figures while it runs
                resent = await self._resent(unit, int(r[0]))
                outside_window = await self.outside_window(int(r[0]), unit)
                live = await self.counts(int(r[0]), unit)
                counts = [
                    live.get(s, 0)
                    for s in (
                        DeliveryStatus.SENT,
                        DeliveryStatus.FAILED,
                        DeliveryStatus.BLOCKED,
                        DeliveryStatus.SKIPPED,
                    )
                ]
            content = Content(template=Template(r[4])) if r[4] else Content(text=str(r[5]))
            summaries.append(
                BroadcastSummary(
                    id=int(r[0]),
                    created_at=parse_timestamp(str(r[1])),
                    created_by=str(r[2]),
                    audience=Audience.parse(str(r[3])),
                    content=content,
                    status=status,
                    total=int(r[7]),
                    sent=counts[0],
                    failed=counts[1],
                    blocked=counts[2],
                    skipped=counts[3],
                    resent=resent,
                    finished_at=parse_timestamp(str(r[13])) if r[13] else None,
                    progress_ref=str(r[14]) if r[14] is not None else None,
                    outside_window=outside_window,
                )
            )
        return summaries
