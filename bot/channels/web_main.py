"""`python -m bot` without a Telegram token: the web chat on the demo data, to try it locally."""

from __future__ import annotations

import asyncio
import logging

from bot.app import App
from bot.channels.http import HttpServer, build_http_app, http_server
from bot.channels.web import web_routes
from bot.config import Settings
from bot.importer.demo import demo_cases, load_demo
from bot.runtime import Runtime, open_runtime
from bot.stopping import stop_on_signals

log = logging.getLogger(__name__)


async def prepare_demo(runtime: Runtime) -> bool:
    """Load the demo policies into a database that holds none; True when it did."""
    if await runtime.policies.count():
        return False
    report = await load_demo(runtime.db, runtime.settings)
    log.info("Loaded the demo policies: %s", report.summary())
    return True


def banner(settings: Settings, demo_loaded: bool) -> str:
    url = f"http://{settings.web.host}:{settings.web.port}"
    lines = [f"Web chat: open {url} in a browser (Ctrl+C stops it)."]
    if demo_loaded:
        lines.append("Demo policies loaded. Numbers to try:")
        cases: dict[str, list[str]] = {}
        for number, case in demo_cases():
            cases.setdefault(number, []).append(case)
        lines += [f"  {number}  {' + '.join(labels)}" for number, labels in cases.items()]
        lines.append("  1067890127  no policy registered")
    if settings.captcha.test_code:
        lines.append(f"CAPTCHA_TEST_CODE is set: every image code is {settings.captcha.test_code}.")
    return "\n".join(lines)


async def serve_web_chat(settings: Settings) -> None:
    """Serve the web chat until SIGINT (Ctrl+C) or SIGTERM, then stop the server gracefully
    and close the runtime (captcha workers, database). A second signal stops the server
    without waiting for open connections."""
    stop = asyncio.Event()
    server: HttpServer | None = None

    def stop_now() -> None:
        if server is not None:
            server.stop_now()

    # Installed before anything starts, so that a signal during start-up also stops cleanly.
    with stop_on_signals(stop.set, stop_now):
        runtime = await open_runtime(settings)
        try:
            demo_loaded = await prepare_demo(runtime)
            app = build_http_app(web_routes(runtime))
            # The project's server wrapper: our logging (with the identity-number mask) applies.
            server = http_server(app, settings.web.host, settings.web.port)
            print(banner(settings, demo_loaded), flush=True)
            serving = asyncio.create_task(server.serve(), name="http-server")
            # The application core's scheduler: the daily clean-up (no channel here sends).
            core = App(runtime)
            await core.start()
            stopping = asyncio.ensure_future(stop.wait())
            # The server ends by itself only if it fails; its exception then propagates below.
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            await core.stop()
            server.stop()
            await serving
        finally:
            await runtime.close()


def run_web_chat(settings: Settings) -> int:
    """`python -m bot` without a token: the web chat until SIGINT or SIGTERM, then exit 0."""
    asyncio.run(serve_web_chat(settings))
    log.info("Stopped.")
    return 0
