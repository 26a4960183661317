"""multi-stream-input over real WebSockets on loopback (protocol.md section 7).

The wire sequences that pipecat 1.14.0 and livekit-plugins-elevenlabs 1.8.9 send (section 7.3),
replayed message for message; five contexts on one socket; the cap of five; a flushed turn
closed at once; barge-in; keep-alives and reused ids; per-context inactivity; the client library
and `speak --multi`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from conftest import assert_speech, decode_mp3, exchange, run
from typer.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from elevtts.cli import app
from elevtts.client import Endpoint, Session, StreamOptions
from elevtts.protocol import MAX_CONTEXTS_MESSAGE, AudioFrame, StreamParams

NO_GAP_S = 3.0  # pipecat closes a context that gets no audio for 3 s (also before the first chunk)
BARGE_IN_S = 1.0  # an interrupted context's audio ends within this
CLOSE_SOCKET_S = 2.0  # pipecat waits this long for the server to close after close_socket

PIPECAT_QUERY = {"model_id": "eleven_flash_v2_5", "output_format": "pcm_24000", "auto_mode": "true"}
LIVEKIT_QUERY = {
    "model_id": "eleven_turbo_v2_5",
    "output_format": "mp3_22050_32",
    "enable_ssml_parsing": "false",
    "enable_logging": "true",
    "inactivity_timeout": "180",
    "apply_text_normalization": "auto",
    "sync_alignment": "true",
    "auto_mode": "true",
}
KEY = {"xi-api-key": "any-key-the-local-server-ignores"}

NAMES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]


def _url(base: str, voice: str = "espeak", **query: str) -> str:
    return f"{base}/v1/text-to-speech/{voice}/multi-stream-input" + (f"?{urlencode(query)}" if query else "")


class Wire:
    """A raw client that records every frame with its arrival time, and can wait for a condition."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, *, headers: dict[str, str] | None = None) -> AsyncIterator[Wire]:
        async with connect(url, additional_headers=headers or {}, max_size=None) as ws:
            wire = cls(ws)
            try:
                yield wire
            finally:
                wire.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await wire.reader

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
                self.arrivals.append(self._loop.time())
                self._changed.set()
        self._changed.set()

    async def send(self, message: dict[str, Any]) -> float:
        """Send one message; return when it was sent."""
        await self.ws.send(json.dumps(message))
        return self._loop.time()

    async def until(self, condition: Callable[[], bool], *, timeout: float = 15.0) -> None:
        """Wait until `condition()` holds (checked after every frame)."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                if condition():
                    return
                if self.reader.done():
                    raise AssertionError(
                        f"the socket closed ({self.ws.close_code}) before the condition held"
                    )
                await self._changed.wait()

    async def closed(self, *, timeout: float = 15.0) -> float:
        """Wait for the server to close; return when the reader saw it."""
        await asyncio.wait_for(asyncio.shield(self.reader), timeout)
        return self._loop.time()

    # -- what arrived, per context -------------------------------------------------------

    def of(self, context_id: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (t, f)
            for t, f in zip(self.arrivals, self.frames, strict=True)
            if f.get("contextId") == context_id
        ]

    def chars(self, context_id: str, key: str = "alignment") -> str:
        return "".join(c for _, f in self.of(context_id) if f.get(key) for c in f[key]["chars"])

    def audio(self, context_id: str) -> bytes:
        return b"".join(base64.b64decode(f["audio"]) for _, f in self.of(context_id) if f.get("audio"))

    def audio_times(self, context_id: str) -> list[float]:
        return [t for t, f in self.of(context_id) if f.get("audio")]

    def final_at(self, context_id: str) -> float | None:
        return next((t for t, f in self.of(context_id) if f.get("isFinal")), None)

    def is_final(self, context_id: str) -> Callable[[], bool]:
        return lambda: self.final_at(context_id) is not None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if "error" in f]


def _assert_well_ordered(wire: Wire, context_id: str) -> None:
    """One isFinal, last of the context's frames, every frame naming the context both ways."""
    frames = [f for _, f in wire.of(context_id)]
    finals = [i for i, f in enumerate(frames) if f.get("isFinal")]
    assert finals == [len(frames) - 1], f"{context_id}: isFinal at {finals} of {len(frames)} frames"
    assert frames[-1]["isFinal"] is True
    for frame in frames:
        assert frame["contextId"] == frame["context_id"] == context_id
    for frame in frames[:-1]:
        assert frame["isFinal"] is None and "audio" in frame


