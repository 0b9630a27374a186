"""The store's import write on an empty table (a first load), which drops the table's indexes
and builds them again after the rows are in: all or nothing, indexes included."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.domain.identity import id_hmac, mask_id
from bot.store.database import Database, SqliteDatabase
from bot.store.import_write import StagedRow
from bot.store.policies import PolicyStore
from tests.conftest import TEST_KEY

KEY = TEST_KEY.encode()
NUMBERS = ["1000000008", "2000000006", "1012345672"]


def staged(line: int, digits: str, policy: str, beneficiary: str = "principal") -> StagedRow:
    return (
        line,
        id_hmac(KEY, digits),
        mask_id(digits),
        "BUPA",
        policy,
        "A",
        beneficiary,
        "2026-01-01",
        "2026-12-31",
        "active",
        None,
        None,
        None,
        None,
        None,
        None,
    )


async def given(*batches: list[StagedRow]) -> AsyncIterator[list[StagedRow]]:
    for batch in batches:
        yield batch


async def schema_of_policies(db: Database) -> list[tuple[object, ...]]:
    """The table's indexes and constraints, as the backend describes them."""
    if isinstance(db, SqliteDatabase):
        sql = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'policies' ORDER BY name"
    else:
        sql = (
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'policies' "
            "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'policies'::regclass ORDER BY 1"
        )
    return [tuple(r) for r in await db.read(sql)]


async def test_a_first_load_that_fails_leaves_the_table_and_its_indexes(db: Database) -> None:
    store = PolicyStore(db, KEY)
    before = await schema_of_policies(db)
    assert any("person_policy" in str(name) for name, _ in before)
    good = [staged(2 + i, digits, f"P-{i}") for i, digits in enumerate(NUMBERS)]
    # The table's own check refuses the last row, once the others are written.
    with pytest.raises((sqlite3.IntegrityError, asyncpg.CheckViolationError)):
        await store.write_import(given(good, [staged(9, "2123456788", "P-9", "neither")]))
    assert await store.count() == 0
    assert await schema_of_policies(db) == before

    # The same rows without the bad one load, and the key is unique again afterwards.
    outcome = await store.write_import(given(good))
    assert (outcome.imported, outcome.updated, outcome.unchanged) == (3, 0, 0)
    assert await schema_of_policies(db) == before
    [found] = await store.policies_for("2000000006")
    assert found.policy_number == "P-1"
    again = await store.write_import(given(good))
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 3)
    assert await store.count() == 3


async def test_duplicates_in_a_first_load_keep_the_first(db: Database) -> None:
    store = PolicyStore(db, KEY)
    rows = [
        staged(2, NUMBERS[0], "P-1"),
        staged(3, NUMBERS[1], "P-1"),
        staged(5, NUMBERS[0], "P-1", "dependent"),  # the key of line 2 again
        staged(6, NUMBERS[0], "P-2"),
    ]
    outcome = await store.write_import(given(rows[:2], rows[2:]))
    assert outcome.duplicates == [(5, 2)]
    assert outcome.imported == 3
    kinds = {
        (p.policy_number, p.beneficiary_type.value) for p in await store.policies_for(NUMBERS[0])
    }
    assert kinds == {("P-1", "principal"), ("P-2", "principal")}
