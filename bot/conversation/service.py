"""One channel's conversations: load the chat's state, run the engine, save the state."""

from __future__ import annotations

import hashlib
import hmac

from bot.conversation.engine import Engine
from bot.conversation.events import Event
from bot.conversation.replies import Reply
from bot.conversation.state import Conversation
from bot.conversation.states import ConversationStates
from bot.store.conversations import ConversationStore


class ConversationService:
    def __init__(
        self, channel: str, engine: Engine, store: ConversationStore, hash_key: bytes
    ) -> None:
        self.channel = channel
        self.engine = engine
        self.store = store
        self.states = ConversationStates(store)
        self.hash_key = hash_key

    def chat_ref(self, chat_id: str) -> str:
        """Pseudonymous chat reference for the audit log (keyed, like identity numbers)."""
        message = f"{self.channel}:{chat_id}".encode()
        return hmac.new(self.hash_key, message, hashlib.sha256).hexdigest()

    async def handle(self, chat_id: str, event: Event) -> list[Reply]:
        """The caller must serialise calls per chat (one update of a chat at a time)."""
        conv = await self.states.load(self.channel, chat_id)
        return await self._run(chat_id, conv, event)

    async def resume(self, chat_id: str, event: Event) -> list[Reply] | None:
        """Like `handle`, for a chat that must already exist (a web session the server
        issued); None, with nothing stored, when it does not."""
        conv = await self.states.load_existing(self.channel, chat_id)
        if conv is None:
            return None
        return await self._run(chat_id, conv, event)

    async def _run(self, chat_id: str, conv: Conversation, event: Event) -> list[Reply]:
        replies = await self.engine.handle(conv, event, self.chat_ref(chat_id), chat_id)
        await self.states.save(self.channel, chat_id, conv)
        return replies
