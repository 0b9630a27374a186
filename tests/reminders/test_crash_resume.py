"""The process is killed (SIGKILL) in the middle of a broadcast, then started again.

The CLI runs in a child process against the fake Bot API (itself in another process, so it
outlives the kill and keeps the record of every message that really went out).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from telegram import Bot

from bot.channels.telegram_sender import TelegramSender
from bot.config import Settings
from bot.domain.identity import id_hmac, mask_id
from bot.reminders.delivery import RetryPolicy, workers_for
from bot.reminders.service import ReminderService
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore
from tests.conftest import TEST_KEY, store_env
from tests.fakes.fake_bot_api import FakeBotAPIProcess
from tests.reminders.conftest import identity
from tests.reminders.crash import kill_mid_broadcast

REPO = Path(__file__).resolve().parents[2]
RECIPIENTS = 120
FIRST_CHAT = 7000
CLI_RATE = 20  # slow enough to kill it midway, fast enough for a short test
KILL_AFTER = 30  # messages the fake has received


async def control(session: ClientSession, path: str) -> Any:
    async with session.get(path) as response:
        response.raise_for_status()
        return (await response.json())["result"]


async def test_killed_mid_broadcast_every_recipient_gets_it_once_but_the_in_flight(
    tmp_path: Path, store_settings: dict[str, Any]
) -> None:
    settings = Settings(
        _env_file=None,
        **store_settings,
        id_hash_key=TEST_KEY,
        broadcast_paid=True,
        broadcast_rate=1000,
    )
    db = await open_store(settings)
    subscriptions = SubscriptionStore(db)
    chats = [str(FIRST_CHAT + i) for i in range(RECIPIENTS)]
    for i, chat in enumerate(chats):
        digits = identity(i)
        await subscriptions.subscribe(
            "telegram", chat, id_hmac(TEST_KEY.encode(), digits), mask_id(digits), "ar"
        )

    fake = FakeBotAPIProcess(delay=0.02)
    fake.start()
    try:
        env = {
            **os.environ,
            **store_env(settings),
            "ID_HASH_KEY": TEST_KEY,
            "TELEGRAM_BOT_TOKEN": "123:ABC",
            "TELEGRAM_API_URL": fake.root_url,
            "BROADCAST_RATE": str(CLI_RATE),
            "BROADCAST_PAID": "false",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # cwd is the temporary folder: import this checkout's bot, not an installed one.
            "PYTHONPATH": str(REPO),
        }
        async with ClientSession(fake.root_url) as session:

            async def sent() -> int:
                stats = await control(session, "/_control/stats")
                return int(stats["by_method"].get("sendmessage", 0))

            in_flight = await kill_mid_broadcast(
                ["--audience", "all", "--text", "تحديث مهم", "--yes"],
                cwd=tmp_path,
                env=env,
                sent=sent,
                kill_after=KILL_AFTER,
                db=db,
                most_in_flight=workers_for(CLI_RATE),
            )

            # Start again: the bot resumes unfinished broadcasts at start-up.
            bot = Bot("123:ABC", base_url=fake.base_url, base_file_url=fake.base_file_url)
            async with bot:
                service = ReminderService(
                    db,
                    settings,
                    {"telegram": TelegramSender(bot)},
                    retry=RetryPolicy(backoff=0.01),
                )
                [report] = await service.broadcasts.resume_unfinished()
            assert report.outcome == "done"
            assert report.summary.sent == RECIPIENTS
            assert report.summary.resent == len(in_flight)

            calls = await control(session, "/_control/calls?method=sendMessage")
        delivered = Counter(str(c["params"]["chat_id"]) for c in calls if c["status"] == 200)
        assert set(delivered) == set(chats), "somebody was lost"
        twice = {chat for chat, n in delivered.items() if n > 1}
        assert twice <= in_flight, "a duplicate outside the in-flight window"
        assert max(delivered.values()) <= 2
    finally:
        fake.stop()
        await db.close()
