"""The WhatsApp webhook through the HTTP app on SQLite: handshake, signatures, messages in
order and once, "other" messages; replies recorded where the Graph API would get them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.whatsapp_inbound import CHANNEL, WEBHOOK_PATH, Inbox, webhook_routes
from bot.config import Settings
from bot.conversation.replies import Message, Photo, Reply, Voice
from bot.http import build_http_app
from bot.i18n import plain_text
from bot.importer.demo import load_demo
from bot.runtime import Runtime, open_runtime
from bot.store.activity import ChatActivity
from bot.store.inbound import InboundSeen

SECRET, VERIFY, CODE = "app-secret", "verify-me", "123456"
_ids = itertools.count(1)


@dataclass
class RecordingReplier:
    sent: list[tuple[str, Reply]] = field(default_factory=list)
    read: list[str] = field(default_factory=list)

    async def mark_read(self, message_id: str) -> None:
        self.read.append(message_id)

    async def send(self, wa_id: str, replies: Sequence[Reply]) -> None:
        self.sent += [(wa_id, r) for r in replies]

    def texts(self, wa_id: str) -> list[str]:
        return [plain_text(_text(r)) for w, r in self.sent if w == wa_id]


def _text(reply: Reply) -> str:
    return reply.text if isinstance(reply, Message) else reply.caption


def payload(*messages: dict[str, Any], statuses: Sequence[dict[str, Any]] = ()) -> bytes:
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}}
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    body = {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": value}]}]}
    return json.dumps(body).encode()


def text(wa_id: str, body: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": message_id or f"wamid.{next(_ids)}",
        "type": "text",
        "text": {"body": body},
    }


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


@dataclass
class Hook:
    runtime: Runtime
    inbox: Inbox
    replier: RecordingReplier
    http: httpx.AsyncClient

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> int:
        response = await self.http.post(WEBHOOK_PATH, content=body, headers=headers or {})
        await self.inbox.idle()
        return response.status_code


@pytest.fixture
async def hook(tmp_path: Path) -> AsyncIterator[Hook]:
    settings = Settings(
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        id_hash_key="k",
        captcha_test_code=CODE,
        captcha_workers=0,
    )
    runtime = await open_runtime(settings)
    await load_demo(runtime.db, settings)
    replier = RecordingReplier()
    inbox = Inbox(runtime.conversations(CHANNEL), InboundSeen(runtime.db, CHANNEL), replier)
    app = build_http_app(webhook_routes(VERIFY, SECRET, inbox))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Hook(runtime, inbox, replier, http)
    await runtime.close()


async def test_the_handshake_answers_the_challenge_only_with_the_verify_token(hook: Hook) -> None:
    ok = await hook.http.get(
        WEBHOOK_PATH,
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "4711"},
    )
    assert (ok.status_code, ok.text) == (200, "4711")
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
        {},
    ):
        assert (await hook.http.get(WEBHOOK_PATH, params=params)).status_code == 403


async def test_unsigned_and_badly_signed_posts_are_refused_with_nothing_stored(
    hook: Hook,
) -> None:
    body = payload(text("966500000001", "1000000008"))
    assert await hook.post(body) == 401
    assert await hook.post(body, {"X-Hub-Signature-256": "sha256=" + "0" * 64}) == 401
    forged = signed(payload(text("966500000001", "other body")))
    assert await hook.post(body, forged) == 401
    assert hook.replier.sent == [] and hook.replier.read == []
    assert await hook.runtime.db.read("SELECT 1 FROM inbound_seen") == []
    assert await hook.runtime.db.read("SELECT 1 FROM conversations") == []


async def test_malformed_signed_posts_get_400_or_200_and_nothing_else(hook: Hook) -> None:
    for body, status in ((b"{", 400), (b"[" * 3000 + b"]" * 3000, 400), (b"[1, 2]", 200)):
        assert await hook.post(body, signed(body)) == status
    odd = json.dumps({"entry": [{"changes": [{"value": {"messages": [{"id": 5}]}}]}]}).encode()
    assert await hook.post(odd, signed(odd)) == 200
    assert hook.replier.sent == []


async def test_a_lookup_with_arabic_indic_digits_then_a_repeat_answered_once(hook: Hook) -> None:
    wa = "966500000002"
    first = payload(text(wa, "١٠٠٠٠٠٠٠٠٨", "wamid.number"))
    assert await hook.post(first, signed(first)) == 200
    [(_, photo)] = hook.replier.sent
    assert isinstance(photo, Photo) and photo.png.startswith(b"\x89PNG")
    code = payload(text(wa, CODE, "wamid.code"))
    assert await hook.post(code, signed(code)) == 200
    card = hook.replier.texts(wa)[-1]
    assert "1*******08" in card and "بوبا" in card
    # Meta's retry of both: no new reply.
    before = len(hook.replier.sent)
    both = payload(text(wa, "١٠٠٠٠٠٠٠٠٨", "wamid.number"), text(wa, CODE, "wamid.code"))
    assert await hook.post(both, signed(both)) == 200
    assert len(hook.replier.sent) == before
    assert hook.replier.read == ["wamid.number", "wamid.code"]


async def test_messages_of_one_post_are_answered_in_order(hook: Hook) -> None:
    wa = "966500000003"
    body = payload(text(wa, "2000000006"), text(wa, CODE))
    assert await hook.post(body, signed(body)) == 200
    kinds = [type(r) for w, r in hook.replier.sent if w == wa]
    assert kinds == [Photo, Message]
    assert "2*******06" in hook.replier.texts(wa)[-1]


async def test_buttons_lists_quick_replies_statuses_and_other_types(hook: Hook) -> None:
    wa = "966500000004"
    tap = {
        "from": wa,
        "id": "wamid.tap",
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": "path:citizen", "title": "x"}},
    }
    body = payload(tap)
    assert await hook.post(body, signed(body)) == 200
    assert "رقم الهوية الوطنية" in hook.replier.texts(wa)[-1]
    audio = {
        "from": wa,
        "id": "wamid.btn",
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": "audio_code"}},
    }
    number = payload(text(wa, "1000000008"), audio)
    assert await hook.post(number, signed(number)) == 200
    assert isinstance(hook.replier.sent[-1][1], Voice)
    # A delivery receipt gives no reply.
    before = len(hook.replier.sent)
    status = payload(statuses=[{"id": "wamid.x", "status": "delivered", "recipient_id": wa}])
    assert await hook.post(status, signed(status)) == 200
    assert len(hook.replier.sent) == before
    for kind in ("image", "audio", "video", "document", "sticker", "location", "contacts",
                 "reaction", "unsupported"):  # fmt: skip
        other = payload({"from": wa, "id": f"wamid.{kind}", "type": kind, kind: {}})
        assert await hook.post(other, signed(other)) == 200
        replies = hook.replier.texts(wa)[-2:]
        assert "الرسائل النصية" in replies[0], (kind, replies)
    assert "/start" not in hook.replier.texts(wa)[-1]
    start = payload(text(wa, "/start"))
    assert await hook.post(start, signed(start)) == 200
    assert hook.replier.texts(wa)[-1].startswith("مرحبًا")


async def test_a_non_ascii_signature_is_refused_not_a_500(hook: Hook) -> None:
    body = payload(text("966500000005", "1000000008"))
    response = await hook.http.post(
        WEBHOOK_PATH,
        content=body,
        headers={b"X-Hub-Signature-256": "sha256=\xe9".encode("latin-1")},
    )
    assert response.status_code == 401 and hook.replier.sent == []


async def test_malformed_fields_in_a_signed_post_spare_its_other_messages(hook: Hook) -> None:
    wa = "966500000006"
    broken: list[dict[str, Any]] = [
        {"from": wa, "id": "wamid.b1", "type": "text", "text": "not an object"},
        {"from": wa, "id": "wamid.b2", "type": "interactive", "interactive": "x"},
        {"from": wa, "id": "wamid.b3", "type": "interactive", "interactive": {"button_reply": 1}},
        {"from": wa, "id": "wamid.b4", "type": "button", "button": [1]},
        {"from": "", "id": "wamid.b5", "type": "text", "text": {"body": "hi"}},
    ]
    body = payload(*broken, text(wa, "/start"))
    assert await hook.post(body, signed(body)) == 200
    assert hook.replier.texts(wa)[-1].startswith("مرحبًا")


async def test_posts_during_shutdown_get_503_so_meta_retries_them(hook: Hook) -> None:
    await hook.inbox.drain()  # the channel is stopping
    body = payload(text("966500000007", "/start"))
    assert await hook.post(body, signed(body)) == 503
    assert await hook.runtime.db.read("SELECT 1 FROM inbound_seen") == []


async def test_each_chat_s_last_message_time_is_kept_newer_only_by_the_chat(
    hook: Hook, frozen_clock: Any
) -> None:
    wa = "966500000008"
    activity = ChatActivity(hook.runtime.db, CHANNEL)
    hook.inbox.activity = activity
    now = int(hook.inbox.clock())

    def at(seconds: int) -> dict[str, Any]:
        return {**text(wa, "/start"), "timestamp": str(seconds)}

    # A message Meta delivers late counts from when it was sent, not from its arrival.
    body = payload(at(now - 7200))
    assert await hook.post(body, signed(body)) == 200
    assert await activity.last_inbound(wa) == now - 7200
    body = payload(at(now - 600))
    assert await hook.post(body, signed(body)) == 200
    assert await activity.last_inbound(wa) == now - 600
    # An older one retried out of order does not move it back; a clock ahead of ours is now.
    hook.inbox._recorded.clear()  # (the in-memory step would skip it anyway)
    body = payload(at(now - 3600), at(now + 999))
    assert await hook.post(body, signed(body)) == 200
    assert await activity.last_inbound(wa) == now
    rows = await hook.runtime.db.read("SELECT * FROM chat_activity")
    assert [tuple(r) for r in rows] == [(CHANNEL, wa, float(now))]  # the chat, nothing else
