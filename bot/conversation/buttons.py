"""What the bot's buttons carry: one typed value per kind of tap, and its wire format.

Every channel gives the data back as it was sent (Telegram's callback_data, a WhatsApp reply or
list id, the web chat's `button` field), so one codec serves them all, sized for the strictest:
at most 64 bytes (Telegram). What comes back is untrusted: `decode` checks the shape, and the
handler still checks the meaning (a subscription id against the chat, a tag against the number).

The strings are the ones the bot has always sent, and must stay so: reminders already delivered
carry `stop_sub:<id>` and broadcasts `stop_all`, and a tap on them days later must still work.

    path:<citizen|resident>   ChoosePath      the first question
    switch:<path>             SwitchPath      check the number just sent on the other path
    lang:<ar|en>              SetLanguage
    about · new_lookup        About · NewLookup
    new_code · audio_code     NewCode · AudioCode
    remind:<tag>              RemindMe        tag: the first hex digits of the number's HMAC
    stop_sub:<id>             StopOne         one subscription
    stop_all                  StopAll
    bc:ch:<channel>           BroadcastChannel    the admin's broadcast dialogue: which channel
    bc:a:<audience>           BroadcastAudience   ... then who (Audience.parse)
    bc:insurers · bc:template · bc:send · bc:cancel
    bc:halt:<id>              BroadcastHalt   stop a running broadcast

This module imports nothing but the domain and i18n's locale list, so conversation, reminders
and channels can all use it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.identity import Path
from bot.i18n import SUPPORTED

MAX_DATA_BYTES = 64  # Telegram's callback_data; WhatsApp allows 200 (list) / 256 (reply)
_MAX_ID_DIGITS = 18  # ids are 64-bit integers in the store


@dataclass(frozen=True, slots=True)
class ChoosePath:
    path: Path


@dataclass(frozen=True, slots=True)
class SwitchPath:
    path: Path


@dataclass(frozen=True, slots=True)
class SetLanguage:
    locale: str


@dataclass(frozen=True, slots=True)
class About:
    """The «about health insurance» button."""


@dataclass(frozen=True, slots=True)
class NewLookup:
    """Start a new lookup."""


@dataclass(frozen=True, slots=True)
class NewCode:
    """A new image code for the number waiting."""


@dataclass(frozen=True, slots=True)
class AudioCode:
    """A new code for the number waiting, spoken."""


@dataclass(frozen=True, slots=True)
class RemindMe:
    tag: str


@dataclass(frozen=True, slots=True)
class StopOne:
    subscription_id: int


@dataclass(frozen=True, slots=True)
class StopAll:
    """Stop every reminder of the chat."""


@dataclass(frozen=True, slots=True)
class BroadcastChannel:
    channel: str  # telegram, whatsapp or all (checked by the dialogue)


@dataclass(frozen=True, slots=True)
class BroadcastAudience:
    audience: str  # as bot.domain.audience.Audience.parse reads it (checked there)


@dataclass(frozen=True, slots=True)
class BroadcastInsurers:
    """An admin's «by insurer» audience: list the insurers."""


@dataclass(frozen=True, slots=True)
class BroadcastTemplate:
    """An admin chose the built-in reminder as the broadcast's text."""


@dataclass(frozen=True, slots=True)
class BroadcastSend:
    """An admin confirmed the broadcast."""


@dataclass(frozen=True, slots=True)
class BroadcastCancel:
    """An admin cancelled the draft."""


@dataclass(frozen=True, slots=True)
class BroadcastHalt:
    broadcast_id: int


ButtonData = (
    ChoosePath
    | SwitchPath
    | SetLanguage
    | About
    | NewLookup
    | NewCode
    | AudioCode
    | RemindMe
    | StopOne
    | StopAll
    | BroadcastChannel
    | BroadcastAudience
    | BroadcastInsurers
    | BroadcastTemplate
    | BroadcastSend
    | BroadcastCancel
    | BroadcastHalt
)
BroadcastButton = (
    BroadcastChannel
    | BroadcastAudience
    | BroadcastInsurers
    | BroadcastTemplate
    | BroadcastSend
    | BroadcastCancel
    | BroadcastHalt
)

# Buttons that carry nothing but their kind, both ways.
_PLAIN: dict[str, ButtonData] = {
    "about": About(),
    "new_lookup": NewLookup(),
    "new_code": NewCode(),
    "audio_code": AudioCode(),
    "stop_all": StopAll(),
    "bc:insurers": BroadcastInsurers(),
    "bc:template": BroadcastTemplate(),
    "bc:send": BroadcastSend(),
    "bc:cancel": BroadcastCancel(),
}
_PLAIN_DATA: dict[ButtonData, str] = {value: data for data, value in _PLAIN.items()}


def encode(button: ButtonData) -> str:
    """The data to send with a button; ValueError if it would not fit every channel."""
    match button:
        case ChoosePath(path=path):
            data = f"path:{path.value}"
        case SwitchPath(path=path):
            data = f"switch:{path.value}"
        case SetLanguage(locale=locale):
            data = f"lang:{locale}"
        case RemindMe(tag=tag):
            data = f"remind:{tag}"
        case StopOne(subscription_id=number):
            data = f"stop_sub:{number}"
        case BroadcastChannel(channel=channel):
            data = f"bc:ch:{channel}"
        case BroadcastAudience(audience=audience):
            data = f"bc:a:{audience}"
        case BroadcastHalt(broadcast_id=number):
            data = f"bc:halt:{number}"
        case _:
            data = _PLAIN_DATA[button]
    if len(data.encode()) > MAX_DATA_BYTES:
        raise ValueError(f"button data over {MAX_DATA_BYTES} bytes: {data!r}")
    return data


def decode(data: str) -> ButtonData | None:
    """What a tap means; None for data the bot never sends (old versions, forgeries)."""
    plain = _PLAIN.get(data)
    if plain is not None:
        return plain
    kind, sep, rest = data.partition(":")
    if not sep:
        return None
    match kind:
        case "path" | "switch":
            path = _path(rest)
            if path is None:
                return None
            return ChoosePath(path) if kind == "path" else SwitchPath(path)
        case "lang":
            return SetLanguage(rest) if rest in SUPPORTED else None
        case "remind":
            return RemindMe(rest)  # compared with the latest result's tag by the handler
        case "stop_sub":
            number = _id(rest)
            return None if number is None else StopOne(number)
        case "bc":
            if rest.startswith("a:"):
                return BroadcastAudience(rest[2:])
            if rest.startswith("ch:"):
                return BroadcastChannel(rest[3:])
            if rest.startswith("halt:"):
                number = _id(rest[5:])
                return None if number is None else BroadcastHalt(number)
    return None


def _path(text: str) -> Path | None:
    try:
        return Path(text)
    except ValueError:
        return None


def _id(digits: str) -> int | None:
    if digits.isascii() and digits.isdecimal() and len(digits) <= _MAX_ID_DIGITS:
        return int(digits)
    return None
