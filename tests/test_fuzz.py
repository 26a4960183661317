"""Hypothesis fuzzing: the message parser, the session in every state after an opener, and a live
connection, each with a bounded number of examples so the default run stays fast.

What must hold: bad input is a `ProtocolError` with close code 1008 (never another exception),
the session never reports an internal error, and a live server never closes with 1011, never logs
a traceback, and keeps serving a well-behaved client at the same time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import exchange
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_session import _timing

from elevtts.protocol import ClientMessage, ProtocolError, parse_client_message
from elevtts.server.pacing import Pacer
from elevtts.server.session import Fail, FinishAudio, Session, SessionRules, Synthesize

FIELDS = (
    "text",
    "flush",
    "try_trigger_generation",
    "voice_settings",
    "generation_config",
    "pronunciation_dictionary_locators",
    "xi_api_key",
    "authorization",
    "context_id",
    "close_context",
    "close_socket",
    "model_id",
)

scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
plausible = {
    "text": st.sampled_from(["", " ", "Hello there. ", "word ", "A full sentence that runs on. "])
    | st.text(max_size=30),
    "flush": st.booleans(),
    "try_trigger_generation": st.booleans(),
    "voice_settings": st.fixed_dictionaries(
        {}, optional={"speed": st.floats(0.5, 1.5), "stability": st.floats(-0.5, 1.5), "style": values}
    ),
    "generation_config": st.fixed_dictionaries(
        {"chunk_length_schedule": st.lists(st.integers(0, 700) | values, max_size=4)}
    ),
    "pronunciation_dictionary_locators": st.lists(
        st.fixed_dictionaries({"pronunciation_dictionary_id": st.text(max_size=5) | values}), max_size=4
    ),
    "context_id": st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]) | values,
    "close_context": st.booleans(),
    "close_socket": st.booleans(),
}
messages = st.dictionaries(
    st.sampled_from(FIELDS),
    st.one_of(values, *plausible.values()),
    max_size=4,
).map(json.dumps)
raw_frames = st.one_of(
    messages,
    st.builds(lambda key, value: json.dumps({key: value}), st.sampled_from(sorted(plausible)), values),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.sampled_from(
        [
            '{"text": "\\ud800 "}',
            '{"context_id": "\\udfff", "text": " "}',
            "[" * 5000 + "]" * 5000,
            '{"text": " ", "voice_settings": {"speed": NaN}}',
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(raw=raw_frames)
def test_the_parser_returns_a_message_or_a_protocol_error(raw: str | bytes) -> None:
    try:
        message = parse_client_message(raw)
    except ProtocolError as error:
        assert error.code == 1008 and error.error
        assert len(error.reason.encode()) > 0
    else:
        assert isinstance(message, ClientMessage)
        message.serialize().encode("utf-8")  # whatever was accepted can be echoed


# ---------------------------------------------------------------------------------------------
# The session, after an opener, in every state


OPENERS: dict[str, tuple[bool, list[dict[str, Any]]]] = {
    "before_text": (False, [{"text": " "}]),
    "buffered": (False, [{"text": " "}, {"text": "Some buffered words "}]),
    "synthesizing": (False, [{"text": "Hello there. " * 12}]),
    "after_end_of_input": (False, [{"text": "Hello. "}, {"text": ""}]),
    "multi_open": (True, [{"text": "Hi there. ", "context_id": "a"}]),
    "multi_closed_contexts": (
        True,
        [
            {"text": "One. ", "context_id": "a", "flush": True},
            {"context_id": "a", "close_context": True},
            {"text": "Two. ", "context_id": "b"},
            {"context_id": "b", "close_context": True},
        ],
    ),
}

steps = st.lists(
    st.one_of(
        raw_frames.map(lambda raw: ("receive", raw)),
        st.floats(0, 30).map(lambda seconds: ("tick", seconds)),
        st.just(("speak", None)),
    ),
    max_size=12,
)


@pytest.mark.parametrize("state", list(OPENERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_the_session_never_fails_internally(state: str, sequence: list[tuple[str, Any]]) -> None:
    multi, opener = OPENERS[state]
    pacer = Pacer()
    session = Session(SessionRules(served_voices=("espeak",)), pacer, voice_id="espeak", multi=multi)
    now = 0.0
    pending: dict[int, Synthesize] = {}
    finishing: list[int] = []
    actions = session.open({"inactivity_timeout": "10"}, now=now)

    def perform(new: list[Any]) -> None:
        for action in new:
            if isinstance(action, Synthesize):
                pending[action.ticket] = action
            elif isinstance(action, FinishAudio):
                finishing.append(action.key)
            assert not (isinstance(action, Fail) and action.error.code == 1011), action
        actions.extend(new)

    for message in opener:
        perform(session.receive(json.dumps(message), now=now))
    for kind, value in sequence:
        if kind == "receive":
            perform(session.receive(value, now=now))
        elif kind == "tick":
            now += value
            perform(session.tick(now=now))
        else:
            for ticket in list(pending):
                piece = pending.pop(ticket)
                perform(session.audio(ticket, b"A", _timing(piece.text), now=now))
                perform(session.piece_done(ticket, now=now))
            while finishing:
                perform(session.audio_finished(finishing.pop(0), b"", now=now))
        assert session.open_contexts <= 5
        assert pacer.speaking >= 0 and pacer.waiting >= 0
    session.connection_lost()
    assert (pacer.speaking, pacer.waiting) == (0, 0)


# ---------------------------------------------------------------------------------------------
# A live connection


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture
def tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


live_sequences = st.lists(raw_frames, min_size=1, max_size=6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=live_sequences, multi=st.booleans())
def test_a_live_connection_survives_hostile_input(
    local_server: str, tracebacks: _Tracebacks, sequence: list[str | bytes], multi: bool
) -> None:
    path = "multi-stream-input" if multi else "stream-input"
    base = f"{local_server}/v1/text-to-speech/espeak"
    hostile_url = f"{base}/{path}?inactivity_timeout=2&output_format=pcm_16000"
    opener = {"text": " ", "context_id": "a"} if multi else {"text": " "}
    end = {"close_socket": True} if multi else {"text": ""}

    async def both() -> tuple[Any, Any]:
        hostile = exchange(hostile_url, [opener, *sequence, end], timeout=30)
        polite = exchange(f"{base}/stream-input", [{"text": "Still speaking. "}, {"text": ""}], timeout=30)
        return await asyncio.gather(hostile, polite)

    hostile, polite = asyncio.run(both())
    assert hostile.close_code in (1000, 1008, 1009), (hostile.close_code, hostile.close_reason)
    assert polite.close_code == 1000 and polite.audio()
    assert not tracebacks.records, [r.getMessage() for r in tracebacks.records]
