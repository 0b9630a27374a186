"""The daily clean-up: idle conversations go (each cookie-less web request adds one), a chosen
language on a phone-number channel stays, old limit events go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine

from bot.config import Settings
from bot.conversation.state import Conversation
from bot.conversation.states import ConversationStates
from bot.limits import LimitKind, Window
from bot.runtime import open_runtime
from bot.store.conversations import ConversationStore
from bot.store.database import Database
from bot.store.limits import LimitStore
from bot.store.setup import open_database

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def age(db: Database, channel: str, chat_id: str, days: float) -> None:
    at = (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await db.write(
        "UPDATE conversations SET updated_at = ? WHERE channel = ? AND chat_id = ?",
        (at, channel, chat_id),
    )


async def test_idle_conversations_are_pruned_but_a_chosen_language_stays(
    database_location: Path | str,
) -> None:
    async with await open_database(database_location) as db:
        store = ConversationStore(db)
        states = ConversationStates(store)
        english = Conversation(locale="en")
        cases = {
            ("web", "old"): (Conversation(), 2, False),
            ("web", "old-english"): (english, 2, False),
            ("web", "fresh"): (Conversation(), 0.5, True),
            ("telegram", "old"): (Conversation(), 3, False),
            ("telegram", "old-english"): (english, 30, True),
            ("telegram", "fresh"): (Conversation(), 0.1, True),
        }
        for (channel, chat_id), (conv, days, _) in cases.items():
            await states.save(channel, chat_id, conv)
            await age(db, channel, chat_id, days)
        assert await store.prune_idle(timedelta(days=1), now=NOW) == 3
        for (channel, chat_id), (_, _, kept) in cases.items():
            assert await store.exists(channel, chat_id) is kept, (channel, chat_id)
        assert (await states.load("telegram", "old-english")).locale == "en"


async def test_the_runtime_prunes_limit_events_older_than_a_day(
    store_settings: dict[str, Any], frozen_clock: time_machine.Traveller
) -> None:
    settings = Settings(_env_file=None, id_hash_key="k", captcha_workers=0, **store_settings)
    runtime = await open_runtime(settings)
    try:
        store = LimitStore(runtime.db)
        now = datetime.now(UTC).timestamp()
        await store.take([], ["old"], now - 25 * 3600)
        await store.take([], ["recent"], now - 23 * 3600)
        await runtime.prune()
        day = Window("old", 1, 48 * 3600, LimitKind.CHALLENGES)
        assert await store.take([day], [], now) is None  # the old event is gone
        recent = Window("recent", 1, 48 * 3600, LimitKind.CHALLENGES)
        assert await store.take([recent], [], now) is not None
    finally:
        await runtime.close()
