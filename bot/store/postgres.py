"""The store on PostgreSQL: the same units of work as SQLite's, on an asyncpg connection pool.

Why asyncpg: it is the fastest driver for asyncio (binary protocol, prepared statements cached
per connection) and has COPY (`copy_records_to_table`), which the policy import needs to reach
hundreds of thousands of rows a second. Its one known trap, named prepared statements behind
PgBouncer in transaction mode, is a setting: `DATABASE_PGBOUNCER=true` turns the statement
cache off (`statement_cache_size=0`), and nothing here holds a session across transactions
(the locks taken are transaction-scoped: `pg_advisory_xact_lock`), so transaction pooling
works. psycopg 3 would do the same with more CPU per call.

SQL stays as the store modules write it, with `?` placeholders: `dollar_params` turns them into
`$1, $2, ...`, stepping over string literals, quoted identifiers, comments and dollar-quoted
text. (So `?` is never PostgreSQL's jsonb operator here; nothing in the store uses it.)

Values are stored as on SQLite, so no code path differs by backend: dates and timestamps as
ISO text ('2026-11-25', '2026-11-25T09:00:00Z'), flags as 0/1 integers, HMACs as bytea (bytes
in Python), epoch seconds as double precision.

Units of work:
- a plain statement takes a pooled connection for itself: atomic by itself (autocommit), and
  it never lands inside another task's transaction;
- `transaction()` is a pooled connection with BEGIN ... COMMIT. Like SQLite's BEGIN IMMEDIATE,
  transactions are serialized: each takes one transaction-scoped advisory lock first, across
  every process on the database, so a unit that reads, decides and writes (a subscription
  against the per-chat limit, a lease) sees no other unit's write in between. Plain
  statements and `write_together` do not wait for it, as they are atomic by themselves.
  `transaction(serialized=False)` leaves the lock out, for units that lock the rows they
  touch instead (`db.dialect.for_update`);
- `snapshot()`: REPEATABLE READ, READ ONLY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from bot.store.database import Database, Dialect, Params, Row, Written
from bot.store.leases import Held
from bot.store.migrations import POSTGRES_MIGRATIONS
from bot.store.postgres_locks import PostgresLocks
from bot.store.postgres_locks import advisory_key as advisory_key  # defined beside the locks

log = logging.getLogger(__name__)

POSTGRES = Dialect(
    name="postgresql",
    # statement_timestamp(): the statement's time, as SQLite's 'now' is (now() would be the
    # transaction's start).
    now="""to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')""",
    json_field="({column}::json ->> '{key}')",
    for_update=" FOR UPDATE",
    for_update_skip_locked=" FOR UPDATE SKIP LOCKED",
    epoch="extract(epoch FROM clock_timestamp())::double precision",
)

POOL_SIZE = 10
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0

Connection = asyncpg.Connection | PoolConnectionProxy


