"""The delivery ledger both queues share: the reminders of a day and a broadcast's recipients.

Each queued message is a row keyed by its table's own columns, moving
pending -> sending (claimed) -> sent | failed | blocked | skipped. The claim itself differs per
table (what it re-checks before sending); recording the outcome and handing a row back do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.store.database import Database

_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


def timestamp(moment: datetime | None = None) -> str:
    """UTC time as stored in every table ('2026-11-25T09:00:00Z')."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(_TIMESTAMP)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, _TIMESTAMP).replace(tzinfo=UTC)


class Ledger:
    def __init__(self, db: Database, table: str, key_columns: Sequence[str]) -> None:
        self.db = db
        self.table = table
        self.match = " AND ".join(f"{column} = ?" for column in key_columns)
        self.width = len(key_columns)

    def _key(self, key: Iterable[Any]) -> tuple[Any, ...]:
        values = tuple(key)
        if len(values) != self.width:
            raise ValueError(f"a {self.table} key has {self.width} parts, not {len(values)}")
        return values

    async def finish(
        self,
        key: Iterable[Any],
        status: str,
        reason: str | None,
        attempts: int,
        message_id: str | None = None,
    ) -> None:
        """Record the outcome; `attempts` platform calls were made for it this time, and
        `message_id` is the platform's id of the message sent (its receipts find it by it)."""
        await self.db.write(
            f"UPDATE {self.table} SET status = ?, reason = ?, attempts = attempts + ?, "
            f"updated_at = ?, message_id = ?, receipt = NULL, receipt_code = NULL "
            f"WHERE {self.match}",
            (status, reason, attempts, timestamp(), message_id, *self._key(key)),
        )

    async def release(self, key: Iterable[Any]) -> None:
        """Back to pending: the run stopped before this one was sent."""
        await self.db.write(
            f"UPDATE {self.table} SET status = 'pending' WHERE {self.match} AND status = 'sending'",
            self._key(key),
        )
