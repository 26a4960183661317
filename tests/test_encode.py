"""Encoders: every output_format decodes back at its rate and length; G.711 is bit-exact."""

from __future__ import annotations

import warnings
from types import ModuleType

import miniaudio
import numpy as np
import pytest
from conftest import decode_opus

from elevtts.formats import LOCAL_FORMATS as SUPPORTED_FORMATS
from elevtts.formats import OutputFormat
from elevtts.protocol import ProtocolError
from elevtts.server.encode import Encoder, lin2alaw, lin2ulaw
from elevtts.server.session import local_output_format as parse_output_format

RATE = 22050


def audioop() -> ModuleType:
    """The stdlib reference coder (deprecated in 3.11, gone in 3.13): tests only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as module
    return module


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    """1.5 s of a speech-like signal: a 150-900 Hz sweep with a little noise."""
    t = np.arange(int(1.5 * RATE)) / RATE
    sweep = np.sin(2 * np.pi * (150 * t + 250 * t**2))
    noise = np.random.default_rng(1).normal(0, 0.05, len(t))
    return (np.clip(sweep * 0.6 + noise, -1, 1) * 20000).astype(np.int16)


def decode(fmt: OutputFormat, data: bytes) -> tuple[np.ndarray, int]:
    if fmt.codec == "mp3":
        info = miniaudio.mp3_get_info(data)  # decode() alone would resample to 44100
        decoded = miniaudio.decode(data, nchannels=1, sample_rate=info.sample_rate)
        return np.frombuffer(decoded.samples, np.int16), info.sample_rate
    if fmt.codec == "ulaw":
        return np.frombuffer(audioop().ulaw2lin(data, 2), np.int16), fmt.sample_rate
    if fmt.codec == "alaw":
        return np.frombuffer(audioop().alaw2lin(data, 2), np.int16), fmt.sample_rate
    if fmt.codec == "opus":
        return decode_opus(data)
    return np.frombuffer(data, "<i2"), fmt.sample_rate


def encode_in_pieces(encoder: Encoder, pcm: np.ndarray, sizes: list[int]) -> bytes:
    out, position = [], 0
    for size in sizes:
        out.append(encoder.encode(pcm[position : position + size]))
        position += size
    out.append(encoder.encode(pcm[position:]))
    out.append(encoder.finish())
    return b"".join(out)


def test_supported_formats() -> None:
    assert len(SUPPORTED_FORMATS) == 21
    assert "mp3_44100_128" in SUPPORTED_FORMATS
    assert "ulaw_8000" in SUPPORTED_FORMATS
    assert "alaw_8000" in SUPPORTED_FORMATS
    assert {f"opus_48000_{kbps}" for kbps in (32, 64, 96, 128, 192)} <= set(SUPPORTED_FORMATS)


def test_parse_output_format() -> None:
    assert parse_output_format("mp3_44100_128") == OutputFormat("mp3_44100_128", "mp3", 44100, 128)
    assert parse_output_format("pcm_16000") == OutputFormat("pcm_16000", "pcm", 16000, None)
    assert parse_output_format("ulaw_8000").extension == "ulaw"
    assert parse_output_format("mp3_22050_32").extension == "mp3"


@pytest.mark.parametrize("name", ["mp3_44100_320", "pcm_11025", "wav", "", "MP3_44100_128", "ulaw_16000"])
def test_unknown_formats_are_refused(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_output_format(name)
    assert info.value.error == "invalid_output_format"
    assert "mp3_44100_128" in info.value.message
    assert "alaw_8000" in info.value.message


@pytest.mark.parametrize("name", ["wav_44100", "wav_8000"])
def test_wav_is_refused_on_the_websocket(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_output_format(name)
    assert info.value.error == "invalid_output_format"
    assert "never on a WebSocket" in info.value.message


@pytest.mark.parametrize("name", ["opus_48000_64", "opus_48000_192"])
def test_opus_without_its_encoder_names_the_extra(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_output_format(name, opus_encoder=False)
    assert info.value.error == "invalid_output_format"
    assert "'opus' extra" in info.value.message
    assert "pip install" in info.value.message


def test_opus_with_its_encoder_is_offered() -> None:
    assert parse_output_format("opus_48000_96") == OutputFormat("opus_48000_96", "opus", 48000, 96)
    assert parse_output_format("opus_48000_96").extension == "opus"
    with pytest.raises(ProtocolError) as info:
        parse_output_format("mp3_1_2", opus_encoder=False)
    assert "opus_48000_64" not in info.value.message  # what this server cannot make is not offered


@pytest.mark.parametrize("name", SUPPORTED_FORMATS)
def test_every_format_decodes_at_its_rate_and_length(name: str, tone: np.ndarray) -> None:
    fmt = parse_output_format(name)
    data = encode_in_pieces(Encoder(fmt, RATE), tone, [2205] * 7)
    samples, rate = decode(fmt, data)
    assert rate == fmt.sample_rate
    expected = len(tone) / RATE
    duration = len(samples) / rate
    if fmt.codec == "mp3":
        assert expected <= duration <= expected + 0.1
        assert fmt.bitrate_kbps is not None
        # Constant bitrate: the file size follows from the bitrate (within a frame or two).
        assert abs(len(data) * 8 / duration / 1000 - fmt.bitrate_kbps) < fmt.bitrate_kbps * 0.15
    else:
        assert abs(len(samples) - round(expected * rate)) <= 1
    # The signal survives: same loudness, and it correlates with the resampled original.
    loudness = np.sqrt(np.mean(samples.astype(np.float64) ** 2))
    original = np.sqrt(np.mean(tone.astype(np.float64) ** 2))
    assert 0.7 * original < loudness < 1.3 * original


@pytest.mark.parametrize("name", SUPPORTED_FORMATS)
def test_pieces_equal_one_continuous_stream(name: str, tone: np.ndarray) -> None:
    fmt = parse_output_format(name)
    whole = encode_in_pieces(Encoder(fmt, RATE), tone, [])
    pieces = encode_in_pieces(Encoder(fmt, RATE), tone, [1, 999, 4410, 3, 7000, 0, 100])
    if fmt.codec == "opus":
        # Each Ogg stream has its own random serial number: compare what it decodes to.
        assert np.array_equal(decode(fmt, pieces)[0], decode(fmt, whole)[0])
    else:
        assert pieces == whole


@pytest.mark.parametrize("name", ["mp3_44100_128", "pcm_16000", "pcm_22050", "ulaw_8000"])
def test_finish_starts_a_fresh_stream(name: str, tone: np.ndarray) -> None:
    fmt = parse_output_format(name)
    encoder = Encoder(fmt, RATE)
    first = encode_in_pieces(encoder, tone, [5000])
    second = encode_in_pieces(encoder, tone, [5000])
    assert first == second == encode_in_pieces(Encoder(fmt, RATE), tone, [])
    assert encoder.finish() == b""  # nothing pending


def test_nothing_encoded_gives_nothing() -> None:
    for name in ("mp3_44100_128", "pcm_16000"):
        encoder = Encoder(parse_output_format(name), RATE)
        assert encoder.encode(np.zeros(0, np.int16)) == b""
        assert encoder.finish() == b""


def test_pcm_at_the_input_rate_is_the_input() -> None:
    pcm = np.arange(-1000, 1000, dtype=np.int16)
    encoder = Encoder(parse_output_format("pcm_22050"), RATE)
    assert encoder.encode(pcm) + encoder.finish() == pcm.astype("<i2").tobytes()


ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def test_ulaw_is_bit_exact_with_audioop() -> None:
    assert lin2ulaw(ALL_INT16) == audioop().lin2ulaw(ALL_INT16.tobytes(), 2)


def test_alaw_is_bit_exact_with_audioop() -> None:
    assert lin2alaw(ALL_INT16) == audioop().lin2alaw(ALL_INT16.tobytes(), 2)


def test_alaw_follows_g711() -> None:
    # G.711 A-law: sign bit set for positive values, even bits inverted (XOR 0x55).
    codes = lin2alaw(np.array([0, -1, 32767, -32768, 8, -8], np.int16))
    assert list(codes) == [0xD5, 0x55, 0xAA, 0x2A, 0xD5, 0x55]
    # Decoding our codes with the reference decoder stays within one quantization step.
    decoded = np.frombuffer(audioop().alaw2lin(lin2alaw(ALL_INT16), 2), np.int16).astype(np.int32)
    error = np.abs(decoded - ALL_INT16.astype(np.int32))
    step = np.maximum(16, np.abs(ALL_INT16.astype(np.int32)) // 16)
    assert np.all(error <= step)


def test_ulaw_follows_g711() -> None:
    # G.711 μ-law: all bits inverted, so silence is 0xFF and the extremes 0x80 / 0x00.
    codes = lin2ulaw(np.array([0, 32767, -32768], np.int16))
    assert list(codes) == [0xFF, 0x80, 0x00]
