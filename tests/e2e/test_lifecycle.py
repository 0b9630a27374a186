"""The manual lifecycle keeps PTB's hooks and leaves nothing running."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.app import App
from bot.channels.telegram import build_application, polling
from bot.runtime import open_runtime
from tests.e2e.conftest import make_settings
from tests.fakes.fake_bot_api import FakeBotAPI


async def test_post_init_post_stop_post_shutdown_run_in_order(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, api)
    calls: list[str] = []

    def hook(name: str) -> Any:
        async def record(app: Any) -> None:
            calls.append(f"{name}:{'running' if app.running else 'stopped'}")

        return record

    runtime = await open_runtime(settings)
    try:
        app = build_application(
            settings,
            App(runtime),
            customize=lambda b: (
                b.post_init(hook("init")).post_stop(hook("stop")).post_shutdown(hook("shutdown"))
            ),
        )
        async with polling(app, settings, poll_timeout=0.5):
            calls.append("serving")
    finally:
        await runtime.close()
    assert calls == ["init:stopped", "serving", "stop:stopped", "shutdown:stopped"]
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == []
