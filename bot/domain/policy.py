"""Insurers, policies and what a policy means for coverage on a given day. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class BeneficiaryType(StrEnum):
    PRINCIPAL = "principal"
    DEPENDENT = "dependent"


class PolicyStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"


class Insurer(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name_ar: str
    name_en: str

    def name(self, locale: str) -> str:
        return self.name_ar if locale == "ar" else self.name_en


class Policy(BaseModel):
    """One insurance record of one person, as loaded by an operator.

    Holds the masked identity number only: the raw number never leaves the import.
    """

    model_config = ConfigDict(frozen=True)

    id_masked: str
    insurer: Insurer
    policy_number: str
    policy_class: str
    beneficiary_type: BeneficiaryType
    start_date: date
    expiry_date: date
    status: PolicyStatus = PolicyStatus.ACTIVE
    member_name: str | None = None
    network: str | None = None
    deductible_rate: str | None = None
    max_limit: str | None = None
    beneficiary_number: str | None = None
    sponsor_name: str | None = None


class CoverageState(StrEnum):
    ACTIVE = "active"
    EXPIRING_SOON = "expiring_soon"
    NOT_STARTED = "not_started"  # a renewal loaded ahead of its start date
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"

    @property
    def covers_today(self) -> bool:
        return self in (CoverageState.ACTIVE, CoverageState.EXPIRING_SOON)


@dataclass(frozen=True, slots=True)
class Coverage:
    policy: Policy
    state: CoverageState
    # Days from today to the expiry date: 0 on the last covered day, negative once expired.
    days_remaining: int


def today_in(zone: tzinfo, now: datetime | None = None) -> date:
    """The calendar day in the operator's zone: 22:30 UTC is already tomorrow in Riyadh."""
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def coverage_of(policy: Policy, today: date, soon_days: int) -> Coverage:
    days = (policy.expiry_date - today).days
    if policy.status is PolicyStatus.CANCELLED:
        state = CoverageState.CANCELLED
    elif policy.status is PolicyStatus.SUSPENDED:
        state = CoverageState.SUSPENDED
    elif days < 0:
        state = CoverageState.EXPIRED
    elif policy.start_date > today:
        state = CoverageState.NOT_STARTED
    elif days <= soon_days:
        state = CoverageState.EXPIRING_SOON
    else:
        state = CoverageState.ACTIVE
    return Coverage(policy, state, days)


_RANK = {
    CoverageState.ACTIVE: 0,
    CoverageState.EXPIRING_SOON: 0,
    CoverageState.NOT_STARTED: 1,
    CoverageState.EXPIRED: 2,
    CoverageState.CANCELLED: 2,
    CoverageState.SUSPENDED: 2,
}


def coverage_for(policies: Iterable[Policy], today: date, soon_days: int) -> list[Coverage]:
    """Every policy of one person, most relevant first.

    Covering policies come first, then renewals not yet started, then the rest; within each
    group the latest expiry first. An empty list means no policy is registered.
    """
    coverages = [coverage_of(p, today, soon_days) for p in policies]
    coverages.sort(
        key=lambda c: (_RANK[c.state], -c.policy.expiry_date.toordinal(), c.policy.policy_number)
    )
    return coverages
