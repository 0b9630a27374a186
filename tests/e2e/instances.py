"""Several bot instances on one database, as `python -m bot` runs each (`launch.serve`), in the
test's event loop: each its own runtime, HTTP app, Telegram webhook and scheduler, all against
one fake Bot API. A test posts webhook updates to the instance it chooses, as a reverse proxy
in front of them would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol, cast

from aiohttp import ClientSession

from bot.app import App
from bot.channels.launch import serve
from bot.channels.telegram import WEBHOOK_PATH, TelegramBot
from bot.config import Settings
from bot.i18n import strip_isolates
from tests.e2e.conftest import TOKEN, make_settings
from tests.fakes.fake_bot_api import FakeBotAPI, JSONDict

SECRET = "several-instances"
REPO = Path(__file__).resolve().parents[2]


def bot_env(api_root_url: str, database: dict[str, Any], **extra: str) -> dict[str, str]:
    """The environment of a `python -m bot` child: nothing from the shell but what runs
    Python, this checkout's bot, the fake Bot API, the test database, and `extra`."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return env | {
        "PYTHONPATH": str(REPO),
        "NO_PROXY": "127.0.0.1,localhost",
        "ID_HASH_KEY": "k",
        "CAPTCHA_WORKERS": "0",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api_root_url,
        **{name.upper(): str(value) for name, value in database.items()},
        **extra,
    }


class BotAPI(Protocol):
    """The fake Bot API, in this process (FakeBotAPI) or in its own (FakeBotAPIProcess)."""

    @property
    def root_url(self) -> str: ...


def instance_settings(
    tmp_path: Path, api: BotAPI, database: dict[str, Any], **overrides: Any
) -> Settings:
    """Webhook mode, each instance on a free port of its own; `database` names the one
    database every instance uses."""
    values: dict[str, Any] = {
        "webhook_url": "https://bot.example.sa/",
        "webhook_secret": SECRET,
        "telegram_api_url": api.root_url,
        **database,
        **overrides,
    }
    settings = make_settings(tmp_path, cast(FakeBotAPI, api), **values)
    # WEB_PORT=0 is not a setting an operator may give; the HTTP server takes it as "any".
    return settings.model_copy(update={"web": settings.web.model_copy(update={"port": 0})})


class Instance:
    """One running bot process' worth of application, started and stopped at will."""

    def __init__(self, name: str, settings: Settings, api: FakeBotAPI | None = None) -> None:
        """`api`: the in-process fake, to post updates to this instance's webhook."""
        self.name = name
        self.settings = settings
        self.api = api
        self._stop = asyncio.Event()
        self._cores: list[App] = []
        self._task: asyncio.Task[int] | None = None

    @property
    def core(self) -> App:
        assert self._cores, f"instance {self.name} never started"
        return self._cores[0]

    @property
    def telegram(self) -> TelegramBot:
        [channel] = [c for c in self.core.channels if isinstance(c, TelegramBot)]
        return channel

    @property
    def url(self) -> str:
        assert self.core.port is not None
        return f"http://127.0.0.1:{self.core.port}"

    async def start(self, timeout: float = 10.0) -> None:
        self._task = asyncio.create_task(
            serve(self.settings, self._stop, started=self._cores.append), name=self.name
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self._cores and self.core.port and self.telegram.health() == "ok"):
            if self._task.done():
                self._task.result()  # its start-up error
                raise RuntimeError(f"instance {self.name} stopped while starting")
            if loop.time() > deadline:
                raise TimeoutError(f"instance {self.name} did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> int:
        self._stop.set()
        if self._task is None:
            return 0
        return await asyncio.wait_for(self._task, 15)

    async def post(self, update: JSONDict) -> int:
        """Deliver one update to this instance's webhook, as Telegram (through a proxy) does."""
        assert self.api is not None, "no fake Bot API in this process to post through"
        status, _ = await self.api.post_update_to(self.url + WEBHOOK_PATH, update, SECRET)
        return status

    async def settle(self) -> None:
        """Every update this instance accepted is fully handled (its replies sent)."""
        await asyncio.wait_for(self.telegram.app.update_queue.join(), 10)

    async def health(self) -> tuple[int, Any]:
        async with ClientSession() as http, http.get(self.url + "/healthz") as response:
            return response.status, await response.json()


StartInstances = Callable[..., Any]


@contextlib.asynccontextmanager
async def running(instances: list[Instance]) -> AsyncIterator[list[Instance]]:
    started: list[Instance] = []
    try:
        for instance in instances:
            await instance.start()
            started.append(instance)
        yield instances
    finally:
        for instance in reversed(started):
            with contextlib.suppress(Exception):
                await instance.stop()


def texts(api: FakeBotAPI, chat_id: int) -> list[str]:
    return [strip_isolates(o.body or "") for o in api.sent_to(chat_id)]
