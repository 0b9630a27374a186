"""One channel's conversations: one chat's events in order; load the chat's state, run the
engine, save the state; and the one "something went wrong" reply, for every channel."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import TypeVar

from bot.conversation import texts
from bot.conversation.engine import Engine
from bot.conversation.events import Event
from bot.conversation.replies import Reply
from bot.conversation.state import Conversation
from bot.conversation.states import ConversationStates
from bot.i18n import pick_locale, translator_for
from bot.store.conversations import AuditEntry, ConversationStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class ChatTurns:
    """One chat's events one at a time, in the order they came; other chats in parallel.

    Within this process; across instances the store's turn lock does the same
    (`ConversationStore.turn`), taken inside this one so that a process waits for it once
    per chat, not once per queued event."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    async def run(self, chat_id: str, work: Callable[[], Awaitable[T]]) -> T:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] = self._users.get(chat_id, 0) + 1
        try:
            async with lock:
                return await work()
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:  # nobody waiting: forget the lock
                del self._users[chat_id], self._locks[chat_id]


class TurnAudit:
    """The engine's audit log (`LookupAudit`): a turn's records are kept with the turn and
    written with its state, in one unit of work (`ConversationService._run`)."""

    def __init__(self) -> None:
        self._turn: ContextVar[list[AuditEntry] | None] = ContextVar("audit", default=None)

    async def record(self, chat_ref: str, id_hash: bytes, outcome: str) -> None:
        entries = self._turn.get()
        if entries is None:
            raise RuntimeError("a lookup was recorded outside a conversation turn")
        entries.append(AuditEntry(chat_ref, id_hash, outcome))

    def begin(self) -> Token[list[AuditEntry] | None]:
        return self._turn.set([])

    def end(self, token: Token[list[AuditEntry] | None]) -> list[AuditEntry]:
        entries = self._turn.get() or []
        self._turn.reset(token)
        return entries


class ConversationService:
    def __init__(
        self,
        channel: str,
        engine: Engine,
        store: ConversationStore,
        hash_key: bytes,
        audit: TurnAudit,
    ) -> None:
        """`audit` is the one the engine records to."""
        self.channel = channel
        self.engine = engine
        self.store = store
        self.states = ConversationStates(store)
        self.hash_key = hash_key
        self.turns = ChatTurns()
        self.audit = audit

    def chat_ref(self, chat_id: str) -> str:
        """Pseudonymous chat reference for the audit log (keyed, like identity numbers)."""
        message = f"{self.channel}:{chat_id}".encode()
        return hmac.new(self.hash_key, message, hashlib.sha256).hexdigest()

    async def handle(self, chat_id: str, event: Event) -> list[Reply]:
        """One event of a chat; events of one chat are applied one after the other."""

        async def turn() -> list[Reply]:
            async with self.store.turn(self.channel, chat_id):
                conv = await self.states.load(self.channel, chat_id)
                return await self._run(chat_id, conv, event)

        return await self.turns.run(chat_id, turn)

    async def resume(self, chat_id: str, event: Event) -> list[Reply] | None:
        """Like `handle`, for a chat that must already exist (a web session the server
        issued); None, with nothing stored, when it does not."""

        async def turn() -> list[Reply] | None:
            async with self.store.turn(self.channel, chat_id):
                conv = await self.states.load_existing(self.channel, chat_id)
                if conv is None:
                    return None
                return await self._run(chat_id, conv, event)

        return await self.turns.run(chat_id, turn)

    async def _run(self, chat_id: str, conv: Conversation, event: Event) -> list[Reply]:
        locale = conv.locale
        turn = self.audit.begin()
        try:
            try:
                replies = await self.engine.handle(conv, event, self.chat_ref(chat_id), chat_id)
            finally:
                records = self.audit.end(turn)
            await self.states.save(self.channel, chat_id, conv, records)
        except Exception:
            # The stored state stays as it was: the person can simply try again. The log
            # line carries no event (it holds what the person typed).
            log.exception("Error while handling a %s event", self.channel)
            default = self.engine.config.default_locale
            tr = translator_for(pick_locale(locale, event.platform_language, default))
            return [texts.something_went_wrong(tr)]
        return replies
