"""The conversation engine's transition table, through its public `handle`."""

from __future__ import annotations

from bot.conversation.events import Button, ChatKind, Command, Other, OtherKind, Text
from bot.conversation.replies import Photo
from bot.conversation.state import Step
from tests.conversation.harness import CODE, Person, buttons_of, policy, text_of

CITIZEN = "1000000008"
RESIDENT = "2000000006"
BORDER = "3012345678"


async def test_first_message_gets_the_greeting_with_the_four_buttons() -> None:
    person = Person()
    [reply] = await person.send(Text("السلام عليكم"))
    assert text_of(reply).startswith("مرحبًا!")
    assert "هل أنت مواطن، أم مقيم أو زائر؟" in text_of(reply)
    assert buttons_of(reply) == ["path:citizen", "path:resident", "about", "lang:en"]
    [reply] = await person.send(Text("hello?"))
    assert text_of(reply).startswith("يُرجى اختيار أحد الأزرار")
    [reply] = await person.send(Command("start"))
    assert text_of(reply).startswith("مرحبًا!")


async def test_citizen_with_arabic_indic_digits_all_the_way_to_the_result() -> None:
    person = Person({CITIZEN: [policy("BUPA-1", 200)]})
    await person.send(Command("start"))
    [ask] = await person.texts(Button("path:citizen"))
    assert "رقم الهوية الوطنية" in ask
    [photo] = await person.send(Text("١٠٠٠٠٠٠٠٠٨"))
    assert isinstance(photo, Photo) and photo.png == b"PNG:" + CODE.encode()
    assert "الرمز المرئي المكون من ستة أرقام" in photo.caption
    assert "1*******08" in text_of(photo)
    assert buttons_of(photo) == ["new_code", "audio_code"]
    [card] = await person.send(Text("١٢٣٤٥٦"))
    text = text_of(card)
    assert "التأمين سارٍ، ويتبقى على انتهائه 200 يوم." in text
    assert "شركة التأمين: بوبا العربية" in text
    assert "رقم الوثيقة: BUPA-1" in text
    assert "هـ (" in text  # Hijri, then Gregorian in brackets
    assert "1*******08" in text and CITIZEN not in text
    assert buttons_of(card) == ["new_lookup"]
    assert person.conv.step is Step.RESULT
    assert [r[2] for r in person.audit.records] == ["active"]


async def test_resident_and_border_numbers() -> None:
    person = Person({RESIDENT: [policy("R-1", 100)], BORDER: [policy("V-1", 60)]})
    for number in (RESIDENT, BORDER):
        await person.send(Button("path:resident"))
        [photo] = await person.send(Text(number))
        assert isinstance(photo, Photo)
        [card] = await person.texts(Text(CODE))
        assert "التأمين سارٍ" in card


async def test_every_invalid_number_reason_and_three_strikes() -> None:
    person = Person()
    await person.send(Button("path:citizen"))
    assert "أرسلت 9 أرقام" in (await person.texts(Text("123456789")))[0]
    assert "غير صحيح" in (await person.texts(Text("1000000009")))[0]
    replies = await person.texts(Text("abc"))
    assert "ثلاثة أرقام غير صحيحة" in replies[1]
    assert replies[2].startswith("مرحبًا!")
    assert person.conv.step is Step.START


async def test_number_of_the_other_path_offers_a_switch_that_goes_straight_to_the_code() -> None:
    person = Person({RESIDENT: [policy("R-1", 100)]})
    await person.send(Button("path:citizen"))
    [reply] = await person.send(Text(RESIDENT))
    assert "رقم إقامة أو رقم حدود" in text_of(reply)
    assert buttons_of(reply) == ["switch:resident"]
    [photo] = await person.send(Button("switch:resident"))
    assert isinstance(photo, Photo)
    assert "2*******06" in text_of(photo)


