"""Several instances on one database: Telegram's webhook updates may land on any of them, and
what one instance knows, the others know (conversations, limits, repeats), through the store.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.channels.launch import EXIT_CONFIG, serve
from bot.channels.telegram import ONE_POLLER
from bot.config import Settings
from bot.conversation import texts as bot_texts
from bot.i18n import strip_isolates
from bot.importer.demo import load_demo
from bot.store.setup import open_store
from tests.e2e.conftest import AR, CODE, TOKEN, make_settings
from tests.e2e.instances import Instance, instance_settings, running, texts
from tests.fakes.fake_bot_api import FakeBotAPI, JSONDict

REPO = Path(__file__).resolve().parents[2]
CITIZEN = AR._("Citizen")
GREETING = strip_isolates(bot_texts.greeting(AR).text)


@pytest.fixture
def database(tmp_path: Path) -> dict[str, Any]:
    """The one database of every instance in a test (SQLite: one file)."""
    return {"database_path": tmp_path / "bot.sqlite3"}


async def with_demo(settings: Settings) -> None:
    db = await open_store(settings)
    try:
        report = await load_demo(db, settings)
        assert not report.errors
    finally:
        await db.close()


def two(settings: Settings, api: FakeBotAPI) -> list[Instance]:
    return [Instance("a", settings, api), Instance("b", settings, api)]


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


def bot_env(folder: Path, api: FakeBotAPI, database: dict[str, Any]) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return env | {
        "PYTHONPATH": str(REPO),
        "NO_PROXY": "127.0.0.1,localhost",
        "ID_HASH_KEY": "k",
        "CAPTCHA_WORKERS": "0",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api.root_url,
        **{name.upper(): str(value) for name, value in database.items()},
    }


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
            env=bot_env(tmp_path, api, database),
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
