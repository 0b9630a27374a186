"""Conversation state per (channel, chat) as raw JSON, written with the audit log of the
lookups completed in the same turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.database import Database

_UPSERT_STATE = (
    "INSERT INTO conversations (channel, chat_id, state) VALUES (?, ?, ?) "
    # excluded.updated_at: the default the new row would have had, the time now.
    "ON CONFLICT (channel, chat_id) DO UPDATE SET state = excluded.state, "
    "updated_at = excluded.updated_at"
)


_INSERT_AUDIT = (
    "INSERT INTO audit_lookups (at, channel, chat_hash, id_hmac, outcome) VALUES (?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One completed lookup, pseudonymised: the chat's keyed reference, the number's HMAC."""

    chat_ref: str  # hex
    id_hash: bytes
    outcome: str


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Raw JSON per (channel, chat): the conversation's state (typed and validated by
    # bot/conversation/states.py, above the store) and other per-chat state (an admin's
    # broadcast draft) under a channel name of its own.

    async def load_json(self, channel: str, chat_id: str) -> str | None:
        rows = await self.db.read(
            "SELECT state FROM conversations WHERE channel = ? AND chat_id = ?", (channel, chat_id)
        )
        return next((str(state) for (state,) in rows), None)

    async def save_json(
        self, channel: str, chat_id: str, state: str, audit: Sequence[AuditEntry] = ()
    ) -> None:
        """The chat's state, with the audit records of the same turn in one unit of work: a
        lookup is never shown without its record, nor recorded with its state lost."""
        if not audit:
            await self.db.write(_UPSERT_STATE, (channel, chat_id, state))
            return
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        records = [(at, channel, bytes.fromhex(e.chat_ref), e.id_hash, e.outcome) for e in audit]
        await self.db.write_together(
            [
                (_UPSERT_STATE, (channel, chat_id, state)),
                *((_INSERT_AUDIT, record) for record in records),
            ]
        )

    async def exists(self, channel: str, chat_id: str) -> bool:
        rows = await self.db.read(
            "SELECT 1 FROM conversations WHERE channel = ? AND chat_id = ?", (channel, chat_id)
        )
        return bool(rows)

    async def prune_idle(self, idle: timedelta, now: datetime | None = None) -> int:
        """Forget conversations untouched for `idle`. A chat that chose its language keeps it
        (one row per person on a channel that costs a phone number); a web session, which
        costs nothing to start, never does."""
        cutoff = ((now or datetime.now(UTC)) - idle).strftime("%Y-%m-%dT%H:%M:%SZ")
        locale = self.db.dialect.json_text("state", "locale")
        written = await self.db.write(
            f"DELETE FROM conversations WHERE updated_at < ? "
            f"AND (channel = 'web' OR {locale} IS NULL)",
            (cutoff,),
        )
        return written.rowcount

    async def delete(self, channel: str, chat_id: str) -> None:
        await self.db.write(
            "DELETE FROM conversations WHERE channel = ? AND chat_id = ?", (channel, chat_id)
        )


async def prune_audit(db: Database, retention_days: int, now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    written = await db.write(
        "DELETE FROM audit_lookups WHERE at < ?", (cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"),)
    )
    return written.rowcount
