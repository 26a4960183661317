"""API keys never reach a log line: every logger, every position, fragments of elided frames too.

The live tests run `elevtts serve --log-level debug` (websockets logs every header and frame at
that level) and a library client with the root logger at DEBUG, then read every line they wrote.
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import exchange, run, run_local_server
from test_security import BOS, EOS, KEY, Served, ServerConfig, clean_env, serving, stream_url

from elevtts.redact import MIN_FRAGMENT, RedactSecrets, redact

assert len(KEY) == 51


def fragments(text: str, secret: str = KEY) -> list[str]:
    """Every piece of `secret` of MIN_FRAGMENT characters or more that `text` shows."""
    return [
        secret[i : i + MIN_FRAGMENT]
        for i in range(len(secret) - MIN_FRAGMENT + 1)
        if secret[i : i + MIN_FRAGMENT] in text
    ]


# ---------------------------------------------------------------------------------------------
# The pure rule


@pytest.mark.parametrize(
    "line",
    [
        f"> xi-api-key: {KEY}",
        f"< xi-api-key:  {KEY}",
        f"> Authorization: Bearer {KEY}",
        f"< GET /v1/text-to-speech/espeak/stream-input?authorization={KEY}&model_id=x HTTP/1.1",
        f'< TEXT \'{{"text": " ", "xi_api_key": "{KEY}"}}\' [80 bytes]',
        f'< TEXT \'{{"text": " ", "xi-api-key": "{KEY}"}}\' [80 bytes]',
        f'< TEXT \'{{"text": " ", "authorization": "Bearer {KEY}"}}\' [80 bytes]',
    ],
)
def test_named_values_are_hidden_even_when_the_key_is_unknown(line: str) -> None:
    hidden = redact(line)
    assert fragments(hidden) == [] and "***" in hidden


def test_a_known_key_is_hidden_anywhere_and_in_pieces() -> None:
    elided = f'< TEXT \'{{"text": " ", "voice_settings": {{"stability": 0.5...{KEY[-21:]}"}}\' [190 bytes]'
    for line in (f"token {KEY} and again {KEY}", elided, f"{KEY[:30]} ... {KEY[30:]}"):
        assert fragments(redact(line, secrets=[KEY])) == [], line
    assert redact("nothing secret here", secrets=[KEY]) == "nothing secret here"


def test_every_logger_hides_a_registered_key_even_split_across_arguments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    RedactSecrets(KEY)  # what `serve --api-key` does: registers the key for every logger
    caplog.set_level(logging.DEBUG)
    logging.getLogger("some.library").debug("key=%s%s", KEY[:20], KEY[20:])
    logging.getLogger().warning("the whole key: %s", KEY)
    try:
        raise RuntimeError(f"failed with {KEY}")
    except RuntimeError:
        logging.getLogger("elevtts.anything").exception("boom")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "key=***" in text and "boom" in text
    assert fragments(text) == []


# ---------------------------------------------------------------------------------------------
# Live: a server and a client at DEBUG, the key in every position


@pytest.fixture
def debug_server(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path, "--voice", "espeak", "--api-key", KEY, "--log-level", "debug") as server:
        yield server


def test_a_debug_server_log_shows_no_piece_of_the_key(tmp_path: Path, debug_server: Served) -> None:
    server = debug_server
    padding = {"voice_settings": {"stability": 0.5, "similarity_boost": 0.8, "speed": 1.0}}
    attempts = [  # (query, headers, opener): long openers get elided in the frame log
        ({}, {"xi-api-key": KEY}, BOS),
        ({}, {"xi-api-key": " " + KEY}, BOS),
        ({}, {"Authorization": f"Bearer {KEY}"}, BOS),
        ({"authorization": KEY}, {}, BOS),
        ({}, {}, {**BOS, **padding, "xi_api_key": KEY}),
        ({}, {}, {**BOS, **padding, "xi-api-key": KEY}),
        ({}, {}, {**BOS, **padding, "authorization": f"Bearer {KEY}"}),
        ({}, {}, {**BOS, "xi_api_key": KEY}),
    ]
    for query, headers, opener in attempts:
        result = run(
            exchange(stream_url(server.url, **query), [opener, {"text": "Hi. "}, EOS], headers=headers)
        )
        assert result.close_code == 1000, (query, headers, opener, result.frames)
    server.stop()
    logs = server.logs()
    assert "< TEXT" in logs and "xi-api-key" in logs  # the debug lines are there...
    assert fragments(logs) == []  # ...without any piece of the key


SPEAK = ["--voice", "espeak", "-d", ".", "--name", "out", "--json"]
CLIENT_AT_DEBUG = """
import asyncio, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from elevtts.cli import app
app(sys.argv[1:], prog_name="elevtts")
"""


def test_speak_at_debug_level_shows_no_piece_of_the_key(tmp_path: Path, debug_server: Served) -> None:
    server = debug_server
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_AT_DEBUG, "speak", "--url", server.url, *SPEAK, "Debugging."],
        cwd=tmp_path,
        env=clean_env(ELEVENLABS_API_KEY=KEY),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "> xi-api-key: ***" in result.stderr  # websockets logged the header, hidden
    outputs = (
        result.stdout
        + result.stderr
        + "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.json"))
    )
    assert json.loads(result.stdout)["ok"] is True
    assert fragments(outputs) == []


def test_a_library_server_at_debug_hides_a_key_it_only_saw_in_an_elided_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk_" + secrets.token_hex(24)  # registered nowhere: the server must find it itself
    thread, url = run_local_server(ServerConfig(port=0, api_key=key, voices=("espeak",)))
    caplog.set_level(logging.DEBUG)
    try:
        padding = {"voice_settings": {"stability": 0.5, "similarity_boost": 0.8, "speed": 1.0}}
        opener = {**BOS, **padding, "xi_api_key": key}  # long enough for websockets to elide it
        result = run(exchange(stream_url(url), [opener, {"text": "Hi. "}, EOS]))
    finally:
        thread.stop()
    assert result.close_code == 1000
    logged = caplog.text
    assert "< TEXT" in logged and "..." in logged  # the elided frame was logged...
    assert fragments(logged, key) == []  # ...without the tail of the key
