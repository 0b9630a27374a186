"""A thin client of the WhatsApp Cloud API (Meta's Graph API): send, upload media, mark read.

One aiohttp session with a bounded pool, as bot/channels/telegram_http.py does for the Bot API:
no `trust_env` (proxies are read once from the environment when the session starts), no cookie
jar (the Graph API sets none worth keeping). It only moves JSON: bot/channels/whatsapp_render.py
builds the payloads.

Errors: an answer with Graph's error object (`{"error": {"code", "message", "error_subcode"?}}`)
raises `GraphError` with the HTTP status and Meta's code (130429 too many messages, 131026
undeliverable, 131047 outside the 24-hour window, 190 bad token...); time-outs, refused
connections and 5xx answers without an error object raise `GraphUnavailable`. The access token
goes in the Authorization header only: never in a URL, an exception or a log line.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.channels.proxies import ProxyChoice

JSONDict = dict[str, Any]

# Meta's codes that mean "later", not "never" (throughput, pair rate, temporary errors).
TRANSIENT_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004})


class GraphError(Exception):
    """The Graph API refused a call: HTTP `status`, Meta's `code` (and `subcode` if any)."""

    def __init__(self, status: int, code: int, message: str, *, subcode: int | None = None) -> None:
        super().__init__(f"Graph API error {code} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode

    @property
    def transient(self) -> bool:
        """Worth trying again later (rate limits, Meta's temporary failures)."""
        # 408 and 429 without a Graph error object come from a proxy in between: also later.
        return self.code in TRANSIENT_CODES or self.status >= 500 or self.status in (408, 429)


class GraphUnavailable(Exception):
    """No usable answer: time-out, network error, or a 5xx/non-JSON answer from a proxy."""


class GraphClient:
    """Calls for one business phone number, over one aiohttp session."""

    __slots__ = (
        "_api_url",
        "_connect_timeout",
        "_headers",
        "_phone_number_id",
        "_pool_size",
        "_proxies",
        "_read_timeout",
        "_session",
        "_version",
    )

    def __init__(
        self,
        api_url: str,
        version: str,
        phone_number_id: str,
        access_token: str,
        *,
        pool_size: int = 32,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._version = version.strip("/")
        self._phone_number_id = phone_number_id
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies = ProxyChoice({})

    def __repr__(self) -> str:  # the token stays out of tracebacks with locals and debuggers
        return f"GraphClient({self._api_url!r}, {self._version!r}, {self._phone_number_id!r})"

    def _url(self, edge: str) -> str:
        return f"{self._api_url}/{self._version}/{self._phone_number_id}/{edge}"

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(
                    # A bound on the whole call: a server trickling bytes cannot hold it.
                    total=self._connect_timeout + self._read_timeout + 5,
                    connect=self._connect_timeout,
                    sock_connect=self._connect_timeout,
                    sock_read=self._read_timeout,
                ),
            )
            self._proxies = ProxyChoice.from_environment()

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def send(self, payload: JSONDict) -> str:
        """POST /messages; the id (`wamid...`) of the message sent."""
        answer = await self._post("messages", json_body=payload)
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as err:
            raise GraphUnavailable("Graph API answer without messages[0].id") from err

    async def upload(self, data: bytes, mime: str, filename: str) -> str:
        """POST /media (multipart); the media id to send by (Meta keeps it 30 days)."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", data, filename=filename, content_type=mime)
        answer = await self._post("media", form=form)
        try:
            return str(answer["id"])
        except (KeyError, TypeError) as err:
            raise GraphUnavailable("Graph API answer without a media id") from err

    async def mark_read(self, message_id: str) -> None:
        """Blue ticks on a person's message (also ends a typing indicator)."""
        await self._post(
            "messages",
            json_body={"messaging_product": "whatsapp", "status": "read", "message_id": message_id},
        )

    async def _post(
        self, edge: str, *, json_body: JSONDict | None = None, form: aiohttp.FormData | None = None
    ) -> JSONDict:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This GraphClient is not initialized")
        url = self._url(edge)
        data: aiohttp.FormData | bytes
        headers = dict(self._headers)
        if form is not None:
            data = form
        else:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with session.post(
                url, data=data, headers=headers, proxy=self._proxies.for_url(url)
            ) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError as err:  # aiohttp's time-outs are TimeoutErrors
            raise GraphUnavailable(f"Graph API timed out ({edge})") from err
        except aiohttp.ClientError as err:
            raise GraphUnavailable(f"Graph API unreachable ({edge}): {type(err).__name__}") from err
        return _answer(status, raw)


def _answer(status: int, raw: bytes) -> JSONDict:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if status >= 500 or status < 300:
            raise GraphUnavailable(f"Graph API answered HTTP {status} without JSON")
        raise GraphError(status, 0, f"HTTP {status} without a Graph error object")
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        subcode = error.get("error_subcode")
        message = error.get("message")
        details = error.get("error_data", {})
        if isinstance(details, dict) and details.get("details"):
            message = f"{message} ({details['details']})"
        raise GraphError(
            status,
            code if isinstance(code, int) else 0,
            str(message or ""),
            subcode=subcode if isinstance(subcode, int) else None,
        )
    if status >= 500:
        raise GraphUnavailable(f"Graph API answered HTTP {status}")
    if status >= 300:
        raise GraphError(status, 0, f"HTTP {status}")
    return body
