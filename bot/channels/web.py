"""The web chat: the same conversation as on Telegram, in a browser, one session per cookie.

Routes (mounted into the project's single HTTP app):
    GET  /              the chat page (no external resources: works offline), in the language
                        the conversation will speak: the session's choice, else the browser's
    GET  /static/...    its script, style and icon (the same security headers as the page)
    POST /api/chat      one event in, the replies out (JSON)

A session is a random token the server issued; only its hash is stored, and any other cookie
value starts a new session. A cookie is free to drop, so what limits a client is its address
(bot.limits): TRUSTED_PROXIES says whose X-Forwarded-For to believe.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import os
import re
import secrets
from pathlib import Path
from string import Template
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from bot.channels.client_address import Networks, client_address, is_proxy
from bot.conversation import texts
from bot.conversation.events import Action, Button, ChatKind, Command, Event, Text
from bot.conversation.replies import Keyboard, Message, Photo, Reply, StatusLine, Voice
from bot.http import parse_json
from bot.i18n import browser_locale, pick_locale, translator_for
from bot.limits import network_of
from bot.runtime import Runtime

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PAGE = Path(__file__).parent / "templates" / "index.html"
COOKIE = "chat_session"
MAX_BODY = 4096  # bytes: an identity number or a code is a few characters
MAX_FIELD = 1000  # characters of text or button data accepted from the page
CHANNEL = "web"
UNKNOWN_NETWORK = "unknown"
# What secrets.token_urlsafe(32) issues (256 bits); anything else is not ours.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
SESSION_SECONDS = 24 * 3600  # idle sessions are pruned after a day; the cookie lasts as long
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _buttons(keyboard: Keyboard) -> list[list[dict[str, str]]]:
    return [[{"label": b.label, "data": b.data} for b in row] for row in keyboard]


def reply_json(reply: Reply) -> dict[str, Any]:
    if isinstance(reply, Photo):
        return {
            "type": "photo",
            "image": "data:image/png;base64," + base64.b64encode(reply.png).decode(),
            "alt": reply.alt,
            "text": reply.caption,
            "buttons": _buttons(reply.buttons),
            "rtl": reply.rtl,
        }
    if isinstance(reply, Voice):
        return {
            "type": "audio",
            "audio": "data:audio/ogg;base64," + base64.b64encode(reply.ogg).decode(),
            "label": reply.label,
            "text": reply.caption,
            "buttons": _buttons(reply.buttons),
            "rtl": reply.rtl,
        }
    assert isinstance(reply, Message)
    body: dict[str, Any] = {
        "type": "text",
        "text": reply.text,
        "buttons": _buttons(reply.buttons),
        "rtl": reply.rtl,
    }
    if reply.status is not None:
        body.update(_status(reply.text, reply.status))
    return body


def _status(text: str, status: StatusLine) -> dict[str, Any]:
    """A result's status line without its emoji (an empty box where the browser has no emoji
    font): the page draws a mark of its own (chat.js, chat.css) from `status.mark`."""
    lines = text.split("\n")
    lines[status.index] = lines[status.index].removeprefix(status.emoji + " ")
    return {"text": "\n".join(lines), "status": {"line": status.index, "mark": status.mark.value}}


def ui_strings(locale: str) -> dict[str, str]:
    """The page's own labels, from the catalogs like every other sentence."""
    tr = translator_for(locale)
    return {
        "title": tr._("Health insurance status"),
        "placeholder": tr._("Type your number or the code"),
        "send": tr._("Send"),
    }


def render_page(template: Template, locale: str) -> str:
    """The chat page with its title, direction and labels filled in: right at load, before
    the first reply (which carries the same strings, for a language switch later)."""
    ui = {name: html.escape(value) for name, value in ui_strings(locale).items()}
    return template.substitute(ui, lang=locale, dir="rtl" if locale == "ar" else "ltr")


def _event(body: dict[str, Any], language: str | None, network: str | None) -> Event | None:
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
    return Event(action, ChatKind.PRIVATE, language, network)


