"""Opus output: Ogg Opus, mono, 48 kHz, the bitrate from the name, streamed page by page, decoded
length equal to the synthesized length; over the socket, in `speak` files, chunks and stdout."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import decode_opus, exchange, rms, run
from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.formats import OPUS_FORMATS, parse_output_format
from elevtts.protocol import ErrorFrame
from elevtts.server.encode import Encoder
from elevtts.server.engines import SynthesisOptions, get_engine
from elevtts.server.pacing import Pacer
from elevtts.server.session import Fail, Session, SessionRules

RATE = 22050
TEXT = "Opus carries this sentence to the listener, page after page, as it is made."


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return get_engine("espeak").synthesize(TEXT, SynthesisOptions(stability=1.0)).pcm


def pages(data: bytes) -> list[bytes]:
    """Split an Ogg stream into its pages (each starts with "OggS")."""
    found, position = [], 0
    while position < len(data):
        assert data[position : position + 4] == b"OggS", position
        segments = data[position + 26]
        table = data[position + 27 : position + 27 + segments]
        end = position + 27 + segments + sum(table)
        found.append(data[position:end])
        position = end
    return found


@pytest.mark.parametrize("name", OPUS_FORMATS)
def test_opus_decodes_at_48k_to_the_synthesized_length(name: str, speech: np.ndarray) -> None:
    encoder = Encoder(parse_output_format(name), RATE)
    parts = [encoder.encode(speech[i : i + 2205]) for i in range(0, len(speech), 2205)]
    parts.append(encoder.finish())
    data = b"".join(parts)
    samples, rate = decode_opus(data)
    assert rate == 48000
    # soxr gives exactly round(n * 48000 / 22050) samples; the end-of-stream granule trims the padding.
    assert abs(len(samples) - round(len(speech) * 48000 / RATE)) <= 1
    assert rms(samples) > 0.5 * rms(speech)


def test_opus_streams_page_by_page(speech: np.ndarray) -> None:
    encoder = Encoder(parse_output_format("opus_48000_64"), RATE)
    parts = [encoder.encode(speech[i : i + 2205]) for i in range(0, len(speech), 2205)]
    tail = encoder.finish()
    produced = [p for p in parts if p]
    # Bytes come out while audio goes in, not only at the end.
    assert len(produced) >= len(parts) - 2
    first = produced[0]
    assert first.startswith(b"OggS") and b"OpusHead" in first and b"OpusTags" in first
    for part in produced[1:]:
        assert part.startswith(b"OggS") and b"OpusHead" not in part  # whole pages, headers once
    all_pages = pages(b"".join([*produced, tail]))
    assert all_pages[-1][5] & 0x04  # the last page is marked end of stream
    head = all_pages[0]
    assert head[28:36] == b"OpusHead" and head[37] == 1  # mono
    assert int.from_bytes(head[40:44], "little") == 48000


@pytest.mark.parametrize("name", OPUS_FORMATS)
def test_the_bitrate_follows_the_name(name: str, speech: np.ndarray) -> None:
    encoder = Encoder(parse_output_format(name), RATE)
    data = encoder.encode(speech) + encoder.finish()
    # The Opus packets (the page payloads after the two header pages) at the named bitrate; the
    # Ogg pages add about 11 kb/s on top (one 27-byte header every 20 ms).
    payload = sum(sum(page[27 : 27 + page[26]]) for page in pages(data)[2:])
    kbps = payload * 8 / (len(speech) / RATE) / 1000
    target = parse_output_format(name).bitrate_kbps
    assert target is not None and 0.75 * target < kbps < 1.1 * target, kbps


def test_a_session_without_the_encoder_refuses_opus_naming_the_extra() -> None:
    session = Session(
        SessionRules(served_voices=("espeak",), opus_encoder=False), Pacer(), voice_id="espeak", multi=False
    )
    actions = session.open({"output_format": "opus_48000_64"}, now=0.0)
    assert len(actions) == 1 and isinstance(actions[0], Fail)
    frame: ErrorFrame = actions[0].frame
    assert frame.error == "invalid_output_format"
    assert "'opus' extra" in frame.message
    assert actions[0].error.code == 1008


def test_opus_over_the_socket_streams_and_matches_pcm(local_server: str) -> None:
    def url(fmt: str) -> str:
        return f"{local_server}/v1/text-to-speech/espeak/stream-input?output_format={fmt}"

    messages = [
        {"text": " ", "voice_settings": {"stability": 1.0}},
        {"text": TEXT + " " + TEXT},
        {"text": ""},
    ]
    opus = run(exchange(url("opus_48000_96"), messages))
    assert opus.close_code == 1000 and not opus.errors
    frames = [base64.b64decode(f["audio"]) for f in opus.audio_frames]
    assert len(frames) >= 2
    assert frames[0].startswith(b"OggS") and b"OpusHead" in frames[0]
    assert all(frame.startswith(b"OggS") for frame in frames[1:])
    samples, rate = decode_opus(opus.audio())
    assert rate == 48000 and rms(samples) > 300
    pcm = run(exchange(url("pcm_48000"), messages))
    reference = np.frombuffer(pcm.audio(), "<i2")
    # The same speech: the same length within espeak's few-sample jitter.
    assert abs(len(samples) - len(reference)) / 48000 < 0.02


def test_speak_writes_an_opus_file_chunks_and_stdout(
    local_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    common = ["speak", "--url", local_server, "--voice", "espeak", "--output-format", "opus_48000_64"]
    result = runner.invoke(app, [*common, "--name", "note", "--keep-chunks", "--json", TEXT])
    assert result.exit_code == 0, result.output
    audio = Path("output/note.opus")
    samples, rate = decode_opus(audio.read_bytes())
    assert rate == 48000 and 2.0 < len(samples) / rate < 10.0
    stats = json.loads(result.stdout)
    assert abs(stats["audio_seconds"] - len(samples) / rate) < 0.05  # the client reads Ogg granules
    chunks = sorted(Path("output/note").glob("*.opus"))
    assert chunks and b"".join(c.read_bytes() for c in chunks) == audio.read_bytes()
    piped = runner.invoke(app, [*common, "-o", "-", "-q", TEXT])
    assert piped.exit_code == 0
    piped_samples, piped_rate = decode_opus(piped.stdout_bytes)
    assert piped_rate == 48000 and abs(len(piped_samples) - len(samples)) / 48000 < 0.05


def test_a_flush_chains_ogg_streams_that_decode_and_measure_in_full(speech: np.ndarray) -> None:
    """Each flush ends the encoder's stream (the turn is delivered whole); the next audio starts a
    chained Ogg stream. Decoders play the chain; the client's duration meter counts all of it."""
    from elevtts.audio import DurationMeter

    encoder = Encoder(parse_output_format("opus_48000_64"), RATE)
    data = encoder.encode(speech) + encoder.finish() + encoder.encode(speech) + encoder.finish()
    samples, _ = decode_opus(data)
    one = round(len(speech) * 48000 / RATE)
    assert abs(len(samples) - 2 * one) <= 2
    meter = DurationMeter("opus_48000_64")
    for start in range(0, len(data), 1000):  # as it arrives, in pieces
        meter.feed(data[start : start + 1000])
    assert meter.seconds == pytest.approx(2 * one / 48000, abs=0.001)
