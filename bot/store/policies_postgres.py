"""The policy import on PostgreSQL: into an empty store a first load, COPY straight into
`policies`; else COPY into a staging table, then set operations.

Either way one transaction on a pooled connection of its own: a failure or a kill at any point
leaves the database exactly as it was (DDL included), and the bot's statements go on meanwhile
on the other connections (MVCC: nothing of the import is seen before COMMIT). Only imports
write `policies`, and one at a time: the import lock (an advisory lock of its own) is held to
COMMIT. Rows arrive with COPY (binary, `copy_records_to_table`): the whole file is one COPY fed
batch by batch as they are validated, so PostgreSQL takes in what was sent while the next batch
is validated. What the server does after the last row is what adds to the wall time.

Duplicates inside the file are noticed in this process as rows pass (RepeatedKeys in
bot/store/import_write.py, as on SQLite: a hash per key), then confirmed from the copied rows
by their keys: the first row of a key kept, the others reported against its line.
(Measured: the GROUP BY over a million staged rows it replaces cost 0.7 s after the last
row; the hashing, 0.3 s of this process's CPU while rows stream.)

Into a table with rows (and for any dry run), the same steps as SQLite's (bot/store/policies.py),
so the report is the same: COPY into a temporary table dropped at COMMIT, duplicates dropped
from it, then what is new, changed or unchanged counted, then one UPDATE of the changed rows,
one INSERT of the new ones and, for `replace`, one DELETE. The import lock is taken once the
file is staged, so two imports stage at once.

A first load (`policies` empty when the import lock is taken, at the start) skips all of that:
staging, ANALYZE, the duplicates' GROUP BY and the classifying join did nothing useful there,
and the INSERT from staging wrote every row a second time. Measured, a million rows, fsync on,
two cores (bench/postgres.py): the store's write alone went from 7.3 s (COPY into staging
0.9 s, ANALYZE 0.2, GROUP BY 0.7, INSERT 2.3, three index builds 2.3, foreign key 0.1) to
4.8 s; the import into an empty store from 11.7 s to 7.4 s, of which 1.8 s after the last row
(the (insurer, policy) index 1.1 s, the unique one 0.5, the foreign key 0.15). Here:
  - `policies` loses its unique and foreign-key constraints and secondary indexes but one
    first (the primary key stays: ids ascend, each insert an append). Maintained row by row
    during the COPY, they cost more than building them after, even overlapped with
    validation: measured, server CPU per million rows, kept during the COPY / built after
    (parallel): expiry 1.2 / 0.6 s (kept all the same: KEPT_DURING_LOAD), (insurer, policy)
    2.6 / 1.1 s, unique 4.2 / 0.5 s, foreign key 4.7 / 0.14 s. They are made again before
    COMMIT, with room (maintenance_work_mem) and PostgreSQL's parallel workers
    (max_parallel_maintenance_workers, 2 by default: half the time of one process).
    Dropping them takes an ACCESS EXCLUSIVE lock on the table until COMMIT: the bot's
    lookups wait for the import to finish instead of finding nothing in the empty table
    (imports into a table with rows never block them).
  - Each row's line is its id (lines ascend; the identity sequence is moved past them at the
    end), so a duplicate's line and the line it repeats are read back from the table; the
    later rows are deleted before the unique constraint is made again.
  - `updated_at` is the column's default: one instant for the whole COPY statement.
The whole machine then spends about 10 CPU seconds per million rows with validation at 3 s
(bench/postgres_paced.py: 5.9 s, 170k rows/s), 12 s with it at 5 s: on two cores, CPU
bounds it, not waiting.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

import asyncpg

from bot.store import postgres
from bot.store.import_write import RepeatedKeys, StagedRow, WriteOutcome, later_rows
from bot.store.postgres import Connection, PostgresDatabase, advisory_key

WORK_MEM = "256MB"
# Held to COMMIT, from the counting (or, for a first load, the start): one import at a time
# across every process.
IMPORT_LOCK = advisory_key("bot.store.import")
# The one secondary index a first load keeps up to date as rows arrive instead of building it
# after the last row: cheap enough to maintain (a date: few distinct values), and the COPY
# runs while rows are validated, on the core validation leaves free. Measured, a million
# rows: +1.2 s of server CPU during the COPY, -0.6 s of wall time after it (the import 7.9 s
# -> 7.4 s). With validation at 3 s per million (bench/postgres_paced.py) no core is free and
# it made no difference (5.7 to 5.9 s either way). The others cost 2 to 30 times more kept
# than built after: see the docstring.
KEPT_DURING_LOAD = ("policies_expiry",)


def _type(column: str) -> str:
    return "bytea" if column == "id_hmac" else "text"


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
    async with db.connection() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            if not dry_run and await _empty_under_lock(conn):
                outcome = await _first_load(conn, batches, columns, key, replace, safe_to_remove)
            else:
                outcome = await _staged(
                    conn, db, batches, columns, key, replace, dry_run, safe_to_remove
                )
                if dry_run:
                    await transaction.rollback()
                    return outcome
        except BaseException:
            with contextlib.suppress(Exception):  # a lost connection rolled back by itself
                await transaction.rollback()
            raise
        await postgres.commit_transaction(transaction)
    return outcome


async def _empty_under_lock(conn: Connection) -> bool:
    """Whether `policies` is empty, and then with the import lock held (so it stays so):
    a first load. A table with rows is staged without the lock, as before."""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM policies)"):
        return False
    await conn.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)
    # Another import may have filled it while this one waited.
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM policies)")


async def _staged(
    conn: Connection,
    db: PostgresDatabase,
    batches: AsyncIterable[list[StagedRow]],
    columns: Sequence[str],
    key: Sequence[str],
    replace: bool,
    dry_run: bool,
    safe_to_remove: Callable[[], bool],
) -> WriteOutcome:
    """Into a table with rows (or a dry run): staging, then set operations, inside the
    caller's transaction (a dry run's counts only: the caller rolls back)."""
    values = [c for c in columns if c not in key]
    joined = " AND ".join(f"s.{c} = p.{c}" for c in key)
    outcome = WriteOutcome()
    definitions = ", ".join(f"{c} {_type(c)}" for c in columns)
    await conn.execute(f"CREATE TEMP TABLE staging (line integer, {definitions}) ON COMMIT DROP")
    repeats = RepeatedKeys(columns, key)
    await conn.copy_records_to_table(
        "staging", records=_noted(batches, repeats), columns=["line", *columns]
    )
    # Temporary tables are never analysed by autovacuum: without statistics the
    # planner would take a million staged rows for a few.
    await conn.execute("ANALYZE staging")
    # Room for the sorts and hash joins of a million rows (this transaction only).
    await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)

    outcome.duplicates = await _repeated(conn, repeats, key, "staging", "line")
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
        # In key order: the unique index on random HMACs fills page by page. (A table
        # emptied since this import began is filled the same way: correct, if slower
        # than a first load.)
        await conn.execute(
            f"INSERT INTO policies ({listed}, updated_at) SELECT {listed}, $1 "
            f"FROM staging s WHERE NOT EXISTS "
            f"(SELECT 1 FROM policies p WHERE {joined}) ORDER BY {', '.join(key)}",
            stamp,
        )
    if replace:
        await conn.execute(f"DELETE FROM policies p WHERE {gone}")
    return outcome


async def _first_load(
    conn: Connection,
    batches: AsyncIterable[list[StagedRow]],
    columns: Sequence[str],
    key: Sequence[str],
    replace: bool,
    safe_to_remove: Callable[[], bool],
) -> WriteOutcome:
    """Into the empty `policies` (the import lock held): the rows are copied straight into
    it, its line as its id, with its unique and foreign-key constraints and its secondary
    indexes but KEPT_DURING_LOAD dropped first and made again after (the primary key stays:
    ascending ids append), inside the caller's transaction, so a failure or a kill leaves
    them as they were. Duplicates are noticed as rows pass and deleted before the unique
    constraint is made again."""
    derived = await _drop_derived(conn)
    repeats = RepeatedKeys(columns, key)
    await conn.copy_records_to_table(
        "policies", records=_noted(batches, repeats), columns=["id", *columns]
    )
    outcome = WriteOutcome(duplicates=await _repeated(conn, repeats, key, "policies", "id"))
    if outcome.duplicates:
        await conn.execute(
            "DELETE FROM policies WHERE id = ANY($1::bigint[])",
            [line for line, _ in outcome.duplicates],
        )
    outcome.imported = repeats.noted - len(outcome.duplicates)
    if replace and not safe_to_remove():  # nothing to remove from an empty table anyway
        outcome.removal_skipped = True
    await _make_derived(conn, derived)
    if repeats.last:
        # Ids the identity gives later come after the lines used as ids here. (Not undone by
        # a rollback, as no sequence is: a gap at most.)
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence('policies', 'id')")
        await conn.execute(
            f"SELECT setval($1::regclass, greatest($2, (SELECT last_value FROM {sequence})))",
            sequence,
            repeats.last,
        )
    return outcome


_Derived = tuple[list[asyncpg.Record], list[asyncpg.Record]]


async def _drop_derived(conn: Connection) -> _Derived:
    """Drop the unique and foreign-key constraints and the secondary indexes (but
    KEPT_DURING_LOAD) of `policies`: (constraints, indexes), each (name, definition), for
    _make_derived."""
    constraints = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'policies'::regclass AND contype IN ('u', 'f') ORDER BY conname"
    )
    indexes = await conn.fetch(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'policies'::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
        "AND k.conrelid = i.indrelid) AND c.relname <> ALL($1::text[]) ORDER BY c.relname",
        list(KEPT_DURING_LOAD),
    )
    for name, _ in constraints:
        await conn.execute(f'ALTER TABLE policies DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        await conn.execute(f'DROP INDEX "{name}"')
    return constraints, indexes


async def _make_derived(conn: Connection, derived: _Derived) -> None:
    constraints, indexes = derived
    await conn.execute(f"SET LOCAL maintenance_work_mem = '{WORK_MEM}'")
    for _, definition in indexes:
        await conn.execute(definition)
    for name, definition in constraints:
        await conn.execute(f'ALTER TABLE policies ADD CONSTRAINT "{name}" {definition}')


async def _noted(
    batches: AsyncIterable[list[StagedRow]], repeats: RepeatedKeys
) -> AsyncIterator[StagedRow]:
    """The rows of the batches, for COPY, each batch noted on its way."""
    async for batch in batches:
        repeats.note(batch)
        for row in batch:
            yield row


async def _repeated(
    conn: Connection, repeats: RepeatedKeys, key: Sequence[str], table: str, line: str
) -> list[tuple[int, int]]:
    """(line, first line) of every later row of a key, in line order, read from the rows
    copied into `table`, where column `line` is their line."""
    candidates = repeats.candidate_keys()
    if not candidates:
        return []
    listed = ", ".join(key)
    arrays = ", ".join(f"${n}::{_type(c)}[]" for n, c in enumerate(key, start=1))
    found = await conn.fetch(
        f"SELECT {line}, {listed} FROM {table} WHERE ({listed}) IN "
        f"(SELECT * FROM unnest({arrays})) ORDER BY {line}",
        *(list(values) for values in zip(*candidates, strict=True)),
    )
    return later_rows(tuple(r) for r in found)
