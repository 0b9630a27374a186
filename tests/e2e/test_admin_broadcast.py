"""An admin's /broadcast dialogue end to end: the real PTB stack, store and delivery runner.

Subscribers are made the way people subscribe (a lookup, then «Remind me» on the result
card). The broadcast itself goes out through the bulk Bots (same fake Bot API) in the
background, so its messages are awaited on the fake, not through a Person's settle; the
admin's progress message is edited into the final report when delivery is over.
"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from bot.channels.telegram import CHANNEL
from bot.conversation import consent_texts, texts
from bot.conversation.buttons import BroadcastSend, encode
from bot.conversation.replies import Message
from bot.domain.audience import Audience
from bot.domain.policy import today_in
from bot.i18n import plain_text
from bot.reminders import admin_texts
from bot.reminders.texts import expiry_message, local_time_text
from bot.store.broadcasts import BroadcastStatus, BroadcastSummary
from bot.store.insurers import all_insurers
from tests.e2e.conftest import AR, BotUnderTest, Person, Reply, StartBot
from tests.fakes.fake_bot_api import FakeBotAPI, Fault

ADMIN = 900
CITIZEN = AR._("Citizen")
RESIDENT = AR._("Resident / visitor")
REMIND = AR._("🔔 Remind me to renew")
ALL = AR._("All subscribers")
EXPIRING_30 = AR._("Expiring in 30 days")
EXPIRED = AR._("Already expired")
BY_INSURER = AR._("By insurer")
TEMPLATE = AR._("Built-in reminder")
SEND = AR._("Send")
CANCEL = AR._("Cancel")
STOP_SENDING = AR._("Stop sending")
STOP_THIS = AR._("Stop these reminders")
STOP_ALL = AR._("Stop all reminders")

# chat -> (path, number): demo policies (see bot/data/demo_policies.csv), dated from today.
BUPA_200 = 601  # 1000000008, BUPA, 200 days left
TAWUNIYA_30 = 602  # 1012345672, TAWUNIYA, 30 days left
MEDGULF_7 = 603  # 1023456781, MEDGULF, 7 days left
BUPA_120 = 604  # 2000000006 (iqama), BUPA, 120 days left
NUMBERS = {
    BUPA_200: (CITIZEN, "1000000008"),
    TAWUNIYA_30: (CITIZEN, "1012345672"),
    MEDGULF_7: (CITIZEN, "1023456781"),
    BUPA_120: (RESIDENT, "2000000006"),
}

TYPED = "تنبيه: <b>جدّد</b> تأمينك الصحي قبل انتهائه *الآن*.\nمع التحية"


def plain(message: Message) -> str:
    return plain_text(message.text)


def labels(message: Message) -> list[str]:
    return [b.label for row in message.buttons for b in row]


@pytest.fixture
async def bot(start_bot: StartBot) -> BotUnderTest:
    """A bot with one admin, paced so that nothing in these tests waits on the rate."""
    started: BotUnderTest = await start_bot(
        admin_ids=[ADMIN], broadcast_rate=1000, broadcast_paid=True
    )
    return started


async def subscribe(bot: BotUnderTest, *chats: int) -> None:
    """Each chat looks its number up and taps «Remind me» on the result card."""
    for chat_id in chats:
        person = bot.person(chat_id)
        await person.say("/start")
        path, number = NUMBERS[chat_id]
        card = await person.lookup(path, number)
        assert REMIND in card.buttons
        [confirmation] = await person.tap(REMIND)
        assert confirmation.text.startswith("🔔")
        assert len(await bot.reminders.subscriptions.list_for_chat(CHANNEL, chat_id)) == 1


def counts(api: FakeBotAPI, chats: list[int]) -> dict[int, int]:
    return {chat_id: len(api.sent_to(chat_id)) for chat_id in chats}


def text_of_latest(api: FakeBotAPI, chat_id: int) -> str:
    latest = api.last_sent(chat_id)
    assert latest is not None
    return plain_text(latest.body or "")


async def only_broadcast(bot: BotUnderTest) -> BroadcastSummary:
    [summary] = await bot.reminders.broadcasts.recent()
    return summary


async def final_report(api: FakeBotAPI, progress: Reply, timeout: float = 5.0) -> str:
    """Wait until the progress message lost its «Stop sending» button: the report replaced
    it (progress edits keep the button). Returns the report, isolates removed."""
    assert progress.message_id is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = api.message(ADMIN, progress.message_id)
        assert message is not None
        if "reply_markup" not in message:
            return plain_text(message["text"])
        if loop.time() > deadline:
            raise TimeoutError(f"no report; the progress message says {message['text']!r}")
        await asyncio.sleep(0.01)


def report_lines(
    broadcast_id: int,
    total: int,
    sent: int,
    *,
    failed: int = 0,
    blocked: int = 0,
    skipped: int = 0,
    cancelled: bool = False,
) -> list[str]:
    if cancelled:
        head = AR._("Broadcast #{id} was cancelled.", id=broadcast_id)
    else:
        head = AR._("Broadcast #{id} finished.", id=broadcast_id)
    lines = [
        head,
        AR._("Recipients: {count}", count=total),
        AR._("Sent: {count}", count=sent),
        AR._("Failed: {count}", count=failed),
        AR._("Blocked the bot: {count}", count=blocked),
        AR._("Skipped (stopped reminders): {count}", count=skipped),
        AR._("Took: {duration}", duration=AR._("less than a minute")),
    ]
    return [plain_text(line) for line in lines]


async def send_and_finish(bot: BotUnderTest, admin: Person, total: int) -> tuple[int, str]:
    """Tap «Send» on the confirmation: the progress message, then (later) the report."""
    replies = await admin.tap(SEND, expect=None)  # a fast broadcast may have edited it already
    progress = replies[0]
    summary = await only_broadcast(bot)
    assert progress.text == plain(admin_texts.starting(AR, summary.id, total))
    assert progress.buttons == [STOP_SENDING]
    [sent] = [o for o in bot.api.sent_to(ADMIN) if o.message_id == progress.message_id][:1]
    assert sent.method == "sendMessage"
    [halt] = sent.buttons
    assert halt["callback_data"] == f"bc:halt:{summary.id}"
    report = await final_report(bot.api, progress)
    return summary.id, report


async def expected_reminder(bot: BotUnderTest, chat_id: int) -> tuple[str, str]:
    """The personalised reminder this chat must get (text, stop button data)."""
    [view] = await bot.reminders.subscriptions.list_for_chat(CHANNEL, chat_id)
    assert view.insurer is not None and view.expiry_date is not None
    today: date = today_in(bot.settings.app.tz)
    sub = view.subscription
    message = expiry_message(sub.id, sub.id_masked, view.insurer, view.expiry_date, today, AR)
    return plain(message), f"stop_sub:{sub.id}"


# ---------------------------------------------------------------- not an admin


async def test_non_admin_gets_nothing_of_the_dialogue(bot: BotUnderTest) -> None:
    person = bot.person(501)
    await person.say("/start")
    unknown = [(r.text, r.buttons) for r in await person.say("/frobnicate", expect=2)]
    assert unknown[0][0] == plain(texts.unknown_command(AR))
    assert unknown[1] == (plain(texts.choose_path(AR)), labels(texts.choose_path(AR)))
    for command in ("/broadcast", "/broadcasts", "/broadcast all"):
        replies = await person.say(command, expect=2)
        assert [(r.text, r.buttons) for r in replies] == unknown, command

    stale = plain(texts.stale_button(AR))
    for forged in ("bc:send", "bc:a:all", "bc:template", "bc:halt:1"):
        notice, prompt = await person.press(forged, expect=2)
        assert (notice.text, prompt.text) == (stale, plain(texts.choose_path(AR))), forged
    assert await bot.reminders.broadcasts.recent() == []


async def test_admin_in_a_group_is_not_an_admin(bot: BotUnderTest) -> None:
    group = bot.person(-1001234567890)
    [notice] = await group.act(
        lambda: bot.api.user_text(group.chat_id, "/broadcast", user_id=ADMIN), expect=1
    )
    assert notice.text == plain(texts.private_only(AR))
    await group.act(lambda: bot.api.user_text(group.chat_id, "/broadcasts", user_id=ADMIN), 0)
    await group.act(lambda: bot.api.user_callback(group.chat_id, "bc:send", user_id=ADMIN), 0)
    # The same person in their private chat is the admin.
    [menu] = await bot.person(ADMIN).say("/broadcast")
    assert menu.text == plain(admin_texts.choose_audience(AR, 0))


# ---------------------------------------------------------------- the whole dialogue


async def test_built_in_reminder_to_all_subscribers(bot: BotUnderTest) -> None:
    api = bot.api
    chats = [BUPA_200, TAWUNIYA_30, MEDGULF_7, BUPA_120]
    await subscribe(bot, *chats)
    admin = bot.person(ADMIN)

    [menu] = await admin.say("/broadcast")
    assert menu.text == plain(admin_texts.choose_audience(AR, 4))
    assert "توجد 4 اشتراكات مفعّلة الآن." in menu.text.splitlines()
    within_7 = AR._("Expiring in 7 days")
    assert menu.buttons == [ALL, EXPIRING_30, within_7, EXPIRED, BY_INSURER, CANCEL]

    [content] = await admin.tap(ALL)
    assert content.text == plain(admin_texts.choose_content(AR, Audience.all(), None))
    assert content.buttons == [TEMPLATE, CANCEL]

    head, sample, confirm = await admin.tap(TEMPLATE, expect=3)
    assert head.text == plain(admin_texts.preview_head(AR))
    # The sample is the first recipient's own reminder, exactly as they will get it.
    first_text, first_stop = await expected_reminder(bot, BUPA_200)
    assert sample.text == first_text
    assert "1*******08" in sample.text and "بوبا العربية" in sample.text
    assert sample.buttons == [STOP_THIS]
    assert confirm.text == plain(admin_texts.confirm(AR, Audience.all(), None, 4))
    assert confirm.buttons == [SEND, CANCEL] == ["إرسال", "إلغاء"]
    assert await bot.reminders.broadcasts.recent() == []  # nothing before «Send»
    # The sample's stop button is live in the admin's chat, but it is not their subscription.
    assert api.sent_to(ADMIN)[-2].buttons[0]["callback_data"] == first_stop
    [not_yours, *_] = await admin.tap(STOP_THIS, expect=None)
    assert not_yours.text == plain(consent_texts.already_stopped(AR))
    assert await bot.reminders.subscriptions.count_active() == 4

    before = counts(api, chats)
    broadcast_id, report = await send_and_finish(bot, admin, 4)
    assert report.splitlines() == report_lines(broadcast_id, 4, 4)

    for chat_id in chats:
        new = api.sent_to(chat_id)[before[chat_id] :]
        assert len(new) == 1, (chat_id, [o.text for o in new])
        [reminder] = new
        text, stop = await expected_reminder(bot, chat_id)
        assert (reminder.method, plain_text(reminder.text or "")) == ("sendMessage", text)
        assert reminder.button_texts == [STOP_THIS]
        assert reminder.buttons[0]["callback_data"] == stop
        assert reminder.parse_mode is None
    assert first_text == text_of_latest(api, BUPA_200)
    assert "1*******72" in text_of_latest(api, TAWUNIYA_30)
    assert "التعاونية" in text_of_latest(api, TAWUNIYA_30)
    assert "2*******06" in text_of_latest(api, BUPA_120)

    summary = await only_broadcast(bot)
    assert (summary.status, summary.total, summary.sent) == (BroadcastStatus.DONE, 4, 4)
    assert (summary.failed, summary.blocked, summary.skipped) == (0, 0, 0)
    assert summary.created_by == f"{CHANNEL}:{ADMIN}"

    [listing] = await admin.say("/broadcasts")
    line = AR._(
        "#{id} · {when} · {audience} · {status}: sent {sent} of {total}, failed {failed}, "
        "blocked {blocked}",
        id=broadcast_id,
        when=local_time_text(summary.created_at, bot.settings.app.tz),
        audience=AR._("all subscribers"),
        status=AR._("finished"),
        sent=4,
        total=4,
        failed=0,
        blocked=0,
    )
    assert listing.text.splitlines() == [AR._("Recent broadcasts:"), plain_text(line)]

    # Stopping a broadcast that is over.
    [over] = await admin.press(f"bc:halt:{broadcast_id}")
    assert over.text == plain(admin_texts.not_running(AR, broadcast_id))
    assert counts(api, chats) == {c: before[c] + 1 for c in chats}


async def test_typed_text_to_those_expiring_within_30_days(bot: BotUnderTest) -> None:
    api = bot.api
    chats = [BUPA_200, TAWUNIYA_30, MEDGULF_7, BUPA_120]
    await subscribe(bot, *chats)
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    [content] = await admin.tap(EXPIRING_30)
    expiring = Audience.expiring(30)
    assert content.text == plain(admin_texts.choose_content(AR, expiring, None))

    head, sample, confirm = await admin.say(TYPED, expect=3)
    assert head.text == plain(admin_texts.preview_head(AR))
    assert sample.text == TYPED and sample.buttons == [STOP_ALL]
    assert api.sent_to(ADMIN)[-2].text == TYPED  # not a character changed, no isolates
    assert confirm.text == plain(admin_texts.confirm(AR, expiring, None, 2))
    assert confirm.buttons == [SEND, CANCEL]

    before = counts(api, chats)
    broadcast_id, report = await send_and_finish(bot, admin, 2)
    assert report.splitlines() == report_lines(broadcast_id, 2, 2)
    for chat_id in (TAWUNIYA_30, MEDGULF_7):
        [message] = api.sent_to(chat_id)[before[chat_id] :]
        assert message.text == TYPED and message.parse_mode is None
        assert message.button_texts == [STOP_ALL]
        assert message.buttons[0]["callback_data"] == "stop_all"
    for chat_id in (BUPA_200, BUPA_120):  # 200 and 120 days left: not in the audience
        assert len(api.sent_to(chat_id)) == before[chat_id]
    summary = await only_broadcast(bot)
    assert summary.content.text == TYPED and str(summary.audience) == "expiring:30"


async def test_cancel_button_at_the_confirmation(bot: BotUnderTest) -> None:
    api = bot.api
    chats = [BUPA_200, TAWUNIYA_30]
    await subscribe(bot, *chats)
    before = counts(api, chats)
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(ALL)
    await admin.say(TYPED, expect=3)

    [cancelled] = await admin.tap(CANCEL)
    assert cancelled.text == plain(admin_texts.cancelled(AR))
    # The confirmation's «Send» is an old button now.
    [stale] = await admin.tap(SEND)
    assert stale.text == plain(admin_texts.stale(AR))
    assert await bot.reminders.broadcasts.recent() == []
    assert counts(api, chats) == before


async def test_cancel_command_mid_draft(bot: BotUnderTest) -> None:
    await subscribe(bot, BUPA_200)
    before = counts(bot.api, [BUPA_200])
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(ALL)
    [cancelled] = await admin.say("/cancel")
    assert cancelled.text == plain(admin_texts.cancelled(AR))
    # The draft is gone: the content step's buttons are old, a text is no broadcast.
    [stale] = await admin.tap(TEMPLATE)
    assert stale.text == plain(admin_texts.stale(AR))
    replies = await admin.say(TYPED, expect=None)
    assert plain(admin_texts.preview_head(AR)) not in [r.text for r in replies]
    assert TYPED not in [r.text for r in replies]
    assert await bot.reminders.broadcasts.recent() == []
    assert counts(bot.api, [BUPA_200]) == before


async def test_second_tap_on_send_sends_nothing_more(bot: BotUnderTest) -> None:
    api = bot.api
    await subscribe(bot, MEDGULF_7)
    before = len(api.sent_to(MEDGULF_7))
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(ALL)
    await admin.say(TYPED, expect=3)
    broadcast_id, report = await send_and_finish(bot, admin, 1)
    assert report.splitlines() == report_lines(broadcast_id, 1, 1)

    [stale] = await admin.tap(SEND)
    assert stale.text == plain(admin_texts.stale(AR))
    [stale] = await admin.press(encode(BroadcastSend()))
    assert stale.text == plain(admin_texts.stale(AR))
    assert len(await bot.reminders.broadcasts.recent()) == 1
    assert [o.text for o in api.sent_to(MEDGULF_7)[before:]] == [TYPED]


async def test_empty_audience(bot: BotUnderTest) -> None:
    admin = bot.person(ADMIN)
    # Nobody has subscribed yet.
    [menu] = await admin.say("/broadcast")
    assert menu.text == plain(admin_texts.choose_audience(AR, 0))
    await admin.tap(ALL)
    [nobody] = await admin.say(TYPED)
    assert nobody.text == plain(admin_texts.nobody(AR, Audience.all(), None))

    # Subscribers, but none of them expired (one can only subscribe to a valid policy).
    await subscribe(bot, BUPA_200, MEDGULF_7)
    await admin.say("/broadcast")
    [content] = await admin.tap(EXPIRED)
    assert content.text == plain(admin_texts.choose_content(AR, Audience.expired(), None))
    [nobody] = await admin.tap(TEMPLATE)
    assert nobody.text == plain(admin_texts.nobody(AR, Audience.expired(), None))
    assert "/broadcast" in nobody.text
    # The draft was dropped with it.
    [stale] = await admin.tap(TEMPLATE)
    assert stale.text == plain(admin_texts.stale(AR))
    assert await bot.reminders.broadcasts.recent() == []
    [listing] = await admin.say("/broadcasts")
    assert listing.text == AR._("No broadcasts yet.")


async def test_by_insurer(bot: BotUnderTest) -> None:
    api = bot.api
    chats = [BUPA_200, TAWUNIYA_30, BUPA_120]
    await subscribe(bot, *chats)
    insurers = {i.code: i for i in await all_insurers(bot.runtime.db)}
    bupa, tawuniya = insurers["BUPA"], insurers["TAWUNIYA"]
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")

    [choice] = await admin.tap(BY_INSURER)
    assert choice.text == AR._("Subscribers insured with which company?")
    # Only insurers of current subscribers (no MedGulf, Malath, ...), in code order.
    assert choice.buttons == ["بوبا العربية", "التعاونية", CANCEL]
    assert choice.text == plain(admin_texts.choose_insurer(AR, [bupa, tawuniya]))

    [content] = await admin.tap("بوبا العربية")
    audience = Audience.by_insurer("BUPA")
    assert content.text == plain(admin_texts.choose_content(AR, audience, bupa))
    assert "بوبا العربية" in content.text
    _, sample, confirm = await admin.tap(TEMPLATE, expect=3)
    assert sample.text == (await expected_reminder(bot, BUPA_200))[0]
    assert confirm.text == plain(admin_texts.confirm(AR, audience, bupa, 2))

    before = counts(api, chats)
    broadcast_id, report = await send_and_finish(bot, admin, 2)
    assert report.splitlines() == report_lines(broadcast_id, 2, 2)
    for chat_id in (BUPA_200, BUPA_120):
        [reminder] = api.sent_to(chat_id)[before[chat_id] :]
        assert plain_text(reminder.text or "") == (await expected_reminder(bot, chat_id))[0]
        assert "بوبا العربية" in (reminder.text or "")
    assert len(api.sent_to(TAWUNIYA_30)) == before[TAWUNIYA_30]
    # The list names the insurer as the dialogue did, not by its code.
    [listing] = await bot.person(ADMIN).say("/broadcasts")
    assert "المشتركون المؤمَّن عليهم لدى بوبا العربية" in listing.text
    assert "BUPA" not in listing.text


async def test_stop_sending_while_a_family_waits_for_its_second_reminder(
    bot: BotUnderTest,
) -> None:
    api = bot.api
    family = bot.person(BUPA_120)
    await subscribe(bot, BUPA_120)
    await family.tap(AR._("New lookup"))
    card = await family.lookup(RESIDENT, "2112345679")  # a dependent on the same policy
    assert "2*******79" in card.text
    await family.tap(REMIND)
    assert len(await bot.reminders.subscriptions.list_for_chat(CHANNEL, BUPA_120)) == 2
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(ALL)
    *_, confirm = await admin.tap(TEMPLATE, expect=3)
    assert confirm.text == plain(admin_texts.confirm(AR, Audience.all(), None, 2))

    before = len(api.sent_to(BUPA_120))
    [progress, *_] = await admin.tap(SEND, expect=None)
    broadcast_id = (await only_broadcast(bot)).id
    # One reminder a second per chat: the second one waits, and the admin stops it.
    await api.wait_for_sent(BUPA_120, before + 1)
    replies = await admin.tap(STOP_SENDING, expect=None)
    assert replies[0].text == plain(admin_texts.halting(AR, broadcast_id))
    report = await final_report(api, progress)
    assert report.splitlines() == report_lines(broadcast_id, 2, 1, skipped=1, cancelled=True)
    [reminder] = api.sent_to(BUPA_120)[before:]
    assert "2*******06" in (reminder.text or "")
    summary = await only_broadcast(bot)
    assert (summary.status, summary.sent, summary.skipped) == (BroadcastStatus.CANCELLED, 1, 1)


# ---------------------------------------------------------------- delivery trouble


async def test_a_recipient_who_blocked_the_bot(bot: BotUnderTest) -> None:
    api = bot.api
    chats = [BUPA_200, TAWUNIYA_30, MEDGULF_7, BUPA_120]
    await subscribe(bot, *chats)
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(ALL)
    await admin.tap(TEMPLATE, expect=3)

    api.block_chat(TAWUNIYA_30)
    before = counts(api, chats)
    broadcast_id, report = await send_and_finish(bot, admin, 4)
    assert report.splitlines() == report_lines(broadcast_id, 4, 3, blocked=1)
    assert counts(api, chats) == {c: before[c] + (c != TAWUNIYA_30) for c in chats}
    refused = [c for c in api.calls_to("sendMessage") if c.chat_id == TAWUNIYA_30]
    assert [c.status for c in refused[-1:]] == [403]
    # The block stops that chat's reminders, and only theirs.
    subscriptions = bot.reminders.subscriptions
    assert await subscriptions.list_for_chat(CHANNEL, TAWUNIYA_30) == []
    assert await subscriptions.count_active() == 3
    summary = await only_broadcast(bot)
    assert (summary.sent, summary.blocked, summary.failed) == (3, 1, 0)


async def test_flood_control_is_waited_out(bot: BotUnderTest) -> None:
    api = bot.api
    chats = [BUPA_200, TAWUNIYA_30, MEDGULF_7]
    await subscribe(bot, *chats)
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(ALL)
    await admin.say(TYPED, expect=3)

    # The progress message goes first (untouched); the first bulk send gets a 429.
    api.inject_errors("sendMessage", [Fault(200), (429, 1)])
    before = counts(api, chats)
    broadcast_id, report = await send_and_finish(bot, admin, 3)
    assert report.splitlines() == report_lines(broadcast_id, 3, 3)
    [flooded] = [c for c in api.calls_to("sendMessage") if c.status == 429]
    assert flooded.chat_id in chats
    for chat_id in chats:
        assert [o.text for o in api.sent_to(chat_id)[before[chat_id] :]] == [TYPED]


# ---------------------------------------------------------------- the draft


async def test_too_long_text_keeps_the_draft_at_the_content_step(bot: BotUnderTest) -> None:
    await subscribe(bot, BUPA_200)
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(ALL)

    [too_long] = await admin.say("ا" * 4097)
    assert too_long.text == plain(admin_texts.bad_text(AR, 4097, 4096))
    assert "4097" in too_long.text and "4096" in too_long.text
    # Telegram counts UTF-16 units: 4050 characters, but each emoji counts twice.
    [too_long] = await admin.say("ا" * 4000 + "😀" * 50)
    assert too_long.text == plain(admin_texts.bad_text(AR, 4100, 4096))

    longest = "ا" * 4096
    head, sample, confirm = await admin.say(longest, expect=3)
    assert head.text == plain(admin_texts.preview_head(AR))
    assert sample.text == longest
    assert confirm.text == plain(admin_texts.confirm(AR, Audience.all(), None, 1))
    assert await bot.reminders.broadcasts.recent() == []


async def test_draft_survives_a_restart(bot: BotUnderTest) -> None:
    api = bot.api
    await subscribe(bot, MEDGULF_7)
    admin = bot.person(ADMIN)
    await admin.say("/broadcast")
    await admin.tap(EXPIRING_30)

    await bot.restart()
    head, sample, confirm = await admin.say(TYPED, expect=3)
    assert head.text == plain(admin_texts.preview_head(AR))
    assert sample.text == TYPED
    assert confirm.text == plain(admin_texts.confirm(AR, Audience.expiring(30), None, 1))

    before = len(api.sent_to(MEDGULF_7))
    broadcast_id, report = await send_and_finish(bot, admin, 1)
    assert report.splitlines() == report_lines(broadcast_id, 1, 1)
    assert [o.text for o in api.sent_to(MEDGULF_7)[before:]] == [TYPED]
