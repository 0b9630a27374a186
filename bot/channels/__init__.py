"""The channel adapters: the only code that knows a channel library."""

import os

# python-telegram-bot 22 gives time periods (RetryAfter.retry_after, ...) as timedelta only
# when opted in; without it every 429 warns that the int form is deprecated. It reads the
# variable at each access, so setting it here, before any request, covers the whole process.
os.environ.setdefault("PTB_TIMEDELTA", "true")