def _assert_no_gap(wire: Wire, context_id: str, sent_at: float) -> None:
    """From the first text to the last audio, no gap between a context's frames reaches 3 s."""
    times = [sent_at, *wire.audio_times(context_id)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < NO_GAP_S, f"{context_id}: a {max(gaps):.2f} s gap between audio frames"


def _pcm(audio: bytes) -> np.ndarray:
    assert len(audio) % 2 == 0
    return np.frombuffer(audio, dtype="<i2")


# ---------------------------------------------------------------------------------------------
# pipecat and LiveKit, message for message


PIPECAT_SENTENCES = [
    "Hello there, I am your assistant.",
    "How are you doing today?",
    "I can help with many things.",
]
PIPECAT_LAST = "Tell me what you need."


def test_pipecat_sequence(local_server: str) -> None:
    context = str(uuid.uuid4())

    async def scenario() -> tuple[Wire, float, float, float]:
        async with Wire.connect(_url(local_server, **PIPECAT_QUERY), headers=KEY) as wire:
            await wire.send({"text": " ", "context_id": context})
            first_text_at = await wire.send({"text": PIPECAT_SENTENCES[0], "context_id": context})
            for sentence in PIPECAT_SENTENCES[1:]:
                await wire.send({"text": sentence, "context_id": context})
            # auto_mode speaks every sentence although pipecat never flushes one
            spoken = " ".join(PIPECAT_SENTENCES)
            await wire.until(lambda: wire.chars(context) == spoken, timeout=NO_GAP_S)
            await wire.send({"text": ""})  # connection keep-alive
            await wire.send({"text": "", "context_id": context})  # context keep-alive
            await asyncio.sleep(0.5)  # pipecat repeats the opener after a pause (of over 3 s)
            await wire.send({"text": " ", "context_id": context})
            await wire.send({"text": PIPECAT_LAST, "context_id": context})
            await wire.send({"context_id": context, "flush": True})
            await wire.send({"context_id": context, "close_context": True})
            close_socket_at = await wire.send({"close_socket": True})
            closed_at = await wire.closed(timeout=10)
            return wire, first_text_at, close_socket_at, closed_at

    wire, first_text_at, close_socket_at, closed_at = run(scenario())
    assert wire.ws.close_code == 1000
    assert closed_at - close_socket_at < CLOSE_SOCKET_S
    assert not wire.errors
    assert len(wire.of(context)) == len(wire.frames)  # every frame names the context
    _assert_well_ordered(wire, context)
    # A word boundary between messages that do not end in a space, at the start of the later chunk.
    expected = " ".join([*PIPECAT_SENTENCES, PIPECAT_LAST])
    assert wire.chars(context) == expected
    assert wire.chars(context, "normalizedAlignment") == expected
    samples = _pcm(wire.audio(context))
    assert_speech(samples, 24000, words=len(expected.split()))
    _assert_no_gap(wire, context, first_text_at)


LIVEKIT_SENTENCES = ["Good morning, this is the agent speaking. ", "The weather today is sunny and warm. "]


def test_livekit_sequence(local_server: str) -> None:
    context = uuid.uuid4().hex[:12]

    async def scenario() -> tuple[Wire, float]:
        async with Wire.connect(_url(local_server, **LIVEKIT_QUERY), headers=KEY) as wire:
            await wire.send({"text": " ", "voice_settings": {}, "context_id": context})
            first_text_at = await wire.send(
                {"text": LIVEKIT_SENTENCES[0], "context_id": context, "flush": True}
            )
            for sentence in LIVEKIT_SENTENCES[1:]:
                await wire.send({"text": sentence, "context_id": context, "flush": True})
            await wire.send({"text": "", "context_id": context, "flush": True})  # a flush, not an end
            await wire.send({"context_id": context, "close_context": True})
            await wire.until(wire.is_final(context))
            await asyncio.sleep(0.2)  # nothing more for this context may follow its isFinal
        return wire, first_text_at  # LiveKit never sends close_socket: it closes with 1000

    wire, first_text_at = run(scenario())
    assert wire.ws.close_code == 1000
    assert not wire.errors
    _assert_well_ordered(wire, context)
    expected = "".join(LIVEKIT_SENTENCES).strip()
    assert wire.chars(context, "normalizedAlignment") == expected  # LiveKit reads this one
    assert wire.chars(context) == expected
    samples, rate = decode_mp3(wire.audio(context))
    assert rate == 22050
    assert_speech(samples, rate, words=len(expected.split()))
    _assert_no_gap(wire, context, first_text_at)


# ---------------------------------------------------------------------------------------------
# Five contexts, the cap, implicit creation


def _turn(name: str, count: int = 3) -> list[str]:
    ordinals = ["first", "second", "third", "fourth", "fifth", "sixth"]
    return [f"{name} says its {ordinals[i]} sentence." for i in range(count)]


def test_five_interleaved_contexts_keep_their_audio_apart_and_in_order(local_server: str) -> None:
    turns = {name.lower(): _turn(name) for name in NAMES}

    async def scenario() -> tuple[Wire, float]:
        async with Wire.connect(_url(local_server, auto_mode="true", output_format="pcm_16000")) as wire:
            for context in turns:
                await wire.send({"text": " ", "context_id": context})
            started = asyncio.get_running_loop().time()
            for round_ in range(3):  # interleaved, sentence by sentence
                for context, sentences in turns.items():
                    await wire.send({"text": sentences[round_], "context_id": context})
            for context in turns:
                await wire.send({"context_id": context, "flush": True})
                await wire.send({"context_id": context, "close_context": True})
            await wire.until(lambda: all(wire.final_at(c) for c in turns))
            await wire.send({"close_socket": True})
            await wire.closed()
            return wire, started

    wire, started = run(scenario())
    assert wire.ws.close_code == 1000 and not wire.errors
    for context, sentences in turns.items():
        _assert_well_ordered(wire, context)
        assert wire.chars(context) == " ".join(sentences)
        assert_speech(_pcm(wire.audio(context)), 16000, words=len(" ".join(sentences).split()))
        _assert_no_gap(wire, context, started)
    # The contexts were served side by side, not one after the other.
    order = [f["contextId"] for f in wire.frames if f.get("audio")]
    first_final = min(wire.frames.index(f) for f in wire.frames if f.get("isFinal"))
    assert len({c for c in order[:first_final]}) > 1


def test_a_sixth_context_is_refused_with_max_active_conversations(local_server: str) -> None:
    openers = [{"text": " ", "context_id": f"c{i}"} for i in range(6)]
    result = run(exchange(_url(local_server), [*openers, {"text": "Never spoken. ", "context_id": "c5"}]))
    assert result.close_code == 1008
    assert [e["error"] for e in result.errors] == ["max_active_conversations"]
    error = result.errors[0]
    assert error["message"] == MAX_CONTEXTS_MESSAGE
    assert error["code"] == 1008
    assert error["contextId"] == "c5"
    assert not result.audio_frames


def test_a_closed_context_frees_its_slot(local_server: str) -> None:
    async def scenario() -> Wire:
        async with Wire.connect(_url(local_server, auto_mode="true")) as wire:
            for i in range(5):
                await wire.send({"text": " ", "context_id": f"c{i}"})
            await wire.send({"context_id": "c0", "close_context": True})
            await wire.until(wire.is_final("c0"))
            await wire.send({"text": " ", "context_id": "c5"})
            await wire.send({"text": "The sixth context is welcome now. ", "context_id": "c5", "flush": True})
            await wire.send({"context_id": "c5", "close_context": True})
            await wire.until(wire.is_final("c5"))
            await wire.send({"close_socket": True})
            await wire.closed()
            return wire

    wire = run(scenario())
    assert wire.ws.close_code == 1000 and not wire.errors
    assert wire.chars("c5") == "The sixth context is welcome now."
    assert all(wire.final_at(f"c{i}") for i in range(6))  # close_socket ends the idle ones too


def test_a_flush_for_an_unknown_id_creates_a_context_that_counts(local_server: str) -> None:
    openers = [{"text": " ", "context_id": f"c{i}"} for i in range(4)]
    ghost = {"context_id": "ghost", "flush": True}
    result = run(exchange(_url(local_server), [*openers, ghost, 0.2, {"text": " ", "context_id": "c4"}]))
    assert result.close_code == 1008
    assert [e["error"] for e in result.errors] == ["max_active_conversations"]
    assert result.errors[0]["contextId"] == "c4"


def test_an_unknown_id_flush_alone_is_accepted(local_server: str) -> None:
    messages = [{"context_id": "ghost", "flush": True}, {"context_id": "ghost", "close_context": True}]
    result = run(exchange(_url(local_server), [*messages, {"close_socket": True}]))
    assert result.close_code == 1000 and not result.errors
    assert result.finals() == [{"isFinal": True, "contextId": "ghost", "context_id": "ghost"}]


def test_keepalives_for_a_finished_context_do_not_reopen_it(local_server: str) -> None:
    """pipecat keeps a context alive while it plays its audio, after the server has finished it."""

    async def scenario() -> Wire:
        async with Wire.connect(_url(local_server, auto_mode="true", inactivity_timeout="1")) as wire:
            await wire.send({"text": " ", "context_id": "turn"})
            await wire.send({"text": "A short turn.", "context_id": "turn"})
            await wire.send({"context_id": "turn", "flush": True})
            await wire.send({"context_id": "turn", "close_context": True})
            await wire.until(wire.is_final("turn"))
            await wire.send({"text": "", "context_id": "turn"})  # keep-alive for the finished context
            await wire.send({"context_id": "turn", "close_context": True})  # and a late close
            await wire.send({"text": "", "context_id": "never-opened"})
            for i in range(5):  # all five slots are free
                await wire.send({"text": " ", "context_id": f"c{i}"})
            for i in range(5):
                await wire.send({"context_id": f"c{i}", "close_context": True})
            await wire.until(lambda: all(wire.final_at(f"c{i}") for i in range(5)))
            for _ in range(3):  # past the inactivity timeout: no context was left open to expire
                await asyncio.sleep(0.5)
                await wire.send({"text": ""})  # a connection keep-alive keeps the socket open
            await wire.send({"close_socket": True})
            await wire.closed()
            return wire

    wire = run(scenario())
    assert wire.ws.close_code == 1000 and not wire.errors
    assert [f["contextId"] for f in wire.frames if f.get("isFinal")] == ["turn", "c0", "c1", "c2", "c3", "c4"]
    assert not wire.of("never-opened")


def test_the_default_context_keeps_the_settings_of_its_opener(local_server: str) -> None:
    settings = {"stability": 0.3, "speed": 1.1}
    messages = [
        {"text": " ", "voice_settings": settings},  # no context id: the default context
        {"text": "Spoken in the default context. "},
        {"text": "", "voice_settings": settings, "flush": True},  # the same settings again: fine
        {"close_context": True},
        {"close_socket": True},
    ]
    result = run(exchange(_url(local_server), messages))
    assert result.close_code == 1000 and not result.errors
    assert {f["contextId"] for f in result.frames} == {"default"}
    assert result.finals() == [{"isFinal": True, "contextId": "default", "context_id": "default"}]
    assert "".join(c for f in result.audio_frames for c in f["alignment"]["chars"]) == (
        "Spoken in the default context."
    )


def test_reusing_an_id_while_it_drains_holds_up_no_other_context(local_server: str) -> None:
    first, second = " ".join(LONG_TURN * 3), "The same id, a new context."

    async def scenario() -> Wire:
        async with Wire.connect(_url(local_server, output_format="pcm_16000")) as wire:
            await wire.send({"text": " ", "context_id": "reused"})
            await wire.send({"text": first + " ", "context_id": "reused", "flush": True})
            await wire.send({"context_id": "reused", "close_context": True})
            # Reopened at once, while the first turn is still being spoken.
            await wire.send({"text": " ", "context_id": "reused"})
            await wire.send({"text": second + " ", "context_id": "reused", "flush": True})
            await wire.send({"context_id": "reused", "close_context": True})
            await wire.send({"text": " ", "context_id": "other"})
            await wire.send({"text": "Another context. ", "context_id": "other", "flush": True})
            await wire.send({"context_id": "other", "close_context": True})
            await wire.until(lambda: len([f for _, f in wire.of("reused") if f.get("isFinal")]) == 2)
            await wire.until(wire.is_final("other"))
            await wire.send({"close_socket": True})
            await wire.closed()
            return wire

    wire = run(scenario())
    assert wire.ws.close_code == 1000 and not wire.errors
    reused = [f for _, f in wire.of("reused")]
    finals = [i for i, f in enumerate(reused) if f.get("isFinal")]
    assert finals[1] == len(reused) - 1
    chars = [
        "".join(c for f in part if f.get("alignment") for c in f["alignment"]["chars"])
        for part in (reused[: finals[0]], reused[finals[0] + 1 :])
    ]
    assert chars == [first, second]  # two contexts, one after the other
    # The other context was served while the first "reused" turn was still being spoken.
    assert min(wire.audio_times("other")) < wire.final_at("reused")
    assert wire.chars("other") == "Another context."


# ---------------------------------------------------------------------------------------------
# close_context: a flushed turn is spoken in full, an unflushed one is cut (barge-in)


LONG_TURN = [
    "The first sentence of a long reply sets the scene.",
    "A second one follows it without any pause at all.",
    "Then a third sentence adds a little more detail.",
    "The fourth sentence is here to make the turn longer.",
    "A fifth sentence keeps the engine busy for a while.",
    "The sixth sentence says almost nothing of interest.",
    "Number seven is a sentence like all the others.",
    "The eighth sentence is nearly the end of the turn.",
    "A ninth sentence comes just before the last one.",
    "And the tenth sentence finally closes the reply.",
]


@pytest.mark.parametrize("auto_mode", ["true", "false"])
def test_a_long_flushed_turn_closed_at_once_is_spoken_in_full(local_server: str, auto_mode: str) -> None:
    async def scenario() -> Wire:
        async with Wire.connect(_url(local_server, auto_mode=auto_mode, output_format="pcm_22050")) as wire:
            await wire.send({"text": " ", "context_id": "turn"})
            for sentence in LONG_TURN:
                await wire.send({"text": sentence + " ", "context_id": "turn"})
            await wire.send({"context_id": "turn", "flush": True})
            # Sent after the flush: not covered by it, so the close drops it.
            await wire.send({"text": "Nobody hears this afterthought. ", "context_id": "turn"})
            await wire.send({"context_id": "turn", "close_context": True})
            await wire.until(wire.is_final("turn"))
            await wire.send({"close_socket": True})
            await wire.closed()
            return wire

    wire = run(scenario())
    assert wire.ws.close_code == 1000 and not wire.errors
    _assert_well_ordered(wire, "turn")
    assert wire.chars("turn") == " ".join(LONG_TURN)
    assert_speech(_pcm(wire.audio("turn")), 22050, words=len(" ".join(LONG_TURN).split()))


@pytest.mark.neural
def test_barge_in_stops_the_context_and_leaves_the_others_alone(local_server: str) -> None:
    """A long unflushed auto_mode turn closed mid-speech, next to a flushed turn and another socket."""
    other_turn = _turn("Bravo", 3)
    query = {"auto_mode": "true", "output_format": "pcm_22050"}

    async def normal_turn(wire: Wire, context: str) -> float:
        await wire.send({"text": " ", "context_id": context})
        started = asyncio.get_running_loop().time()
        for sentence in other_turn:
            await wire.send({"text": sentence, "context_id": context})
        await wire.send({"context_id": context, "flush": True})
        await wire.send({"context_id": context, "close_context": True})
        return started

    async def scenario() -> dict[str, Any]:
        async with (
            Wire.connect(_url(local_server, "joe", **query)) as wire,
            Wire.connect(_url(local_server, "joe", **query)) as neighbour,
        ):
            await wire.send({"text": " ", "context_id": "agent"})
            for sentence in LONG_TURN:  # pipecat-style: no trailing space, no flush
                await wire.send({"text": sentence, "context_id": "agent"})
            started = {
                "same": await normal_turn(wire, "same"),
                "other": await normal_turn(neighbour, "other"),
            }
            await wire.until(lambda: len(wire.audio_times("agent")) >= 2)
            close_at = await wire.send({"context_id": "agent", "close_context": True})  # the user interrupts
            await wire.until(wire.is_final("agent"))
            await wire.until(wire.is_final("same"))
            await neighbour.until(neighbour.is_final("other"))
            await asyncio.sleep(0.3)  # anything late for "agent" would show up now
            await wire.send({"close_socket": True})
            await neighbour.send({"close_socket": True})
            await wire.closed()
            await neighbour.closed()
            return {"wire": wire, "neighbour": neighbour, "close_at": close_at, "started": started}

    result = run(scenario())
    wire, neighbour, close_at = result["wire"], result["neighbour"], result["close_at"]
    assert wire.ws.close_code == neighbour.ws.close_code == 1000
    assert not wire.errors and not neighbour.errors
    _assert_well_ordered(wire, "agent")  # includes: no audio after its isFinal
    last_audio = max(wire.audio_times("agent"))
    assert last_audio - close_at < BARGE_IN_S, f"audio went on {last_audio - close_at:.2f} s after the close"
    final_at = wire.final_at("agent")
    assert final_at is not None and final_at - close_at < BARGE_IN_S
    full = " ".join(LONG_TURN)
    spoken = wire.chars("agent")
    assert spoken and full.startswith(spoken) and len(spoken) < len(full) // 2
    # The other context on the same socket and the one on the other socket: complete, in order.
    for client, context in ((wire, "same"), (neighbour, "other")):
        _assert_well_ordered(client, context)
        assert client.chars(context) == " ".join(other_turn)
        _assert_no_gap(client, context, result["started"]["same" if client is wire else "other"])


@pytest.mark.neural
def test_a_long_sentence_is_streamed_in_pieces(local_server: str) -> None:
    """One long sentence without a clause mark: its audio comes in pieces, never 3 s apart."""
    sentence = (
        "This long sentence goes on and on without a single comma or any other clause mark so the "
        "server has to cut it between words to keep the audio coming while the neural voice is busy "
        "speaking the rest of it to the caller."
    )

    async def scenario() -> tuple[Wire, float]:
        async with Wire.connect(
            _url(local_server, "joe", auto_mode="true", output_format="pcm_22050")
        ) as wire:
            await wire.send({"text": " ", "context_id": "long"})
            sent_at = await wire.send({"text": sentence, "context_id": "long"})
            await wire.until(lambda: wire.chars("long") == sentence, timeout=30)  # no flush needed
            await wire.send({"context_id": "long", "flush": True})
            await wire.send({"context_id": "long", "close_context": True})
            await wire.until(wire.is_final("long"))
            return wire, sent_at

    wire, sent_at = run(scenario())
    assert not wire.errors
    _assert_well_ordered(wire, "long")
    _assert_no_gap(wire, "long", sent_at)
    assert_speech(_pcm(wire.audio("long")), 22050, words=len(sentence.split()))


# ---------------------------------------------------------------------------------------------
# Inactivity and errors, per context


def test_an_idle_context_times_out_alone(local_server: str) -> None:
    async def scenario() -> Wire:
        async with Wire.connect(_url(local_server, inactivity_timeout="1", auto_mode="true")) as wire:
            await wire.send({"text": " ", "context_id": "idle"})
            await wire.send({"text": " ", "context_id": "alive"})
            for _ in range(7):  # 2.1 s: past the idle context's timeout
                await asyncio.sleep(0.3)
                await wire.send({"text": "", "context_id": "alive"})
            await wire.until(wire.is_final("idle"), timeout=1)
            await wire.send({"text": "Still here and talking. ", "context_id": "alive", "flush": True})
            await wire.send({"context_id": "alive", "close_context": True})
            await wire.until(wire.is_final("alive"))
            await wire.send({"close_socket": True})
            await wire.closed()
            return wire

    wire = run(scenario())
    assert wire.ws.close_code == 1000
    assert len(wire.errors) == 1
    error = wire.errors[0]
    assert error["error"] == "input_timeout_exceeded"
    assert error["contextId"] == error["context_id"] == "idle"
    assert "timeout of 1.0 seconds" in error["message"]
    idle = [f for _, f in wire.of("idle")]
    assert idle[0] is error and idle[-1]["isFinal"] is True  # the error, then the context ends
    assert not wire.audio_times("idle")
    _assert_well_ordered(wire, "alive")
    assert wire.chars("alive") == "Still here and talking."


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (
            [
                {"text": " ", "context_id": "c1", "voice_settings": {"stability": 0.3}},
                {"text": "Changed. ", "context_id": "c1", "voice_settings": {"stability": 0.9}},
            ],
            "invalid_input_message",
        ),
        (
            [
                {"text": " ", "context_id": "c0"},
                {
                    "text": " ",
                    "context_id": "c1",
                    "pronunciation_dictionary_locators": [
                        {"pronunciation_dictionary_id": "no-such-dictionary"}
                    ],
                },
            ],
            "pronunciation_dictionary_not_found",
        ),
        (
            [
                {"text": " ", "context_id": "c1", "generation_config": {"chunk_length_schedule": [100]}},
                {"text": "x ", "context_id": "c1", "generation_config": {"chunk_length_schedule": [200]}},
            ],
            "invalid_input_message",
        ),
    ],
)
def test_errors_carry_the_context_id(local_server: str, messages: list[Any], error: str) -> None:
    result = run(exchange(_url(local_server), messages))
    assert result.close_code == 1008
    assert [e["error"] for e in result.errors] == [error]
    assert result.errors[0]["contextId"] == result.errors[0]["context_id"] == "c1"


