from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.policy import (
    BeneficiaryType,
    CoverageState,
    Insurer,
    Policy,
    PolicyStatus,
    coverage_for,
    coverage_of,
    today_in,
)

TODAY = date(2026, 11, 25)
BUPA = Insurer(code="BUPA", name_ar="بوبا العربية", name_en="Bupa Arabia")


def policy(number: str = "P1", expiry: date = TODAY, **changes: object) -> Policy:
    values: dict[str, object] = {
        "id_masked": "1*******08",
        "insurer": BUPA,
        "policy_number": number,
        "policy_class": "A",
        "beneficiary_type": BeneficiaryType.PRINCIPAL,
        "start_date": date(2026, 1, 1),
        "expiry_date": expiry,
    }
    values.update(changes)
    return Policy.model_validate(values)


@pytest.mark.parametrize(
    ("offset", "state", "days"),
    [
        (-1, CoverageState.EXPIRED, -1),  # expired yesterday
        (0, CoverageState.EXPIRING_SOON, 0),  # last covered day
        (1, CoverageState.EXPIRING_SOON, 1),
        (30, CoverageState.EXPIRING_SOON, 30),
        (31, CoverageState.ACTIVE, 31),
    ],
)
def test_status_boundaries(offset: int, state: CoverageState, days: int) -> None:
    coverage = coverage_of(policy(expiry=TODAY + timedelta(days=offset)), TODAY, soon_days=30)
    assert coverage.state is state
    assert coverage.days_remaining == days


def test_cancelled_and_suspended_win_over_dates() -> None:
    future = TODAY + timedelta(days=100)
    cancelled = policy(expiry=future, status=PolicyStatus.CANCELLED)
    suspended = policy(expiry=future, status=PolicyStatus.SUSPENDED)
    assert coverage_of(cancelled, TODAY, 30).state is CoverageState.CANCELLED
    assert coverage_of(suspended, TODAY, 30).state is CoverageState.SUSPENDED
    assert not CoverageState.CANCELLED.covers_today


def test_renewal_not_started_yet() -> None:
    renewal = policy(start_date=TODAY + timedelta(days=3), expiry=TODAY + timedelta(days=368))
    assert coverage_of(renewal, TODAY, 30).state is CoverageState.NOT_STARTED


def test_riyadh_is_already_tomorrow_at_2230_utc() -> None:
    riyadh = ZoneInfo("Asia/Riyadh")
    assert today_in(riyadh, datetime(2026, 11, 25, 22, 30, tzinfo=UTC)) == date(2026, 11, 26)
    assert today_in(riyadh, datetime(2026, 11, 25, 20, 59, tzinfo=UTC)) == date(2026, 11, 25)
    # A policy ending on the 25th is expired for someone asking at 22:30 UTC that evening.
    day = today_in(riyadh, datetime(2026, 11, 25, 22, 30, tzinfo=UTC))
    assert coverage_of(policy(expiry=date(2026, 11, 25)), day, 30).state is CoverageState.EXPIRED


def test_most_relevant_first() -> None:
    old = policy("OLD", TODAY - timedelta(days=300))
    recent_expired = policy("RECENT", TODAY - timedelta(days=10))
    active = policy("NOW", TODAY + timedelta(days=200))
    cancelled = policy("CXL", TODAY + timedelta(days=100), status=PolicyStatus.CANCELLED)
    renewal = policy("NEXT", TODAY + timedelta(days=500), start_date=TODAY + timedelta(days=5))
    ordered = coverage_for([old, cancelled, recent_expired, renewal, active], TODAY, 30)
    assert [c.policy.policy_number for c in ordered] == ["NOW", "NEXT", "CXL", "RECENT", "OLD"]
    assert coverage_for([], TODAY, 30) == []
