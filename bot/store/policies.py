"""Policies by identity number, and the transactional write of an imported file."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from datetime import date

import aiosqlite

from bot.domain.identity import id_hmac
from bot.domain.policy import BeneficiaryType, Insurer, Policy, PolicyStatus
from bot.store.database import Database, Row, SqliteDatabase
from bot.store.import_write import RepeatedKeys, StagedRow, WriteOutcome, later_rows
from bot.store.policies_postgres import write_import_postgres
from bot.store.postgres import PostgresDatabase

# Columns written by an import, in the order of a staged row after its line number.
POLICY_COLUMNS = (
    "id_hmac",
    "id_masked",
    "insurer_code",
    "policy_number",
    "policy_class",
    "beneficiary_type",
    "start_date",
    "expiry_date",
    "status",
    "member_name",
    "network",
    "deductible_rate",
    "max_limit",
    "beneficiary_number",
    "sponsor_name",
)
_KEY = ("id_hmac", "policy_number")
_VALUE_COLUMNS = tuple(c for c in POLICY_COLUMNS if c not in _KEY)

_COLUMNS = """
    p.id_masked, p.policy_number, p.policy_class, p.beneficiary_type, p.start_date,
    p.expiry_date, p.status, p.member_name, p.network, p.deductible_rate, p.max_limit,
    p.beneficiary_number, p.sponsor_name, i.code, i.name_ar, i.name_en
