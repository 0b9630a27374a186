"""Locks that hold across every process on one database (several bot instances, the CLI).

    async with exclusive(db, "reminder-pass") as mine:   one holder at a time (falsy: someone
        ...                                              else has it); a one-leader job: the
                                                         daily pass, Telegram's long polling
    async with serialized(db, "conversation:telegram:42"):
        ...                                              one at a time per key, waiting

On SQLite one process owns the database file (the bot; the CLI only delivers), so:
- `exclusive` is a lease row (bot/store/leases.py), renewed while held; it lapses
  when its holder stops renewing it, or at once when that process is gone;
- `serialized` takes nothing: the conversation service already runs one chat's turns one at a
  time inside the process (`ChatTurns`), and no other process holds conversations.
On PostgreSQL both are advisory locks, which the server drops with the connection that holds
them, so a killed instance never leaves one behind (bot/store/postgres_locks.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from bot.store.database import Database, Queries
from bot.store.leases import Held, Leases


@runtime_checkable
class ServerLocks(Protocol):
    """A store whose server keeps locks itself (PostgreSQL's advisory locks)."""

    def exclusive(self, name: str) -> AbstractAsyncContextManager[Held]: ...

    def serialized(self, name: str) -> AbstractAsyncContextManager[None]: ...

    def locked(self, names: Iterable[str]) -> AbstractAsyncContextManager[Queries]:
        """A transaction that holds the locks of `names` until it ends."""
        ...


def exclusive(db: Database, name: str) -> AbstractAsyncContextManager[Held]:
    """Held by one process (and one holder in it) at a time, for as long as the block runs;
    what it yields is falsy at once when someone else holds it, and its `lost` event is set
    if the lock stops being ours before the block ends."""
    if isinstance(db, ServerLocks):
        return db.exclusive(name)
    return Leases(db).hold(name)


def serialized(db: Database, name: str) -> AbstractAsyncContextManager[None]:
    """Blocks with the same `name` run one after the other, across processes."""
    if isinstance(db, ServerLocks):
        return db.serialized(name)
    return _in_process_only()


@contextlib.asynccontextmanager
async def _in_process_only() -> AsyncIterator[None]:
    yield
