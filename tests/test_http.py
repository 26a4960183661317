"""The HTTP API on the WebSocket's port: the official `elevenlabs` SDK's REST calls, unchanged,
against one `serve` on port 0 through `base_url`; then errors, auth, limits, health and CORS
at the HTTP level.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import socket
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from conftest import ServerThread, assert_speech, decode_mp3, decode_opus, run_local_server
from elevenlabs import VoiceSettings
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError

from elevtts.server import engines
from elevtts.server.app import ServerConfig, server_url, start_server
from elevtts.server.engines import Speech, SynthesisOptions, Voice, get_engine, register_engine

pytestmark = [
    pytest.mark.filterwarnings("ignore:ConnectionClosed.code is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:ConnectionClosed.reason is deprecated:DeprecationWarning"),
]

TEXT = "The quick brown fox jumps over the lazy dog."  # 9 words
LONG = " ".join(
    [
        "The first sentence of a longer text is spoken while the rest waits its turn.",
        "A second sentence follows it, with a few more words to say.",
        "The third sentence is here so that the text needs several pieces.",
        "And the fourth one ends it, after everything else has been said.",
    ]
)


class CountingEngine:
    """espeak, counting the pieces it has finished (registered as a voice of its own)."""

    voice = Voice("espeak-counted", "Counted espeak", "espeak", "en", 22050, "espeak, counting its pieces")
    finished: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.espeak = get_engine("espeak")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        speech = self.espeak.synthesize(text, options)
        CountingEngine.finished.append(text)
        return speech


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    register_engine(CountingEngine.voice, CountingEngine)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak", CountingEngine.voice.voice_id)))
    yield url
    thread.stop()
    engines._REGISTRY.pop(CountingEngine.voice.voice_id)  # no public unregister


def http_of(url: str) -> str:
    return url.replace("ws://", "http://", 1)


_clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Each SDK client's connections are closed after the test (an unclosed socket is a warning)."""
    yield
    while _clients:
        _clients.pop().close()


def sdk(url: str, *, api_key: str = "local-test") -> ElevenLabs:
    client = httpx.Client(timeout=60)
    _clients.append(client)
    return ElevenLabs(api_key=api_key, base_url=http_of(url), httpx_client=client)