"""
_FROM = " FROM policies p JOIN insurers i ON i.code = p.insurer_code"
_SELECT = "SELECT" + _COLUMNS + _FROM
# Everyone on one policy, principals first; the last column says whether the row is the
# looked-up person's.
_MEMBERS = (
    "SELECT"
    + _COLUMNS
    + ", p.id_hmac = ?"
    + _FROM
    + " WHERE p.insurer_code = ? AND p.policy_number = ?"
    " ORDER BY p.beneficiary_type = 'dependent', p.beneficiary_number, p.id LIMIT ?"
)
# A bound on the work for one card: a policy with more dependents than this is no family's.
MAX_DEPENDENTS = 50

IMPORT_CACHE_KIB = 256 * 1024
# updated_at for every row an import writes: one instant per statement, as the column's
# default gives ('now' is fixed per statement), as a constant subquery so it is formatted
# once, not a million times (5% of the write).
_NOW_ONCE = "(SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"


def _policy_from_row(row: Row) -> Policy:
    return Policy(
        id_masked=str(row[0]),
        policy_number=str(row[1]),
        policy_class=str(row[2]),
        beneficiary_type=BeneficiaryType(str(row[3])),
        start_date=date.fromisoformat(str(row[4])),
        expiry_date=date.fromisoformat(str(row[5])),
        status=PolicyStatus(str(row[6])),
        member_name=row[7],
        network=row[8],
        deductible_rate=row[9],
        max_limit=row[10],
        beneficiary_number=row[11],
        sponsor_name=row[12],
        insurer=Insurer(code=str(row[13]), name_ar=str(row[14]), name_en=str(row[15])),
    )


class PolicyStore:
    def __init__(self, db: Database, hash_key: bytes) -> None:
        self.db = db
        self.hash_key = hash_key

    async def policies_for(self, digits: str) -> list[Policy]:
        """Every policy registered for a (validated, ASCII) identity number."""
        return await self.policies_for_hmac(id_hmac(self.hash_key, digits))

    async def policies_for_hmac(self, id_hash: bytes) -> list[Policy]:
        # execute_fetchall: one hop to the database thread instead of three.
        rows = await self.db.read(_SELECT + " WHERE p.id_hmac = ?", (id_hash,))
        return [_policy_from_row(r) for r in rows]

    async def dependents_of(self, id_hash: bytes, policy: Policy) -> list[Policy]:
        """The dependents on `policy` (same insurer and policy number) when it is one family's:
        the person `id_hash` is its only principal. A group policy (an employer's, with
        several principals and nothing tying a dependent to one of them) gives none, and so
        does one with more than MAX_DEPENDENTS dependents. Principals come first, so the
        limit never hides a second one."""
        params = (id_hash, policy.insurer.code, policy.policy_number, MAX_DEPENDENTS + 2)
        rows = await self.db.read(_MEMBERS, params)
        principals = [r for r in rows if r[3] == BeneficiaryType.PRINCIPAL.value]
        if len(principals) != 1 or not principals[0][16] or len(rows) > MAX_DEPENDENTS + 1:
            return []
        return [_policy_from_row(r) for r in rows if r[3] != BeneficiaryType.PRINCIPAL.value]

    async def count(self) -> int:
        row = await self.db.read_one("SELECT count(*) FROM policies")
        return int(row[0]) if row else 0

    async def write_import(
        self,
        batches: AsyncIterable[list[StagedRow]],
        *,
        replace: bool = False,
        dry_run: bool = False,
        safe_to_remove: Callable[[], bool] = lambda: True,
    ) -> WriteOutcome:
        """Stage validated rows, then apply them in one transaction.

        Rows are first collected in a temporary table (duplicates inside the file are noted
        on the way), so the write, and what is new, changed or unchanged, are set operations
        instead of row by row.
        Nothing touches `policies` until the final transaction, so a failure or a kill at any
        point before COMMIT leaves the database exactly as it was. Staging runs on a connection
        of its own (temp tables are per connection), so the bot's reads and writes go on
        meanwhile; only the final transaction holds the writer's turn.
        `replace` removes policies absent from the file, unless `safe_to_remove()` says no once
        the whole file has been read (the caller knows whether rows were rejected).
        """
        if isinstance(self.db, PostgresDatabase):  # COPY there (bot/store/policies_postgres.py)
            return await self._write_import_postgres(
                self.db, batches, replace, dry_run, safe_to_remove
            )
        assert isinstance(self.db, SqliteDatabase)
        async with self.db.dedicated() as conn:
            return await self._write_import(conn, batches, replace, dry_run, safe_to_remove)

    @staticmethod
    async def _write_import_postgres(
        db: PostgresDatabase,
        batches: AsyncIterable[list[StagedRow]],
        replace: bool,
        dry_run: bool,
        safe_to_remove: Callable[[], bool],
    ) -> WriteOutcome:
        return await write_import_postgres(
            db,
            batches,
            POLICY_COLUMNS,
            _KEY,
            replace=replace,
            dry_run=dry_run,
            safe_to_remove=safe_to_remove,
        )

    async def _write_import(
        self,
        conn: aiosqlite.Connection,
        batches: AsyncIterable[list[StagedRow]],
        replace: bool,
        dry_run: bool,
        safe_to_remove: Callable[[], bool],
    ) -> WriteOutcome:
        # A large page cache for the import only: the unique index on random HMACs otherwise
        # thrashes SQLite's default 2 MB cache.
        await conn.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        # `line` is the rowid: rows arrive in line order, so each insert is an append.
        await conn.execute(
            f"CREATE TEMP TABLE staging (line INTEGER PRIMARY KEY, {', '.join(POLICY_COLUMNS)})"
        )
        # No clean-up on failure: closing the connection drops the table and any open staging.
        placeholders = ", ".join("?" * (len(POLICY_COLUMNS) + 1))
        insert = f"INSERT INTO temp.staging VALUES ({placeholders})"
        repeats = RepeatedKeys(POLICY_COLUMNS, _KEY)
        staged = 0
        await conn.execute("BEGIN")
        async for batch in batches:
            repeats.note(batch)
            # Not overlapped with validating the next batch in a thread: binding parameters
            # holds the GIL, and measured, the two threads only slowed each other down (a
            # large file is validated in another process: bot/importer/run.py). Nor was
            # a batch as one JSON value that SQLite unpacks without the GIL (json_each):
            # the unpacking cost more CPU than the overlap saved.
            await conn.executemany(insert, batch)
            staged += len(batch)
        await conn.execute("COMMIT")
        outcome = WriteOutcome(duplicates=await _drop_repeated(conn, repeats))
        staged -= len(outcome.duplicates)
        if replace and not safe_to_remove():
            replace, outcome.removal_skipped = False, True
        if dry_run:
            await self._classify(conn, outcome, replace)
        else:
            assert isinstance(self.db, SqliteDatabase)
            async with self.db.transaction(on=conn):
                # The write counts what it does itself: no classifying join before it.
                inserted, changed, outcome.removed = await self._apply(conn, replace)
            outcome.imported, outcome.updated = inserted, changed
            outcome.unchanged = staged - inserted - changed
        return outcome

    @staticmethod
    async def _classify(conn: aiosqlite.Connection, outcome: WriteOutcome, replace: bool) -> None:
        """What writing would do, without writing (a dry run)."""
        changed = " OR ".join(f"p.{c} IS NOT s.{c}" for c in _VALUE_COLUMNS)
        async with conn.execute(
            f"""
            SELECT
              (SELECT count(*) FROM temp.staging),
              count(*),
              coalesce(sum({changed}), 0)
            FROM temp.staging s JOIN policies p
              ON p.id_hmac = s.id_hmac AND p.policy_number = s.policy_number
            """
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        staged, matched, changed_count = int(row[0]), int(row[1]), int(row[2])
        outcome.imported = staged - matched
        outcome.updated = changed_count
        outcome.unchanged = matched - changed_count
        if replace:
            async with conn.execute(
                """
                SELECT count(*) FROM policies p WHERE NOT EXISTS (
                  SELECT 1 FROM temp.staging s
                  WHERE s.id_hmac = p.id_hmac AND s.policy_number = p.policy_number)
                """
            ) as cursor:
                row = await cursor.fetchone()
            outcome.removed = int(row[0]) if row else 0

    @staticmethod
    async def _apply(conn: aiosqlite.Connection, replace: bool) -> tuple[int, int, int]:
        """Write the staged rows (inside the caller's transaction): (inserted, changed,
        removed)."""
        before = await _count(conn)
        if before == 0:
            return await PolicyStore._load_empty(conn), 0, 0
        columns = ", ".join(POLICY_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _VALUE_COLUMNS)
        changed = " OR ".join(f"{c} IS NOT excluded.{c}" for c in _VALUE_COLUMNS)
        # "WHERE true" resolves SQLite's parsing ambiguity between a join and ON CONFLICT.
        # In file order: a first load keeps the file's order (_load_empty), and an export is
        # mostly in the order of the one before, so the table's rows are visited in their own
        # order. Measured at 1M rows, the same file again: 7.6 s in file order, 9.3 s in key
        # order; the same rows shuffled: 9.4 s either way.
        cursor = await conn.execute(
            f"""
            INSERT INTO policies ({columns}, updated_at)
            SELECT {columns}, {_NOW_ONCE}
            FROM temp.staging WHERE true
            ORDER BY line
            ON CONFLICT (id_hmac, policy_number) DO UPDATE SET {updates},
              updated_at = excluded.updated_at
            WHERE {changed}
            """
        )
        written = cursor.rowcount  # rows inserted, and rows updated (those that changed)
        inserted = await _count(conn) - before
        removed = 0
        if replace:
            cursor = await conn.execute(
                """
                DELETE FROM policies WHERE NOT EXISTS (
                  SELECT 1 FROM temp.staging s
                  WHERE s.id_hmac = policies.id_hmac AND s.policy_number = policies.policy_number)
                """
            )
            removed = cursor.rowcount
        return inserted, written - inserted, removed

    @staticmethod
    async def _load_empty(conn: aiosqlite.Connection) -> int:
        """A first load (inside the caller's transaction): every staged row into the empty
        table, its indexes dropped first and built again after (the unique key's included:
        migration 9), so a failure restores them with the rest. A million rows appended in
        file order, then one sort per index: 3.8 s, against 5.1 s for inserting in key order
        with the unique index kept. Staged rows hold no duplicates: nothing can conflict."""
        async with conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'policies' AND sql IS NOT NULL ORDER BY name"
        ) as cursor:
            indexes = [(str(r[0]), str(r[1])) for r in await cursor.fetchall()]
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        columns = ", ".join(POLICY_COLUMNS)
        cursor = await conn.execute(
            f"INSERT INTO policies ({columns}, updated_at) "
            f"SELECT {columns}, {_NOW_ONCE} "
            "FROM temp.staging ORDER BY line"
        )
        for _, definition in indexes:
            await conn.execute(definition)
        return int(cursor.rowcount)


async def _count(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT count(*) FROM policies") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _drop_repeated(
    conn: aiosqlite.Connection, repeats: RepeatedKeys
) -> list[tuple[int, int]]:
    """Remove the later rows of each key from the staging table: (line, first line), read
    from the staged rows that have a candidate key."""
    candidates = repeats.candidate_keys()
    if not candidates:
        return []
    await conn.execute("CREATE TEMP TABLE repeated (id_hmac BLOB, policy_number TEXT)")
    await conn.executemany("INSERT INTO temp.repeated VALUES (?, ?)", candidates)
    async with conn.execute(
        "SELECT s.line, s.id_hmac, s.policy_number FROM temp.staging s JOIN temp.repeated r "
        "ON r.id_hmac = s.id_hmac AND r.policy_number = s.policy_number ORDER BY s.line"
    ) as cursor:
        duplicates = later_rows(await cursor.fetchall())
    await conn.execute("BEGIN")
    await conn.executemany(
        "DELETE FROM temp.staging WHERE line = ?", [(line,) for line, _ in duplicates]
    )
    await conn.execute("COMMIT")
    return duplicates
