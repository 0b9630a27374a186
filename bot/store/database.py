"""The store's units of work, on SQLite (here) or PostgreSQL (bot/store/postgres.py).

A unit of work is one statement, or one transaction of several. Each runs on a connection no
other task is using at that moment, so nothing of another task's lands inside it:

    rows = await db.read("SELECT ...", params)            # committed data only
    done = await db.write("UPDATE ...", params)           # one statement, atomic by itself
    async with db.transaction() as unit:                  # several statements, all or nothing
        await unit.write("INSERT ...")
        rows = await unit.read("SELECT ...")              #   sees its own writes
    async with db.snapshot() as unit:                     # several reads, one consistent view
        ...

`Database` is that interface; every store module speaks it, with `?` placeholders, and gets
rows that answer by position (`row[0]`), by column name (`row["code"]`) and iterate over their
values (`tuple(row)`, `dict(row)` by `row.keys()`), from either backend. SQL is written once where
it is portable (SQLite >= 3.39: ON CONFLICT ... DO UPDATE / DO NOTHING, RETURNING, UPDATE ...
FROM, IS [NOT] DISTINCT FROM, TRUE / FALSE) and takes what differs from `db.dialect` (the
current time as stored, a JSON field, row locks).

`SqliteDatabase` below: a small pool, because that is SQLite in WAL mode (one writer, any number
of readers):
- one writer connection, held by one unit at a time (an asyncio lock): a write transaction
  never shares its connection, so a statement from another task waits for COMMIT instead of
  being rolled back with it;
- reader connections (opened as needed, at most `readers`, `query_only`) for plain reads
  while a transaction holds the writer: WAL shows them the last committed state only, never
  another task's open transaction. With no transaction open, a plain read runs on the writer
  (queued before any later BEGIN, so outside it): measured, spreading the hot path's calls
  over several threads cost ~1.5 ms CPU per lookup in GIL hand-offs.
A single statement outside a transaction is atomic by itself (autocommit), so the hot path
pays no BEGIN/COMMIT: one thread hop per store call, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, overload

import aiosqlite

from bot.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

Params = Sequence[Any]

READERS = 4

_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",  # another process holding the write lock: wait, not fail
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",  # WAL + NORMAL: durable across process crashes
)


@dataclass(frozen=True, slots=True)
class Written:
    """What one write statement did."""

    rowcount: int
    lastrowid: int | None


class Row(Protocol):
    """A result row, as both backends give it (sqlite3.Row, asyncpg.Record)."""

    # In asyncpg.Record's order: mypy matches overloads of a protocol one by one.
    @overload
    def __getitem__(self, key: str, /) -> Any: ...
    @overload
    def __getitem__(self, key: int, /) -> Any: ...
    @overload
    def __getitem__(self, key: slice, /) -> tuple[Any, ...]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def keys(self) -> Iterable[str]: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few SQL fragments that differ between the backends; everything else is shared."""

    name: str  # "sqlite" | "postgresql"
    # The current UTC time as every table stores it: text, '2026-11-25T09:00:00Z'.
    now: str
    # A JSON object's field as text, from a TEXT column holding JSON: {column}, {key}.
    json_field: str
    # Appended to a SELECT inside a transaction: lock the rows read (PostgreSQL). Empty on
    # SQLite, whose write transaction (BEGIN IMMEDIATE) already excludes every other writer.
    for_update: str
    for_update_skip_locked: str
    # The database server's clock in epoch seconds (fractional): what processes that share
    # the database measure leases, claims and the shared send pace by (one clock for all).
    epoch: str

    def json_text(self, column: str, key: str) -> str:
        return self.json_field.format(column=column, key=key)


SQLITE = Dialect(
    name="sqlite",
    now="strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
    json_field="json_extract({column}, '$.{key}')",
    for_update="",
    for_update_skip_locked="",
    epoch="((julianday('now') - 2440587.5) * 86400.0)",
)


