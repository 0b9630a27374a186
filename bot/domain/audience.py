"""Who a broadcast goes to, and what it says. Pure values, parsed from the CLI and stored as text.

Audiences are always active subscribers: a broadcast never reaches someone who did not consent
or who stopped. "Expiring" and "expired" look at the policy reminders follow (the person's
active policy with the latest expiry), so someone who already renewed is not told to renew.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_TEXT_UTF16 = 4096  # Telegram's limit for one text message


class AudienceKind(StrEnum):
    ALL = "all"
    EXPIRING = "expiring"  # expiry within N days from today (today included)
    EXPIRED = "expired"
    INSURER = "insurer"


class BadAudience(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Audience:
    kind: AudienceKind
    days: int = 0  # EXPIRING only
    insurer: str = ""  # INSURER only: the insurer code, upper case

    @classmethod
    def all(cls) -> Audience:
        return cls(AudienceKind.ALL)

    @classmethod
    def expiring(cls, days: int) -> Audience:
        if not 0 <= days <= 3660:
            raise BadAudience("expiring:N needs N between 0 and 3660 days")
        return cls(AudienceKind.EXPIRING, days=days)

    @classmethod
    def expired(cls) -> Audience:
        return cls(AudienceKind.EXPIRED)

    @classmethod
    def by_insurer(cls, code: str) -> Audience:
        code = code.strip().upper()
        if not code:
            raise BadAudience("insurer:CODE needs an insurer code, e.g. insurer:BUPA")
        return cls(AudienceKind.INSURER, insurer=code)

    @classmethod
    def parse(cls, text: str) -> Audience:
        """'all', 'expiring:30', 'expired' or 'insurer:BUPA' (as the CLI and the store write)."""
        kind, _, arg = text.strip().partition(":")
        kind = kind.lower()
        if kind == AudienceKind.ALL and not arg:
            return cls.all()
        if kind == AudienceKind.EXPIRED and not arg:
            return cls.expired()
        if kind == AudienceKind.EXPIRING:
            if not (arg.isascii() and arg.isdecimal()):
                raise BadAudience("expiring:N needs a number of days, e.g. expiring:30")
            return cls.expiring(int(arg))
        if kind == AudienceKind.INSURER:
            return cls.by_insurer(arg)
        raise BadAudience(
            f"unknown audience {text!r}: use all, expiring:N, expired or insurer:CODE"
        )

    def __str__(self) -> str:
        if self.kind is AudienceKind.EXPIRING:
            return f"expiring:{self.days}"
        if self.kind is AudienceKind.INSURER:
            return f"insurer:{self.insurer}"
        return self.kind.value


class ChannelChoice(StrEnum):
    """Where a broadcast goes (`--channel`, the dialogue's first question): one channel's
    subscribers, or every channel's that can be reached."""

    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    ALL = "all"

    def pick(self, available: tuple[str, ...]) -> tuple[str, ...]:
        """The channels of `available` this choice takes."""
        if self is ChannelChoice.ALL:
            return available
        return tuple(channel for channel in available if channel == self.value)


class Template(StrEnum):
    EXPIRY = "expiry"  # the personalised expiry reminder, one per subscription


class BadContent(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Content:
    """Either the built-in template or a text typed by an admin (sent as plain text)."""

    template: Template | None = None
    text: str | None = None

    @classmethod
    def expiry_template(cls) -> Content:
        return cls(template=Template.EXPIRY)

    @classmethod
    def custom(cls, text: str) -> Content:
        text = text.strip()
        if not text:
            raise BadContent("the message is empty")
        length = len(text.encode("utf-16-le")) // 2
        if length > MAX_TEXT_UTF16:
            raise BadContent(f"the message is {length} characters; Telegram allows 4096")
        return cls(text=text)

    @property
    def per_subscription(self) -> bool:
        """The template speaks about one person's policy, so a family gets one per number;
        a typed text goes once to each chat."""
        return self.template is not None
