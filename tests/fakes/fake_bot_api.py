"""A local fake of the Telegram Bot API for end-to-end tests and benchmarks.

Why: Telegram is unreachable from this machine and from CI (and would be slow and flaky
anyway), so the bot under test is pointed at this aiohttp server through PTB's ``base_url`` and
``base_file_url``. The fake answers the methods python-telegram-bot uses with realistic JSON,
records every call for assertions, lets a test play the user by queueing updates for
``getUpdates`` (or POSTing them to a webhook), mirrors Telegram's strictness where bots commonly
trip (entity parsing, "message is not modified", callback_data > 64 bytes, editing without
``reply_markup`` drops the keyboard) and injects faults (429 with ``retry_after``, 403 blocked,
5xx, delays).

Typical use::

    async with FakeBotAPI() as api:
        app = api.application_builder().build()
        app.add_handler(MessageHandler(filters.TEXT, echo))
        async with ptb_polling(app):
            api.user_text(42, "hi")
            [reply] = await api.wait_for_sent(42)
            assert reply.text == "hi"

For benchmarks :class:`FakeBotAPIProcess` runs the same server in a child process; it is then
driven through the ``/_control/...`` HTTP routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import html.parser
import io
import itertools
import json
import multiprocessing
import os
import re
import signal
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from aiohttp import ClientSession, ClientTimeout, web

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from telegram.ext import Application, ApplicationBuilder

JSONDict = dict[str, Any]

BOT_ID = 1000
BOT_USERNAME = "insurance_test_bot"
BOT_FIRST_NAME = "Insurance Test Bot"
#: Sender of user updates in groups when no ``user_id`` is given.
DEFAULT_GROUP_USER_ID = 424242

BLOCKED_BY_USER = "Forbidden: bot was blocked by the user"
CHAT_NOT_FOUND = "Bad Request: chat not found"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a content and reply markup of the current message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

# Form fields PTB sends as plain strings that must never be JSON-decoded (an echoed "[1]" or
# "123" has to stay text). Every other form field is decoded when it parses as JSON, because PTB
# json-dumps all non-str values (ints, bools, reply_markup, entities, ...).
_TEXT_KEYS = frozenset(
    {
        "text", "caption", "query", "data", "title", "description", "short_description",
        "name", "first_name", "last_name", "phone_number", "address", "emoji", "secret_token",
        "url", "callback_query_id", "inline_message_id", "parse_mode", "language_code",
        "action", "photo", "document", "audio", "video", "voice", "sticker", "animation",
        "video_note", "thumbnail", "file_id", "question", "explanation", "message_effect_id",
        "business_connection_id", "ip_address", "certificate", "vcard", "performer",
        "file_name", "filename", "custom_title", "invite_link", "payload", "currency",
        "start_parameter", "switch_pm_text", "next_offset", "foursquare_id",
        "foursquare_type", "google_place_id", "google_place_type", "sticker_set_name",
    }
)  # fmt: skip
_JSONISH_START = frozenset('{["-0123456789')

# Methods refused for a chat configured with ``block_chat`` / ``set_chat_fault``.
_CHAT_FAULT_PREFIXES = ("send", "edit", "copy", "forward")
_MEDIA_KEYS = ("photo", "document", "video", "audio", "voice", "animation", "sticker")
_HTML_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
        "a", "code", "pre", "blockquote", "tg-emoji", "tg-time",
    }
)  # fmt: skip
_MDV2_ALWAYS_ESCAPED = frozenset("#+-={}.!")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_MDV2_TOGGLES = {"*": "Bold", "_": "Italic", "~": "Strikethrough"}

# A valid 1x1 PNG, the default payload of user photos.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def ensure_no_proxy() -> None:
    """Exempt loopback from proxies: httpx (PTB) honours *_PROXY variables, the fake is local."""
    for var in ("NO_PROXY", "no_proxy"):
        present = [p.strip() for p in os.environ.get(var, "").split(",") if p.strip()]
        missing = [h for h in ("127.0.0.1", "localhost") if h not in present]
        if missing:
            os.environ[var] = ",".join([*present, *missing])


def _utf16_len(text: str) -> int:
    """Telegram measures text and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _decode_value(key: str, value: str) -> Any:
    """Undo PTB's form encoding: non-str values arrive json-dumped."""
    if key in _TEXT_KEYS or not value:
        return value
    if value[0] in _JSONISH_START or value in ("true", "false", "null"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _now() -> int:
    return int(time.time())


class ApiError(Exception):
    """A Telegram error answer: raised by method handlers, turned into ``ok: false`` JSON."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass(frozen=True)
class Fault:
    """One injected failure. ``status`` 200 with ``hang`` only slows the call down."""

    status: int
    description: str | None = None
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None
    #: Seconds to sleep before answering (e.g. longer than the client's read timeout).
    hang: float = 0.0

    @classmethod
    def coerce(cls, spec: Fault | tuple[Any, ...] | int) -> Fault:
        """Accept ``(429, retry_after)``, ``(500,)``, ``(403, "description")`` or a bare code."""
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, int):
            return cls(spec)
        status, *rest = spec
        if status == 429:
            return cls(429, retry_after=int(rest[0]) if rest else 1)
        return cls(int(status), str(rest[0]) if rest else None)

    def error(self) -> ApiError | None:
        if self.status == 200:
            return None
        if self.status == 429:
            retry_after = self.retry_after or 1
            return ApiError(
                429,
                self.description or f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        parameters = (
            {"migrate_to_chat_id": self.migrate_to_chat_id} if self.migrate_to_chat_id else None
        )
        description = self.description or _DEFAULT_DESCRIPTIONS.get(self.status, "Error")
        return ApiError(self.status, description, parameters)


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    data: bytes
    filename: str | None
    content_type: str | None


@dataclass
class Call:
    """One bot API request and the answer the fake gave."""

    seq: int
    method: str
    params: JSONDict
    token: str
    #: ``time.monotonic()`` when the answer was produced (comparable across processes).
    timestamp: float
    status: int
    response: JSONDict
    files: dict[str, Upload] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        return self.response.get("result")

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def photo(self) -> bytes | None:
        """Raw bytes of an uploaded photo (multipart ``photo`` or ``attach://`` part)."""
        upload = _resolve_upload(self.params.get("photo"), self.files, "photo")
        return upload.data if upload else None


@dataclass
class Outgoing:
    """A message the bot delivered or changed (send*/edit*), as a test wants to assert on it."""

    method: str
    chat_id: int
    message_id: int | None
    text: str | None
    caption: str | None
    reply_markup: JSONDict | None
    parse_mode: str | None
    photo: bytes | None
    params: JSONDict
    timestamp: float

    @property
    def body(self) -> str | None:
        """Text or caption, whichever the message has."""
        return self.text if self.text is not None else self.caption

    @property
    def buttons(self) -> list[JSONDict]:
        """Inline or reply keyboard buttons, flattened row by row."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [b if isinstance(b, dict) else {"text": str(b)} for row in rows for b in row]

    @property
    def button_texts(self) -> list[str]:
        return [str(b.get("text", "")) for b in self.buttons]


@dataclass
class _Stored:
    """Current state of a message plus what "not modified" compares (the raw sent text)."""

    message: JSONDict
    raw: str | None
    markup: JSONDict | None


@dataclass
class _StoredFile:
    file_id: str
    unique_id: str
    path: str
    data: bytes | None
    size: int


@dataclass
class _Ctx:
    token: str
    method: str
    params: JSONDict
    files: dict[str, Upload]


def _resolve_upload(value: Any, files: Mapping[str, Upload], name: str) -> Upload | None:
    if isinstance(value, str) and value.startswith("attach://"):
        return files.get(value.removeprefix("attach://"))
    return files.get(name)


def _method_is(method: str) -> Callable[[Call], bool]:
    wanted = method.lower()
    return lambda call: call.method.lower() == wanted


class _EntityError(ValueError):
    pass


class _TelegramHTML(html.parser.HTMLParser):
    """Validates Telegram's HTML subset and yields the plain text, like the server does."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self._text = text
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self.out: list[str] = []
        self.stack: list[str] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return len(self._text[: self._line_starts[line - 1] + col].encode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise _EntityError(f'Unsupported start tag "{tag}" at byte offset {self._offset()}')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            expected = f'expected "</{self.stack[-1]}>", ' if self.stack else ""
            raise _EntityError(
                f'Unmatched end tag at byte offset {self._offset()}, {expected}found "</{tag}>"'
            )
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def _plain_html(text: str) -> str:
    parser = _TelegramHTML(text)
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise _EntityError(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"')
    return "".join(parser.out)


def _check_markdown_v2(text: str) -> None:
    """The MarkdownV2 rules bots break most: unescaped reserved characters, unclosed entities."""
    i, n = 0, len(text)
    open_toggles: Counter[str] = Counter()
    link_text_depth = 0
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if text.startswith("```", i) or ch == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = i + len(fence)
            while end < n and not text.startswith(fence, end):
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                entity = "Pre" if fence == "```" else "Code"
                raise _EntityError(f"Can't find end of {entity} entity at byte offset {i}")
            i = end + len(fence)
            continue
        if ch in _MDV2_TOGGLES:
            open_toggles[ch] ^= 1
        elif ch == "|":
            if not text.startswith("||", i):
                raise _EntityError(
                    "Character '|' is reserved and must be escaped with the preceding '\\'"
                )
            open_toggles["||"] ^= 1
            i += 2
            continue
        elif ch == "!" and text.startswith("![", i):
            pass
        elif ch == "[":
            link_text_depth += 1
        elif ch == "]" and link_text_depth:
            link_text_depth -= 1
            if text.startswith("(", i + 1):
                end = i + 2
                while end < n and text[end] != ")":
                    end += 2 if text[end] == "\\" else 1
                i = end + 1
                continue
        elif (
            ch in _MDV2_ALWAYS_ESCAPED
            or ch in "()]"
            or (ch == ">" and i > 0 and text[i - 1] != "\n")
        ):
            raise _EntityError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        i += 1
    for ch, name in _MDV2_TOGGLES.items():
        if open_toggles[ch]:
            raise _EntityError(f"Can't find end of {name} entity")
    if open_toggles["||"]:
        raise _EntityError("Can't find end of Spoiler entity")


class FakeBotAPI:
    """In-process fake Telegram Bot API server (aiohttp) with recording and fault injection."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        strict_entities: bool = True,
        valid_tokens: Iterable[str] | None = None,
        first_update_id: int = 100_000,
    ) -> None:
        self.host = host
        self.port = port
        #: Seconds added to every bot call (simulated network round trip; half is spent
        #: before the call is handled and recorded, half before the answer is sent).
        self.delay = delay
        #: Extra per-method delay in seconds, keyed by lower-cased method name.
        self.method_delays: dict[str, float] = {}
        #: Reject bad HTML / MarkdownV2 like Telegram does ("can't parse entities").
        self.strict_entities = strict_entities
        #: When set, other (well-formed) tokens get 401 Unauthorized.
        self.valid_tokens = set(valid_tokens) if valid_tokens is not None else None
        self.bot_user: JSONDict = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.calls: list[Call] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_allowed_updates: list[str] | None = None
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}

        self._runner: web.AppRunner | None = None
        self._closing = False
        self._calls_by_method: dict[str, list[Call]] = {}
        self._outgoing: dict[int, list[Outgoing]] = {}
        self._messages: dict[int, dict[int, _Stored]] = {}
        self._next_message_id: dict[int, int] = {}
        self._chats: dict[int, JSONDict] = {}
        self._chat_usernames: dict[str, int] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_paths: dict[str, _StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._pending: deque[JSONDict] = deque()
        self._next_update_id = first_update_id
        self._open_callbacks: set[str] = set()
        self._callback_seq = itertools.count(4_000_000_000_000_000_001)
        self._poll_generation: dict[str, int] = {}
        self._parked_polls = 0
        self._faults: dict[str, deque[Fault]] = {}
        self._chat_faults: dict[int, Fault] = {}
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        self._epoch = 0
        # Benchmark probes: text of a queued user message -> monotonic enqueue time.
        self._probes: dict[str, float] = {}
        self._probe_latencies: list[float] = []
        self._probes_sent = 0
        self._shutdown_requested: asyncio.Event | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._webhook_client: ClientSession | None = None
        #: Webhook posts (``/_control/deliver``) that did not get a 200.
        self.webhook_failures = 0
        self._handlers: dict[str, Callable[[_Ctx], Any]] = {
            name.removeprefix("_m_").lower(): getattr(self, name)
            for name in dir(self)
            if name.startswith("_m_")
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``; the bot config derives ``/bot`` and ``/file/bot``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``; PTB appends the token."""
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root_url}/file/bot"

    async def start(self) -> Self:
        """Listen on ``host:port`` (port 0 picks a free one)."""
        ensure_no_proxy()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_post("/_control/enqueue", self._control_enqueue)
        app.router.add_post("/_control/user_text", self._control_user_text)
        app.router.add_post("/_control/generate", self._control_generate)
        app.router.add_post("/_control/deliver", self._control_deliver)
        app.router.add_post("/_control/config", self._control_config)
        app.router.add_post("/_control/clear", self._control_clear)
        app.router.add_post("/_control/shutdown", self._control_shutdown)
        app.router.add_get("/_control/stats", self._control_stats)
        app.router.add_get("/_control/calls", self._control_calls)
        app.router.add_get("/_control/wait", self._control_wait)
        # handler_cancellation: a long poll whose client went away must not linger.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._closing = False
        return self

    async def stop(self) -> None:
        """Wake long polls so they answer at once, then close the server."""
        self._closing = True
        self._notify_updates()
        self._notify_calls()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._webhook_client is not None:
            await self._webhook_client.close()
            self._webhook_client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def application_builder(
        self, token: str = "123:ABC"
    ) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
        """A PTB ``ApplicationBuilder`` already pointed at this fake."""
        from telegram.ext import ApplicationBuilder

        return (
            ApplicationBuilder()
            .token(token)
            .base_url(self.base_url)
            .base_file_url(self.base_file_url)
        )

    # ------------------------------------------------------------------ assertions

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method (any case), oldest first."""
        return list(self._calls_by_method.get(method.lower(), ()))

    def sent_to(self, chat_id: int) -> list[Outgoing]:
        """Messages delivered to / edited in a chat, oldest first (failed calls excluded)."""
        return list(self._outgoing.get(int(chat_id), ()))

    def media_of(self, sent: Outgoing, kind: str) -> bytes | None:
        """The bytes of the file a sent message carries (`kind`: voice, audio, document...)."""
        stored = self._messages.get(sent.chat_id, {}).get(sent.message_id or 0)
        media = stored.message.get(kind) if stored is not None else None
        if not isinstance(media, dict):
            return None
        file = self._files.get(str(media.get("file_id")))
        return file.data if file is not None else None

    def last_sent(self, chat_id: int) -> Outgoing | None:
        sent = self._outgoing.get(int(chat_id))
        return sent[-1] if sent else None

    def texts_to(self, chat_id: int) -> list[str]:
        """Bodies (text or caption) of what was sent/edited in a chat."""
        return [o.body or "" for o in self._outgoing.get(int(chat_id), ())]

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """Current state of a message (after edits), or None if unknown or deleted."""
        stored = self._messages.get(int(chat_id), {}).get(int(message_id))
        return stored.message if stored else None

    def chat_messages(self, chat_id: int) -> list[JSONDict]:
        """The chat as a user would see it now: every live message, oldest first."""
        return [s.message for s in self._messages.get(int(chat_id), {}).values()]

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed through ``getUpdates(offset=...)``."""
        return len(self._pending)

    def clear(self) -> None:
        """Forget recorded calls and outgoing messages (chat state and queued updates stay)."""
        self.calls.clear()
        self._calls_by_method.clear()
        self._outgoing.clear()
        self._epoch += 1
        self._notify_calls()

    async def wait_for_calls(
        self,
        match: Callable[[Call], bool] | str | int,
        timeout: float = 5.0,
        *,
        count: int = 1,
    ) -> list[Call]:
        """Wait until calls show up; returns them. Raises TimeoutError with recent calls.

        ``match`` is a predicate or a method name (then ``count`` matching calls are awaited),
        or an int n (then at least n calls in total).
        """
        if isinstance(match, int):
            total, predicate = match, None
        else:
            total = 0
            predicate = _method_is(match) if isinstance(match, str) else match
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found: list[Call] = []
        cursor, epoch = 0, self._epoch
        while True:
            if epoch != self._epoch:
                found, cursor, epoch = [], 0, self._epoch
            if predicate is None:
                if len(self.calls) >= total:
                    return list(self.calls)
            else:
                found.extend(c for c in self.calls[cursor:] if predicate(c))
                cursor = len(self.calls)
                if len(found) >= count:
                    return found
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                raise TimeoutError(
                    f"wait_for_calls({match!r}, count={count}) timed out after {timeout}s; "
                    f"matched {len(found)}; recent calls: {self._describe_recent()}"
                )
            event = self._calls_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    @property
    def polling(self) -> bool:
        """True while a getUpdates long poll is parked waiting for updates."""
        return self._parked_polls > 0

    async def wait_until_polling(self, timeout: float = 5.0) -> None:
        """Wait until the bot has a long poll parked (its getUpdates is recorded only later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._parked_polls:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                raise TimeoutError(f"no getUpdates long poll within {timeout}s")
            event = self._calls_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for_sent(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[Outgoing]:
        """Wait until at least ``count`` outgoing messages exist for a chat; returns all."""
        key = int(chat_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._outgoing.get(key, ())) < count:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                raise TimeoutError(
                    f"wait_for_sent({chat_id}, count={count}) timed out after {timeout}s; "
                    f"have {self.texts_to(key)!r}; recent calls: {self._describe_recent()}"
                )
            event = self._calls_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return self.sent_to(key)

    def _describe_recent(self, n: int = 8) -> str:
        parts = []
        for c in self.calls[-n:]:
            if c.method.lower() == "getupdates":
                continue
            body = c.params.get("text") or c.params.get("caption") or ""
            parts.append(f"{c.method}(chat={c.chat_id}, {str(body)[:40]!r}) -> {c.status}")
        return "; ".join(parts) or "none"

    # ------------------------------------------------------------------ fault injection

    def inject_errors(self, method: str, faults: Iterable[Fault | tuple[Any, ...] | int]) -> None:
        """Queue faults for the next calls of ``method``: ``[(429, 3), (500,), (403, "...")]``."""
        self._faults.setdefault(method.lower(), deque()).extend(Fault.coerce(f) for f in faults)

    def block_chat(self, chat_id: int, description: str = BLOCKED_BY_USER) -> None:
        """Every send/edit to this chat answers 403 until ``unblock_chat``."""
        self.set_chat_fault(chat_id, Fault(403, description))

    def unblock_chat(self, chat_id: int) -> None:
        self.set_chat_fault(chat_id, None)

    def set_chat_fault(self, chat_id: int, fault: Fault | tuple[Any, ...] | None) -> None:
        """A standing fault for every send/edit to one chat (None removes it)."""
        if fault is None:
            self._chat_faults.pop(int(chat_id), None)
        else:
            self._chat_faults[int(chat_id)] = Fault.coerce(fault)

    # ------------------------------------------------------------------ playing the user

    def enqueue(self, update: JSONDict) -> JSONDict:
        """Queue an update for ``getUpdates`` (an ``update_id`` is assigned when missing)."""
        return self._enqueue(update)

    def _enqueue(self, update: JSONDict, probe: str | None = None) -> JSONDict:
        if "update_id" not in update:
            update["update_id"] = self._new_update_id()
        query = update.get("callback_query")
        if isinstance(query, dict) and "id" in query:
            self._open_callbacks.add(str(query["id"]))
        self._pending.append(update)
        if probe is not None:
            self._probes[probe] = time.monotonic()
            self._probes_sent += 1
        self._notify_updates()
        return update

    def _new_update_id(self) -> int:
        self._next_update_id += 1
        return self._next_update_id

    def user_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        """A user's text message; "/cmd ..." gets the ``bot_command`` entity PTB requires."""
        content: JSONDict = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        message = self._user_message(chat_id, user_id, language_code, chat_type, content)
        return self._update("message", message, queue)

    def user_callback(
        self,
        chat_id: int,
        data: str,
        message_id: int | None = None,
        *,
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        """A button press; ``message`` is the bot message (the chat's latest bot one if None)."""
        key = int(chat_id)
        user = self._make_user(self._sender_id(key, user_id), language_code)
        self._remember_chat(key, chat_type, user)
        message = self._find_bot_message(key, message_id)
        if message is None:
            mid = message_id if message_id is not None else self._new_message_id(key)
            message = {
                "message_id": mid,
                "from": self.bot_user,
                "chat": self._chat_obj(key),
                "date": _now(),
                "text": "",
            }
        query_id = str(next(self._callback_seq))
        query = {
            "id": query_id,
            "from": user,
            "message": json.loads(json.dumps(message)),
            "chat_instance": str(-7_000_000_000_000_000_000 - abs(key)),
            "data": data,
        }
        return self._update("callback_query", query, queue)

    def user_tap(
        self,
        chat_id: int,
        button_text: str,
        *,
        user_id: int | None = None,
        language_code: str | None = "ar",
        queue: bool = True,
    ) -> JSONDict:
        """Press a button by its label on the latest message showing it (inline or reply)."""
        for outgoing in reversed(self._outgoing.get(int(chat_id), ())):
            for button in outgoing.buttons:
                if button.get("text") != button_text:
                    continue
                common: JSONDict = {
                    "user_id": user_id,
                    "language_code": language_code,
                    "queue": queue,
                }
                if "callback_data" in button:
                    return self.user_callback(
                        chat_id, button["callback_data"], outgoing.message_id, **common
                    )
                if button.get("request_contact"):
                    return self.user_contact(chat_id, **common)
                if button.get("request_location"):
                    return self.user_location(chat_id, **common)
                return self.user_text(chat_id, button_text, **common)
        raise LookupError(f"no button {button_text!r} in chat {chat_id}")

    def user_photo(
        self,
        chat_id: int,
        *,
        data: bytes = TINY_PNG,
        caption: str | None = None,
        width: int = 1280,
        height: int = 960,
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        """A user's photo; the bytes are downloadable through getFile."""
        content: JSONDict = {"photo": self._photo_sizes(data, width, height)}
        if caption is not None:
            content["caption"] = caption
        message = self._user_message(chat_id, user_id, language_code, chat_type, content)
        return self._update("message", message, queue)

    def user_sticker(
        self,
        chat_id: int,
        *,
        emoji: str = "👍",
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        stored = self._register_file(b"RIFF\x00\x00\x00\x00WEBP", "sticker", "webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "TestStickers",
            "file_size": stored.size,
        }
        message = self._user_message(
            chat_id, user_id, language_code, chat_type, {"sticker": sticker}
        )
        return self._update("message", message, queue)

    def user_voice(
        self,
        chat_id: int,
        *,
        duration: int = 3,
        data: bytes = b"OggS\x00fake-voice",
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        stored = self._register_file(data, "voice", "oga")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": stored.size,
        }
        message = self._user_message(chat_id, user_id, language_code, chat_type, {"voice": voice})
        return self._update("message", message, queue)

    def user_location(
        self,
        chat_id: int,
        latitude: float = 24.7136,
        longitude: float = 46.6753,
        *,
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        """A shared location (defaults to Riyadh)."""
        content = {"location": {"latitude": latitude, "longitude": longitude}}
        message = self._user_message(chat_id, user_id, language_code, chat_type, content)
        return self._update("message", message, queue)

    def user_contact(
        self,
        chat_id: int,
        phone_number: str = "+966500000001",
        *,
        first_name: str = "Test",
        contact_user_id: int | None = None,
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        """A shared contact; by default the sender's own (what request_contact sends)."""
        sender = self._sender_id(int(chat_id), user_id)
        contact = {
            "phone_number": phone_number,
            "first_name": first_name,
            "user_id": contact_user_id if contact_user_id is not None else sender,
        }
        message = self._user_message(
            chat_id, user_id, language_code, chat_type, {"contact": contact}
        )
        return self._update("message", message, queue)

    def user_document(
        self,
        chat_id: int,
        *,
        data: bytes = b"%PDF-1.4\n%fake\n",
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self._register_file(data, "document", ext)
        content: JSONDict = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": stored.size,
            }
        }
        if caption is not None:
            content["caption"] = caption
        message = self._user_message(chat_id, user_id, language_code, chat_type, content)
        return self._update("message", message, queue)

    def user_edited_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        *,
        user_id: int | None = None,
        language_code: str | None = "ar",
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSONDict:
        """The user edits one of their earlier messages (an ``edited_message`` update)."""
        key = int(chat_id)
        user = self._make_user(self._sender_id(key, user_id), language_code)
        chat = self._remember_chat(key, chat_type, user)
        stored = self._messages.get(key, {}).get(int(message_id))
        date = stored.message.get("date", _now()) if stored else _now()
        message: JSONDict = {
            "message_id": int(message_id),
            "from": user,
            "chat": chat,
            "date": date,
            "edit_date": _now(),
            "text": text,
        }
        if stored:
            stored.message = message
            stored.raw = text
        return self._update("edited_message", message, queue)

    async def post_update_to(
        self, url: str, update: JSONDict, secret_token: str | None = None
    ) -> tuple[int, str]:
        """POST an update like Telegram's webhook delivery; returns (status, body)."""
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        async with (
            ClientSession(timeout=ClientTimeout(total=30)) as session,
            session.post(url, data=json.dumps(update), headers=headers) as response,
        ):
            return response.status, await response.text()

    async def post_update_to_webhook(self, update: JSONDict) -> tuple[int, str]:
        """Deliver to the URL and secret the bot registered with ``setWebhook``."""
        if not self.webhook_url:
            raise RuntimeError("the bot has not called setWebhook")
        return await self.post_update_to(self.webhook_url, update, self.webhook_secret)

    # ------------------------------------------------------------------ chat/message model

    def _sender_id(self, chat_key: int, user_id: int | None) -> int:
        if user_id is not None:
            return user_id
        return chat_key if chat_key > 0 else DEFAULT_GROUP_USER_ID

    def _make_user(self, user_id: int, language_code: str | None) -> JSONDict:
        user: JSONDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": "Test",
            "last_name": "User",
            "username": f"user{user_id}",
        }
        if language_code:
            user["language_code"] = language_code
        return user

    def _remember_chat(self, key: int, chat_type: str | None, user: JSONDict) -> JSONDict:
        if chat_type is None and key in self._chats:
            return self._chats[key]
        chat_type = chat_type or ("private" if key > 0 else "supergroup")
        chat: JSONDict = {"id": key, "type": chat_type}
        if chat_type == "private":
            chat.update({k: user[k] for k in ("first_name", "last_name", "username") if k in user})
        else:
            chat["title"] = f"Test {chat_type} {abs(key)}"
        self._chats[key] = chat
        return chat

    def _chat_obj(self, key: int) -> JSONDict:
        chat = self._chats.get(key)
        if chat is None:
            chat = self._remember_chat(key, None, self._make_user(key, None))
        return chat

    def _resolve_chat(self, value: Any) -> int:
        """chat_id param -> int; "@name" maps to a stable fake channel id."""
        if value is None or value == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(value, bool):
            raise ApiError(400, CHAT_NOT_FOUND)
        if isinstance(value, int):
            return value
        text = str(value)
        with contextlib.suppress(ValueError):
            return int(text)
        if not text.startswith("@"):
            raise ApiError(400, CHAT_NOT_FOUND)
        if text not in self._chat_usernames:
            key = -1_001_000_000_000 - len(self._chat_usernames)
            self._chat_usernames[text] = key
            self._chats[key] = {
                "id": key,
                "type": "channel",
                "title": text[1:],
                "username": text[1:],
            }
        return self._chat_usernames[text]

    def _new_message_id(self, key: int) -> int:
        mid = self._next_message_id.get(key, 0) + 1
        self._next_message_id[key] = mid
        return mid

    def _user_message(
        self,
        chat_id: int,
        user_id: int | None,
        language_code: str | None,
        chat_type: str | None,
        content: JSONDict,
    ) -> JSONDict:
        key = int(chat_id)
        user = self._make_user(self._sender_id(key, user_id), language_code)
        chat = self._remember_chat(key, chat_type, user)
        message: JSONDict = {
            "message_id": self._new_message_id(key),
            "from": user,
            "chat": chat,
            "date": _now(),
            **content,
        }
        raw = content.get("text", content.get("caption"))
        self._messages.setdefault(key, {})[message["message_id"]] = _Stored(message, raw, None)
        return message

    def _update(self, kind: str, payload: JSONDict, queue: bool) -> JSONDict:
        update = {"update_id": self._new_update_id(), kind: payload}
        if queue:
            self._enqueue(update)
        return update

    def _find_bot_message(self, key: int, message_id: int | None) -> JSONDict | None:
        messages = self._messages.get(key, {})
        if message_id is not None:
            stored = messages.get(int(message_id))
            return stored.message if stored else None
        for stored in reversed(messages.values()):
            if stored.message.get("from", {}).get("id") == self.bot_user["id"]:
                return stored.message
        return None

    def _register_file(self, data: bytes | None, kind: str, ext: str) -> _StoredFile:
        n = next(self._file_seq)
        stored = _StoredFile(
            file_id=f"Fake{kind.capitalize()}File{n:08d}AAQ",
            unique_id=f"AQAD{n:06d}",
            path=f"{kind}s/file_{n}.{ext}",
            data=data,
            size=len(data) if data is not None else 0,
        )
        self._files[stored.file_id] = stored
        self._file_paths[stored.path] = stored
        return stored

    def _photo_sizes(self, data: bytes | None, width: int, height: int) -> list[JSONDict]:
        """Thumbnails plus the original, as Telegram returns them (smallest first)."""
        sizes: list[JSONDict] = []
        longest = max(width, height, 1)
        for limit in (90, 320, 800):
            if limit >= longest:
                break
            scale = limit / longest
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            stored = self._register_file(data, "photo", "jpg")
            approx = max(1, stored.size * limit * limit // (longest * longest))
            sizes.append(
                {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                 "file_size": approx, "width": w, "height": h}
            )  # fmt: skip
        stored = self._register_file(data, "photo", "jpg")
        sizes.append(
            {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
             "file_size": stored.size, "width": width, "height": height}
        )  # fmt: skip
        return sizes

    def _check_entities(self, text: str, parse_mode: Any) -> str:
        if not parse_mode:
            return text
        mode = str(parse_mode)
        if mode.lower() not in ("html", "markdown", "markdownv2"):
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        if not self.strict_entities:
            return text
        try:
            if mode.lower() == "html":
                return _plain_html(text)
            if mode.lower() == "markdownv2":
                _check_markdown_v2(text)
        except _EntityError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        return text

    def _check_markup(self, markup: Any) -> JSONDict | None:
        """Validate reply_markup; returns it if it is an inline keyboard (kept on the message)."""
        if markup is None:
            return None
        if isinstance(markup, str):
            try:
                markup = json.loads(markup)
            except ValueError:
                raise ApiError(
                    400, "Bad Request: can't parse reply keyboard markup JSON object"
                ) from None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return None
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ApiError(400, 'Bad Request: field "inline_keyboard" must be an Array')
        for button in itertools.chain.from_iterable(rows):
            if not isinstance(button, dict) or not button.get("text"):
                raise ApiError(
                    400, "Bad Request: can't parse inline keyboard button: Text is empty"
                )
            if "callback_data" in button:
                data = str(button["callback_data"]).encode()
                if not 1 <= len(data) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            elif len(button) == 1:
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: Text buttons are "
                    "unallowed in the inline keyboard",
                )
        return markup if rows else None

    def _reply_to(self, key: int, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        mid: Any = None
        allow_missing = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply, dict):
            mid = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
        elif params.get("reply_to_message_id") is not None:
            mid = params["reply_to_message_id"]
        if mid is None:
            return None
        stored = self._messages.get(key, {}).get(int(mid))
        if stored is None:
            if allow_missing:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return {k: v for k, v in stored.message.items() if k != "reply_to_message"}

    def _deliver(
        self,
        ctx: _Ctx,
        key: int,
        content: JSONDict,
        raw: str | None,
        markup: JSONDict | None,
        photo: bytes | None = None,
    ) -> JSONDict:
        """Create a bot message in a chat, store it and index it for ``sent_to``."""
        reply_to = self._reply_to(key, ctx.params)
        message: JSONDict = {
            "message_id": self._new_message_id(key),
            "from": self.bot_user,
            "chat": self._chat_obj(key),
            "date": _now(),
        }
        if ctx.params.get("message_thread_id"):
            message["message_thread_id"] = ctx.params["message_thread_id"]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(content)
        if markup is not None:
            message["reply_markup"] = markup
        self._messages.setdefault(key, {})[message["message_id"]] = _Stored(message, raw, markup)
        self._add_outgoing(ctx, key, message["message_id"], photo)
        return message

    def _add_outgoing(
        self, ctx: _Ctx, key: int, message_id: int | None, photo: bytes | None = None
    ) -> None:
        params = ctx.params
        markup = params.get("reply_markup")
        text, caption = params.get("text"), params.get("caption")
        self._outgoing.setdefault(key, []).append(
            Outgoing(
                method=ctx.method,
                chat_id=key,
                message_id=message_id,
                text=None if text is None else str(text),
                caption=None if caption is None else str(caption),
                reply_markup=markup if isinstance(markup, dict) else None,
                parse_mode=params.get("parse_mode"),
                photo=photo,
                params=params,
                timestamp=time.monotonic(),
            )
        )
        if self._probes:
            body = text if text is not None else caption
            started = self._probes.pop(str(body), None) if body is not None else None
            if started is not None:
                self._probe_latencies.append(time.monotonic() - started)

    # ------------------------------------------------------------------ HTTP plumbing

    def _notify_updates(self) -> None:
        event, self._updates_changed = self._updates_changed, asyncio.Event()
        event.set()

    def _notify_calls(self) -> None:
        event, self._calls_changed = self._calls_changed, asyncio.Event()
        event.set()

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[JSONDict, dict[str, Upload]]:
        params: JSONDict = {k: _decode_value(k, v) for k, v in request.query.items()}
        files: dict[str, Upload] = {}
        if not request.body_exists:
            return params, files
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON request body") from None
            if isinstance(body, dict):
                params.update(body)
            return params, files
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = Upload(value.file.read(), value.filename, value.content_type)
            else:
                params[key] = _decode_value(key, str(value))
        return params, files

    async def _handle_bot(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        try:
            params, files = await self._read_params(request)
        except ApiError as exc:
            return self._json(exc.status, exc.body())
        ctx = _Ctx(token, method, params, files)
        status, body = await self._dispatch(ctx)
        self._record(ctx, status, body)
        pause = self._pause(method.lower())
        if pause > 0:
            await asyncio.sleep(pause / 2)
        return self._json(status, body)

    def _pause(self, name: str) -> float:
        """Simulated round trip of one call: half before handling, half on the way back."""
        return self.delay + self.method_delays.get(name, 0.0)

    async def _dispatch(self, ctx: _Ctx) -> tuple[int, JSONDict]:
        name = ctx.method.lower()
        pause = self._pause(name)
        if pause > 0:
            await asyncio.sleep(pause / 2)
        try:
            self._check_token(ctx.token)
            faults = self._faults.get(name)
            if faults:
                fault = faults.popleft()
                if fault.hang > 0:
                    await asyncio.sleep(fault.hang)
                error = fault.error()
                if error is not None:
                    raise error
            if self._chat_faults and name.startswith(_CHAT_FAULT_PREFIXES):
                chat = ctx.params.get("chat_id")
                chat_fault = self._chat_faults.get(self._resolve_chat(chat)) if chat else None
                error = chat_fault.error() if chat_fault else None
                if error is not None:
                    raise error
            result: Any
            if name == "getupdates":
                result = await self._get_updates(ctx)
            else:
                handler = self._handlers.get(name)
                if handler is None and name.startswith("send") and "chat_id" in ctx.params:
                    handler = self._generic_send
                result = handler(ctx) if handler else True
        except ApiError as exc:
            return exc.status, exc.body()
        return 200, {"ok": True, "result": result}

    def _check_token(self, token: str) -> None:
        bot_id, _, secret = token.partition(":")
        if not (bot_id.isdigit() and secret):
            raise ApiError(404, "Not Found")
        if self.valid_tokens is not None and token not in self.valid_tokens:
            raise ApiError(401, "Unauthorized")

    def _record(self, ctx: _Ctx, status: int, body: JSONDict) -> None:
        call = Call(
            seq=len(self.calls),
            method=ctx.method,
            params=ctx.params,
            token=ctx.token,
            timestamp=time.monotonic(),
            status=status,
            response=body,
            files=ctx.files,
        )
        self.calls.append(call)
        self._calls_by_method.setdefault(ctx.method.lower(), []).append(call)
        self._notify_calls()

    @staticmethod
    def _json(status: int, body: Any) -> web.Response:
        return web.Response(
            body=json.dumps(body, ensure_ascii=False).encode(),
            status=status,
            content_type="application/json",
        )

    async def _handle_file(self, request: web.Request) -> web.Response:
        stored = self._file_paths.get(request.match_info["path"])
        if stored is None or stored.data is None:
            return self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ Bot API methods

    async def _get_updates(self, ctx: _Ctx) -> list[JSONDict]:
        """Long polling: answers as soon as an update is queued, or after ``timeout``."""
        if self.webhook_url:
            raise ApiError(409, WEBHOOK_ACTIVE)
        params = ctx.params
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        # Like Telegram, a newer getUpdates ends an older one still waiting (409 Conflict).
        generation = self._poll_generation.get(ctx.token, 0) + 1
        self._poll_generation[ctx.token] = generation
        self._notify_updates()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._poll_generation.get(ctx.token) != generation:
                raise ApiError(409, POLL_CONFLICT)
            batch = self._take_updates(offset, limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return batch
            event = self._updates_changed
            self._parked_polls += 1
            if self._parked_polls == 1:
                self._notify_calls()  # wakes wait_until_polling
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            finally:
                self._parked_polls -= 1

    def _take_updates(self, offset: int, limit: int) -> list[JSONDict]:
        pending = self._pending
        if offset > 0:
            while pending and pending[0]["update_id"] < offset:
                pending.popleft()  # confirmed by the offset: forgotten, as on Telegram
        elif offset < 0:
            while len(pending) > -offset:
                pending.popleft()
        return list(itertools.islice(pending, limit))

    def _m_getMe(self, ctx: _Ctx) -> JSONDict:
        return self.bot_user

    def _m_logOut(self, ctx: _Ctx) -> bool:
        return True

    def _m_close(self, ctx: _Ctx) -> bool:
        return True

    def _m_deleteWebhook(self, ctx: _Ctx) -> bool:
        self.webhook_url, self.webhook_secret = "", None
        if ctx.params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _m_setWebhook(self, ctx: _Ctx) -> bool:
        self.webhook_url = str(ctx.params.get("url") or "")
        secret = ctx.params.get("secret_token")
        self.webhook_secret = str(secret) if secret else None
        allowed = ctx.params.get("allowed_updates")
        self.webhook_allowed_updates = allowed if isinstance(allowed, list) else None
        if ctx.params.get("drop_pending_updates"):
            self._pending.clear()
        self._notify_updates()  # a waiting getUpdates now conflicts
        return True

    def _m_getWebhookInfo(self, ctx: _Ctx) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook_url:
            info["max_connections"] = 40
            info["ip_address"] = "127.0.0.1"
            if self.webhook_allowed_updates is not None:
                info["allowed_updates"] = self.webhook_allowed_updates
        return info

    def _commands_key(self, params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _m_setMyCommands(self, ctx: _Ctx) -> bool:
        commands = ctx.params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            if not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        self.commands[self._commands_key(ctx.params)] = commands
        return True

    def _m_getMyCommands(self, ctx: _Ctx) -> list[JSONDict]:
        return self.commands.get(self._commands_key(ctx.params), [])

    def _m_deleteMyCommands(self, ctx: _Ctx) -> bool:
        self.commands.pop(self._commands_key(ctx.params), None)
        return True

    def _m_getMyName(self, ctx: _Ctx) -> JSONDict:
        return {"name": self.bot_user["first_name"]}

    def _m_getMyDescription(self, ctx: _Ctx) -> JSONDict:
        return {"description": ""}

    def _m_getMyShortDescription(self, ctx: _Ctx) -> JSONDict:
        return {"short_description": ""}

    def _m_getChatMenuButton(self, ctx: _Ctx) -> JSONDict:
        return {"type": "commands"}

    def _m_sendMessage(self, ctx: _Ctx) -> JSONDict:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        raw = ctx.params.get("text")
        if raw is None or not str(raw).strip():
            raise ApiError(400, "Bad Request: message text is empty")
        raw = str(raw)
        if _utf16_len(raw) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        text = self._check_entities(raw, ctx.params.get("parse_mode"))
        markup = self._check_markup(ctx.params.get("reply_markup"))
        return self._deliver(ctx, key, {"text": text}, raw, markup)

    def _caption_content(self, ctx: _Ctx) -> tuple[JSONDict, str | None]:
        raw = ctx.params.get("caption")
        if raw is None or raw == "":
            return {}, None
        raw = str(raw)
        if _utf16_len(raw) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": self._check_entities(raw, ctx.params.get("parse_mode"))}, raw

    def _m_sendPhoto(self, ctx: _Ctx) -> JSONDict:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        value = ctx.params.get("photo")
        upload = _resolve_upload(value, ctx.files, "photo")
        data: bytes | None
        if upload is not None:
            data = upload.data
            if not data:
                raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
            width, height = _image_size(data)
        elif isinstance(value, str) and value in self._files:
            data = self._files[value].data
            width, height = _image_size(data) if data else (800, 600)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            data, (width, height) = None, (800, 600)
        else:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        content, raw = self._caption_content(ctx)
        markup = self._check_markup(ctx.params.get("reply_markup"))
        content = {"photo": self._photo_sizes(data, width, height), **content}
        return self._deliver(ctx, key, content, raw, markup, photo=data)

    def _m_sendDocument(self, ctx: _Ctx) -> JSONDict:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        value = ctx.params.get("document")
        upload = _resolve_upload(value, ctx.files, "document")
        if upload is None and not value:
            raise ApiError(400, "Bad Request: there is no document in the request")
        name = upload.filename if upload and upload.filename else "document"
        stored = self._register_file(upload.data if upload else None, "document", "bin")
        content, raw = self._caption_content(ctx)
        content["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_name": name,
            "mime_type": (upload.content_type if upload else None) or "application/octet-stream",
            "file_size": stored.size,
        }
        markup = self._check_markup(ctx.params.get("reply_markup"))
        return self._deliver(ctx, key, content, raw, markup)

    def _generic_send(self, ctx: _Ctx) -> JSONDict:
        """Any other send* method: a message with the matching content (file, location, ...)."""
        key = self._resolve_chat(ctx.params.get("chat_id"))
        params = ctx.params
        content, raw = self._caption_content(ctx)
        kind = ctx.method[4:].lower()  # sendVideoNote -> videonote
        kind = {"videonote": "video_note"}.get(kind, kind)
        if kind in ("location", "venue"):
            location = {"latitude": params.get("latitude"), "longitude": params.get("longitude")}
            content["location"] = location
            if kind == "venue":
                content["venue"] = {
                    "location": location,
                    "title": params.get("title", ""),
                    "address": params.get("address", ""),
                }
        elif kind == "contact":
            content["contact"] = {
                k: params[k] for k in ("phone_number", "first_name", "last_name") if k in params
            }
        elif kind == "dice":
            content["dice"] = {"emoji": params.get("emoji", "🎲"), "value": 1}
        elif kind in params or kind in ctx.files:
            upload = _resolve_upload(params.get(kind), ctx.files, kind)
            stored = self._register_file(upload.data if upload else None, kind, "bin")
            content[kind] = {"file_id": stored.file_id, "file_unique_id": stored.unique_id}
            if kind == "sticker":
                content[kind].update(
                    {"type": "regular", "width": 512, "height": 512, "is_animated": False,
                     "is_video": False}
                )  # fmt: skip
            elif kind in ("video", "animation", "video_note", "audio", "voice"):
                content[kind].update({"duration": int(params.get("duration") or 1)})
                if kind in ("video", "animation"):
                    content[kind].update({"width": 640, "height": 360})
                elif kind == "video_note":
                    content[kind]["length"] = 240
        markup = self._check_markup(params.get("reply_markup"))
        return self._deliver(ctx, key, content, raw, markup)

    def _m_sendMediaGroup(self, ctx: _Ctx) -> list[JSONDict]:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        media = ctx.params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media files")
        group_id = f"1{next(self._file_seq):017d}"
        messages = []
        for item in media:
            if not isinstance(item, dict):
                raise ApiError(400, "Bad Request: can't parse InputMedia JSON object")
            upload = _resolve_upload(item.get("media"), ctx.files, "\0")
            data = upload.data if upload else None
            item_ctx = _Ctx(ctx.token, ctx.method, {**ctx.params, **item}, ctx.files)
            content, raw = self._caption_content(item_ctx)
            kind = str(item.get("type", "photo"))
            if kind == "photo":
                width, height = _image_size(data) if data else (800, 600)
                content["photo"] = self._photo_sizes(data, width, height)
            else:
                stored = self._register_file(data, kind, "bin")
                content[kind] = {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.unique_id,
                    "file_size": stored.size,
                }
            content["media_group_id"] = group_id
            messages.append(self._deliver(item_ctx, key, content, raw, None, photo=data))
        return messages

    def _m_copyMessage(self, ctx: _Ctx) -> JSONDict:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        source = self._resolve_chat(ctx.params.get("from_chat_id"))
        stored = self._messages.get(source, {}).get(int(ctx.params.get("message_id") or 0))
        if stored is None:
            raise ApiError(400, "Bad Request: message to copy not found")
        skip = ("message_id", "from", "chat", "date", "edit_date", "reply_markup")
        content = {k: v for k, v in stored.message.items() if k not in skip}
        markup = self._check_markup(ctx.params.get("reply_markup"))
        message = self._deliver(ctx, key, content, stored.raw, markup)
        return {"message_id": message["message_id"]}

    def _m_forwardMessage(self, ctx: _Ctx) -> JSONDict:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        source = self._resolve_chat(ctx.params.get("from_chat_id"))
        stored = self._messages.get(source, {}).get(int(ctx.params.get("message_id") or 0))
        if stored is None:
            raise ApiError(400, "Bad Request: message to forward not found")
        skip = ("message_id", "from", "chat", "date", "edit_date", "reply_markup")
        content = {k: v for k, v in stored.message.items() if k not in skip}
        content["forward_origin"] = {
            "type": "user",
            "sender_user": stored.message.get("from"),
            "date": _now(),
        }
        return self._deliver(ctx, key, content, stored.raw, None)

    def _m_getChatMember(self, ctx: _Ctx) -> JSONDict:
        self._resolve_chat(ctx.params.get("chat_id"))
        user_id = int(ctx.params.get("user_id") or 0)
        if user_id == self.bot_user["id"]:
            return {"status": "member", "user": self.bot_user}
        return {"status": "member", "user": self._make_user(user_id, None)}

    def _m_getUserProfilePhotos(self, ctx: _Ctx) -> JSONDict:
        return {"total_count": 0, "photos": []}

    def _m_sendChatAction(self, ctx: _Ctx) -> bool:
        self._resolve_chat(ctx.params.get("chat_id"))
        if not ctx.params.get("action"):
            raise ApiError(400, "Bad Request: action is empty")
        return True

    def _editable(self, ctx: _Ctx) -> tuple[int, _Stored] | None:
        """The stored message an edit targets, or None for inline messages."""
        if ctx.params.get("inline_message_id"):
            return None
        key = self._resolve_chat(ctx.params.get("chat_id"))
        mid = ctx.params.get("message_id")
        if mid is None or mid == "":
            raise ApiError(400, "Bad Request: message identifier is not specified")
        stored = self._messages.get(key, {}).get(int(mid))
        if stored is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if stored.message.get("from", {}).get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return key, stored

    def _apply_edit(
        self,
        ctx: _Ctx,
        key: int,
        stored: _Stored,
        changes: JSONDict,
        raw: str | None,
        markup: JSONDict | None,
    ) -> JSONDict:
        message = stored.message
        message.update(changes)
        message.pop("reply_markup", None)  # edits without reply_markup drop the keyboard
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = _now()
        stored.raw, stored.markup = raw, markup
        self._add_outgoing(ctx, key, message["message_id"])
        return message

    def _m_editMessageText(self, ctx: _Ctx) -> JSONDict | bool:
        raw = ctx.params.get("text")
        if raw is None or not str(raw).strip():
            raise ApiError(400, "Bad Request: message text is empty")
        raw = str(raw)
        if _utf16_len(raw) > 4096:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        text = self._check_entities(raw, ctx.params.get("parse_mode"))
        markup = self._check_markup(ctx.params.get("reply_markup"))
        target = self._editable(ctx)
        if target is None:
            self._add_outgoing(ctx, 0, None)
            return True
        key, stored = target
        if "text" not in stored.message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        if stored.raw == raw and stored.markup == markup:
            raise ApiError(400, NOT_MODIFIED)
        return self._apply_edit(ctx, key, stored, {"text": text}, raw, markup)

    def _m_editMessageCaption(self, ctx: _Ctx) -> JSONDict | bool:
        content, raw = self._caption_content(ctx)
        markup = self._check_markup(ctx.params.get("reply_markup"))
        target = self._editable(ctx)
        if target is None:
            self._add_outgoing(ctx, 0, None)
            return True
        key, stored = target
        if not any(k in stored.message for k in _MEDIA_KEYS):
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        if stored.raw == raw and stored.markup == markup:
            raise ApiError(400, NOT_MODIFIED)
        if raw is None:
            stored.message.pop("caption", None)
        return self._apply_edit(ctx, key, stored, content, raw, markup)

    def _m_editMessageReplyMarkup(self, ctx: _Ctx) -> JSONDict | bool:
        markup = self._check_markup(ctx.params.get("reply_markup"))
        target = self._editable(ctx)
        if target is None:
            self._add_outgoing(ctx, 0, None)
            return True
        key, stored = target
        if stored.markup == markup:
            raise ApiError(400, NOT_MODIFIED)
        return self._apply_edit(ctx, key, stored, {}, stored.raw, markup)

    def _m_deleteMessage(self, ctx: _Ctx) -> bool:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        mid = ctx.params.get("message_id")
        if mid is None or self._messages.get(key, {}).pop(int(mid), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def _m_deleteMessages(self, ctx: _Ctx) -> bool:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        messages = self._messages.get(key, {})
        for mid in ctx.params.get("message_ids") or []:
            messages.pop(int(mid), None)
        return True

    def _m_answerCallbackQuery(self, ctx: _Ctx) -> bool:
        query_id = str(ctx.params.get("callback_query_id") or "")
        if query_id not in self._open_callbacks:
            raise ApiError(400, QUERY_TOO_OLD)
        self._open_callbacks.discard(query_id)
        return True

    def _m_getChat(self, ctx: _Ctx) -> JSONDict:
        key = self._resolve_chat(ctx.params.get("chat_id"))
        return {
            **self._chat_obj(key),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _m_getFile(self, ctx: _Ctx) -> JSONDict:
        stored = self._files.get(str(ctx.params.get("file_id") or ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": stored.size,
            "file_path": stored.path,
        }

    # ------------------------------------------------------------------ control routes

    async def _control_enqueue(self, request: web.Request) -> web.Response:
        body = await request.json()
        updates = body.get("updates", []) if isinstance(body, dict) else body
        for update in updates:
            self._enqueue(update)
        ids = [u["update_id"] for u in updates]
        return self._json(200, {"ok": True, "result": {"count": len(ids), "update_ids": ids}})

    async def _control_user_text(self, request: web.Request) -> web.Response:
        """Body ``{"messages": [{"chat_id": 1, "text": "hi"}, ...], "probe": false}``."""
        body = await request.json()
        probe = bool(body.get("probe"))
        ids = []
        for item in body.get("messages", []):
            update = self.user_text(int(item["chat_id"]), str(item["text"]), queue=False)
            self._enqueue(update, probe=str(item["text"]) if probe else None)
            ids.append(update["update_id"])
        return self._json(200, {"ok": True, "result": {"update_ids": ids}})

    async def _control_generate(self, request: web.Request) -> web.Response:
        """Queue ``count`` probe texts round-robin over ``chats`` at ``rate``/s (0 = at once).

        Generated here so the benchmarked bot process spends no CPU on producing load.
        """
        body = await request.json()
        count, chats = int(body.get("count", 1000)), max(int(body.get("chats", 100)), 1)
        rate = float(body.get("rate", 0))
        prefix = str(body.get("prefix", "bench"))
        first_chat = int(body.get("first_chat", 10_000))

        def make(i: int) -> None:
            text = f"{prefix} {i}"
            update = self.user_text(first_chat + i % chats, text, queue=False)
            self._enqueue(update, probe=text)

        if rate <= 0:
            for i in range(count):
                make(i)
        else:

            async def paced() -> None:
                loop = asyncio.get_running_loop()
                start = loop.time()
                for i in range(count):
                    delay = start + i / rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    make(i)

            task = asyncio.create_task(paced())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return self._json(200, {"ok": True, "result": {"count": count}})

    async def _control_deliver(self, request: web.Request) -> web.Response:
        """Deliver people's updates to webhooks, as Telegram does: body ``{"secret": "...",
        "updates": [{"url": ..., "chat_id": 1, "text": "hi"}, {"url": ..., "chat_id": 1,
        "data": "path:citizen"}, ...]}``. Each is built like ``user_text`` / ``user_callback``
        (a callback can be answered) and POSTed to its ``url`` in the background, all at once;
        the answer comes at once, with the update ids. Benchmarks of several instances choose
        each update's instance, as the load balancer in front of them would."""
        body = await request.json()
        secret = str(body.get("secret", ""))
        if self._webhook_client is None:
            self._webhook_client = ClientSession(timeout=ClientTimeout(total=60))
        client = self._webhook_client
        ids = []

        async def post(url: str, update: JSONDict) -> None:
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
            try:
                async with client.post(url, json=update, headers=headers) as response:
                    if response.status != 200:
                        self.webhook_failures += 1
            except Exception:
                self.webhook_failures += 1

        for item in body.get("updates", []):
            chat = int(item["chat_id"])
            if "data" in item:
                update = self.user_callback(chat, str(item["data"]), queue=False)
                self._open_callbacks.add(str(update["callback_query"]["id"]))
            else:
                update = self.user_text(chat, str(item["text"]), queue=False)
            ids.append(update["update_id"])
            task = asyncio.create_task(post(str(item["url"]), update))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return self._json(200, {"ok": True, "result": {"update_ids": ids}})

    async def _control_config(self, request: web.Request) -> web.Response:
        """Body keys: delay, method_delays, errors {method: [[429, 3], ...]}, block, unblock."""
        body = await request.json()
        if "delay" in body:
            self.delay = float(body["delay"])
        self.method_delays.update(
            {k.lower(): float(v) for k, v in body.get("method_delays", {}).items()}
        )
        for method, faults in body.get("errors", {}).items():
            self.inject_errors(method, [tuple(f) for f in faults])
        for chat in body.get("block", []):
            self.block_chat(int(chat))
        for chat in body.get("unblock", []):
            self.unblock_chat(int(chat))
        return self._json(200, {"ok": True, "result": True})

    async def _control_clear(self, request: web.Request) -> web.Response:
        self.clear()
        self._probes.clear()
        self._probe_latencies.clear()
        self._probes_sent = 0
        return self._json(200, {"ok": True, "result": True})

    async def _control_shutdown(self, request: web.Request) -> web.Response:
        if self._shutdown_requested is not None:
            self._shutdown_requested.set()
        return self._json(200, {"ok": True, "result": True})

    def stats(self) -> JSONDict:
        """Counters and probe latencies (ms) for benchmarks."""
        latencies = sorted(self._probe_latencies)

        def pct(p: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3)

        return {
            "calls": len(self.calls),
            "by_method": {m: len(c) for m, c in self._calls_by_method.items()},
            "pending_updates": len(self._pending),
            "outgoing": sum(len(v) for v in self._outgoing.values()),
            "probes": {
                "sent": self._probes_sent,
                "answered": len(latencies),
                "p50_ms": pct(0.50),
                "p90_ms": pct(0.90),
                "p99_ms": pct(0.99),
                "max_ms": round(latencies[-1] * 1000, 3) if latencies else None,
                "mean_ms": round(sum(latencies) / len(latencies) * 1000, 3) if latencies else None,
            },
            "delay": self.delay,
            "webhook_failures": self.webhook_failures,
            "monotonic": time.monotonic(),
            # CPU of the process serving the fake, to check it is not the bottleneck.
            "cpu_s": time.process_time(),
        }

    async def _control_stats(self, request: web.Request) -> web.Response:
        return self._json(200, {"ok": True, "result": self.stats()})

    async def _control_calls(self, request: web.Request) -> web.Response:
        """Recorded calls without file bytes; ``?method=&since=`` filter."""
        method = request.query.get("method")
        since = int(request.query.get("since", 0))
        calls = self.calls_to(method) if method else self.calls
        result = [
            {
                "seq": c.seq,
                "method": c.method,
                "params": c.params,
                "status": c.status,
                "timestamp": c.timestamp,
                "files": {k: len(v.data) for k, v in c.files.items()},
            }
            for c in calls
            if c.seq >= since
        ]
        return self._json(200, {"ok": True, "result": result})

    async def _control_wait(self, request: web.Request) -> web.Response:
        """Long-poll until ``answered`` probes got replies (or ``timeout`` s); returns stats."""
        answered = int(request.query.get("answered", 0))
        timeout = float(request.query.get("timeout", 30))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._probe_latencies) < answered and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            event = self._calls_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return self._json(200, {"ok": True, "result": self.stats()})


def _image_size(data: bytes) -> tuple[int, int]:
    """Real dimensions when Pillow can read the header (lazy: no full decode)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return int(image.size[0]), int(image.size[1])
    except Exception:
        return 800, 600


@contextlib.asynccontextmanager
async def running_fake_bot_api(**kwargs: Any) -> AsyncIterator[FakeBotAPI]:
    """``async with running_fake_bot_api() as api:`` — same as ``async with FakeBotAPI()``."""
    async with FakeBotAPI(**kwargs) as api:
        yield api


@contextlib.asynccontextmanager
async def ptb_polling(
    application: Application[Any, Any, Any, Any, Any, Any], *, poll_timeout: float = 1.0
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """Run a PTB Application by polling with manual lifecycle, and always shut it down cleanly.

    A short ``poll_timeout`` keeps each getUpdates brief; shutdown cancels the one in flight.
    """
    import datetime as dt

    updater = application.updater
    if updater is None:
        raise ValueError("the application has no updater")
    await application.initialize()
    try:
        await application.start()
        try:
            await updater.start_polling(
                poll_interval=0.0, timeout=dt.timedelta(seconds=poll_timeout)
            )
            try:
                yield application
            finally:
                if updater.running:
                    await updater.stop()
        finally:
            if application.running:
                await application.stop()
    finally:
        await application.shutdown()


# ---------------------------------------------------------------------- child process


def _child_main(conn: Connection, kwargs: JSONDict) -> None:
    asyncio.run(_child_serve(conn, kwargs))


async def _child_serve(conn: Connection, kwargs: JSONDict) -> None:
    api = FakeBotAPI(**kwargs)
    await api.start()
    stop = asyncio.Event()
    api._shutdown_requested = stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conn.send(api.root_url)
    conn.close()
    await stop.wait()
    await api.stop()


class FakeBotAPIProcess:
    """The fake in a child process, so benchmarks don't bill its CPU to the bot.

    Drive it through ``/_control/*`` (enqueue, user_text, generate, config, stats, calls, wait).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._process: BaseProcess | None = None
        self.root_url = ""

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root_url}/file/bot"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> str:
        ensure_no_proxy()
        ctx = multiprocessing.get_context("spawn")
        reader, writer = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child_main, args=(writer, self._kwargs), name="fake-bot-api", daemon=True
        )
        self._process.start()
        writer.close()
        if not reader.poll(timeout):
            self.stop()
            raise RuntimeError("fake Bot API process did not start")
        self.root_url = str(reader.recv())
        reader.close()
        return self.root_url

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.is_alive():
            process.terminate()  # SIGTERM: the child shuts its server down gracefully
            process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