def post(url: str, body: Any, *, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


# -- the SDK ------------------------------------------------------------------------------------


def test_sdk_convert_gives_the_whole_audio(server: str) -> None:
    audio = b"".join(sdk(server).text_to_speech.convert(voice_id="espeak", text=TEXT))
    samples, rate = decode_mp3(audio)
    assert rate == 44100  # the default output_format, mp3_44100_128
    assert_speech(samples, rate, words=9)


def test_sdk_convert_honours_output_format_and_speed(server: str) -> None:
    client = sdk(server)

    def seconds(speed: float) -> float:
        pcm = b"".join(
            client.text_to_speech.convert(
                voice_id="espeak",
                text=TEXT,
                output_format="pcm_16000",
                voice_settings=VoiceSettings(speed=speed),
            )
        )
        return len(pcm) / 2 / 16000

    normal, fast = seconds(1.0), seconds(1.2)
    assert 9 * 0.15 <= normal <= 9 * 0.8 + 1
    assert fast < normal * 0.95  # speed really changes the rate


def test_sdk_stream_sends_the_first_bytes_before_the_last_piece_is_synthesized(server: str) -> None:
    CountingEngine.finished.clear()
    stream = sdk(server).text_to_speech.stream(voice_id=CountingEngine.voice.voice_id, text=LONG)
    first = next(stream)
    pieces_at_first_bytes = len(CountingEngine.finished)
    audio = first + b"".join(stream)
    assert pieces_at_first_bytes < len(CountingEngine.finished), CountingEngine.finished
    samples, rate = decode_mp3(audio)
    assert_speech(samples, rate, words=len(LONG.split()))


def test_sdk_convert_with_timestamps_aligns_text_and_audio(server: str) -> None:
    result = sdk(server).text_to_speech.convert_with_timestamps(voice_id="espeak", text=TEXT)
    samples, rate = decode_mp3(base64.b64decode(result.audio_base_64))
    assert_speech(samples, rate, words=9)
    alignment = result.alignment
    assert alignment is not None and "".join(alignment.characters) == TEXT
    starts, ends = alignment.character_start_times_seconds, alignment.character_end_times_seconds
    assert starts == sorted(starts) and all(s <= e for s, e in zip(starts, ends, strict=True))
    # the last character ends within the audio, near its end (the encoder pads a little)
    assert len(samples) / rate - 0.6 <= ends[-1] <= len(samples) / rate + 0.05
    assert result.normalized_alignment is not None


def test_sdk_stream_with_timestamps_covers_the_text_in_order(server: str) -> None:
    chunks = list(sdk(server).text_to_speech.stream_with_timestamps(voice_id="espeak", text=LONG))
    assert len(chunks) > 1
    audio = b"".join(base64.b64decode(c.audio_base_64) for c in chunks)
    samples, rate = decode_mp3(audio)
    characters = [ch for c in chunks if c.alignment for ch in c.alignment.characters]
    starts = [t for c in chunks if c.alignment for t in c.alignment.character_start_times_seconds]
    assert "".join(characters) == LONG
    assert starts == sorted(starts)  # times run on across chunks, from the start of the audio
    assert starts[-1] <= len(samples) / rate


def test_sdk_lists_voices_and_models(server: str) -> None:
    client = sdk(server)
    found = client.voices.search()
    assert {"espeak", CountingEngine.voice.voice_id} <= {v.voice_id for v in found.voices}
    assert found.total_count == len(found.voices) and found.has_more is False
    voice = client.voices.get(voice_id="espeak")
    assert voice.voice_id == "espeak" and voice.name
    models = client.models.list()
    flash = next(m for m in models if m.model_id == "eleven_flash_v2_5")
    assert flash.can_do_text_to_speech and flash.max_characters_request_subscribed_user == 40_000
    assert flash.languages and flash.languages[0].language_id == "en"


def test_sdk_convert_realtime_over_the_same_port(server: str) -> None:
    client = sdk(server)
    client.text_to_speech._ws_base_url = server  # base_url alone would give wss://
    audio = b"".join(client.text_to_speech.convert_realtime(voice_id="espeak", text=iter([TEXT])))
    samples, rate = decode_mp3(audio)
    assert_speech(samples, rate, words=9)


def test_sdk_unknown_voice_is_404_voice_not_found(server: str) -> None:
    with pytest.raises(ApiError) as caught:
        b"".join(sdk(server).text_to_speech.convert(voice_id="nobody", text=TEXT))
    assert caught.value.status_code == 404
    assert caught.value.body["detail"]["status"] == "voice_not_found"


# -- formats --------------------------------------------------------------------------------------


def test_wav_is_a_real_riff_file(server: str) -> None:
    import wave

    status, headers, body = post(
        f"{http_of(server)}/v1/text-to-speech/espeak?output_format=wav_16000", {"text": TEXT}
    )
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
        assert wav.getnframes() == (len(body) - 44) // 2
    assert_speech(samples, 16000, words=9)


def test_streamed_wav_has_a_header_of_unknown_length(server: str) -> None:
    status, _, body = post(
        f"{http_of(server)}/v1/text-to-speech/espeak/stream?output_format=wav_22050", {"text": TEXT}
    )
    assert status == 200 and body[:4] == b"RIFF" and body[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF
    assert_speech(np.frombuffer(body[44:], np.int16), 22050, words=9)


@pytest.mark.parametrize("name", ["pcm_24000", "ulaw_8000", "alaw_8000", "mp3_22050_32"])
def test_every_websocket_format_is_served_over_http(server: str, name: str) -> None:
    status, _, body = post(f"{http_of(server)}/v1/text-to-speech/espeak?output_format={name}", {"text": TEXT})
    assert status == 200
    if name.startswith("mp3"):
        samples, rate = decode_mp3(body)
        assert rate == 22050
        assert_speech(samples, rate, words=9)
    else:
        rate, width = int(name.split("_")[1]), 2 if name.startswith("pcm") else 1
        assert 9 * 0.15 <= len(body) / width / rate <= 9 * 0.8 + 1


def test_opus_over_http_is_ogg_opus_at_48_khz(server: str) -> None:
    got, _, raw = post(
        f"{http_of(server)}/v1/text-to-speech/espeak?output_format=opus_48000_64", {"text": "Opus over HTTP."}
    )
    assert got == 200 and raw.startswith(b"OggS")
    samples, rate = decode_opus(raw)
    assert rate == 48000 and len(samples) > rate // 2


# -- errors as the live API answers them -------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "body", "status", "expected"),
    [
        ("?output_format=mp3_1_2", {"text": "Hi."}, 422, None),
        ("", b'{"text": "Hi.', 422, None),
        ("", {"model_id": "eleven_multilingual_v2"}, 422, None),
        ("", {"text": "x " * 5001}, 400, "max_character_limit_exceeded"),
        ("", {"text": "Hi.", "voice_settings": {"speed": 3}}, 422, None),
    ],
    ids=["unknown_format", "malformed_json", "no_text", "too_long", "bad_speed"],
)
def test_bad_requests_get_the_live_apis_status_and_body(
    server: str, query: str, body: Any, status: int, expected: str | None
) -> None:
    got, headers, raw = post(f"{http_of(server)}/v1/text-to-speech/espeak{query}", body)
    answer = json.loads(raw)
    assert got == status and headers["Content-Type"] == "application/json"
    if expected is None:  # FastAPI's validation list, as the live API's 422
        assert isinstance(answer["detail"], list) and answer["detail"][0]["loc"]
    else:
        assert answer["detail"]["status"] == expected and answer["detail"]["message"]


def test_the_model_sets_the_text_limit(server: str) -> None:
    text = "word " * 3000  # 15,000 characters: over multilingual v2's 10,000, under flash's 40,000
    assert post(f"{http_of(server)}/v1/text-to-speech/espeak", {"text": text})[0] == 400
    # (not spoken: the limit is checked before synthesis, so a too-long body costs nothing)


def test_unknown_paths_and_methods_are_json(server: str) -> None:
    status, headers, raw = post(f"{http_of(server)}/v1/nothing", {"text": "Hi."})
    assert status in (404, 405) and headers["Content-Type"] == "application/json"
    assert json.loads(raw)["detail"]["status"]


# -- auth -------------------------------------------------------------------------------------------


def test_a_keyed_server_wants_the_key_on_every_api_route(keyed_server: str) -> None:
    base = http_of(keyed_server)
    status, _, raw = post(f"{base}/v1/text-to-speech/espeak", {"text": "Hi."})
    assert (status, json.loads(raw)["detail"]["status"]) == (401, "needs_authorization")
    status, _, raw = post(f"{base}/v1/text-to-speech/espeak", {"text": "Hi."}, headers={"xi-api-key": "nope"})
    assert (status, json.loads(raw)["detail"]) == (
        401,
        {"status": "invalid_api_key", "message": "Invalid API key"},
    )
    with pytest.raises(ApiError) as caught:
        sdk(keyed_server, api_key="wrong").voices.search()
    assert caught.value.status_code == 401
    audio = b"".join(
        sdk(keyed_server, api_key="sesame").text_to_speech.convert(voice_id="espeak", text="Hi.")
    )
    assert decode_mp3(audio)[0].size
    with urllib.request.urlopen(f"{base}/health", timeout=10) as response:  # health stays open
        assert response.status == 200


# -- limits -----------------------------------------------------------------------------------------


class GatedEngine:
    """espeak that waits for the test to open its gate before each piece."""

    voice = Voice("espeak-gated", "Gated espeak", "espeak", "en", 22050, "waits for a gate")
    gate = threading.Event()
    entered = threading.Event()

    def __init__(self) -> None:
        self.espeak = get_engine("espeak")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if text in ("Warming up.", "One moment.") or text.startswith("The voice is getting ready"):
            return self.espeak.synthesize(text, options)
        GatedEngine.entered.set()
        GatedEngine.gate.wait(30)
        return self.espeak.synthesize(text, options)


def test_beyond_the_queue_requests_get_429_with_retry_after() -> None:
    register_engine(GatedEngine.voice, GatedEngine)
    GatedEngine.gate.clear()
    GatedEngine.entered.clear()
    config = ServerConfig(port=0, voices=(GatedEngine.voice.voice_id,), synthesis_slots=1, max_queue=1)
    thread, url = run_local_server(config)
    speak = f"{http_of(url)}/v1/text-to-speech/{GatedEngine.voice.voice_id}"
    answers: list[tuple[int, dict[str, str], bytes]] = []

    def request() -> None:
        answers.append(post(speak, {"text": "Hi."}))

    try:
        holder = threading.Thread(target=request)
        holder.start()
        assert GatedEngine.entered.wait(30)  # the first request holds the only slot
        others = [threading.Thread(target=request) for _ in range(3)]
        for other in others:
            other.start()
        # one of the three waits in the queue (one place), two are refused at once
        for _ in range(600):
            if len(answers) >= 2:
                break
            threading.Event().wait(0.05)
        refused = list(answers)
        GatedEngine.gate.set()
        for each in [holder, *others]:
            each.join(60)
        assert [status for status, _, _ in refused] == [429, 429]
        assert all(headers["Retry-After"] == "1" for _, headers, _ in refused)
        assert json.loads(refused[0][2])["detail"]["status"] == "too_many_concurrent_requests"
        assert sorted(status for status, _, _ in answers) == [200, 200, 429, 429]  # the queued one was served
    finally:
        GatedEngine.gate.set()
        thread.stop()
        engines._REGISTRY.pop(GatedEngine.voice.voice_id)


# -- operators --------------------------------------------------------------------------------------


class SlowLoadingEngine:
    """An engine whose voice loads only once the test says so."""

    voice = Voice("espeak-slow-load", "Slow loading", "espeak", "en", 22050, "loads when told")
    loaded = threading.Event()

    def __init__(self) -> None:
        SlowLoadingEngine.loaded.wait(30)
        self.espeak = get_engine("espeak")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        return self.espeak.synthesize(text, options)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _health(port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)
    except OSError:
        return None  # not listening yet


def test_health_is_503_until_the_voice_is_loaded_and_warm() -> None:
    register_engine(SlowLoadingEngine.voice, SlowLoadingEngine)
    SlowLoadingEngine.loaded.clear()
    port = _free_port()

    async def factory() -> tuple[Any, str]:
        server, _ = await start_server(ServerConfig(port=port, voices=(SlowLoadingEngine.voice.voice_id,)))
        return server, server_url(server)

    thread = ServerThread(factory)
    starter = threading.Thread(target=thread.start)
    starter.start()
    try:
        answer = None
        for _ in range(500):
            answer = _health(port)
            if answer is not None:
                break
            threading.Event().wait(0.02)
        assert answer == (503, {"status": "loading"})
        head = urllib.request.Request(f"http://127.0.0.1:{port}/health", method="HEAD")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(head, timeout=5)
        caught.value.close()
        assert caught.value.code == 503
        SlowLoadingEngine.loaded.set()
        starter.join(60)
        assert _health(port) == (200, {"status": "ok"})
        with urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{port}/health", method="HEAD")
        ) as ok:
            assert ok.status == 200
    finally:
        SlowLoadingEngine.loaded.set()
        starter.join(60)
        thread.stop()
        engines._REGISTRY.pop(SlowLoadingEngine.voice.voice_id)


