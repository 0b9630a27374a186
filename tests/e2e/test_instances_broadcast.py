"""One broadcast, several processes on one database: bot instances (in this test process, or
`python -m bot` children), and `python -m bot broadcast --resume` beside them. Each recipient
gets the message once (only a message in flight in a killed process may arrive twice, and is
counted as sent again), and the channel's rate holds for all of them together, on the fake Bot
API's record of when each message arrived. The fake runs in a process of its own, so that its
record is not held up by the instances' work in this one.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.config import Settings
from bot.domain.audience import Audience, Content
from bot.domain.identity import id_hmac, mask_id
from bot.domain.policy import today_in
from bot.reminders.broadcast import BroadcastRunner
from bot.store.broadcasts import BroadcastStatus, BroadcastStore
from bot.store.database import Database
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore
from tests.conftest import on_both_backends
from tests.e2e.instances import SECRET, Instance, bot_env, instance_settings, running
from tests.e2e.test_telegram_webhook import free_port
from tests.fakes.fake_bot_api import FakeBotAPIProcess
from tests.reminders.conftest import LONG_AGO, identity

RATE = 10  # BROADCAST_RATE: messages/s on Telegram, every process together
TEXT = "تحديث مهم للمشتركين"

backend = on_both_backends()


@pytest.fixture
def database(store_settings: dict[str, Any]) -> dict[str, Any]:
    return store_settings


@pytest.fixture
def telegram() -> Iterator[FakeBotAPIProcess]:
    with FakeBotAPIProcess() as fake:
        yield fake


async def broadcast_arrivals(api: FakeBotAPIProcess) -> list[tuple[int, float]]:
    """(chat, when it arrived at "Telegram") of every broadcast message, in arrival order."""
    async with (
        ClientSession(api.root_url) as http,
        http.get("/_control/calls", params={"method": "sendMessage"}) as response,
    ):
        calls = (await response.json())["result"]
    return sorted(
        (
            (int(c["params"]["chat_id"]), float(c["timestamp"]))
            for c in calls
            if c["status"] == 200 and TEXT in str(c["params"].get("text", ""))
        ),
        key=lambda arrival: arrival[1],
    )


async def received(api: FakeBotAPIProcess, chats: list[int]) -> Counter[int]:
    """Broadcast messages that reached each chat."""
    counts: Counter[int] = Counter({chat: 0 for chat in chats})
    counts.update(chat for chat, _ in await broadcast_arrivals(api))
    return counts


async def most_in_one_second(api: FakeBotAPIProcess) -> int:
    """The most broadcast messages that arrived at "Telegram" within any one second."""
    times = [at for _, at in await broadcast_arrivals(api)]
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def until_received(api: FakeBotAPIProcess, count: int, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(await broadcast_arrivals(api)) < count:
        assert loop.time() < deadline, f"fewer than {count} broadcast messages arrived"
        await asyncio.sleep(0.05)


async def subscribers(settings: Settings, chats: list[int]) -> None:
    db = await open_store(settings)
    try:
        store = SubscriptionStore(db)
        for chat in chats:
            digits = identity(chat)
            key = id_hmac(settings.database.hash_key, digits)
            await store.subscribe("telegram", chat, key, mask_id(digits), "ar", now=LONG_AGO)
    finally:
        await db.close()


async def create_broadcast(settings: Settings, instance: Instance | None = None) -> int:
    """As the admin's confirmation does (on an instance, or from the CLI's database)."""
    if instance is not None:
        runner = instance.core.reminders.broadcasts
        return await runner.create(Audience.all(), Content.custom(TEXT), "telegram:1")
    db = await open_store(settings)
    try:
        store = BroadcastStore(db)
        today = today_in(settings.app.tz)
        broadcast_id, _ = await store.create(
            Audience.all(), Content.custom(TEXT), "cli:op", today, ("telegram",)
        )
        return broadcast_id
    finally:
        await db.close()


async def senders_of(settings: Settings, broadcast_id: int) -> set[str]:
    """The processes whose claims the sent recipients carry."""
    db = await open_store(settings)
    try:
        rows = await db.read(
            "SELECT DISTINCT claimed_by FROM broadcast_recipients "
            "WHERE broadcast_id = ? AND status = 'sent'",
            (broadcast_id,),
        )
        return {str(row[0]) for row in rows}
    finally:
        await db.close()


async def status_of(db: Database, broadcast_id: int) -> BroadcastStatus | None:
    return await BroadcastStore(db).status(broadcast_id)


async def test_a_broadcast_worked_by_two_instances_reaches_each_once_within_the_rate(
    telegram: FakeBotAPIProcess, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = instance_settings(tmp_path, telegram, database, broadcast_rate=RATE)
    chats = list(range(900, 960))
    await subscribers(settings, chats)
    async with running([Instance("a", settings), Instance("b", settings)]) as (a, b):
        broadcast_id = await create_broadcast(settings, a)
        # The admin's instance runs it; the other one's sweep joins it at the same moment.
        reports = await asyncio.gather(
            a.core.reminders.broadcasts.run(broadcast_id),
            b.core.reminders.broadcasts.run(broadcast_id),
        )
    assert sorted(report.outcome for report in reports) == ["done", "joined"]
    assert await received(telegram, chats) == {chat: 1 for chat in chats}
    assert len(await senders_of(settings, broadcast_id)) == 2  # both sent a share
    assert await most_in_one_second(telegram) <= RATE


async def test_python_m_bot_broadcast_resume_joins_a_broadcast_running_elsewhere(
    telegram: FakeBotAPIProcess, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = instance_settings(tmp_path, telegram, database, broadcast_rate=RATE)
    chats = list(range(1000, 1060))
    await subscribers(settings, chats)
    async with running([Instance("a", settings)]) as (a,):
        broadcast_id = await create_broadcast(settings, a)
        leading = asyncio.create_task(a.core.reminders.broadcasts.run(broadcast_id))
        await until_received(telegram, 1)
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bot", "broadcast", "--resume", str(broadcast_id)),
            cwd=tmp_path,
            env=bot_env(telegram.root_url, database, BROADCAST_RATE=str(RATE)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        report = await asyncio.wait_for(leading, 60)
    assert cli.returncode == 0, err.decode()
    assert f"Another process leads broadcast #{broadcast_id}" in out.decode()
    assert report.outcome == "done" and report.summary.sent == len(chats)
    assert await received(telegram, chats) == {chat: 1 for chat in chats}
    assert len(await senders_of(settings, broadcast_id)) == 2
    assert await most_in_one_second(telegram) <= RATE


async def test_kill_9_one_instance_mid_broadcast_and_the_other_finishes_it(
    telegram: FakeBotAPIProcess, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = instance_settings(tmp_path, telegram, database, broadcast_rate=RATE)
    chats = list(range(1100, 1160))
    await subscribers(settings, chats)
    broadcast_id = await create_broadcast(settings)
    # Instance A: `python -m bot` in a process of its own; its catch-up at start takes the
    # broadcast up (it leads it).
    port = free_port()
    env = bot_env(telegram.root_url, database, BROADCAST_RATE=str(RATE)) | {
        "WEBHOOK_URL": "https://bot.example.sa/",
        "WEBHOOK_SECRET": SECRET,
        "WEB_PORT": str(port),
    }
    first = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await until_received(telegram, 5)
        async with running([Instance("b", settings)]) as (b,):
            await until_received(telegram, 20)
            first.send_signal(signal.SIGKILL)
            await first.wait()
            runner: BroadcastRunner = b.core.reminders.broadcasts
            db = b.core.runtime.db
            # B's sweeps (every minute; here at once) lead it now that A is gone.
            while await status_of(db, broadcast_id) is BroadcastStatus.RUNNING:
                await runner.resume_unfinished()
                await asyncio.sleep(0.05)
            summary = await runner.get(broadcast_id)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert summary is not None and summary.status is BroadcastStatus.DONE
    assert summary.sent == len(chats)
    counts = await received(telegram, chats)
    assert min(counts.values()) == 1  # nobody was left out
    # Only what was in flight in A when it was killed may have gone twice, and is counted.
    assert sum(n - 1 for n in counts.values()) <= summary.resent
