"""PostgreSQL's advisory locks behind bot/store/locks.py: the locks several instances share.

- `exclusive(name)`: a one-leader job (Telegram's long polling, the daily reminder pass, the
  admin's progress message of a broadcast). `pg_try_advisory_xact_lock` in a transaction kept
  open on a connection of its own, outside the pool, for as long as the job runs: the server
  drops it with that transaction or connection, so an instance that is killed or cut off
  leaves nothing behind and another one takes over at its next try. A transaction rather than
  the session (`pg_try_advisory_lock`): PgBouncer in transaction mode keeps a transaction on
  one server connection, but hands a session's statements to any (and a session lock would
  stay behind on one another client then gets). The transaction does nothing else, holds no
  snapshot between statements and no transaction id, so it keeps no row from being vacuumed.
  Its `lost` event is set when the connection ends or stops answering, so the job stops
  rather than run beside the next leader.
- `serialized(name)`: one chat's turn (load, engine, save). `pg_advisory_xact_lock` in a
  transaction on a connection from a small pool of its own, so a waiting turn blocks in the
  server (in arrival order, without polling) and the lock goes with COMMIT, ROLLBACK or the
  connection. Not the main pool: the turn's own statements need it meanwhile, and turns holding
  every pooled connection while waiting for one more would deadlock.
- `locked(names)` (bot/store/postgres.py): a transaction holding the transaction-scoped locks
  of a few names, for a check-then-write that one statement cannot make atomic under READ
  COMMITTED (the limits' count-then-insert).

"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from bot.store.leases import Held

log = logging.getLogger(__name__)

TURN_CONNECTIONS = 16  # chats whose turn runs at once, per process (each holds one connection)
WATCH_EVERY = 10.0  # seconds between checks that a leader's connection still answers
WATCH_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0


def advisory_key(name: str) -> int:
    """A stable 64-bit advisory lock key for a name (the same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLocks:
    """The advisory locks of one process on one database (opened lazily, closed with it)."""

    def __init__(self, url: str, *, pgbouncer: bool = False) -> None:
        self._url = url
        self._cache = 0 if pgbouncer else 100
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._leaders: set[asyncpg.Connection] = set()

    async def _turn_pool(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._url,
                    min_size=0,
                    max_size=TURN_CONNECTIONS,
                    statement_cache_size=self._cache,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": "insurance-status-bot locks"},
                    reset=_nothing_to_reset,
                )
            return self._pool

    @contextlib.asynccontextmanager
    async def serialized(self, name: str) -> AsyncIterator[None]:
        pool = await self._turn_pool()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(name))
            yield

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[Held]:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._url,
            timeout=CONNECT_TIMEOUT,
            statement_cache_size=self._cache,
            server_settings={"application_name": f"insurance-status-bot {name}"[:63]},
        )
        self._leaders.add(conn)
        try:
            held = Held(
                bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", advisory_key(name)))
            )
            if not held:
                yield held
                return
            conn.add_termination_listener(lambda _: held.lost.set())
            watch = asyncio.create_task(_watch(conn, held, name), name=f"lock:{name}")
            try:
                yield held
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
        finally:
            self._leaders.discard(conn)
            # Ending the connection (and its transaction) is what releases the lock, also when
            # the server is gone.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), WATCH_TIMEOUT)
            if not conn.is_closed():
                conn.terminate()

    async def close(self) -> None:
        for conn in list(self._leaders):
            conn.terminate()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), WATCH_TIMEOUT)
            except TimeoutError:
                pool.terminate()


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """Handed back after COMMIT with nothing of the session changed (the lock was the
    transaction's): no RESET ALL round trip per turn. asyncpg still rolls back a transaction
    left open."""


async def _watch(conn: asyncpg.Connection, held: Held, name: str) -> None:
    """Set `held.lost` once the leader's connection stops answering (the server restarted,
    the network is cut): the lock may be someone else's by then."""
    while not held.lost.is_set():
        await asyncio.sleep(WATCH_EVERY)
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), WATCH_TIMEOUT)
        except Exception as exc:  # whatever the driver raises for a dead connection
            log.error("Lost the lock %s: its connection does not answer (%s)", name, exc)
            held.lost.set()
