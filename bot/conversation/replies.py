"""What the bot answers, in channel-neutral terms. Adapters render these."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# WhatsApp's reply-button title (a list row may have 24, its opening button 20). Counted as
# Python's len(), emoji included. A keyboard of more than 3 buttons becomes a list there, so
# every label must make sense on its own, out of its row.
MAX_LABEL = 20
# The longest result card: WhatsApp's interactive body (a card carries buttons), counted as
# Python's len(), bidi isolates included. Longer, it would come as a text and then its buttons
# in a message of their own; a card lists fewer other policies and dependents instead.
MAX_CARD_TEXT = 1024


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    label: str  # at most MAX_LABEL characters
    data: str  # bot/conversation/buttons.py encodes it: at most 64 bytes (Telegram)


Keyboard = tuple[tuple[ButtonSpec, ...], ...]  # rows of buttons


def fit_label(text: str) -> str:
    """A label from data (an insurer's name): whole words up to MAX_LABEL, then «…»."""
    if len(text) <= MAX_LABEL:
        return text
    cut = text[: MAX_LABEL - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


@dataclass(frozen=True, slots=True)
class ReminderTemplate:
    """The structured values of an expiry reminder, for channels that send pre-approved
    templates outside a conversation (WhatsApp: docs/whatsapp-templates.md).

    `params` are the template body's {{1}}..{{5}} in order: masked number, insurer, expiry in
    Hijri, expiry in Gregorian, time left; `stop_data` is the stop button's data."""

    locale: str
    params: tuple[str, ...]
    stop_data: str


class Mark(StrEnum):
    """What a result says at a glance (its status line's emoji), as data."""

    VALID = "valid"  # ✅
    EXPIRING = "expiring"  # ⚠️ valid, but not for long
    PENDING = "pending"  # 🕒 not started yet
    INVALID = "invalid"  # ❌ expired, cancelled, or no policy at all
    SUSPENDED = "suspended"  # ⛔


@dataclass(frozen=True, slots=True)
class StatusLine:
    """Which line of a result's text is its status line, and what it says at a glance.

    The text carries the status in words on its own; the line starts with `emoji` and a
    space, which Telegram and WhatsApp show as they are. Where an emoji may show as an empty
    box (a browser without an emoji font) a channel removes that prefix and draws its own
    mark for `mark` (the web chat: a CSS/SVG mark)."""

    index: int  # of the line in Message.text
    mark: Mark
    emoji: str


@dataclass(frozen=True, slots=True)
class Message:
    """Plain text (no markup: nothing a person or an operator typed can inject formatting)."""

    text: str
    buttons: Keyboard = ()
    # Right-to-left language: a web page sets dir="rtl"; Telegram clients decide themselves.
    rtl: bool = True
    # An expiry reminder's values, for a template (WhatsApp); text channels ignore it.
    template: ReminderTemplate | None = None
    # A result's status line; text channels need nothing of it (see StatusLine).
    status: StatusLine | None = None


@dataclass(frozen=True, slots=True)
class Photo:
    png: bytes = field(repr=False)
    caption: str = ""
    buttons: Keyboard = ()
    rtl: bool = True
    alt: str = ""  # what the image is, for a screen reader (not a copy of the caption)


@dataclass(frozen=True, slots=True)
class Voice:
    """A spoken clip: OGG/Opus, what Telegram's voice messages and WhatsApp both take."""

    ogg: bytes = field(repr=False)
    caption: str = ""
    buttons: Keyboard = ()
    rtl: bool = True
    label: str = ""  # what the clip is, for a screen reader


Reply = Message | Photo | Voice
