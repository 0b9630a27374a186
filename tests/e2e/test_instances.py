"""Several instances on one database: Telegram's webhook updates may land on any of them, and
what one instance knows, the others know (conversations, limits, repeats), through the store.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine

from bot.channels.launch import EXIT_CONFIG, serve
from bot.channels.telegram import ONE_POLLER
from bot.config import Settings
from bot.conversation import texts as bot_texts
from bot.domain.identity import id_hmac, mask_id
from bot.domain.policy import today_in
from bot.i18n import strip_isolates
from bot.importer.demo import load_demo
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore
from tests.conftest import on_both_backends
from tests.e2e.conftest import AR, CODE, make_settings
from tests.e2e.instances import Instance, bot_env, instance_settings, running, texts
from tests.fakes.fake_bot_api import FakeBotAPI, JSONDict
from tests.fakes.tcp_proxy import TcpProxy
from tests.reminders.conftest import LONG_AGO, identity

CITIZEN = AR._("Citizen")
GREETING = strip_isolates(bot_texts.greeting(AR).text)


backend = on_both_backends()


@pytest.fixture
def database(store_settings: dict[str, Any]) -> dict[str, Any]:
    """The one database of every instance in a test: an SQLite file, or PostgreSQL."""
    return store_settings


async def with_demo(settings: Settings) -> None:
    db = await open_store(settings)
    try:
        report = await load_demo(db, settings)
        assert not report.errors
    finally:
        await db.close()


def two(settings: Settings, api: FakeBotAPI) -> list[Instance]:
    return [Instance("a", settings, api), Instance("b", settings, api)]


async def up_to_the_code(api: FakeBotAPI, instance: Instance, chat: int) -> None:
    """/start, «مواطن», a number: the chat waits for its image code."""
    steps: list[Callable[[], JSONDict]] = [
        lambda: api.user_text(chat, "/start", queue=False),
        lambda: api.user_tap(chat, CITIZEN, queue=False),
        lambda: api.user_text(chat, "1000000008", queue=False),
    ]
    for update in steps:
        assert await instance.post(update()) == 200
        await instance.settle()
    assert api.sent_to(chat)[-1].photo is not None


async def test_a_conversation_alternating_between_two_instances_completes(
    api: FakeBotAPI, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = instance_settings(tmp_path, api, database)
    await with_demo(settings)
    async with running(two(settings, api)) as (a, b):
        chat = 601
        updates: list[Callable[[], JSONDict]] = [
            lambda: api.user_text(chat, "/start", queue=False),
            lambda: api.user_tap(chat, CITIZEN, queue=False),
            lambda: api.user_text(chat, "1000000008", queue=False),
            lambda: api.user_text(chat, CODE, queue=False),
        ]
        for turn, update in enumerate(updates):
            instance = (a, b)[turn % 2]  # the proxy sends each to the other instance
            assert await instance.post(update()) == 200
            await instance.settle()
        greeting, _ask, photo, card = api.sent_to(chat)
        assert strip_isolates(greeting.body or "") == GREETING
        assert photo.photo is not None  # the code b's turn issued ...
        assert "1*******08" in (card.body or "")  # ... a's turn accepted: the card
        assert "BUPA-77120345" in (card.body or "")


async def test_the_same_update_delivered_to_both_instances_is_answered_once(
    api: FakeBotAPI, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = instance_settings(tmp_path, api, database)
    async with running(two(settings, api)) as (a, b):
        chat = 602
        update = api.user_text(chat, "/start", queue=False)
        # Telegram retried it (no answer in time), and the proxy sent the retry elsewhere.
        assert list(await asyncio.gather(a.post(update), b.post(update))) == [200, 200]
        await asyncio.gather(a.settle(), b.settle())
        assert texts(api, chat) == [GREETING]
        assert await b.post(update) == 200  # later, on either: still once
        await b.settle()
        assert texts(api, chat) == [GREETING]


async def test_a_second_poller_stops_with_one_clear_line(
    api: FakeBotAPI, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path, api, **database)
    stop = asyncio.Event()
    first = asyncio.create_task(serve(settings, stop))
    try:
        await api.wait_until_polling()
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env=bot_env(api.root_url, database),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == EXIT_CONFIG
        assert err.decode().strip().splitlines() == [ONE_POLLER]
        assert "WEBHOOK_URL" in ONE_POLLER
        api.user_text(603, "/start")  # the first one still answers
        await api.wait_for_sent(603)
    finally:
        stop.set()
        assert await asyncio.wait_for(first, 15) == 0


async def test_healthz_reports_the_database_and_each_channel(
    api: FakeBotAPI, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = instance_settings(tmp_path, api, database, web_chat=True)
    async with running([Instance("a", settings, api)]) as (a,):
        assert await a.health() == (
            200,
            {"status": "ok", "database": "ok", "channels": {"telegram": "ok", "web": "ok"}},
        )


def postgres_only(database: dict[str, Any]) -> None:
    if "database_url" not in database:
        # One process owns an SQLite file: its turns are serialised in that process.
        pytest.skip("several instances share PostgreSQL, not an SQLite file")


async def test_concurrent_updates_of_one_chat_are_never_lost(
    api: FakeBotAPI, tmp_path: Path, database: dict[str, Any]
) -> None:
    postgres_only(database)
    settings = instance_settings(tmp_path, api, database)
    await with_demo(settings)
    async with running(two(settings, api)) as (a, b):
        chat = 604
        await up_to_the_code(api, a, chat)
        before = len(api.sent_to(chat))
        # Five wrong codes at once, spread over both instances. Each turn must see the one
        # before it: wrong, wrong, a new image after three, wrong, then the cool-down after
        # five in a row. A lost update would show as a repeated count and no cool-down.
        wrong = [api.user_text(chat, "111111", queue=False) for _ in range(5)]
        posts = [(a, b)[i % 2].post(update) for i, update in enumerate(wrong)]
        assert list(await asyncio.gather(*posts)) == [200] * 5
        await asyncio.gather(a.settle(), b.settle())
        answers = api.sent_to(chat)[before:]
        tries = [bot_texts.wrong_code(AR, n).text for n in (2, 1, 2)]
        expected = sorted(
            [*map(strip_isolates, tries), "photo", strip_isolates(bot_texts.cooldown(AR, 600).text)]
        )
        assert sorted("photo" if o.photo else strip_isolates(o.body or "") for o in answers) == (
            expected
        )


async def test_limits_are_shared_by_the_instances(
    api: FakeBotAPI, tmp_path: Path, database: dict[str, Any]
) -> None:
    settings = instance_settings(tmp_path, api, database, lookups_per_id_per_day=2)
    await with_demo(settings)
    async with running(two(settings, api)) as (a, b):
        chats = [611, 612, 613, 614]
        for i, chat in enumerate(chats):
            await up_to_the_code(api, (a, b)[i % 2], chat)
        # Four people type the right code for one number at once, two on each instance:
        # the number's daily limit lets two of them see it.
        codes = [
            (a, b)[i % 2].post(api.user_text(chat, CODE, queue=False))
            for i, chat in enumerate(chats)
        ]
        assert list(await asyncio.gather(*codes)) == [200] * 4
        await asyncio.gather(a.settle(), b.settle())
        last = [texts(api, chat)[-1] for chat in chats]
        assert sum("BUPA-77120345" in text for text in last) == 2


async def test_the_daily_pass_run_by_both_instances_sends_each_reminder_once(
    api: FakeBotAPI,
    tmp_path: Path,
    database: dict[str, Any],
    frozen_clock: time_machine.Traveller,
) -> None:
    settings = instance_settings(tmp_path, api, database, broadcast_rate=20)
    tz = settings.app.tz
    today = today_in(tz)
    # 08:00, before REMINDER_TIME (09:00): no catch-up runs when the instances start.
    frozen_clock.move_to(datetime.combine(today, time(8, 0), tzinfo=tz))
    chats = list(range(700, 720))
    db = await open_store(settings)
    try:
        subscriptions = SubscriptionStore(db)
        for chat in chats:
            digits = identity(chat)
            await db.write(
                "INSERT INTO policies (id_hmac, id_masked, insurer_code, policy_number, "
                "policy_class, beneficiary_type, start_date, expiry_date) "
                "VALUES (?, ?, 'BUPA', ?, 'A', 'principal', ?, ?)",
                (
                    id_hmac(b"k", digits),
                    mask_id(digits),
                    f"P-{chat}",
                    (today - timedelta(days=300)).isoformat(),
                    (today + timedelta(days=7)).isoformat(),
                ),
            )
            await subscriptions.subscribe(
                "telegram", chat, id_hmac(b"k", digits), mask_id(digits), "ar", now=LONG_AGO
            )
    finally:
        await db.close()
    # The daily job fires on both at once, as each one's scheduler would.
    async with running(two(settings, api)) as instances:
        services = [instance.core.reminders for instance in instances]
        reports = await asyncio.gather(*(service.daily() for service in services))
        assert sorted(report.busy for report in reports) == [False, True]
        again = await asyncio.gather(*(service.daily() for service in services))  # later on
        assert [r.result.progress.sent if r.result else 0 for r in again] == [0, 0]
    assert {chat: len(api.sent_to(chat)) for chat in chats} == {chat: 1 for chat in chats}


async def test_an_instance_that_loses_the_database_answers_503_and_keeps_no_half_done_work(
    api: FakeBotAPI, tmp_path: Path, database: dict[str, Any]
) -> None:
    postgres_only(database)
    url = str(database["database_url"])
    port = urlsplit(url).port
    assert port is not None
    async with TcpProxy("127.0.0.1", port) as proxy:
        through = {**database, "database_url": url.replace(f":{port}/", f":{proxy.port}/")}
        settings = instance_settings(tmp_path, api, through, web_chat=True)
        await with_demo(settings)
        async with running([Instance("a", settings, api)]) as (a,):
            chat = 620
            await up_to_the_code(api, a, chat)
            proxy.cut()  # the network to the database goes
            assert await a.health() == (
                503,
                {
                    "status": "unavailable",
                    "database": "unavailable",
                    "channels": {"telegram": "ok", "web": "ok"},
                },
            )
            # The right code meanwhile: the person is told something went wrong ...
            assert await a.post(api.user_text(chat, CODE, queue=False)) == 200
            await a.settle()
            assert texts(api, chat)[-1] == strip_isolates(bot_texts.something_went_wrong(AR).text)
            proxy.restore()
            assert (await a.health())[0] == 200
            # ... and nothing of that turn was kept: the code is still awaited, and answering
            # it now shows the card.
            assert await a.post(api.user_text(chat, CODE, queue=False)) == 200
            await a.settle()
            assert "BUPA-77120345" in texts(api, chat)[-1]
