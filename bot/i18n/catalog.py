"""Message catalogs: load ``bot/locales/<lang>/LC_MESSAGES/bot.po``, translate, format.

The .po files are compiled in memory on first use (read_po -> write_mo -> GNUTranslations),
so no ``.mo`` build step is needed after install and the repo holds no binary files.
"""

from __future__ import annotations

import gettext
import logging
import re
from functools import cache, lru_cache
from importlib.resources.abc import Traversable
from io import BytesIO
from numbers import Number

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.i18n.bidi import NBSP, for_rtl
from bot.package_data import package_file

log = logging.getLogger(__name__)

SUPPORTED = ("ar", "en")
DEFAULT_LOCALE = "ar"
DOMAIN = "bot"
# Package data found through importlib.resources, so an installed wheel works from any directory.
LOCALES_DIR = package_file("locales")

# Language names as shown in a language picker: each in its own language, never translated.
LANGUAGE_NAMES = {"ar": "العربية", "en": "English"}


# A count stays on one line with the word it counts ("75 يومًا", "10 digits", "{n} tries"):
# the space after a number, or after {n}, and before a letter is a no-break space.
_COUNT_SPACE = re.compile(r"(\d|\{n\}) (?=[^\W\d_])")


@lru_cache(maxsize=2048)
def keep_counts(template: str) -> str:
    """The message with each count joined to the word after it by a no-break space."""
    return _COUNT_SPACE.sub(r"\1" + NBSP, template)


def N_(msgid: str) -> str:  # the conventional gettext name
    """Mark a module-level id for extraction; translate it later with ``tr._(msgid)``."""
    return msgid


def _match(code: str | None) -> str | None:
    """'ar', 'ar-SA', 'AR_sa' -> 'ar'; 'en-US' -> 'en'; anything else -> None."""
    code = (code or "").strip().lower()
    return next((lang for lang in SUPPORTED if code.startswith(lang)), None)


def pick_locale(stored: str | None, platform_code: str | None, default: str) -> str:
    """The person's explicit choice, else their app's language, else ``default`` (else ar)."""
    return _match(stored) or _match(platform_code) or _match(default) or DEFAULT_LOCALE


def browser_locale(accept_language: str | None) -> str | None:
    """The language we speak that a browser's Accept-Language prefers most, if any:
    'fr-FR,en;q=0.8' -> 'en'; 'en;q=0.5, ar-SA' -> 'ar'; 'fr' -> None (the default applies)."""
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate((accept_language or "").split(",")):
        tag, _, params = entry.partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        locale = _match(tag)
        if locale is not None and weight > 0:
            ranked.append((-weight, position, locale))
    return min(ranked)[2] if ranked else None


def po_path(locale: str) -> Traversable:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def usable(message_string: str | tuple[str, ...] | list[str] | None) -> bool:
    """A translation counts only when every form is filled in."""
    if not message_string:
        return False
    return isinstance(message_string, str) or all(message_string)


def _compile(catalog: Catalog) -> gettext.GNUTranslations:
    # Drop fuzzy entries and half-translated plurals (write_mo would keep those, and
    # gettext would then return an empty or English form); they fall back to the msgid.
    for message in list(catalog)[1:]:
        if message.fuzzy or not usable(message.string):
            catalog.delete(message.id, message.context)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def _translations(locale: str) -> gettext.GNUTranslations:
    path = po_path(locale)
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN, abort_invalid=True)
    log.debug("loaded %d messages for %s from %s", len(catalog), locale, path)
    return _compile(catalog)


class Translator:
    """Translate and format messages for one locale.

    Values are substituted with ``str.format(**kwargs)`` after translation. In Arabic,
    every substituted value that is not plain Arabic words (digits, ``*``, Latin letters,
    punctuation: masked IDs, policy numbers, dates, insurer codes) is wrapped in bidi
    isolates by :func:`bot.i18n.bidi.for_rtl`, so it cannot reorder the sentence around it.
    Numbers (int, float, Decimal) are left bare: a run of digits already displays correctly
    in Arabic text, format specs like ``{amount:,}`` keep working, and
    ``days_text(3, tr) == "3 أيام"``. Pass pre-formatted numbers as str to get them isolated.
    English values are never touched.
    """

    __slots__ = ("_rtl", "_translations", "locale")

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._translations = _translations(locale)
        self._rtl = locale == "ar"

    def __repr__(self) -> str:
        return f"Translator({self.locale!r})"

    def _format(self, translated: str, source: str, kwargs: dict[str, object]) -> str:
        translated, source = keep_counts(translated), keep_counts(source)
        if self._rtl:
            kwargs = {key: self._protect(value) for key, value in kwargs.items()}
        try:
            return translated.format(**kwargs)
        except (KeyError, IndexError, ValueError):
            # A broken translation must not kill the reply; the catalog tests catch it.
            log.exception("bad placeholders in %s translation of %r", self.locale, source)
            return source.format(**kwargs)

    @staticmethod
    def _protect(value: object) -> object:
        # Numbers stay numbers so format specs such as {amount:,} keep working.
        if isinstance(value, Number) and not isinstance(value, bool):
            return value
        return for_rtl(str(value))

    def gettext(self, msgid: str, /, **kwargs: object) -> str:
        return self._format(self._translations.gettext(msgid), msgid, kwargs)

    _ = gettext

    def ngettext(self, singular: str, plural: str, n: int, /, **kwargs: object) -> str:
        """Pick the plural form for ``n``; ``{n}`` is available to the message (a caller's
        own ``n=`` keyword wins, e.g. to show a pre-formatted number)."""
        translated = self._translations.ngettext(singular, plural, n)
        source = singular if n == 1 else plural
        return self._format(translated, source, {"n": n, **kwargs})


@cache
def _translator(locale: str) -> Translator:
    return Translator(locale)


def translator_for(locale: str | None) -> Translator:
    """Shared translator for 'ar', 'en', 'en-US', ...; anything unsupported gets Arabic."""
    return _translator(_match(locale) or DEFAULT_LOCALE)
