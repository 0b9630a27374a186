"""The web chat against a harvester: dropped cookies, invented cookies, forged headers, many
requests for codes, a flood of lookups, a restart. Through the HTTP app, on SQLite."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.web import web_routes
from bot.config import Settings
from bot.http import build_http_app
from bot.i18n import plain_text
from bot.importer.demo import load_demo
from bot.runtime import Runtime, open_runtime

CODE = "123456"
# Valid demo numbers (bot/data/demo_policies.csv), and one with no policy.
NUMBERS = ["1000000008", "1012345672", "1023456781", "1034567899", "1045678909", "2000000006"]
NO_POLICY = "1067890127"


class WebChat:
    """The web chat's HTTP app on one database; clients from any address."""

    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        self.settings = Settings(
            _env_file=None,
            database_path=tmp_path / "bot.sqlite3",
            id_hash_key="k",
            captcha_test_code=CODE,
            captcha_workers=0,
            **overrides,
        )
        self.runtime: Runtime | None = None
        self.now = 1_800_000_000.0
        self._clients: list[httpx.AsyncClient] = []

    async def start(self) -> None:
        self.runtime = await open_runtime(self.settings)
        if not await self.runtime.policies.count():
            await load_demo(self.runtime.db, self.settings)
        self.runtime.conversations("web").engine.clock = lambda: self.now
        self.app = build_http_app(web_routes(self.runtime))

    async def stop(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    def client(self, address: str = "203.0.113.9") -> httpx.AsyncClient:
        """A browser at `address` (its own cookie jar)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self._clients.append(client)
        return client


Start = Callable[..., Any]


@pytest.fixture
async def start_web(tmp_path: Path) -> AsyncIterator[Start]:
    chats: list[WebChat] = []

    async def start(**overrides: Any) -> WebChat:
        chat = WebChat(tmp_path, **overrides)
        await chat.start()
        chats.append(chat)
        return chat

    yield start
    for chat in chats:
        await chat.stop()


async def post(client: httpx.AsyncClient, status: int = 200, **body: str) -> list[dict[str, Any]]:
    response = await client.post("/api/chat", json=body)
    assert response.status_code == status, response.text
    replies: list[dict[str, Any]] = response.json()["replies"]
    return replies


def text(reply: dict[str, Any]) -> str:
    return plain_text(str(reply["text"]))


async def lookup(client: httpx.AsyncClient, number: str, **headers: str) -> str:
    """What a harvester does: the number straight away, then the code; the last reply."""
    first = await client.post("/api/chat", json={"text": number}, headers=headers)
    if first.json()["replies"][-1]["type"] != "photo":
        return text(first.json()["replies"][-1])
    second = await client.post("/api/chat", json={"text": CODE}, headers=headers)
    return text(second.json()["replies"][-1])


async def test_cookieless_clients_from_one_address_hit_the_address_limit(start_web: Start) -> None:
    web = await start_web(lookups_per_address_per_hour=3, sessions_per_address_per_hour=100)
    for number in NUMBERS[:3]:
        card = await lookup(web.client(), number)  # a fresh cookie jar each time
        assert number[-2:] in card and "التأمين" in card
    refused = await lookup(web.client(), NUMBERS[3])
    assert "من شبكتك" in refused and "ساعة واحدة" in refused
    # Another address is not held back.
    assert NUMBERS[3][-2:] in await lookup(web.client("198.51.100.20"), NUMBERS[3])
    web.now += 3601
    assert NUMBERS[4][-2:] in await lookup(web.client(), NUMBERS[4])


async def test_a_forged_forwarded_for_does_not_help(start_web: Start) -> None:
    web = await start_web(lookups_per_address_per_hour=2)
    for n, number in enumerate(NUMBERS[:2]):
        await lookup(web.client(), number, **{"X-Forwarded-For": f"192.0.2.{n}"})
    refused = await lookup(web.client(), NUMBERS[2], **{"X-Forwarded-For": "192.0.2.99"})
    assert "من شبكتك" in refused


async def test_a_trusted_proxy_passes_the_real_address_on(start_web: Start) -> None:
    web = await start_web(lookups_per_address_per_hour=2, trusted_proxies="10.0.0.0/8")
    proxy = web.client("10.0.0.2")
    for number in NUMBERS[:2]:
        proxy.cookies.clear()
        await lookup(proxy, number, **{"X-Forwarded-For": "198.51.100.7"})
    proxy.cookies.clear()
    # The same client, whatever it writes on the left of what our proxy appended.
    forged = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}
    assert "من شبكتك" in await lookup(proxy, NUMBERS[2], **forged)
    proxy.cookies.clear()
    other = {"X-Forwarded-For": "198.51.100.8"}
    assert NUMBERS[2][-2:] in await lookup(proxy, NUMBERS[2], **other)


async def test_an_invented_cookie_is_not_honoured(start_web: Start) -> None:
    web = await start_web()
    real = web.client()
    await post(real, text=NUMBERS[0])
    issued = real.cookies["chat_session"]
    assert len(issued) >= 22  # 128 bits or more
    for invented in ("a", "A" * 43, issued[:-1] + ("B" if issued[-1] != "B" else "C")):
        stranger = web.client()
        stranger.cookies.set("chat_session", invented, domain="testserver.local")
        response = await stranger.post(
            "/api/chat", json={"text": CODE}, headers={"Cookie": f"chat_session={invented}"}
        )
        assert response.cookies.get("chat_session") not in (None, invented)
        # A new conversation, which is not waiting for a code.
        assert "مرحبًا" in text(response.json()["replies"][0])
    # The real session is untouched and still waits for its code.
    assert "1*******08" in text((await post(real, text=CODE))[-1])
    # Only the hash of the token is stored.
    assert web.runtime is not None
    rows = await web.runtime.db.read("SELECT chat_id, state FROM conversations")
    assert all(issued not in f"{chat_id}{state}" for chat_id, state in rows)


async def test_new_sessions_from_one_address_are_limited(start_web: Start) -> None:
    web = await start_web(sessions_per_address_per_hour=3)
    for _ in range(3):
        assert "مرحبًا" in text((await post(web.client(), command="start"))[0])
    [refused] = await post(web.client(), 429, command="start")
    assert "محادثات جديدة كثيرة" in text(refused)
    # A session already issued goes on.
    assert "مرحبًا" in text((await post(web.client("198.51.100.1"), command="start"))[0])


async def test_asking_for_codes_without_solving_them_hits_the_challenge_limit(
    start_web: Start,
) -> None:
    web = await start_web(challenges_per_hour=3)
    client = web.client()
    assert (await post(client, text=NUMBERS[0]))[0]["type"] == "photo"
    assert (await post(client, button="new_code"))[0]["type"] == "photo"
    assert (await post(client, button="audio_code"))[0]["type"] == "audio"
    [refused] = await post(client, button="new_code")
    assert refused["type"] == "text" and "طلبت رموزًا كثيرة" in text(refused)
    # New cookies from the same address: three times a chat's allowance in all (9).
    kinds = []
    for _ in range(3):
        fresh = web.client()
        kinds.append((await post(fresh, text=NUMBERS[1]))[0]["type"])
        kinds += [(await post(fresh, button="new_code"))[0]["type"] for _ in range(2)]
    assert kinds.count("photo") == 6 and kinds[-1] == "text"


async def test_the_circuit_breaker_answers_busy_and_warns_once_a_minute(
    start_web: Start, caplog: pytest.LogCaptureFixture
) -> None:
    web = await start_web(web_lookups_per_minute=2)
    for n in range(2):
        await lookup(web.client(f"198.51.100.{n}"), NUMBERS[n])
    caplog.set_level(logging.WARNING, logger="bot.limits")
    busy = [await lookup(web.client(f"192.0.2.{n}"), NUMBERS[2]) for n in range(3)]
    assert all("مزدحمة" in reply for reply in busy)
    warnings = [r for r in caplog.records if "lookups a minute" in r.getMessage()]
    assert len(warnings) == 1
    # Every other reply still works.
    assert "مرحبًا" in text((await post(web.client("192.0.2.50"), command="start"))[0])
    web.now += 61
    assert NUMBERS[2][-2:] in await lookup(web.client("192.0.2.60"), NUMBERS[2])


async def test_limits_survive_a_restart(start_web: Start) -> None:
    web = await start_web(lookups_per_address_per_hour=2, lookups_per_id_per_day=5)
    for number in NUMBERS[:2]:
        await lookup(web.client(), number)
    await web.stop()
    await web.start()
    assert "من شبكتك" in await lookup(web.client(), NUMBERS[2])


async def test_the_number_limit_says_nothing_about_the_number(start_web: Start) -> None:
    web = await start_web(lookups_per_id_per_day=1)
    with_policy = [await lookup(web.client(f"198.51.100.{n}"), NUMBERS[0]) for n in range(2)]
    without = [await lookup(web.client(f"192.0.2.{n}"), NO_POLICY) for n in range(2)]
    assert with_policy[1] == without[1]
    assert "مرة واحدة خلال آخر 24 ساعة" in without[1]


async def test_nested_json_gets_a_400(start_web: Start, caplog: pytest.LogCaptureFixture) -> None:
    web = await start_web()
    deep = b"[" * 3000 + b"]" * 3000
    assert len(deep) < 8192
    for body in (deep[:4000], b'{"text": ' + b"[" * 2000 + b"]" * 2000 + b"}"):
        response = await web.client().post(
            "/api/chat", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 413)
    nested = b"[" * 2000 + b"]" * 2000
    response = await web.client().post(
        "/api/chat", content=nested, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert not any(r.exc_info for r in caplog.records)


async def test_the_audio_code(start_web: Start) -> None:
    web = await start_web()
    client = web.client()
    [photo] = await post(client, text=NUMBERS[0])
    assert photo["alt"] == "رمز مصوَّر (ويتوفر رمز صوتي أيضًا)"
    assert [b["data"] for row in photo["buttons"] for b in row] == ["new_code", "audio_code"]
    [audio] = await post(client, button="audio_code")
    assert audio["type"] == "audio" and audio["label"] == "رمز صوتي من ستة أرقام"
    prefix = "data:audio/ogg;base64,"
    assert audio["audio"].startswith(prefix)
    ogg = base64.b64decode(audio["audio"][len(prefix) :])
    assert ogg.startswith(b"OggS") and b"OpusHead" in ogg[:100]
    assert "1*******08" in text((await post(client, text="١٢٣٤٥٦"))[-1])


async def test_every_page_has_the_security_headers(start_web: Start) -> None:
    web = await start_web()
    client = web.client()
    for path in ("/", "/static/chat.js", "/static/chat.css", "/static/favicon.svg"):
        response = await client.get(path)
        assert response.status_code == 200
        assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "SAMEORIGIN"


async def test_an_unexpected_failure_gets_the_apology_and_keeps_the_state(
    start_web: Start, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    web = await start_web()
    assert web.runtime is not None
    client = web.client()
    await post(client, text=NUMBERS[0])

    async def broken(id_hash: bytes) -> list[object]:
        raise RuntimeError("the database went away")

    real = web.runtime.policies.policies_for_hmac
    monkeypatch.setattr(web.runtime.policies, "policies_for_hmac", broken)
    [sorry] = await post(client, text=CODE)
    assert "حدث خطأ" in text(sorry)
    assert NUMBERS[0] not in caplog.text  # the log line carries no raw number
    monkeypatch.setattr(web.runtime.policies, "policies_for_hmac", real)
    # Nothing was saved by the failed turn: the same code still works.
    assert "1*******08" in text((await post(client, text=CODE))[-1])


async def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_only(start_web: Start) -> None:
    web = await start_web(trusted_proxies="10.0.0.0/8")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    behind = await web.client("10.0.0.2").post("/api/chat", json={"text": "x"}, headers=headers)
    assert "secure" in behind.headers["set-cookie"].lower()
    forged = await web.client().post("/api/chat", json={"text": "x"}, headers=headers)
    assert "secure" not in forged.headers["set-cookie"].lower()
