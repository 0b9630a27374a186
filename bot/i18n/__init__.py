"""Arabic-first i18n: gettext catalogs, plural-aware units, Hijri/Gregorian dates, bidi."""

from bot.i18n.bidi import NBSP, for_rtl, isolate, ltr, plain_text, strip_isolates
from bot.i18n.catalog import (
    DEFAULT_LOCALE,
    LANGUAGE_NAMES,
    N_,
    SUPPORTED,
    Translator,
    browser_locale,
    pick_locale,
    translator_for,
)
from bot.i18n.dates import format_date, format_gregorian, format_hijri, parse_hijri_iso
from bot.i18n.units import days_text, hours_text, minutes_text, wait_text

__all__ = [
    "DEFAULT_LOCALE",
    "LANGUAGE_NAMES",
    "NBSP",
    "N_",
    "SUPPORTED",
    "Translator",
    "browser_locale",
    "days_text",
    "for_rtl",
    "format_date",
    "format_gregorian",
    "format_hijri",
    "hours_text",
    "isolate",
    "ltr",
    "minutes_text",
    "parse_hijri_iso",
    "pick_locale",
    "plain_text",
    "strip_isolates",
    "translator_for",
    "wait_text",
]
