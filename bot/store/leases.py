"""Named leases: a row per job that only one process may run at a time, renewed while held.

The lock of bot/store/locks.py on SQLite (PostgreSQL uses advisory locks instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from bot.store.database import Database

log = logging.getLogger(__name__)


class Held:
    """What taking a lock gave: truthy when it is ours; `lost` is set if it stops being ours
    while the block still runs (its lease was taken over, its connection dropped), so that
    the work it guards can stop instead of going on beside another holder."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.lost = asyncio.Event()

    def __bool__(self) -> bool:
        return self.held


def _this_host() -> str:
    return socket.gethostname()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_owner() -> str:
    """Who holds a lease or a claim: "host:pid:random", unique to one holder in a process."""
    return f"{_this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str) -> bool:
    """The owner was a process on this machine that no longer exists (killed, crashed): what it
    held can be taken at once, without waiting for it to lapse. Unknowable for another
    machine's process (False): its hold lapses with time."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return host == _this_host() and pid_text.isdecimal() and not _process_alive(int(pid_text))


class Leases:
    """Named leases: only one process (and one holder in it) runs a given job at a time.

    A lease lapses when its holder stops renewing it (`ttl` seconds), or at once when the
    holder was a process on this machine that no longer exists, so a bot restarted right
    after a crash resumes its broadcast without waiting for the lease to run out.
    """

    def __init__(self, db: Database, ttl: float = 30.0) -> None:
        self.db = db
        self.ttl = ttl
        self.owner = new_owner()

    def _lapsed(self, owner: str, expires_at: float, now: float) -> bool:
        if expires_at <= now:
            return True
        if owner == self.owner:
            return False  # ours and live: not re-entrant
        return owner_gone(owner)

    async def acquire(self, name: str) -> bool:
        """Take the lease if it is free or lapsed. Each step is one statement that checks and
        takes at once (no read-then-write: under PostgreSQL's READ COMMITTED two processes
        would both read "free" and both take it), so of two processes racing, one wins.
        Times are the database's clock, the one every process sharing it agrees on."""
        epoch = self.db.dialect.epoch
        taken = await self.db.write_returning(
            f"INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, {epoch} + ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            f"expires_at = excluded.expires_at WHERE leases.expires_at <= {epoch} "
            "RETURNING owner",
            (name, self.owner, self.ttl),
        )
        if taken:
            return True
        row = await self.db.read_one(
            f"SELECT owner, expires_at, {epoch} FROM leases WHERE name = ?", (name,)
        )
        if row is None or not self._lapsed(str(row[0]), float(row[1]), float(row[2])):
            return False
        # Its holder died on this machine: take it over, unless someone else just did.
        written = await self.db.write(
            f"UPDATE leases SET owner = ?, expires_at = {epoch} + ? "
            "WHERE name = ? AND owner = ? AND expires_at = ?",
            (self.owner, self.ttl, name, row[0], row[1]),
        )
        return written.rowcount == 1

    async def renew(self, name: str) -> bool:
        written = await self.db.write(
            f"UPDATE leases SET expires_at = {self.db.dialect.epoch} + ? "
            "WHERE name = ? AND owner = ?",
            (self.ttl, name, self.owner),
        )
        return written.rowcount > 0

    async def release(self, name: str) -> None:
        await self.db.write("DELETE FROM leases WHERE name = ? AND owner = ?", (name, self.owner))

    async def held_elsewhere(self, prefix: str = "") -> list[str]:
        """Names of live leases other processes hold (e.g. to warn before a second sender)."""
        rows = await self.db.read(
            f"SELECT name, owner, expires_at, {self.db.dialect.epoch} FROM leases "
            "WHERE name LIKE ? || '%'",
            (prefix,),
        )
        return [
            str(r[0])
            for r in rows
            if str(r[1]) != self.owner and not self._lapsed(str(r[1]), float(r[2]), float(r[3]))
        ]

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[Held]:
        """`async with leases.hold("broadcast:7") as mine:` renews while the body runs."""
        held = Held(await self.acquire(name))
        if not held:
            yield held
            return

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(self.ttl / 3)
                try:
                    renewed = await self.renew(name)
                except Exception:  # a busy database must not kill the delivery
                    log.exception("could not renew lease %s", name)
                    continue
                if not renewed:  # it lapsed (this process stalled) and someone else took it
                    log.error("lease %s was taken over by another process", name)
                    held.lost.set()
                    return

        task = asyncio.create_task(heartbeat(), name=f"lease:{name}")
        try:
            yield held
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.release(name)