async def test_wrong_code_then_right_and_three_wrong_gives_a_new_image() -> None:
    person = Person({CITIZEN: [policy("P", 200)]})
    await person.send(Button("path:citizen"))
    await person.send(Text(CITIZEN))
    assert "محاولتان أخريان" in (await person.texts(Text("000000")))[0]
    assert "محاولة واحدة أخرى" in (await person.texts(Text("000001")))[0]
    [photo] = await person.send(Text("000002"))
    assert isinstance(photo, Photo) and "ثلاث إجابات خاطئة" in photo.caption
    [card] = await person.texts(Text(CODE))
    assert "التأمين سارٍ" in card


async def test_a_solved_code_never_works_again() -> None:
    person = Person({CITIZEN: [policy("P", 200)]})
    await person.send(Button("path:citizen"))
    await person.send(Text(CITIZEN))
    await person.send(Text(CODE))
    replies = await person.texts(Text(CODE))
    assert not any("التأمين سارٍ" in r for r in replies)
    assert len(person.audit.records) == 1


async def test_code_expires_after_the_ttl() -> None:
    person = Person({CITIZEN: [policy("P", 200)]}, captcha_ttl=120)
    await person.send(Button("path:citizen"))
    await person.send(Text(CITIZEN))
    person.now += 121
    [photo] = await person.send(Text(CODE))
    assert isinstance(photo, Photo) and "انتهت صلاحية الرمز" in photo.caption
    [card] = await person.texts(Text(CODE))
    assert "التأمين سارٍ" in card


async def test_new_code_button_and_stale_buttons() -> None:
    person = Person()
    replies = await person.texts(Button("new_code"))  # from an old message
    assert "لم يعد فعالًا" in replies[0] and "يُرجى اختيار" in replies[1]
    await person.send(Button("path:citizen"))
    await person.send(Text(CITIZEN))
    [photo] = await person.send(Button("new_code"))
    assert isinstance(photo, Photo) and "إليك رمزًا جديدًا" in photo.caption
    replies = await person.texts(Button("forged:data\u0000"))
    assert "لم يعد فعالًا" in replies[0] and "أنتظر الرمز" in replies[1]
    assert person.conv.step is Step.CAPTCHA


async def test_not_found_expired_expiring_cancelled() -> None:
    numbers = {
        "1012345672": [policy("E", 7)],
        "1023456781": [policy("T", 1)],
        "1034567899": [policy("X", -20)],
        "1045678909": [policy("C", 100, status="cancelled")],
        "1056789017": [policy("Z", 0)],
    }
    person = Person(numbers)

    async def lookup(number: str) -> str:
        await person.send(Button("path:citizen"))
        await person.send(Text(number))
        return (await person.texts(Text(CODE)))[0]

    assert "لا توجد وثيقة تأمين صحي مسجلة" in await lookup("1067890127")
    assert "هيئة التأمين" in await lookup("1067890127")
    assert "يتبقى على انتهائه 7 أيام" in await lookup("1012345672")
    assert "يتبقى على انتهائه يوم واحد" in await lookup("1023456781")
    assert "مضى على انتهاء الوثيقة 20 يومًا" in await lookup("1034567899")
    assert "هذه الوثيقة ملغاة" in await lookup("1045678909")
    assert "ينتهي اليوم" in await lookup("1056789017")


async def test_several_policies_most_relevant_first() -> None:
    person = Person({RESIDENT: [policy("OLD", -10), policy("NEW", 356)]})
    await person.send(Button("path:resident"))
    await person.send(Text(RESIDENT))
    [card] = await person.texts(Text(CODE))
    assert card.index("NEW") < card.index("وثائق أخرى") < card.index("OLD")


async def test_unexpected_messages_are_answered_and_the_state_stays() -> None:
    person = Person()
    await person.send(Button("path:citizen"))
    for kind in OtherKind:
        replies = await person.texts(Other(kind))
        assert len(replies) == 2 and "رقم الهوية الوطنية" in replies[1]
    replies = await person.texts(Text("1" * 5000))
    assert "أطول مما أستطيع" in replies[0]
    assert person.conv.step is Step.ENTER_ID


