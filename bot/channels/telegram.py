"""The Telegram channel: python-telegram-bot in front of the conversation service.

Thin on purpose: `telegram_render` turns updates into events and replies into Bot API calls, the
engine owns the dialogue. This module wires PTB (ordering per chat, rate limiter, one
handler, one error handler) and runs it by long polling or behind the application's HTTP app.

    build_application(settings, core)      the Application, buildable against a fake Bot API
    TelegramBot(core, settings)             the channel as the application runs it
                                            (`bot/channels/launch.py`: `python -m bot`)
    polling(app) / webhook(app, ...)        manual lifecycles (tests use the same ones)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import BotCommand, BotCommandScopeChat, CallbackQuery, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackContext,
    TypeHandler,
)
from telegram.request import BaseRequest, HTTPXRequest

from bot.app import App, ConfigurationError, StartupError
from bot.channels.ordering import PerChatUpdateProcessor
from bot.channels.telegram_admin import TelegramAdmin
from bot.channels.telegram_render import inbound, send_replies
from bot.channels.telegram_sender import bulk_sender
from bot.config import Settings
from bot.conversation import texts
from bot.conversation.service import ConversationService
from bot.http import build_http_app, http_server, parse_json
from bot.i18n import N_, SUPPORTED, Translator, pick_locale, translator_for
from bot.logs import RedactIdentityNumbers
from bot.reminders.admin import AdminDialogue
from bot.reminders.delivery import workers_for
from bot.reminders.service import ReminderService
from bot.runtime import Runtime
from bot.store.inbound import InboundSeen
from bot.store.locks import exclusive

log = logging.getLogger(__name__)

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
Context = CallbackContext[Any, Any, Any, Any]
RoutesFor = Callable[[Runtime], Sequence[BaseRoute]]

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's rule for secret_token: 1-256 characters, A-Z a-z 0-9 _ -.
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAX_WEBHOOK_BODY = 1024 * 1024  # an update is a few KB; anything near this is not Telegram

# What the bot acts on; everything else (membership changes, reactions, ...) is not even fetched.
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
# Updates handled at once across chats (one chat is always one at a time). Against Telegram an
# update holds its slot for a network round trip or two (50-200 ms each), so this bounds
# throughput; bench/conversation.py with 100 ms per Bot API call: 32 -> ~54 lookups/s,
# 64 -> ~102, 128 -> ~131, at the same CPU per lookup. Waiting costs no CPU with the aiohttp
# client (httpx's pool got slower with every open connection: see telegram_http.py).
CONCURRENT_UPDATES = 64
# Long polling is for one instance: Telegram answers a second getUpdates with 409 Conflict
# and each poller would steal the other's updates. The poller holds this lock while it polls.
POLLING_LOCK = "telegram-polling"
ONE_POLLER = (
    "Another instance is already polling Telegram with this database: to run several "
    "instances, use webhook mode (set WEBHOOK_URL and WEBHOOK_SECRET)."
)
# Where the application keeps its ReminderService (operators' tools and tests reach it here).
REMINDERS_KEY = "reminders"

# Menu commands, described in the person's language (the descriptions live in the catalogs).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Start a new lookup")),
    ("cancel", N_("Cancel the current lookup")),
    ("help", N_("How to use this bot")),
    ("language", N_("Switch between Arabic and English")),
    ("reminders", N_("Your expiry reminders")),
    ("stop", N_("Stop all reminders")),
)
ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("broadcast", N_("Send a broadcast to subscribers")),
    ("broadcasts", N_("Recent broadcasts")),
)

# Loggers that may print whole updates (message texts) at DEBUG: PTB dumps every update it
# processes and every getUpdates answer. Records are masked where they are created, so no
# handler (a file, pytest's caplog, uvicorn's own) ever sees an identity number.
_PROTECTED_LOGGERS = (
    "telegram",
    "httpx",
    "httpcore",
    "aiohttp",
    "uvicorn",
    "apscheduler",
    "aiosqlite",
    "asyncpg",
    "bot",
)


def protect_logs() -> None:
    """Attach the identity-number mask to every logger of the libraries that see updates."""
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".", 1)[0] in _PROTECTED_LOGGERS
    ]
    for name in {*_PROTECTED_LOGGERS, *names, __name__}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactIdentityNumbers) for f in logger.filters):
            logger.addFilter(RedactIdentityNumbers())


class TelegramChannel:
    """The one update handler, the error handler, and the channel's part of reminders: its
    bulk sender and the admin's broadcast dialogue, registered with the application core."""

    def __init__(self, core: App) -> None:
        runtime = core.runtime
        self.runtime = runtime
        self.settings = settings = runtime.settings
        self.conversations: ConversationService = runtime.conversations(CHANNEL)
        # Update ids already handled, in the database: Telegram repeats an update it thinks
        # was not delivered, and with several instances the repeat may reach another one.
        self.seen = InboundSeen(runtime.db, CHANNEL)
        self.reminders = core.reminders
        # Reminders and broadcasts go out through a Bot of their own (see bulk_sender).
        self.sender = bulk_sender(settings, workers_for(settings.broadcast.rate))
        dialogue = AdminDialogue(self.reminders, runtime.db, CHANNEL)
        self.admin = TelegramAdmin(self.reminders, dialogue, settings.telegram.admin_ids)
        core.add_sender(
            self.sender, progress_for=self.admin.progress_for, on_report=self.admin.on_report
        )

    async def post_init(self, app: TelegramApp) -> None:
        await self.sender.initialize()
        self.admin.bot = app.bot

    async def post_stop(self, app: TelegramApp) -> None:
        """Nothing of the channel's own: the core stops reminders before the channel stops."""

    async def post_shutdown(self, app: TelegramApp) -> None:
        await self.sender.shutdown()

    async def on_update(self, update: Update, context: Context) -> None:
        if not await self.seen.first_time(str(update.update_id), time.time()):
            log.info("Telegram update %d was handled before: a repeat, skipped", update.update_id)
            return
        query = update.callback_query
        # Answer every button press, ours or not, so the client's spinner stops; in parallel
        # with the reply (against Telegram each call is a network round trip).
        answering = asyncio.ensure_future(_answer(query)) if query is not None else None
        try:
            found = inbound(update, context.bot.username)
            if found is None:
                return
            if self.admin.is_admin(found):
                tr = await self._translator(found.chat_id, found.event.platform_language)
                if await self.admin.handle(context.bot, found, tr):
                    return
            answer = await self.conversations.handle(str(found.chat_id), found.event)
            await send_replies(context.bot, found.chat_id, answer)
        finally:
            if answering is not None:
                await answering

    async def on_error(self, update: object, context: Context) -> None:
        error = context.error
        if isinstance(error, Forbidden):
            log.info("A chat blocked the bot or left: %s", error.message)
            return
        # Never the update itself: it holds what the person typed.
        log.error("Error while handling a Telegram update", exc_info=error)
        if not isinstance(update, Update):
            return
        chat, user = update.effective_chat, update.effective_user
        if chat is None or chat.type != chat.PRIVATE:
            return  # groups get the one privacy notice and nothing else
        tr = await self._translator(chat.id, user.language_code if user is not None else None)
        try:
            await send_replies(context.bot, chat.id, [texts.something_went_wrong(tr)])
        except TelegramError as exc:
            log.warning("Could not tell the chat about the error: %s", exc)

    async def _translator(self, chat_id: int, platform_language: str | None) -> Translator:
        """The chat's language: its explicit choice, else the platform's, else the default."""
        stored: str | None = None
        with contextlib.suppress(Exception):
            stored = (await self.conversations.states.load(CHANNEL, str(chat_id))).locale
        return translator_for(
            pick_locale(stored, platform_language, self.settings.app.default_locale)
        )


