from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.store.database import Database
from bot.store.migrations import MIGRATIONS


async def test_migrates_an_empty_file(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "new.sqlite3") as db:
        assert await db.schema_version() == len(MIGRATIONS)
        async with db.conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
        async with db.conn.execute("PRAGMA foreign_keys") as cur:
            assert (await cur.fetchone())[0] == 1  # type: ignore[index]


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
        async with db.conn.execute("SELECT name_en FROM insurers WHERE code = 'X'") as cur:
            assert (await cur.fetchone())[0] == "X Co"  # type: ignore[index]


async def test_refuses_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        await Database.open(path)


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO insurers VALUES ('TMP', 'س', 'Tmp')")
            raise ZeroDivisionError
    async with db.conn.execute("SELECT count(*) FROM insurers WHERE code = 'TMP'") as cur:
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]


async def test_insurers_loaded_at_start(db: Database) -> None:
    async with db.conn.execute("SELECT name_ar, name_en FROM insurers WHERE code='BUPA'") as cur:
        assert tuple(await cur.fetchone()) == ("بوبا العربية", "Bupa Arabia")  # type: ignore[arg-type]
    async with db.conn.execute("SELECT count(*) FROM insurers") as cur:
        assert (await cur.fetchone())[0] == 24  # type: ignore[index]
