"""The policy import on PostgreSQL: COPY into a staging table, then set operations.

The same steps as SQLite's (bot/store/policies.py), so the report is the same: duplicates
inside the file found and dropped, then what is new, changed or unchanged counted, then one
UPDATE of the changed rows, one INSERT of the new ones and, for `replace`, one DELETE. Here
all of it is one transaction on a pooled connection of its own, the staging table a temporary
table dropped at COMMIT: a failure or a kill at any point leaves the database exactly as it
was, and the bot's statements go on meanwhile on the other connections (MVCC: nothing of the
import is seen before COMMIT). The
import lock (an advisory lock of its own) is taken once the file is staged, so the counting and
the writing see no other import's write in between; only imports write `policies`, so the
bot's own transactions never wait for one (on SQLite the final transaction holds the writer).

Rows arrive with COPY (binary, `copy_records_to_table`): the whole file is one COPY fed batch
by batch as they are validated (PostgreSQL takes in what was sent while the next batch is
validated). Validation bounds it: bench/postgres.py prints both parts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

import asyncpg

from bot.store import postgres
from bot.store.import_write import StagedRow, WriteOutcome
from bot.store.postgres import PostgresDatabase, advisory_key

WORK_MEM = "256MB"
# Held from the counting to COMMIT: one import at a time across every process.
IMPORT_LOCK = advisory_key("bot.store.import")


async def _rows(batches: AsyncIterable[list[StagedRow]]) -> AsyncIterator[StagedRow]:
    async for batch in batches:
        for row in batch:
            yield row


async def write_import_postgres(
    db: PostgresDatabase,
    batches: AsyncIterable[list[StagedRow]],
    columns: Sequence[str],
    key: Sequence[str],
    *,
    replace: bool,
    dry_run: bool,
    safe_to_remove: Callable[[], bool],
) -> WriteOutcome:
    """`columns`: the policy columns a staged row holds after its line, `key` the two that
    identify a policy (identity HMAC, policy number); every column but id_hmac is text."""
    values = [c for c in columns if c not in key]
    joined = " AND ".join(f"s.{c} = p.{c}" for c in key)
    outcome = WriteOutcome()
    async with db.connection() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            definitions = ", ".join(f"{c} {'bytea' if c == 'id_hmac' else 'text'}" for c in columns)
            await conn.execute(
                f"CREATE TEMP TABLE staging (line integer, {definitions}) ON COMMIT DROP"
            )
            await conn.copy_records_to_table(
                "staging", records=_rows(batches), columns=["line", *columns]
            )
            # Temporary tables are never analysed by autovacuum: without statistics the
            # planner would take a million staged rows for a few.
            await conn.execute("ANALYZE staging")
            # Room for the sorts and hash joins of a million rows (this transaction only).
            await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)

            group = ", ".join(key)
            duplicates = await conn.fetch(
                f"""
                SELECT s.line, f.first_line FROM staging s
                JOIN (SELECT {group}, min(line) AS first_line FROM staging
                      GROUP BY {group} HAVING count(*) > 1) f
                  ON {" AND ".join(f"f.{c} = s.{c}" for c in key)}
                WHERE s.line <> f.first_line ORDER BY s.line
                """
            )
            outcome.duplicates = [(int(r[0]), int(r[1])) for r in duplicates]
            if outcome.duplicates:
                await conn.execute(
                    "DELETE FROM staging WHERE line = ANY($1::integer[])",
                    [line for line, _ in outcome.duplicates],
                )

            if replace and not safe_to_remove():
                replace, outcome.removal_skipped = False, True
            changed = " OR ".join(f"p.{c} IS DISTINCT FROM s.{c}" for c in values)
            row = await conn.fetchrow(
                f"""
                SELECT (SELECT count(*) FROM staging), count(*),
                       count(*) FILTER (WHERE {changed})
                FROM staging s JOIN policies p ON {joined}
                """
            )
            assert row is not None
            staged, matched, changed_count = int(row[0]), int(row[1]), int(row[2])
            outcome.imported = staged - matched
            outcome.updated = changed_count
            outcome.unchanged = matched - changed_count
            gone = f"NOT EXISTS (SELECT 1 FROM staging s WHERE {joined})"
            if replace:
                outcome.removed = int(
                    await conn.fetchval(f"SELECT count(*) FROM policies p WHERE {gone}") or 0
                )
            if dry_run:
                await transaction.rollback()
                return outcome

            # Changed rows updated, new rows inserted: two set operations instead of one
            # INSERT ... ON CONFLICT, whose speculative insertion row by row cost 3x more on
            # a fresh load. Safe under the import lock: only an import writes policies.
            # One instant for every row this import writes, as on SQLite (the column default
            # would give each statement its own).
            stamp = await conn.fetchval(f"SELECT {db.dialect.now}")
            if outcome.updated:
                updates = ", ".join(f"{c} = s.{c}" for c in values)
                await conn.execute(
                    f"UPDATE policies p SET {updates}, updated_at = $1 "
                    f"FROM staging s WHERE {joined} AND ({changed})",
                    stamp,
                )
            if outcome.imported:
                listed = ", ".join(columns)
                if matched == 0 and not await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM policies)"
                ):
                    # A first load: every staged row is new. Inserting into an empty table
                    # with its indexes and foreign key maintained row by row cost 3x more
                    # than building them afterwards (one sort each, one join for the key).
                    await _load_empty(conn, listed, stamp)
                else:
                    # In key order: the unique index on random HMACs fills page by page.
                    await conn.execute(
                        f"INSERT INTO policies ({listed}, updated_at) SELECT {listed}, $1 "
                        f"FROM staging s WHERE NOT EXISTS "
                        f"(SELECT 1 FROM policies p WHERE {joined}) ORDER BY {group}",
                        stamp,
                    )
            if replace:
                await conn.execute(f"DELETE FROM policies p WHERE {gone}")
        except BaseException:
            with contextlib.suppress(Exception):  # a lost connection rolled back by itself
                await transaction.rollback()
            raise
        await postgres.commit_transaction(transaction)
    return outcome


async def _load_empty(conn: object, listed: str, stamp: object) -> None:
    """Insert every staged row into the empty `policies`: its secondary indexes, unique
    constraints and foreign keys (all but the primary key, an identity that appends) are
    dropped first and made again after, inside the import's transaction, so a failure or a
    kill leaves them as they were. The ACCESS EXCLUSIVE lock this takes makes the bot's
    lookups wait until COMMIT (a few seconds for a million rows): they would find nothing
    before it anyway, the table being empty."""
    assert isinstance(conn, asyncpg.Connection)
    constraints = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'policies'::regclass AND contype IN ('u', 'f') ORDER BY conname"
    )
    indexes = await conn.fetch(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'policies'::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
        "AND k.conrelid = i.indrelid) ORDER BY c.relname"
    )
    for name, _ in constraints:
        await conn.execute(f'ALTER TABLE policies DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        await conn.execute(f'DROP INDEX "{name}"')
    await conn.execute(f"SET LOCAL maintenance_work_mem = '{WORK_MEM}'")
    await conn.execute(
        f"INSERT INTO policies ({listed}, updated_at) SELECT {listed}, $1 FROM staging s",
        stamp,
    )
    for _, definition in indexes:
        await conn.execute(definition)
    for name, definition in constraints:
        await conn.execute(f'ALTER TABLE policies ADD CONSTRAINT "{name}" {definition}')
