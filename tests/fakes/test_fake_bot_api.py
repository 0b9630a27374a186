"""Smoke tests of the fake Bot API, driven by a real python-telegram-bot Application.

Why: every end-to-end test and benchmark trusts this fake; these tests pin down that PTB can
talk to it (polling, multipart uploads, errors) and that its Telegram-like answers hold.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.fake_bot_api import (
    BLOCKED_BY_USER,
    BOT_ID,
    BOT_USERNAME,
    TINY_PNG,
    FakeBotAPI,
    FakeBotAPIProcess,
    Fault,
    ptb_polling,
)

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", os.environ["NO_PROXY"])

TOKEN = "123:ABC"
Ctx = ContextTypes.DEFAULT_TYPE


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as b:
        yield b


def png_bytes(width: int = 40, height: int = 30) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 128, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def seconds(value: int | dt.timedelta) -> float:
    """RetryAfter.retry_after is an int, or a timedelta under PTB_TIMEDELTA."""
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


async def echo(update: Update, context: Ctx) -> None:
    assert update.effective_message is not None and update.effective_message.text is not None
    await update.effective_message.reply_text(update.effective_message.text)


async def start(update: Update, context: Ctx) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"welcome {context.args}")


async def menu(update: Update, context: Ctx) -> None:
    assert update.effective_message is not None
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("نعم", callback_data="opt:yes")],
         [InlineKeyboardButton("لا", callback_data="opt:no")]]
    )  # fmt: skip
    await update.effective_message.reply_text("اختر", reply_markup=keyboard)


async def chosen(update: Update, context: Ctx) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    await query.edit_message_text(f"chosen {query.data.removeprefix('opt:')}")


def build_app(api: FakeBotAPI) -> Application[Any, Any, Any, Any, Any, Any]:
    app = api.application_builder(TOKEN).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(chosen, pattern=r"^opt:"))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


async def test_echo_and_command_via_polling(api: FakeBotAPI) -> None:
    async with ptb_polling(build_app(api), poll_timeout=0.5) as app:
        api.user_text(42, "/start deep")
        api.user_text(42, "مرحبا")
        api.user_text(-1001, "group hi", user_id=7)
        sent = await api.wait_for_sent(42, count=2)
        [group_reply] = await api.wait_for_sent(-1001)
        assert app.bot.username == BOT_USERNAME
    assert [o.text for o in sent] == ["welcome ['deep']", "مرحبا"]
    assert [o.message_id for o in sent] == [3, 4]  # after the two user messages (ids 1, 2)
    reply = api.message(42, 4)
    assert reply is not None
    assert reply["from"]["id"] == BOT_ID and reply["chat"]["type"] == "private"
    assert group_reply.text == "group hi"
    assert api.message(-1001, group_reply.message_id or 0)["chat"]["type"] == "supergroup"  # type: ignore[index]
    assert api.calls_to("getMe") and api.calls_to("deleteWebhook")
    assert api.pending_updates == 0  # the shutdown getUpdates confirmed everything


async def test_clean_shutdown_leaves_no_tasks(api: FakeBotAPI) -> None:
    async with ptb_polling(build_app(api), poll_timeout=5):
        await api.wait_until_polling()
    await api.stop()
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert leftovers == []


async def test_send_photo_multipart_roundtrip(api: FakeBotAPI, bot: Bot) -> None:
    data = png_bytes(40, 30)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="ok")]])
    message = await bot.send_photo(77, photo=data, caption="بطاقة", reply_markup=keyboard)
    assert message.photo[-1].file_size == len(data)
    assert (message.photo[-1].width, message.photo[-1].height) == (40, 30)
    [call] = api.calls_to("sendPhoto")
    assert call.photo == data
    assert call.params["reply_markup"] == keyboard.to_dict()  # decoded from the form field
    [sent] = api.sent_to(77)
    assert (sent.photo, sent.caption, sent.button_texts) == (data, "بطاقة", ["ok"])
    downloaded = await (await bot.get_file(message.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == data


async def test_429_surfaces_as_retry_after(api: FakeBotAPI, bot: Bot) -> None:
    api.inject_errors("sendMessage", [(429, 7), (500,)])
    with pytest.raises(RetryAfter) as excinfo:
        await bot.send_message(5, "x")
    assert seconds(excinfo.value.retry_after) == 7
    first = api.calls_to("sendMessage")[0]
    assert first.response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    with pytest.raises(NetworkError):
        await bot.send_message(5, "x")
    assert (await bot.send_message(5, "x")).text == "x"
    assert api.texts_to(5) == ["x"]


async def test_blocked_chat_and_bad_requests(api: FakeBotAPI, bot: Bot) -> None:
    api.block_chat(9)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(9, "hi")
    assert api.calls_to("sendMessage")[0].response["description"] == BLOCKED_BY_USER
    api.unblock_chat(9)
    sent = await bot.send_message(9, "hi")
    api.inject_errors("sendMessage", [(400, "Bad Request: chat not found")])
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(9, "again")
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("hi", chat_id=9, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="to edit not found"):
        await bot.edit_message_text("new", chat_id=9, message_id=999)
    with pytest.raises(BadRequest, match=r"(?i)unsupported start tag"):
        await bot.send_message(9, "a<br>b", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="reserved"):
        await bot.send_message(9, "ينتهي 2026.01.01", parse_mode=ParseMode.MARKDOWN_V2)
    html = await bot.send_message(9, "<b>صالح</b> &amp; ok", parse_mode=ParseMode.HTML)
    assert html.text == "صالح & ok"
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        too_long = InlineKeyboardButton("x", callback_data="x" * 65)
        await bot.send_message(9, "k", reply_markup=InlineKeyboardMarkup([[too_long]]))
    assert await bot.delete_message(9, sent.message_id)
    assert api.message(9, sent.message_id) is None


async def test_callback_query_flow(api: FakeBotAPI) -> None:
    async with ptb_polling(build_app(api), poll_timeout=0.5):
        api.user_text(50, "/menu")
        [shown] = await api.wait_for_sent(50)
        assert shown.button_texts == ["نعم", "لا"]
        update = api.user_tap(50, "لا")
        assert update["callback_query"]["message"]["message_id"] == shown.message_id
        await api.wait_for_calls("editMessageText")
        [answer] = await api.wait_for_calls("answerCallbackQuery")
    assert answer.ok and answer.params["callback_query_id"] == update["callback_query"]["id"]
    edited = api.message(50, shown.message_id or 0)
    assert edited is not None
    assert edited["text"] == "chosen no"
    assert "reply_markup" not in edited  # editing without reply_markup drops the keyboard
    assert "edit_date" in edited


async def test_long_poll_wakes_on_enqueue_and_honours_offset(api: FakeBotAPI) -> None:
    url = f"{api.base_url}{TOKEN}/getUpdates"
    async with httpx.AsyncClient(trust_env=False) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        poll = asyncio.create_task(client.post(url, data={"timeout": "10"}))
        await asyncio.sleep(0.05)
        first = api.user_text(1, "a")
        body = (await poll).json()
        assert loop.time() - started < 2
        assert [u["update_id"] for u in body["result"]] == [first["update_id"]]
        second = api.user_text(1, "b")
        body = (await client.post(url, json={"offset": first["update_id"] + 1})).json()
        assert [u["update_id"] for u in body["result"]] == [second["update_id"]]
        assert api.pending_updates == 1  # the first was confirmed by the offset
        empty = (await client.get(url, params={"offset": second["update_id"] + 1})).json()
        assert empty == {"ok": True, "result": []}


async def test_form_json_and_unknown_methods(api: FakeBotAPI) -> None:
    markup = {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}
    async with httpx.AsyncClient(trust_env=False, base_url=f"{api.base_url}{TOKEN}") as client:
        form = {"chat_id": "-5", "text": "[1]", "reply_markup": json.dumps(markup)}
        sent = (await client.post("/sendMessage", data=form)).json()["result"]
        assert sent["text"] == "[1]" and sent["reply_markup"] == markup
        assert sent["chat"] == {"id": -5, "type": "supergroup", "title": "Test supergroup 5"}
        as_json = (await client.post("/sendMessage", json={"chat_id": 6, "text": "j"})).json()
        assert as_json["result"]["chat"]["type"] == "private"
        unknown = (await client.post("/setMessageReaction", data={"chat_id": "6"})).json()
        assert unknown == {"ok": True, "result": True}
        bad_token = await client.post(f"{api.base_url}nope/getMe")
        assert bad_token.status_code == 404
    assert api.calls_to("sendMessage")[0].params["chat_id"] == -5
    methods = [(c.method, c.status) for c in api.calls]
    assert methods == [
        ("sendMessage", 200),
        ("sendMessage", 200),
        ("setMessageReaction", 200),
        ("getMe", 404),
    ]


async def test_user_update_builders_parse_in_ptb(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(3, "hello")
    cases = [
        (api.user_photo(3, caption="card", queue=False), filters.PHOTO),
        (api.user_sticker(3, queue=False), filters.Sticker.ALL),
        (api.user_voice(3, queue=False), filters.VOICE),
        (api.user_location(3, queue=False), filters.LOCATION),
        (api.user_contact(3, queue=False), filters.CONTACT),
        (api.user_document(3, queue=False), filters.Document.PDF),
        (api.user_text(3, "/help@insurance_test_bot", queue=False), filters.COMMAND),
        (api.user_edited_text(3, sent.message_id, "x", queue=False), filters.UpdateType.EDITED),
    ]
    for raw, message_filter in cases:
        update = Update.de_json(raw, bot)
        assert message_filter.check_update(update), raw
        assert update.effective_user is not None and update.effective_user.language_code == "ar"
    assert api.pending_updates == 0
    photo = Update.de_json(cases[0][0], bot).message
    assert photo is not None
    data = await (await photo.photo[-1].get_file()).download_as_bytearray()
    assert bytes(data) == TINY_PNG
    api.user_text(3, "queued")
    assert api.pending_updates == 1


async def test_reply_keyboard_tap_and_wait_for_calls(api: FakeBotAPI, bot: Bot) -> None:
    keyboard = ReplyKeyboardMarkup([[KeyboardButton("شارك رقمي", request_contact=True)]])
    await bot.send_message(8, "share", reply_markup=keyboard)
    update = api.user_tap(8, "شارك رقمي")
    assert update["message"]["contact"]["user_id"] == 8
    waiter = asyncio.create_task(api.wait_for_calls(lambda c: c.params.get("text") == "late"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await bot.send_message(8, "late")
    [late] = await waiter
    assert late.method == "sendMessage"
    assert [c.method for c in await api.wait_for_calls(3)] == ["getMe"] + ["sendMessage"] * 2
    with pytest.raises(TimeoutError, match="sendPhoto"):
        await api.wait_for_calls("sendPhoto", timeout=0.05)


async def test_hang_fault_and_delay(api: FakeBotAPI, bot: Bot) -> None:
    api.delay = 0.05
    api.inject_errors("getChat", [Fault(200, hang=0.1)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    chat = await bot.get_chat(11)
    assert chat.type == "private" and loop.time() - started >= 0.15


async def test_post_update_to_webhook(api: FakeBotAPI, bot: Bot) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        assert (await bot.get_webhook_info()).url.endswith("/hook")
        with pytest.raises(Exception, match="webhook is active"):
            await bot.get_updates()
        update = api.user_text(12, "via webhook", queue=False)
        assert await api.post_update_to_webhook(update) == (200, "ok")
    finally:
        await runner.cleanup()
    assert received == [(update, "s3cret")]


def test_child_process_control_routes() -> None:
    with FakeBotAPIProcess() as fake, httpx.Client(trust_env=False) as client:
        control = f"{fake.root_url}/_control"
        client.post(f"{control}/generate", json={"count": 3, "chats": 2}).raise_for_status()
        got = client.get(f"{fake.base_url}{TOKEN}/getUpdates").json()["result"]
        assert [u["message"]["text"] for u in got] == ["bench 0", "bench 1", "bench 2"]
        client.post(
            f"{fake.base_url}{TOKEN}/sendMessage", data={"chat_id": 10000, "text": "bench 0"}
        )
        stats = client.get(f"{control}/wait", params={"answered": 1, "timeout": 5}).json()
        assert stats["result"]["probes"]["answered"] == 1
        assert stats["result"]["by_method"]["sendmessage"] == 1
