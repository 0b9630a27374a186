"""The project's single HTTP app: everything that listens (webhook, web chat, /healthz)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def build_http_app(routes: Sequence[BaseRoute] = ()) -> Starlette:
    """Each channel contributes its routes (Telegram webhook, web chat, later WhatsApp)."""
    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), *routes])
