"""An engine wired to in-memory services, driven like a person would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from bot.conversation.engine import Engine, EngineConfig
from bot.conversation.events import Action, ChatKind, Event
from bot.conversation.replies import Message, Reply
from bot.conversation.state import Conversation
from bot.domain.identity import id_hmac
from bot.domain.policy import BeneficiaryType, Insurer, Policy, PolicyStatus
from bot.domain.subscriptions import (
    SubscribeOutcome,
    SubscribeResult,
    Subscription,
    SubscriptionView,
)
from bot.i18n import plain_text
from bot.limits import Exceeded, LimitConfig, Limits, Window

KEY = b"engine-test-key"
CODE = "123456"
TODAY = date(2026, 11, 25)
NOON_RIYADH = 1795597200.0  # 2026-11-25 09:00 UTC = 12:00 in Riyadh
BUPA = Insurer(code="BUPA", name_ar="بوبا العربية", name_en="Bupa Arabia")


def policy(number: str, expiry_offset: int, **changes: object) -> Policy:
    values: dict[str, object] = {
        "id_masked": "x",
        "insurer": BUPA,
        "policy_number": number,
        "policy_class": "VIP",
        "beneficiary_type": BeneficiaryType.PRINCIPAL,
        "start_date": TODAY - timedelta(days=300),
        "expiry_date": TODAY + timedelta(days=expiry_offset),
        "status": PolicyStatus.ACTIVE,
        "network": "Gold",
        "deductible_rate": "20%",
    }
    values.update(changes)
    return Policy.model_validate(values)


class FakePolicies:
    """Policies by number; a principal's dependents are those on the same insurer and policy
    number (the store's rule, bot.store.policies, without its group-policy guard)."""

    def __init__(self, by_number: dict[str, list[Policy]]) -> None:
        self.by_hash = {id_hmac(KEY, n): p for n, p in by_number.items()}

    async def policies_for_hmac(self, id_hash: bytes) -> list[Policy]:
        return self.by_hash.get(id_hash, [])

    async def dependents_of(self, id_hash: bytes, policy: Policy) -> list[Policy]:
        return [
            p
            for owner, policies in self.by_hash.items()
            if owner != id_hash
            for p in policies
            if (p.insurer, p.policy_number) == (policy.insurer, policy.policy_number)
            and p.beneficiary_type is BeneficiaryType.DEPENDENT
        ]


class FakeCaptcha:
    async def render(self, code: str) -> bytes:
        return b"PNG:" + code.encode()

    async def render_audio(self, code: str, locale: str) -> bytes:
        return b"OggS:" + locale.encode() + b":" + code.encode()


@dataclass
class MemoryCounter:
    """The limit store's rules (check every window, then record), in memory."""

    events: list[tuple[str, float]] = field(default_factory=list)

    async def take(
        self, checks: Sequence[Window], records: Sequence[str], now: float
    ) -> Exceeded | None:
        for window in checks:
            times = sorted(
                t for k, t in self.events if k == window.key and t > now - window.seconds
            )
            if len(times) >= window.limit:
                freed_at = times[len(times) - window.limit] + window.seconds
                return Exceeded(window, freed_at - now)
        self.events += [(key, now) for key in records]
        return None

    async def prune(self, before: float) -> int:
        kept = [(k, t) for k, t in self.events if t >= before]
        removed, self.events = len(self.events) - len(kept), kept
        return removed


@dataclass
class FakeAudit:
    records: list[tuple[str, bytes, str]] = field(default_factory=list)

    async def record(self, chat_ref: str, id_hash: bytes, outcome: str) -> None:
        self.records.append((chat_ref, id_hash, outcome))


@dataclass
class FakeConsent:
    """Subscriptions in memory, with the store's rules (one per number, a limit per chat)."""

    limit: int = 5
    reminder_days: tuple[int, ...] = (30, 7, 1)
    subscriptions: list[Subscription] = field(default_factory=list)

    def active(self, chat_id: str) -> list[Subscription]:
        return [s for s in self.subscriptions if s.chat_id == chat_id and s.active]

    async def subscribe(
        self, chat_id: str, id_hmac: bytes, masked: str, locale: str
    ) -> SubscribeResult:
        mine = self.active(chat_id)
        same = next((s for s in mine if s.id_hmac == id_hmac), None)
        if same is not None:
            return SubscribeResult(SubscribeOutcome.ALREADY, same.id, len(mine), self.limit)
        if len(mine) >= self.limit:
            return SubscribeResult(SubscribeOutcome.LIMIT_REACHED, None, len(mine), self.limit)
        new = Subscription(
            len(self.subscriptions) + 1,
            "test",
            chat_id,
            masked,
            locale,
            datetime.now(UTC),
            True,
            id_hmac,
        )
        self.subscriptions.append(new)
        return SubscribeResult(SubscribeOutcome.SUBSCRIBED, new.id, len(mine) + 1, self.limit)

    async def list_for_chat(self, chat_id: str) -> list[SubscriptionView]:
        return [SubscriptionView(s, BUPA, TODAY + timedelta(days=10)) for s in self.active(chat_id)]

    async def stop_one(self, chat_id: str, subscription_id: int) -> str | None:
        for i, s in enumerate(self.subscriptions):
            if s.id == subscription_id and s.chat_id == chat_id and s.active:
                self.subscriptions[i] = replace(s, active=False)
                return s.id_masked
        return None

    async def stop_all(self, chat_id: str) -> int:
        mine = self.active(chat_id)
        for s in mine:
            await self.stop_one(chat_id, s.id)
        return len(mine)

    async def set_locale(self, chat_id: str, locale: str) -> None:
        self.subscriptions = [
            replace(s, locale=locale) if s.chat_id == chat_id and s.active else s
            for s in self.subscriptions
        ]


class Person:
    """One chat with the engine; every reply's text as plain text (`plain_text`)."""

    def __init__(
        self,
        policies: dict[str, list[Policy]] | None = None,
        *,
        language: str | None = "ar",
        test_code: str = CODE,
        consent: FakeConsent | None = None,
        limits: LimitConfig | None = None,
        counter: MemoryCounter | None = None,
        chat_ref: str = "chat-ref",
        network: str | None = None,
        **config: object,
    ) -> None:
        self.now = NOON_RIYADH
        self.audit = FakeAudit()
        self.counter = counter or MemoryCounter()
        self.engine = Engine(
            EngineConfig(captcha_test_code=test_code, **config),  # type: ignore[arg-type]
            KEY,
            FakePolicies(policies or {}),
            FakeCaptcha(),
            self.audit,
            Limits(self.counter, limits or LimitConfig(), KEY, "test"),
            clock=lambda: self.now,
            consent=consent,
        )
        self.consent = consent
        self.conv = Conversation()
        self.language = language
        self.chat_ref = chat_ref
        self.network = network

    async def send(self, action: Action, chat_kind: ChatKind = ChatKind.PRIVATE) -> list[Reply]:
        event = Event(action, chat_kind, self.language, self.network)
        replies = await self.engine.handle(self.conv, event, self.chat_ref, "chat-1")
        # The state must always survive a save and load (the adapter persists it as JSON).
        self.conv = Conversation.model_validate_json(self.conv.model_dump_json())
        return replies

    async def texts(self, action: Action, chat_kind: ChatKind = ChatKind.PRIVATE) -> list[str]:
        return [text_of(r) for r in await self.send(action, chat_kind)]


def text_of(reply: Reply) -> str:
    return plain_text(reply.text if isinstance(reply, Message) else reply.caption)


def buttons_of(reply: Reply) -> list[str]:
    return [b.data for row in reply.buttons for b in row]
