"""Bad client input against a real server on loopback port 0 (espeak): each case names its error
frame and close code. Client-caused input never ends in 1011 or a logged traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import pytest
from conftest import exchange, run
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

DEEP = "[" * 100_000 + "]" * 100_000
OPENER = {"text": " "}


def _url(base: str, voice: str = "espeak", *, path: str = "stream-input", query: str = "") -> str:
    return f"{base}/v1/text-to-speech/{voice}/{path}" + (f"?{query}" if query else "")


def test_deeply_nested_json_is_invalid_input_not_an_internal_error(
    local_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        result = run(exchange(_url(local_server), [OPENER, DEEP]))
    assert result.close_code == 1008
    assert [e["error"] for e in result.errors] == ["invalid_input_message"]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    "raw",
    ['{"text": "\\ud800 "}', '{"text": " ", "context_id": "\\udfff"}'],
    ids=["text", "context_id"],
)
def test_lone_surrogates_are_invalid_input(local_server: str, raw: str) -> None:
    result = run(exchange(_url(local_server, path="multi-stream-input"), [raw]))
    assert result.close_code == 1008
    assert [e["error"] for e in result.errors] == ["invalid_input_message"]


def test_invalid_utf8_is_invalid_input(local_server: str) -> None:
    async def scenario() -> tuple[list[dict], int | None]:
        async with connect(_url(local_server)) as ws:
            await ws.send(json.dumps(OPENER))
            await ws.send(b'{"text": "\xff\xfe"}', text=True)  # a text frame that is not UTF-8
            frames = []
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    frames.append(json.loads(message))
            return frames, ws.close_code

    frames, code = run(scenario())
    assert code == 1008
    assert [f.get("error") for f in frames] == ["invalid_input_message"]


def test_a_long_non_ascii_close_reason_is_cut_on_a_character_boundary(local_server: str) -> None:
    voice = "é" * 200  # an unknown voice id: the reason names it
    result = run(exchange(_url(local_server, voice=voice), [OPENER]))
    assert result.close_code == 1008
    assert [e["error"] for e in result.errors] == ["voice_not_found"]
    assert 0 < len(result.close_reason.encode()) <= 123


def test_after_a_bad_message_queued_input_is_discarded_and_the_close_is_prompt(local_server: str) -> None:
    async def scenario() -> tuple[list[dict], int | None]:
        async with connect(_url(local_server), max_size=None) as ws:
            await ws.send(json.dumps(OPENER))
            await ws.send("not json")
            filler = json.dumps({"text": "word " * 20_000})
            sender = asyncio.create_task(_send_all(ws, [filler] * 200))
            frames = []
            # A hang detector, not a speed check: the server's close timeout is 10 s.
            async with asyncio.timeout(5):
                with contextlib.suppress(ConnectionClosed):
                    async for message in ws:
                        frames.append(json.loads(message))
                await ws.wait_closed()
            sender.cancel()
            return frames, ws.close_code

    frames, code = run(scenario())
    assert code == 1008
    assert [f.get("error") for f in frames] == ["invalid_input_message"]


async def _send_all(ws: ClientConnection, messages: list[str]) -> None:
    with contextlib.suppress(ConnectionClosed):
        for message in messages:
            await ws.send(message)
