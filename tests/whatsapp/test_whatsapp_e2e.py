"""WhatsApp end to end: `python -m bot`'s serve with WhatsApp configured, signed webhook posts
to its HTTP server, replies checked at a fake Graph API that refuses what Meta refuses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.launch import serve
from bot.config import Settings
from bot.i18n import strip_isolates
from bot.importer.demo import load_demo
from bot.store.setup import open_store
from tests.fakes.fake_graph_api import FakeGraphAPI, Seen

SECRET, VERIFY, CODE = "app-secret", "verify-me", "123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "never happened"
        await asyncio.sleep(0.01)


async def test_a_lookup_over_whatsapp_end_to_end(tmp_path: Path) -> None:
    async with FakeGraphAPI() as graph:
        port = free_port()
        settings = Settings(
            _env_file=None,
            database_path=tmp_path / "bot.sqlite3",
            id_hash_key="k",
            captcha_test_code=CODE,
            captcha_workers=0,
            web_port=port,
            whatsapp_access_token=graph.token,
            whatsapp_phone_number_id=graph.phone_number_id,
            whatsapp_app_secret=SECRET,
            whatsapp_verify_token=VERIFY,
            whatsapp_api_url=graph.root_url,
            whatsapp_api_version=graph.version,
        )
        db = await open_store(settings)
        await load_demo(db, settings)
        await db.close()
        stop = asyncio.Event()
        running = asyncio.create_task(serve(settings, stop))
        url = f"http://127.0.0.1:{port}/whatsapp/webhook"
        wa = "966500000010"
        async with aiohttp.ClientSession() as http:

            async def post(payload: dict[str, Any]) -> int:
                body = graph.encode(payload)
                headers = {"X-Hub-Signature-256": graph.sign(body, SECRET)}
                async with http.post(url, data=body, headers=headers) as response:
                    return response.status

            async def listening() -> None:
                for _ in range(500):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                            if response.status == 200:
                                return
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.02)
                raise AssertionError("the server never listened")

            await listening()
            challenge = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "9"}
            async with http.get(url, params=challenge) as response:
                assert (response.status, await response.text()) == (200, "9")

            seen: list[Seen] = []

            def grew(n: int) -> Callable[[], bool]:
                return lambda: len(graph.sent_to(wa)) >= n

            assert await post(graph.inbound_text(wa, "/start")) == 200
            await eventually(grew(1))
            [menu] = graph.sent_to(wa)
            # Four choices: a list, opened by «اختر».
            assert menu.type == "interactive" and menu.list_button == "اختر"
            assert len(menu.buttons) == 4 and "path:citizen" in menu.button_ids
            assert await post(graph.inbound_list(wa, "path:citizen", menu.buttons[0])) == 200
            await eventually(grew(2))
            assert await post(graph.inbound_text(wa, "١٠٠٠٠٠٠٠٠٨")) == 200
            await eventually(grew(3))
            seen = graph.sent_to(wa)
            code = seen[-1]
            # The image code: uploaded, sent by id in the header, its two buttons under it.
            assert code.media is not None and code.media.startswith(b"\x89PNG")
            assert code.buttons == ("رمز جديد", "🔊 رمز صوتي")
            assert await post(graph.inbound_text(wa, "000000")) == 200
            await eventually(grew(4))
            assert "غير صحيح" in strip_isolates(graph.sent_to(wa)[-1].text)
            assert await post(graph.inbound_text(wa, CODE)) == 200
            await eventually(grew(5))
            card = strip_isolates(graph.sent_to(wa)[-1].text)
            assert "1*******08" in card and "بوبا" in card
            assert len(graph.read) == 5  # every inbound message marked read
        stop.set()
        assert await asyncio.wait_for(running, 10) == 0
