"""Fixtures for reminders and broadcasts: a store with policies, a recording fake Sender."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from bot.config import Settings
from bot.conversation.replies import Message
from bot.domain.identity import id_hmac, luhn_valid, mask_id
from bot.i18n import plain_text
from bot.reminders.delivery import RetryPolicy
from bot.reminders.service import ReminderService
from bot.store.database import Database
from bot.store.setup import open_store
from tests.conftest import TEST_KEY, on_both_backends

# The reminder and broadcast tests run on SQLite and on PostgreSQL.
backend = on_both_backends()

TODAY = date(2026, 3, 1)
# Consent long before any threshold in these tests, unless a test says otherwise.
LONG_AGO = datetime(2025, 1, 1, 12, tzinfo=UTC)


def identity(index: int, prefix: str = "1") -> str:
    """A distinct valid identity number per index."""
    body = f"{prefix}{index:08d}"
    return next(body + str(c) for c in range(10) if luhn_valid(body + str(c)))


@pytest.fixture
def fast_settings(store_settings: dict[str, Any]) -> Settings:
    """High rate and paid broadcast so tests never wait on pacing."""
    return Settings(
        _env_file=None,
        **store_settings,
        id_hash_key=TEST_KEY,
        broadcast_paid=True,
        broadcast_rate=1000,
        reminder_days=[30, 7, 1],
        reminder_time=time(9, 0),
    )


@pytest.fixture
async def store(fast_settings: Settings) -> AsyncIterator[Database]:
    database = await open_store(fast_settings)
    yield database
    await database.close()


@dataclass
class FakeSender:
    """Records what would reach each chat; `fail` scripts errors per chat, in order."""

    channel: str = "telegram"
    sent: list[tuple[str, Message]] = field(default_factory=list)
    fail: dict[str, list[Exception]] = field(default_factory=dict)
    always: dict[str, Exception] = field(default_factory=dict)
    calls: int = 0
    before_send: Callable[[str], Awaitable[None]] | None = None

    async def send(self, chat_id: str, message: Message) -> None:
        self.calls += 1
        if self.before_send is not None:
            await self.before_send(chat_id)
        if chat_id in self.always:
            raise self.always[chat_id]
        queue = self.fail.get(chat_id)
        if queue:
            raise queue.pop(0)
        self.sent.append((chat_id, message))

    def to(self, chat_id: str | int) -> list[Message]:
        return [m for c, m in self.sent if c == str(chat_id)]

    def texts(self, chat_id: str | int) -> list[str]:
        return [plain_text(m.text) for m in self.to(chat_id)]


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def service(store: Database, fast_settings: Settings, sender: FakeSender) -> ReminderService:
    return ReminderService(
        store,
        fast_settings,
        {"telegram": sender},
        retry=RetryPolicy(attempts=3, backoff=0.001),
        # Short, but long enough that a block found by one message of a family is recorded
        # before the next one to the same chat is checked (in production: 1 s).
        per_chat=0.05,
        progress_every=0.02,
        today=lambda: TODAY,
    )


async def add_policy(
    db: Database,
    digits: str,
    *,
    expiry: date,
    insurer: str = "BUPA",
    number: str | None = None,
    status: str = "active",
    start: date | None = None,
) -> None:
    await db.write(
        "INSERT INTO policies (id_hmac, id_masked, insurer_code, policy_number, policy_class, "
        "beneficiary_type, start_date, expiry_date, status) VALUES (?, ?, ?, ?, 'A', "
        "'principal', ?, ?, ?) ON CONFLICT (id_hmac, policy_number) DO UPDATE SET "
        "expiry_date = excluded.expiry_date, status = excluded.status",
        (
            id_hmac(TEST_KEY.encode(), digits),
            mask_id(digits),
            insurer,
            number or f"P-{digits}",
            (start or expiry - timedelta(days=365)).isoformat(),
            expiry.isoformat(),
            status,
        ),
    )


async def subscribe(
    service: ReminderService,
    chat: int | str,
    digits: str,
    *,
    locale: str = "ar",
    at: datetime = LONG_AGO,
) -> int:
    result = await service.subscriptions.subscribe(
        "telegram", chat, id_hmac(TEST_KEY.encode(), digits), mask_id(digits), locale, now=at
    )
    assert result.subscription_id is not None
    return result.subscription_id
