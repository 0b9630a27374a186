"""Delivery receipts of bulk messages: what the platform said about a message after it took it
(WhatsApp's status webhooks: delivered, read, failed with an error code).

A bulk message's record (a broadcast recipient, a day's reminder) keeps the platform's message
id from the moment it was sent; a receipt finds the record by that id. Receipts for anything
else (replies in a conversation, ids from another bot) match nothing and change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.store.database import Database, Params


class ReceiptStatus(StrEnum):
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# Meta does not keep the order of status webhooks: a receipt never moves a record back (a late
# "delivered" after "read" changes nothing). Failed is final.
_RANK = {ReceiptStatus.DELIVERED: 1, ReceiptStatus.READ: 2, ReceiptStatus.FAILED: 3}
_RANK_SQL = (
    "CASE receipt WHEN 'delivered' THEN 1 WHEN 'read' THEN 2 WHEN 'failed' THEN 3 ELSE 0 END"
)

_BROADCAST = (
    "UPDATE broadcast_recipients SET receipt = ?, receipt_code = ? "
    f"WHERE message_id = ? AND channel = ? AND {_RANK_SQL} < ? RETURNING chat_id"
)
_REMINDER = (
    "UPDATE reminders SET receipt = ?, receipt_code = ? WHERE message_id = ? "
    "AND subscription_id IN (SELECT id FROM subscriptions WHERE channel = ?) "
    f"AND {_RANK_SQL} < ? RETURNING subscription_id"
)


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str
    status: ReceiptStatus
    code: int | None = None  # the platform's error code of a failure


class Receipts:
    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.channel = channel

    def _params(self, receipt: Receipt) -> Params:
        return (
            receipt.status.value,
            receipt.code,
            receipt.message_id,
            self.channel,
            _RANK[receipt.status],
        )

    async def record(self, receipts: Sequence[Receipt]) -> None:
        """Delivered and read receipts: one hop for all of them (they come with every reply
        the bot sends, and almost all match nothing)."""
        statements = [
            (sql, self._params(receipt)) for receipt in receipts for sql in (_BROADCAST, _REMINDER)
        ]
        if statements:
            await self.db.write_together(statements)

    async def record_failure(self, receipt: Receipt) -> str | None:
        """A failed message: recorded with its code; the chat it was for (None: not a bulk
        message of ours), so the channel can act on the code as it would at send time."""
        params = self._params(receipt)
        rows = await self.db.write_returning(_BROADCAST, params)
        if rows:
            return str(rows[0][0])
        rows = await self.db.write_returning(_REMINDER, params)
        if not rows:
            return None
        chat = await self.db.read_one(
            "SELECT chat_id FROM subscriptions WHERE id = ?", (int(rows[0][0]),)
        )
        return str(chat[0]) if chat is not None else None