class Queries(Protocol):
    """Statements one can run: on the database (each its own unit) or inside a unit."""

    async def read(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def read_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def write(self, sql: str, params: Params = ()) -> Written: ...
    async def write_many(self, sql: str, rows: Iterable[Params]) -> None: ...
    async def write_returning(self, sql: str, params: Params = ()) -> list[Row]: ...


class Unit:
    """Statements inside one unit of work, on the connection it holds."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def read_one(self, sql: str, params: Params = ()) -> Row | None:
        return next(iter(await self.conn.execute_fetchall(sql, params)), None)

    async def write(self, sql: str, params: Params = ()) -> Written:
        cursor = await self.conn.execute(sql, params)
        return Written(cursor.rowcount, cursor.lastrowid)

    async def write_many(self, sql: str, rows: Iterable[Params]) -> None:
        await self.conn.executemany(sql, rows)

    async def write_returning(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self.conn.execute_fetchall(sql, params))


async def _connect(path: Path | str, *pragmas: str) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module must not open transactions behind our back;
    # every multi-statement write is an explicit BEGIN IMMEDIATE ... COMMIT.
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    try:
        for pragma in (*_PRAGMAS, *pragmas):
            # Fetched, not just executed: a pragma that answers a row (journal_mode) would
            # otherwise keep its statement open, and the lock with it, until collected.
            await conn.execute_fetchall(pragma)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _begin(conn: aiosqlite.Connection, statement: str) -> None:
    """BEGIN …, ended again if the task is cancelled while it waits: the BEGIN still runs on
    the connection's thread, and a transaction nobody ends would swallow every later write."""
    try:
        await conn.execute(statement)
    except BaseException:
        with contextlib.suppress(sqlite3.OperationalError):  # it never began: nothing to end
            await _end(conn, "ROLLBACK")
        raise


async def _end(conn: aiosqlite.Connection, statement: str) -> None:
    """COMMIT or ROLLBACK. Queued on the connection's thread before anything else can be, so
    even if the task is cancelled while waiting, the next unit starts after it."""
    await conn.execute(statement)


class Database(ABC):
    """The store's interface: statements and units of work on one database (see above).

    Open one with `bot.store.setup.open_database(location)`: a file path for SQLite, a
    postgresql:// URL for PostgreSQL; both migrate the schema before they return.
    """

    dialect: Dialect
    # Where it is, for messages: a path, or a URL with its password masked.
    location: str

    @abstractmethod
    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        """One query that sees only committed data, never another task's open transaction."""

    async def read_one(self, sql: str, params: Params = ()) -> Row | None:
        return next(iter(await self.read(sql, params)), None)

    @abstractmethod
    async def write(self, sql: str, params: Params = ()) -> Written:
        """One write statement, atomic by itself."""

    @abstractmethod
    async def write_returning(self, sql: str, params: Params = ()) -> list[Row]:
        """One write statement with RETURNING (an INSERT's id, a claim): the rows returned."""

    @abstractmethod
    async def write_many(self, sql: str, rows: Iterable[Params]) -> None:
        """One statement over many rows, all or none."""

    @abstractmethod
    async def write_together(self, statements: Sequence[tuple[str, Params]]) -> None:
        """A few writes as one transaction, in as few hops as the backend allows; once
        started, it runs to COMMIT or ROLLBACK even if the caller is cancelled."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """A write transaction: committed when the block ends, rolled back if it raises.
        Transactions are serialized (one at a time on the database, across processes), so a
        unit that reads, decides and writes sees no other unit's write in between."""

    @abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[Queries]:
        """Several reads that see the database as of one moment (a read transaction)."""

    @abstractmethod
    async def ping(self) -> None:
        """A cheap round trip (SELECT 1), for /healthz: raises if the database is gone."""

    @abstractmethod
    async def schema_version(self) -> int: ...

    @abstractmethod
    async def migrate(self) -> None:
        """Bring an empty or older database up to the latest schema."""

    @abstractmethod
    async def close(self) -> None: ...

    async def _migrated(self) -> Self:
        """This database, migrated; closed again if the migration fails (a newer schema)."""
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class SqliteDatabase(Database):
    """The writer connection and a pool of readers over one SQLite file."""

    dialect = SQLITE

    def __init__(self, writer: aiosqlite.Connection, path: Path | str, readers: int) -> None:
        self.path = path
        self.location = str(path)
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self._transaction_open = False  # on the writer: plain reads go to a reader meanwhile
        self._reader_slots = asyncio.Semaphore(readers)
        self._idle: list[aiosqlite.Connection] = []
        self._readers: list[aiosqlite.Connection] = []

    @classmethod
    async def open(cls, path: Path | str, *, readers: int = READERS) -> SqliteDatabase:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            # Each connection to ":memory:" is a database of its own: readers would see nothing.
            raise ValueError(
                "the store needs a database file (readers are connections of their own)"
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path, "PRAGMA journal_mode = WAL")
        return await cls(writer, path, readers)._migrated()

    # -- single statements, each a unit of its own ---------------------------------------------

    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        """One query that sees only committed data, never another task's open transaction.

        On the writer while no transaction holds it (queued before any later BEGIN, so it runs
        outside it: the hot path stays on one thread, as measured cheapest), else a reader."""
        if not self._transaction_open:
            return list(await self._writer.execute_fetchall(sql, params))
        async with self._reader_slots:
            conn = self._idle.pop() if self._idle else await self._open_reader()
            try:
                return list(await conn.execute_fetchall(sql, params))
            finally:
                self._idle.append(conn)

    async def write(self, sql: str, params: Params = ()) -> Written:
        """One write statement on the writer, atomic by itself; waits for an open transaction."""
        if self._write_lock.locked():
            async with self._write_lock:
                cursor = await self._writer.execute(sql, params)
        else:
            # Nobody holds the writer: queued now, it runs before any later BEGIN. No lock
            # round trip on the hot path (measured: ~0.8 ms CPU per lookup under load).
            cursor = await self._writer.execute(sql, params)
        return Written(cursor.rowcount, cursor.lastrowid)

    async def write_together(self, statements: Sequence[tuple[str, Params]]) -> None:
        """A few writes as one transaction, run whole on the writer's thread in one hop.

        For the hot path (a turn's state with its audit record): `transaction()` would take
        four hops and hold the writer across them, and every plain write of other chats would
        queue behind it (measured: +0.5 ms CPU per lookup, -10% lookups/s). Once queued, the
        function runs to COMMIT or ROLLBACK even if the caller is cancelled meanwhile.
        """

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        # aiosqlite runs a connection's calls in order on its own thread; `_execute` is how
        # its public methods queue theirs (aiosqlite is pinned: see pyproject.toml).
        writer = self._writer
        if self._write_lock.locked():
            async with self._write_lock:
                await writer._execute(run, writer._conn)  # type: ignore[no-untyped-call]
        else:
            await writer._execute(run, writer._conn)  # type: ignore[no-untyped-call]

    async def write_returning(self, sql: str, params: Params = ()) -> list[Row]:
        """One write statement with RETURNING (a claim): the rows it returned."""
        if self._write_lock.locked():
            async with self._write_lock:
                return list(await self._writer.execute_fetchall(sql, params))
        return list(await self._writer.execute_fetchall(sql, params))

    async def write_many(self, sql: str, rows: Iterable[Params]) -> None:
        """One statement over many rows, all or none (autocommit would commit row by row)."""
        async with self.transaction() as unit:
            await unit.write_many(sql, rows)

    # -- units of several statements -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self, on: aiosqlite.Connection | None = None) -> AsyncIterator[Unit]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        `on`: a connection from `dedicated()` (its temp tables), instead of the writer; still
        one write transaction at a time in this process (others wait here, not in SQLite)."""
        conn = on or self._writer
        async with self._write_lock:
            # Set before BEGIN is queued, cleared once COMMIT or ROLLBACK has run.
            self._transaction_open = conn is self._writer
            try:
                await _begin(conn, "BEGIN IMMEDIATE")
                try:
                    yield Unit(conn)
                    await _end(conn, "COMMIT")
                except BaseException:
                    # Also after a failed COMMIT: never let go of the lock mid-transaction.
                    try:
                        await _end(conn, "ROLLBACK")
                    except sqlite3.OperationalError:  # SQLite rolled back already (disk full)
                        log.warning("rollback after a failed transaction failed", exc_info=True)
                    raise
            finally:
                self._transaction_open = False

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Unit]:
        """Several reads that see the database as of one moment (a read transaction)."""
        async with self._reader_slots:
            conn = self._idle.pop() if self._idle else await self._open_reader()
            try:
                await _begin(conn, "BEGIN")
                try:
                    yield Unit(conn)
                finally:
                    await _end(conn, "ROLLBACK")
            finally:
                self._idle.append(conn)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection of one's own for long work with temp tables (an import's staging),
        so it holds neither the writer nor a reader. Write on it through `transaction(on=)`."""
        conn = await _connect(self.path)
        try:
            yield conn
        finally:
            await conn.close()

    async def ping(self) -> None:
        await self.read("SELECT 1")

    async def _open_reader(self) -> aiosqlite.Connection:
        conn = await _connect(self.path, "PRAGMA query_only = ON")
        self._readers.append(conn)
        return conn

    # -- schema --------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        row = await self.read_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        """Bring an empty or older database up to the latest schema, one version at a time."""
        current = await self.schema_version()
        latest = len(MIGRATIONS)
        if current > latest:
            raise RuntimeError(
                f"Database {self.path} has schema version {current}, newer than this program "
                f"({latest}); upgrade the program."
            )
        for version in range(current + 1, latest + 1):
            async with self.transaction() as unit:
                for statement in MIGRATIONS[version - 1]:
                    await unit.write(statement)
                # user_version is transactional: a failed migration leaves the old number.
                await unit.write(f"PRAGMA user_version = {version}")
            log.info("Database migrated to schema version %d", version)

    async def close(self) -> None:
        for conn in self._readers:
            await conn.close()
        self._readers.clear()
        self._idle.clear()
        await self._writer.close()
