"""Per-chat ordering with cross-chat concurrency for python-telegram-bot.

The conversation service must see one chat's updates one at a time and in the order Telegram
sent them (a code typed right after a number must not overtake it), while different chats
should not wait for each other: against real Telegram every Bot API call takes 50-200 ms, so a
bot that handles one update at a time tops out at a handful of updates per second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# PTB takes its own semaphore *before* handing us the update. Waiting for a chat's turn must not
# hold one of the working slots (32 updates of one busy chat would stall every other chat), so
# PTB's bound is only a ceiling on updates held in memory and the working bound is ours.
_MAX_HELD_UPDATES = 10_000


def chat_key(update: object) -> Hashable | None:
    """The chat an update belongs to, or None (processed without ordering)."""
    if isinstance(update, Update):
        chat = update.effective_chat
        return chat.id if chat is not None else None
    return None


@dataclass
class _ChatTurn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # updates holding or waiting for the lock


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Runs up to ``max_concurrent`` updates at once, never two of the same chat.

    Ordering: PTB creates one task per update in arrival order, and every task asks for its
    chat's lock before its first suspension point; ``asyncio.Lock`` grants waiters first come,
    first served. A chat's lock is dropped as soon as no update of that chat holds or awaits it,
    so idle chats cost no memory.
    """

    __slots__ = ("_chats", "_key", "_slots", "concurrency")

    def __init__(
        self,
        max_concurrent: int = 32,
        key: Callable[[object], Hashable | None] = chat_key,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        super().__init__(max_concurrent_updates=max(_MAX_HELD_UPDATES, max_concurrent))
        self.concurrency = max_concurrent
        self._key = key
        self._slots = asyncio.Semaphore(max_concurrent)
        self._chats: dict[Hashable, _ChatTurn] = {}

    @property
    def active_chats(self) -> int:
        """Chats with an update running or waiting (for tests and diagnostics)."""
        return len(self._chats)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        started = False
        try:
            key = self._key(update)
            if key is None:
                async with self._slots:
                    started = True
                    await coroutine
                return
            turn = self._chats.get(key)
            if turn is None:
                turn = self._chats[key] = _ChatTurn()
            turn.users += 1
            try:
                async with turn.lock, self._slots:
                    started = True
                    await coroutine
            finally:
                turn.users -= 1
                if turn.users == 0:
                    del self._chats[key]
        finally:
            if not started:
                # Cancelled while waiting (shutdown): close it so it is not reported as
                # "never awaited".
                close = getattr(coroutine, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        close()

    async def initialize(self) -> None:
        """Nothing to allocate: locks are created per chat on demand."""

    async def shutdown(self) -> None:
        """Nothing to free: PTB waits for running updates before calling this."""
