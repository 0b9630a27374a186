"""Units of work: each transaction or single statement is isolated from other tasks, and a
multi-statement write is all or nothing, even when the process is killed (-9) inside it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.config import Settings
from bot.domain.audience import Audience, Content
from bot.domain.subscriptions import SubscribeOutcome
from bot.importer.run import import_policies
from bot.store.broadcasts import BroadcastStore
from bot.store.conversations import ConversationStore
from bot.store.database import Database, SqliteDatabase
from bot.store.setup import open_database, open_store
from bot.store.subscriptions import ReminderLog, SubscriptionStore
from tests.conftest import TEST_KEY
from tests.store.killed_child import AT_COMMIT, TODAY

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("killed_child.py")
HEADER = "id_number,insurer,policy_number,policy_class,beneficiary_type,start_date,expiry_date"


async def let_others_run() -> None:
    """Enough turns of the event loop for a started task to reach the store and wait there."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_failed_transaction_takes_no_other_tasks_write_with_it(db: Database) -> None:
    conversations = ConversationStore(db)
    opened, fail = asyncio.Event(), asyncio.Event()

    async def failing() -> None:
        async with db.transaction() as unit:
            await unit.write(
                "INSERT INTO conversations (channel, chat_id, state) VALUES (?, ?, ?)",
                ("web", "a", "{}"),
            )
            opened.set()
            await fail.wait()
            raise RuntimeError("the transaction fails")

    first = asyncio.create_task(failing())
    await opened.wait()
    # A plain statement from another task while the transaction is open: on SQLite it waits
    # its turn for the writer, on PostgreSQL it has a connection of its own; either way it
    # never lands inside the transaction.
    save = asyncio.create_task(conversations.save_json("web", "b", '{"kept": true}'))
    await let_others_run()
    if isinstance(db, SqliteDatabase):
        assert not save.done()
    fail.set()
    with pytest.raises(RuntimeError, match="fails"):
        await first
    await save
    assert await conversations.load_json("web", "b") == '{"kept": true}'
    assert await conversations.load_json("web", "a") is None


async def test_readers_never_see_another_tasks_uncommitted_write(db: Database) -> None:
    conversations = ConversationStore(db)
    async with db.transaction() as unit:
        await unit.write(
            "INSERT INTO conversations (channel, chat_id, state) VALUES (?, ?, ?)",
            ("web", "c", "{}"),
        )
        assert await unit.read("SELECT 1 FROM conversations WHERE chat_id = 'c'")  # its own
        assert await conversations.load_json("web", "c") is None
        assert not await asyncio.create_task(conversations.exists("web", "c"))
    assert await conversations.load_json("web", "c") == "{}"  # committed: seen at once


async def test_a_snapshot_sees_one_moment(db: Database) -> None:
    conversations = ConversationStore(db)
    async with db.snapshot() as view:
        before = await view.read_one("SELECT count(*) FROM conversations")
        await conversations.save_json("web", "d", "{}")  # another unit commits meanwhile
        assert await view.read_one("SELECT count(*) FROM conversations") == before
    assert await conversations.exists("web", "d")


async def test_a_cancelled_transaction_is_rolled_back_and_frees_the_writer(db: Database) -> None:
    opened = asyncio.Event()

    async def stuck() -> None:
        async with db.transaction() as unit:
            await unit.write(
                "INSERT INTO conversations (channel, chat_id, state) VALUES (?, ?, ?)",
                ("web", "e", "{}"),
            )
            opened.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await opened.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ConversationStore(db).save_json("web", "f", "{}")
    assert await ConversationStore(db).load_json("web", "e") is None
    assert await ConversationStore(db).exists("web", "f")


async def test_sqlite_readers_cannot_write(tmp_path: Path) -> None:
    async with (
        await SqliteDatabase.open(tmp_path / "db.sqlite3") as db,
        db.transaction(),  # the writer is taken: plain reads go to a reader
    ):
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await db.read("DELETE FROM insurers")


async def test_subscriptions_racing_in_one_chat_keep_the_limit_and_never_double(
    db: Database,
) -> None:
    store = SubscriptionStore(db, max_per_chat=3)
    results = await asyncio.gather(
        *(store.subscribe("telegram", 1, bytes([i]) * 32, "1*******08", "ar") for i in range(5)),
        store.subscribe("telegram", 1, bytes([0]) * 32, "1*******08", "en"),
    )
    outcomes = [r.outcome for r in results]
    assert outcomes.count(SubscribeOutcome.SUBSCRIBED) == 3
    assert outcomes.count(SubscribeOutcome.LIMIT_REACHED) == 2
    assert outcomes[-1] is SubscribeOutcome.ALREADY
    assert len(await store.list_for_chat("telegram", 1)) == 3


# -- kill -9 inside each multi-statement write ------------------------------------------------


async def rows(location: Path | str, sql: str) -> list[tuple[object, ...]]:
    if isinstance(location, Path):
        conn = sqlite3.connect(location)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    async with await open_database(location) as db:  # and the store opens as usual
        return [tuple(r) for r in await db.read(sql)]


async def three_subscribers(db: Database) -> list[int]:
    store = SubscriptionStore(db)
    ids = []
    for chat in (1, 2, 3):
        result = await store.subscribe("telegram", chat, bytes([chat]) * 32, "1*******08", "ar")
        assert result.subscription_id is not None
        ids.append(result.subscription_id)
    return ids


