"""Locks every process on one database shares (bot/store/locks.py): each test opens the
database twice, as two instances of the bot would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.limits import LimitKind, Window
from bot.store.database import Database
from bot.store.leases import Leases
from bot.store.limits import LimitStore
from bot.store.locks import ServerLocks, exclusive, serialized
from bot.store.setup import open_database


@pytest.fixture
async def two(database_location: Path | str) -> AsyncIterator[tuple[Database, Database]]:
    async with (
        await open_database(database_location) as a,
        await open_database(database_location) as b,
    ):
        yield a, b


def postgres(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has one process on its file: nothing to wait for across processes")


async def test_one_holder_at_a_time_across_instances(two: tuple[Database, Database]) -> None:
    a, b = two
    async with exclusive(a, "leader") as first:
        assert first
        async with exclusive(b, "leader") as second:
            assert not second
        async with exclusive(a, "leader") as again:  # not re-entrant, even in one process
            assert not again
        async with exclusive(b, "another job") as other:
            assert other
    async with exclusive(b, "leader") as after:
        assert after and not after.lost.is_set()


async def test_a_lapsed_lease_is_taken_by_exactly_one_of_two_racing(
    two: tuple[Database, Database],
) -> None:
    a, b = two
    await a.write("INSERT INTO leases (name, owner, expires_at) VALUES ('job', 'elsewhere:1:x', 0)")
    racers = [Leases(db) for db in (a, b, a, b)]
    taken = await asyncio.gather(*(leases.acquire("job") for leases in racers))
    assert sorted(taken) == [False, False, False, True]


async def test_concurrent_takes_from_two_instances_never_pass_a_limit(
    two: tuple[Database, Database],
) -> None:
    stores = [LimitStore(db) for db in two]
    window = Window("id/x", 5, 3600.0, LimitKind.NUMBER_LOOKUPS)
    takes = [stores[i % 2].take([window], [window.key], 100.0 + i) for i in range(40)]
    results = await asyncio.gather(*takes)
    assert sum(result is None for result in results) == 5
    rows = await two[0].read("SELECT count(*) FROM limit_events WHERE key = 'id/x'")
    assert rows[0][0] == 5


async def test_a_take_waits_for_the_same_keys_take_in_progress_on_another_instance(
    backend: str, two: tuple[Database, Database]
) -> None:
    """Under READ COMMITTED a count does not see another instance's insert that has not
    committed yet: without the keys' locks both would pass the last place."""
    postgres(backend)
    a, b = two
    window = Window("id/y", 1, 3600.0, LimitKind.NUMBER_LOOKUPS)
    assert isinstance(a, ServerLocks)
    async with a.locked([window.key]) as unit:  # a's take, between its count and its commit
        await unit.write("INSERT INTO limit_events (key, at) VALUES ('id/y', 100)")
        racing = asyncio.create_task(LimitStore(b).take([window], [window.key], 101.0))
        while not await waiting_for_advisory_locks(b):
            assert not racing.done()
            await asyncio.sleep(0.01)
    refused = await racing
    assert refused is not None and refused.window.key == "id/y"


async def test_a_turn_on_one_instance_waits_for_the_same_chat_on_the_other(
    backend: str, two: tuple[Database, Database]
) -> None:
    postgres(backend)
    a, b = two
    order: list[str] = []

    async def turn(db: Database, name: str) -> None:
        async with serialized(db, "conversation:telegram:42"):
            order.append(f"{name} in")
            if name == "a":
                # Held until b is seen waiting for it in the server.
                while not await waiting_for_advisory_locks(a):
                    await asyncio.sleep(0.01)
            order.append(f"{name} out")

    first = asyncio.create_task(turn(a, "a"))
    while order != ["a in"]:
        await asyncio.sleep(0.01)
    await asyncio.gather(first, turn(b, "b"))
    assert order == ["a in", "a out", "b in", "b out"]
    # Another chat: no wait.
    async with serialized(b, "conversation:telegram:43"), serialized(a, "conversation:telegram:44"):
        pass


async def waiting_for_advisory_locks(db: Database) -> int:
    rows = await db.read(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    )
    return int(rows[0][0])


async def test_a_leader_whose_connection_is_cut_knows_it_lost_the_lock(
    backend: str, two: tuple[Database, Database]
) -> None:
    postgres(backend)
    a, b = two
    async with exclusive(a, "leader") as held:
        assert held
        await b.read(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'insurance-status-bot leader'"
        )
        await asyncio.wait_for(held.lost.wait(), 10)
        async with exclusive(b, "leader") as taken_over:
            assert taken_over