def _same_origin(request: Request) -> bool:
    """Refuse cross-site posts: the Origin (sent by browsers on POST) must be this host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser cross-site request (curl, tests); the cookie is SameSite
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _https(request: Request, peer: str | None, proxies: Networks) -> bool:
    """Whether the browser came over https: directly, or through one of our TLS proxies."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return peer is not None and is_proxy(peer, proxies) and forwarded == "https"


def _chat_id(token: str) -> str:
    # The cookie value never reaches the database: the chat is keyed by its hash.
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class _SecureStatic(StaticFiles):
    """Static files with the page's security headers (index.html is reachable here too)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        _secure(response.headers)
        return response


def _secure(headers: MutableHeaders) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value


def web_routes(runtime: Runtime) -> list[BaseRoute]:
    """The web chat's routes, answering through `runtime`'s web conversations and limits."""
    service = runtime.conversations(CHANNEL)
    limits = runtime.limits(CHANNEL)
    proxies = runtime.settings.web.trusted_proxies
    default_locale = runtime.settings.app.default_locale

    template = Template(PAGE.read_text(encoding="utf-8"))

    async def page(request: Request) -> Response:
        # The language the conversation will answer in (Engine.handle picks it the same way).
        stored = None
        token = request.cookies.get(COOKIE, "")
        if _TOKEN_RE.fullmatch(token):
            conv = await service.states.load_existing(CHANNEL, _chat_id(token))
            stored = conv.locale if conv is not None else None
        language = browser_locale(request.headers.get("accept-language"))
        locale = pick_locale(stored, language, default_locale)
        response = HTMLResponse(render_page(template, locale))
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Vary"] = "Accept-Language, Cookie"
        _secure(response.headers)
        return response

    def answer(replies: list[Reply], status: int = 200) -> JSONResponse:
        # Replies carry their direction; Arabic is the only right-to-left language we speak.
        locale = "ar" if not replies or replies[-1].rtl else "en"
        body = {"replies": [reply_json(r) for r in replies], "locale": locale}
        return JSONResponse({**body, "ui": ui_strings(locale)}, status)

    async def chat(request: Request) -> Response:
        if not _same_origin(request):
            return JSONResponse({"error": "cross-origin requests are not allowed"}, 403)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "send JSON"}, 415)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": "message too large"}, 413)
        try:
            body = parse_json(raw)
        except ValueError as exc:
            log.info("Web chat: a request that is not readable JSON (%s)", exc)
            return JSONResponse({"error": "invalid JSON"}, 400)
        # The browser's language, as Telegram's language_code: followed until the person picks.
        language = browser_locale(request.headers.get("accept-language"))
        peer = request.client.host if request.client is not None else None
        address = client_address(peer, request.headers.getlist("x-forwarded-for"), proxies)
        # A peer that is no IP address (a Unix socket) shares one bucket: limits never fail open.
        network = (network_of(address) if address is not None else None) or UNKNOWN_NETWORK
        event = _event(body, language, network) if isinstance(body, dict) else None
        if event is None:
            return JSONResponse({"error": "expected text, button or command"}, 400)

        token = request.cookies.get(COOKIE, "")
        replies: list[Reply] | None = None
        # Only a session the server issued (and has not pruned) is honoured.
        if _TOKEN_RE.fullmatch(token):
            chat_id = _chat_id(token)
            replies = await service.resume(chat_id, event)
        new_token = ""
        if replies is None:
            refusal = await limits.new_session(network, service.engine.clock())
            if refusal is not None:
                tr = translator_for(pick_locale(None, language, default_locale))
                return answer([texts.refused(tr, refusal)], 429)
            new_token = secrets.token_urlsafe(32)
            chat_id = _chat_id(new_token)
            replies = await service.handle(chat_id, event)
        response = answer(replies)
        if new_token:
            response.set_cookie(
                COOKIE,
                new_token,
                max_age=SESSION_SECONDS,
                httponly=True,
                samesite="strict",
                secure=_https(request, peer, proxies),
            )
        return response

    return [
        Route("/", page, methods=["GET"]),
        Route("/api/chat", chat, methods=["POST"]),
        Mount("/static", _SecureStatic(directory=STATIC), name="static"),
    ]
