"""Each chat's `Conversation`, typed and validated over the store's raw JSON per (channel, chat).

The store keeps the state as text and knows nothing of its shape (it sits below the
conversation: see ARCHITECTURE.md, Layering); reading it back into a `Conversation` is done here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from bot.conversation.state import Conversation
from bot.store.conversations import AuditEntry, ConversationStore

log = logging.getLogger(__name__)


class ConversationStates:
    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def load(self, channel: str, chat_id: str) -> Conversation:
        return await self.load_existing(channel, chat_id) or Conversation()

    async def load_existing(self, channel: str, chat_id: str) -> Conversation | None:
        """The chat's state, or None when nothing is stored for it."""
        state = await self.store.load_json(channel, chat_id)
        if state is None:
            return None
        try:
            return Conversation.model_validate_json(state)
        except ValidationError:
            # A state from an incompatible older version: start over rather than fail.
            log.warning("unreadable conversation state for a %s chat; starting over", channel)
            return Conversation()

    async def save(
        self, channel: str, chat_id: str, conv: Conversation, audit: Sequence[AuditEntry] = ()
    ) -> None:
        """The state, and the audit records of the turn that made it, in one unit of work."""
        await self.store.save_json(channel, chat_id, conv.model_dump_json(), audit)
