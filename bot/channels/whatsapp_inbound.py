"""The WhatsApp Cloud API's webhook: the subscription handshake, signed posts, messages in.

    GET  /whatsapp/webhook   hub.mode=subscribe + the verify token -> hub.challenge, else 403
    POST /whatsapp/webhook   X-Hub-Signature-256 (HMAC-SHA256 of the raw body under the app
                             secret) checked first: 401 and nothing read without it. A valid
                             post gets 200 at once; its messages are handled afterwards, in
                             order per chat, each message id once (Meta retries).

Inbound messages become the conversation's events: text, a reply button or list row (by its
id), a template's quick reply (by its payload), anything else "other". Each message also
records when its chat last wrote (WhatsApp's 24-hour window for typed broadcasts). Statuses
(`statuses[]`: delivered, read, failed) update the delivery records of bulk messages and never
produce a reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.conversation.events import Action, Button, ChatKind, Command, Event, Other, OtherKind, Text
from bot.conversation.replies import Reply
from bot.conversation.service import ConversationService
from bot.http import parse_json
from bot.store.activity import ChatActivity
from bot.store.inbound import InboundSeen
from bot.store.receipts import Receipt, ReceiptStatus

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
WEBHOOK_PATH = "/whatsapp/webhook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY = 1024 * 1024  # Meta batches a few messages per post; a megabyte is far beyond that

# Message types the bot cannot use at any step.
_OTHER: dict[str, OtherKind] = {
    "image": OtherKind.PHOTO,
    "audio": OtherKind.VOICE,
    "voice": OtherKind.VOICE,
    "video": OtherKind.VIDEO,
    "document": OtherKind.DOCUMENT,
    "sticker": OtherKind.STICKER,
    "location": OtherKind.LOCATION,
    "contacts": OtherKind.CONTACT,
}
# WhatsApp has no commands; a person who types one of ours means it.
_COMMANDS = frozenset({"start", "cancel", "help", "language", "reminders", "stop"})
# A chat's last message time is written at most this often (seconds): one write fewer per
# message of a busy conversation, at the cost of judging its window up to this much short.
ACTIVITY_STEP = 60.0


@dataclass(frozen=True, slots=True)
class Inbound:
    wa_id: str  # the chat: WhatsApp's id of the person (may stop being a phone number)
    message_id: str  # wamid..., what a retry repeats
    event: Event
    sent_at: float | None = None  # the message's own `timestamp` (when the person sent it)


def _field(message: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of a message, or an empty one when it is anything else."""
    value = message.get(name)
    return value if isinstance(value, dict) else {}


def _action(message: dict[str, Any]) -> Action:
    kind = message.get("type")
    if kind == "text":
        text = str(_field(message, "text").get("body", ""))
        word = text.strip().lower()
        if word.startswith("/") and word[1:] in _COMMANDS:
            return Command(word[1:])
        return Text(text)
    if kind == "interactive":
        interactive = _field(message, "interactive")
        reply = _field(interactive, "button_reply") or _field(interactive, "list_reply")
        return Button(str(reply.get("id", "")))
    if kind == "button":  # a template's quick reply
        return Button(str(_field(message, "button").get("payload", "")))
    return Other(_OTHER.get(str(kind), OtherKind.UNKNOWN))


def inbound(payload: object) -> list[Inbound]:
    """The messages of a webhook payload, in order; statuses and anything malformed skipped."""
    found: list[Inbound] = []
    for message in _items(payload, "messages"):
        wa_id, message_id = message.get("from"), message.get("id")
        if not (isinstance(wa_id, str) and wa_id and isinstance(message_id, str)):
            continue
        # WhatsApp tells no language: the person's choice, else DEFAULT_LOCALE.
        event = Event(_action(message), ChatKind.PRIVATE)
        found.append(Inbound(wa_id, message_id, event, _seconds(message.get("timestamp"))))
    return found


def statuses(payload: object) -> list[Receipt]:
    """The statuses of a webhook payload that say something; "sent" (nothing to learn),
    unknown and malformed ones skipped."""
    return [r for item in _items(payload, "statuses") if (r := receipt_of(item)) is not None]


_RECEIPTS = {status.value: status for status in ReceiptStatus}


def receipt_of(item: dict[str, Any]) -> Receipt | None:
    message_id, status = item.get("id"), _RECEIPTS.get(str(item.get("status")))
    if not (isinstance(message_id, str) and message_id) or status is None:
        return None
    code = None
    errors = item.get("errors")
    if status is ReceiptStatus.FAILED and isinstance(errors, list) and errors:
        first = errors[0]
        value = first.get("code") if isinstance(first, dict) else None
        code = value if isinstance(value, int) and not isinstance(value, bool) else None
    return Receipt(message_id, status, code)


