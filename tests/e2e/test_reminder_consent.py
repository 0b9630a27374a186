"""Consent to expiry reminders over Telegram: opting in after a result, /reminders, stopping
(button, /stop, the word), the reminders the daily pass sends and their stop button."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path as FilePath

from bot.conversation import consent_texts, texts
from bot.domain.identity import Path
from bot.domain.policy import Insurer, today_in
from bot.domain.subscriptions import SubscriptionView
from bot.i18n import format_date, plain_text
from bot.importer.demo import demo_rows
from bot.importer.run import import_policies
from bot.reminders.texts import expiry_message
from tests.e2e.conftest import AR, EN, BotUnderTest, Person, StartBot

CITIZEN = AR._("Citizen")
RESIDENT = AR._("Resident / visitor")
REMIND = AR._("🔔 Remind me to renew")
NEW_LOOKUP = AR._("New lookup")
STOP_THIS = AR._("Stop these reminders")

IN_30_DAYS = "1012345672"  # TAWUNIYA, expires in 30 days
IN_7_DAYS = "1023456781"  # MEDGULF, expires in 7 days
IN_200_DAYS = "1000000008"  # BUPA
RESIDENT_120 = "2000000006"  # BUPA, 120 days
UNREGISTERED = "1099999904"

BUPA = Insurer(code="BUPA", name_ar="بوبا العربية", name_en="Bupa Arabia")
TAWUNIYA = Insurer(code="TAWUNIYA", name_ar="التعاونية", name_en="Tawuniya")
MEDGULF = Insurer(code="MEDGULF", name_ar="ميدغلف", name_en="MedGulf")


async def begin(bot: BotUnderTest, chat_id: int, language: str = "ar") -> Person:
    person = bot.person(chat_id, language=language)
    await person.say("/start")
    return person


def plain(text: str) -> str:
    return plain_text(text)


async def subscribe(person: Person, path: str, number: str) -> str:
    card = await person.lookup(path, number)
    assert card.buttons[0] == REMIND
    [confirmation] = await person.tap(REMIND)
    return confirmation.text


async def active(bot: BotUnderTest, chat_id: int) -> list[SubscriptionView]:
    return await bot.reminders.subscriptions.list_for_chat("telegram", chat_id)


async def test_opt_in_after_a_valid_result_says_when_reminders_come_and_how_to_stop(
    bot: BotUnderTest,
) -> None:
    person = await begin(bot, 601)
    card = await person.lookup(CITIZEN, IN_30_DAYS)
    assert card.buttons == [REMIND, NEW_LOOKUP]

    [confirmation] = await person.tap(REMIND)
    today = today_in(bot.settings.app.tz)
    expiry = today + timedelta(days=30)
    # REMINDER_DAYS 30,7,1: the 30-day one falls on today, so it is not promised.
    assert confirmation.text == plain(
        "\n".join(
            [
                AR._("🔔 Reminders are on for number {masked}.", masked="1*******72"),
                AR._(
                    "Its policy with {insurer} ends on {date}. I will write to you:",
                    insurer="التعاونية",
                    date=format_date(expiry, "ar"),
                ),
                "• قبل الانتهاء بـ7 أيام",
                "• قبل الانتهاء بيوم واحد",
                "• في يوم الانتهاء نفسه",
                AR._("If the policy is renewed, the reminders follow the new date by themselves."),
                "",
                AR._(
                    "To stop, tap the button below, send /stop or the word «stop». "
                    "/reminders lists your reminders."
                ),
            ]
        )
    )
    assert "أرسل /stop أو كلمة «إيقاف»" in confirmation.text
    assert confirmation.buttons == [STOP_THIS, NEW_LOOKUP]
    [subscription] = await active(bot, 601)
    assert subscription.subscription.id_masked == "1*******72"
    assert subscription.subscription.locale == "ar"
    assert subscription.expiry_date == expiry

    # A second tap does not subscribe twice.
    [again] = await person.tap(REMIND)
    assert again.text.startswith(
        plain(AR._("Reminders for number {masked} are already on.", masked="1*******72"))
    )
    assert len(await active(bot, 601)) == 1


async def test_no_offer_when_there_is_nothing_ahead_to_remind_of(bot: BotUnderTest) -> None:
    cases = (
        (CITIZEN, "1045678909"),  # expired 20 days ago
        (CITIZEN, "1056789017"),  # cancelled
        (RESIDENT, "2145678906"),  # suspended
        (RESIDENT, "2156789014"),  # expires today: no reminder could still come
        (CITIZEN, UNREGISTERED),
    )
    for chat_id, (path, number) in enumerate(cases, start=620):
        card = await (await begin(bot, chat_id)).lookup(path, number)
        assert card.buttons == [NEW_LOOKUP], number
        assert await active(bot, chat_id) == []


async def test_a_result_for_someone_else_replaces_the_offer_so_an_old_button_is_stale(
    bot: BotUnderTest,
) -> None:
    person = await begin(bot, 603)
    await person.lookup(CITIZEN, IN_200_DAYS)
    first_card = person.api.last_sent(603)
    assert first_card is not None and first_card.message_id is not None
    await person.tap(NEW_LOOKUP)
    await person.lookup(RESIDENT, RESIDENT_120)
    remind_first = str(first_card.buttons[0]["callback_data"])
    assert remind_first.startswith("remind:")
    stale, _prompt = await person.press(remind_first, first_card.message_id, expect=2)
    assert stale.text == plain(texts.stale_button(AR).text)
    assert await active(bot, 603) == []
    # The newest card's button still works, even after other messages.
    await person.say("مرحبا")
    await person.tap(REMIND)
    [subscription] = await active(bot, 603)
    assert subscription.subscription.id_masked == "2*******06"


async def test_reminders_lists_them_with_a_stop_button_each(bot: BotUnderTest) -> None:
    person = await begin(bot, 604)
    [empty] = await person.say("/reminders")
    assert empty.text == plain(consent_texts.reminder_list(AR, [], []).text)

    await subscribe(person, CITIZEN, IN_30_DAYS)
    await person.tap(NEW_LOOKUP)
    await subscribe(person, RESIDENT, RESIDENT_120)
    [listing] = await person.say("/reminders")
    today = today_in(bot.settings.app.tz)
    assert listing.text.splitlines() == [
        "تصلك تذكيرات الانتهاء لرقمين:",
        plain(
            consent_texts.subscription_line(
                AR, "1*******72", TAWUNIYA, today + timedelta(days=30), today
            )
        ),
        plain(
            consent_texts.subscription_line(
                AR, "2*******06", BUPA, today + timedelta(days=120), today
            )
        ),
    ]
    assert listing.buttons == [
        AR._("Stop {masked}", masked="1*******72"),
        AR._("Stop {masked}", masked="2*******06"),
        AR._("Stop all reminders"),
    ]

    [stopped] = await person.tap(AR._("Stop {masked}", masked="1*******72"))
    assert stopped.text == plain(consent_texts.stopped_one(AR, "1*******72").text)
    [left] = await active(bot, 604)
    assert left.subscription.id_masked == "2*******06"
    # The same button again: nothing left to stop there.
    [again] = await person.tap(AR._("Stop {masked}", masked="1*******72"))
    assert again.text == plain(consent_texts.already_stopped(AR).text)


async def test_stop_command_and_the_word_stop_everything(bot: BotUnderTest) -> None:
    person = await begin(bot, 605)
    [nothing] = await person.say("/stop")
    assert nothing.text == plain(consent_texts.stopped_all(AR, 0).text)

    await subscribe(person, CITIZEN, IN_30_DAYS)
    await person.tap(NEW_LOOKUP)
    await subscribe(person, CITIZEN, IN_200_DAYS)
    [stopped] = await person.say("/stop")
    assert stopped.text == "أُوقفت التذكيرات لرقمين، ولن تصلك تذكيرات بعد الآن."
    assert await active(bot, 605) == []

    await person.tap(NEW_LOOKUP)
    await subscribe(person, CITIZEN, IN_30_DAYS)
    # The word, typed with a hamza variant and tatweel, mid-lookup: answered, and the lookup
    # goes on where it was.
    await person.tap(NEW_LOOKUP)
    await person.tap(CITIZEN)
    stopped, prompt = await person.say(" إيقـاف ", expect=2)
    assert stopped.text == "أُوقفت التذكيرات لرقم واحد، ولن تصلك تذكيرات بعد الآن."
    assert prompt.text == plain(texts.ask_number(AR, Path.CITIZEN).text)
    assert await active(bot, 605) == []


async def test_at_most_the_configured_number_of_subscriptions_per_chat(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(max_subscriptions_per_chat=2)
    person = await begin(bot, 606)
    await subscribe(person, CITIZEN, IN_30_DAYS)
    await person.tap(NEW_LOOKUP)
    await subscribe(person, CITIZEN, IN_200_DAYS)
    await person.tap(NEW_LOOKUP)
    third = await subscribe(person, RESIDENT, RESIDENT_120)
    assert third == plain(consent_texts.limit_reached(AR, 2).text)
    assert "رقمين" in third
    assert len(await active(bot, 606)) == 2


async def test_the_daily_pass_sends_a_reminder_whose_stop_button_stops_it(
    bot: BotUnderTest,
) -> None:
    person = await begin(bot, 607)
    await subscribe(person, CITIZEN, IN_7_DAYS)
    [subscription] = await active(bot, 607)
    seen = len(person.seen)

    # The day the 1-day threshold is reached.
    bot.reminder_day(6)
    report = await bot.reminders.daily()
    assert report.due == {1: 1}
    sent = await bot.api.wait_for_sent(607, seen + 1)
    reminder = plain(sent[-1].body or "")
    expiry = today_in(bot.settings.app.tz) + timedelta(days=7)
    expected = expiry_message(
        subscription.subscription.id,
        "1*******81",
        MEDGULF,
        expiry,
        expiry - timedelta(days=1),
        AR,
    )
    assert reminder == plain(expected.text)
    assert "ينتهي" in reminder or "تنتهي" in reminder
    assert sent[-1].button_texts == [STOP_THIS]

    # The same pass again that day sends nothing new.
    again = await bot.reminders.daily()
    assert again.due_total == 0 and again.already_done == 1
    assert len(bot.api.sent_to(607)) == seen + 1

    # Long after the lookup (the conversation timed out), the stop button still just works.
    bot.skip(3600)
    [stopped] = await person.tap(STOP_THIS)
    assert stopped.text == plain(consent_texts.stopped_one(AR, "1*******81").text)
    assert await active(bot, 607) == []

    # Expiry day: nothing for a stopped subscription.
    bot.reminder_day(7)
    last = await bot.reminders.daily()
    assert last.due_total == 0


async def test_a_pass_missed_while_the_bot_was_down_is_caught_up_at_start(
    bot: BotUnderTest,
) -> None:
    person = await begin(bot, 608)
    await subscribe(person, CITIZEN, IN_30_DAYS)
    [subscription] = await active(bot, 608)
    seen = len(person.seen)
    await bot.stop()
    # Down for 23 days, started after REMINDER_TIME: the 7-day threshold is the nearest due;
    # the 30-day one (its day passed while the bot was down) is never sent.
    bot.reminder_day(23)
    await bot.start()
    sent = await bot.api.wait_for_sent(608, seen + 1)
    today = today_in(bot.settings.app.tz)
    expected = expiry_message(
        subscription.subscription.id,
        "1*******72",
        TAWUNIYA,
        today + timedelta(days=30),
        today + timedelta(days=23),
        AR,
    )
    assert plain(sent[-1].body or "") == plain(expected.text)
    assert "7 أيام" in plain(expected.text)
    # Once, even though the start-up sweep and the daily job may both look.
    assert await bot.reminders.daily() is not None
    await bot.settle()
    assert len(bot.api.sent_to(608)) == seen + 1


async def test_english_and_a_language_switch_carry_over_to_the_reminders(
    bot: BotUnderTest,
) -> None:
    person = await begin(bot, 609, language="en")
    card = await person.lookup(EN._("Citizen"), IN_7_DAYS)
    assert card.buttons[0] == EN._("🔔 Remind me to renew")
    [confirmation] = await person.tap(EN._("🔔 Remind me to renew"))
    assert confirmation.text.startswith("🔔 Reminders are on for number 1*******81.")
    assert "• 1 day before it ends" in confirmation.text.splitlines()
    [subscription] = await active(bot, 609)
    assert subscription.subscription.locale == "en"

    await person.say("/language", expect=2)
    [subscription] = await active(bot, 609)
    assert subscription.subscription.locale == "ar"


async def test_help_names_the_reminder_commands(bot: BotUnderTest) -> None:
    person = await begin(bot, 610)
    help_text, _prompt = await person.say("/help", expect=2)
    assert help_text.text.endswith(plain(consent_texts.help_reminders(AR)))


async def test_a_renewal_imported_later_moves_the_reminders_to_the_new_date(
    bot: BotUnderTest, tmp_path: FilePath
) -> None:
    person = await begin(bot, 611)
    await subscribe(person, CITIZEN, IN_7_DAYS)
    [subscription] = await active(bot, 611)
    seen = len(person.seen)

    # The operator imports the renewal: a new policy number, one year later.
    today = today_in(bot.settings.app.tz)
    [row] = [r for r in demo_rows(today) if r["id_number"] == IN_7_DAYS]
    renewed = today + timedelta(days=7 + 365)
    row |= {
        "policy_number": "MG-RENEWED-1",
        "start_date": (today + timedelta(days=8)).isoformat(),
        "expiry_date": renewed.isoformat(),
    }
    renewal = tmp_path / "renewal.csv"
    with renewal.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    report = await import_policies(renewal, bot.runtime.db, bot.settings.database.hash_key)
    assert not report.errors

    # The old date's 1-day and expiry-day reminders never come.
    for day in (6, 7):
        bot.reminder_day(day)
        assert (await bot.reminders.daily()).due_total == 0
    assert len(bot.api.sent_to(611)) == seen

    # The new date's 30-day reminder does.
    bot.reminder_day(7 + 365 - 30)
    assert (await bot.reminders.daily()).due == {30: 1}
    sent = await bot.api.wait_for_sent(611, seen + 1)
    expected = expiry_message(
        subscription.subscription.id,
        "1*******81",
        MEDGULF,
        renewed,
        renewed - timedelta(days=30),
        AR,
    )
    assert plain(sent[-1].body or "") == plain(expected.text)