def test_cors_is_off_by_default_and_allows_only_the_given_origins(server: str) -> None:
    def preflight(url: str, origin: str) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(
            f"{http_of(url)}/v1/text-to-speech/espeak",
            method="OPTIONS",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers)

    assert "Access-Control-Allow-Origin" not in preflight(server, "http://page.test")[1]
    thread, url = run_local_server(
        ServerConfig(port=0, voices=("espeak",), cors_origins=("http://page.test",))
    )
    try:
        status, headers = preflight(url, "http://page.test")
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "http://page.test"
        assert "POST" in headers["Access-Control-Allow-Methods"]
        assert "Access-Control-Allow-Origin" not in preflight(url, "http://elsewhere.test")[1]
        status, headers, _ = post(
            f"{http_of(url)}/v1/text-to-speech/espeak",
            {"text": "Hi."},
            headers={"Origin": "http://page.test"},
        )
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://page.test"
    finally:
        thread.stop()


def test_root_answers_as_before(server: str) -> None:
    with urllib.request.urlopen(f"{http_of(server)}/", timeout=10) as response:
        assert (response.status, json.load(response)) == (200, {"status": "ok"})
    assert urlsplit(server).port


def test_pronunciation_dictionaries_apply_over_http(tmp_path: Any) -> None:
    from elevtts.server.dictionary import DictionaryStore, load_lexicon

    path = tmp_path / "tech.pls"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" '
        'alphabet="ipa" xml:lang="en-US">\n'
        "<lexeme><grapheme>SQL</grapheme><alias>sequel</alias></lexeme>\n</lexicon>\n",
        encoding="utf-8",
    )
    lexicon = load_lexicon(path)
    store = DictionaryStore()
    store.add(lexicon)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), dictionaries=store))
    text = "I like SQL a lot."
    try:
        client = sdk(url)
        locator = {"pronunciation_dictionary_id": lexicon.dictionary_id, "version_id": lexicon.version_id}
        timed = client.text_to_speech.convert_with_timestamps(
            voice_id="espeak", text=text, pronunciation_dictionary_locators=[locator]
        )
        unknown = post(
            f"{http_of(url)}/v1/text-to-speech/espeak",
            {"text": text, "pronunciation_dictionary_locators": [{"pronunciation_dictionary_id": "nope"}]},
        )
    finally:
        thread.stop()
    assert timed.alignment is not None and "".join(timed.alignment.characters) == text
    assert timed.normalized_alignment is not None
    assert "sequel" in "".join(timed.normalized_alignment.characters)
    assert unknown[0] == 404
    assert json.loads(unknown[2])["detail"]["status"] == "pronunciation_dictionary_not_found"


