from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.store.database import Database, Queries
from bot.store.migrations import MIGRATIONS


async def value(db: Queries, sql: str) -> object:
    row = await db.read_one(sql)
    assert row is not None
    return row[0]


async def test_migrates_an_empty_file(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "new.sqlite3") as db:
        assert await db.schema_version() == len(MIGRATIONS)
        assert await value(db, "PRAGMA journal_mode") == "wal"
        assert await value(db, "PRAGMA foreign_keys") == 1
        async with db.transaction() as unit:  # the writer, as well as a reader
            assert await value(unit, "PRAGMA foreign_keys") == 1


async def test_migrates_an_older_version_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    # A database at version 1 with data in it, as an earlier release left it.
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO insurers VALUES ('X', 'س', 'X Co')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    async with await Database.open(path) as db:
        assert await db.schema_version() == len(MIGRATIONS)
        assert await value(db, "SELECT name_en FROM insurers WHERE code = 'X'") == "X Co"


async def test_refuses_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        await Database.open(path)


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as unit:
            await unit.write("INSERT INTO insurers VALUES ('TMP', 'س', 'Tmp')")
            raise ZeroDivisionError
    assert await value(db, "SELECT count(*) FROM insurers WHERE code = 'TMP'") == 0


async def test_insurers_loaded_at_start(db: Database) -> None:
    row = await db.read_one("SELECT name_ar, name_en FROM insurers WHERE code='BUPA'")
    assert row is not None and tuple(row) == ("بوبا العربية", "Bupa Arabia")
    assert await value(db, "SELECT count(*) FROM insurers") == 24
