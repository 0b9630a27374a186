"""A person checks an insurance status through Telegram: the real PTB stack, store and engine.

Policies are the demo data (README: which number shows which case), dated from today.
"""

from __future__ import annotations

from datetime import date, timedelta

import time_machine

from bot.conversation import texts
from bot.conversation.replies import Message
from bot.domain.identity import Path
from bot.domain.policy import today_in
from bot.i18n import format_gregorian, format_hijri, plain_text
from tests.conftest import on_both_backends
from tests.e2e.conftest import AR, CODE, EN, PNG_MAGIC, BotUnderTest, Reply, StartBot
from tests.fakes.fake_bot_api import FakeBotAPI

# The Telegram lookup end to end, on SQLite and on PostgreSQL.
backend = on_both_backends()

CITIZEN = AR._("Citizen")
RESIDENT = AR._("Resident / visitor")
NEW_CODE = AR._("New code")
AUDIO_CODE = AR._("🔊 Audio code")
NEW_LOOKUP = AR._("New lookup")


def text_of(message: Message) -> str:
    return plain_text(message.text)


def in_days(bot: BotUnderTest, days: int) -> date:
    return today_in(bot.settings.app.tz) + timedelta(days=days)


def assert_dates(card: Reply, day: date, locale: str = "ar") -> None:
    """Hijri and Gregorian side by side, as the card shows them."""
    assert plain_text(f"{format_hijri(day, locale)} ({format_gregorian(day, locale)})") in card.text


async def test_citizen_with_arabic_indic_digits_end_to_end(bot: BotUnderTest) -> None:
    person = bot.person()
    [greeting] = await person.say("/start")
    assert greeting.text == text_of(texts.greeting(AR))
    assert greeting.buttons == [CITIZEN, RESIDENT, AR._("About insurance"), "English"]

    [ask] = await person.tap(CITIZEN)
    assert ask.text == text_of(texts.ask_number(AR, Path.CITIZEN))

    [photo] = await person.say("١٠٠٠٠٠٠٠٠٨")
    assert photo.photo is not None and photo.photo.startswith(PNG_MAGIC)
    assert photo.text == plain_text(texts.captcha_caption(AR, "1*******08"))
    assert photo.buttons == [NEW_CODE, AUDIO_CODE]

    [card] = await person.say("١٢٣٤٥٦")
    assert card.photo is None
    assert "التأمين الصحي لرقم الهوية 1*******08" in card.text
    assert "شركة التأمين: بوبا العربية" in card.text
    assert "BUPA-77120345" in card.text
    assert_dates(card, in_days(bot, 200))
    assert "✅" in card.text
    assert card.buttons == [AR._("🔔 Remind me to renew"), NEW_LOOKUP]
    # Plain text only: nothing is ever sent with a parse mode.
    assert all(o.parse_mode is None for o in bot.api.sent_to(person.chat_id))


