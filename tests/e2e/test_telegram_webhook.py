"""Webhook mode behind the project's HTTP app, and the process entry point in both modes."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.app import App
from bot.channels.launch import EXIT_CONFIG, EXIT_FAILED, serve
from bot.channels.launch import run as run_telegram
from bot.channels.telegram import (
    MAX_WEBHOOK_BODY,
    SECRET_HEADER,
    WEBHOOK_PATH,
    build_application,
    webhook,
    webhook_url,
)
from bot.config import Settings
from bot.conversation import texts
from bot.i18n import plain_text
from bot.runtime import open_runtime
from tests.e2e.conftest import AR, make_settings
from tests.fakes.fake_bot_api import FakeBotAPI

SECRET = "s3cret-Token_1"
GREETING = plain_text(texts.greeting(AR).text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(url: str) -> tuple[int, Any]:
    async with ClientSession() as session, session.get(url) as response:
        return response.status, await response.json(content_type=None)


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.005)


@pytest.fixture
def hook_settings(tmp_path: Path, api: FakeBotAPI) -> Settings:
    settings = make_settings(
        tmp_path, api, webhook_url="https://bot.example.sa/", webhook_secret=SECRET
    )
    return settings.model_copy(
        update={"web": settings.web.model_copy(update={"port": 0})}
    )  # any free port


async def test_webhook_checks_the_secret_and_serves_healthz(
    api: FakeBotAPI, hook_settings: Settings
) -> None:
    runtime = await open_runtime(hook_settings)
    try:
        app = build_application(hook_settings, App(runtime), webhook=True)
        assert app.updater is None
        async with webhook(app, hook_settings) as serving:
            assert api.webhook_url == "https://bot.example.sa/telegram/webhook"
            assert api.webhook_secret == SECRET
            local = f"http://127.0.0.1:{serving.port}"

            for secret in (None, "wrong", SECRET + "x"):
                update = api.user_text(42, "/start", queue=False)
                status, _ = await api.post_update_to(local + WEBHOOK_PATH, update, secret)
                assert status == 403
            await app.update_queue.join()
            assert api.sent_to(42) == []  # nothing was processed

            update = api.user_text(42, "/start", queue=False)
            status, _ = await api.post_update_to(local + WEBHOOK_PATH, update, SECRET)
            assert status == 200
            await wait_until(lambda: api.sent_to(42))
            await app.update_queue.join()
            assert [plain_text(o.body or "") for o in api.sent_to(42)] == [GREETING]

            status, _ = await api.post_update_to(local + WEBHOOK_PATH, {"nonsense": 1}, SECRET)
            assert status == 400

            assert await get(local + "/healthz") == (200, {"status": "ok"})
    finally:
        await runtime.close()


def reply_chain(depth: int) -> bytes:
    """An update whose message replies to a message replying to ... `depth` deep (Telegram
    itself never nests reply_to_message): parsable JSON, too deep for Update.de_json."""
    message: dict[str, Any] = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}
    for number in range(2, depth + 2):
        message = {**message, "message_id": number, "reply_to_message": message}
    return json.dumps({"update_id": 1, "message": message}).encode()


async def post_raw(url: str, body: bytes, secret: str) -> int:
    headers = {"Content-Type": "application/json", SECRET_HEADER: secret}
    async with ClientSession() as session, session.post(url, data=body, headers=headers) as r:
        return r.status


async def test_deeply_nested_json_is_a_bad_request_in_one_log_line(
    api: FakeBotAPI, hook_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    depth = 5000  # far beyond the JSON parser's recursion limit, far below the size cap
    bodies = {
        "arrays": b"[" * depth + b"]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "inside an update": b'{"update_id": 1, "message": ' + b"[" * depth + b"]" * depth + b"}",
        "reply chain": reply_chain(700),
    }
    assert all(len(body) < MAX_WEBHOOK_BODY for body in bodies.values())
    json.loads(bodies["reply chain"])  # parsable: the depth trips the Update parsing only
    runtime = await open_runtime(hook_settings)
    try:
        app = build_application(hook_settings, App(runtime), webhook=True)
        async with webhook(app, hook_settings) as serving:
            url = f"http://127.0.0.1:{serving.port}{WEBHOOK_PATH}"
            caplog.clear()
            for name, body in bodies.items():
                assert await post_raw(url, body, SECRET) == 400, name
            warnings = [r for r in caplog.records if r.name == "bot.channels.telegram"]
            assert len(warnings) == len(bodies)
            # The reply chain got through the JSON parser and tripped PTB's Update parsing.
            assert warnings[-1].getMessage().endswith("(RecursionError)")
            assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []

            # The webhook still answers real updates.
            status, _ = await api.post_update_to(
                url, api.user_text(43, "/start", queue=False), SECRET
            )
            assert status == 200
            await wait_until(lambda: api.sent_to(43))
            await app.update_queue.join()
    finally:
        await runtime.close()


def test_webhook_url_gets_the_path_once(hook_settings: Settings) -> None:
    assert webhook_url(hook_settings) == "https://bot.example.sa/telegram/webhook"
    telegram = hook_settings.telegram.model_copy(
        update={"webhook_url": "https://x.sa/telegram/webhook"}
    )
    same = hook_settings.model_copy(update={"telegram": telegram})
    assert webhook_url(same) == "https://x.sa/telegram/webhook"


def test_webhook_mode_refuses_to_start_without_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        telegram_bot_token="123:ABC",
        webhook_url="https://bot.example.sa",
    )
    assert run_telegram(settings) == EXIT_CONFIG
    assert "WEBHOOK_SECRET is not set" in capsys.readouterr().err
    telegram = settings.telegram.model_copy(update={"webhook_secret": settings.telegram.bot_token})
    bad = settings.model_copy(update={"telegram": telegram})
    assert run_telegram(bad) == EXIT_CONFIG  # ":" is not allowed in a secret token
    assert "Bad setting WEBHOOK_SECRET" in capsys.readouterr().err
    assert not (tmp_path / "bot.sqlite3").exists()  # refused before opening anything


@pytest.fixture
async def stop() -> AsyncIterator[asyncio.Event]:
    yield asyncio.Event()


async def test_serve_by_polling_until_stopped(
    api: FakeBotAPI, tmp_path: Path, stop: asyncio.Event
) -> None:
    settings = make_settings(tmp_path, api)
    running = asyncio.create_task(serve(settings, stop))
    await api.wait_until_polling()
    api.user_text(7, "/start")
    [greeting] = await api.wait_for_sent(7)
    assert plain_text(greeting.body or "") == GREETING
    stop.set()
    assert await asyncio.wait_for(running, 10) == 0
    assert api.calls_to("deleteWebhook")  # polling made sure no webhook was left behind


async def test_serve_by_webhook_with_extra_routes_until_stopped(
    api: FakeBotAPI, tmp_path: Path, stop: asyncio.Event
) -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": "web"})

    port = free_port()
    settings = make_settings(
        tmp_path,
        api,
        webhook_url=f"http://127.0.0.1:{port}",
        webhook_secret=SECRET,
        web_port=port,
    )
    running = asyncio.create_task(
        serve(settings, stop, extra_routes=lambda runtime: [Route("/hello", hello)])
    )
    await wait_until(lambda: bool(api.webhook_url))
    assert await get(f"http://127.0.0.1:{port}/hello") == (200, {"hello": "web"})
    status, _ = await api.post_update_to_webhook(api.user_text(8, "/start", queue=False))
    assert status == 200
    [greeting] = await api.wait_for_sent(8)
    assert plain_text(greeting.body or "") == GREETING
    stop.set()
    assert await asyncio.wait_for(running, 10) == 0
    assert api.webhook_url == f"http://127.0.0.1:{port}/telegram/webhook"  # still registered


def test_a_taken_port_is_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        settings = Settings(
            _env_file=None,
            database_path=tmp_path / "bot.sqlite3",
            id_hash_key="k",
            telegram_bot_token="123:ABC",
            telegram_api_url="http://127.0.0.1:9",  # never contacted
            webhook_url="https://bot.example.sa",
            webhook_secret=SECRET,
            web_port=port,
            captcha_workers=0,
        )
        assert run_telegram(settings) == EXIT_FAILED
    assert f"Cannot listen on 127.0.0.1:{port} (WEB_HOST, WEB_PORT)" in capsys.readouterr().err


async def test_web_chat_beside_the_polling_bot(
    api: FakeBotAPI, tmp_path: Path, stop: asyncio.Event
) -> None:
    from bot.channels.web import web_routes

    port = free_port()
    settings = make_settings(tmp_path, api, web_port=port, web_chat=True)
    running = asyncio.create_task(serve(settings, stop, extra_routes=web_routes))
    await api.wait_until_polling()
    api.user_text(9, "/start")
    [greeting] = await api.wait_for_sent(9)
    assert plain_text(greeting.body or "") == GREETING
    async with ClientSession() as http:
        response = await http.post(f"http://127.0.0.1:{port}/api/chat", json={"command": "start"})
        body = await response.json()
    assert plain_text(body["replies"][0]["text"]) == GREETING
    stop.set()
    assert await asyncio.wait_for(running, 10) == 0
