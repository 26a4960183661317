from __future__ import annotations

import pytest

from elevtts.formats import KNOWN_FORMATS, LOCAL_FORMATS, FormatError, parse_output_format


@pytest.mark.parametrize(
    ("name", "codec", "rate", "kbps"),
    [
        ("mp3_44100_128", "mp3", 44100, 128),
        ("mp3_22050_32", "mp3", 22050, 32),
        ("pcm_16000", "pcm", 16000, None),
        ("ulaw_8000", "ulaw", 8000, None),
        ("opus_48000_64", "opus", 48000, 64),
        ("wav_24000", "wav", 24000, None),
    ],
)
def test_parse_known_formats(name: str, codec: str, rate: int, kbps: int | None) -> None:
    fmt = parse_output_format(name)
    assert (fmt.name, fmt.codec, fmt.sample_rate, fmt.bitrate_kbps) == (name, codec, rate, kbps)
    assert fmt.extension == codec


@pytest.mark.parametrize(
    "name", ["", "pcm", "wav", "mp3_1_2", "foo_1", "mp3_44100", "pcm_16001", "MP3_44100_128"]
)
def test_unknown_formats_are_refused_by_name(name: str) -> None:
    with pytest.raises(FormatError, match="unknown output_format"):
        parse_output_format(name)


def test_only_wav_is_not_streamable_and_local_formats_are_known() -> None:
    assert {parse_output_format(n).codec for n in KNOWN_FORMATS if not parse_output_format(n).streamable} == {
        "wav"
    }
    assert set(LOCAL_FORMATS) <= set(KNOWN_FORMATS)
    assert parse_output_format("pcm_24000").bytes_per_second == 48000
    assert parse_output_format("mp3_44100_128").bytes_per_second is None
