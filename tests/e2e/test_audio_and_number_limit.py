"""On Telegram: the audio code as a voice message, and one number's daily limit shared with
the web chat (two chats, two channels, one database)."""

from __future__ import annotations

import httpx

from bot.channels.web import web_routes
from bot.conversation import texts
from bot.http import build_http_app
from bot.i18n import plain_text
from bot.limits import LimitKind, Refusal
from tests.e2e.conftest import AR, CODE, EN, PNG_MAGIC, StartBot

CITIZEN = AR._("Citizen")
AUDIO = AR._("🔊 Audio code")


async def test_the_audio_button_sends_a_voice_message_whose_code_is_accepted(
    start_bot: StartBot,
) -> None:
    bot = await start_bot()
    person = bot.person()
    await person.say("/start")
    await person.tap(CITIZEN)
    [photo] = await person.say("1000000008")
    assert photo.photo is not None and photo.photo.startswith(PNG_MAGIC)
    assert AUDIO in photo.buttons
    [voice] = await person.tap(AUDIO)
    sent = bot.api.sent_to(person.chat_id)[-1]
    assert sent.method == "sendVoice"
    ogg = bot.api.media_of(sent, "voice")
    assert ogg is not None and ogg.startswith(b"OggS") and b"OpusHead" in ogg[:100]
    assert voice.text == plain_text(texts.captcha_caption(AR, "1*******08", audio=True))
    assert voice.buttons == [AR._("New code"), AUDIO]
    [card] = await person.say(CODE)
    assert "1*******08" in card.text and "بوبا" in card.text


async def test_the_audio_code_speaks_english_to_an_english_chat(start_bot: StartBot) -> None:
    bot = await start_bot()
    person = bot.person(language="en")
    await person.say("1000000008")
    [voice] = await person.tap(EN._("🔊 Audio code"))
    assert "Listen to the six digits" in voice.text
    assert "1*******08" in (await person.say(CODE))[0].text


async def test_one_number_is_limited_across_telegram_and_the_web_chat(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(lookups_per_id_per_day=2)
    telegram = bot.person(601)
    await telegram.say("/start")
    assert "1*******08" in (await telegram.lookup(CITIZEN, "1000000008")).text
    app = build_http_app(web_routes(bot.runtime))
    transport = httpx.ASGITransport(app=app, client=("198.51.100.3", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
        await web.post("/api/chat", json={"text": "1000000008"})
        card = (await web.post("/api/chat", json={"text": CODE})).json()["replies"][-1]
        assert "1*******08" in plain_text(card["text"])
        # A third chat, on Telegram again: refused before a code is issued.
        other = bot.person(602)
        await other.say("/start")
        await other.tap(CITIZEN)
        [refused] = await other.say("1000000008")
        expected = texts.refused(AR, Refusal(LimitKind.NUMBER_LOOKUPS, 2, 24 * 3600))
        assert refused.text == plain_text(expected.text)
        assert refused.photo is None
        # And on the web chat, from yet another address.
        transport2 = httpx.ASGITransport(app=app, client=("192.0.2.4", 1))
        async with httpx.AsyncClient(transport=transport2, base_url="http://testserver") as w2:
            reply = (await w2.post("/api/chat", json={"text": "1000000008"})).json()
            assert plain_text(reply["replies"][-1]["text"]) == refused.text
