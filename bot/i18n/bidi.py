"""Unicode bidi isolates for mixing numbers and Latin text into Arabic sentences.

Without isolation a masked ID such as ``1*******78`` or a policy number followed by
punctuation can be reordered when shown in a right-to-left paragraph.

NO-BREAK SPACE keeps a number with its unit and a date's parts on one line. It is bidi-safe
where we put it, between a number or a word and a word: its class (CS) resolves like a space's
(WS) there, taking the direction of the text on both sides.
"""

from __future__ import annotations

import unicodedata

LRI = "\u2066"  # LEFT-TO-RIGHT ISOLATE
RLI = "\u2067"  # RIGHT-TO-LEFT ISOLATE
FSI = "\u2068"  # FIRST STRONG ISOLATE
PDI = "\u2069"  # POP DIRECTIONAL ISOLATE
NBSP = "\u00a0"  # NO-BREAK SPACE

_OPENERS = (LRI, RLI, FSI)
_ISOLATE_MARKS = dict.fromkeys(map(ord, (LRI, RLI, FSI, PDI)))
# Bidi classes that sit safely in an Arabic sentence without help.
_PLAIN_RTL = frozenset({"R", "AL", "NSM", "WS"})
_STRONG_RTL = frozenset({"R", "AL"})


def isolate(text: str) -> str:
    """Wrap in FSI..PDI: direction comes from the first strong letter inside."""
    return f"{FSI}{text}{PDI}"


def ltr(text: str) -> str:
    """Wrap in LRI..PDI: always laid out left to right (numbers, IDs, Latin codes)."""
    return f"{LRI}{text}{PDI}"


def strip_isolates(text: str) -> str:
    """Remove isolate marks, e.g. to compare a reply with plain text in tests."""
    return text.translate(_ISOLATE_MARKS)


def plain_text(text: str) -> str:
    """Isolates removed and no-break spaces as spaces: a reply as plain text, e.g. to compare
    it with expected words in tests (which check the no-break spaces on their own)."""
    return strip_isolates(text).replace(NBSP, " ")


def is_isolated(text: str) -> bool:
    return len(text) >= 2 and text[0] in _OPENERS and text[-1] == PDI


def for_rtl(text: str) -> str:
    """Make a value safe to drop into an Arabic sentence.

    Pure Arabic words are left alone. Anything with digits, ``*``, Latin letters or
    punctuation is isolated: with ``ltr`` when it has no Arabic letters (``1*******78``,
    ``VIP``), otherwise with ``isolate`` -- forcing LTR on "15 رمضان 1445 هـ" would put
    its words in the wrong order.
    """
    if not text or is_isolated(text):
        return text
    # A no-break space inside Arabic words ("يوم واحد") is as safe as a space.
    classes = {"WS" if char == NBSP else unicodedata.bidirectional(char) for char in text}
    if classes <= _PLAIN_RTL:
        return text
    return isolate(text) if classes & _STRONG_RTL else ltr(text)