async def nothing(db: Database, tmp_path: Path) -> str:
    return ""


async def subscribers(db: Database, tmp_path: Path) -> str:
    await three_subscribers(db)
    return ""


async def a_running_broadcast(db: Database, tmp_path: Path) -> str:
    await three_subscribers(db)
    store = BroadcastStore(db)
    broadcast_id, _ = await store.create(
        Audience.all(), Content(text="hi"), "admin", TODAY, ("telegram",)
    )
    await store.ledger.finish((broadcast_id, 1), "sent", None, 1)
    return str(broadcast_id)


async def a_reminder_from_yesterday(db: Database, tmp_path: Path) -> str:
    subs = await three_subscribers(db)
    await ReminderLog(db).schedule(TODAY - timedelta(days=1), [(subs[0], "2026-03-08", 30)])
    return ",".join(map(str, subs))


async def three_policies(db: Database, tmp_path: Path) -> str:
    first = tmp_path / "first.csv"
    first.write_text(
        f"{HEADER}\n"
        + "".join(f"1000000008,BUPA,P-{i},A,principal,2026-01-01,2026-12-31\n" for i in range(3))
    )
    await import_policies(first, db, TEST_KEY.encode())
    more = tmp_path / "more.csv"
    more.write_text(
        f"{HEADER}\n"
        + "".join(f"2000000006,BUPA,Q-{i},A,principal,2026-01-01,2026-12-31\n" for i in range(2000))
    )
    return str(more)


async def no_policies(db: Database, tmp_path: Path) -> str:
    """A first load (an empty store): on PostgreSQL it drops and rebuilds the indexes."""
    await three_policies(db, tmp_path)
    await db.write("DELETE FROM policies")
    return str(tmp_path / "more.csv")


Setup = Callable[[Database, Path], Awaitable[str]]
KILLED = {
    # operation: (what is there before, query, what it must still show after the kill)
    "subscribe": (nothing, "SELECT count(*) FROM subscriptions", [(0,)]),
    "broadcast": (
        subscribers,
        "SELECT (SELECT count(*) FROM broadcasts), (SELECT count(*) FROM broadcast_recipients)",
        [(0, 0)],
    ),
    "cancel": (
        a_running_broadcast,
        "SELECT b.status, r.status, count(*) FROM broadcasts b "
        "JOIN broadcast_recipients r ON r.broadcast_id = b.id GROUP BY 1, 2 ORDER BY 2",
        [("running", "pending", 2), ("running", "sent", 1)],
    ),
    "schedule": (
        a_reminder_from_yesterday,
        "SELECT threshold, due_on, status FROM reminders",
        [(30, "2026-02-28", "pending")],
    ),
    "import": (three_policies, "SELECT count(*) FROM policies", [(3,)]),
    "first import": (no_policies, "SELECT count(*) FROM policies", [(0,)]),
}


@pytest.mark.parametrize("operation", list(KILLED))
async def test_killed_inside_a_write_leaves_it_undone(
    operation: str, settings: Settings, tmp_path: Path, database_location: Path | str
) -> None:
    setup, query, expected = KILLED[operation]
    async with await open_store(settings) as db:
        argument = await setup(db, tmp_path)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), operation, str(database_location), argument],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        line = child.stdout.readline()  # every statement done, COMMIT not yet
        assert line.strip() == AT_COMMIT, child.communicate()[1]
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert await rows(database_location, query) == expected


async def test_a_transaction_cancelled_while_it_begins_leaves_none_open(
    database_location: Path | str,
) -> None:
    async with await open_database(database_location) as db:

        async def unit() -> None:
            async with db.transaction() as work:
                await work.write("INSERT INTO insurers VALUES ('C', 'ج', 'C Co')")

        for _ in range(3):
            task = asyncio.create_task(unit())
            await asyncio.sleep(0)  # it holds the writer and waits for its BEGIN
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # The writer is usable: a plain write is committed, a new transaction can begin.
        await db.write("INSERT INTO insurers VALUES ('P', 'ب', 'P Co')")
        async with db.transaction() as work:
            await work.write("INSERT INTO insurers VALUES ('T', 'ت', 'T Co')")
        async with db.snapshot() as view:
            codes = {str(r[0]) for r in await view.read("SELECT code FROM insurers")}
        assert {"P", "T"} <= codes


async def test_a_turns_state_and_its_audit_record_are_one_unit(
    database_location: Path | str,
) -> None:
    from bot.store.conversations import AuditEntry

    async with await open_database(database_location) as db:
        store = ConversationStore(db)
        good = AuditEntry("ab" * 32, b"h" * 32, "active")
        await store.save_json("web", "one", '{"step": "result"}', [good])
        assert await store.load_json("web", "one") == '{"step": "result"}'
        assert len(await db.read("SELECT 1 FROM audit_lookups")) == 1
        # A record the database refuses (outcome is NOT NULL) takes its turn's state with it.
        broken = AuditEntry("ab" * 32, b"h" * 32, None)  # type: ignore[arg-type]
        with pytest.raises((sqlite3.IntegrityError, asyncpg.NotNullViolationError)):
            await store.save_json("web", "one", '{"step": "start"}', [broken])
        assert await store.load_json("web", "one") == '{"step": "result"}'
        assert len(await db.read("SELECT 1 FROM audit_lookups")) == 1
