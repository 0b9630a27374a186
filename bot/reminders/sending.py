"""How bulk messages leave the bot: a channel-neutral `Sender` and the errors it may raise.

The delivery runner only knows this protocol, so it is tested without Telegram; the Telegram
implementation is in `bot.channels.telegram_sender`.
"""

from __future__ import annotations

from typing import Protocol

from bot.conversation.replies import Message
from bot.store.subscriptions import OUTSIDE_WINDOW


class SendError(Exception):
    """Base of the errors a Sender raises; `reason` is recorded with the recipient."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Blocked(SendError):
    """The person blocked the bot or the chat is gone: never try this chat again."""


class RetryLater(SendError):
    """The platform asked us to slow down: pause *all* sending for `seconds`."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry after {seconds:g} s")
        self.seconds = seconds


class RetryRecipientLater(SendError):
    """Too many messages to this one person lately (WhatsApp's pair rate): retry them no
    sooner than `seconds` after this attempt; everyone else goes on meanwhile."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry this recipient after {seconds:g} s")
        self.seconds = seconds


class Skipped(SendError):
    """The platform declined this one message for a reason that is no failure of ours (a
    per-person limit, an opt-out of marketing): recorded as skipped, with the reason."""


class OutsideWindow(Skipped):
    """The person has not written within the channel's window for free-form messages
    (WhatsApp: 24 hours): skipped, and counted apart in the report."""

    def __init__(self) -> None:
        super().__init__(OUTSIDE_WINDOW)


class Transient(SendError):
    """A time-out or network/server error: worth retrying after a back-off."""


class Rejected(SendError):
    """The platform refused this message for good (e.g. a bad request): do not retry."""


class SenderUnavailable(SendError):
    """Nothing can be sent at all (e.g. a revoked token): stop the run, keep recipients pending."""


class Sender(Protocol):
    """Sends one plain-text message with optional buttons to one chat of one channel."""

    @property
    def channel(self) -> str: ...

    async def send(self, chat_id: str, message: Message) -> str | None:
        """Returns the platform's id of the message when its receipts are worth keeping
        (WhatsApp's status webhooks find the delivery record by it), else None."""
        ...
