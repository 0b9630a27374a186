"""Reminders reach WhatsApp as template messages: the sender against the fake Graph API (which
refuses what Meta refuses), Meta's error codes mapped to delivery outcomes, and a reminder end
to end, from the catch-up sweep to the quick reply that stops it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.whatsapp import WhatsAppBot
from bot.channels.whatsapp_api import GraphClient
from bot.channels.whatsapp_inbound import inbound
from bot.channels.whatsapp_sender import WhatsAppSender, template_param
from bot.config import Settings
from bot.conversation.replies import Message, ReminderTemplate
from bot.domain.identity import id_hmac
from bot.domain.policy import Insurer
from bot.i18n import format_gregorian, format_hijri, plain_text, translator_for
from bot.reminders.sending import (
    Blocked,
    OutsideWindow,
    Rejected,
    RetryLater,
    RetryRecipientLater,
    SendError,
    SenderUnavailable,
    Skipped,
    Transient,
)
from bot.reminders.texts import broadcast_message, expiry_message, stop_data
from bot.runtime import CHANNELS_WITH_REMINDERS, open_runtime
from bot.store.subscriptions import OUTSIDE_WINDOW
from tests.conftest import TEST_KEY
from tests.fakes.fake_graph_api import FakeGraphAPI
from tests.reminders.conftest import add_policy, identity

TEMPLATE = "policy_expiry_reminder"
WA = "966500000021"
BUPA = Insurer(code="BUPA", name_ar="بوبا العربية", name_en="Bupa Arabia")
TODAY = date(2026, 11, 18)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as fake:
        yield fake


@pytest.fixture
async def sender(graph: FakeGraphAPI) -> AsyncIterator[WhatsAppSender]:
    client = GraphClient(graph.root_url, graph.version, graph.phone_number_id, graph.token)
    await client.initialize()
    try:
        yield WhatsAppSender(client, TEMPLATE)
    finally:
        await client.shutdown()


def reminder(locale: str, days: int = 7) -> Message:
    return expiry_message(
        42, "1*******08", BUPA, TODAY + timedelta(days=days), TODAY, translator_for(locale)
    )


async def test_a_reminder_goes_as_the_template_with_five_values_and_the_stop_payload(
    graph: FakeGraphAPI, sender: WhatsAppSender
) -> None:
    await sender.send(WA, reminder("ar"))
    [seen] = graph.sent_to(WA)
    assert (seen.type, seen.template, seen.language) == ("template", TEMPLATE, "ar")
    masked, insurer, hijri, gregorian, left = (plain_text(p) for p in seen.params)
    assert (masked, insurer, left) == ("1*******08", "بوبا العربية", "7 أيام")
    assert hijri.endswith("1448 هـ") and gregorian == "25 نوفمبر 2026"
    assert seen.button_ids == (stop_data(42),)


@pytest.mark.parametrize(
    ("days", "left"),
    [
        (1, "1\u00a0day"),
        (30, "30\u00a0days"),
        (0, "today is the last day"),
        (-3, "none: it ended 3\u00a0days ago"),
    ],
)
async def test_english_reminders_name_the_time_left_with_its_plural(
    graph: FakeGraphAPI, sender: WhatsAppSender, days: int, left: str
) -> None:
    await sender.send(WA, reminder("en", days))
    [seen] = graph.sent_to(WA)
    expiry = TODAY + timedelta(days=days)
    assert seen.language == "en"
    assert seen.params == (
        "1*******08",
        "Bupa Arabia",
        format_hijri(expiry, "en"),
        format_gregorian(expiry, "en"),
        left,
    )


def test_arabic_plurals_of_the_time_left() -> None:
    def left(days: int) -> str:
        message = reminder("ar", days)
        assert message.template is not None
        return message.template.params[4]

    # One unbreakable phrase each (no-break spaces), as everywhere a count meets its unit.
    assert [left(d) for d in (1, 2, 3, 11, 100)] == [
        "يوم\u00a0واحد",
        "يومان",
        "3\u00a0أيام",
        "11\u00a0يومًا",
        "100\u00a0يوم",
    ]
    assert left(-2) == "لا شيء، فقد انتهى منذ يومين"


def test_the_telegram_text_is_unchanged_by_the_template() -> None:
    message = reminder("ar")
    assert message.template is not None
    # The text channels' message is what it was: headline, advice, footer, one stop button.
    assert message.text.count("\n\n") == 2
    assert [b.data for row in message.buttons for b in row] == [message.template.stop_data]


@pytest.mark.parametrize(
    "value",
    ["a\nb", "a\r\nb", "a\tb", "a     b", "a" + " " * 12 + "b", " \n\t ", "x\u2028y"],
)
def test_template_values_never_hold_a_newline_a_tab_or_five_spaces(value: str) -> None:
    clean = template_param(value)
    assert clean and "\n" not in clean and "\t" not in clean and "     " not in clean
    assert "\u2028" not in clean and "\r" not in clean


async def test_values_are_cleaned_before_meta_sees_them(
    graph: FakeGraphAPI, sender: WhatsAppSender
) -> None:
    dirty = ReminderTemplate(
        "en", ("1*******08", "Bupa\nArabia", "a\tb", "c      d", "7 days"), "x"
    )
    await sender.send(WA, Message("text", template=dirty))
    [seen] = graph.sent_to(WA)
    assert seen.params == ("1*******08", "Bupa Arabia", "a b", "c    d", "7 days")


async def test_the_fake_refuses_what_meta_refuses_in_a_template(
    graph: FakeGraphAPI, sender: WhatsAppSender
) -> None:
    raw = ReminderTemplate("en", ("a\nb", "b", "c", "d", "e"), "x")
    payload = {
        "messaging_product": "whatsapp",
        "to": WA,
        "type": "template",
        "template": {
            "name": TEMPLATE,
            "language": {"code": "en"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in raw.params]}
            ],
        },
    }
    for body, code in (
        (payload, 132018),
        ({**payload, "template": {**payload["template"], "name": "nope"}}, 132001),  # type: ignore[dict-item]
    ):
        with pytest.raises(Exception) as caught:
            await sender.client.send(body)
        assert getattr(caught.value, "code", None) == code
    assert not graph.sent_to(WA)


async def test_a_broadcast_without_a_template_goes_as_text(
    graph: FakeGraphAPI, sender: WhatsAppSender
) -> None:
    await sender.send(WA, broadcast_message("Office closed on Thursday.", translator_for("en")))
    [seen] = graph.sent_to(WA)
    assert (seen.type, seen.text) == ("text", "Office closed on Thursday.")


@pytest.mark.parametrize(
    ("code", "status", "outcome", "check"),
    [
        (130429, 400, RetryLater, lambda e: e.seconds == 2.0),
        (131056, 400, RetryRecipientLater, lambda e: e.seconds == 6.0),
        (131026, 400, Blocked, lambda e: "131026" in e.reason),
        (131047, 400, OutsideWindow, lambda e: e.reason == OUTSIDE_WINDOW),
        (131049, 400, Skipped, lambda e: "marketing limit" in e.reason),
        (131050, 400, Skipped, lambda e: "opted out" in e.reason),
        (131000, 500, Transient, lambda e: True),
        (190, 401, SenderUnavailable, lambda e: "WHATSAPP_ACCESS_TOKEN" in e.reason),
        (0, 401, SenderUnavailable, lambda e: True),
        (100, 400, Rejected, lambda e: True),
    ],
)
async def test_meta_errors_become_delivery_outcomes(
    graph: FakeGraphAPI,
    sender: WhatsAppSender,
    code: int,
    status: int,
    outcome: type[SendError],
    check: Callable[[SendError], bool],
) -> None:
    graph.inject_error("messages", code=code, status=status)
    with pytest.raises(outcome) as caught:
        await sender.send(WA, reminder("ar"))
    assert check(caught.value)
    await sender.send(WA, reminder("ar"))  # the next one goes
    assert len(graph.sent_to(WA)) == 1


async def test_an_unreachable_graph_api_is_transient(sender: WhatsAppSender) -> None:
    client = GraphClient("http://127.0.0.1:9", "v25.0", "1", "t", connect_timeout=0.5)
    await client.initialize()
    try:
        with pytest.raises(Transient):
            await WhatsAppSender(client, TEMPLATE).send(WA, reminder("ar"))
    finally:
        await client.shutdown()


def test_whatsapp_conversations_offer_reminders() -> None:
    assert "whatsapp" in CHANNELS_WITH_REMINDERS


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "never happened"
        await asyncio.sleep(0.01)


async def test_a_subscriber_gets_the_template_on_the_due_day_and_its_quick_reply_stops_it(
    tmp_path: Path, graph: FakeGraphAPI
) -> None:
    settings = Settings(
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        id_hash_key=TEST_KEY,
        captcha_workers=0,
        broadcast_paid=True,
        broadcast_rate=1000,
        whatsapp_access_token=graph.token,
        whatsapp_phone_number_id=graph.phone_number_id,
        whatsapp_app_secret="secret",
        whatsapp_verify_token="verify",
        whatsapp_api_url=graph.root_url,
        whatsapp_api_version=graph.version,
    )
    runtime = await open_runtime(settings)
    real = datetime.now(settings.app.tz) + timedelta(minutes=1)
    now = max(real, datetime.combine(real.date(), time(9, 30), tzinfo=settings.app.tz))
    core = App(runtime, reminder_clock=lambda: now)
    whatsapp = WhatsAppBot(core, settings)
    try:
        today = now.astimezone(settings.app.tz).date()
        await add_policy(runtime.db, identity(1), expiry=today + timedelta(days=7))
        subscriptions = core.reminders.subscriptions
        digits = identity(1)
        hmac = id_hmac(TEST_KEY.encode(), digits)
        await subscriptions.subscribe("whatsapp", WA, hmac, "1*******08", "ar")
        await runtime.db.write("UPDATE subscriptions SET consented_at = '2000-01-01T00:00:00Z'")
        await whatsapp.start()
        await core.start()
        await eventually(lambda: len(graph.sent_to(WA)) == 1)
        [sent] = graph.sent_to(WA)
        assert sent.type == "template" and plain_text(sent.params[4]) == "7 أيام"
        [stop] = sent.button_ids
        tap = graph.inbound_template_reply(WA, stop, "إيقاف التذكير")
        whatsapp.inbox.submit(inbound(tap))
        await eventually(lambda: len(graph.sent_to(WA)) == 2)
        await whatsapp.inbox.drain()
        assert await subscriptions.list_for_chat("whatsapp", WA) == []
    finally:
        await core.stop()
        await whatsapp.stop()
        await runtime.close()
