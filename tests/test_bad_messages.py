"""Bad client input against a real server on loopback port 0 (espeak): each case names its error
frame and close code. Client-caused input never ends in 1011 or a logged traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import exchange, run, run_local_server
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from elevtts.server.app import ServerConfig

DEEP = "[" * 100_000 + "]" * 100_000
OPENER = {"text": " "}


def _url(base: str, voice: str = "espeak", *, path: str = "stream-input", query: str = "") -> str:
    return f"{base}/v1/text-to-speech/{voice}/{path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Case:
    """A connection that must end in `error` (None: no error frame) and close `code`."""

    messages: tuple[Any, ...]  # dicts go as JSON; str as a text frame; bytes as a binary frame; floats sleep
    error: str | None
    code: int = 1008
    path: str = "stream-input"
    voice: str = "espeak"
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    server: str = "local"


MULTI = "multi-stream-input"
VS = "voice_settings"
GC = "generation_config"
LOC = "pronunciation_dictionary_locators"
BAD = "invalid_input_message"

CASES: dict[str, Case] = {
    # -- not a JSON object
    "not_json": Case(("not json",), BAD),
    "truncated_json": Case(('{"text": "abc"',), BAD),
    "json_array": Case(("[1, 2]",), BAD),
    "json_string": Case(('"text"',), BAD),
    "json_number": Case(("42",), BAD),
    "json_null": Case(("null",), BAD),
    "empty_object": Case(("{}",), BAD),
    "unknown_fields_only": Case(({"hello": "world"},), BAD),
    "deep_nesting": Case((DEEP,), BAD),
    "deep_nesting_in_a_field": Case(('{"text": " ", "x": ' + "[" * 50_000 + "]" * 50_000 + "}",), BAD),
    "invalid_utf8_binary": Case((b'{"text": "\xff"}',), BAD),
    "binary_garbage": Case((bytes(range(256)),), BAD),
    "lone_surrogate_in_text": Case(('{"text": "\\ud800 "}',), BAD),
    "lone_surrogate_low_in_text": Case(('{"text": "a\\udfffb "}',), BAD),
    "lone_surrogate_in_context_id": Case(('{"text": " ", "context_id": "\\ud800"}',), BAD, path=MULTI),
    "lone_surrogate_in_key": Case(('{"text": " ", "xi_api_key": "\\ud800"}',), BAD),
    "lone_surrogate_in_dictionary_id": Case(
        ('{"text": " ", "pronunciation_dictionary_locators": [{"pronunciation_dictionary_id": "\\ud800"}]}',),
        BAD,
    ),
    # -- fields of the wrong type or out of range
    "text_number": Case(({"text": 5},), BAD),
    "text_list": Case(({"text": ["a"]},), BAD),
    "text_object": Case(({"text": {"a": 1}},), BAD),
    "flush_string": Case(({"text": " ", "flush": "yes"},), BAD),
    "flush_number": Case(({"text": " ", "flush": 1},), BAD),
    "try_trigger_string": Case(({"text": " ", "try_trigger_generation": "true"},), BAD),
    "voice_settings_list": Case(({"text": " ", VS: [1]},), BAD),
    "stability_above_one": Case(({"text": " ", VS: {"stability": 1.5}},), BAD),
    "stability_string": Case(({"text": " ", VS: {"stability": "high"}},), BAD),
    "stability_bool": Case(({"text": " ", VS: {"stability": True}},), BAD),
    "speed_too_fast": Case(({"text": " ", VS: {"speed": 2.0}},), BAD),
    "speed_too_slow": Case(({"text": " ", VS: {"speed": 0.1}},), BAD),
    "speed_nan": Case(('{"text": " ", "voice_settings": {"speed": NaN}}',), BAD),
    "speed_infinity": Case(('{"text": " ", "voice_settings": {"speed": Infinity}}',), BAD),
    "similarity_negative": Case(({"text": " ", VS: {"similarity_boost": -0.1}},), BAD),
    "speaker_boost_string": Case(({"text": " ", VS: {"use_speaker_boost": "yes"}},), BAD),
    "generation_config_list": Case(({"text": " ", GC: [120]},), BAD),
    "schedule_empty": Case(
        ({"text": " ", GC: {"chunk_length_schedule": []}},), "invalid_chunk_length_schedule"
    ),
    "schedule_too_small": Case(
        ({"text": " ", GC: {"chunk_length_schedule": [10]}},), "invalid_chunk_length_schedule"
    ),
    "schedule_too_large": Case(
        ({"text": " ", GC: {"chunk_length_schedule": [900]}},), "invalid_chunk_length_schedule"
    ),
    "schedule_string": Case(
        ({"text": " ", GC: {"chunk_length_schedule": "120"}},), "invalid_chunk_length_schedule"
    ),
    "schedule_bools": Case(
        ({"text": " ", GC: {"chunk_length_schedule": [True]}},), "invalid_chunk_length_schedule"
    ),
    "locators_not_a_list": Case(({"text": " ", LOC: "dict"},), BAD),
    "locator_without_id": Case(({"text": " ", LOC: [{"version_id": "v"}]},), BAD),
    "locator_version_number": Case(
        ({"text": " ", LOC: [{"pronunciation_dictionary_id": "d", "version_id": 3}]},), BAD
    ),
    "four_locators": Case(
        ({"text": " ", LOC: [{"pronunciation_dictionary_id": f"d{i}"} for i in range(4)]},),
        "invalid_pronunciation_dictionary_locators",
    ),
    "unknown_dictionary": Case(
        ({"text": " ", LOC: [{"pronunciation_dictionary_id": "nope"}]},), "pronunciation_dictionary_not_found"
    ),
    "key_number": Case(({"text": " ", "xi_api_key": 42},), BAD),
    "authorization_list": Case(({"text": " ", "authorization": ["Bearer x"]},), BAD),
    # -- rules of the conversation
    "voice_settings_changed": Case(
        ({"text": " ", VS: {"speed": 1.0}}, {"text": "a ", VS: {"speed": 1.1}}), BAD
    ),
    "schedule_changed": Case(
        (
            {"text": " ", GC: {"chunk_length_schedule": [120]}},
            {"text": "a ", GC: {"chunk_length_schedule": [200]}},
        ),
        BAD,
    ),
    "bad_message_after_good_ones": Case(({"text": " "}, {"text": "Hello "}, "oops"), BAD),
    "inactivity": Case(
        ({"text": "Buffered words. "}, 1.0), "input_timeout_exceeded", query="inactivity_timeout=0.1"
    ),
    # -- multi-context
    "multi_context_id_number": Case(({"text": " ", "context_id": 7},), BAD, path=MULTI),
    "multi_close_context_string": Case(({"context_id": "a", "close_context": "yes"},), BAD, path=MULTI),
    "multi_close_socket_number": Case(({"close_socket": 1},), BAD, path=MULTI),
    "multi_six_contexts": Case(
        tuple({"text": " ", "context_id": f"c{i}"} for i in range(6)), "max_active_conversations", path=MULTI
    ),
    "multi_settings_changed": Case(
        (
            {"text": " ", "context_id": "a", VS: {"speed": 1.0}},
            {"text": "b ", "context_id": "a", VS: {"speed": 0.8}},
        ),
        BAD,
        path=MULTI,
    ),
    # -- the handshake
    "unknown_voice": Case((OPENER,), "voice_not_found", voice="Rachel"),
    "unknown_voice_long_non_ascii": Case((OPENER,), "voice_not_found", voice="é" * 200),
    "unknown_output_format": Case((OPENER,), "invalid_output_format", query="output_format=mp3_1_2"),
    "unknown_language_code": Case((OPENER,), "invalid_request", query="language_code=xx"),
    "wav_output_format": Case((OPENER,), "invalid_output_format", query="output_format=wav_44100"),
    "inactivity_timeout_zero": Case((OPENER,), "invalid_request", query="inactivity_timeout=0"),
    "inactivity_timeout_too_long": Case((OPENER,), "invalid_request", query="inactivity_timeout=181"),
    "inactivity_timeout_word": Case((OPENER,), "invalid_request", query="inactivity_timeout=soon"),
    "seed_negative": Case((OPENER,), "invalid_request", query="seed=-1"),
    "seed_non_ascii": Case((OPENER,), "invalid_request", query="seed=" + "%C3%A9" * 100),
    "auto_mode_maybe": Case((OPENER,), "invalid_request", query="auto_mode=maybe"),
    "normalization_sometimes": Case((OPENER,), "invalid_request", query="apply_text_normalization=sometimes"),
    # -- the key (a server with one)
    "key_missing": Case((OPENER,), "invalid_api_key", server="keyed"),
    "key_wrong_in_message": Case(
        ({"text": " ", "xi_api_key": "open sesame"},), "invalid_api_key", server="keyed"
    ),
    "key_wrong_in_header": Case((OPENER,), "invalid_api_key", headers={"xi-api-key": "nope"}, server="keyed"),
    "key_wrong_bearer": Case(
        (OPENER,), "invalid_api_key", headers={"Authorization": "Bearer no"}, server="keyed"
    ),
    "key_wrong_in_query": Case(
        (OPENER,), "invalid_api_key", query="authorization=Bearer%20no", server="keyed"
    ),
    # -- size: the WebSocket layer refuses it, with no error frame
    "message_too_big": Case(({"text": "x" * 5000},), None, code=1009, server="small"),
}


@pytest.fixture(scope="module")
def small_server() -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), max_message_bytes=1000))
    yield url
    thread.stop()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_message(
    name: str,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case = CASES[name]
    base = request.getfixturevalue(
        {"local": "local_server", "keyed": "keyed_server", "small": "small_server"}[case.server]
    )
    url = _url(base, case.voice, path=case.path, query=case.query)
    with caplog.at_level(logging.INFO):
        result = run(exchange(url, list(case.messages), headers=case.headers, timeout=30))
    assert result.close_code == case.code, (result.close_code, result.close_reason)
    errors = [(e["error"], e["code"]) for e in result.errors]
    assert errors == ([] if case.error is None else [(case.error, case.code)])
    assert len(result.close_reason.encode()) <= 123
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [f for f in result.frames if f.get("isFinal")]


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40


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
