"""The bot's channel-neutral replies as WhatsApp Cloud API messages.

`payloads()` is pure: it builds the JSON of every /messages call a reply needs, in order, given
the media id the reply's upload got (`media()` says what to upload). `deliver()` does the
upload and the sends. Limits are Meta's (/work/shared/DOMAIN.md, tests/fakes/fake_graph_api.py
enforces them): text 4,096 characters; interactive body and image caption 1,024; at most 3
reply buttons (title ≤ 20, unique); a list has one opening button (≤ 20) and at most 10 rows
(title ≤ 24).

Choices:
- A keyboard's rows are flattened: WhatsApp has no rows. 1-3 buttons become reply buttons,
  4-10 a list (one section, no title), more raise ValueError: the engine's largest keyboard is
  the four-button menu, and a keyboard of more than 10 would have to be cut by the engine, not
  silently here.
- A list's opening button needs words ("Choose" / «اختر»): the caller passes `list_label` from
  the catalogs. The same words are the body of a buttons message whose own text had to go in a
  separate message (see below): Meta requires a non-empty body.
- Photo with 1-3 buttons and a caption of 1-1,024 characters: ONE interactive button message
  with the image as its header and the caption as its body, so the buttons sit under the
  picture as on Telegram (the captcha image and its "new code" / "audio code" buttons). A list
  cannot have an image header (text only), so a Photo with 4+ buttons (or no caption) is an
  image message, then the caption and buttons as a message of their own.
- Voice: WhatsApp audio messages have no caption and an interactive header cannot be audio, so
  the clip goes first, then the caption (with the buttons, if any) as its own message.
- A body longer than 1,024 with buttons: the text goes whole as a text message (≤ 4,096),
  then the buttons with `list_label` as their body. Cutting the text would lose what the bot
  says; this costs one extra message, only for the longest texts (about insurance).
- Text over 4,096 characters is split at line breaks (at spaces, or hard, if a line is longer).
- `Photo.alt` and `Voice.label` have nowhere to go: WhatsApp has no alt text for media.
- `rtl` needs nothing: WhatsApp lays out each message by its script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.conversation.replies import ButtonSpec, Keyboard, Message, Photo, Reply, Voice

JSONDict = dict[str, Any]

MAX_TEXT = 4096
MAX_BODY = 1024  # interactive body; also an image caption
MAX_CAPTION = 1024
MAX_REPLY_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
MAX_LIST_BUTTON = 20


@dataclass(frozen=True, slots=True)
class Upload:
    """Media a reply needs uploaded before its messages are sent."""

    data: bytes
    mime: str
    filename: str


class Sender(Protocol):
    """What deliver() needs of bot.channels.whatsapp_api.GraphClient."""

    async def send(self, payload: JSONDict) -> str: ...

    async def upload(self, data: bytes, mime: str, filename: str) -> str: ...


def media(reply: Reply) -> Upload | None:
    if isinstance(reply, Photo):
        return Upload(reply.png, "image/png", "image.png")
    if isinstance(reply, Voice):
        return Upload(reply.ogg, "audio/ogg", "voice.ogg")
    return None


def payloads(to: str, reply: Reply, list_label: str, media_id: str | None = None) -> list[JSONDict]:
    """Every /messages payload for `reply` to `to`, in order (media by `media_id`)."""
    if not 1 <= len(list_label) <= MAX_LIST_BUTTON:
        raise ValueError(f"list_label must have 1-{MAX_LIST_BUTTON} characters")
    buttons = _flat(reply.buttons)
    if isinstance(reply, Message):
        return [_envelope(to, p) for p in _text_and_buttons(reply.text, buttons, list_label)]
    if media_id is None:
        raise ValueError("a Photo or a Voice needs the media id of its upload")
    parts: list[JSONDict]
    if isinstance(reply, Photo):
        caption = reply.caption
        if buttons and len(buttons) <= MAX_REPLY_BUTTONS and 1 <= len(caption) <= MAX_BODY:
            header = {"type": "image", "image": {"id": media_id}}
            parts = [_reply_buttons(caption, buttons, header)]
        elif not buttons and len(caption) <= MAX_CAPTION:
            image: JSONDict = {"id": media_id}
            if caption:
                image["caption"] = caption
            parts = [{"type": "image", "image": image}]
        else:
            parts = [{"type": "image", "image": {"id": media_id}}]
            parts += _text_and_buttons(caption, buttons, list_label)
    else:
        parts = [{"type": "audio", "audio": {"id": media_id}}]
        parts += _text_and_buttons(reply.caption, buttons, list_label)
    return [_envelope(to, p) for p in parts]


async def deliver(client: Sender, to: str, reply: Reply, list_label: str) -> list[str]:
    """Upload the reply's media (if any), then send its messages in order; their ids."""
    upload = media(reply)
    media_id = None
    if upload is not None:
        media_id = await client.upload(upload.data, upload.mime, upload.filename)
    return [await client.send(p) for p in payloads(to, reply, list_label, media_id)]


def _flat(keyboard: Keyboard) -> list[ButtonSpec]:
    buttons = [button for row in keyboard for button in row]
    if len(buttons) > MAX_LIST_ROWS:
        raise ValueError(f"WhatsApp shows at most {MAX_LIST_ROWS} choices, got {len(buttons)}")
    titles = [button.label for button in buttons]
    if len(set(titles)) != len(titles):
        raise ValueError(f"WhatsApp needs distinct button titles: {titles}")
    for title in titles:
        if not 1 <= len(title) <= MAX_BUTTON_TITLE:
            raise ValueError(f"a button title must have 1-{MAX_BUTTON_TITLE} characters: {title!r}")
    return buttons


def _envelope(to: str, part: JSONDict) -> JSONDict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **part}


def _text_and_buttons(text: str, buttons: list[ButtonSpec], list_label: str) -> list[JSONDict]:
    if not buttons:
        return [{"type": "text", "text": {"body": chunk}} for chunk in split_text(text)]
    if 1 <= len(text) <= MAX_BODY:
        return [_choices(text, buttons, list_label)]
    texts = [{"type": "text", "text": {"body": chunk}} for chunk in split_text(text)]
    return [*texts, _choices(list_label, buttons, list_label)]


def _choices(body: str, buttons: list[ButtonSpec], list_label: str) -> JSONDict:
    if len(buttons) <= MAX_REPLY_BUTTONS:
        return _reply_buttons(body, buttons)
    rows = [{"id": button.data, "title": button.label} for button in buttons]
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": body},
            "action": {"button": list_label, "sections": [{"rows": rows}]},
        },
    }


def _reply_buttons(
    body: str, buttons: list[ButtonSpec], header: JSONDict | None = None
) -> JSONDict:
    interactive: JSONDict = {
        "type": "button",
        "body": {"text": body},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": button.data, "title": button.label}}
                for button in buttons
            ]
        },
    }
    if header is not None:
        interactive["header"] = header
    return {"type": "interactive", "interactive": interactive}


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at line breaks, else spaces."""
    if not text:
        return []
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = limit
        piece = text[:cut].rstrip()
        if piece:
            pieces.append(piece)
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces
