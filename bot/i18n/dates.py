"""Dates as Saudis read them: Umm al-Qura Hijri first, Gregorian in brackets.

Each part (Hijri, Gregorian) is held together by no-break spaces, so a narrow screen breaks a
date only before its bracket, never inside "19 يونيو 2027".

Digits: Western (0-9) in both parts and in both languages. Babel never emits Arabic-Indic
digits for ar_SA, Saudi government sites show dates with Western digits, and mixing scripts
inside one date would look broken. Pass a date in Asia/Riyadh, not a UTC datetime.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from babel.dates import format_date as _babel_format_date
from hijridate import Gregorian, Hijri

from bot.i18n.bidi import NBSP

# en_GB's long format is "25 November 2026": day-month-year like the Hijri part
# (plain "en" would give "November 25, 2026").
_BABEL_LOCALE = {"ar": "ar_SA", "en": "en_GB"}


def _lang(locale: str) -> Literal["ar", "en"]:
    return "en" if locale.lower().startswith("en") else "ar"


def format_hijri(d: date, locale: str) -> str:
    """'15 جمادى الآخرة 1448 هـ' / '15 Jumada al-Akhirah 1448 AH' (no-break spaces).

    Raises OverflowError outside 1343-1500 AH (1924-08-01 .. 2077-11-16).
    """
    lang = _lang(locale)
    hijri = Gregorian(d.year, d.month, d.day).to_hijri()
    parts = (str(hijri.day), hijri.month_name(lang), str(hijri.year), hijri.notation(lang))
    return NBSP.join(parts).replace(" ", NBSP)  # "Jumada al-Akhirah" too


def format_gregorian(d: date, locale: str) -> str:
    """'25 نوفمبر 2026' / '25 November 2026' (no-break spaces)."""
    text = _babel_format_date(d, format="long", locale=_BABEL_LOCALE[_lang(locale)])
    return text.replace(" ", NBSP)


def format_date(d: date, locale: str) -> str:
    """'15 جمادى الآخرة 1448 هـ (25 نوفمبر 2026)'; Gregorian only outside the Hijri table.

    The one breakable space is the one before the bracket."""
    gregorian = format_gregorian(d, locale)
    try:
        hijri = format_hijri(d, locale)
    except OverflowError:
        return gregorian
    return f"{hijri} ({gregorian})"


def parse_hijri_iso(year: int, month: int, day: int) -> date:
    """Umm al-Qura date -> Gregorian date; ValueError if it does not exist or is out of
    range (1343-1500 AH), e.g. month 13 or day 30 of a 29-day month."""
    try:
        gregorian = Hijri(year, month, day).to_gregorian()
    except OverflowError as exc:  # hijridate signals the table's range this way
        raise ValueError(str(exc)) from exc
    return date(gregorian.year, gregorian.month, gregorian.day)
