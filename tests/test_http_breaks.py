"""`<break time="..."/>` (issue 10 item 8): silence in place of the tag, never spoken, on every endpoint.

A recording engine, registered through the engine registry, speaks with the real espeak engine
and keeps the words espeak reports it spoke (its word events), so a test can tell whether
"break" was read aloud.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import ClassVar

import pytest
from conftest import decode_mp3, exchange, rms, run, run_local_server

from elevtts.server import engines
from elevtts.server.app import ServerConfig
from elevtts.server.engines import Speech, SynthesisOptions, Voice, get_engine, register_engine
from elevtts.server.synthesis import Piece, synthesize

VOICE = Voice("espeak-recorded", "Recorded espeak", "espeak", "en", 22050, "espeak, keeping its word events")
BREAK_TEXT = 'Hello <break time="1.5s"/> world'


class RecordingEngine:
    voice = VOICE
    spoken_words: ClassVar[list[str]] = []
    lock = threading.Lock()

    def __init__(self) -> None:
        self.espeak = get_engine("espeak")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        speech = self.espeak.synthesize(text, options)
        with self.lock:
            self.spoken_words += [text[w.start_char : w.end_char] for w in speech.words]
        return speech


@pytest.fixture(scope="module")
def recorded() -> Iterator[str]:
    register_engine(VOICE, RecordingEngine)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak", VOICE.voice_id)))
    yield url
    thread.stop()
    engines._REGISTRY.pop(VOICE.voice_id)  # no public unregister: keep other tests clean


def _speech_seconds(url: str, text: str, *, messages: list[str] | None = None) -> tuple[float, dict]:
    """Decoded length of `text` spoken over the WebSocket, and the exchange."""
    sent = [{"text": " "}, *({"text": m} for m in (messages or [text])), {"text": ""}]
    result = run(exchange(f"{url}/v1/text-to-speech/{VOICE.voice_id}/stream-input", sent))
    assert result.close_code == 1000 and not result.errors, result.frames
    samples, rate = decode_mp3(result.audio())
    return len(samples) / rate, result


def _spoken() -> str:
    """What espeak said it spoke since the last clear, lowercased."""
    return " ".join(RecordingEngine.spoken_words).lower()


def _alignment_chars(result: object, key: str) -> str:
    return "".join("".join(f[key]["chars"]) for f in result.audio_frames if f.get(key))  # type: ignore[attr-defined]


def test_a_break_over_the_websocket_is_silence_and_never_spoken(recorded: str) -> None:
    plain, _ = _speech_seconds(recorded, "Hello world")
    RecordingEngine.spoken_words.clear()
    with_break, result = _speech_seconds(recorded, BREAK_TEXT)
    spoken = _spoken()
    assert "break" not in spoken and "time" not in spoken, spoken
    assert "hello" in spoken and "world" in spoken, spoken
    # the speech plus the 1.5 s pause (espeak cuts "Hello" and "world" apart a little differently)
    assert 1.2 <= with_break - plain <= 1.9, (plain, with_break)
    # `alignment` covers every character of the original text, the tag's included, in order;
    # `normalizedAlignment` covers what was spoken, where the tag is absent
    assert _alignment_chars(result, "alignment") == BREAK_TEXT
    assert "break" not in _alignment_chars(result, "normalizedAlignment")


def test_the_silence_is_where_the_tag_is(recorded: str) -> None:
    _, result = _speech_seconds(recorded, BREAK_TEXT)
    samples, rate = decode_mp3(result.audio())
    # "Hello" then 1.5 s of silence then "world": a quiet stretch of over a second in the middle
    window = rate // 10
    loud = [rms(samples[i : i + window]) > 200 for i in range(0, len(samples) - window, window)]
    longest_quiet = max(len(run_) for run_ in "".join("x" if x else "." for x in loud).split("x"))
    assert longest_quiet * 0.1 >= 1.2, loud


def test_a_tag_split_across_messages_is_held_until_complete(recorded: str) -> None:
    RecordingEngine.spoken_words.clear()
    messages = ["Hello <bre", 'ak time="1', '.5s"/> world ']
    with_break, _ = _speech_seconds(recorded, "", messages=messages)
    spoken = _spoken()
    assert "bre" not in spoken and "ak" not in spoken and "time" not in spoken, spoken
    plain, _ = _speech_seconds(recorded, "Hello world")
    assert 1.2 <= with_break - plain <= 1.9, (plain, with_break)


def test_a_tag_is_never_cut_by_the_schedule(recorded: str) -> None:
    """With the smallest schedule, the buffer would cut inside the tag's attributes."""
    RecordingEngine.spoken_words.clear()
    text = "One two three four five six seven eight nine ten eleven twelve " + '<break time="1s"/>' + " end."
    opener = {"text": " ", "generation_config": {"chunk_length_schedule": [50]}}
    sent = [opener, {"text": text}, {"text": ""}]
    result = run(exchange(f"{recorded}/v1/text-to-speech/{VOICE.voice_id}/stream-input", sent))
    assert result.close_code == 1000 and not result.errors
    spoken = _spoken()
    assert "break" not in spoken and "time" not in spoken, spoken


def test_the_pipeline_caps_a_break_at_three_seconds() -> None:
    engine = get_engine("espeak")
    frames = synthesize(engine, Piece('Hi <break time="10s"/> there'))
    total_ms = sum(timing.duration_ms for _, timing in frames)
    spoken_ms = sum(t.duration_ms for _, t in synthesize(engine, Piece("Hi there")))
    assert 2700 <= total_ms - spoken_ms <= 3300
    assert "".join(c for _, t in frames for c in t.original.chars) == 'Hi <break time="10s"/> there'


def test_a_break_over_http_is_silence_too(recorded: str) -> None:
    http = recorded.replace("ws://", "http://")

    def seconds(text: str) -> float:
        request = urllib.request.Request(
            f"{http}/v1/text-to-speech/{VOICE.voice_id}?output_format=mp3_22050_32",
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            samples, rate = decode_mp3(response.read())
        return len(samples) / rate

    RecordingEngine.spoken_words.clear()
    difference = seconds(BREAK_TEXT) - seconds("Hello world")
    assert 1.2 <= difference <= 1.9
    assert "break" not in _spoken()
