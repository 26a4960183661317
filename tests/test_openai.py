"""The official `openai` client's `audio.speech` against `serve`'s `/v1/audio/speech`, unchanged."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import openai
import pytest
from conftest import assert_speech, decode_mp3, run_local_server

from elevtts.server.app import ServerConfig

TEXT = "The quick brown fox jumps over the lazy dog."  # 9 words


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    # alloy speaks with espeak here (fast); the default map gives every OpenAI voice to joe
    config = ServerConfig(port=0, voices=("espeak", "joe"), voice_map=(("alloy", "espeak"),))
    thread, url = run_local_server(config)
    yield url.replace("ws://", "http://", 1) + "/v1"
    thread.stop()


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key="local") as made:
        yield made


def test_mp3(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="mp3")
    samples, rate = decode_mp3(response.content)
    assert rate == 24000
    assert_speech(samples, rate, words=9)


def test_pcm_is_24khz_s16le_mono(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="tts-1-hd", voice="alloy", input=TEXT, response_format="pcm")
    assert_speech(np.frombuffer(response.content, np.int16), 24000, words=9)


def test_wav_streams_with_a_header_of_unknown_length(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, response_format="wav"
    )
    body = response.content
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    channels, rate, _, _, bits = struct.unpack("<HIIHH", body[22:36])
    assert (channels, rate, bits) == (1, 24000, 16)
    assert struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF  # the length is not known when it starts
    assert_speech(np.frombuffer(body[44:], np.int16), 24000, words=9)


def test_streaming_response_arrives_in_several_chunks(client: openai.OpenAI) -> None:
    text = " ".join([TEXT] * 4)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="mp3"
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        chunks = list(response.iter_bytes(chunk_size=None))
    assert len(chunks) > 1
    samples, rate = decode_mp3(b"".join(chunks))
    assert_speech(samples, rate, words=36)


def test_speed_changes_the_rate(client: openai.OpenAI) -> None:
    def seconds(speed: float) -> float:
        pcm = client.audio.speech.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm", speed=speed
        ).content
        return len(pcm) / 2 / 24000

    assert seconds(1.5) < seconds(1.0) * 0.95


@pytest.mark.parametrize("name", ["opus", "aac", "flac"])
def test_formats_it_cannot_make_are_refused_in_openais_shape(client: openai.OpenAI, name: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format=name)  # type: ignore[arg-type]
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "response_format"
    assert error["type"] == "invalid_request_error" and error["code"] == "unsupported_value"


@pytest.mark.parametrize(
    ("field", "value"), [("model", "tts-9"), ("voice", "nobody"), ("input", ""), ("speed", 9.0)]
)
def test_bad_fields_are_refused_naming_the_field(client: openai.OpenAI, field: str, value: object) -> None:
    request = {"model": "tts-1", "voice": "alloy", "input": TEXT, field: value}
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(**request)  # type: ignore[arg-type]
    assert caught.value.body["param"] == field  # type: ignore[index]


@pytest.mark.neural
def test_the_default_map_speaks_openai_voices_with_joe(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="tts-1", voice="nova", input=TEXT, response_format="mp3")
    samples, rate = decode_mp3(response.content)
    assert_speech(samples, rate, words=9)


def test_a_keyed_server_wants_the_bearer_key(keyed_server: str) -> None:
    base = keyed_server.replace("ws://", "http://", 1) + "/v1"
    with openai.OpenAI(base_url=base, api_key="wrong") as wrong, pytest.raises(openai.AuthenticationError):
        wrong.audio.speech.create(model="tts-1", voice="espeak", input="Hi.")
    with openai.OpenAI(base_url=base, api_key="sesame") as right:
        audio = right.audio.speech.create(model="tts-1", voice="espeak", input="Hi.").content
    assert decode_mp3(audio)[0].size
