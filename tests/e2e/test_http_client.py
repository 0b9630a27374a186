"""The aiohttp client under PTB's Bot: form and multipart bodies, errors mapped to PTB's."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.channels.telegram_http import AiohttpRequest
from tests.e2e.conftest import PNG_MAGIC, TOKEN
from tests.fakes.fake_bot_api import TINY_PNG, FakeBotAPI, Fault


def bot_on(api: FakeBotAPI, request: AiohttpRequest) -> Bot:
    return Bot(
        TOKEN,
        base_url=api.base_url,
        base_file_url=api.base_file_url,
        request=request,
        get_updates_request=AiohttpRequest(1),
    )


async def test_form_and_multipart_bodies_arrive_intact(api: FakeBotAPI) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("رمز جديد", callback_data="new_code")]])
    async with bot_on(api, AiohttpRequest(4)) as bot:
        text = "نص & رموز = ?+ 1*******08 \u2066x\u2069"
        sent = await bot.send_message(7, text, reply_markup=keyboard)
        assert sent.text == text
        photo = await bot.send_photo(7, photo=TINY_PNG, caption="صورة", reply_markup=keyboard)
        assert photo.caption == "صورة"
    [message_call] = api.calls_to("sendMessage")
    assert message_call.params["text"] == text
    assert message_call.params["reply_markup"] == keyboard.to_dict()
    [photo_call] = api.calls_to("sendPhoto")
    assert photo_call.photo == TINY_PNG and TINY_PNG.startswith(PNG_MAGIC)


async def test_errors_become_ptb_errors(api: FakeBotAPI) -> None:
    async with bot_on(api, AiohttpRequest(2, read_timeout=0.2)) as bot:
        api.inject_errors("sendMessage", [Fault(200, hang=1.0)])
        with pytest.raises(TimedOut):
            await bot.send_message(7, "slow")
        api.inject_errors("sendMessage", [(400, "Bad Request: chat not found")])
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(7, "x")
        assert (await bot.send_message(7, "fine")).text == "fine"
    unreachable = Bot(TOKEN, base_url="http://127.0.0.1:9/bot", request=AiohttpRequest(1))
    with pytest.raises(NetworkError):
        await unreachable.initialize()
    await unreachable.shutdown()


def test_proxies_are_read_once_and_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.channels.proxies import ProxyChoice

    proxies = {"https": "http://proxy.example:3128", "no": "localhost, .internal,127.0.0.1"}
    choice = ProxyChoice(proxies)
    assert choice.for_url("https://api.telegram.org/bot1:x/getMe") == "http://proxy.example:3128"
    assert choice.for_url("https://bots.internal/bot1:x/getMe") is None
    assert choice.for_url("http://127.0.0.1:8081/bot1:x/getMe") is None  # no http proxy
    assert ProxyChoice({"http": "http://p:1", "no": "*"}).for_url("http://a.b/") is None
    # Decided once: a later change of the environment's snapshot is not looked up again.
    proxies["https"] = "http://other:1"
    assert choice.for_url("https://api.telegram.org/bot1:x/sendMessage") == (
        "http://proxy.example:3128"
    )


async def test_bot_api_calls_do_not_read_the_environment_per_request(
    api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    async with bot_on(api, AiohttpRequest(2)) as bot:
        reads: list[int] = []
        real = urllib.request.getproxies_environment

        def counting() -> dict[str, str]:
            reads.append(1)
            return real()

        monkeypatch.setattr(urllib.request, "getproxies_environment", counting)
        for n in range(5):
            await bot.send_message(7, f"m{n}")
        assert reads == []  # aiohttp's trust_env would read proxies (and netrc) each time
