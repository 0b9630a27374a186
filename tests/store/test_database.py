from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from bot.store.database import Database, Queries, SqliteDatabase
from bot.store.migrations import MIGRATIONS, POSTGRES_MIGRATIONS
from bot.store.postgres import DatabaseUnavailable, dollar_params, masked_url
from bot.store.setup import open_database
from tests.postgres_cluster import PASSWORD, PostgresCluster


async def value(db: Queries, sql: str) -> object:
    row = await db.read_one(sql)
    assert row is not None
    return row[0]


def test_both_backends_have_every_schema_version() -> None:
    assert len(POSTGRES_MIGRATIONS) == len(MIGRATIONS)


async def test_migrates_an_empty_file(tmp_path: Path) -> None:
    async with await SqliteDatabase.open(tmp_path / "new.sqlite3") as db:
        assert await db.schema_version() == len(MIGRATIONS)
        assert await value(db, "PRAGMA journal_mode") == "wal"
        assert await value(db, "PRAGMA foreign_keys") == 1
        async with db.transaction() as unit:  # the writer, as well as a reader
            assert await value(unit, "PRAGMA foreign_keys") == 1


async def test_two_instances_migrate_an_empty_postgres_database_at_once(
    postgres_cluster: PostgresCluster,
) -> None:
    with postgres_cluster.database(empty=True) as url:
        # Without the advisory lock, one of them fails on "relation already exists".
        dbs = await asyncio.gather(*(open_database(url) for _ in range(3)))
        try:
            for db in dbs:
                assert await db.schema_version() == len(POSTGRES_MIGRATIONS)
            assert await value(dbs[0], "SELECT count(*) FROM schema_version") == 1
        finally:
            for db in dbs:
                await db.close()


_OLD_POLICY = (
    "INSERT INTO policies (id, id_hmac, id_masked, insurer_code, policy_number, policy_class, "
    "beneficiary_type, start_date, expiry_date) "
    "VALUES (41, $1, '1*******08', 'X', 'P-1', 'A', 'principal', '2026-01-01', '2026-12-31')"
)


def _version_one_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO insurers VALUES ('X', 'س', 'X Co')")
    conn.execute(_OLD_POLICY.replace("$1", "?"), (b"h" * 32,))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


async def _version_one_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            await conn.execute("INSERT INTO schema_version VALUES (1)")
            for statement in POSTGRES_MIGRATIONS[0]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO insurers VALUES ('X', 'س', 'X Co')")
            await conn.execute(_OLD_POLICY, b"h" * 32)
    finally:
        await conn.close()


