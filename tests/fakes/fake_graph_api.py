"""A local fake of the WhatsApp Cloud API (Meta's Graph API) for tests.

Why: Meta is unreachable from here and from CI, and its refusals are what a renderer gets
wrong, so the fake refuses what Meta refuses (/work/shared/DOMAIN.md), with Graph-style error
JSON (HTTP 400, `error.code` 100 invalid parameter, 131008 missing parameter, 131009 parameter
value not valid, 131053 media upload error, 132001 unknown template or language, 132000 wrong
number of template parameters, 132018 a template parameter with a newline, a tab or more than
four spaces in a row; 401 with code 190 for a wrong token). Templates are known by name, with
their languages and body parameter count (`templates`). It serves
``POST /<version>/<phone_number_id>/messages`` and ``/media`` on 127.0.0.1, records every
accepted call, shows what a person would see (``sent_to``), injects errors (for every call, or
for one recipient's) and delays, records every attempt to send a message with the time it
arrived on its `clock` (``attempts``: a test's virtual clock makes pacing checkable without
waiting), and builds inbound webhook bodies, status webhooks and their signatures.

Typical use::

    async with FakeGraphAPI() as graph:
        client = GraphClient(graph.root_url, graph.version, graph.phone_number_id, graph.token)
        await client.initialize()
        await client.send({"messaging_product": "whatsapp", "to": "966500000001", ...})
        [seen] = graph.sent_to("966500000001")
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.fakes.fake_bot_api import ensure_no_proxy

JSONDict = dict[str, Any]

MAX_TEXT = 4096
MAX_BODY = 1024
MAX_CAPTION = 1024
MAX_REPLY_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_LIST_BUTTON = 20
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200
MAX_IMAGE = 5 * 1024 * 1024
MAX_AUDIO = 16 * 1024 * 1024
MAX_TEMPLATE_PARAM = 1024
MAX_QUICK_REPLY_PAYLOAD = 256
# name -> (languages, body parameters): the templates "approved" in this fake.
DEFAULT_TEMPLATES: dict[str, tuple[frozenset[str], int]] = {
    "policy_expiry_reminder": (frozenset({"ar", "en"}), 5),
}
_BAD_PARAM_RE = re.compile(r"[\n\t]| {5,}")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})
AUDIO_TYPES = frozenset({"audio/ogg", "audio/ogg; codecs=opus", "audio/aac", "audio/mpeg"})

_VERSION_RE = re.compile(r"v\d+\.\d+")


class GraphFault(Exception):
    """A refusal, answered as Graph's error JSON."""

    def __init__(
        self, code: int, message: str, *, status: int = 400, subcode: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.subcode = subcode

    def response(self) -> web.Response:
        error: JSONDict = {
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": "AfakeTraceId",
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["error_data"] = {"messaging_product": "whatsapp", "details": self.message}
        return web.json_response({"error": error}, status=self.status)


def _invalid(message: str) -> GraphFault:
    return GraphFault(131009, f"(#131009) Parameter value is not valid: {message}")


def _missing(message: str) -> GraphFault:
    return GraphFault(131008, f"(#131008) Required parameter is missing: {message}")


@dataclass(frozen=True)
class Injected:
    """An error (or a delay only, with `status` 200) for the next `times` calls to an edge."""

    code: int
    status: int
    message: str
    delay: float = 0.0


@dataclass(frozen=True)
class Media:
    id: str
    data: bytes = field(repr=False)
    mime: str


@dataclass(frozen=True)
class Seen:
    """One message as the person would see it."""

    id: str
    type: str  # text, interactive, image, audio, template
    text: str = ""  # text body, interactive body or image caption
    buttons: tuple[str, ...] = ()  # reply-button or list-row titles, in order
    button_ids: tuple[str, ...] = ()
    list_button: str = ""  # the list's opening button
    media: bytes | None = field(default=None, repr=False)  # image or audio (a header's too)
    media_type: str = ""
    template: str = ""  # a template's name
    language: str = ""  # a template's language code
    params: tuple[str, ...] = ()  # a template's body parameters, in order
    payload: JSONDict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Call:
    edge: str  # "messages" or "media"
    body: JSONDict  # the JSON, or the multipart fields (file as bytes)


@dataclass(frozen=True)
class Attempt:
    """One POST /messages that would send a message (not a read receipt), as it arrived."""

    at: float  # the fake's clock when the request arrived, before any delay
    to: str
    type: str  # text, template, interactive...
    code: int = 0  # 0: accepted; else the error code answered
    id: str = ""  # the wamid of an accepted message


class FakeGraphAPI:
    def __init__(
        self,
        *,
        token: str = "test-graph-token-not-a-secret",
        phone_number_id: str = "100200300400500",
        version: str = "v25.0",
        business_account_id: str = "900800700600500",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.clock = clock
        self.attempts: list[Attempt] = []
        self.phone_number_id = phone_number_id
        self.version = version
        self.business_account_id = business_account_id
        self.host = host
        self.port = port
        self.calls: list[Call] = []
        self.media: dict[str, Media] = {}
        self.read: list[str] = []  # message ids marked read
        self._seen: dict[str, list[Seen]] = {}
        self._faults: dict[tuple[str, str | None], deque[Injected]] = {}
        self._delays: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._inbound_ids: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.templates = dict(DEFAULT_TEMPLATES)

    # -- server ------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> Self:
        ensure_no_proxy()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{version}/{phone_id}/{edge}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- faults ------------------------------------------------------------------------------

    def inject_error(
        self,
        edge: str,
        *,
        code: int,
        status: int = 400,
        message: str | None = None,
        times: int = 1,
        delay: float = 0.0,
        to: str | None = None,
    ) -> None:
        """The next `times` calls to `edge` ("messages", "media") fail with Meta's `code`;
        with `to`, the next messages to that recipient only."""
        text = message or f"(#{code}) injected error"
        queue = self._faults.setdefault((edge, to), deque())
        queue.extend(Injected(code, status, text, delay) for _ in range(times))

    def set_delay(self, edge: str, seconds: float) -> None:
        """Every call to `edge` waits `seconds` before answering (0 to stop)."""
        self._delays[edge] = seconds

    # -- what was sent -----------------------------------------------------------------------

    def sent_to(self, wa_id: str) -> list[Seen]:
        return list(self._seen.get(wa_id, []))

    def calls_to(self, edge: str) -> list[Call]:
        return [call for call in self.calls if call.edge == edge]

    def attempts_to(self, wa_id: str) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.to == wa_id]

    # -- inbound webhook bodies --------------------------------------------------------------

    def _next_wamid(self) -> str:
        wamid = f"wamid.FAKE{next(self._ids):08d}{int(time.time() * 1000)}"
        self._inbound_ids.add(wamid)
        return wamid

    def _webhook(self, wa_id: str, message: JSONDict, name: str) -> JSONDict:
        message = {
            "from": wa_id,
            "id": self._next_wamid(),
            "timestamp": str(int(time.time())),
            **message,
        }
        value = {
            "contacts": [{"wa_id": wa_id, "profile": {"name": name}}],
            "messages": [message],
        }
        return self._envelope(value)

    def _envelope(self, value: JSONDict) -> JSONDict:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "15550001111",
                "phone_number_id": self.phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.business_account_id,
                    "changes": [{"field": "messages", "value": value}],
                }
            ],
        }

    def status_webhook(self, *statuses: JSONDict) -> JSONDict:
        """A status post (`statuses[]`), as Meta sends about messages the bot sent."""
        return self._envelope({"statuses": list(statuses)})

    @staticmethod
    def status(wamid: str, status: str, recipient: str, *, code: int | None = None) -> JSONDict:
        """One status item: sent, delivered, read, or failed with Meta's error `code`."""
        item: JSONDict = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if code is not None:
            item["errors"] = [
                {
                    "code": code,
                    "title": f"error {code}",
                    "message": f"error {code}",
                    "error_data": {"details": "injected by the fake"},
                }
            ]
        return item

    def inbound_text(self, wa_id: str, text: str, *, name: str = "Test User") -> JSONDict:
        return self._webhook(wa_id, {"type": "text", "text": {"body": text}}, name)

    def inbound_button(
        self, wa_id: str, id: str, title: str, *, name: str = "Test User"
    ) -> JSONDict:
        interactive = {"type": "button_reply", "button_reply": {"id": id, "title": title}}
        return self._webhook(wa_id, {"type": "interactive", "interactive": interactive}, name)

    def inbound_template_reply(
        self, wa_id: str, payload: str, text: str, *, name: str = "Test User"
    ) -> JSONDict:
        """A tap on a template's quick-reply button (type `button`, not `interactive`)."""
        return self._webhook(
            wa_id, {"type": "button", "button": {"payload": payload, "text": text}}, name
        )

    def inbound_list(self, wa_id: str, id: str, title: str, *, name: str = "Test User") -> JSONDict:
        interactive = {"type": "list_reply", "list_reply": {"id": id, "title": title}}
        return self._webhook(wa_id, {"type": "interactive", "interactive": interactive}, name)

    def inbound_other(self, wa_id: str, type: str, *, name: str = "Test User") -> JSONDict:
        """A message the bot does not read (image, sticker, location...), minimal content."""
        content: JSONDict = {"id": f"media-{next(self._ids)}", "mime_type": "application/x-fake"}
        return self._webhook(wa_id, {"type": type, type: content}, name)

    @staticmethod
    def sign(body: bytes, app_secret: str) -> str:
        """The X-Hub-Signature-256 header Meta sends with `body`."""
        return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()

    @staticmethod
    def encode(payload: JSONDict) -> bytes:
        """A webhook body as bytes (sign these exact bytes)."""
        return json.dumps(payload, ensure_ascii=False).encode()

    # -- handling ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        edge = request.match_info["edge"]
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise GraphFault(
                    190, "Invalid OAuth access token - Cannot parse access token", status=401
                )
            if not _VERSION_RE.fullmatch(request.match_info["version"]):
                raise GraphFault(2500, "Unknown path components", status=400)
            if request.match_info["phone_id"] != self.phone_number_id or edge not in (
                "messages",
                "media",
            ):
                raise GraphFault(
                    100,
                    "Unsupported post request. Object does not exist or does not support this "
                    "operation",
                    subcode=33,
                )
            arrived = self.clock()
            to, kind = await self._recipient(request) if edge == "messages" else (None, "")
            delay = self._delays.get(edge, 0.0)
            queue = self._faults.get((edge, to)) or self._faults.get((edge, None))
            injected = queue.popleft() if queue else None
            if injected is not None:
                delay += injected.delay
            if delay:
                await asyncio.sleep(delay)
            try:
                if injected is not None and injected.status != 200:
                    raise GraphFault(injected.code, injected.message, status=injected.status)
                if edge == "media":
                    return await self._upload(request)
                response = await self._message(request)
            except GraphFault as fault:
                if to is not None:
                    self.attempts.append(Attempt(arrived, to, kind, fault.code))
                raise
            if to is not None:
                wamid = json.loads(response.body)["messages"][0]["id"]  # type: ignore[arg-type]
                self.attempts.append(Attempt(arrived, to, kind, 0, wamid))
            return response
        except GraphFault as fault:
            return fault.response()

    @staticmethod
    async def _recipient(request: web.Request) -> tuple[str | None, str]:
        """Who a /messages call is for, and what kind; (None, "") for a read receipt or a
        body that is not a message (it is refused further on)."""
        try:
            body = await request.json()
        except ValueError:
            return None, ""
        if not isinstance(body, dict) or "status" in body or not isinstance(body.get("to"), str):
            return None, ""
        return body["to"], str(body.get("type", "text"))

    async def _upload(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/form-data"):
            raise GraphFault(100, "(#100) Upload must be multipart/form-data")
        form = await request.post()
        if form.get("messaging_product") != "whatsapp":
            raise _missing("messaging_product")
        mime = form.get("type")
        file = form.get("file")
        if not isinstance(mime, str) or not mime:
            raise _missing("type")
        if not isinstance(file, web.FileField):
            raise _missing("file")
        data = file.file.read()
        mime = mime.lower()
        if mime in IMAGE_TYPES:
            magic = b"\x89PNG\r\n\x1a\n" if mime == "image/png" else b"\xff\xd8\xff"
            if not data.startswith(magic):
                raise GraphFault(131053, f"Media upload error: the file is not {mime}")
            if len(data) > MAX_IMAGE:
                raise GraphFault(131053, "Media upload error: image over 5 MB")
        elif mime in AUDIO_TYPES:
            if mime.startswith("audio/ogg") and not (
                data.startswith(b"OggS") and b"OpusHead" in data[:512]
            ):
                raise GraphFault(131053, "Media upload error: audio/ogg must be Opus")
            if len(data) > MAX_AUDIO:
                raise GraphFault(131053, "Media upload error: audio over 16 MB")
        else:
            raise GraphFault(131053, f"Media upload error: unsupported type {mime}")
        media_id = str(1_000_000_000_000 + next(self._ids))
        self.media[media_id] = Media(media_id, data, mime)
        self.calls.append(
            Call("media", {"messaging_product": "whatsapp", "type": mime, "file": data})
        )
        return web.json_response({"id": media_id})

    async def _message(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError as err:
            raise GraphFault(100, "(#100) The request body is not JSON") from err
        if not isinstance(body, dict):
            raise GraphFault(100, "(#100) The request body is not an object")
        if body.get("messaging_product") != "whatsapp":
            raise GraphFault(100, "(#100) The parameter messaging_product is required.")
        if "status" in body:
            return self._mark_read(body)
        to = body.get("to")
        if not isinstance(to, str) or not to:
            raise GraphFault(100, "(#100) The parameter to is required.")
        seen = self._check(body)
        self.calls.append(Call("messages", body))
        self._seen.setdefault(to, []).append(seen)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": seen.id}],
            }
        )

    def _mark_read(self, body: JSONDict) -> web.Response:
        if body.get("status") != "read":
            raise _invalid("status must be read")
        message_id = body.get("message_id")
        if message_id not in self._inbound_ids:
            raise GraphFault(100, "(#100) Invalid parameter: unknown message_id")
        self.calls.append(Call("messages", body))
        self.read.append(message_id)
        return web.json_response({"success": True})

    def _media_of(self, obj: Any, kinds: frozenset[str]) -> Media:
        if not isinstance(obj, dict):
            raise _missing("media object")
        if "link" in obj:
            raise _invalid("this fake takes media by id only")
        media = self.media.get(str(obj.get("id")))
        if media is None:
            raise _invalid("unknown media id")
        if media.mime not in kinds:
            raise _invalid(f"media of type {media.mime} here")
        return media

    def _check(self, body: JSONDict) -> Seen:
        kind = body.get("type", "text")
        wamid = f"wamid.OUT{next(self._ids):010d}"
        content = body.get(kind)
        if not isinstance(content, dict):
            raise _missing(f"{kind} object")
        if kind == "text":
            text = content.get("body")
            if not isinstance(text, str) or not text:
                raise _missing("text.body")
            if len(text) > MAX_TEXT:
                raise _invalid(f"text.body over {MAX_TEXT} characters")
            return Seen(wamid, "text", text=text, payload=body)
        if kind == "image":
            media = self._media_of(content, IMAGE_TYPES)
            caption = content.get("caption", "")
            if not isinstance(caption, str) or len(caption) > MAX_CAPTION:
                raise _invalid(f"image.caption over {MAX_CAPTION} characters")
            return Seen(wamid, "image", text=caption, media=media.data, media_type=media.mime,
                        payload=body)  # fmt: skip
        if kind == "audio":
            if set(content) - {"id", "link"}:
                raise GraphFault(100, "(#100) Param audio has unexpected keys (no caption)")
            media = self._media_of(content, AUDIO_TYPES)
            return Seen(wamid, "audio", media=media.data, media_type=media.mime, payload=body)
        if kind == "interactive":
            return self._check_interactive(wamid, content, body)
        if kind == "template":
            return self._check_template(wamid, content, body)
        raise GraphFault(100, f"(#100) Unsupported message type {kind!r} in this fake")

    def _check_interactive(self, wamid: str, content: JSONDict, body: JSONDict) -> Seen:
        itype = content.get("type")
        text = (content.get("body") or {}).get("text")
        if not isinstance(text, str) or not text:
            raise _missing("interactive.body.text")
        if len(text) > MAX_BODY:
            raise _invalid(f"interactive.body.text over {MAX_BODY} characters")
        action = content.get("action")
        if not isinstance(action, dict):
            raise _missing("interactive.action")
        header = content.get("header")
        media: Media | None = None
        if itype == "button":
            buttons = action.get("buttons")
            if not isinstance(buttons, list) or not buttons:
                raise _missing("action.buttons")
            if len(buttons) > MAX_REPLY_BUTTONS:
                raise _invalid(f"at most {MAX_REPLY_BUTTONS} reply buttons")
            pairs = []
            for button in buttons:
                reply = button.get("reply") if isinstance(button, dict) else None
                if button.get("type") != "reply" or not isinstance(reply, dict):
                    raise _invalid("buttons must be of type reply")
                pairs.append((str(reply.get("id", "")), str(reply.get("title", ""))))
            self._check_choices(pairs, MAX_BUTTON_TITLE, MAX_BUTTON_ID, "button")
            if header is not None:
                if not isinstance(header, dict) or header.get("type") not in (
                    "text", "image", "video", "document",
                ):  # fmt: skip
                    raise _invalid("header type")
                if header["type"] == "image":
                    media = self._media_of(header.get("image"), IMAGE_TYPES)
            return Seen(
                wamid, "interactive", text=text,
                buttons=tuple(t for _, t in pairs), button_ids=tuple(i for i, _ in pairs),
                media=media.data if media else None, media_type=media.mime if media else "",
                payload=body,
            )  # fmt: skip
        if itype == "list":
            if header is not None and (
                not isinstance(header, dict) or header.get("type") != "text"
            ):
                raise _invalid("a list's header can only be text")
            label = action.get("button")
            if not isinstance(label, str) or not label:
                raise _missing("action.button")
            if len(label) > MAX_LIST_BUTTON:
                raise _invalid(f"action.button over {MAX_LIST_BUTTON} characters")
            sections = action.get("sections")
            if not isinstance(sections, list) or not sections:
                raise _missing("action.sections")
            if len(sections) > 1 and not all(
                isinstance(s, dict) and s.get("title") for s in sections
            ):
                raise _missing("section titles (required with several sections)")
            pairs = []
            for section in sections:
                rows = section.get("rows") if isinstance(section, dict) else None
                if not isinstance(rows, list) or not rows:
                    raise _missing("section rows")
                for row in rows:
                    if not isinstance(row, dict):
                        raise _invalid("row")
                    if len(str(row.get("description", ""))) > MAX_ROW_DESCRIPTION:
                        raise _invalid(f"row description over {MAX_ROW_DESCRIPTION} characters")
                    pairs.append((str(row.get("id", "")), str(row.get("title", ""))))
            if len(pairs) > MAX_LIST_ROWS:
                raise _invalid(f"at most {MAX_LIST_ROWS} rows in all")
            self._check_choices(pairs, MAX_ROW_TITLE, MAX_ROW_ID, "row")
            return Seen(
                wamid, "interactive", text=text, list_button=label,
                buttons=tuple(t for _, t in pairs), button_ids=tuple(i for i, _ in pairs),
                payload=body,
            )  # fmt: skip
        raise _invalid(f"interactive.type {itype!r}")

    def _check_template(self, wamid: str, content: JSONDict, body: JSONDict) -> Seen:
        name = content.get("name")
        if not isinstance(name, str) or not name:
            raise _missing("template.name")
        code = (content.get("language") or {}).get("code")
        if not isinstance(code, str) or not code:
            raise _missing("template.language.code")
        known = self.templates.get(name)
        if known is None or code not in known[0]:
            raise GraphFault(132001, f"(#132001) Template name does not exist in {code}")
        params: list[str] = []
        payloads: list[str] = []
        components = content.get("components", [])
        if not isinstance(components, list):
            raise _invalid("template.components")
        for component in components:
            if not isinstance(component, dict):
                raise _invalid("template component")
            kind = component.get("type")
            parameters = component.get("parameters", [])
            if not isinstance(parameters, list):
                raise _invalid("component parameters")
            if kind == "body":
                for parameter in parameters:
                    text = parameter.get("text") if isinstance(parameter, dict) else None
                    if parameter.get("type") != "text" or not isinstance(text, str) or not text:
                        raise _missing("body parameter text")
                    if _BAD_PARAM_RE.search(text):
                        raise GraphFault(
                            132018,
                            "(#132018) There was an issue with the parameters in your "
                            "template: Param text cannot have new-line/tab characters or "
                            "more than 4 consecutive spaces",
                        )
                    if len(text) > MAX_TEMPLATE_PARAM:
                        raise _invalid(f"body parameter over {MAX_TEMPLATE_PARAM} characters")
                    params.append(text)
            elif kind == "button":
                if component.get("sub_type") != "quick_reply" or component.get("index") != "0":
                    raise _invalid("this fake's templates have one quick reply at index 0")
                for parameter in parameters:
                    data = parameter.get("payload") if isinstance(parameter, dict) else None
                    if parameter.get("type") != "payload" or not isinstance(data, str) or not data:
                        raise _missing("quick reply payload")
                    if len(data) > MAX_QUICK_REPLY_PAYLOAD:
                        raise _invalid(f"payload over {MAX_QUICK_REPLY_PAYLOAD} characters")
                    payloads.append(data)
            else:
                raise _invalid(f"component type {kind!r} in this fake")
        if len(params) != known[1]:
            raise GraphFault(
                132000,
                f"(#132000) Number of parameters does not match the expected number of "
                f"params ({len(params)} sent, {known[1]} expected)",
            )
        return Seen(
            wamid, "template", template=name, language=code, params=tuple(params),
            button_ids=tuple(payloads), payload=body,
        )  # fmt: skip

    @staticmethod
    def _check_choices(
        pairs: list[tuple[str, str]], max_title: int, max_id: int, what: str
    ) -> None:
        titles = [title for _, title in pairs]
        ids = [id for id, _ in pairs]
        for id, title in pairs:
            if not title:
                raise _missing(f"{what} title")
            if len(title) > max_title:
                raise _invalid(f"{what} title over {max_title} characters: {title!r}")
            if not id:
                raise _missing(f"{what} id")
            if len(id) > max_id:
                raise _invalid(f"{what} id over {max_id} characters")
        if len(set(titles)) != len(titles):
            raise _invalid(f"{what} titles must be unique")
        if len(set(ids)) != len(ids):
            raise _invalid(f"{what} ids must be unique")


