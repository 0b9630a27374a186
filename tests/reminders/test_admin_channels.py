"""The admin's /broadcast dialogue with two channels delivering: it asks which channel first,
and the broadcast reaches that channel's subscribers only."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from bot.config import Settings
from bot.conversation.buttons import (
    BroadcastAudience,
    BroadcastChannel,
    BroadcastSend,
    ButtonData,
    encode,
)
from bot.conversation.events import Action, Button, Command, Text
from bot.conversation.replies import Message
from bot.domain.audience import Audience, ChannelChoice
from bot.domain.identity import id_hmac, mask_id
from bot.i18n import plain_text, translator_for
from bot.reminders import admin_texts
from bot.reminders.admin import AdminAnswer, AdminDialogue
from bot.reminders.pacing import Pace
from bot.reminders.service import ReminderService
from bot.store.activity import ChatActivity
from bot.store.database import Database
from tests.conftest import TEST_KEY
from tests.reminders.conftest import TODAY, FakeSender, add_policy, identity

AR = translator_for("ar")
ADMIN = "900"
WA = "966500000031"


@pytest.fixture
def telegram() -> FakeSender:
    return FakeSender("telegram")


@pytest.fixture
def whatsapp() -> FakeSender:
    return FakeSender("whatsapp")


@pytest.fixture
def two_channels(
    store: Database, fast_settings: Settings, telegram: FakeSender, whatsapp: FakeSender
) -> ReminderService:
    return ReminderService(
        store,
        fast_settings,
        {"telegram": telegram, "whatsapp": whatsapp},
        paces={"whatsapp": Pace(1000, per_chat=0.0, window=24 * 3600.0)},
        per_chat=0.0,
        today=lambda: TODAY,
    )


async def subscribers(service: ReminderService, db: Database) -> None:
    for channel, chat, index in (("telegram", "1", 1), ("telegram", "2", 2), ("whatsapp", WA, 3)):
        digits = identity(index)
        await add_policy(db, digits, expiry=TODAY + timedelta(days=20))
        await service.subscriptions.subscribe(
            channel, chat, id_hmac(TEST_KEY.encode(), digits), mask_id(digits), "ar"
        )
    await ChatActivity(db, "whatsapp").record(WA, time.time() - 3600)


def tap(button: ButtonData) -> Action:
    return Button(encode(button))


def texts_of(answer: AdminAnswer | None) -> list[str]:
    assert answer is not None
    return [reply.text for reply in answer.replies if isinstance(reply, Message)]


async def test_the_dialogue_asks_the_channel_and_the_broadcast_keeps_to_it(
    two_channels: ReminderService, store: Database, telegram: FakeSender, whatsapp: FakeSender
) -> None:
    await subscribers(two_channels, store)
    dialogue = AdminDialogue(two_channels, store, "telegram")

    first = await dialogue.handle(ADMIN, Command("broadcast"), AR)
    assert first is not None
    [question] = first.replies
    assert question == admin_texts.choose_channel(AR)
    assert isinstance(question, Message)
    assert [b.label for row in question.buttons for b in row] == [
        "تيليجرام",
        "واتساب",
        "كل القنوات",
        "إلغاء",
    ]

    audiences = await dialogue.handle(ADMIN, tap(BroadcastChannel("whatsapp")), AR)
    assert texts_of(audiences) == [admin_texts.choose_audience(AR, 1).text]  # WhatsApp's only
    await dialogue.handle(ADMIN, tap(BroadcastAudience("all")), AR)
    preview = await dialogue.handle(ADMIN, Text("تحديث مهم"), AR)
    *_, confirm = texts_of(preview)
    expected = admin_texts.confirm(
        AR, Audience.all(), None, 1, channel=ChannelChoice.WHATSAPP, windowed=True
    )
    assert confirm == expected.text
    assert "القناة: واتساب." in confirm and "خلال آخر 24 ساعة" in plain_text(confirm)

    sent = await dialogue.handle(ADMIN, tap(BroadcastSend()), AR)
    assert sent is not None and sent.start is not None
    broadcast_id, total = sent.start
    assert total == 1
    report = await two_channels.broadcasts.run(broadcast_id)
    assert report.outcome == "done" and report.summary.sent == 1
    assert [chat for chat, _ in whatsapp.sent] == [WA]
    assert telegram.sent == []


async def test_a_forged_channel_is_stale_and_a_template_names_no_window(
    two_channels: ReminderService, store: Database
) -> None:
    await subscribers(two_channels, store)
    dialogue = AdminDialogue(two_channels, store, "telegram")
    await dialogue.handle(ADMIN, Command("broadcast"), AR)
    forged = await dialogue.handle(ADMIN, tap(BroadcastChannel("sms")), AR)
    assert texts_of(forged) == [admin_texts.stale(AR).text]

    await dialogue.handle(ADMIN, tap(BroadcastChannel("all")), AR)
    await dialogue.handle(ADMIN, tap(BroadcastAudience("all")), AR)
    preview = await dialogue.handle(ADMIN, Button("bc:template"), AR)
    *_, confirm = texts_of(preview)
    # The template is approved on WhatsApp: no window to warn about; three numbers, one each.
    assert (
        confirm == admin_texts.confirm(AR, Audience.all(), None, 3, channel=ChannelChoice.ALL).text
    )
