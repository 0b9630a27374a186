"""The web chat as a channel of the application; without a Telegram token, on the demo data,
to try it locally."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.routing import BaseRoute

from bot.channels.web import web_routes
from bot.importer.demo import demo_cases, load_demo
from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def prepare_demo(runtime: Runtime) -> bool:
    """Load the demo policies into a database that holds none; True when it did."""
    if await runtime.policies.count():
        return False
    report = await load_demo(runtime.db, runtime.settings)
    log.info("Loaded the demo policies: %s", report.summary())
    return True


class WebChat:
    """The web chat as the application runs it (`bot.app.Channel`): routes on the HTTP app."""

    name = "web"

    def __init__(self, runtime: Runtime, demo_loaded: bool = False) -> None:
        self.runtime = runtime
        self.demo_loaded = demo_loaded

    def routes(self) -> Sequence[BaseRoute]:
        return web_routes(self.runtime)

    async def start(self) -> None:
        """Nothing of its own: it answers through the HTTP app."""

    async def stop(self) -> None:
        """Nothing of its own: the HTTP app stops with the application."""

    def health(self) -> str:
        return "ok"  # it answers whenever the HTTP app does

    def describe(self, url: str | None) -> str:
        settings = self.runtime.settings
        lines = [f"Web chat: open {url} in a browser (Ctrl+C stops it)."]
        if self.demo_loaded:
            lines.append("Demo policies loaded. Numbers to try:")
            cases: dict[str, list[str]] = {}
            for number, case in demo_cases():
                cases.setdefault(number, []).append(case)
            lines += [f"  {number}  {' + '.join(labels)}" for number, labels in cases.items()]
            lines.append("  1067890127  no policy registered")
        if settings.captcha.test_code:
            code = settings.captcha.test_code
            lines.append(f"CAPTCHA_TEST_CODE is set: every image code is {code}.")
        return "\n".join(lines)
