"""The Telegram `Sender`: `telegram.Bot.send_message`, its errors mapped to delivery outcomes."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import TracebackType

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram_render import inline_keyboard
from bot.config import Settings
from bot.conversation.replies import Message
from bot.reminders.sending import Blocked, Rejected, RetryLater, SenderUnavailable, Transient

CHANNEL = "telegram"
# BadRequest descriptions that mean the chat is gone for good, like a block.
_GONE = ("chat not found", "user not found", "peer_id_invalid", "bot was kicked")


def retry_after_seconds(error: RetryAfter) -> float:
    # PTB 22 returns an int (with a deprecation warning) or a timedelta (PTB_TIMEDELTA=true).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """Plain text (no parse mode: an admin's text cannot inject markup) with inline buttons.

    Takes one Bot (e.g. the Application's) or several: sends are spread over them in turn.
    Several Bots with small connection pools are cheaper than one with a big pool, because
    httpcore scans every connection of a pool on each request (see shared/PERFORMANCE.md):
    64 sends in flight cost ~7 ms CPU per message through one pool, ~1.4 ms through eight.
    """

    channel = CHANNEL

    def __init__(self, bots: Bot | Sequence[Bot], *, paid_broadcast: bool = False) -> None:
        self.bots = [bots] if isinstance(bots, Bot) else list(bots)
        if not self.bots:
            raise ValueError("at least one Bot is needed")
        self._turn = itertools.cycle(self.bots)
        self.paid_broadcast = paid_broadcast

    @property
    def bot(self) -> Bot:
        return self.bots[0]

    async def initialize(self) -> None:
        for bot in self.bots:
            await bot.initialize()

    async def shutdown(self) -> None:
        for bot in self.bots:
            await bot.shutdown()

    async def __aenter__(self) -> TelegramSender:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def send(self, chat_id: str, message: Message) -> None:
        try:
            await next(self._turn).send_message(
                int(chat_id),
                message.text,
                parse_mode=None,  # explicit: overrides any Defaults(parse_mode) of the bot
                reply_markup=inline_keyboard(message.buttons),
                allow_paid_broadcast=True if self.paid_broadcast else None,
            )
        except RetryAfter as exc:
            raise RetryLater(retry_after_seconds(exc), exc.message) from exc
        except Forbidden as exc:  # blocked by the user, user deactivated, kicked
            raise Blocked(exc.message) from exc
        except (InvalidToken, EndPointNotFound) as exc:
            raise SenderUnavailable(exc.message) from exc
        except ChatMigrated as exc:
            raise Rejected(f"chat moved to {exc.new_chat_id}") from exc
        except BadRequest as exc:  # before NetworkError: BadRequest subclasses it in PTB
            if any(gone in exc.message.lower() for gone in _GONE):
                raise Blocked(exc.message) from exc
            raise Rejected(exc.message) from exc
        except TimedOut as exc:
            # May have been delivered; retrying risks a duplicate, giving up risks a loss.
            raise Transient(f"timed out: {exc.message}") from exc
        except NetworkError as exc:  # connection errors and 5xx answers
            raise Transient(exc.message) from exc
        except TelegramError as exc:
            raise Transient(exc.message) from exc


CONNECTIONS_PER_BOT = 8


def bulk_sender(
    settings: Settings,
    in_flight: int,
    *,
    request: Callable[[int], BaseRequest] | None = None,
) -> TelegramSender:
    """A sender for bulk messages on Bots of its own, for `in_flight` concurrent sends.

    Kept apart from the Application's bot so a long broadcast never holds the connections
    replies to live conversations need, and so a 429 reaches the delivery runner (which pauses
    all bulk sending) instead of being retried inside a rate limiter. `request(pool_size)`
    makes each Bot's HTTP client (default: PTB's httpx client). `async with bulk_sender(...)
    as sender:`, or call `initialize()` / `shutdown()` (e.g. from post_init / post_shutdown).
    """
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    token = settings.telegram_bot_token.get_secret_value()
    count = max(1, math.ceil(in_flight / CONNECTIONS_PER_BOT))
    per_bot = math.ceil(in_flight / count)
    make = request or _httpx_request
    bots = [
        Bot(
            token,
            base_url=f"{settings.telegram_api_url}/bot",
            base_file_url=f"{settings.telegram_api_url}/file/bot",
            request=make(per_bot + 1),
        )
        for _ in range(count)
    ]
    return TelegramSender(bots, paid_broadcast=settings.broadcast_paid)


def _httpx_request(pool_size: int) -> BaseRequest:
    return HTTPXRequest(
        connection_pool_size=pool_size,
        read_timeout=10.0,
        write_timeout=10.0,
        connect_timeout=5.0,
        pool_timeout=5.0,
    )
