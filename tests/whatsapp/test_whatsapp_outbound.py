"""The outbound half of the WhatsApp channel: renderer and Graph client against the fake."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from bot.captcha import render_ogg
from bot.channels.whatsapp_api import GraphClient, GraphError, GraphUnavailable
from bot.channels.whatsapp_render import deliver, payloads
from bot.conversation import texts
from bot.conversation.replies import ButtonSpec, Message, Photo, Voice
from bot.i18n import translator_for
from tests.fakes.fake_bot_api import TINY_PNG
from tests.fakes.fake_graph_api import FakeGraphAPI

WA = "966500000001"
CHOOSE = "اختر"  # what a caller passes from the catalogs


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as fake:
        yield fake


@pytest.fixture
async def client(graph: FakeGraphAPI) -> AsyncIterator[GraphClient]:
    c = GraphClient(graph.root_url, graph.version, graph.phone_number_id, graph.token)
    await c.initialize()
    try:
        yield c
    finally:
        await c.shutdown()


def _buttons(n: int) -> tuple[tuple[ButtonSpec, ...], ...]:
    return (tuple(ButtonSpec(f"Choice {i}", f"d{i}") for i in range(n)),)


async def test_text(graph: FakeGraphAPI, client: GraphClient) -> None:
    [wamid] = await deliver(client, WA, Message("مرحبا"), CHOOSE)
    [seen] = graph.sent_to(WA)
    assert (seen.id, seen.type, seen.text, seen.buttons) == (wamid, "text", "مرحبا", ())


async def test_two_buttons_from_the_engine(graph: FakeGraphAPI, client: GraphClient) -> None:
    tr = translator_for("ar")
    await deliver(client, WA, Message("الرمز", texts.new_code_buttons(tr)), CHOOSE)
    [seen] = graph.sent_to(WA)
    assert seen.type == "interactive" and seen.payload["interactive"]["type"] == "button"
    assert seen.buttons == tuple(b.label for row in texts.new_code_buttons(tr) for b in row)
    assert seen.button_ids == tuple(b.data for row in texts.new_code_buttons(tr) for b in row)


async def test_three_buttons(graph: FakeGraphAPI, client: GraphClient) -> None:
    await deliver(client, WA, Message("pick", _buttons(3)), CHOOSE)
    [seen] = graph.sent_to(WA)
    assert seen.buttons == ("Choice 0", "Choice 1", "Choice 2") and not seen.list_button


async def test_greeting_four_buttons_is_a_list(graph: FakeGraphAPI, client: GraphClient) -> None:
    tr = translator_for("ar")
    reply = texts.greeting(tr)
    await deliver(client, WA, reply, CHOOSE)
    [seen] = graph.sent_to(WA)
    assert seen.payload["interactive"]["type"] == "list"
    assert seen.text == reply.text and seen.list_button == CHOOSE
    assert seen.buttons == tuple(b.label for row in reply.buttons for b in row)


async def test_ten_rows_and_more(graph: FakeGraphAPI, client: GraphClient) -> None:
    await deliver(client, WA, Message("pick", _buttons(10)), CHOOSE)
    assert len(graph.sent_to(WA)[0].buttons) == 10
    with pytest.raises(ValueError, match="at most 10"):
        payloads(WA, Message("pick", _buttons(11)), CHOOSE)


async def test_photo_with_buttons_is_one_message(graph: FakeGraphAPI, client: GraphClient) -> None:
    tr = translator_for("ar")
    reply = Photo(TINY_PNG, "اكتب الرمز", texts.new_code_buttons(tr), alt="code")
    await deliver(client, WA, reply, CHOOSE)
    [upload] = graph.calls_to("media")
    assert upload.body["type"] == "image/png" and upload.body["file"] == TINY_PNG
    [seen] = graph.sent_to(WA)
    assert seen.type == "interactive" and seen.media == TINY_PNG and seen.text == "اكتب الرمز"
    assert len(seen.buttons) == 2


async def test_photo_plain_and_with_a_list(graph: FakeGraphAPI, client: GraphClient) -> None:
    await deliver(client, WA, Photo(TINY_PNG, "caption"), CHOOSE)
    await deliver(client, WA, Photo(TINY_PNG, "caption", _buttons(5)), CHOOSE)
    plain, image, choices = graph.sent_to(WA)
    assert (plain.type, plain.text, plain.media) == ("image", "caption", TINY_PNG)
    assert (image.type, image.text, image.media) == ("image", "", TINY_PNG)
    assert choices.text == "caption" and len(choices.buttons) == 5


async def test_voice_with_buttons(graph: FakeGraphAPI, client: GraphClient) -> None:
    ogg = render_ogg("123456", "ar")
    tr = translator_for("ar")
    await deliver(client, WA, Voice(ogg, "استمع", texts.new_code_buttons(tr)), CHOOSE)
    audio, choices = graph.sent_to(WA)
    assert (audio.type, audio.media, audio.media_type) == ("audio", ogg, "audio/ogg")
    assert choices.text == "استمع" and len(choices.buttons) == 2


async def test_long_body_with_buttons(graph: FakeGraphAPI, client: GraphClient) -> None:
    text = "\n".join(["سطر طويل " * 10] * 20)
    assert 1024 < len(text) <= 4096
    await deliver(client, WA, Message(text, _buttons(2)), CHOOSE)
    whole, choices = graph.sent_to(WA)
    assert whole.type == "text" and whole.text == text
    assert choices.text == CHOOSE and choices.buttons == ("Choice 0", "Choice 1")


async def test_very_long_text_is_split(graph: FakeGraphAPI, client: GraphClient) -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(100))
    await deliver(client, WA, Message(text), CHOOSE)
    seen = graph.sent_to(WA)
    assert len(seen) == 3 and all(len(s.text) <= 4096 for s in seen)
    assert "\n".join(s.text for s in seen) == text


def _interactive(buttons: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "messaging_product": "whatsapp",
        "to": WA,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "x"},
            "action": {
                "buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in buttons]
            },
        },
    }


async def test_fake_refuses_what_meta_refuses(graph: FakeGraphAPI, client: GraphClient) -> None:
    with pytest.raises(GraphError) as long_title:
        await client.send(_interactive([("a", "t" * 21)]))
    assert (long_title.value.status, long_title.value.code) == (400, 131009)
    with pytest.raises(GraphError, match="unique"):
        await client.send(_interactive([("a", "same"), ("b", "same")]))
    with pytest.raises(GraphError, match="at most 3"):
        await client.send(_interactive([(str(i), str(i)) for i in range(4)]))
    rows = [{"id": str(i), "title": f"row {i}"} for i in range(11)]
    eleven = {
        "messaging_product": "whatsapp",
        "to": WA,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "x"},
            "action": {"button": "b", "sections": [{"rows": rows}]},
        },
    }
    with pytest.raises(GraphError, match="at most 10"):
        await client.send(eleven)
    with pytest.raises(GraphError, match="4096"):
        await client.send(payloads(WA, Message("x"), CHOOSE)[0] | {"text": {"body": "x" * 4097}})
    with pytest.raises(GraphError) as no_product:
        await client.send({"to": WA, "type": "text", "text": {"body": "x"}})
    assert no_product.value.code == 100
    with pytest.raises(GraphError, match="unknown media"):
        await client.send(payloads(WA, Photo(TINY_PNG), CHOOSE, media_id="123")[0])
    with pytest.raises(GraphError, match="Opus") as wav:
        await client.upload(b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/ogg", "a.ogg")
    assert wav.value.code == 131053
    with pytest.raises(GraphError, match="unsupported"):
        await client.upload(b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav", "a.wav")
    with pytest.raises(GraphError, match="not image/png"):
        await client.upload(b"GIF89a", "image/png", "a.png")
    assert graph.sent_to(WA) == [] and graph.media == {}


async def test_injected_rate_limit(graph: FakeGraphAPI, client: GraphClient) -> None:
    graph.inject_error("messages", code=130429, status=429, message="Rate limit hit")
    with pytest.raises(GraphError) as err:
        await deliver(client, WA, Message("hi"), CHOOSE)
    assert (err.value.status, err.value.code, err.value.transient) == (429, 130429, True)
    await deliver(client, WA, Message("hi"), CHOOSE)  # one fault only
    assert [s.text for s in graph.sent_to(WA)] == ["hi"]


async def test_wrong_token_and_timeout(graph: FakeGraphAPI) -> None:
    bad = GraphClient(graph.root_url, graph.version, graph.phone_number_id, "wrong")
    slow = GraphClient(
        graph.root_url, graph.version, graph.phone_number_id, graph.token, read_timeout=0.1
    )
    await bad.initialize()
    await slow.initialize()
    try:
        with pytest.raises(GraphError) as err:
            await bad.send(payloads(WA, Message("x"), CHOOSE)[0])
        assert (err.value.status, err.value.code) == (401, 190)
        graph.set_delay("messages", 0.5)
        with pytest.raises(GraphUnavailable):
            await slow.send(payloads(WA, Message("x"), CHOOSE)[0])
    finally:
        await bad.shutdown()
        await slow.shutdown()


async def test_unreachable() -> None:
    client = GraphClient("http://127.0.0.1:9", "v25.0", "1", "t")
    await client.initialize()
    try:
        with pytest.raises(GraphUnavailable):
            await client.send({"messaging_product": "whatsapp"})
    finally:
        await client.shutdown()


async def test_mark_read(graph: FakeGraphAPI, client: GraphClient) -> None:
    inbound = graph.inbound_text(WA, "مرحبا")
    wamid = inbound["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    await client.mark_read(wamid)
    assert graph.read == [wamid]
    with pytest.raises(GraphError):
        await client.mark_read("wamid.unknown")


async def test_token_never_logged(
    graph: FakeGraphAPI, client: GraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    graph.inject_error("messages", code=131026, message="Message undeliverable")
    with pytest.raises(GraphError) as err:
        await deliver(client, WA, Message("x"), CHOOSE)
    logging.getLogger("test").exception("send failed", exc_info=err.value)
    await deliver(client, WA, Photo(TINY_PNG, "c", _buttons(2)), CHOOSE)
    assert graph.token not in caplog.text
    assert graph.token not in repr(client) and graph.token not in str(err.value)


def test_inbound_helpers() -> None:
    graph = FakeGraphAPI()
    text = graph.inbound_text(WA, "hi")
    button = graph.inbound_button(WA, "d1", "Choice")
    listed = graph.inbound_list(WA, "d2", "Row")
    other = graph.inbound_other(WA, "sticker")
    messages = [p["entry"][0]["changes"][0]["value"]["messages"][0] for p in
                (text, button, listed, other)]  # fmt: skip
    assert len({m["id"] for m in messages}) == 4
    assert messages[0]["text"] == {"body": "hi"} and messages[0]["from"] == WA
    assert messages[1]["interactive"]["button_reply"] == {"id": "d1", "title": "Choice"}
    assert messages[2]["interactive"]["list_reply"] == {"id": "d2", "title": "Row"}
    assert messages[3]["type"] == "sticker"
    value = text["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == graph.phone_number_id
    body = FakeGraphAPI.encode(text)
    assert json.loads(body) == text
    assert FakeGraphAPI.sign(body, "s").startswith("sha256=")
    assert len(FakeGraphAPI.sign(body, "s")) == len("sha256=") + 64


def test_a_proxys_408_or_429_without_a_graph_error_is_transient() -> None:
    from bot.channels.whatsapp_api import GraphError

    assert GraphError(429, 0, "HTTP 429 without a Graph error object").transient
    assert GraphError(408, 0, "HTTP 408").transient
    assert not GraphError(400, 0, "HTTP 400").transient
