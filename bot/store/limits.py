"""Counted events in rolling windows: the storage behind `bot.limits`.

One row per event (a challenge issued, a lookup completed) under a pseudonymous key. Checking
and recording are one statement, so two requests racing past the same limit cannot both get
through, and a restart forgets nothing.
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
        """If no window in `checks` is full, record one event under each key of `records`.

        One statement either way (a lookup passes three of these, so round trips count), and a
        statement is atomic: two requests racing for the last place cannot both get it.
        """
        room = " AND ".join(
            "(SELECT count(*) FROM limit_events WHERE key = ? AND at > ?) < ?" for _ in checks
        )
        params = [p for w in checks for p in (w.key, now - w.seconds, w.limit)]
        for _ in range(3):
            if records:
                values = ", ".join("(?)" for _ in records)
                written = await self.db.write(
                    f"INSERT INTO limit_events (key, at) SELECT v.column1, ? "
                    f"FROM (VALUES {values}) AS v WHERE {room or 'TRUE'}",
                    (now, *records, *params),
                )
                if written.rowcount == len(records):
                    return None
            else:
                row = await self.db.read_one(f"SELECT {room or 'TRUE'}", params)
                if row is not None and row[0]:
                    return None
            exceeded = await self._exceeded(checks, now)
            if exceeded is not None:
                return exceeded
            # A place freed between the two statements (another process pruned): once more.
        return Exceeded(checks[0], 1.0)  # never seen; refusing is the safe side

    async def _exceeded(self, checks: Sequence[Window], now: float) -> Exceeded | None:
        """Which window is full, and when enough of its oldest events have left it."""
        for window in checks:
            since = now - window.seconds
            rows = await self.db.read(
                "SELECT at FROM limit_events WHERE key = ? AND at > ? ORDER BY at",
                (window.key, since),
            )
            times = [float(at) for (at,) in rows]
            if len(times) >= window.limit:
                return Exceeded(
                    window, max(0.0, times[len(times) - window.limit] + window.seconds - now)
                )
        return None

    async def prune(self, before: float) -> int:
        """Forget events older than every window (the longest is a day)."""
        written = await self.db.write("DELETE FROM limit_events WHERE at < ?", (before,))
        return written.rowcount
