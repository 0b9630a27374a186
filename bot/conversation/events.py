"""What a person did, in channel-neutral terms. Adapters turn platform updates into these."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"  # groups, supergroups and channels: never a place for coverage data


class OtherKind(StrEnum):
    """Messages the bot cannot use at any step."""

    STICKER = "sticker"
    PHOTO = "photo"
    VOICE = "voice"
    AUDIO = "audio"
    VIDEO = "video"
    LOCATION = "location"
    CONTACT = "contact"
    DOCUMENT = "document"
    EDITED = "edited"  # an edited earlier message: acting on it would reorder the dialogue
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Command:
    """`/name args`; the name lower-cased, without the slash or a @botname suffix."""

    name: str
    args: str = ""


@dataclass(frozen=True, slots=True)
class Button:
    """A tap on one of the bot's buttons; `data` is whatever the button carried (untrusted)."""

    data: str


@dataclass(frozen=True, slots=True)
class Other:
    kind: OtherKind


Action = Text | Command | Button | Other


@dataclass(frozen=True, slots=True)
class Event:
    action: Action
    chat_kind: ChatKind = ChatKind.PRIVATE
    # The platform's idea of the person's language (Telegram's language_code), if any.
    platform_language: str | None = None
    # The client's network (bot.limits.network_of) where a chat costs nothing, as on the web
    # chat; None where a chat costs a phone number (Telegram, WhatsApp).
    network: str | None = None