@pytest.mark.parametrize(
    "path", ["/v1/text-to-speech/espeak/stream", "/v1/text-to-speech/espeak/stream/with-timestamps"]
)
def test_a_client_leaving_mid_stream_is_no_error(
    server: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = urlsplit(server).port
    assert port is not None
    body = json.dumps({"text": "A sentence to speak here. " * 100}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(head.encode() + body)
        assert client.recv(12) == b"HTTP/1.1 200"  # the stream has started: leave
    # the server goes on serving, and said nothing worse than INFO about the one who left
    audio = b"".join(sdk(server).text_to_speech.convert(voice_id="espeak", text="Still here."))
    assert decode_mp3(audio)[0].size
    assert [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "WARNING")] == []


class FailingEngine:
    """espeak that fails on a piece that says so."""

    voice = Voice("espeak-failing", "Failing espeak", "espeak", "en", 22050, "fails on 'explode'")

    def __init__(self) -> None:
        self.espeak = get_engine("espeak")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if "explode" in text:
            raise RuntimeError("the engine failed")
        return self.espeak.synthesize(text, options)


def test_an_engine_failure_is_a_500_logged_once_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_engine(FailingEngine.voice, FailingEngine)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak", FailingEngine.voice.voice_id)))
    base = f"{http_of(url)}/v1/text-to-speech/{FailingEngine.voice.voice_id}"
    try:
        with caplog.at_level(logging.ERROR):
            status, _, raw = post(base, {"text": "Please explode."})
            assert status == 500
            assert json.loads(raw)["detail"]["status"] == "internal_error"
            # mid-stream: the first sentence went out, then the body ends without its last chunk
            text = "This first sentence is spoken well before the rest. " * 3 + "Then explode."
            with pytest.raises(http.client.IncompleteRead):
                post(f"{base}/stream", {"text": text})
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 2 and all(r.exc_info for r in errors), [r.getMessage() for r in errors]
        assert post(f"{http_of(url)}/v1/text-to-speech/espeak", {"text": "Still here."})[0] == 200
    finally:
        thread.stop()
        engines._REGISTRY.pop(FailingEngine.voice.voice_id)
