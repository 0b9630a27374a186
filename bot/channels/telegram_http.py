"""The HTTP client the bot talks to the Bot API with: aiohttp behind PTB's `BaseRequest`.

Why not PTB's default (httpx): bench/conversation.py, same bot, 500 people at once, CPU of the
bot process per lookup (five Bot API calls): httpx 15 ms with no network delay and 64 ms with
100 ms per call (16 lookups/s); aiohttp 5.2 ms and 5.8 ms (141 and 99 lookups/s). httpcore
checks every pooled connection (a poll() and a getpeername() each) on every request, so its
cost grows with the pool a concurrent bot needs when Telegram is 50-200 ms away, and anyio adds
layers to every read and write; aiohttp hands out a pooled connection in O(1).

`BaseRequest` is PTB's documented extension point: PTB still builds the requests, parses the
answers and raises its own errors; this only moves bytes.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.channels.proxies import ProxyChoice

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# "Not passed" marker of PTB's timeouts (documented as BaseRequest.DEFAULT_NONE; its class
# lives in a private module).
_NotPassed = type(BaseRequest.DEFAULT_NONE)


class AiohttpRequest(BaseRequest):
    """Bot API calls over one aiohttp session with a bounded connection pool.

    Timeouts follow PTB's meaning: `connect` to open a connection, `read` to wait for the
    answer (getUpdates adds its long-poll time to it), `pool` to wait for a free connection.
    aiohttp has no separate write timeout; a stalled upload ends at the read timeout.
    Proxies: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment, like httpx, read once
    when the session starts: aiohttp's own `trust_env` reads them and netrc again, in a
    thread, for every request (14% of the bot's CPU under load).
    """

    __slots__ = ("_connect", "_pool", "_pool_size", "_proxies", "_read", "_session")

    def __init__(
        self,
        connection_pool_size: int = 1,
        *,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies = ProxyChoice({})

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                # The Bot API sets no cookies; a real jar filters them on every request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._proxies = ProxyChoice.from_environment()

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = self._read if isinstance(read_timeout, _NotPassed) else read_timeout
        connect = self._connect if isinstance(connect_timeout, _NotPassed) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, _NotPassed) else pool_timeout
        # aiohttp's `connect` covers waiting for a pooled connection and opening a new one.
        acquire = None if pool is None or connect is None else pool + connect
        timeout = aiohttp.ClientTimeout(
            total=None, connect=acquire, sock_connect=connect, sock_read=read
        )
        data: aiohttp.FormData | bytes | None = None
        headers = None
        if request_data is not None:
            if request_data.contains_files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in request_data.multipart_data.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
            else:
                # The same form body httpx sends; encoded here because aiohttp would build a
                # multipart writer (and read os.urandom for its boundary) for every dict.
                data = request_data.url_encoded_parameters().encode()
                headers = _FORM
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                proxy=self._proxies.for_url(url),
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