async def test_migrates_an_older_version_keeping_data(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A database at version 1 with data in it, as an earlier release left it.
    if backend == "sqlite":
        location: Path | str = tmp_path / "old.sqlite3"
        _version_one_sqlite(tmp_path / "old.sqlite3")
        latest = len(MIGRATIONS)
    else:
        location = str(request.getfixturevalue("empty_postgres"))
        await _version_one_postgres(location)
        latest = len(POSTGRES_MIGRATIONS)
    async with await open_database(location) as db:
        assert await db.schema_version() == latest
        assert await value(db, "SELECT name_en FROM insurers WHERE code = 'X'") == "X Co"
        assert await value(db, "SELECT count(*) FROM subscriptions") == 0
        # The policy is kept, with its id, and its key is still unique (migration 9 made the
        # constraint an index).
        assert await value(db, "SELECT id FROM policies WHERE policy_number = 'P-1'") == 41
        again = _OLD_POLICY.replace("41", "42").replace("$1", "?")
        with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
            await db.write(again, (b"h" * 32,))
        assert await value(db, "SELECT count(*) FROM policies") == 1


@pytest.fixture
def empty_postgres(postgres_cluster: PostgresCluster) -> Iterator[str]:
    with postgres_cluster.database(empty=True) as url:
        yield url


async def test_refuses_a_newer_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        location: Path | str = tmp_path / "future.sqlite3"
        conn = sqlite3.connect(location)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        conn.close()
    else:
        location = str(request.getfixturevalue("empty_postgres"))
        pg = await asyncpg.connect(location)
        await pg.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await pg.execute(f"INSERT INTO schema_version VALUES ({len(MIGRATIONS) + 1})")
        await pg.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        await open_database(location)


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as unit:
            await unit.write("INSERT INTO insurers VALUES ('TMP', 'س', 'Tmp')")
            raise ZeroDivisionError
    assert await value(db, "SELECT count(*) FROM insurers WHERE code = 'TMP'") == 0


async def test_insurers_loaded_at_start(db: Database) -> None:
    row = await db.read_one("SELECT name_ar, name_en FROM insurers WHERE code='BUPA'")
    assert row is not None and tuple(row) == ("بوبا العربية", "Bupa Arabia")
    assert row["name_en"] == "Bupa Arabia" and row[0] == "بوبا العربية"
    assert await value(db, "SELECT count(*) FROM insurers") == 24


async def test_rows_and_values_look_the_same_on_both(db: Database) -> None:
    await db.write(
        "INSERT INTO limit_events (key, at) VALUES (?, ?), (?, ?)", ("k", 1.5, "it's ?", 2.0)
    )
    rows = await db.read("SELECT key, at FROM limit_events WHERE at > ? ORDER BY at", (1.0,))
    assert [tuple(r) for r in rows] == [("k", 1.5), ("it's ?", 2.0)]
    assert dict(rows[0]) == {"key": "k", "at": 1.5}
    written = await db.write("DELETE FROM limit_events WHERE key = '?' OR key = ?", ("k",))
    assert written.rowcount == 1  # the quoted '?' is text, not a placeholder
    [returned] = await db.write_returning(
        "INSERT INTO subscriptions (channel, chat_id, id_hmac, id_masked, locale, consented_at) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id, id_hmac, active",
        ("telegram", "1", b"\x00\xff" * 16, "1*******08", "ar", "2026-01-01T00:00:00Z"),
    )
    assert isinstance(returned[0], int)
    assert returned[1] == b"\x00\xff" * 16 and returned[2] == 1


async def test_ping(db: Database) -> None:
    await db.ping()


async def test_stored_times_are_utc_text(db: Database) -> None:
    await db.write("INSERT INTO conversations (channel, chat_id, state) VALUES ('web', 'x', '{}')")
    stamp = await value(db, "SELECT updated_at FROM conversations")
    assert isinstance(stamp, str) and len(stamp) == 20 and stamp.endswith("Z"), stamp
    assert await value(db, f"SELECT {db.dialect.now} >= updated_at FROM conversations")


# -- PostgreSQL only -------------------------------------------------------------------------


def test_placeholders_become_numbered_outside_literals() -> None:
    assert dollar_params("SELECT ? , ?") == "SELECT $1 , $2"
    assert (
        dollar_params("SELECT '?', \"a?\", E'it\\'s ?', ? -- why?\n, /* ? */ ?, $$ ? $$, ?")
        == "SELECT '?', \"a?\", E'it\\'s ?', $1 -- why?\n, /* ? */ $2, $$ ? $$, $3"
    )
    assert dollar_params("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', $1"
    assert dollar_params("SELECT $tag$ ? $tag$, ?") == "SELECT $tag$ ? $tag$, $1"


def test_the_password_is_masked_in_a_url() -> None:
    url = f"postgresql://bot:{quote(PASSWORD, safe='')}@db.example:5432/bot"
    assert masked_url(url) == "postgresql://bot:***@db.example:5432/bot"
    assert masked_url("postgresql://bot@db.example/bot") == "postgresql://bot@db.example/bot"


async def test_a_refused_connection_names_the_database_without_its_password(
    postgres_cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng:pass/word"
    url = postgres_cluster.url("postgres").replace(quote(PASSWORD, safe=""), quote(wrong, safe=""))
    with pytest.raises(DatabaseUnavailable) as refused:
        await open_database(url)
    message = str(refused.value)
    assert f"127.0.0.1:{postgres_cluster.port}/postgres" in message
    assert "password authentication failed" in message
    for secret in (wrong, quote(wrong, safe=""), PASSWORD):
        assert secret not in message and secret not in caplog.text
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


async def test_schemas_are_the_same_on_both_backends(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """Same tables, columns in order, NOT NULL, keys and indexes: one representation."""
    types = {"TEXT": "text", "BLOB": "bytea", "INTEGER": "integer", "REAL": "double precision"}
    lite = sqlite3.connect(tmp_path / "schema.sqlite3")
    async with await SqliteDatabase.open(tmp_path / "schema.sqlite3"):
        pass
    tables = sorted(
        r[0]
        for r in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    )
    sqlite_columns = {
        t: [
            (name, types[kind], bool(notnull) or bool(pk))
            for _, name, kind, notnull, _, pk in lite.execute(f"PRAGMA table_info({t})")
        ]
        for t in tables
    }
    sqlite_indexes = sorted(
        r[0]
        for r in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
        )
    )
    lite.close()
    with postgres_cluster.database() as url:
        conn = await asyncpg.connect(url)
        try:
            pg_tables = [
                r[0]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_name <> 'schema_version' "
                    "ORDER BY 1"
                )
            ]
            pg_columns = {}
            for t in pg_tables:
                rows = await conn.fetch(
                    "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                    "WHERE table_name = $1 ORDER BY ordinal_position",
                    t,
                )
                pg_columns[t] = [
                    (r[0], "integer" if r[1] == "bigint" else r[1], r[2] == "NO") for r in rows
                ]
            pg_indexes = sorted(
                r[0]
                for r in await conn.fetch(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                    "AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'"
                )
            )
        finally:
            await conn.close()
    assert pg_tables == tables
    assert pg_columns == sqlite_columns
    assert pg_indexes == sqlite_indexes
