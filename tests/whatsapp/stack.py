"""The bot's core with WhatsApp on, as `python -m bot` runs it (the real HTTP app, SQLite, the
broadcast runner), against a fake Graph API; WhatsApp subscribers and signed webhook posts.

With a `VirtualClock`, bulk sending is paced on it and every bulk send is "on the wire" while
it runs, so the fake (on the same clock) records each at the virtual moment pacing let it go.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.app import App
from bot.channels.whatsapp import WhatsAppBot
from bot.channels.whatsapp_sender import bulk_pace
from bot.config import Settings
from bot.conversation.replies import Message
from bot.domain.identity import id_hmac, mask_id
from bot.reminders.pacing import Timer
from bot.reminders.sending import Sender
from bot.runtime import Runtime, open_runtime
from bot.store.activity import ChatActivity
from tests.conftest import TEST_KEY
from tests.fakes.fake_graph_api import FakeGraphAPI
from tests.fakes.virtual_clock import VirtualClock
from tests.reminders.conftest import identity

SECRET, VERIFY = "app-secret", "verify-me"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until_listening(http: aiohttp.ClientSession, base_url: str) -> None:
    """Wait until the bot's HTTP app answers /healthz (about 10 s at most)."""
    for _ in range(500):
        try:
            async with http.get(base_url + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.02)
    raise AssertionError("the server never listened")


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "never happened"
        await asyncio.sleep(0.01)


class OnTheWire:
    """The channel's bulk sender, each send marked on the wire of the virtual clock."""

    def __init__(self, sender: Sender, clock: VirtualClock) -> None:
        self.sender, self.clock = sender, clock
        self.channel = sender.channel

    async def send(self, chat_id: str, message: Message) -> str | None:
        with self.clock.on_the_wire():
            return await self.sender.send(chat_id, message)


# The `store_settings` fixture's value: the database settings of one test (tests/conftest.py).
StoreSettings = dict[str, Any]


class Stack:
    def __init__(
        self,
        where: Path | StoreSettings,
        graph: FakeGraphAPI,
        *,
        clock: VirtualClock | None = None,
        rate: float = 1000.0,
    ) -> None:
        self.graph, self.clock = graph, clock
        self.settings = Settings(
            _env_file=None,
            **({"database_path": where / "bot.sqlite3"} if isinstance(where, Path) else where),
            id_hash_key=TEST_KEY,
            captcha_workers=0,
            web_port=free_port(),
            whatsapp_access_token=graph.token,
            whatsapp_phone_number_id=graph.phone_number_id,
            whatsapp_app_secret=SECRET,
            whatsapp_verify_token=VERIFY,
            whatsapp_api_url=graph.root_url,
            whatsapp_api_version=graph.version,
            whatsapp_rate=rate,
        )
        self.url = f"http://127.0.0.1:{self.settings.web.port}"

    async def __aenter__(self) -> Stack:
        self.runtime: Runtime = await open_runtime(self.settings)
        clock = self.clock
        self.core = App(self.runtime, pacing=Timer(clock, clock.sleep) if clock else None)
        self.whatsapp = WhatsAppBot(self.core, self.settings)
        if clock is not None:
            self.core.add_sender(OnTheWire(self.whatsapp.sender, clock), bulk_pace(self.settings))
        self.core.add_channel(self.whatsapp)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.core.serve(self.stop))
        self.http = aiohttp.ClientSession()
        await until_listening(self.http, self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.runtime.close()

    async def post(self, payload: dict[str, Any]) -> int:
        body = self.graph.encode(payload)
        headers = {"X-Hub-Signature-256": self.graph.sign(body, SECRET)}
        async with self.http.post(self.url + "/whatsapp/webhook", data=body, headers=headers) as r:
            return r.status

    async def say(self, wa_id: str, text: str) -> None:
        """`wa_id` writes to the bot and gets its answer."""
        before = len(self.graph.sent_to(wa_id))
        assert await self.post(self.graph.inbound_text(wa_id, text)) == 200
        await eventually(lambda: len(self.graph.sent_to(wa_id)) > before)

    async def subscribe(self, wa_id: str, *indexes: int) -> None:
        """`wa_id` subscribed to reminders for the numbers `identity(i)` (policies added by
        the test), as the conversation records it."""
        for index in indexes:
            digits = identity(index)
            await self.core.reminders.subscriptions.subscribe(
                "whatsapp", wa_id, id_hmac(TEST_KEY.encode(), digits), mask_id(digits), "ar"
            )

    async def wrote(self, wa_id: str, seconds_ago: float = 60.0) -> None:
        """`wa_id` wrote to the bot `seconds_ago` (what the webhook records)."""
        await ChatActivity(self.runtime.db, "whatsapp").record(wa_id, time.time() - seconds_ago)
