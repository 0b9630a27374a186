"""WhatsApp end to end: `python -m bot`'s serve with WhatsApp configured, signed webhook posts
to its HTTP server, replies checked at a fake Graph API that refuses what Meta refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.launch import serve
from bot.config import Settings
from bot.i18n import plain_text
from bot.importer.demo import load_demo
from bot.store.setup import open_store
from tests.fakes.fake_graph_api import FakeGraphAPI, Seen
from tests.whatsapp.stack import SECRET, VERIFY, eventually, free_port, until_listening

CODE = "123456"


def whatsapp_settings(tmp_path: Path, graph: FakeGraphAPI, port: int) -> Settings:
    return Settings(
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


async def test_a_lookup_over_whatsapp_end_to_end(tmp_path: Path) -> None:
    async with FakeGraphAPI() as graph:
        port = free_port()
        settings = whatsapp_settings(tmp_path, graph, port)
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

            await until_listening(http, f"http://127.0.0.1:{port}")
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
            assert "غير صحيح" in plain_text(graph.sent_to(wa)[-1].text)
            assert await post(graph.inbound_text(wa, CODE)) == 200
            await eventually(grew(5))
            card = plain_text(graph.sent_to(wa)[-1].text)
            assert "1*******08" in card and "بوبا" in card
            assert len(graph.read) == 5  # every inbound message marked read
        stop.set()
        assert await asyncio.wait_for(running, 10) == 0


class Running:
    """`serve` with WhatsApp on, and a person posting signed webhooks to it."""

    def __init__(self, settings: Settings, graph: FakeGraphAPI, wa: str) -> None:
        self.settings, self.graph, self.wa = settings, graph, wa
        self.url = f"http://127.0.0.1:{settings.web.port}"

    async def __aenter__(self) -> Running:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(serve(self.settings, self.stop))
        self.http = aiohttp.ClientSession()
        await until_listening(self.http, self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()
        self.stop.set()
        assert await asyncio.wait_for(self.task, 10) == 0

    async def say(self, payload: dict[str, Any], replies: int = 1) -> list[Seen]:
        before = len(self.graph.sent_to(self.wa))
        body = self.graph.encode(payload)
        headers = {"X-Hub-Signature-256": self.graph.sign(body, SECRET)}
        async with self.http.post(self.url + "/whatsapp/webhook", data=body, headers=headers) as r:
            assert r.status == 200
        await eventually(lambda: len(self.graph.sent_to(self.wa)) >= before + replies)
        return self.graph.sent_to(self.wa)[before:]


async def test_a_resident_with_the_audio_code_across_a_restart_leaving_no_raw_number(
    tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level("DEBUG")
    async with FakeGraphAPI() as graph:
        settings = whatsapp_settings(tmp_path, graph, free_port())
        db = await open_store(settings)
        await load_demo(db, settings)
        await db.close()
        wa = "966500000011"
        async with Running(settings, graph, wa) as bot:
            [ask] = await bot.say(graph.inbound_list(wa, "path:resident", "مقيم / زائر"))
            assert "الإقامة" in plain_text(ask.text)
            [image] = await bot.say(graph.inbound_text(wa, "2000000006"))
            assert image.media is not None
            [audio, caption] = await bot.say(graph.inbound_button(wa, "audio_code", "🔊"), 2)
            assert audio.type == "audio" and audio.media is not None
            assert audio.media.startswith(b"OggS") and b"OpusHead" in audio.media[:100]
            assert "استمع" in plain_text(caption.text)
        # A restart between the code and its answer loses nothing.
        async with Running(settings, graph, wa) as bot:
            [card] = await bot.say(graph.inbound_text(wa, CODE))
            assert "2*******06" in plain_text(card.text)
        db = await open_store(settings)
        rows = await db.read("SELECT state FROM conversations")
        audit = await db.read("SELECT chat_hash, id_hmac FROM audit_lookups")
        await db.close()
        assert "2000000006" not in repr(rows) + repr(audit)
        assert "2000000006" not in caplog.text
