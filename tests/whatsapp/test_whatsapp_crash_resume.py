"""`python -m bot broadcast --channel whatsapp` is killed (SIGKILL) mid-broadcast, then resumed.

As tests/reminders/test_crash_resume.py does for Telegram: the CLI runs in a child process
against the fake Graph API, itself in another process, so it outlives the kill and keeps the
record of every message that really arrived.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from bot.channels.whatsapp_api import GraphClient
from bot.channels.whatsapp_sender import WhatsAppSender, bulk_pace
from bot.config import Settings
from bot.domain.identity import id_hmac, mask_id
from bot.reminders.delivery import RetryPolicy, workers_for
from bot.reminders.service import ReminderService
from bot.store.activity import ChatActivity
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore
from tests.conftest import TEST_KEY
from tests.fakes.fake_graph_api import FakeGraphAPIProcess
from tests.reminders.conftest import identity
from tests.reminders.crash import kill_mid_broadcast

REPO = Path(__file__).resolve().parents[2]
RECIPIENTS = 120
CLI_RATE = 20  # slow enough to kill it midway, fast enough for a short test
KILL_AFTER = 30  # messages the fake has received


async def attempts(session: ClientSession) -> list[dict[str, Any]]:
    async with session.get("/_control/attempts") as response:
        response.raise_for_status()
        found: list[dict[str, Any]] = (await response.json())["attempts"]
        return found


async def test_killed_mid_broadcast_each_whatsapp_recipient_gets_it_once_but_the_in_flight(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        id_hash_key=TEST_KEY,
        whatsapp_rate=1000,
    )
    db = await open_store(settings)
    subscriptions = SubscriptionStore(db)
    activity = ChatActivity(db, "whatsapp")
    chats = [f"96650{7000000 + i}" for i in range(RECIPIENTS)]
    for i, chat in enumerate(chats):
        digits = identity(i)
        await subscriptions.subscribe(
            "whatsapp", chat, id_hmac(TEST_KEY.encode(), digits), mask_id(digits), "ar"
        )
        await activity.record(chat, time.time() - 60)  # inside the 24-hour window

    fake = FakeGraphAPIProcess()
    fake.start()
    try:
        env = {
            **os.environ,
            "DATABASE_PATH": str(settings.database.path),
            "ID_HASH_KEY": TEST_KEY,
            "WHATSAPP_ACCESS_TOKEN": fake.token,
            "WHATSAPP_PHONE_NUMBER_ID": fake.phone_number_id,
            "WHATSAPP_APP_SECRET": "secret",
            "WHATSAPP_VERIFY_TOKEN": "verify",
            "WHATSAPP_API_URL": fake.root_url,
            "WHATSAPP_API_VERSION": fake.version,
            "WHATSAPP_RATE": str(CLI_RATE),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # cwd is the temporary folder: import this checkout's bot, not an installed one.
            "PYTHONPATH": str(REPO),
        }
        async with ClientSession(fake.control_url) as session:

            async def sent_so_far() -> int:
                return len(await attempts(session))

            in_flight = await kill_mid_broadcast(
                ["--channel", "whatsapp", "--audience", "all", "--text", "تحديث مهم", "--yes"],
                cwd=tmp_path,
                env=env,
                sent=sent_so_far,
                kill_after=KILL_AFTER,
                db=db,
                most_in_flight=workers_for(CLI_RATE),
            )

            # Start again: what the bot does at start-up (or `--resume ID`).
            client = GraphClient(fake.root_url, fake.version, fake.phone_number_id, fake.token)
            await client.initialize()
            try:
                service = ReminderService(
                    db,
                    settings,
                    {"whatsapp": WhatsAppSender(client, settings.whatsapp.reminder_template)},
                    paces={"whatsapp": bulk_pace(settings)},
                    retry=RetryPolicy(backoff=0.01),
                )
                [report] = await service.broadcasts.resume_unfinished()
            finally:
                await client.shutdown()
            assert report.outcome == "done"
            assert report.summary.sent == RECIPIENTS
            assert report.summary.resent == len(in_flight)

            sent = await attempts(session)
        delivered = Counter(str(a["to"]) for a in sent if a["code"] == 0)
        assert set(delivered) == set(chats), "somebody was lost"
        twice = {chat for chat, n in delivered.items() if n > 1}
        assert twice <= in_flight, "a duplicate outside the in-flight window"
        assert max(delivered.values()) <= 2
        # Every delivery record keeps the wamid the fake gave, for its status webhooks.
        ids = {str(a["id"]) for a in sent if a["code"] == 0}
        recorded = await db.read("SELECT message_id FROM broadcast_recipients")
        assert {str(r[0]) for r in recorded} <= ids
    finally:
        fake.stop()
        await db.close()
