"""End-to-end harness: the real PTB stack and SQLite store, a fake Telegram, a person typing.

`BotUnderTest` runs the production lifecycle (`bot.channels.telegram.polling`) against the
`FakeBotAPI`; `Person` plays one chat and returns exactly the replies one action produced
(as `plain_text`: bidi isolates stripped, no-break spaces as spaces), waiting on "the bot has
processed everything" rather than on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import pytest
import time_machine

from bot.app import App
from bot.channels.telegram import TelegramApp, build_application, polling, reminders_of
from bot.config import Settings
from bot.conversation.engine import Engine
from bot.domain.policy import today_in
from bot.i18n import plain_text, translator_for
from bot.importer.demo import load_demo
from bot.reminders.service import ReminderService
from bot.runtime import Runtime, open_runtime
from tests.fakes.fake_bot_api import FakeBotAPI, Outgoing

TOKEN = "123:ABC"
CODE = "123456"
AR = translator_for("ar")
EN = translator_for("en")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_settings(tmp_path: Path, api: FakeBotAPI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_path": tmp_path / "bot.sqlite3",
        "id_hash_key": "k",
        "captcha_test_code": CODE,
        "captcha_workers": 0,
        "telegram_bot_token": TOKEN,
        "telegram_api_url": api.root_url,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@dataclass(frozen=True)
class Reply:
    """One message the bot sent, as the person sees it."""

    text: str  # text or caption, bidi isolates removed, no-break spaces as spaces
    buttons: list[str]
    photo: bytes | None
    message_id: int | None

    @classmethod
    def of(cls, sent: Outgoing) -> Reply:
        return cls(plain_text(sent.body or ""), sent.button_texts, sent.photo, sent.message_id)


class BotUnderTest:
    """The bot as `python -m bot` runs it (polling), started and stopped at will."""

    def __init__(self, api: FakeBotAPI, settings: Settings) -> None:
        self.api = api
        self.settings = settings
        self.clock_offset = 0.0  # seconds added to the engine's clock
        # The reminder pass's clock: today at 06:00 in Riyadh, before REMINDER_TIME (09:00),
        # so no pass runs by itself at start-up unless a test moves it.
        today = today_in(settings.app.tz)
        self.reminder_now = datetime.combine(today, day_time(6, 0), tzinfo=settings.app.tz)
        self._runtime: Runtime | None = None
        self._app: TelegramApp | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._demo_loaded = False

    @property
    def app(self) -> TelegramApp:
        assert self._app is not None, "the bot is not running"
        return self._app

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "the bot is not running"
        return self._runtime

    @property
    def engine(self) -> Engine:
        return self.runtime.conversations("telegram").engine

    async def start(self) -> None:
        assert self._stack is None
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            self._runtime = await open_runtime(self.settings)
            stack.push_async_callback(self._close_runtime)
            if not self._demo_loaded:
                report = await load_demo(self._runtime.db, self.settings)
                assert not report.errors, report.errors
                self._demo_loaded = True
            self.engine.clock = lambda: time.time() + self.clock_offset
            core = App(self._runtime, reminder_clock=lambda: self.reminder_now)
            self._app = build_application(self.settings, core)
            await stack.enter_async_context(polling(self._app, self.settings, poll_timeout=0.5))
            # As `python -m bot` runs it: the core's scheduler once the channel is up, stopped
            # before the channel stops.
            await core.start()
            stack.push_async_callback(core.stop)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def _close_runtime(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.close()

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self._app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def reminders(self) -> ReminderService:
        return reminders_of(self.app)

    def reminder_day(self, days_from_today: int, hour: int = 10) -> None:
        """Move the reminder pass's clock to another day (10:00 Riyadh: after REMINDER_TIME)."""
        day = today_in(self.settings.app.tz) + timedelta(days=days_from_today)
        self.reminder_now = datetime.combine(day, day_time(hour, 0), tzinfo=self.settings.app.tz)

    def skip(self, seconds: float) -> None:
        """Let time pass for the engine (code expiry, cool-downs) without waiting."""
        self.clock_offset += seconds

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until every queued update was fetched and fully handled (replies sent)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # The fake forgets an update once a later getUpdates confirms it, which PTB sends
        # right after putting the batch into its update queue.
        while self.api.pending_updates:
            if loop.time() > deadline:
                raise TimeoutError(f"{self.api.pending_updates} updates never fetched")
            await asyncio.sleep(0.002)
        # PTB marks an update done (task_done) once its handler and error handler returned.
        await asyncio.wait_for(self.app.update_queue.join(), deadline - loop.time())

    def person(self, chat_id: int = 501, *, language: str | None = "ar") -> Person:
        return Person(self, chat_id, language)


