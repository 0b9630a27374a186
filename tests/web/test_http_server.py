"""The project's HTTP server: answers on kept-alive connections are not held back by Nagle."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import ClientSession, TCPConnector

from bot.http import build_http_app, http_server


async def test_every_accepted_connection_has_tcp_nodelay() -> None:
    server = http_server(build_http_app(), "127.0.0.1", 0)
    # The listening socket says protocol 0, which is why asyncio alone would not set it.
    assert server.socket.proto == 0
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{server.port}/healthz"
        # One kept-alive connection, several requests on it.
        async with ClientSession(connector=TCPConnector(limit=1)) as http:
            for _ in range(3):
                async with http.get(url) as response:
                    assert response.status == 200
            connections = list(server.server.server_state.connections)
            assert len(connections) == 1
            sock = connections[0].transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.stop()
        await serving
