"""`python -m bot`: the application with every configured channel, until SIGINT or SIGTERM.

    Telegram      when TELEGRAM_BOT_TOKEN is set (long polling, or WEBHOOK_URL's webhook)
    WhatsApp      when WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are set (its webhook)
    the web chat  when no channel is configured, or WEB_CHAT=true (on the demo data when the
                  database holds no policy and nothing else is on)

One HTTP app on WEB_HOST:WEB_PORT serves whatever has routes (a webhook, the web chat,
/healthz); the banner says which channels are on and where each listens.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute
from telegram.error import InvalidToken, TelegramError

from bot.app import App, ConfigurationError, StartupError
from bot.channels.telegram import TelegramBot, webhook_problem
from bot.channels.web_channel import WebChat, prepare_demo
from bot.channels.whatsapp import WhatsAppBot
from bot.config import Settings
from bot.runtime import Runtime, open_runtime
from bot.stopping import stop_on_signals

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 78
RoutesFor = Callable[[Runtime], Sequence[BaseRoute]]


class _Routes:
    """Extra routes on the HTTP app (tests, embedding), as a channel with nothing else."""

    name = "routes"

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = routes

    def routes(self) -> Sequence[BaseRoute]:
        return self._routes

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def describe(self, url: str | None) -> str:
        return f"Extra routes on {url}."

    def health(self) -> str:
        return "ok"


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    extra_routes: RoutesFor | None = None,
    started: Callable[[App], object] = lambda core: None,
) -> int:
    """Open the runtime, run every configured channel until `stop` is set, close it all.
    `started` is told the application once it exists (to stop it harder on a second signal)."""
    runtime = await open_runtime(settings)
    try:
        await runtime.captcha.start()  # warm the image workers before taking traffic
        core = App(runtime)
        started(core)
        telegram = settings.telegram.bot_token is not None
        whatsapp = settings.whatsapp.enabled
        if telegram:
            core.add_channel(TelegramBot(core, settings))
        if whatsapp:
            core.add_channel(WhatsAppBot(core, settings))
        alone = not (telegram or whatsapp)  # nothing else configured: the local try-out
        if alone or settings.web.chat:
            demo_loaded = alone and await prepare_demo(runtime)
            core.add_channel(WebChat(runtime, demo_loaded))
        if extra_routes is not None:
            core.add_channel(_Routes(extra_routes(runtime)))
        await core.serve(stop)
        return EXIT_OK
    finally:
        await runtime.close()


async def _main(settings: Settings) -> int:
    stop = asyncio.Event()
    cores: list[App] = []

    def stop_now() -> None:
        for core in cores:
            core.stop_now()

    with stop_on_signals(stop.set, stop_now):
        code = await serve(settings, stop, started=cores.append)
    log.info("Stopped.")
    return code


def run(settings: Settings) -> int:
    """The process: one line and an exit code for what an operator can fix."""
    problem = webhook_problem(settings) if settings.telegram.bot_token is not None else None
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_CONFIG
    if settings.telegram.bot_token is None and not settings.whatsapp.enabled:
        print(
            "No channel is configured: starting the local web chat (set TELEGRAM_BOT_TOKEN, "
            "or the WHATSAPP_* settings, in .env to run on Telegram or WhatsApp).",
            file=sys.stderr,
        )
    try:
        return asyncio.run(_main(settings))
    except InvalidToken:
        print(
            "Telegram rejected TELEGRAM_BOT_TOKEN: check the token from @BotFather.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    except TelegramError as exc:
        print(f"Could not reach Telegram at {settings.telegram.api_url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