class Person:
    """One chat; every action returns the replies it produced, exactly."""

    def __init__(self, bot: BotUnderTest, chat_id: int, language: str | None) -> None:
        self.bot = bot
        self.api = bot.api
        self.chat_id = chat_id
        self.language = language

    @property
    def seen(self) -> list[Reply]:
        return [Reply.of(o) for o in self.api.sent_to(self.chat_id)]

    async def act(self, enqueue: Callable[[], object], expect: int | None = None) -> list[Reply]:
        before = len(self.api.sent_to(self.chat_id))
        enqueue()
        await self.bot.settle()
        new = self.seen[before:]
        if expect is not None:
            assert len(new) == expect, [r.text for r in new]
        return new

    async def say(self, text: str, expect: int | None = 1) -> list[Reply]:
        return await self.act(
            lambda: self.api.user_text(self.chat_id, text, language_code=self.language), expect
        )

    async def tap(self, label: str, expect: int | None = 1) -> list[Reply]:
        """Tap a button by its label on the latest message showing it."""
        queries: list[str] = []

        def enqueue() -> None:
            update = self.api.user_tap(self.chat_id, label, language_code=self.language)
            queries.append(update["callback_query"]["id"])

        replies = await self.act(enqueue, expect)
        self.assert_answered(queries[0])
        return replies

    async def press(
        self, data: str, message_id: int | None = None, expect: int | None = 1
    ) -> list[Reply]:
        """A callback with any data, e.g. forged, or from an old message."""
        queries: list[str] = []

        def enqueue() -> None:
            update = self.api.user_callback(
                self.chat_id, data, message_id, language_code=self.language
            )
            queries.append(update["callback_query"]["id"])

        replies = await self.act(enqueue, expect)
        self.assert_answered(queries[0])
        return replies

    def assert_answered(self, query_id: str) -> None:
        answered = [
            c.params.get("callback_query_id") for c in self.api.calls_to("answerCallbackQuery")
        ]
        assert query_id in answered, "the button's spinner was never stopped"

    async def lookup(self, path_label: str, number: str) -> Reply:
        """Path button, number, code: the result card."""
        await self.tap(path_label)
        [photo] = await self.say(number)
        assert photo.photo is not None and photo.photo.startswith(PNG_MAGIC)
        [card] = await self.say(CODE)
        return card


@pytest.fixture
async def api(frozen_clock: time_machine.Traveller) -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, api: FakeBotAPI, store_settings: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, api, **store_settings)


@pytest.fixture
async def bot(api: FakeBotAPI, settings: Settings) -> AsyncIterator[BotUnderTest]:
    under_test = BotUnderTest(api, settings)
    await under_test.start()
    try:
        yield under_test
    finally:
        await under_test.stop()


StartBot = Callable[..., Any]


@pytest.fixture
async def start_bot(
    tmp_path: Path, api: FakeBotAPI, store_settings: dict[str, Any]
) -> AsyncIterator[StartBot]:
    """`await start_bot(lookups_per_hour=2)`: a bot with changed settings."""
    started: list[BotUnderTest] = []

    async def start(**overrides: Any) -> BotUnderTest:
        under_test = BotUnderTest(api, make_settings(tmp_path, api, **store_settings, **overrides))
        await under_test.start()
        started.append(under_test)
        return under_test

    try:
        yield start
    finally:
        for under_test in started:
            await under_test.stop()
