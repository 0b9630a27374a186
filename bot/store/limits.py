"""Counted events in rolling windows: the storage behind `bot.limits`.

One row per event (a challenge issued, a lookup completed) under a pseudonymous key. Checking
and recording happen in one transaction, so two requests racing past the same limit cannot
both get through, and a restart forgets nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.limits import Exceeded, Window
from bot.store.database import Database


class LimitStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def take(
        self, checks: Sequence[Window], records: Sequence[str], now: float
    ) -> Exceeded | None:
        """If no window in `checks` is full, record one event under each key of `records`."""
        async with self.db.transaction() as conn:
            for window in checks:
                since = now - window.seconds
                rows = await conn.execute_fetchall(
                    "SELECT count(*) FROM limit_events WHERE key = ? AND at > ?",
                    (window.key, since),
                )
                count = int(next(iter(rows))[0])
                if count >= window.limit:
                    # The window frees a place when enough of its oldest events have left it.
                    rows = await conn.execute_fetchall(
                        "SELECT at FROM limit_events WHERE key = ? AND at > ? "
                        "ORDER BY at LIMIT 1 OFFSET ?",
                        (window.key, since, count - window.limit),
                    )
                    freed_at = float(next(iter(rows))[0]) + window.seconds
                    return Exceeded(window, max(0.0, freed_at - now))
            await conn.executemany(
                "INSERT INTO limit_events (key, at) VALUES (?, ?)", [(key, now) for key in records]
            )
        return None

    async def prune(self, before: float) -> int:
        """Forget events older than every window (the longest is a day)."""
        cursor = await self.db.conn.execute("DELETE FROM limit_events WHERE at < ?", (before,))
        return cursor.rowcount
