"""Reminders and broadcasts through the real PTB Bot against the local fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from telegram import Bot

from bot.config import Settings
from bot.i18n import strip_isolates
from bot.reminders.audience import Audience, Content
from bot.reminders.delivery import RetryPolicy
from bot.reminders.pacing import ChatSpacing
from bot.reminders.service import ReminderService
from bot.reminders.telegram_sender import TelegramSender
from bot.reminders.texts import parse_stop
from bot.store.database import Database
from tests.fakes.fake_bot_api import CHAT_NOT_FOUND, FakeBotAPI
from tests.reminders.conftest import TODAY, add_policy, identity, subscribe


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def tg(
    api: FakeBotAPI, store: Database, fast_settings: Settings
) -> AsyncIterator[ReminderService]:
    bot = Bot("123:ABC", base_url=api.base_url, base_file_url=api.base_file_url)
    async with bot:
        yield ReminderService(
            store,
            fast_settings,
            {"telegram": TelegramSender(bot, paid_broadcast=True)},
            retry=RetryPolicy(attempts=3, backoff=0.01),
            spacing=ChatSpacing(0.0),
            progress_every=0.05,
            today=lambda: TODAY,
        )


async def test_a_reminder_arrives_with_its_stop_button_which_stops_it(
    api: FakeBotAPI, tg: ReminderService, store: Database
) -> None:
    await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
    sub = await subscribe(tg, 11, identity(1))
    await tg.reminder_pass.run(TODAY)
    [reminder] = api.sent_to(11)
    assert "بعد 7 أيام" in strip_isolates(reminder.text or "")
    assert reminder.parse_mode is None
    assert reminder.params.get("allow_paid_broadcast") is True
    [button] = reminder.buttons
    assert button["text"] == "إيقاف هذه التذكيرات"
    # What the chat side does with the press: parse the data, stop that subscription.
    assert parse_stop(button["callback_data"]) == sub
    assert await tg.subscriptions.unsubscribe(sub, "telegram", 11)
    await tg.reminder_pass.run(TODAY + timedelta(days=6))
    assert len(api.sent_to(11)) == 1


async def test_blocked_and_missing_chats_are_marked_blocked_and_unsubscribed(
    api: FakeBotAPI, tg: ReminderService, store: Database
) -> None:
    for chat in (21, 22, 23):
        await subscribe(tg, chat, identity(chat))
    api.block_chat(21)
    api.set_chat_fault(22, (400, CHAT_NOT_FOUND))
    broadcast_id = await tg.broadcasts.create(Audience.all(), Content.custom("hello"), "cli:t")
    report = await tg.broadcasts.run(broadcast_id)
    assert (report.summary.sent, report.summary.blocked) == (1, 2)
    assert await tg.subscriptions.count_active() == 1
    # Exactly one call each: blocks are not retried.
    assert sorted(c.chat_id for c in api.calls_to("sendMessage")) == [21, 22, 23]


async def test_429_pauses_and_delivers_and_5xx_is_retried(
    api: FakeBotAPI, tg: ReminderService, store: Database
) -> None:
    for chat in range(31, 36):
        await subscribe(tg, chat, identity(chat))
    api.inject_errors("sendMessage", [(429, 1), (500,), (502,)])
    broadcast_id = await tg.broadcasts.create(Audience.all(), Content.custom("hello"), "cli:t")
    report = await tg.broadcasts.run(broadcast_id)
    assert report.summary.sent == 5 and report.summary.failed == 0
    calls = api.calls_to("sendMessage")
    assert [c.status for c in calls].count(200) == 5 and len(calls) == 8
    assert sorted(c.chat_id for c in calls if c.ok) == list(range(31, 36))


async def test_a_rejected_message_is_failed_with_the_reason_not_retried(
    api: FakeBotAPI, tg: ReminderService, store: Database
) -> None:
    await subscribe(tg, 41, identity(41))
    api.set_chat_fault(41, (400, "Bad Request: message is too long"))
    broadcast_id = await tg.broadcasts.create(Audience.all(), Content.custom("hello"), "cli:t")
    report = await tg.broadcasts.run(broadcast_id)
    assert report.summary.failed == 1
    assert await tg.broadcasts.store.failure_reasons(broadcast_id) == [("Message is too long", 1)]
    assert len(api.calls_to("sendMessage")) == 1