async def test_commands_in_every_step() -> None:
    person = Person()
    await person.send(Button("path:citizen"))
    await person.send(Text(CITIZEN))
    help_replies = await person.texts(Command("help"))
    assert "/language" in help_replies[0] and "أنتظر الرمز" in help_replies[1]
    assert "لا أعرف هذا الأمر" in (await person.texts(Command("nonsense")))[0]
    assert "تم الإلغاء" in (await person.texts(Command("cancel")))[0]
    assert person.conv.step is Step.START


async def test_language_switch_by_button_and_command() -> None:
    person = Person({CITIZEN: [policy("P", 200)]})
    replies = await person.texts(Button("lang:en"))
    assert replies[0] == "From now on I will answer in English."
    assert replies[1].startswith("Hello!")
    await person.send(Button("path:citizen"))
    await person.send(Text(CITIZEN))
    [card] = await person.texts(Text(CODE))
    assert "Insurance company: Bupa Arabia" in card and "200 days" in card
    assert (await person.texts(Command("language")))[0] == "سأجيبك بالعربية من الآن."


async def test_platform_language_is_used_until_a_choice_is_made() -> None:
    person = Person(language="en-GB")
    assert (await person.texts(Command("start")))[0].startswith("Hello!")
    await person.send(Button("lang:ar"))
    assert (await person.texts(Command("start")))[0].startswith("مرحبًا!")


async def test_idle_conversation_starts_over_with_a_note() -> None:
    person = Person()
    await person.send(Button("path:citizen"))
    person.now += 601
    replies = await person.texts(Text(CITIZEN))
    assert "انتهت جلستك السابقة" in replies[0] and replies[1].startswith("مرحبًا!")
    assert person.conv.step is Step.START


async def test_lookup_limit_per_rolling_hour() -> None:
    person = Person({CITIZEN: [policy("P", 200)]}, lookups_per_hour=2)
    for _ in range(2):
        await person.send(Button("path:citizen"))
        await person.send(Text(CITIZEN))
        await person.send(Text(CODE))
        person.now += 60
    await person.send(Button("path:citizen"))
    [limit] = await person.texts(Text(CITIZEN))
    assert "استعلامان في الساعة" in limit and "58 دقيقة" in limit
    person.now += 58 * 60 + 1
    await person.send(Button("path:citizen"))
    [photo] = await person.send(Text(CITIZEN))
    assert isinstance(photo, Photo)


async def test_cool_down_after_five_wrong_codes_in_a_row() -> None:
    person = Person({CITIZEN: [policy("P", 200)]})
    await person.send(Button("path:citizen"))
    await person.send(Text(CITIZEN))
    for wrong in ("000000", "000001", "000002", "000003"):
        await person.send(Text(wrong))
    [reply] = await person.texts(Text("000004"))
    assert "الوقت المتبقي قبل المحاولة مجددًا: 10 دقائق" in reply
    await person.send(Button("path:citizen"))
    assert "الوقت المتبقي" in (await person.texts(Text(CITIZEN)))[0]
    await person.send(Command("start"))  # restarting is no way around it
    await person.send(Button("path:citizen"))
    assert "الوقت المتبقي" in (await person.texts(Text(CITIZEN)))[0]
    person.now += 601
    await person.send(Button("path:citizen"))
    [photo] = await person.send(Text(CITIZEN))
    assert isinstance(photo, Photo)


async def test_group_chat_answered_once_and_never_with_coverage() -> None:
    person = Person({CITIZEN: [policy("P", 200)]})
    [reply] = await person.texts(Command("start"), ChatKind.GROUP)
    assert "المحادثات الخاصة فقط" in reply
    assert await person.send(Text(CITIZEN), ChatKind.GROUP) == []
    assert await person.send(Text(CODE), ChatKind.GROUP) == []
    assert person.audit.records == []


async def test_a_valid_number_at_the_start_skips_the_path_question() -> None:
    person = Person()
    [photo] = await person.send(Text("٢٠٠٠٠٠٠٠٠٦"))
    assert isinstance(photo, Photo)
    assert person.conv.path == "resident"
