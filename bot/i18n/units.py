"""Counted durations ("3 أيام", "11 يومًا"). Arabic has six plural forms: always ngettext.

Each is one unbreakable phrase (no-break spaces): "75" never ends a line with "يومًا" on the
next, nor "ساعة" with "واحدة"."""

from __future__ import annotations

import math

from bot.i18n.bidi import NBSP
from bot.i18n.catalog import Translator


def _together(text: str) -> str:
    return text.replace(" ", NBSP)


def days_text(n: int, tr: Translator) -> str:
    return _together(tr.ngettext("{n} day", "{n} days", n))


def hours_text(n: int, tr: Translator) -> str:
    return _together(tr.ngettext("{n} hour", "{n} hours", n))


def minutes_text(n: int, tr: Translator) -> str:
    return _together(tr.ngettext("{n} minute", "{n} minutes", n))


def wait_text(seconds: float, tr: Translator) -> str:
    """How long until a person can try again: whole minutes, rounded up, under an hour; whole
    hours, rounded up, from sixty minutes (a day's limit is not "1,380 minutes")."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 60:
        return minutes_text(minutes, tr)
    return hours_text(math.ceil(minutes / 60), tr)
