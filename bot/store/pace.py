"""The send pace of each channel, shared by every process on the database (`send_pace`).

One row per channel holds the next free send time, in epoch seconds on the database server's
clock. A sender reserves the next slot in one statement (the row is locked for that statement
only, on PostgreSQL as on SQLite), so slots are spaced `interval` apart however many processes
ask, and no clock of theirs is involved: each is told how long to wait from now.

    wait, reserved = await slots.reserve("telegram", interval)   # then sleep `wait` seconds
    await slots.give_back("telegram", interval, reserved)      # nothing was sent after all
    await slots.push_back("telegram", seconds)                  # the platform said "too many"
"""

from __future__ import annotations

from bot.store.database import Database


class SendSlots:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def reserve(self, channel: str, interval: float) -> tuple[float, float]:
        """The next slot of `channel`: (seconds to wait for it from now, the reservation that
        `give_back` undoes)."""
        now = self.db.dialect.epoch
        rows = await self.db.write_returning(
            f"INSERT INTO send_pace AS p (channel, next_at) VALUES (?, {now} + ?) "
            "ON CONFLICT (channel) DO UPDATE SET next_at = "
            f"(CASE WHEN p.next_at > {now} THEN p.next_at ELSE {now} END) + ? "
            f"RETURNING next_at, {now}",
            (channel, interval, interval),
        )
        next_at, at = (float(value) for value in tuple(rows[0]))
        return max(0.0, next_at - interval - at), next_at

    async def give_back(self, channel: str, interval: float, reserved: float) -> None:
        """An unused slot, returned if nobody has reserved one after it."""
        await self.db.write(
            "UPDATE send_pace SET next_at = next_at - ? WHERE channel = ? AND next_at = ?",
            (interval, channel, reserved),
        )

    async def push_back(self, channel: str, seconds: float) -> None:
        """Nobody on `channel`, in any process, gets a slot within `seconds` from now."""
        now = self.db.dialect.epoch
        await self.db.write(
            f"UPDATE send_pace SET next_at = {now} + ? WHERE channel = ? AND next_at < {now} + ?",
            (seconds, channel, seconds),
        )
