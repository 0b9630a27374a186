"""An engine wired to in-memory services, driven like a person would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.conversation.engine import Engine, EngineConfig
from bot.conversation.events import Action, ChatKind, Event
from bot.conversation.replies import Message, Reply
from bot.conversation.state import Conversation
from bot.domain.identity import id_hmac
from bot.domain.policy import BeneficiaryType, Insurer, Policy, PolicyStatus
from bot.i18n import strip_isolates

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
    def __init__(self, by_number: dict[str, list[Policy]]) -> None:
        self.by_hash = {id_hmac(KEY, n): p for n, p in by_number.items()}

    async def policies_for_hmac(self, id_hash: bytes) -> list[Policy]:
        return self.by_hash.get(id_hash, [])


class FakeCaptcha:
    async def render(self, code: str) -> bytes:
        return b"PNG:" + code.encode()


@dataclass
class FakeAudit:
    records: list[tuple[str, bytes, str]] = field(default_factory=list)

    async def record(self, chat_ref: str, id_hash: bytes, outcome: str) -> None:
        self.records.append((chat_ref, id_hash, outcome))


class Person:
    """One chat with the engine; every reply's text with bidi isolates removed."""

    def __init__(
        self,
        policies: dict[str, list[Policy]] | None = None,
        *,
        language: str | None = "ar",
        test_code: str = CODE,
        **config: object,
    ) -> None:
        self.now = NOON_RIYADH
        self.audit = FakeAudit()
        self.engine = Engine(
            EngineConfig(captcha_test_code=test_code, **config),  # type: ignore[arg-type]
            KEY,
            FakePolicies(policies or {}),
            FakeCaptcha(),
            self.audit,
            clock=lambda: self.now,
        )
        self.conv = Conversation()
        self.language = language

    async def send(self, action: Action, chat_kind: ChatKind = ChatKind.PRIVATE) -> list[Reply]:
        replies = await self.engine.handle(
            self.conv, Event(action, chat_kind, self.language), "chat-ref"
        )
        # The state must always survive a save and load (the adapter persists it as JSON).
        self.conv = Conversation.model_validate_json(self.conv.model_dump_json())
        return replies

    async def texts(self, action: Action, chat_kind: ChatKind = ChatKind.PRIVATE) -> list[str]:
        return [text_of(r) for r in await self.send(action, chat_kind)]


def text_of(reply: Reply) -> str:
    return strip_isolates(reply.text if isinstance(reply, Message) else reply.caption)


def buttons_of(reply: Reply) -> list[str]:
    return [b.data for row in reply.buttons for b in row]
