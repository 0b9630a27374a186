"""The limit store: rolling windows checked and recorded in one transaction, kept on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.limits import LimitKind, Window
from bot.store.limits import LimitStore
from bot.store.setup import open_database

HOUR = 3600.0


def window(key: str = "k", limit: int = 3, seconds: float = HOUR) -> Window:
    return Window(key, limit, seconds, LimitKind.CHALLENGES)


async def test_counts_a_rolling_window_and_says_when_a_place_frees(
    database_location: Path | str,
) -> None:
    async with await open_database(database_location) as db:
        store = LimitStore(db)
        for at in (100.0, 200.0, 300.0):
            assert await store.take([window()], ["k"], at) is None
        full = await store.take([window()], ["k"], 400.0)
        assert full is not None and full.window.key == "k"
        assert full.retry_after == 100.0 + HOUR - 400.0  # when the oldest event leaves
        # Refused requests are not counted: the oldest event leaving frees exactly one place.
        assert await store.take([window()], ["k"], 100.0 + HOUR + 1) is None
        assert await store.take([window()], ["k"], 100.0 + HOUR + 2) is not None


async def test_records_nothing_unless_every_window_has_room(database_location: Path | str) -> None:
    async with await open_database(database_location) as db:
        store = LimitStore(db)
        assert await store.take([window("a", 1)], ["a"], 10.0) is None
        refused = await store.take([window("b"), window("a", 1)], ["a", "b"], 11.0)
        assert refused is not None and refused.window.key == "a"
        # "b" was not counted by the refused request.
        for at in (12.0, 13.0, 14.0):
            assert await store.take([window("b")], ["b"], at) is None
        assert await store.take([window("b")], ["b"], 15.0) is not None


async def test_concurrent_requests_cannot_both_take_the_last_place(
    database_location: Path | str,
) -> None:
    async with await open_database(database_location) as db:
        store = LimitStore(db)
        results = await asyncio.gather(*(store.take([window()], ["k"], 50.0) for _ in range(10)))
        assert sum(r is None for r in results) == 3


async def test_survives_reopening_and_prunes_old_events(database_location: Path | str) -> None:
    async with await open_database(database_location) as db:
        for at in (1.0, 2.0, 3.0):
            await LimitStore(db).take([], ["k"], at)
    async with await open_database(database_location) as db:
        store = LimitStore(db)
        assert await store.take([window()], ["k"], 4.0) is not None
        assert await store.prune(before=2.5) == 2
        assert await store.take([window()], ["k"], 4.0) is None
