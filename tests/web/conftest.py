from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningBot:
    url: str
    log: Path  # what it printed and logged (stdout and stderr)


@pytest.fixture(scope="module")
def web_chat_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """The README's first command, as a newcomer runs it: no token, demo data, web chat."""
    folder = tmp_path_factory.mktemp("webchat")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELEGRAM_")} | {
        "DATABASE_PATH": str(folder / "bot.sqlite3"),
        "WEB_PORT": str(port),
        "CAPTCHA_TEST_CODE": "123456",
        "CAPTCHA_WORKERS": "0",
        "NO_PROXY": "127.0.0.1,localhost",
        # This checkout's `bot`, whatever an installed copy (an editable install elsewhere) says.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    log = (folder / "bot.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((folder / "bot.log").read_text()) from None
                time.sleep(0.1)
        yield RunningBot(url, folder / "bot.log")
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def web_chat(web_chat_process: RunningBot) -> str:
    return web_chat_process.url