# ---------------------------------------------------------------------------------------------
# The client library and the CLI


def test_the_client_library_runs_contexts_side_by_side_and_barges_in(local_server: str) -> None:
    endpoint = Endpoint(base_url=local_server)
    options = StreamOptions("espeak", StreamParams(auto_mode=True, output_format="pcm_16000"))
    turns = {"a": _turn("Alpha", 2), "b": _turn("Bravo", 3)}

    async def scenario() -> tuple[dict[str, list[AudioFrame]], list[AudioFrame], bool]:
        async with Session(endpoint, options, multi=True) as session:
            streams = {context: await session.start(context) for context in turns}

            async def talk(context: str) -> None:
                stream, (first, *rest) = streams[context], turns[context]
                await stream.send(first + " ")
                await stream.flush()
                for sentence in rest:
                    await stream.send(sentence + " ")
                await stream.end()

            async def listen(context: str) -> list[AudioFrame]:
                return [frame async for frame in streams[context]]

            listeners = [asyncio.create_task(listen(c)) for c in turns]
            await asyncio.gather(*(talk(c) for c in turns))
            heard = dict(zip(turns, await asyncio.gather(*listeners), strict=True))

            # Barge-in through the library: close a long unflushed turn on its first audio.
            interrupted = await session.start("interrupted")
            for sentence in LONG_TURN * 4:
                await interrupted.send(sentence + " ")
            cut: list[AudioFrame] = []
            async for frame in interrupted:
                if not cut:
                    await interrupted.close()
                cut.append(frame)
            await session.close_socket()
            return heard, cut, interrupted.final

    heard, cut, final = run(scenario())
    for context, sentences in turns.items():
        assert {f.context_id for f in heard[context]} == {context}
        text = "".join(c for f in heard[context] if f.alignment for c in f.alignment.chars)
        assert text == " ".join(sentences)
        audio = _pcm(b"".join(f.audio for f in heard[context]))
        assert_speech(audio, 16000, words=len(text.split()))
    full = " ".join(LONG_TURN * 4)
    spoken = "".join(c for f in cut if f.alignment for c in f.alignment.chars)
    assert final and cut and {f.context_id for f in cut} == {"interrupted"}
    assert full.startswith(spoken) and len(spoken) < len(full) // 2


