from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.domain.audience import Audience, AudienceKind, BadAudience, BadContent, Content
from bot.domain.schedule import due_threshold, reminder_thresholds, upcoming_reminder_days
from bot.reminders.texts import STOP_ALL, parse_stop, stop_data

THRESHOLDS = reminder_thresholds([30, 7, 1])
EXPIRY = date(2026, 6, 30)
CONSENT = date(2026, 1, 1)


def day(days_left: int) -> date:
    return EXPIRY - timedelta(days=days_left)


def test_thresholds_always_include_the_expiry_day_largest_first() -> None:
    assert THRESHOLDS == (30, 7, 1, 0)
    assert reminder_thresholds([7, 30, 7, 0]) == (30, 7, 0)


@pytest.mark.parametrize("days_left", [30, 7, 1, 0])
def test_due_on_each_threshold_day(days_left: int) -> None:
    assert due_threshold(EXPIRY, day(days_left), CONSENT, THRESHOLDS) == days_left


@pytest.mark.parametrize(
    ("days_left", "nearest"),
    [(29, 30), (8, 30), (6, 7), (2, 7)],
)
def test_between_thresholds_the_nearest_reached_one_is_due(days_left: int, nearest: int) -> None:
    # The pass is idempotent per threshold, so "due" on days after it only matters when the
    # threshold's day was missed: catch-up sends the nearest one, never a stale larger one.
    assert due_threshold(EXPIRY, day(days_left), CONSENT, THRESHOLDS) == nearest


def test_nothing_before_the_first_threshold_or_after_expiry() -> None:
    assert due_threshold(EXPIRY, day(31), CONSENT, THRESHOLDS) is None
    assert due_threshold(EXPIRY, day(-1), CONSENT, THRESHOLDS) is None


def test_thresholds_reached_before_consent_are_not_due() -> None:
    consent = day(20)
    assert due_threshold(EXPIRY, day(20), consent, THRESHOLDS) is None
    assert due_threshold(EXPIRY, day(19), consent, THRESHOLDS) is None
    assert due_threshold(EXPIRY, day(7), consent, THRESHOLDS) == 7
    # Subscribing on a threshold's own day: the person just saw the result.
    assert due_threshold(EXPIRY, day(7), day(7), THRESHOLDS) is None


def test_upcoming_reminder_days_for_a_confirmation() -> None:
    assert upcoming_reminder_days(EXPIRY, day(10), THRESHOLDS) == [day(7), day(1), day(0)]
    assert upcoming_reminder_days(EXPIRY, day(-1), THRESHOLDS) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", Audience.all()),
        ("expiring:30", Audience.expiring(30)),
        ("EXPIRING:7", Audience.expiring(7)),
        ("expired", Audience.expired()),
        ("insurer:bupa", Audience.by_insurer("BUPA")),
    ],
)
def test_audiences_parse_and_print_back(text: str, expected: Audience) -> None:
    audience = Audience.parse(text)
    assert audience == expected
    assert Audience.parse(str(audience)) == audience


@pytest.mark.parametrize("text", ["", "everyone", "expiring", "expiring:x", "insurer:", "all:1"])
def test_bad_audiences_say_what_is_allowed(text: str) -> None:
    with pytest.raises(BadAudience):
        Audience.parse(text)


def test_content_is_the_template_or_a_non_empty_text_within_telegrams_limit() -> None:
    assert Content.expiry_template().per_subscription
    assert not Content.custom(" hello ").per_subscription
    assert Content.custom(" hello ").text == "hello"
    with pytest.raises(BadContent):
        Content.custom("   ")
    with pytest.raises(BadContent):
        Content.custom("x" * 4097)
    assert Audience.all().kind is AudienceKind.ALL


def test_stop_button_data_round_trips_and_rejects_junk() -> None:
    assert parse_stop(stop_data(42)) == 42
    assert parse_stop(STOP_ALL) == "all"
    for junk in ("stop_sub:", "stop_sub:-1", "stop_sub:1e3", "stop_sub:٣", "stop", "x"):
        assert parse_stop(junk) is None
    assert len(stop_data(10**15).encode()) <= 64  # Telegram's callback_data limit
