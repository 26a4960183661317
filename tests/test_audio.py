from __future__ import annotations

import math
import random
import struct

import pytest

from elevtts.audio import DurationMeter, parse_mp3_header
from elevtts.formats import OutputFormat, parse_output_format

LAME_DELAY = 1105  # encoder delay + decoder delay in samples, added by LAME at the start


def sine_pcm(rate: int, seconds: float, channels: int = 1) -> bytes:
    frames = int(rate * seconds)
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) * channels
        for i in range(frames)
    )


def encode_mp3(rate: int, kbps: int, seconds: float, channels: int = 1) -> bytes:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(7)
    return bytes(encoder.encode(sine_pcm(rate, seconds, channels)) + encoder.flush())


def feed_randomly(meter: DurationMeter, data: bytes, rng: random.Random, largest: int = 900) -> None:
    pos = 0
    while pos < len(data):
        size = rng.randint(1, largest)
        meter.feed(data[pos : pos + size])
        pos += size


MP3_CASES = [(44100, 128, 1), (44100, 32, 1), (48000, 192, 2), (32000, 64, 1), (22050, 32, 1), (24000, 48, 1)]
MP3_CASES += [(16000, 32, 1), (11025, 8, 1), (8000, 16, 1)]  # MPEG-2 and MPEG-2.5: 576-sample frames


@pytest.mark.parametrize(("rate", "kbps", "channels"), MP3_CASES)
def test_mp3_duration_from_real_frames(rate: int, kbps: int, channels: int) -> None:
    mp3 = encode_mp3(rate, kbps, 1.5, channels)
    rng = random.Random(rate + kbps)
    for _ in range(3):
        meter = DurationMeter(OutputFormat(f"mp3_{rate}_{kbps}", "mp3", rate, kbps))  # any MPEG rate
        feed_randomly(meter, mp3, rng)
        # LAME adds its delay and pads the last frame: at most LAME_DELAY + one frame of samples
        # (at the rate LAME chose: it resamples when the bitrate is too low for the input rate).
        header = parse_mp3_header(mp3[:4])
        assert header is not None
        _, frame, out_rate, _ = header
        assert 1.5 <= meter.seconds <= 1.5 + (LAME_DELAY + frame) / out_rate
        assert meter.seconds == pytest.approx(decoded_seconds(mp3), abs=1e-6)


def decoded_seconds(mp3: bytes) -> float:
    import miniaudio

    decoded = miniaudio.mp3_read_s16(mp3)
    return decoded.num_frames / decoded.sample_rate


def test_mp3_at_44100_is_within_60_ms_of_the_input() -> None:
    meter = DurationMeter("mp3_44100_128")
    meter.feed(encode_mp3(44100, 128, 2.0))
    assert meter.seconds == pytest.approx(2.0, abs=0.06)


def test_mp3_counts_complete_frames_only() -> None:
    mp3 = encode_mp3(44100, 128, 0.5)
    header = parse_mp3_header(mp3[:4])
    assert header is not None
    length, samples, rate, _ = header
    meter = DurationMeter("mp3_44100_128")
    meter.feed(mp3[: length - 1])
    assert meter.seconds == 0
    meter.feed(mp3[length - 1 : length])
    assert meter.seconds == pytest.approx(samples / rate)


def test_mp3_skips_id3v2_tag() -> None:
    mp3 = encode_mp3(22050, 32, 1.0)
    body = b"TIT2" + b"\x00\x00\x00\x10\x00\x00" + b"\xff\xfb\x90\x00" * 4  # fake syncs inside the tag
    size = len(body)
    tag = b"ID3\x04\x00\x00" + bytes([(size >> 21) & 127, (size >> 14) & 127, (size >> 7) & 127, size & 127])
    meter = DurationMeter("mp3_22050_32")
    feed_randomly(meter, tag + body + mp3, random.Random(1), largest=7)
    assert meter.seconds == pytest.approx(decoded_seconds(mp3), abs=1e-6)


def test_mp3_resyncs_after_junk() -> None:
    mp3 = encode_mp3(44100, 64, 1.0)
    junk = b"garbage\xff\xfb\x90\x00 more junk \xff\xe0"
    meter = DurationMeter("mp3_44100_64")
    feed_randomly(meter, junk + mp3, random.Random(2))
    assert meter.seconds == pytest.approx(decoded_seconds(mp3), abs=1e-6)