async def test_resident_with_iqama_then_border_number(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    card = await person.lookup(RESIDENT, "2000000006")
    assert "2*******06" in card.text and "شركة التأمين: بوبا العربية" in card.text
    assert "رئيسي" in card.text
    assert_dates(card, in_days(bot, 120))

    [greeting] = await person.tap(NEW_LOOKUP)
    assert greeting.text == text_of(texts.greeting(AR))
    card = await person.lookup(RESIDENT, "3012345678")
    assert "3*******78" in card.text and "الدرع العربي" in card.text
    assert_dates(card, in_days(bot, 75))


async def test_the_demo_family_principal_sees_the_dependents_a_dependent_sees_no_principal(
    bot: BotUnderTest,
) -> None:
    person = bot.person()
    await person.say("/start")
    card = await person.lookup(RESIDENT, "2000000006")  # bot/data/demo_policies.csv
    assert card.text.splitlines()[0] == "التأمين الصحي لرقم الإقامة 2*******06"
    assert card.text.split("\n\n")[-1].splitlines() == [
        "مشمولون أيضًا بهذه الوثيقة:",
        "• 2*******79 (تابع): سارية",
        "• 2*******88 (تابع): سارية",
    ]
    assert "Fatima" not in card.text and "Omar" not in card.text  # names never
    await person.tap(NEW_LOOKUP)
    card = await person.lookup(RESIDENT, "2112345679")
    assert "نوع المستفيد: تابع، مشمول بوثيقة المؤمَّن له الرئيسي" in card.text.splitlines()
    assert "2*******06" not in card.text and "مشمولون أيضًا" not in card.text
    await person.say("/language", expect=2)
    await person.tap("New lookup")
    card = await person.lookup("Resident / visitor", "2000000006")
    assert card.text.split("\n\n")[-1].splitlines() == [
        "Also on this policy:",
        "• 2*******79 (dependent): valid",
        "• 2*******88 (dependent): valid",
    ]


async def test_number_of_the_other_path_then_the_switch_button(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    [wrong] = await person.say("2000000006")
    assert wrong.text == text_of(texts.wrong_path(AR, Path.RESIDENT))
    [switch] = wrong.buttons
    [photo] = await person.tap(switch)
    assert photo.photo is not None and "2*******06" in photo.text
    [card] = await person.say(CODE)
    assert "بوبا العربية" in card.text


async def test_bad_check_digit_gets_the_reason(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    [reason] = await person.say("1000000009")
    assert AR._("This number is not valid; please check it for a mistyped digit.") in reason.text
    [photo] = await person.say("1000000008")  # and the right one still works
    assert photo.photo is not None


async def test_wrong_code_then_new_code_button_then_right_code(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    [first] = await person.say("1000000008")
    [wrong] = await person.say("654321")
    assert wrong.text == text_of(texts.wrong_code(AR, 2))
    assert "محاولتان" in wrong.text or "2" in wrong.text
    assert wrong.buttons == [NEW_CODE, AUDIO_CODE]

    [second] = await person.tap(NEW_CODE)
    assert second.photo is not None and second.photo.startswith(PNG_MAGIC)
    assert second.photo != first.photo  # a fresh image (the noise is random)
    assert second.text.startswith(AR._("Here is a new code."))

    [card] = await person.say(CODE)
    assert "بوبا العربية" in card.text


async def test_expired_code_gets_a_new_image(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    await person.say("1000000008")
    bot.skip(bot.settings.captcha.ttl_seconds + 1)
    [renewed] = await person.say(CODE)
    assert renewed.photo is not None
    assert renewed.text.startswith(AR._("The code expired. Here is a new one."))
    [card] = await person.say(CODE)
    assert "بوبا العربية" in card.text


async def test_not_found_expired_expiring_and_cancelled(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    cases = [
        ("1067890127", [AR._("No health insurance policy is registered for this number.")]),
        ("1045678909", ["❌", "مضى على انتهاء الوثيقة 20 يومًا"]),
        ("1023456781", ["⚠️", "يتبقى على انتهائه 7 أيام"]),
        ("1034567899", ["⚠️", "يتبقى على انتهائه يوم واحد"]),
        ("1056789017", [AR._("Not insured: this policy was cancelled.")]),
    ]
    for number, expected in cases:
        card = await person.lookup(CITIZEN, number)
        for part in expected:
            assert part in card.text, (number, card.text)
        await person.tap(NEW_LOOKUP)
    assert_dates(card, in_days(bot, 150))  # the cancelled policy still shows its end date


async def test_a_lookup_across_midnight_in_riyadh_counts_from_the_new_day(
    bot: BotUnderTest, frozen_clock: time_machine.Traveller
) -> None:
    """The demo data was loaded at 23:59:58; the card counts days from the day it is shown."""
    day = today_in(bot.settings.app.tz)
    expiry = day + timedelta(days=7)
    person = bot.person()
    await person.say("/start")
    before = await person.lookup(CITIZEN, "1023456781")  # MEDGULF, 7 days left
    assert "يتبقى على انتهائه 7 أيام" in before.text
    assert_dates(before, expiry)

    await person.tap(NEW_LOOKUP)
    await person.tap(CITIZEN)
    await person.say("1023456781")  # the image code, asked for at 23:59:58
    frozen_clock.shift(3)  # 00:00:01: the code is still fresh, the day is the next one
    assert today_in(bot.settings.app.tz) == day + timedelta(days=1)
    [after] = await person.say(CODE)
    assert "يتبقى على انتهائه 6 أيام" in after.text
    assert_dates(after, expiry)  # the same policy, the same end date


async def test_language_switch_by_button_and_command(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    changed, greeting = await person.tap("English", expect=2)
    assert changed.text == "From now on I will answer in English."
    assert greeting.text == text_of(texts.greeting(EN))
    assert greeting.buttons[:2] == ["Citizen", "Resident / visitor"]

    card = await person.lookup("Citizen", "1000000008")
    assert "Health insurance for national ID 1*******08" in card.text
    assert "Insurance company: Bupa Arabia" in card.text
    assert_dates(card, in_days(bot, 200), "en")

    changed, prompt = await person.say("/language", expect=2)
    assert changed.text == AR._("From now on I will answer in English.")  # in Arabic
    assert prompt.text == text_of(texts.after_result(AR))


async def test_restart_mid_conversation_keeps_the_code(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    [photo] = await person.say("1000000008")
    assert photo.photo is not None

    await bot.restart()  # a new Application and Runtime on the same database
    [card] = await person.say(CODE)
    assert "شركة التأمين: بوبا العربية" in card.text


async def test_lookup_limit_per_hour(start_bot: StartBot) -> None:
    bot: BotUnderTest = await start_bot(lookups_per_hour=2)
    person = bot.person()
    await person.say("/start")
    for _ in range(2):
        await person.lookup(CITIZEN, "1000000008")
        await person.tap(NEW_LOOKUP)
    await person.tap(CITIZEN)
    [limit] = await person.say("1000000008")
    assert limit.photo is None
    assert limit.text == text_of(texts.lookup_limit(AR, 2, 3600))
    assert "ساعة واحدة" in limit.text  # not "60 دقيقة"


async def test_cool_down_after_five_wrong_codes(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    await person.say("1000000008")
    answers = [(await person.say(code))[0] for code in ("111111", "222222", "333333")]
    assert answers[2].photo is not None  # third wrong answer for one image: a new image
    assert answers[2].text == plain_text(texts.too_many_wrong_caption(AR, "1*******08"))
    await person.say("444444")
    [cool] = await person.say("555555")
    assert cool.text == text_of(texts.cooldown(AR, 600))
    assert "10 دقائق" in cool.text
    # Starting over does not get around it.
    await person.say("/start")
    [still] = await person.say("1000000008")
    assert still.photo is None and "دقائق" in still.text


async def test_group_chat_is_answered_once_and_never_with_coverage(bot: BotUnderTest) -> None:
    group = bot.person(-1001234567890)
    [notice] = await group.say("/start")
    assert notice.text == text_of(texts.private_only(AR))
    await group.say("1000000008", expect=0)
    await group.say("/start@insurance_test_bot", expect=0)
    await group.say("/start@some_other_bot", expect=0)
    await group.act(lambda: bot.api.user_sticker(group.chat_id), expect=0)
    assert len(group.seen) == 1


async def test_command_menu_in_arabic_and_english(bot: BotUnderTest, api: FakeBotAPI) -> None:
    default_scope = '{"type": "default"}'
    menus = {lang: api.commands[(default_scope, lang)] for lang in ("ar", "en", "")}
    assert [c["command"] for c in menus["ar"]] == [
        *("start", "cancel", "help", "language", "reminders", "stop")
    ]
    assert menus["ar"][0]["description"] == AR._("Start a new lookup") == "بدء استعلام جديد"
    assert menus["en"][0]["description"] == "Start a new lookup"
    assert menus[""] == menus["ar"]  # everyone else gets the default language (Arabic)


async def test_admins_alone_get_the_broadcast_commands_in_their_menu(
    start_bot: StartBot, api: FakeBotAPI
) -> None:
    await start_bot(admin_ids=[900])
    admin_scope = '{"chat_id": 900, "type": "chat"}'
    for language in ("ar", "en", ""):
        public = [c["command"] for c in api.commands[('{"type": "default"}', language)]]
        admin = [c["command"] for c in api.commands[(admin_scope, language)]]
        assert admin == [*public, "broadcast", "broadcasts"]
        assert "broadcast" not in public
    assert api.commands[(admin_scope, "ar")][-2]["description"] == "إرسال رسالة جماعية للمشتركين"
