"""The web chat's result cards: the status as data (the page draws its mark), no emoji."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.web import web_routes
from bot.config import Settings
from bot.http import build_http_app
from bot.i18n import plain_text
from bot.importer.demo import load_demo
from bot.runtime import open_runtime

# What the card's status line starts with on Telegram and WhatsApp.
EMOJI = re.compile("[\u2600-\u27bf\U0001f300-\U0001faff]")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        id_hash_key="k",
        captcha_test_code="123456",
        captcha_workers=0,
        sessions_per_address_per_hour=2,
    )
    runtime = await open_runtime(settings)
    await load_demo(runtime.db, settings)
    app = build_http_app(web_routes(runtime))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await runtime.close()


async def card(client: httpx.AsyncClient, number: str) -> dict[str, Any]:
    await client.post("/api/chat", json={"text": number})
    response = await client.post("/api/chat", json={"text": "123456"})
    [reply] = response.json()["replies"]
    assert isinstance(reply, dict)
    return reply


@pytest.mark.parametrize(
    ("number", "mark", "line"),
    [
        ("1000000008", "valid", "التأمين سارٍ، ويتبقى على انتهائه 200 يوم."),
        ("1023456781", "expiring", "التأمين سارٍ، لكنه ينتهي قريبًا: يتبقى على انتهائه 7 أيام."),
        ("1045678909", "invalid", "التأمين غير سارٍ: مضى على انتهاء الوثيقة 20 يومًا."),
        ("1056789017", "invalid", "التأمين غير سارٍ: هذه الوثيقة ملغاة."),
        ("2145678906", "suspended", "التأمين غير سارٍ: هذه الوثيقة موقوفة."),
        ("1067890127", "invalid", "لا توجد وثيقة تأمين صحي مسجلة لهذا الرقم."),
    ],
)
async def test_a_card_carries_its_status_as_data_and_no_emoji(
    client: httpx.AsyncClient, number: str, mark: str, line: str
) -> None:
    reply = await card(client, number)
    assert reply["status"] == {"line": 1, "mark": mark}
    assert plain_text(reply["text"]).splitlines()[1] == line
    assert EMOJI.search(reply["text"]) is None


async def test_other_replies_carry_no_status(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/chat", json={"command": "start"})
    assert all("status" not in reply for reply in response.json()["replies"])


async def test_too_many_sessions_wait_one_hour_not_sixty_minutes(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(2):
        client.cookies.clear()
        assert (await client.post("/api/chat", json={"command": "start"})).status_code == 200
    client.cookies.clear()
    refused = await client.post("/api/chat", json={"command": "start"})
    assert refused.status_code == 429
    assert [plain_text(r["text"]) for r in refused.json()["replies"]] == [
        "بدأت محادثات جديدة كثيرة من شبكتك. الوقت المتبقي قبل المحاولة مجددًا: ساعة واحدة."
    ]
