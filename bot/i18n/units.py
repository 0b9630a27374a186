"""Counted durations ("3 أيام", "11 يومًا"). Arabic has six plural forms: always ngettext."""

from __future__ import annotations

from bot.i18n.catalog import Translator


def days_text(n: int, tr: Translator) -> str:
    return tr.ngettext("{n} day", "{n} days", n)


def hours_text(n: int, tr: Translator) -> str:
    return tr.ngettext("{n} hour", "{n} hours", n)


def minutes_text(n: int, tr: Translator) -> str:
    return tr.ngettext("{n} minute", "{n} minutes", n)
