"""The WhatsApp `Sender`: reminders as approved template messages, through the Graph API.

Reminders go out when the person is not talking to the bot, outside WhatsApp's 24-hour
customer-service window, where only pre-approved templates may be sent
(docs/whatsapp-templates.md). A `Message` that carries a `ReminderTemplate` is sent as the
template named by WHATSAPP_REMINDER_TEMPLATE, its values as the body's parameters and its stop
button's data as the quick reply's payload. A `Message` without one (an admin's typed
broadcast) is sent as plain text, which Meta delivers only within 24 hours of the person's last
message: the delivery runner skips the others before sending (`PACE.window`, judged against
bot/store/activity.py at send time), and 131047 says the same if the window closed meanwhile.

Meta's codes mapped to delivery outcomes (bot/reminders/sending.py):

- 130429 (throughput) -> `RetryLater(THROUGHPUT_PAUSE)`: the whole number is over its rate, so
  all WhatsApp bulk sending pauses.
- 131056 (pair rate: too many messages to one person) -> `RetryRecipientLater(PAIR_GAP)`: that
  person again no sooner than 6 s later; everyone else goes on.
- 131026 (undeliverable: not on WhatsApp, terms not accepted) -> `Blocked`.
- 131047 (outside the 24-hour window) -> `OutsideWindow`: skipped, counted apart.
- 131049 (marketing limit per person) / 131050 (opted out of marketing) -> `Skipped`.
- HTTP 401 or code 190 (bad or expired token) -> `SenderUnavailable`: the run stops.
- other transient codes, HTTP 5xx, time-outs and network errors -> `Transient` (bounded
  retries with back-off); the rest -> `Rejected`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from bot.channels.whatsapp_api import GraphClient, GraphError, GraphUnavailable, JSONDict
from bot.config import Settings
from bot.conversation.replies import Message, ReminderTemplate
from bot.reminders.pacing import Pace
from bot.reminders.sending import (
    Blocked,
    OutsideWindow,
    Rejected,
    RetryLater,
    RetryRecipientLater,
    SenderUnavailable,
    Skipped,
    Transient,
)

CHANNEL = "whatsapp"
THROUGHPUT_PAUSE = 2.0  # seconds all sending pauses on 130429 (Meta gives no retry-after)
PAIR_GAP = 6.0  # Meta's pair rate: about one message per 6 s to the same person
WINDOW = 24 * 3600.0  # the customer-service window for free-form messages
UNDELIVERABLE = 131026
MAX_PARAM = 1024  # a body parameter's length (Meta's limit on the body as a whole)
MAX_PAYLOAD = 256  # a quick-reply button's payload (bot/conversation/buttons.py keeps ≤ 64)
MAX_TEXT = 4096

_BREAKS = re.compile(r"[\r\n\t\v\f\u0085\u2028\u2029]+")
_SPACES = re.compile(r" {5,}")


def template_param(value: str) -> str:
    """A value Meta accepts as a template parameter: no newline or tab (each run becomes one
    space), never more than four spaces in a row, not empty, at most MAX_PARAM characters."""
    text = _BREAKS.sub(" ", value)
    text = _SPACES.sub("    ", text).strip()
    return (text or "-")[:MAX_PARAM]


def template_payload(to: str, template: ReminderTemplate, name: str) -> JSONDict:
    """The Cloud API message of a reminder template."""
    if len(template.stop_data) > MAX_PAYLOAD:
        raise ValueError("the stop button's data is too long for a quick-reply payload")
    body = [{"type": "text", "text": template_param(value)} for value in template.params]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en" if template.locale.startswith("en") else "ar"},
            "components": [
                {"type": "body", "parameters": body},
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": template.stop_data}],
                },
            ],
        },
    }


def text_payload(to: str, message: Message) -> JSONDict:
    """A plain text message (a broadcast: only delivered inside the 24-hour window)."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": message.text[:MAX_TEXT], "preview_url": False},
    }


def bulk_pace(settings: Settings) -> Pace:
    """WhatsApp's pace for reminders and broadcasts: WHATSAPP_RATE under the number's 80/s
    (replies to live conversations take the rest), one message per 6 s to a person, text
    only within 24 hours of their last message."""
    return Pace(settings.whatsapp.rate, per_chat=PAIR_GAP, window=WINDOW)


class WhatsAppSender:
    """Sends reminders (templates) and broadcasts (text) to WhatsApp ids."""

    channel = CHANNEL

    def __init__(self, client: GraphClient, template_name: str) -> None:
        self.client = client
        self.template_name = template_name

    async def send(self, chat_id: str, message: Message) -> str:
        """The wamid of the message sent: its status webhooks find the delivery record by it."""
        if message.template is not None:
            payload = template_payload(chat_id, message.template, self.template_name)
        else:
            payload = text_payload(chat_id, message)
        try:
            return await self.client.send(payload)
        except GraphUnavailable as exc:
            raise Transient(str(exc)) from exc
        except GraphError as exc:
            raise mapped(exc) from exc


def graph_client(settings: Settings, pool_size: int) -> GraphClient:
    wa = settings.whatsapp
    if wa.access_token is None:
        raise ValueError("WHATSAPP_ACCESS_TOKEN is not set")
    return GraphClient(
        wa.api_url,
        wa.api_version,
        wa.phone_number_id,
        wa.access_token.get_secret_value(),
        pool_size=pool_size,
    )


@contextlib.asynccontextmanager
async def bulk_sender(settings: Settings, in_flight: int) -> AsyncIterator[WhatsAppSender]:
    """A sender for bulk messages on a Graph API client of its own, for `in_flight` concurrent
    sends: a long broadcast never holds the connections live replies need."""
    client = graph_client(settings, in_flight + 1)
    await client.initialize()
    try:
        yield WhatsAppSender(client, settings.whatsapp.reminder_template)
    finally:
        await client.shutdown()


def mapped(error: GraphError) -> Exception:
    """The delivery outcome of one Graph API refusal."""
    code, reason = error.code, f"{error.code}: {error.message}"
    if error.status == 401 or code == 190:
        return SenderUnavailable(
            f"WhatsApp access token refused ({reason}): set a valid WHATSAPP_ACCESS_TOKEN"
        )
    if code == 130429:
        return RetryLater(THROUGHPUT_PAUSE, reason)
    if code == 131056:
        return RetryRecipientLater(PAIR_GAP, f"pair rate limit: {reason}")
    if code == UNDELIVERABLE:
        return Blocked(reason)
    if code == 131047:
        return OutsideWindow()
    if code == 131049:
        return Skipped(f"marketing limit for this person ({reason})")
    if code == 131050:
        return Skipped(f"opted out of marketing messages ({reason})")
    if error.transient:
        return Transient(reason)
    return Rejected(reason)
