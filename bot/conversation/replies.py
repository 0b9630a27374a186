"""What the bot answers, in channel-neutral terms. Adapters render these."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    label: str
    data: str  # bot/conversation/buttons.py encodes it: at most 64 bytes (Telegram)


Keyboard = tuple[tuple[ButtonSpec, ...], ...]  # rows of buttons


@dataclass(frozen=True, slots=True)
class Message:
    """Plain text (no markup: nothing a person or an operator typed can inject formatting)."""

    text: str
    buttons: Keyboard = ()
    # Right-to-left language: a web page sets dir="rtl"; Telegram clients decide themselves.
    rtl: bool = True


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
