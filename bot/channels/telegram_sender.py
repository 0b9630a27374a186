"""The Telegram `Sender`: `telegram.Bot.send_message`, its errors mapped to delivery outcomes."""

from __future__ import annotations

import itertools
import math
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
from telegram.request import BaseRequest

from bot.channels.telegram_http import AiohttpRequest
from bot.channels.telegram_render import inline_keyboard
from bot.config import Settings
from bot.conversation.replies import Message
from bot.reminders.sending import Blocked, Rejected, RetryLater, SenderUnavailable, Transient

CHANNEL = "telegram"
# BadRequest descriptions that mean the chat is gone for good, like a block.
_GONE = ("chat not found", "user not found", "peer_id_invalid", "bot was kicked")


def retry_after_seconds(error: RetryAfter) -> float:
    # A timedelta: bot.channels opts in to PTB_TIMEDELTA; an int only if a deployment set it off.
    value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """Plain text (no parse mode: an admin's text cannot inject markup) with inline buttons.

    Takes one Bot (e.g. the Application's) or several: sends are spread over them in turn.
    Several Bots only pay off with PTB's httpx client, whose pool (httpcore) scans every
    connection on each request; `bulk_sender` uses one Bot on aiohttp.
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


def bulk_sender(
    settings: Settings,
    in_flight: int,
    *,
    bots: int = 1,
    request: Callable[[int], BaseRequest] | None = None,
) -> TelegramSender:
    """A sender for bulk messages on a Bot of its own, for `in_flight` concurrent sends.

    Kept apart from the Application's bot so a long broadcast never holds the connections
    replies to live conversations need, and so a 429 reaches the delivery runner (which pauses
    all bulk sending) instead of being retried inside a rate limiter. `request(pool_size)`
    makes each Bot's HTTP client (default: aiohttp, the one HTTP client of the whole bot, see
    bot/channels/telegram_http.py). `async with bulk_sender(...) as sender:`, or call
    `initialize()` / `shutdown()` (e.g. from post_init / post_shutdown).

    One Bot: aiohttp's connector hands out a pooled connection in O(1), so unlike httpcore's
    pool (which once needed eight Bots of eight connections each) one pool of `in_flight`
    connections costs no more CPU per message than several small ones (bench/broadcast.py
    `--bots`). `bots` splits the connections over that many Bots, sent to in turn.
    """
    if settings.telegram.bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    if bots < 1:
        raise ValueError("at least one Bot is needed")
    token = settings.telegram.bot_token.get_secret_value()
    per_bot = math.ceil(max(1, in_flight) / bots)
    make = request or _aiohttp_request
    senders = [
        Bot(
            token,
            base_url=f"{settings.telegram.api_url}/bot",
            base_file_url=f"{settings.telegram.api_url}/file/bot",
            request=make(per_bot + 1),
        )
        for _ in range(bots)
    ]
    return TelegramSender(senders, paid_broadcast=settings.broadcast.paid)


def _aiohttp_request(pool_size: int) -> BaseRequest:
    # The timeouts the httpx client had (aiohttp has no write timeout: a stalled upload ends
    # at the read timeout, and a sendMessage body is small).
    return AiohttpRequest(
        pool_size,
        read_timeout=10.0,
        connect_timeout=5.0,
        pool_timeout=5.0,
    )
