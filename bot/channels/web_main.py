"""`python -m bot` without a Telegram token: the web chat on the demo data, to try it locally."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.channels.http import build_http_app, http_server
from bot.channels.web import web_routes
from bot.config import Settings
from bot.importer.demo import demo_cases, load_demo
from bot.runtime import Runtime, open_runtime

log = logging.getLogger(__name__)


async def prepare_demo(runtime: Runtime) -> bool:
    """Load the demo policies into a database that holds none; True when it did."""
    if await runtime.policies.count():
        return False
    report = await load_demo(runtime.db, runtime.settings)
    log.info("Loaded the demo policies: %s", report.summary())
    return True


def banner(settings: Settings, demo_loaded: bool) -> str:
    url = f"http://{settings.web_host}:{settings.web_port}"
    lines = [f"Web chat: open {url} in a browser (Ctrl+C stops it)."]
    if demo_loaded:
        lines.append("Demo policies loaded. Numbers to try:")
        cases: dict[str, list[str]] = {}
        for number, case in demo_cases():
            cases.setdefault(number, []).append(case)
        lines += [f"  {number}  {' + '.join(labels)}" for number, labels in cases.items()]
        lines.append("  1067890127  no policy registered")
    if settings.captcha_test_code:
        lines.append(f"CAPTCHA_TEST_CODE is set: every image code is {settings.captcha_test_code}.")
    return "\n".join(lines)


async def serve_web_chat(settings: Settings) -> None:
    runtime = await open_runtime(settings)
    try:
        demo_loaded = await prepare_demo(runtime)
        app = build_http_app(web_routes(runtime))
        # The project's server wrapper: our logging (with the identity-number mask) applies.
        server = http_server(app, settings.web_host, settings.web_port)
        print(banner(settings, demo_loaded), flush=True)
        await server.serve()
    finally:
        await runtime.close()


def run_web_chat(settings: Settings) -> int:
    # uvicorn turns Ctrl+C into a graceful stop; a second one may still interrupt.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_web_chat(settings))
    return 0
