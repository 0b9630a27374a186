"""Limits in the dialogue: what a person is told, and that nothing about the number leaks."""

from __future__ import annotations

import pytest

from bot.conversation.events import Button, Text
from bot.conversation.replies import Message, Photo, Voice
from bot.conversation.state import Step
from bot.limits import LimitConfig
from tests.conversation.harness import CODE, MemoryCounter, Person, buttons_of, policy, text_of

CITIZEN = "1000000008"
OTHER = "1012345672"
NO_POLICY = "1067890127"


def person(counter: MemoryCounter, config: LimitConfig, **kw: object) -> Person:
    policies = {CITIZEN: [policy("P", 200)], OTHER: [policy("Q", 200)]}
    return Person(policies, limits=config, counter=counter, **kw)  # type: ignore[arg-type]


async def lookup(who: Person, number: str) -> list[str]:
    await who.send(Text(number))
    return await who.texts(Text(CODE))


async def test_one_number_is_looked_up_at_most_n_times_a_day_across_chats() -> None:
    counter, config = MemoryCounter(), LimitConfig(lookups_per_id_per_day=2)
    first, second = person(counter, config, chat_ref="a" * 64), person(counter, config)
    assert "1*******08" in (await lookup(first, CITIZEN))[0]
    first.now += 60
    second.now = first.now
    assert "1*******08" in (await lookup(second, CITIZEN))[0]
    second.now += 60
    [refused] = await second.texts(Text(CITIZEN))  # before a code is even issued
    # The first lookup leaves the window 23 h 58 min from now: rounded up to whole hours.
    assert "مرتين خلال آخر 24 ساعة" in refused and "مجددًا: 24 ساعة" in refused
    assert second.conv.step is Step.RESULT
    # The same words whether or not the number has a policy: nothing about it leaks.
    for _ in range(2):
        await lookup(first, NO_POLICY)
        first.now += 60
    [also_refused] = await first.texts(Text(NO_POLICY))
    assert also_refused == refused
    assert "بوبا" not in refused and "1*******08" not in refused
    # Other numbers are not affected; a day later the number can be checked again.
    assert "1*******72" in (await lookup(second, OTHER))[0]
    second.now += 24 * 3600
    await second.send(Text("/start"))  # the idle note aside
    assert "1*******08" in (await lookup(second, CITIZEN))[0]


async def test_the_number_limit_also_holds_at_the_moment_a_code_is_solved() -> None:
    counter, config = MemoryCounter(), LimitConfig(lookups_per_id_per_day=1)
    slow, fast = person(counter, config, chat_ref="a" * 64), person(counter, config)
    await slow.send(Text(CITIZEN))  # both hold a code for the same number
    await fast.send(Text(CITIZEN))
    assert "1*******08" in (await fast.texts(Text(CODE)))[0]
    [refused] = await slow.texts(Text(CODE))
    assert "مرة واحدة خلال آخر 24 ساعة" in refused and "1*******08" not in refused
    assert slow.conv.challenge is None and slow.audit.records == []


async def test_codes_issued_count_against_the_chat_and_the_address() -> None:
    counter, config = MemoryCounter(), LimitConfig(challenges_per_hour=3)
    chat = person(counter, config, network="203.0.113.9")
    assert isinstance((await chat.send(Text(CITIZEN)))[0], Photo)
    assert isinstance((await chat.send(Button("new_code")))[0], Photo)
    assert isinstance((await chat.send(Button("audio_code")))[0], Voice)
    [refused] = await chat.send(Button("new_code"))
    assert isinstance(refused, Message)
    assert "طلبت رموزًا كثيرة" in text_of(refused) and "ساعة واحدة" in text_of(refused)
    assert buttons_of(refused) == ["new_lookup"]
    # New chats from the same address share three times a chat's allowance (9 in all).
    issued = 3
    for n in range(3):
        fresh = person(counter, config, chat_ref=str(n) * 64, network="203.0.113.9")
        for _ in range(3):
            reply = (await fresh.send(Text(CITIZEN) if fresh.conv.step is not Step.CAPTCHA
                                      else Button("new_code")))[0]  # fmt: skip
            issued += isinstance(reply, Photo)
    assert issued == 9
    elsewhere = person(counter, config, chat_ref="e" * 64, network="198.51.100.1")
    assert isinstance((await elsewhere.send(Text(CITIZEN)))[0], Photo)


async def test_the_address_limit_counts_completed_lookups_of_new_chats() -> None:
    counter, config = MemoryCounter(), LimitConfig(lookups_per_address_per_hour=2)
    for n, number in enumerate((CITIZEN, OTHER)):
        chat = person(counter, config, chat_ref=str(n) * 64, network="203.0.113.9")
        assert number[-2:] in (await lookup(chat, number))[0]
    late = person(counter, config, chat_ref="f" * 64, network="203.0.113.9")
    [refused] = await late.texts(Text(CITIZEN))
    assert "من شبكتك" in refused
    # Telegram and WhatsApp chats have no address: only the chat and the number count.
    phone = person(counter, config, chat_ref="9" * 64)
    assert "1*******08" in (await lookup(phone, CITIZEN))[0]


