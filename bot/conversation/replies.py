"""What the bot answers, in channel-neutral terms. Adapters render these."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    label: str
    data: str  # at most 64 bytes (Telegram's callback_data limit)


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


Reply = Message | Photo
