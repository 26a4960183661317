"""Exit codes come from the error type (chosen in the CLI); a refused handshake keeps its status, headers."""

from __future__ import annotations

import asyncio
import http

import pytest
from conftest import ServerThread
from typer.testing import CliRunner
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from elevtts.cli import app
from elevtts.cli.exit_codes import ExitCode, exit_code_for
from elevtts.client import Endpoint, Session, StreamOptions
from elevtts.errors import (
    AuthenticationError,
    BatchIncomplete,
    ConnectError,
    ConnectionDropped,
    ElevttsError,
    InactivityTimeout,
    IncompleteAudio,
    InputError,
    Interrupted,
    OutputError,
    ServerError,
    UsageError,
)
from elevtts.retry import is_retryable, retry_hint_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (InputError("x"), 3),
        (OutputError("x"), 4),
        (ConnectError("x"), 5),
        (AuthenticationError("x"), 6),
        (ServerError("x"), 7),
        (ConnectionDropped("x"), 8),
        (IncompleteAudio("x"), 8),
        (InactivityTimeout("x"), 9),
        (BatchIncomplete("x"), 10),
        (Interrupted("x"), 130),
    ],
)
def test_every_documented_exit_code(error: ElevttsError, code: int) -> None:
    assert exit_code_for(error) == code
    assert not hasattr(error, "exit_code")  # the library knows nothing of exit codes


@pytest.fixture
def busy_server() -> object:
    """A real server that refuses every handshake with 429 and a Retry-After header."""

    def refuse(connection: object, request: object) -> Response:
        headers = Headers([("Retry-After", "7"), ("Content-Type", "text/plain")])
        return Response(http.HTTPStatus.TOO_MANY_REQUESTS, "Too Many Requests", headers, b"slow down\n")

    async def factory() -> tuple[object, str]:
        server = await serve(lambda ws: ws.close(), "127.0.0.1", 0, process_request=refuse)
        port = next(iter(server.sockets)).getsockname()[1]
        return server, f"ws://127.0.0.1:{port}"

    thread = ServerThread(factory)
    url = thread.start()
    yield url
    thread.stop()


def test_a_refused_handshake_carries_its_status_and_headers(busy_server: str) -> None:
    async def connect() -> ConnectError:
        with pytest.raises(ConnectError) as caught:
            async with Session.open(Endpoint(busy_server), StreamOptions(voice_id="espeak")):
                pass
        return caught.value

    error = asyncio.run(connect())
    assert error.status == 429 and error.headers["retry-after"] == "7"
    assert retry_hint_for(error) == 7.0  # batch waits as the server asked
    assert is_retryable(error)
    result = CliRunner().invoke(app, ["speak", "--url", busy_server, "-q", "Hi."])
    assert result.exit_code == ExitCode.CONNECT and "HTTP 429" in result.stderr


def test_retry_after_as_an_http_date() -> None:
    error = ConnectError("busy", status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_hint_for(error) == 0.0  # a date in the past: no extra wait
    assert retry_hint_for(ConnectError("busy: retry after 3 s")) == 3.0  # the text's hint otherwise
