"""When each chat last wrote to us: WhatsApp lets a business send free-form text (a typed
broadcast) only within 24 hours of the person's last message.

Keyed by the chat (channel, chat id), never by an identity number; rows are pruned once older
than any window, so the table never becomes a lasting list of everyone who wrote.
"""

from __future__ import annotations

from bot.store.database import Database

# Newer only: Meta retries webhooks and does not keep their order, so an old message delivered
# late must not move the time back. (A portable upsert: no max() of two values.)
_RECORD = (
    "INSERT INTO chat_activity (channel, chat_id, last_inbound_at) VALUES (?, ?, ?) "
    "ON CONFLICT (channel, chat_id) DO UPDATE SET last_inbound_at = excluded.last_inbound_at "
    "WHERE excluded.last_inbound_at > chat_activity.last_inbound_at"
)


class ChatActivity:
    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.channel = channel

    async def record(self, chat_id: str, at: float) -> None:
        """The chat wrote to us at `at` (seconds since the epoch)."""
        await self.db.write(_RECORD, (self.channel, chat_id, at))

    async def last_inbound(self, chat_id: str) -> float | None:
        row = await self.db.read_one(
            "SELECT last_inbound_at FROM chat_activity WHERE channel = ? AND chat_id = ?",
            (self.channel, chat_id),
        )
        return float(row[0]) if row is not None else None


async def prune_activity(db: Database, before: float) -> int:
    """Forget chats whose last message is older than any window still open."""
    written = await db.write("DELETE FROM chat_activity WHERE last_inbound_at < ?", (before,))
    return written.rowcount
