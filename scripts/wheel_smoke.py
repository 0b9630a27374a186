"""Smoke test of an installed wheel, run by .ci/run in a fresh venv outside the checkout.

    /tmp/venv/bin/python scripts/wheel_smoke.py

Starts `python -m bot` (the web chat, no channel configured) from an empty directory, so
nothing of the checkout can be found by accident, waits until it answers, does one lookup of
a demo number through the web chat's API, and stops it with SIGTERM. Standard library only:
it runs with the wheel's own interpreter. Exits non-zero, saying why, on any failure.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DEMO_CITIZEN = "1000000008"  # bot/data/demo_policies.csv: a valid policy
TEST_CODE = "123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fail(message: str, bot: subprocess.Popen[str] | None = None) -> None:
    if bot is not None:
        bot.kill()
        output, _ = bot.communicate()
        print(output, file=sys.stderr)
    print(f"wheel smoke test FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    import bot

    # The package must come from site-packages, not from a checkout on sys.path.
    if "site-packages" not in (bot.__file__ or ""):
        fail(f"bot was imported from {bot.__file__}, not from the installed wheel")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": folder,
            "NO_PROXY": "127.0.0.1,localhost",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(port),
            "DATABASE_PATH": str(Path(folder) / "bot.sqlite3"),
            "CAPTCHA_TEST_CODE": TEST_CODE,
            "CAPTCHA_WORKERS": "0",
        }
        bot_process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.ProxyHandler({}),
        )
        deadline = time.monotonic() + 60
        while True:
            if bot_process.poll() is not None:
                fail(f"the bot exited with {bot_process.returncode}", bot_process)
            try:
                with opener.open(f"{base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail("the bot did not answer /healthz within 60 s", bot_process)
            time.sleep(0.3)

        def say(**body: str) -> list[str]:
            request = urllib.request.Request(
                f"{base}/api/chat",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Origin": base},
                method="POST",
            )
            with opener.open(request, timeout=30) as response:
                return [reply["text"] for reply in json.load(response)["replies"]]

        greeting = say(command="/start")[0]
        say(button="path:citizen")
        say(text=DEMO_CITIZEN)
        card = " ".join(say(text=TEST_CODE))
        # Arabic catalogs loaded (not msgid fall-backs), the demo data imported, number masked.
        if "مرحب" not in greeting:
            fail(f"the greeting is not the Arabic catalog's: {greeting!r}", bot_process)
        if "1*******08" not in card or "التأمين" not in card:
            fail(f"the lookup did not give the demo policy's card: {card!r}", bot_process)
        bot_process.send_signal(signal.SIGTERM)
        try:
            output, _ = bot_process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            fail("the bot did not stop within 30 s of SIGTERM", bot_process)
        if bot_process.returncode != 0:
            print(output, file=sys.stderr)
            fail(f"the bot exited with {bot_process.returncode} on SIGTERM")
    print(f"wheel smoke test passed: {bot.__file__}")


if __name__ == "__main__":
    main()
