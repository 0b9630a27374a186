"""The WhatsApp `Sender`: reminders as approved template messages, through the Graph API.

Reminders go out when the person is not talking to the bot, outside WhatsApp's 24-hour
customer-service window, where only pre-approved templates may be sent
(docs/whatsapp-templates.md). A `Message` that carries a `ReminderTemplate` is sent as the
template named by WHATSAPP_REMINDER_TEMPLATE, its values as the body's parameters and its stop
button's data as the quick reply's payload. A `Message` without one (an admin's typed
broadcast) is sent as plain text: Meta refuses it (131047, mapped to `Rejected`) for people
outside the window; skipping them beforehand is not done here.

Meta's codes mapped to delivery outcomes (bot/reminders/sending.py):

- 130429 (throughput) -> `RetryLater(THROUGHPUT_PAUSE)`: the whole number is over its rate.
- 131056 (pair rate: too many messages to one person) -> `Transient`: the runner has no
  per-recipient retry-after, and a `RetryLater` would pause every send for one person; a
  reminder is at most one message a day per subscription, so the runner's back-off is enough.
- 131026 (undeliverable: not on WhatsApp, terms not accepted) -> `Blocked`.
- 131047 (outside the 24-hour window) -> `Rejected`.
- 131049 / 131050 (marketing limits, opted out of marketing) -> `Rejected`.
- HTTP 401 or code 190 (bad or expired token) -> `SenderUnavailable`.
- other transient codes, HTTP 5xx, time-outs and network errors -> `Transient`; the rest
  -> `Rejected`.
"""

from __future__ import annotations

import re

from bot.channels.whatsapp_api import GraphClient, GraphError, GraphUnavailable, JSONDict
from bot.conversation.replies import Message, ReminderTemplate
from bot.reminders.sending import Blocked, Rejected, RetryLater, SenderUnavailable, Transient

CHANNEL = "whatsapp"
THROUGHPUT_PAUSE = 2.0  # seconds all sending pauses on 130429 (Meta gives no retry-after)
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


class WhatsAppSender:
    """Sends reminders (templates) and broadcasts (text) to WhatsApp ids."""

    channel = CHANNEL

    def __init__(self, client: GraphClient, template_name: str) -> None:
        self.client = client
        self.template_name = template_name

    async def send(self, chat_id: str, message: Message) -> None:
        if message.template is not None:
            payload = template_payload(chat_id, message.template, self.template_name)
        else:
            payload = text_payload(chat_id, message)
        try:
            await self.client.send(payload)
        except GraphUnavailable as exc:
            raise Transient(str(exc)) from exc
        except GraphError as exc:
            raise mapped(exc) from exc


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
        return Transient(f"pair rate limit: {reason}")
    if code == 131026:
        return Blocked(reason)
    if code == 131047:
        return Rejected(f"outside the 24-hour window ({reason})")
    if code in (131049, 131050):
        return Rejected(reason)
    if error.transient:
        return Transient(reason)
    return Rejected(reason)
