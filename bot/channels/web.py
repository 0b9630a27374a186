"""The web chat: the same conversation as on Telegram, in a browser, one session per cookie.

Routes (mounted into the project's single HTTP app):
    GET  /              the chat page (static, no external resources: works offline)
    GET  /static/...    its script and style
    POST /api/chat      one event in, the replies out (JSON)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.conversation.events import Action, Button, ChatKind, Command, Event, Text
from bot.conversation.replies import Keyboard, Message, Photo, Reply
from bot.conversation.service import ConversationService
from bot.i18n import translator_for

STATIC = Path(__file__).parent / "static"
COOKIE = "chat_session"
MAX_BODY = 4096  # bytes: an identity number or a code is a few characters
MAX_FIELD = 1000  # characters of text or button data accepted from the page


class ChatLocks:
    """One lock per chat so a chat's events are handled in order (and others in parallel)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    async def run(self, chat_id: str, work: Callable[[], Any]) -> Any:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] = self._users.get(chat_id, 0) + 1
        try:
            async with lock:
                return await work()
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:  # nobody waiting: forget the lock
                del self._users[chat_id], self._locks[chat_id]


def _buttons(keyboard: Keyboard) -> list[list[dict[str, str]]]:
    return [[{"label": b.label, "data": b.data} for b in row] for row in keyboard]


def reply_json(reply: Reply) -> dict[str, Any]:
    if isinstance(reply, Photo):
        return {
            "type": "photo",
            "image": "data:image/png;base64," + base64.b64encode(reply.png).decode(),
            "text": reply.caption,
            "buttons": _buttons(reply.buttons),
            "rtl": reply.rtl,
        }
    assert isinstance(reply, Message)
    return {
        "type": "text",
        "text": reply.text,
        "buttons": _buttons(reply.buttons),
        "rtl": reply.rtl,
    }


def ui_strings(locale: str) -> dict[str, str]:
    """The page's own labels, from the catalogs like every other sentence."""
    tr = translator_for(locale)
    return {
        "title": tr._("Health insurance status"),
        "placeholder": tr._("Type your number or the code"),
        "send": tr._("Send"),
    }


def _event(body: dict[str, Any], language: str | None) -> Event | None:
    """What the page sent: {"text": ...}, {"button": ...} or {"command": ...}."""
    action: Action
    match body:
        case {"text": str(text)} if len(text) <= MAX_FIELD:
            action = Text(text)
        case {"button": str(data)} if len(data) <= MAX_FIELD:
            action = Button(data)
        case {"command": str(name)} if len(name) <= MAX_FIELD:
            action = Command(name.strip().lstrip("/").lower())
        case _:
            return None
    return Event(action, ChatKind.PRIVATE, language)


def _same_origin(request: Request) -> bool:
    """Refuse cross-site posts: the Origin (sent by browsers on POST) must be this host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser cross-site request (curl, tests); the cookie is SameSite
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def web_routes(service: ConversationService) -> list[BaseRoute]:
    locks = ChatLocks()

    async def page(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    async def chat(request: Request) -> Response:
        if not _same_origin(request):
            return JSONResponse({"error": "cross-origin requests are not allowed"}, 403)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "send JSON"}, 415)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": "message too large"}, 413)
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, 400)
        language = request.headers.get("accept-language", "").split(",")[0] or None
        event = _event(body, language) if isinstance(body, dict) else None
        if event is None:
            return JSONResponse({"error": "expected text, button or command"}, 400)

        token = request.cookies.get(COOKIE)
        new_session = not token or len(token) > 64
        if new_session:
            token = secrets.token_urlsafe(32)
        assert token is not None
        # The cookie value never reaches the database: the chat is keyed by its hash.
        chat_id = hashlib.sha256(token.encode()).hexdigest()[:32]
        replies = await locks.run(chat_id, lambda: service.handle(chat_id, event))
        # Replies carry their direction; Arabic is the only right-to-left language we speak.
        locale = "ar" if not replies or replies[-1].rtl else "en"
        response = JSONResponse(
            {
                "replies": [reply_json(r) for r in replies],
                "locale": locale,
                "ui": ui_strings(locale),
            }
        )
        if new_session:
            response.set_cookie(
                COOKIE,
                token,
                max_age=30 * 24 * 3600,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    return [
        Route("/", page, methods=["GET"]),
        Route("/api/chat", chat, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
