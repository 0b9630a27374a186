"""Logging set-up with a last line of defence against identity numbers in log files."""

from __future__ import annotations

import logging
import re

from bot.domain.identity import mask_id

# Any 10-digit run that could be an identity number (ASCII after normalisation is what code
# handles; Arabic-Indic digits are covered too because a raw message text might be logged).
_ID_LIKE = re.compile(r"(?<![0-9٠-٩۰-۹])[1-4٠-٤۰-۴][0-9٠-٩۰-۹]{9}(?![0-9٠-٩۰-۹])")


def redact(text: str) -> str:
    return _ID_LIKE.sub(lambda m: mask_id(m.group(0)), text)


class RedactIdentityNumbers(logging.Filter):
    """Masks identity-number-shaped digit runs in every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactIdentityNumbers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, which carries the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The scheduler announces every job it runs at INFO; its warnings still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
