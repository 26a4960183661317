"""The HTTP API's pure part (`server.rest`): requests validated, answers shaped, without a server."""

from __future__ import annotations

import io
import json
import wave
from http import HTTPStatus

import pytest

from elevtts.protocol import Alignment
from elevtts.server.rest import (
    HttpError,
    character_alignment,
    default_voice_map,
    elevenlabs_request,
    openai_request,
    wav_header,
)


def test_a_body_becomes_a_request_with_the_defaults_of_the_live_api() -> None:
    request = elevenlabs_request("joe", json.dumps({"text": "Hi."}).encode(), {})
    assert (request.voice_id, request.model_id, request.output_format.name) == (
        "joe",
        "eleven_multilingual_v2",
        "mp3_44100_128",
    )
    assert request.voice_settings.speed == 1.0


@pytest.mark.parametrize(
    ("raw", "query", "status"),
    [
        (b"{", {}, HTTPStatus.UNPROCESSABLE_ENTITY),
        (b"[]", {}, HTTPStatus.UNPROCESSABLE_ENTITY),
        (b'{"text": 3}', {}, HTTPStatus.UNPROCESSABLE_ENTITY),
        (b'{"text": "  "}', {}, HTTPStatus.BAD_REQUEST),
        (b'{"text": "Hi.", "seed": -1}', {}, HTTPStatus.UNPROCESSABLE_ENTITY),
        (b'{"text": "Hi."}', {"output_format": "flac"}, HTTPStatus.UNPROCESSABLE_ENTITY),
    ],
)
def test_bad_bodies_are_refused_with_a_status(raw: bytes, query: dict[str, str], status: HTTPStatus) -> None:
    with pytest.raises(HttpError) as caught:
        elevenlabs_request("joe", raw, query)
    assert caught.value.status == status and "detail" in caught.value.body


def test_opus_is_refused_without_its_encoder_and_names_the_extra() -> None:
    body, query = b'{"text": "Hi."}', {"output_format": "opus_48000_32"}
    assert elevenlabs_request("joe", body, query, opus_encoder=True).output_format.codec == "opus"
    with pytest.raises(HttpError) as caught:
        elevenlabs_request("joe", body, query, opus_encoder=False)
    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert "elevtts[opus]" in json.dumps(caught.value.body)


def test_the_models_limit_and_the_operators_limit() -> None:
    long = json.dumps({"text": "x" * 10_001}).encode()
    with pytest.raises(HttpError):
        elevenlabs_request("joe", long, {})
    flash = json.dumps({"text": "x" * 10_001, "model_id": "eleven_flash_v2_5"}).encode()
    assert elevenlabs_request("joe", flash, {}).model_id == "eleven_flash_v2_5"
    with pytest.raises(HttpError):
        elevenlabs_request("joe", json.dumps({"text": "x" * 11}).encode(), {}, max_chars=10)


def test_openai_voices_map_and_formats() -> None:
    voices = default_voice_map(("espeak", "joe"), {"echo": "espeak"})
    assert voices["alloy"] == "joe" and voices["echo"] == "espeak"
    assert default_voice_map(("espeak",), {})["nova"] == "espeak"
    body = json.dumps({"model": "tts-1", "input": "Hi.", "voice": "echo", "response_format": "pcm"})
    request = openai_request(body.encode(), voices, ("espeak", "joe"))
    assert (request.voice_id, request.output_format.name) == ("espeak", "pcm_24000")
    fast = json.dumps({"model": "tts-1", "input": "Hi.", "voice": "alloy", "speed": 4.0})
    assert openai_request(fast.encode(), voices, ("espeak", "joe")).voice_settings.speed == 1.2


def test_wav_headers_whole_and_streamed() -> None:
    data = b"\x01\x00" * 100
    with wave.open(io.BytesIO(wav_header(16000, len(data)) + data)) as whole:
        assert (whole.getframerate(), whole.getnframes(), whole.getsampwidth()) == (16000, 100, 2)
    streamed = wav_header(24000, None)
    assert len(streamed) == 44 and streamed[40:44] == b"\xff\xff\xff\xff"


def test_character_alignment_is_in_seconds_from_the_offset() -> None:
    alignment = Alignment(("h", "i"), (0, 100), (100, 50))
    assert character_alignment(alignment, offset_ms=1000) == {
        "characters": ["h", "i"],
        "character_start_times_seconds": [1.0, 1.1],
        "character_end_times_seconds": [1.1, 1.15],
    }
    assert character_alignment(Alignment()) is None
