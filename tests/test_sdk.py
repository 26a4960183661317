"""The official `elevenlabs` SDK, unchanged, against the local server (protocol.md §8.6).

`convert_realtime` only yields audio, and it ends only when the server closes the socket: it
raises `ApiError` for any close code but 1000. So a call that returns, and returns in time, shows
that the server closed with 1000 after `isFinal`.

Two ways in: (A) plain ws:// by overriding the private `_ws_base_url` (base_url alone gives
wss://), and (B) no private attributes: TLS with a self-signed certificate for 127.0.0.1 that the
client trusts through `SSL_CERT_FILE`.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import assert_speech, decode_mp3, run_local_server
from elevenlabs import VoiceSettings
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError

from elevtts.server.app import ServerConfig

pytestmark = [
    # elevenlabs 2.78.0 reads `ConnectionClosed.code` and `.reason` (deprecated in websockets 13.1)
    pytest.mark.filterwarnings("ignore:ConnectionClosed.code is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:ConnectionClosed.reason is deprecated:DeprecationWarning"),
]

WORDS = ["Hello", ", world.", " The quick brown fox", " jumps over the lazy dog."]  # 11 words
NO_STALL_S = 10.0  # espeak speaks this in well under a second; a server that never closes stalls forever


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for IP 127.0.0.1 (SAN), made with the `openssl` command."""
    # The `cryptography` package is not installed in this venv, so the openssl CLI makes it.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("TLS test needs the openssl command (not on PATH) to make a self-signed certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture(scope="module")
def espeak_server() -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",)))
    yield url
    thread.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(the server's wss:// URL, the certificate a client must trust)."""
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), ssl_context=context))
    yield url, cert
    thread.stop()


def ws_client(url: str) -> ElevenLabs:
    """Approach A: the SDK pointed at ws:// through its private attribute."""
    client = ElevenLabs(api_key="local-test", base_url=f"http://127.0.0.1:{urlsplit(url).port}")
    client.text_to_speech._ws_base_url = url  # base_url alone would give wss://
    return client


def timed_join(chunks: Iterator[bytes]) -> tuple[bytes, float]:
    start = time.monotonic()
    audio = b"".join(chunks)
    return audio, time.monotonic() - start


def test_sdk_over_ws_yields_mp3_speech_and_ends(espeak_server: str) -> None:
    chunks = ws_client(espeak_server).text_to_speech.convert_realtime(
        voice_id="espeak",
        text=iter(WORDS),
        model_id="eleven_flash_v2_5",
        output_format="mp3_44100_128",
        voice_settings=VoiceSettings(stability=0.5, similarity_boost=0.8),
    )
    audio, elapsed = timed_join(chunks)
    assert elapsed < NO_STALL_S, f"the SDK waited {elapsed:.1f} s for the server to close"
    samples, rate = decode_mp3(audio)
    assert rate == 44100
    assert_speech(samples, rate, words=11)


def test_sdk_over_ws_pcm_16000_with_null_voice_settings(espeak_server: str) -> None:
    chunks = ws_client(espeak_server).text_to_speech.convert_realtime(
        voice_id="espeak",
        text=iter(WORDS),
        model_id="eleven_flash_v2_5",
        output_format="pcm_16000",
        voice_settings=None,  # sent as "voice_settings": null
    )
    audio, elapsed = timed_join(chunks)
    assert elapsed < NO_STALL_S
    assert len(audio) % 2 == 0
    assert_speech(np.frombuffer(audio, dtype="<i2"), 16000, words=11)


def test_sdk_with_model_voice_settings_and_format_omitted(espeak_server: str) -> None:
    chunks = ws_client(espeak_server).text_to_speech.convert_realtime(voice_id="espeak", text=iter(WORDS))
    audio, elapsed = timed_join(chunks)
    assert elapsed < NO_STALL_S
    samples, rate = decode_mp3(audio)  # the SDK's default output_format is mp3_44100_128
    assert rate == 44100
    assert_speech(samples, rate, words=11)


def test_sdk_wrong_voice_raises_api_error_1008_naming_the_listing(espeak_server: str) -> None:
    """The server refuses the voice right after the handshake (error frame, then close 1008).

    The SDK reports that in one of two shapes, depending on a race on its side: the JSON error
    frame as a dict when it read that frame before noticing the close, or else only the close
    reason, a string (when one of its sends fails first). Both must name the voices.
    """
    chunks = ws_client(espeak_server).text_to_speech.convert_realtime(voice_id="nobody", text=iter(["Hi."]))
    with pytest.raises(ApiError) as info:
        b"".join(chunks)
    assert info.value.status_code == 1008
    body = info.value.body
    if isinstance(body, dict):
        assert body["error"] == "voice_not_found" and body["code"] == 1008
        message = body["message"]
    else:
        message = body
    assert isinstance(message, str)
    assert "nobody" in message and "elevtts voices" in message and "GET /v1/voices" in message


def test_sdk_over_tls_trusting_the_certificate_via_ssl_cert_file(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    assert url.startswith("wss://127.0.0.1:")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by ssl.create_default_context at each connect
    client = ElevenLabs(api_key="local-test", base_url=f"https://127.0.0.1:{urlsplit(url).port}")
    chunks = client.text_to_speech.convert_realtime(
        voice_id="espeak",
        text=iter(WORDS),
        model_id="eleven_flash_v2_5",
        output_format="mp3_22050_32",
        voice_settings=VoiceSettings(stability=0.5, similarity_boost=0.8),
    )
    audio, elapsed = timed_join(chunks)
    assert elapsed < NO_STALL_S
    samples, rate = decode_mp3(audio)
    assert rate == 22050
    assert_speech(samples, rate, words=11)


def test_sdk_over_tls_refuses_the_certificate_without_ssl_cert_file(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: the certificate is really checked."""
    url, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    client = ElevenLabs(api_key="local-test", base_url=f"https://127.0.0.1:{urlsplit(url).port}")
    with pytest.raises(ssl.SSLCertVerificationError):
        b"".join(client.text_to_speech.convert_realtime(voice_id="espeak", text=iter(["Hi."])))
