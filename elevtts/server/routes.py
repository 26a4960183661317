"""Which HTTP request reaches what: the two WebSocket endpoints, `/v1/voices`, `/health`, refusals.

Pure: a request path in, a `WebSocketRoute` or a `JsonResponse` out. The HTTP layer (`server.http`)
asks it about every WebSocket upgrade (eleven_v3 refused, the connection limit, unknown endpoints).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from elevtts.protocol import MULTI_PATH, SINGLE_PATH

MODELS_WITHOUT_WEBSOCKET = frozenset({"eleven_v3"})


@dataclass(frozen=True)
class WebSocketRoute:
    voice_id: str
    multi: bool
    query: dict[str, str]


@dataclass(frozen=True)
class JsonResponse:
    status: HTTPStatus
    body: Any


def _detail(status: str, message: str) -> dict[str, Any]:
    return {"detail": {"status": status, "message": message}}


def endpoint(path: str) -> WebSocketRoute | None:
    """The WebSocket endpoint a path names, or None."""
    split = urlsplit(path)
    parts = split.path.strip("/").split("/")
    if len(parts) == 4 and parts[:2] == ["v1", "text-to-speech"] and parts[3] in (SINGLE_PATH, MULTI_PATH):
        return WebSocketRoute(unquote(parts[2]), parts[3] == MULTI_PATH, dict(parse_qsl(split.query)))
    return None


def route(
    path: str, *, voices: Callable[[], list[dict[str, Any]]], full: bool = False
) -> WebSocketRoute | JsonResponse:
    """Where a request goes; `voices` lists the served voices (only called for `/v1/voices`);
    `full`: the server has as many connections as it takes."""
    plain = urlsplit(path).path.rstrip("/")
    if plain == "/v1/voices":
        return JsonResponse(HTTPStatus.OK, {"voices": voices()})
    if plain in ("", "/health"):
        return JsonResponse(HTTPStatus.OK, {"status": "ok"})
    target = endpoint(path)
    if target is None:
        return JsonResponse(HTTPStatus.NOT_FOUND, _detail("not_found", "no such path"))
    model = target.query.get("model_id")
    if model in MODELS_WITHOUT_WEBSOCKET:
        message = f"model {model} is not available over WebSockets"
        return JsonResponse(HTTPStatus.FORBIDDEN, _detail("model_not_allowed", message))
    if full:
        message = "the server has as many connections as it takes; try again later"
        return JsonResponse(HTTPStatus.SERVICE_UNAVAILABLE, _detail("too_many_concurrent_requests", message))
    return target
