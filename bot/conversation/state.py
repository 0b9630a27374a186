"""One chat's conversation, persisted as JSON so a restart loses nothing.

Holds no raw identity number and no expected code: the number waiting for its code is kept as
HMAC + masked form, the code as a keyed hash.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from bot.domain.identity import IdKind, Path


class Step(StrEnum):
    START = "start"  # choosing citizen or resident / visitor
    ENTER_ID = "enter_id"  # waiting for the identity number
    CAPTCHA = "captcha"  # waiting for the six-digit image code
    RESULT = "result"  # a result was shown


class PendingIdentity(BaseModel):
    id_hmac: str  # hex
    masked: str
    kind: IdKind


class Challenge(BaseModel):
    code_hmac: str  # keyed hash of the expected code (captcha.code_digest), never the digits
    issued_at: float
    wrong: int = 0  # wrong answers to this code
    audio: bool = False  # spoken rather than shown: a replacement is spoken too


class Conversation(BaseModel):
    step: Step = Step.START
    locale: str | None = None  # the person's explicit choice; None: follow the platform
    path: Path | None = None
    identity: PendingIdentity | None = None
    challenge: Challenge | None = None
    invalid_ids: int = 0  # invalid numbers in a row
    # Limits survive /start and /cancel, or restarting would be a way around them.
    failed_codes: int = 0  # wrong codes in a row, across images
    cooldown_until: float = 0.0
    lookups: list[float] = Field(default_factory=list)  # completed lookups, unix time
    last_seen: float = 0.0
    group_notice_sent: bool = False
    # The number of the latest result that offered reminders (survives /start: see consent.py).
    remind_target: PendingIdentity | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Conversation:
        if self.step is Step.ENTER_ID and self.path is None:
            raise ValueError("entering a number needs a path")
        if self.step is Step.CAPTCHA and (self.identity is None or self.challenge is None):
            raise ValueError("a code step needs a pending number and a challenge")
        if self.step is not Step.CAPTCHA and self.challenge is not None:
            raise ValueError("a challenge outside the code step")
        return self

    def restart(self) -> None:
        """Back to the first step, keeping the language and the limits."""
        self.step = Step.START
        self.path = None
        self.identity = None
        self.challenge = None
        self.invalid_ids = 0

    def recent_lookups(self, now: float) -> list[float]:
        self.lookups = [t for t in self.lookups if now - t < 3600]
        return self.lookups