async def test_the_audio_code_is_spoken_in_the_persons_language_and_accepted() -> None:
    chat = person(MemoryCounter(), LimitConfig(), language="en")
    await chat.send(Text(CITIZEN))
    [voice] = await chat.send(Button("audio_code"))
    assert isinstance(voice, Voice) and voice.ogg == b"OggS:en:" + CODE.encode()
    assert voice.label == "Audio code, six digits" and "1*******08" in voice.caption
    assert buttons_of(voice) == ["new_code", "audio_code"]
    [wrong] = await chat.texts(Text("000000"))
    assert "for this audio code" in wrong
    await chat.send(Text("000001"))
    [again] = await chat.send(Text("000002"))  # three wrong: a new code, spoken again
    assert isinstance(again, Voice)
    assert "1*******08" in (await chat.texts(Text(CODE)))[0]


async def test_the_expected_code_is_not_kept_in_the_state() -> None:
    chat = person(MemoryCounter(), LimitConfig())
    await chat.send(Text(CITIZEN))
    state = chat.conv.model_dump_json()
    assert CODE not in state and chat.conv.challenge is not None
    assert len(chat.conv.challenge.code_hmac) == 64


# ------------------------------------------------- how long to wait, in words (exact replies)

COOL_DOWN_AR = (
    "أُدخلت رموز خاطئة كثيرة على التوالي. حفاظًا على أمانك، الوقت المتبقي قبل المحاولة مجددًا: {}."
)
COOL_DOWN_EN = "Too many wrong codes in a row. For your security, please try again in {}."


@pytest.mark.parametrize(
    ("seconds", "ar", "en"),
    [
        (600, "10 دقائق", "10 minutes"),
        (59 * 60, "59 دقيقة", "59 minutes"),
        (59 * 60 + 1, "ساعة واحدة", "1 hour"),  # rounded up to sixty minutes: an hour
        (3600, "ساعة واحدة", "1 hour"),
        (2 * 3600, "ساعتان", "2 hours"),
        (3 * 3600, "3 ساعات", "3 hours"),
        (11 * 3600, "11 ساعة", "11 hours"),
    ],
)
async def test_a_cool_down_counts_minutes_then_hours(seconds: int, ar: str, en: str) -> None:
    for language, expected in (("ar", COOL_DOWN_AR.format(ar)), ("en", COOL_DOWN_EN.format(en))):
        chat = person(MemoryCounter(), LimitConfig(), language=language, cooldown=seconds)
        await chat.send(Text(CITIZEN))
        for wrong in ("000000", "000001", "000002", "000003"):
            await chat.send(Text(wrong))
        assert await chat.texts(Text("000004")) == [expected]


async def test_the_hourly_lookup_limit_says_one_hour_not_sixty_minutes() -> None:
    for language, expected in (
        (
            "ar",
            "لقد بلغت الحد الأقصى وهو استعلام واحد في الساعة. "
            "الوقت المتبقي قبل الاستعلام مجددًا: ساعة واحدة.",
        ),
        ("en", "You have reached the limit of 1 lookup per hour. You can check again in 1 hour."),
    ):
        chat = person(MemoryCounter(), LimitConfig(), language=language, lookups_per_hour=1)
        await lookup(chat, CITIZEN)
        chat.now += 1
        assert await chat.texts(Text(OTHER)) == [expected]


async def test_every_limit_refusal_says_hours_from_sixty_minutes() -> None:
    counter = MemoryCounter()
    config = LimitConfig(challenges_per_hour=1, lookups_per_address_per_hour=1)
    chat = person(counter, config, network="203.0.113.9")
    await lookup(chat, CITIZEN)
    chat.now += 59  # 59 min 1 s left of the hour: an hour, rounded up
    assert await chat.texts(Text(OTHER)) == [
        "طلبت رموزًا كثيرة في وقت قصير. الوقت المتبقي قبل طلب رمز جديد: ساعة واحدة."
    ]
    english = person(counter, config, chat_ref="e" * 64, language="en", network="203.0.113.9")
    english.now = chat.now + 60  # 58 min 1 s left
    assert await english.texts(Text(OTHER)) == [
        "Many lookups were made from your network in the last hour. "
        "You can check again in 59 minutes."
    ]
    # A number checked too often: rounded up to whole hours, as its owner's wait.
    counter, config = MemoryCounter(), LimitConfig(lookups_per_id_per_day=1)
    first = person(counter, config)
    await lookup(first, CITIZEN)
    second = person(counter, config, chat_ref="s" * 64)
    second.now = first.now + 3 * 3600
    assert await second.texts(Text(CITIZEN)) == [
        "استُعلم عن هذا الرقم مرة واحدة خلال آخر 24 ساعة، وهو الحد الأقصى المسموح به "
        "حمايةً لصاحبه. الوقت المتبقي قبل الاستعلام عنه مجددًا: 21 ساعة."
    ]