# ----------------------------------------------------------------------------- in a process
#
# For benchmarks: the fake in a child process (its CPU not billed to the bot nor the driver),
# told what to do over a small control app on its own port. The driver builds the webhook
# bodies itself (`FakeGraphAPI().inbound_text` in its own process), so this fake takes every
# "wamid.FAKE" id as one it sent.

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import multiprocessing  # noqa: E402
import signal  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402
from multiprocessing.process import BaseProcess  # noqa: E402

Reply = tuple[int, str, bool, float]  # seq, to, has media, when it reached the fake


class _RecordingGraphAPI(FakeGraphAPI):
    """Every accepted outgoing message (not read receipts) as a `Reply`, timed when the
    request reached the fake (before any delay), for a long-polling driver."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replies: list[Reply] = []
        self._grew = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request["fake_received_at"] = time.monotonic()
        return await super()._handle(request)

    async def _message(self, request: web.Request) -> web.Response:
        before = len(self.calls)
        response = await super()._message(request)
        if len(self.calls) > before and "status" not in self.calls[-1].body:
            to = str(self.calls[-1].body["to"])
            seen = self._seen[to][-1]
            when = float(request["fake_received_at"])
            self.replies.append((len(self.replies), to, seen.media is not None, when))
            self._grew.set()
        return response

    def _mark_read(self, body: JSONDict) -> web.Response:
        message_id = body.get("message_id")
        if isinstance(message_id, str) and message_id.startswith("wamid.FAKE"):
            self._inbound_ids.add(message_id)
        return super()._mark_read(body)

    def clear(self) -> None:
        self.calls.clear()
        self.media.clear()
        self.read.clear()
        self._seen.clear()
        self._inbound_ids.clear()
        self.replies.clear()
        self.attempts.clear()

    async def wait_replies(self, since: int, timeout: float) -> list[Reply]:
        if len(self.replies) <= since:
            self._grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grew.wait(), timeout)
        return self.replies[since:]


def _control_app(api: _RecordingGraphAPI) -> web.Application:
    async def delay(request: web.Request) -> web.Response:
        body = await request.json()
        for edge in ("messages", "media"):
            api.set_delay(edge, float(body["seconds"]))
        return web.json_response({"ok": True})

    async def clear(request: web.Request) -> web.Response:
        api.clear()
        return web.json_response({"ok": True})

    async def replies(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        found = await api.wait_replies(since, float(request.query.get("timeout", "1")))
        return web.json_response({"replies": found})

    async def inject(request: web.Request) -> web.Response:
        body = await request.json()
        api.inject_error(
            str(body.get("edge", "messages")),
            code=int(body["code"]),
            status=int(body.get("status", 400)),
            times=int(body.get("times", 1)),
            to=body.get("to"),
        )
        return web.json_response({"ok": True})

    async def attempts(request: web.Request) -> web.Response:
        return web.json_response(
            {"attempts": [dataclasses.asdict(attempt) for attempt in api.attempts]}
        )

    async def stats(request: web.Request) -> web.Response:
        by_edge: dict[str, int] = {}
        for call in api.calls:
            key = call.edge if "status" not in call.body else "messages (read)"
            by_edge[key] = by_edge.get(key, 0) + 1
        return web.json_response({"cpu_s": time.process_time(), "calls": by_edge})

    app = web.Application()
    app.router.add_post("/_control/delay", delay)
    app.router.add_post("/_control/clear", clear)
    app.router.add_get("/_control/replies", replies)
    app.router.add_get("/_control/stats", stats)
    app.router.add_post("/_control/inject", inject)
    app.router.add_get("/_control/attempts", attempts)
    return app


def _graph_child_main(conn: Connection, kwargs: JSONDict) -> None:
    asyncio.run(_graph_child_serve(conn, kwargs))


async def _graph_child_serve(conn: Connection, kwargs: JSONDict) -> None:
    api = _RecordingGraphAPI(**kwargs)
    await api.start()
    runner = web.AppRunner(_control_app(api), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, api.host, 0).start()
    control_port = int(runner.addresses[0][1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conn.send((api.root_url, f"http://{api.host}:{control_port}"))
    conn.close()
    await stop.wait()
    await runner.cleanup()
    await api.stop()


class FakeGraphAPIProcess:
    """`FakeGraphAPI` in a child process; `root_url` is the Graph API, `control_url` its
    ``/_control/*`` (delay, clear, replies?since=&timeout=, stats, inject, attempts). Same
    token, phone number id and version as `FakeGraphAPI`'s defaults unless given. It outlives
    a client killed mid-broadcast, keeping the record of every message that really arrived."""

    def __init__(self, **kwargs: Any) -> None:
        defaults = FakeGraphAPI(**kwargs)
        self.token = defaults.token
        self.phone_number_id = defaults.phone_number_id
        self.version = defaults.version
        self._kwargs = kwargs
        self._process: BaseProcess | None = None
        self.root_url = ""
        self.control_url = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> None:
        ensure_no_proxy()
        ctx = multiprocessing.get_context("spawn")
        reader, writer = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_graph_child_main,
            args=(writer, self._kwargs),
            name="fake-graph-api",
            daemon=True,
        )
        self._process.start()
        writer.close()
        if not reader.poll(timeout):
            self.stop()
            raise RuntimeError("fake Graph API process did not start")
        self.root_url, self.control_url = reader.recv()
        reader.close()

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.is_alive():
            process.terminate()
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