def _seconds(value: object) -> float | None:
    """Meta's `timestamp`: Unix seconds as a string of digits."""
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) <= 12:
        return float(value)
    return None


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _items(payload: object, kind: str) -> Iterator[dict[str, Any]]:
    """`entry[].changes[].value.<kind>[]` of a webhook payload, in order; malformed levels
    skipped."""
    if not isinstance(payload, dict):
        return
    for entry in _dicts(payload.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if isinstance(value, dict):
                yield from _dicts(value.get(kind))


def signature_ok(body: bytes, header: str | None, app_secret: bytes) -> bool:
    """`sha256=<hex>` of the raw body under the app secret, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret, body, hashlib.sha256).hexdigest().encode()
    # Bytes, not text: compare_digest refuses non-ASCII strings (a forged header's latin-1).
    given = header.removeprefix("sha256=").strip().lower().encode("latin-1", "replace")
    return hmac.compare_digest(given, expected)


class Replier(Protocol):
    """How replies reach WhatsApp (the Graph API client and renderer)."""

    async def mark_read(self, message_id: str) -> None: ...

    async def send(self, wa_id: str, replies: Sequence[Reply]) -> None: ...


class StatusRecorder(Protocol):
    """Where statuses go (bot/channels/whatsapp_receipts.py)."""

    async def record(self, receipts: Sequence[Receipt]) -> None: ...


class Inbox:
    """Handles a post's messages after its 200: in order per chat, each id once."""

    def __init__(
        self,
        service: ConversationService,
        seen: InboundSeen,
        replier: Replier,
        clock: Callable[[], float] = time.time,
        *,
        activity: ChatActivity | None = None,
        receipts: StatusRecorder | None = None,
    ) -> None:
        self.service = service
        self.seen = seen
        self.replier = replier
        self.clock = clock
        self.activity = activity
        self.receipts = receipts
        self._recorded: dict[str, float] = {}  # chat -> last message time written
        self._last: dict[str, asyncio.Task[None]] = {}  # each chat's latest, chained
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False  # set at shutdown: new posts get 503, so Meta delivers them later

    def submit(self, messages: Sequence[Inbound]) -> None:
        for message in messages:
            before = self._last.get(message.wa_id)
            task = asyncio.create_task(self._after(before, message), name="whatsapp-message")
            self._last[message.wa_id] = task
            self._track(task)

    def submit_statuses(self, receipts: Sequence[Receipt]) -> None:
        if receipts and self.receipts is not None:
            self._track(asyncio.create_task(self._record(receipts), name="whatsapp-statuses"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _record(self, receipts: Sequence[Receipt]) -> None:
        assert self.receipts is not None
        try:
            await self.receipts.record(receipts)
        except Exception:
            log.exception("Could not record WhatsApp statuses")

    async def _wrote(self, message: Inbound) -> None:
        """When the chat last wrote: the message's own time (a retry delivered late is not
        "now"), never later than now. Newer only, and at most once per ACTIVITY_STEP."""
        if self.activity is None:
            return
        now = self.clock()
        at = min(message.sent_at or now, now)
        if at < self._recorded.get(message.wa_id, -ACTIVITY_STEP) + ACTIVITY_STEP:
            return
        if len(self._recorded) > 10_000:  # a cache: forgetting only costs a write
            self._recorded.clear()
        self._recorded[message.wa_id] = at
        try:
            await self.activity.record(message.wa_id, at)
        except Exception:  # the answer matters more; a missed time only narrows the window
            log.exception("Could not record when a WhatsApp chat wrote")

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        for wa_id in [w for w, last in self._last.items() if last is task]:
            del self._last[wa_id]

    async def _after(self, before: Awaitable[None] | None, message: Inbound) -> None:
        if before is not None:
            await asyncio.wait([asyncio.ensure_future(before)])
        try:
            if not await self.seen.first_time(message.message_id, self.clock()):
                return  # Meta's retry of a message already answered
            await self._wrote(message)
            # The read receipt goes beside the answer, not before it: against the Graph API
            # every call is a round trip (bench/whatsapp.py).
            receipt = asyncio.create_task(self.replier.mark_read(message.message_id))
            try:
                replies = await self.service.handle(message.wa_id, message.event)
                await self.replier.send(message.wa_id, replies)
            finally:
                try:
                    await receipt
                except Exception as exc:  # a read receipt is a courtesy
                    log.info("Could not mark a WhatsApp message read: %s", type(exc).__name__)
        except Exception:
            log.exception("Error while answering a WhatsApp message")

    async def idle(self) -> None:
        """Until everything submitted so far has been answered."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def drain(self, timeout: float = 10.0) -> None:
        """At shutdown: take no more, finish what is being answered, cancel what is late."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(list(self._tasks), timeout=deadline - loop.time())
        for task in list(self._tasks):
            task.cancel()


def webhook_routes(verify_token: str, app_secret: str, inbox: Inbox) -> list[BaseRoute]:
    secret = app_secret.encode()

    async def handshake(request: Request) -> Response:
        params = request.query_params
        given = params.get("hub.verify_token", "").encode()
        if params.get("hub.mode") == "subscribe" and hmac.compare_digest(
            given, verify_token.encode()
        ):
            return PlainTextResponse(params.get("hub.challenge", ""))
        return Response(status_code=403)

    async def receive(request: Request) -> Response:
        if inbox.closing:
            return Response(status_code=503)  # stopping: Meta retries later
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return Response(status_code=413)
        if not signature_ok(bytes(body), request.headers.get(SIGNATURE_HEADER), secret):
            return Response(status_code=401)
        try:
            payload = parse_json(body)
        except ValueError:
            log.warning("WhatsApp webhook: a signed post that is not readable JSON")
            return Response(status_code=400)
        inbox.submit(inbound(payload))
        inbox.submit_statuses(statuses(payload))
        return Response()

    return [
        Route(WEBHOOK_PATH, handshake, methods=["GET"]),
        Route(WEBHOOK_PATH, receive, methods=["POST"]),
    ]