# Taken by every serialized transaction: the PostgreSQL counterpart of SQLite's write lock.
TRANSACTION_LOCK = advisory_key("bot.store.transaction")
MIGRATION_LOCK = advisory_key("bot.store.migrate")


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def masked_url(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = quote(unquote(parts.username or ""), safe="")
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        return parts._replace(netloc=f"{user}:***@{host}{port}").geturl()
    except ValueError:  # unparsable (a bad port): say nothing of what it holds
        return "postgresql://***"


def _without_secret(text: str, url: str) -> str:
    """An error message with the URL's password taken out, however the driver quoted it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    text = text.replace(url, masked_url(url))
    if password:
        for form in {password, unquote(password)}:
            text = text.replace(form, "***")
    return text


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message names it with its password masked."""


# -- placeholders ------------------------------------------------------------------------------

_TOKENS = re.compile(
    r"""
      [Ee]'(?:[^'\\]|\\.|'')*'                    # escape string: E'it\'s'
    | '(?:[^']|'')*'                              # string literal: 'it''s'
    | "(?:[^"]|"")*"                              # quoted identifier
    | --[^\n]*                                    # line comment
    | /\*.*?\*/                                   # block comment
    | \$(?P<tag>(?:[A-Za-z_][A-Za-z_0-9]*)?)\$.*?\$(?P=tag)\$   # dollar-quoted text
    | \?                                          # a placeholder
    """,
    re.DOTALL | re.VERBOSE,
)


@lru_cache(maxsize=4096)
def dollar_params(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...`, in order; literals left alone."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() != "?":
            return match.group()
        count += 1
        return f"${count}"

    return _TOKENS.sub(number, sql)


def _rowcount(status: str) -> int:
    """Rows a command touched, from its status ("INSERT 0 3", "UPDATE 2", "DELETE 0")."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdecimal() else 0


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection handed back to the pool keeps its session as it is (asyncpg still rolls
    back a transaction left open). Its default reset (RESET ALL, CLOSE ALL, UNLISTEN *,
    pg_advisory_unlock_all()) is one more round trip per statement, and the store leaves no
    session state behind: its settings are SET LOCAL and its locks transaction-scoped. Code
    that takes a session-level advisory lock holds its connection until it unlocks."""


async def commit_transaction(transaction: Transaction) -> None:
    """COMMIT (a function of its own: the kill -9 tests stop a child right before it)."""
    await transaction.commit()


class PostgresUnit:
    """Statements inside one unit of work, on the pooled connection it holds."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self.conn.fetch(dollar_params(sql), *params))

    async def read_one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self.conn.fetchrow(dollar_params(sql), *params)
        return row

    async def write(self, sql: str, params: Params = ()) -> Written:
        return Written(_rowcount(await self.conn.execute(dollar_params(sql), *params)), None)

    async def write_many(self, sql: str, rows: Iterable[Params]) -> None:
        await self.conn.executemany(dollar_params(sql), rows)

    async def write_returning(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.read(sql, params)


class PostgresDatabase(Database):
    """A pool of connections to one PostgreSQL database."""

    dialect = POSTGRES

    def __init__(self, pool: asyncpg.Pool, location: str, locks: PostgresLocks) -> None:
        self._pool = pool
        self.location = location
        self._locks = locks  # shared with the other instances (bot/store/locks.py)
        self._unfinished: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls, url: str, *, pool_size: int = POOL_SIZE, pgbouncer: bool = False
    ) -> PostgresDatabase:
        """Connect and migrate. `pgbouncer`: no prepared statement outlives its transaction
        (asyncpg's statement cache off), as PgBouncer's transaction pooling requires."""
        location = masked_url(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                statement_cache_size=0 if pgbouncer else 100,
                timeout=CONNECT_TIMEOUT,
                server_settings={"application_name": "insurance-status-bot"},
                reset=_keep_session,
            )
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError) as exc:
            # Never the password: not in this message, nor in a chained traceback.
            reason = _without_secret(f"{type(exc).__name__}: {exc}", url)
            raise DatabaseUnavailable(f"cannot connect to {location}: {reason}") from None
        return await cls(pool, location, PostgresLocks(url, pgbouncer=pgbouncer))._migrated()

    # -- single statements, each a unit of its own ---------------------------------------------

    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._pool.fetch(dollar_params(sql), *params))

    async def read_one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._pool.fetchrow(dollar_params(sql), *params)
        return row

    async def write(self, sql: str, params: Params = ()) -> Written:
        return Written(_rowcount(await self._pool.execute(dollar_params(sql), *params)), None)

    async def write_returning(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.read(sql, params)

    async def write_many(self, sql: str, rows: Iterable[Params]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(dollar_params(sql), rows)

    async def write_together(self, statements: Sequence[tuple[str, Params]]) -> None:
        """One transaction on one pooled connection. Shielded: once started it runs to
        COMMIT or ROLLBACK even if the caller is cancelled (as on SQLite's writer thread)."""

        async def run() -> None:
            async with self._pool.acquire() as conn, conn.transaction():
                for sql, params in statements:
                    await conn.execute(dollar_params(sql), *params)

        task = asyncio.ensure_future(run())
        self._unfinished.add(task)
        task.add_done_callback(self._finished)
        await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._unfinished.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here too: a caller cancelled meanwhile would leave it unseen.
            log.debug("write_together failed", exc_info=task.exception())

    # -- units of several statements -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self, *, serialized: bool = True) -> AsyncIterator[PostgresUnit]:
        async with self._pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                if serialized:
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", TRANSACTION_LOCK)
                yield PostgresUnit(conn)
            except BaseException:
                # Also after a failed COMMIT. If the connection is gone the server has rolled
                # back already; the pool resets (ROLLBACK) whatever it is handed back.
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise
            await commit_transaction(transaction)

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PostgresUnit]:
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield PostgresUnit(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection of one's own, for what only PostgreSQL has (COPY)."""
        async with self._pool.acquire() as conn:
            yield conn

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1")

    # -- locks every instance on this database shares (bot/store/locks.py) ----------------------

    def exclusive(self, name: str) -> contextlib.AbstractAsyncContextManager[Held]:
        return self._locks.exclusive(name)

    def serialized(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locks.serialized(name)

    @contextlib.asynccontextmanager
    async def locked(self, names: Iterable[str]) -> AsyncIterator[PostgresUnit]:
        """A transaction holding the transaction-scoped locks of `names` (in one order, so
        two units wanting the same names cannot deadlock)."""
        keys = sorted({advisory_key(name) for name in names})
        async with self.transaction(serialized=False) as unit:
            await unit.read(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(?::bigint[]) AS k ORDER BY k) AS ordered",
                (keys,),
            )
            yield unit

    # -- schema --------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        async with self._pool.acquire() as conn:
            return await _version(conn)

    async def migrate(self) -> None:
        """Bring the database to the latest schema, one version per transaction, each under
        a transaction-scoped advisory lock: of two instances starting at once, one migrates
        and the other waits, then finds nothing left to do."""
        latest = len(POSTGRES_MIGRATIONS)
        async with self._pool.acquire() as conn:
            while True:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                    current = await _version(conn)
                    if current > latest:
                        raise RuntimeError(
                            f"Database {self.location} has schema version {current}, newer "
                            f"than this program ({latest}); upgrade the program."
                        )
                    if current == latest:
                        return
                    if current == 0:
                        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                        await conn.execute("INSERT INTO schema_version VALUES (0)")
                    for statement in POSTGRES_MIGRATIONS[current]:
                        await conn.execute(statement)
                    await conn.execute("UPDATE schema_version SET version = $1", current + 1)
                log.info("Database migrated to schema version %d", current + 1)

    async def close(self) -> None:
        await self._locks.close()
        if self._unfinished:
            await asyncio.gather(*self._unfinished, return_exceptions=True)
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("PostgreSQL connections still busy after %.0f s: closed", CLOSE_TIMEOUT)
            self._pool.terminate()


async def _version(conn: Connection) -> int:
    if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
        return 0
    return int(await conn.fetchval("SELECT max(version) FROM schema_version") or 0)
