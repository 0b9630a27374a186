"""Conversation state per (channel, chat), and the audit log of completed lookups."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from bot.conversation.state import Conversation
from bot.store.database import Database

log = logging.getLogger(__name__)


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, channel: str, chat_id: str) -> Conversation:
        return await self.load_existing(channel, chat_id) or Conversation()

    async def load_existing(self, channel: str, chat_id: str) -> Conversation | None:
        """The chat's state, or None when nothing is stored for it."""
        state = await self.load_json(channel, chat_id)
        if state is None:
            return None
        try:
            return Conversation.model_validate_json(state)
        except ValidationError:
            # A state from an incompatible older version: start over rather than fail.
            log.warning("unreadable conversation state for a %s chat; starting over", channel)
            return Conversation()

    async def save(self, channel: str, chat_id: str, conv: Conversation) -> None:
        await self.save_json(channel, chat_id, conv.model_dump_json())

    # Raw JSON per (channel, chat): other per-chat state (an admin's broadcast draft) lives
    # in the same table under a channel name of its own.

    async def load_json(self, channel: str, chat_id: str) -> str | None:
        rows = await self.db.read(
            "SELECT state FROM conversations WHERE channel = ? AND chat_id = ?", (channel, chat_id)
        )
        return next((str(state) for (state,) in rows), None)

    async def save_json(self, channel: str, chat_id: str, state: str) -> None:
        await self.db.write(
            "INSERT INTO conversations (channel, chat_id, state) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, chat_id) DO UPDATE SET state = excluded.state, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (channel, chat_id, state),
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
        written = await self.db.write(
            "DELETE FROM conversations WHERE updated_at < ? "
            "AND (channel = 'web' OR json_extract(state, '$.locale') IS NULL)",
            (cutoff,),
        )
        return written.rowcount

    async def delete(self, channel: str, chat_id: str) -> None:
        await self.db.write(
            "DELETE FROM conversations WHERE channel = ? AND chat_id = ?", (channel, chat_id)
        )


class AuditLog:
    """Who looked up what, pseudonymised: hashed chat, identity HMAC, outcome, time."""

    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.channel = channel

    async def record(self, chat_ref: str, id_hash: bytes, outcome: str) -> None:
        await self.db.write(
            "INSERT INTO audit_lookups (at, channel, chat_hash, id_hmac, outcome) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                self.channel,
                bytes.fromhex(chat_ref),
                id_hash,
                outcome,
            ),
        )


async def prune_audit(db: Database, retention_days: int, now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    written = await db.write(
        "DELETE FROM audit_lookups WHERE at < ?", (cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"),)
    )
    return written.rowcount
