"""What processes delivering together share through the store: a broadcast's recipients,
claimed by one process at a time, and each channel's send slots. Each test opens the
database twice, as two processes would."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.config import Settings
from bot.domain.audience import Audience, Content
from bot.domain.identity import id_hmac, mask_id
from bot.store.broadcasts import BroadcastStore
from bot.store.database import Database
from bot.store.pace import SendSlots
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore
from tests.conftest import TEST_KEY
from tests.reminders.conftest import LONG_AGO, TODAY, identity

CHATS = list(range(100, 140))


@pytest.fixture
async def two(store_settings: dict[str, Any]) -> AsyncIterator[tuple[Database, Database]]:
    settings = Settings(_env_file=None, id_hash_key=TEST_KEY, **store_settings)
    async with await open_store(settings) as a, await open_store(settings) as b:
        yield a, b


async def a_broadcast(db: Database) -> int:
    subscriptions = SubscriptionStore(db)
    for chat in CHATS:
        digits = identity(chat)
        key = id_hmac(TEST_KEY.encode(), digits)
        await subscriptions.subscribe("telegram", chat, key, mask_id(digits), "ar", now=LONG_AGO)
    broadcast_id, total = await BroadcastStore(db).create(
        Audience.all(), Content.custom("hello"), "cli:op", TODAY, ("telegram",)
    )
    assert total == len(CHATS)
    return broadcast_id


async def test_two_processes_split_the_recipients_and_never_claim_one_twice(
    two: tuple[Database, Database],
) -> None:
    broadcast_id = await a_broadcast(two[0])
    stores = [BroadcastStore(db) for db in two]
    claimed: list[list[int]] = [[], []]
    turn = 0
    while page := await stores[turn % 2].page(broadcast_id, "telegram", 3):
        claimed[turn % 2] += [recipient.seq for recipient in page]
        turn += 1
    assert abs(len(claimed[0]) - len(claimed[1])) <= 3  # a page each, in turn
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == list(range(1, len(CHATS) + 1))
    # A recipient claimed by one is not the other's to send.
    first = claimed[0][0]
    assert not (await stores[1].claim((broadcast_id, first))).go
    assert (await stores[0].claim((broadcast_id, first))).go


async def test_claims_racing_from_two_processes_take_each_recipient_once(
    two: tuple[Database, Database],
) -> None:
    broadcast_id = await a_broadcast(two[0])
    stores = [BroadcastStore(db) for db in two]
    claimed: list[int] = []

    async def claim_all(store: BroadcastStore) -> None:
        while page := await store.page(broadcast_id, "telegram", 3):
            claimed.extend(recipient.seq for recipient in page)

    await asyncio.gather(*(claim_all(stores[i % 2]) for i in range(6)))
    assert sorted(claimed) == list(range(1, len(CHATS) + 1))


async def test_a_dead_processs_claims_and_messages_in_flight_are_taken_over(
    two: tuple[Database, Database],
) -> None:
    a, b = two
    broadcast_id = await a_broadcast(a)
    gone = BroadcastStore(a, owner=f"{socket.gethostname()}:{dead_pid()}:x")
    alive = BroadcastStore(a)  # this process: alive
    mine = BroadcastStore(b)
    lost = await gone.page(broadcast_id, "telegram", 4)
    await gone.claim(lost[0].key)  # in flight when it died
    busy = await alive.page(broadcast_id, "telegram", 4)
    await alive.claim(busy[0].key)  # in flight elsewhere, and still going
    assert await mine.reset_in_flight(broadcast_id) == 1  # the dead one's only
    taken = await mine.page(broadcast_id, "telegram", 100)
    seqs = {recipient.seq for recipient in taken}
    assert {recipient.seq for recipient in lost} <= seqs  # its claims are free again
    assert not {recipient.seq for recipient in busy} & seqs
    assert len(taken) == len(CHATS) - len(busy)
    summary = await mine.get(broadcast_id)
    assert summary is not None and summary.resent == 1  # may have arrived, is sent again


def dead_pid() -> int:
    """A process id nobody on this machine has."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


async def test_send_slots_are_spaced_for_every_process_together(
    two: tuple[Database, Database],
) -> None:
    slots = [SendSlots(db) for db in two]
    interval = 10.0  # far longer than the test: every reservation queues behind the last
    reserved = [await slots[i % 2].reserve("telegram", interval) for i in range(6)]
    waits = [wait for wait, _ in reserved]
    nexts = [at for _, at in reserved]
    assert waits[0] < 1.0  # the first goes at once
    assert [b - a for a, b in itertools.pairwise(nexts)] == pytest.approx([interval] * 5)
    assert all(b > a for a, b in itertools.pairwise(waits))
    # An unused last slot is given back; one before the last cannot be.
    await slots[0].give_back("telegram", interval, nexts[-1])
    await slots[1].give_back("telegram", interval, nexts[2])
    _, again = await slots[1].reserve("telegram", interval)
    assert again == nexts[-1]
    # "Too many": nobody gets a slot before the pause is over.
    await slots[0].push_back("whatsapp", 0.0)  # no row yet: nothing to push
    first, _ = await slots[0].reserve("whatsapp", 0.01)
    await slots[1].push_back("whatsapp", 60.0)
    paused, _ = await slots[0].reserve("whatsapp", 0.01)
    assert first < 1.0 and paused > 59.0
