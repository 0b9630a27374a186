"""The web chat's HTTP surface: sessions, limits and same-origin rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.channels.web import web_routes
from bot.config import Settings
from bot.conversation import texts
from bot.http import build_http_app
from bot.i18n import plain_text, translator_for
from bot.importer.demo import load_demo
from bot.runtime import open_runtime
from tests.conftest import on_both_backends

AR = translator_for("ar")

# The web chat's API on SQLite and on PostgreSQL.
backend = on_both_backends()


@pytest.fixture
async def client(store_settings: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        _env_file=None,
        **store_settings,
        id_hash_key="k",
        captcha_test_code="123456",
        captcha_workers=0,
    )
    runtime = await open_runtime(settings)
    await load_demo(runtime.db, settings)
    app = build_http_app(web_routes(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await runtime.close()


async def say(client: httpx.AsyncClient, **body: str) -> list[str]:
    response = await client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return [plain_text(r["text"]) for r in response.json()["replies"]]


async def test_page_and_health(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and 'dir="rtl"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # no external resources
    assert (await client.get("/static/chat.js")).status_code == 200
    assert (await client.get("/healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("accept_language", "opening"),
    [
        (None, '<html lang="ar" dir="rtl">'),  # Arabic unless the browser asks otherwise
        ("ar-SA,ar;q=0.9", '<html lang="ar" dir="rtl">'),
        ("fr-FR,fr;q=0.9", '<html lang="ar" dir="rtl">'),  # none we speak: Arabic
        ("en-US,en;q=0.9", '<html lang="en" dir="ltr">'),
        ("fr-FR,en;q=0.8,ar;q=0.5", '<html lang="en" dir="ltr">'),
    ],
)
async def test_the_page_and_the_greeting_come_in_the_browsers_language(
    client: httpx.AsyncClient, accept_language: str | None, opening: str
) -> None:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    page = await client.get("/", headers=headers)
    english = 'lang="en"' in opening
    assert opening in page.text
    title = "Health insurance status" if english else "حالة التأمين الصحي"
    assert f"<title>{title}</title>" in page.text and f'<h1 id="title">{title}</h1>' in page.text
    assert page.headers["vary"] == "Accept-Language, Cookie"
    assert "$" not in page.text  # every blank of the template filled
    response = await client.post("/api/chat", json={"command": "start"}, headers=headers)
    [greeting] = response.json()["replies"]
    assert greeting["text"].startswith("Hello!" if english else "مرحبًا!")
    assert response.json()["locale"] == ("en" if english else "ar")


async def test_the_page_follows_the_sessions_language_choice(client: httpx.AsyncClient) -> None:
    await say(client, command="start")
    assert 'lang="ar"' in (await client.get("/")).text
    await say(client, button="lang:en")
    assert '<html lang="en" dir="ltr">' in (await client.get("/")).text
    # The choice wins over the browser's language; another browser gets its own.
    arabic_browser = {"Accept-Language": "ar-SA"}
    assert '<html lang="en" dir="ltr">' in (await client.get("/", headers=arabic_browser)).text
    client.cookies.clear()
    assert '<html lang="ar" dir="rtl">' in (await client.get("/", headers=arabic_browser)).text


async def test_the_image_codes_alt_text_in_english(client: httpx.AsyncClient) -> None:
    english = {"Accept-Language": "en"}
    await client.post("/api/chat", json={"button": "path:citizen"}, headers=english)
    response = await client.post("/api/chat", json={"text": "1000000008"}, headers=english)
    [photo] = response.json()["replies"]
    assert photo["alt"] == "Image code (an audio code is offered too)"


async def test_a_lookup_through_the_api_and_sessions_are_separate(
    client: httpx.AsyncClient,
) -> None:
    assert (await say(client, command="/start"))[0].startswith("مرحبًا!")
    session = client.cookies.get("chat_session")
    assert session
    await say(client, button="path:citizen")
    await say(client, text="1000000008")
    [card] = await say(client, text="١٢٣٤٥٦")
    assert "التأمين سارٍ" in card and "1*******08" in card
    # A web page cannot write to anyone later: no reminder offer, no reminder commands.
    response = await client.post("/api/chat", json={"button": "path:citizen"})
    await say(client, text="1000000008")
    raw = (await client.post("/api/chat", json={"text": "123456"})).json()["replies"]
    assert [b["data"] for row in raw[0]["buttons"] for b in row] == ["new_lookup"]
    unknown = await say(client, command="/reminders")
    assert unknown[0] == plain_text(texts.unknown_command(AR).text)
    assert response.status_code == 200
    # Another browser (no cookie) has its own conversation.
    client.cookies.clear()
    [other] = await say(client, text="123456")
    assert other.startswith("مرحبًا!")
    assert client.cookies.get("chat_session") != session


async def test_limits_and_same_origin(client: httpx.AsyncClient) -> None:
    cross = await client.post(
        "/api/chat", json={"text": "x"}, headers={"Origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    same = await client.post(
        "/api/chat", json={"command": "start"}, headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 200
    form = await client.post("/api/chat", data={"text": "x"})
    assert form.status_code == 415
    huge = await client.post("/api/chat", json={"text": "1" * 10_000})
    assert huge.status_code == 413
    assert (await client.post("/api/chat", json={"nothing": 1})).status_code == 400
    assert (await client.post("/api/chat", json=[1, 2])).status_code == 400
    bad_json = await client.post(
        "/api/chat", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    # 900 characters fit the body limit and get the engine's friendly reply.
    replies = await say(client, text="x" * 900)
    assert "أطول مما أستطيع" in replies[0]