async def _answer(query: CallbackQuery) -> None:
    try:
        await query.answer()
    except TelegramError as exc:  # too old (the bot was down), or already answered
        log.debug("Could not answer a callback query: %s", exc)


def build_application(
    settings: Settings,
    core: App,
    *,
    webhook: bool = False,
    concurrency: int = CONCURRENT_UPDATES,
    rate_limiter: BaseRateLimiter[Any] | None = None,
    request: BaseRequest | None = None,
    customize: Callable[[ApplicationBuilder[Any, Any, Any, Any, Any, Any]], Any] | None = None,
) -> TelegramApp:
    """The PTB Application for `settings`, answering through the application core `core`
    (its runtime's conversations; its reminders, with which the channel registers its bulk
    sender). Start the core (`await core.start()`) once the application runs.

    `webhook=True` builds it without an Updater (updates come from the HTTP app). `request`
    replaces the HTTP client of Bot API calls; `customize` may adjust the builder last (its
    post_init / post_stop / post_shutdown run after the channel's own). Nothing is contacted
    until `initialize()`.
    """
    if settings.telegram.bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    protect_logs()
    if settings.captcha.test_code:
        log.warning(
            "CAPTCHA_TEST_CODE is set: every image code is the same fixed code. "
            "For automated tests only; never in production."
        )
    root = settings.telegram.api_url
    builder = (
        ApplicationBuilder()
        .token(settings.telegram.bot_token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .rate_limiter(rate_limiter or default_rate_limiter())
        .concurrent_updates(PerChatUpdateProcessor(concurrency))
    )
    calls, updates = default_requests(concurrency)
    builder = builder.request(request or calls).get_updates_request(updates)
    if webhook:
        builder = builder.updater(None)
    if customize is not None:
        customize(builder)
    app: TelegramApp = builder.build()
    channel = TelegramChannel(core)
    _chain_hooks(app, channel)
    app.bot_data[REMINDERS_KEY] = channel.reminders
    app.add_handler(TypeHandler(Update, channel.on_update))
    app.add_error_handler(channel.on_error)
    return app


def _chain_hooks(app: TelegramApp, channel: TelegramChannel) -> None:
    """Reminders start after initialize and stop with the app, before any hook of the caller's."""
    theirs_init, theirs_stop, theirs_shutdown = app.post_init, app.post_stop, app.post_shutdown

    async def post_init(application: TelegramApp) -> None:
        await channel.post_init(application)
        if theirs_init is not None:
            await theirs_init(application)

    async def post_stop(application: TelegramApp) -> None:
        await channel.post_stop(application)
        if theirs_stop is not None:
            await theirs_stop(application)

    async def post_shutdown(application: TelegramApp) -> None:
        await channel.post_shutdown(application)
        if theirs_shutdown is not None:
            await theirs_shutdown(application)

    app.post_init, app.post_stop, app.post_shutdown = post_init, post_stop, post_shutdown


def reminders_of(app: TelegramApp) -> ReminderService:
    service = app.bot_data[REMINDERS_KEY]
    assert isinstance(service, ReminderService)
    return service


def default_requests(concurrency: int) -> tuple[BaseRequest, BaseRequest]:
    """HTTP clients for Bot API calls and for getUpdates, sized to the concurrency: each update
    in flight makes at most two calls at once (its reply and a callback answer).

    aiohttp (telegram_http.py says why); PTB's httpx client if aiohttp is not installed.
    """
    size = 2 * concurrency + 4
    try:
        from bot.channels.telegram_http import AiohttpRequest
    except ImportError:
        log.warning("aiohttp is not installed: Bot API calls use httpx, at several times the CPU")
        return HTTPXRequest(connection_pool_size=size, pool_timeout=10.0), HTTPXRequest()
    return AiohttpRequest(size, pool_timeout=10.0), AiohttpRequest(1)


def default_rate_limiter() -> AIORateLimiter:
    """Group chats at Telegram's 20 messages a minute; 429 answers waited out and retried.

    No bot-wide ceiling: Telegram's "about 30 messages a second" is about bulk notifications,
    and a ceiling here would queue live answers behind each other (and behind broadcasts).
    A 429 still pauses every send until its `retry_after` has passed.
    """
    return AIORateLimiter(overall_max_rate=0, max_retries=3)


async def set_commands(
    app: TelegramApp, default_locale: str, admin_ids: Sequence[int] = ()
) -> None:
    """The command menu in Arabic and English, and in the default language for the rest.
    Admins' own chats also list the broadcast commands (nobody else sees them)."""
    for language in (*SUPPORTED, None):
        tr = translator_for(language or default_locale)
        commands = [BotCommand(name, tr._(description)) for name, description in COMMANDS]
        await app.bot.set_my_commands(commands, language_code=language)
        admin_menu = commands + [
            BotCommand(name, tr._(description)) for name, description in ADMIN_COMMANDS
        ]
        for admin in admin_ids:
            try:
                await app.bot.set_my_commands(
                    admin_menu, scope=BotCommandScopeChat(admin), language_code=language
                )
            except BadRequest as exc:  # the admin has not opened a chat with the bot yet
                log.info("No admin command menu for one admin: %s", exc.message)


async def _prepare(app: TelegramApp, settings: Settings) -> None:
    """What `post_init` would do under `run_polling` (which this module does not use)."""
    try:
        await set_commands(app, settings.app.default_locale, settings.telegram.admin_ids)
    except TelegramError as exc:
        log.warning("Could not set the command menu: %s", exc)


@contextlib.asynccontextmanager
async def _running(app: TelegramApp, settings: Settings) -> AsyncIterator[TelegramApp]:
    """initialize, start ... stop, shutdown; with the builder's post_init / post_stop /
    post_shutdown hooks called where `run_polling` would call them (other features, e.g.
    reminders, hook in there through `build_application(customize=...)`)."""
    await app.initialize()
    try:
        await _prepare(app, settings)
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        try:
            yield app
        finally:
            if app.running:
                await app.stop()
            if app.post_stop is not None:
                await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


@contextlib.asynccontextmanager
async def polling(
    app: TelegramApp, settings: Settings, *, poll_timeout: float = 10.0
) -> AsyncIterator[TelegramApp]:
    """Run `app` by long polling until the block ends; shut down cleanly either way."""
    updater = app.updater
    if updater is None:
        raise ValueError("built for webhook mode: the application has no updater")
    async with _running(app, settings):
        await updater.start_polling(
            poll_interval=0.0,
            timeout=timedelta(seconds=poll_timeout),
            allowed_updates=ALLOWED_UPDATES,
        )
        try:
            log.info("Telegram bot @%s is answering (long polling)", app.bot.username)
            yield app
        finally:
            if updater.running:
                await updater.stop()


def webhook_url(settings: Settings) -> str:
    """The URL given to Telegram: WEBHOOK_URL, with /telegram/webhook added unless it ends so.

    The app always listens on /telegram/webhook; a proxy in front maps the public URL to it.
    """
    base = settings.telegram.webhook_url.rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH


def webhook_problem(settings: Settings) -> str | None:
    """Why webhook mode cannot start with these settings, in one line (None: it can)."""
    if not settings.telegram.webhook_url:
        return None
    if settings.telegram.webhook_secret is None:
        return (
            "WEBHOOK_SECRET is not set: webhook mode needs it, so that only Telegram can post "
            "updates to the bot (set it to 1-256 characters of A-Z, a-z, 0-9, _ or -)."
        )
    if not _SECRET_RE.fullmatch(settings.telegram.webhook_secret.get_secret_value()):
        return "Bad setting WEBHOOK_SECRET: use 1-256 characters of A-Z, a-z, 0-9, _ or -"
    return None


def webhook_routes(app: TelegramApp, secret: str) -> list[BaseRoute]:
    """POST /telegram/webhook: check Telegram's secret header, queue the update for PTB."""
    expected = secret.encode()

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return Response(status_code=403)
        if not app.running:
            return Response(status_code=503)  # starting or stopping: Telegram will retry
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_WEBHOOK_BODY:
                return Response(status_code=413)
        try:
            data = parse_json(body)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            update = Update.de_json(data, app.bot)
        # Whatever the body makes PTB's parsing raise (e.g. RecursionError on a nesting too
        # deep), it is a bad request: one log line, never the body (it may hold what a
        # person typed).
        except Exception as exc:
            log.warning(
                "Webhook: a request with the right secret but no readable update (%s)",
                type(exc).__name__,
            )
            return Response(status_code=400)
        await app.update_queue.put(update)
        return Response()

    return [Route(WEBHOOK_PATH, receive, methods=["POST"])]


@dataclass
class Serving:
    """The HTTP server of webhook mode: its task ends early only if the server fails."""

    task: asyncio.Task[None]
    port: int


@contextlib.asynccontextmanager
async def webhook(
    app: TelegramApp,
    settings: Settings,
    extra_routes: Sequence[BaseRoute] = (),
) -> AsyncIterator[Serving]:
    """Serve the HTTP app (webhook + `extra_routes` + /healthz) and register the webhook.

    Raises StartupError when WEB_HOST:WEB_PORT cannot be bound (before contacting Telegram).
    """
    problem = webhook_problem(settings)
    if problem is not None or settings.telegram.webhook_secret is None:
        raise ValueError(problem or "WEBHOOK_SECRET is not set")
    secret = settings.telegram.webhook_secret.get_secret_value()
    http_app = build_http_app([*webhook_routes(app, secret), *extra_routes])
    try:
        server = http_server(http_app, settings.web.host, settings.web.port)
    except OSError as exc:
        raise StartupError(
            f"Cannot listen on {settings.web.host}:{settings.web.port} (WEB_HOST, WEB_PORT): {exc}"
        ) from exc
    # The webhook stays registered at the end: Telegram keeps the updates until we are back.
    async with _running(app, settings), server.running() as task:
        await app.bot.set_webhook(
            url=webhook_url(settings), secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        log.info(
            "Telegram bot @%s is answering (webhook; HTTP on %s:%d)",
            app.bot.username,
            server.host,
            server.port,
        )
        yield Serving(task, server.port)


class TelegramBot:
    """The Telegram channel as the application runs it (`bot.app.Channel`): long polling, or
    its webhook on the application's HTTP app (registered once the server listens)."""

    name = CHANNEL

    def __init__(self, core: App, settings: Settings) -> None:
        problem = webhook_problem(settings)
        if problem is not None:
            raise ValueError(problem)
        self.settings = settings
        self.db = core.runtime.db
        self.secret = (
            settings.telegram.webhook_secret.get_secret_value()
            if settings.telegram.webhook_secret
            else ""
        )
        self.app = build_application(settings, core, webhook=bool(settings.telegram.webhook_url))
        self._running = contextlib.AsyncExitStack()

    def routes(self) -> Sequence[BaseRoute]:
        return webhook_routes(self.app, self.secret) if self.settings.telegram.webhook_url else ()

    async def start(self) -> None:
        if not self.settings.telegram.webhook_url:
            try:
                await self._poll()
            except BaseException:
                await self._running.aclose()
                raise
            return
        await self._running.enter_async_context(_running(self.app, self.settings))
        await self.app.bot.set_webhook(
            url=webhook_url(self.settings),
            secret_token=self.secret,
            allowed_updates=ALLOWED_UPDATES,
        )
        log.info("Telegram bot @%s is answering (webhook)", self.app.bot.username)

    async def _poll(self) -> None:
        """Long polling, while this instance holds the polling lock (ConfigurationError when
        another one does); polling stops if the lock is lost (its connection dropped)."""
        held = await self._running.enter_async_context(exclusive(self.db, POLLING_LOCK))
        if not held:
            raise ConfigurationError(ONE_POLLER)
        await self._running.enter_async_context(polling(self.app, self.settings))
        updater = self.app.updater
        assert updater is not None

        async def stop_if_lost() -> None:
            await held.lost.wait()
            log.error("Lost the Telegram polling lock (database connection): polling stopped")
            if updater.running:
                await updater.stop()

        watch = asyncio.create_task(stop_if_lost(), name="polling-lock")
        self._running.callback(watch.cancel)

    async def stop(self) -> None:
        # A webhook stays registered: Telegram keeps the updates until we are back.
        await self._running.aclose()

    def health(self) -> str:
        if not self.app.running:
            return "stopped"
        updater = self.app.updater
        if updater is not None and not updater.running:
            return "not polling"
        return "ok"

    def describe(self, url: str | None) -> str:
        bot = f"Telegram: @{self.app.bot.username}"
        if not self.settings.telegram.webhook_url:
            return f"{bot}, long polling."
        return f"{bot}, webhook {webhook_url(self.settings)} (served on {url})."
