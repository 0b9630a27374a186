"""Whatever a person sends, they get an answer, and the lookup still works afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.conversation import consent_texts, texts
from bot.domain.identity import Path
from bot.i18n import plain_text
from tests.e2e.conftest import AR, CODE, BotUnderTest
from tests.fakes.fake_bot_api import FakeBotAPI

CITIZEN = AR._("Citizen")
ASK_NUMBER = plain_text(texts.ask_number(AR, Path.CITIZEN).text)
ONLY_TEXT = plain_text(texts.only_text(AR).text)

Send = Callable[[FakeBotAPI, int], object]
_RIYADH = {"latitude": 24.7136, "longitude": 46.6753}
_VENUE = {"location": _RIYADH, "title": "Clinic", "address": "Riyadh"}

MEDIA: dict[str, Send] = {
    "sticker": lambda api, chat: api.user_sticker(chat),
    "photo": lambda api, chat: api.user_photo(chat, caption="1000000008"),
    "voice": lambda api, chat: api.user_voice(chat),
    "location": lambda api, chat: api.user_location(chat),
    "contact": lambda api, chat: api.user_contact(chat),
    "document": lambda api, chat: api.user_document(chat),
    "venue": lambda api, chat: api.enqueue(
        {"message": {**_base(chat), "location": _RIYADH, "venue": _VENUE}}
    ),
    "dice": lambda api, chat: api.enqueue(
        {"message": {**_base(chat), "dice": {"emoji": "🎲", "value": 3}}}
    ),
}


def _base(chat: int) -> dict[str, object]:
    user = {"id": chat, "is_bot": False, "first_name": "Test", "language_code": "ar"}
    return {
        "message_id": 900_000 + len(MEDIA),
        "from": user,
        "chat": {"id": chat, "type": "private", "first_name": "Test"},
        "date": 1_790_000_000,
    }


@pytest.mark.parametrize("kind", list(MEDIA))
async def test_media_gets_only_text_and_the_prompt(bot: BotUnderTest, kind: str) -> None:
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    notice, prompt = await person.act(lambda: MEDIA[kind](bot.api, person.chat_id), expect=2)
    assert (notice.text, prompt.text) == (ONLY_TEXT, ASK_NUMBER)
    [photo] = await person.say("1000000008")
    assert photo.photo is not None


async def test_every_oddity_in_one_conversation_then_a_lookup(bot: BotUnderTest) -> None:
    person = bot.person()
    await person.say("/start")
    card = await person.lookup(CITIZEN, "1000000008")
    assert "بوبا العربية" in card.text
    captcha_message = next(r for r in person.seen if r.photo is not None).message_id
    after_result = plain_text(texts.after_result(AR).text)
    stale = plain_text(texts.stale_button(AR).text)

    # «New code» on the image of the finished lookup: an old button.
    notice, prompt = await person.press("new_code", captcha_message, expect=2)
    assert (notice.text, prompt.text) == (stale, after_result)
    # Callback data nobody of ours sent.
    notice, prompt = await person.press("path:admin;drop table", expect=2)
    assert (notice.text, prompt.text) == (stale, after_result)
    notice, _ = await person.press("x" * 64, expect=2)
    assert notice.text == stale

    await person.tap(AR._("New lookup"))
    await person.tap(CITIZEN)
    first_text = bot.api.user_text(person.chat_id, "hello")
    await bot.settle()
    edited, prompt = await person.act(
        lambda: bot.api.user_edited_text(
            person.chat_id, first_text["message"]["message_id"], "1000000008"
        ),
        expect=2,
    )
    assert edited.text == plain_text(texts.edited_ignored(AR).text)
    assert prompt.text == ASK_NUMBER

    too_long, prompt = await person.say("1" * 5000, expect=2)
    assert too_long.text == plain_text(texts.text_too_long(AR).text)
    unknown, prompt = await person.say("/frobnicate now", expect=2)
    assert unknown.text == plain_text(texts.unknown_command(AR).text)
    [help_text, prompt] = await person.say("/HELP@insurance_test_bot", expect=2)
    # Telegram can send reminders later, so its help also names their commands.
    assert help_text.text == plain_text(
        texts.help_text(AR).text + "\n" + consent_texts.help_reminders(AR)
    )

    # ...and the lookup still works.
    [photo] = await person.say("1000000008")
    assert photo.photo is not None
    [card] = await person.say(CODE)
    assert "بوبا العربية" in card.text


async def test_service_messages_and_other_updates_are_ignored(bot: BotUnderTest) -> None:
    person = bot.person()
    chat = {"id": person.chat_id, "type": "private", "first_name": "Test"}
    user = {"id": person.chat_id, "is_bot": False, "first_name": "Test"}
    await person.act(
        lambda: bot.api.enqueue(
            {
                "my_chat_member": {
                    "chat": chat,
                    "from": user,
                    "date": 1_790_000_000,
                    "old_chat_member": {"status": "member", "user": user},
                    "new_chat_member": {"status": "kicked", "user": user, "until_date": 0},
                }
            }
        ),
        expect=0,
    )
    group = bot.person(-100777)
    await group.act(
        lambda: bot.api.enqueue(
            {
                "message": {
                    "message_id": 1,
                    "from": user,
                    "chat": {"id": -100777, "type": "supergroup", "title": "G"},
                    "date": 1_790_000_000,
                    "new_chat_members": [{"id": 1000, "is_bot": True, "first_name": "Bot"}],
                }
            }
        ),
        expect=0,
    )
    [greeting] = await person.say("/start")
    assert greeting.text == plain_text(texts.greeting(AR).text)


async def test_an_error_is_logged_and_the_person_told(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    person = bot.person()
    await person.say("/start")
    # sendMessage fails for good (a 400 is not retried): the error handler answers instead.
    bot.api.inject_errors("sendMessage", [(400, "Bad Request: something odd")])
    [sorry] = await person.say("/help")
    assert sorry.text == plain_text(texts.something_went_wrong(AR).text)
    assert "Error while handling a Telegram update" in caplog.text
    [greeting] = await person.say("/start")
    assert greeting.text == plain_text(texts.greeting(AR).text)


async def test_a_user_who_blocked_the_bot_is_not_an_error(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    person = bot.person()
    bot.api.block_chat(person.chat_id)
    await person.say("/start", expect=0)
    assert "Error while handling" not in caplog.text
    bot.api.unblock_chat(person.chat_id)
    await person.say("/start")


async def test_rate_limited_reply_is_retried(bot: BotUnderTest) -> None:
    person = bot.person()
    bot.api.inject_errors("sendMessage", [(429, 1)])
    [greeting] = await person.say("/start")
    assert greeting.text == plain_text(texts.greeting(AR).text)
    assert [c.status for c in bot.api.calls_to("sendMessage")] == [429, 200]
