"""When an expiry reminder is due. Pure date arithmetic, no I/O.

A threshold is a number of days before expiry: `REMINDER_DAYS` (e.g. 30, 7, 1) plus 0, the day
the policy expires. On any day the *nearest* threshold already reached is the one due, so a pass
missed while the bot was down never sends a stale 30-day reminder once the 7-day one is due.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

EXPIRY_DAY = 0


def reminder_thresholds(reminder_days: Iterable[int]) -> tuple[int, ...]:
    """Days before expiry a reminder goes out, largest first; the expiry day is always one."""
    return tuple(sorted({*reminder_days, EXPIRY_DAY}, reverse=True))


def due_threshold(
    expiry: date, today: date, consented_on: date, thresholds: Iterable[int]
) -> int | None:
    """The threshold whose reminder is due today, or None.

    Nothing once the policy has expired (a reminder would come too late to act on). A threshold
    whose day came on or before the day of consent is not due: the person had just seen the
    result, and a "30 days left" message the morning after subscribing with 20 days left would
    be noise.
    """
    days_left = (expiry - today).days
    if days_left < 0:
        return None
    reached = [t for t in thresholds if t >= days_left]
    if not reached:
        return None
    nearest = min(reached)
    if expiry - timedelta(days=nearest) <= consented_on:
        return None
    return nearest


def upcoming_reminder_days(expiry: date, today: date, thresholds: Iterable[int]) -> list[date]:
    """Days on which reminders will come for this expiry, soonest first (for a confirmation)."""
    return sorted(d for t in thresholds if (d := expiry - timedelta(days=t)) > today)
