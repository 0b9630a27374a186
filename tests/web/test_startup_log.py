"""What a started web chat writes to its log: our own logger names, not `uvicorn.error`."""

from __future__ import annotations

import time
import urllib.request

from tests.web.conftest import RunningBot


def output_once_started(bot: RunningBot) -> str:
    """The log up to and past the banner, which is printed once everything has started."""
    deadline = time.monotonic() + 30
    while "Web chat: open" not in (text := bot.log.read_text(errors="replace")):
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    return text


def test_the_start_up_log_reads_as_ours(web_chat_process: RunningBot) -> None:
    with urllib.request.urlopen(web_chat_process.url + "/healthz", timeout=5) as response:
        assert response.status == 200
    output = output_once_started(web_chat_process)
    lines = output.splitlines()
    assert not [line for line in lines if "uvicorn" in line], output
    # uvicorn's own lines are still there, under the HTTP server's name, at their level.
    assert any(line.endswith("INFO bot.http: Application startup complete.") for line in lines)
    assert any(
        line.endswith(f"INFO bot.http: Listening on {web_chat_process.url}") for line in lines
    ), output
