"""Inbound message ids already handled, per channel: a platform's retry is answered once."""

from __future__ import annotations

from bot.store.database import Database


class InboundSeen:
    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.channel = channel

    async def first_time(self, message_id: str, now: float) -> bool:
        """Record `message_id`; False when it was recorded before (a repeat to skip)."""
        written = await self.db.write(
            "INSERT INTO inbound_seen (channel, message_id, at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (self.channel, message_id, now),
        )
        return written.rowcount == 1


async def prune_inbound(db: Database, before: float) -> int:
    """Forget ids older than any retry (Meta retries for up to 7 days)."""
    written = await db.write("DELETE FROM inbound_seen WHERE at < ?", (before,))
    return written.rowcount
