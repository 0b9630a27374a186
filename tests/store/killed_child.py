"""Child process for the kill -9 tests: runs one multi-statement write of the store and, when
its transaction is about to COMMIT, prints a line and waits to be killed.

    python tests/store/killed_child.py OPERATION DATABASE [ARGUMENT]

DATABASE: an SQLite file or a postgresql:// URL.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path

import aiosqlite
from asyncpg.transaction import Transaction

from bot.domain.audience import Audience, Content
from bot.importer.run import import_policies
from bot.store import database, postgres
from bot.store.broadcasts import BroadcastStore
from bot.store.setup import open_database
from bot.store.subscriptions import ReminderLog, SubscriptionStore

AT_COMMIT = "about to commit"
TODAY = date(2026, 3, 1)
KEY = b"test-hmac-key-not-a-secret"
_real_end = database._end


async def _wait_to_be_killed() -> None:
    print(AT_COMMIT, flush=True)
    await asyncio.sleep(3600)  # the parent kills us here


async def _end_or_wait(conn: aiosqlite.Connection, statement: str) -> None:
    if statement == "COMMIT":
        await _wait_to_be_killed()
    await _real_end(conn, statement)


async def _commit_or_wait(transaction: Transaction) -> None:
    await _wait_to_be_killed()


async def main(operation: str, location: str, argument: str) -> None:
    # Migrated already: opening commits nothing.
    async with await open_database(location if "://" in location else Path(location)) as db:
        database._end = _end_or_wait
        postgres.commit_transaction = _commit_or_wait
        if operation == "subscribe":
            await SubscriptionStore(db).subscribe("telegram", "9", b"h" * 32, "1*******08", "ar")
        elif operation == "broadcast":
            await BroadcastStore(db).create(
                Audience.all(), Content(text="hi"), "admin", TODAY, ("telegram",)
            )
        elif operation == "cancel":
            await BroadcastStore(db).cancel(int(argument))
        elif operation == "schedule":
            keys = [(int(sub), "2026-03-08", 7) for sub in argument.split(",")]
            await ReminderLog(db).schedule(TODAY, keys)
        elif operation in ("import", "first import"):
            await import_policies(Path(argument), db, KEY)
        else:
            raise SystemExit(f"unknown operation {operation}")
    raise SystemExit("committed: the parent should have killed this process first")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""))
