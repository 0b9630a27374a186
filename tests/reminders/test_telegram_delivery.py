"""Reminders and broadcasts through the real PTB Bot against the local fake Bot API, over the
bulk sender production uses (aiohttp)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from bot.channels.telegram_http import AiohttpRequest
from bot.channels.telegram_sender import TelegramSender, bulk_sender
from bot.config import Settings
from bot.conversation.replies import Message
from bot.domain.audience import Audience, Content
from bot.i18n import plain_text
from bot.reminders.delivery import RetryPolicy
from bot.reminders.sending import Blocked, Rejected, RetryLater, Transient
from bot.reminders.service import ReminderService
from bot.reminders.texts import parse_stop
from bot.store.database import Database
from tests.fakes.fake_bot_api import CHAT_NOT_FOUND, FakeBotAPI
from tests.reminders.conftest import TODAY, add_policy, identity, subscribe


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
def api_settings(api: FakeBotAPI, fast_settings: Settings) -> Settings:
    telegram = fast_settings.telegram.model_copy(
        update={"bot_token": SecretStr("123:ABC"), "api_url": api.root_url}
    )
    return fast_settings.model_copy(update={"telegram": telegram})


@pytest.fixture
async def sender(api_settings: Settings) -> AsyncIterator[TelegramSender]:
    async with bulk_sender(api_settings, 8) as bulk:
        yield bulk


@pytest.fixture
def tg(sender: TelegramSender, store: Database, api_settings: Settings) -> ReminderService:
    return ReminderService(
        store,
        api_settings,
        {"telegram": sender},
        retry=RetryPolicy(attempts=3, backoff=0.01),
        per_chat=0.0,
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
    assert "بعد 7 أيام" in plain_text(reminder.text or "")
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


async def test_the_bulk_sender_is_one_bot_on_aiohttp_with_a_connection_per_send_in_flight(
    api_settings: Settings,
) -> None:
    sender = bulk_sender(api_settings, 64)
    [bot] = sender.bots
    assert isinstance(bot.request, AiohttpRequest)
    assert bot.request._pool_size == 65
    assert sender.paid_broadcast is True
    split = bulk_sender(api_settings, 64, bots=4)
    assert len(split.bots) == 4
    assert {b.request._pool_size for b in split.bots if isinstance(b.request, AiohttpRequest)} == {
        17
    }


async def test_send_errors_map_to_delivery_outcomes(
    api: FakeBotAPI, sender: TelegramSender
) -> None:
    hello = Message("hello")
    api.inject_errors("sendMessage", [(429, 7)])
    with pytest.raises(RetryLater) as retry:
        await sender.send("51", hello)
    assert retry.value.seconds == 7
    api.block_chat(52)
    with pytest.raises(Blocked):
        await sender.send("52", hello)
    api.set_chat_fault(53, (400, "Bad Request: message is too long"))
    with pytest.raises(Rejected):
        await sender.send("53", hello)
    api.inject_errors("sendMessage", [(502,)])
    with pytest.raises(Transient):
        await sender.send("54", hello)
    await sender.send("54", hello)
    assert [m.text for m in api.sent_to(54)] == ["hello"]


async def test_a_send_that_times_out_is_transient(api: FakeBotAPI, api_settings: Settings) -> None:
    api.method_delays["sendmessage"] = 0.5
    quick = bulk_sender(
        api_settings, 2, request=lambda size: AiohttpRequest(size, read_timeout=0.05)
    )
    async with quick:
        with pytest.raises(Transient, match="timed out"):
            await quick.send("61", Message("hello"))