def test_the_client_library_keeps_a_reused_id_apart(local_server: str) -> None:
    endpoint = Endpoint(base_url=local_server)
    options = StreamOptions("espeak", StreamParams(output_format="pcm_16000"))
    first, second = " ".join(LONG_TURN), "The same id, a new turn."

    async def scenario() -> list[str]:
        async with Session(endpoint, options, multi=True) as session:
            await session.keepalive()  # a connection keep-alive before any context
            old = await session.start("agent")
            await old.send(first + " ")
            await old.end()
            new = await session.start("agent")  # while the old turn is still being spoken
            await new.send(second + " ")
            await new.end()

            async def text(stream: Any) -> str:
                return "".join([c async for f in stream if f.alignment for c in f.alignment.chars])

            heard = await asyncio.wait_for(asyncio.gather(text(old), text(new)), 30)
            await session.close_socket()
            return list(heard)

    assert run(scenario()) == [first, second]


def test_speak_multi_writes_the_same_files_as_single_stream(local_server: str, tmp_path: Path) -> None:
    text = "One context on the multi-stream endpoint. It should sound the same as a single stream."
    runner = CliRunner()
    lengths = {}
    for name, extra in (("single", []), ("multi", ["--multi"])):
        args = ["speak", "--url", local_server, "--voice", "espeak", "--output-dir", str(tmp_path)]
        result = runner.invoke(app, [*args, "--name", name, "--quiet", *extra, text])
        assert result.exit_code == 0, result.output
        stats = json.loads((tmp_path / f"{name}.json").read_text())
        assert stats["ok"] is True and stats["settings"]["multi"] is (name == "multi")
        assert stats["audio_chunks"] > 0 and stats["ttfb_ms"] is not None
        samples, rate = decode_mp3((tmp_path / f"{name}.mp3").read_bytes())
        assert rate == 44100
        assert_speech(samples, rate, words=len(text.split()))
        lengths[name] = len(samples)
    assert abs(lengths["multi"] - lengths["single"]) <= 0.1 * lengths["single"]
    assert not list(tmp_path.glob("*.part"))