def test_mp3_xing_info_frame_is_not_counted() -> None:
    mp3 = encode_mp3(44100, 128, 1.0)
    header = parse_mp3_header(mp3[:4])
    assert header is not None
    length = header[0]
    tag_frame = mp3[:4] + bytes(17) + b"Info" + bytes(length - 25)
    meter = DurationMeter("mp3_44100_128")
    meter.feed(tag_frame + mp3)
    assert meter.seconds == pytest.approx(decoded_seconds(mp3), abs=1e-6)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\xff\xfb\x90\x00", (417, 1152, 44100, 3)),  # MPEG-1 L3 128 kbit/s 44.1 kHz
        (b"\xff\xfb\x92\x00", (418, 1152, 44100, 3)),  # with padding
        (b"\xff\xf3\x40\xc4", (104, 576, 22050, 2)),  # MPEG-2 L3 32 kbit/s
        (b"\xff\xe3\x28\xc4", (144, 576, 8000, 0)),  # MPEG-2.5 L3 16 kbit/s
        (b"\xff\xfb\x00\x00", None),  # free format
        (b"\xff\xfb\xf0\x00", None),  # bad bitrate
        (b"\xff\xfb\x9c\x00", None),  # reserved sample rate
        (b"\xff\xeb\x90\x00", None),  # reserved version
        (b"\xff\xf9\x90\x00", None),  # reserved layer
        (b"\x00\xfb\x90\x00", None),  # no sync
    ],
)
def test_parse_mp3_header(header: bytes, expected: tuple[int, int, int, int] | None) -> None:
    assert parse_mp3_header(header) == expected


def test_pcm_duration() -> None:
    meter = DurationMeter("pcm_16000")
    meter.feed(b"\x00" * 16001)  # an odd byte is half a sample: not counted yet
    assert meter.seconds == 0.5
    meter.feed(b"\x00" * 15999)
    assert meter.seconds == 1.0


@pytest.mark.parametrize("output_format", ["ulaw_8000", "alaw_8000"])
def test_g711_duration(output_format: str) -> None:
    meter = DurationMeter(output_format)
    meter.feed(b"\x7f" * 4000)
    assert meter.seconds == 0.5


def ogg_page(granule: int, payload: bytes) -> bytes:
    segments = [255] * (len(payload) // 255) + [len(payload) % 255]
    header = b"OggS\x00\x00" + granule.to_bytes(8, "little", signed=True) + bytes(12)
    return header + bytes([len(segments)]) + bytes(segments) + payload


def test_ogg_opus_duration_from_granule_positions() -> None:
    head = b"OpusHead\x01\x01" + (312).to_bytes(2, "little") + bytes(7)
    stream = ogg_page(0, head) + ogg_page(0, b"OpusTags" + bytes(8))
    stream += ogg_page(312 + 48000, bytes(300)) + ogg_page(312 + 72000, bytes(40))
    meter = DurationMeter("opus_48000_64")
    feed_randomly(meter, stream, random.Random(3), largest=30)
    assert meter.seconds == 1.5


def test_ogg_partial_page_not_counted() -> None:
    page = ogg_page(48000, bytes(100))
    meter = DurationMeter("opus_48000_64")
    meter.feed(page[:-1])
    assert meter.seconds == 0
    meter.feed(page[-1:])
    assert meter.seconds == 1.0


@pytest.mark.parametrize(
    ("output_format", "extension"),
    [
        ("mp3_44100_128", "mp3"),
        ("pcm_24000", "pcm"),
        ("ulaw_8000", "ulaw"),
        ("alaw_8000", "alaw"),
        ("opus_48000_32", "opus"),
    ],
)
def test_extension_for(output_format: str, extension: str) -> None:
    assert parse_output_format(output_format).extension == extension


@pytest.mark.parametrize("output_format", ["wav_44100", "", "pcm"])
def test_unknown_formats_are_refused(output_format: str) -> None:
    with pytest.raises(ValueError, match="output_format"):
        DurationMeter(output_format)
