"""The project's single HTTP app: everything that listens (webhook, web chat, /healthz).

Channels contribute routes (`telegram.webhook_routes`, `web.web_routes`, later WhatsApp);
`build_http_app` puts them behind one Starlette app and `http_server` serves it with uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from uvicorn.protocols.http.auto import AutoHTTPProtocol

log = logging.getLogger(__name__)
# uvicorn logs its server's life (started, shutting down, an ASGI exception) as "uvicorn.error"
# at every level: "INFO uvicorn.error: Started server process" read like an error.
UVICORN_LOGGER = "uvicorn.error"


def parse_json(raw: bytes | bytearray | str) -> object:
    """The JSON value of a request body. ValueError for anything unreadable: not JSON, not
    UTF-8, or nested too deeply for the parser (its RecursionError is not a ValueError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# What /healthz reports: healthy or not, and the JSON body (the application core's
# `App.health`: the database and each channel).
HealthCheck = Callable[[], Awaitable[tuple[bool, Mapping[str, object]]]]


async def _nothing_to_check() -> tuple[bool, Mapping[str, object]]:
    return True, {"status": "ok"}


def health_route(check: HealthCheck = _nothing_to_check) -> Route:
    """GET /healthz: 200 with the report when healthy, 503 with it when not (a load balancer
    then sends the traffic to another instance)."""

    async def healthz(request: Request) -> Response:
        healthy, report = await check()
        return JSONResponse(dict(report), status_code=200 if healthy else 503)

    return Route("/healthz", healthz, methods=["GET"])


def build_http_app(
    routes: Sequence[BaseRoute] = (), health: HealthCheck = _nothing_to_check
) -> Starlette:
    """Each channel contributes its routes (Telegram webhook, web chat, WhatsApp webhook)."""
    return Starlette(routes=[health_route(health), *routes])


class _UnderOurName(logging.Filter):
    """Gives uvicorn's server records this module's name; the level still says what they are.
    (A logger's filter: the record then goes to the handlers as before, masked as before.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == UVICORN_LOGGER:
            record.name = __name__
        return True


def _log_under_our_name() -> None:
    logger = logging.getLogger(UVICORN_LOGGER)
    if not any(isinstance(f, _UnderOurName) for f in logger.filters):
        logger.addFilter(_UnderOurName())


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process entry point owns SIGINT/SIGTERM
    and stops the server itself (uvicorn would also re-raise the signal once it stopped,
    killing the process before the bot has shut down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _no_delay(protocol: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """`protocol` with TCP_NODELAY set on every connection it is given.

    asyncio sets it only on sockets whose protocol number is IPPROTO_TCP, and a socket from
    `socket.create_server` (or handed over by systemd) says 0. Without it, Nagle's algorithm
    and the client's delayed ACK hold each answer on a kept-alive connection about 44 ms:
    every web chat request and every webhook update paid that.
    """

    class NoDelay(protocol):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

    NoDelay.__name__ = f"NoDelay{protocol.__name__}"
    return NoDelay


class HttpServer:
    """A uvicorn server on a socket bound up front, so a taken port is a plain OSError here
    (uvicorn itself would call sys.exit from inside the event loop)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family)
        self.host, self.port = host, self.socket.getsockname()[1]
        _log_under_our_name()
        config = uvicorn.Config(
            app,
            # log_config=None keeps the project's logging (and its identity-number mask);
            # no access log: paths and client addresses are not worth keeping.
            log_config=None,
            access_log=False,
            server_header=False,
            # Client addresses are the socket's; X-Forwarded-For is believed only from
            # TRUSTED_PROXIES, by the web chat itself (uvicorn would trust any local peer).
            proxy_headers=False,
            http=_no_delay(AutoHTTPProtocol),
            lifespan="auto",
        )
        self.server = _Server(config)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def started(self) -> bool:
        return self.server.started

    async def serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.socket])
        finally:
            self.socket.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.Task[None]]:
        """Serve in a task, yielded once the server listens; stopped gracefully at the end.
        RuntimeError if it stops while starting (its own error first, if it raised one)."""
        task = asyncio.create_task(self.serve(), name="http-server")
        try:
            while not self.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the HTTP server stopped while starting")
                await asyncio.sleep(0.01)
            log.info("Listening on %s", self.url)
            yield task
        finally:
            self.stop()
            with contextlib.suppress(Exception):
                await task

    def stop(self) -> None:
        """Stop gracefully: no new connections, answer those in flight, then return."""
        self.server.should_exit = True

    def stop_now(self) -> None:
        """Stop without waiting for open connections (a second Ctrl+C)."""
        self.server.should_exit = self.server.force_exit = True


def http_server(app: Starlette, host: str, port: int) -> HttpServer:
    return HttpServer(app, host, port)
