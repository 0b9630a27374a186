"""SIGINT (Ctrl+C) and SIGTERM (systemd, docker) stop the bot the same way, in every mode.

The process entry points own the signals (uvicorn's own handling is off: see `channels.http`):
a signal asks the running mode to stop, the mode shuts down in order (HTTP server, Telegram
application, captcha workers, database) and the process exits 0 with one "Stopped." line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(
    stop: Callable[[], None], again: Callable[[], None] | None = None
) -> Iterator[None]:
    """While the block runs, the first SIGINT/SIGTERM calls `stop`, any later one `again`
    (e.g. stop waiting for open connections). Call it from the event loop's thread."""
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        if len(received) == 1:
            log.info("%s received: stopping", sig.name)
            stop()
        elif again is not None:
            log.info("%s received again: stopping now", sig.name)
            again()
        else:
            log.info("%s received again: still stopping", sig.name)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
