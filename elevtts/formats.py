"""`output_format`: parsed once into one type that the client, the server, the writer and the player share.

    parse_output_format("mp3_44100_128") -> OutputFormat(codec="mp3", sample_rate=44100, bitrate_kbps=128)

The names are the live API's. Every name it documents parses; whether a particular server can
produce it is a separate question (`LOCAL_FORMATS` is what the local server encodes today).
`wav_*` exists on the live API's HTTP endpoints only, never on a WebSocket (`streamable` is false).
Pure and stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Codec = Literal["mp3", "pcm", "ulaw", "alaw", "opus", "wav"]
CODECS: tuple[Codec, ...] = get_args(Codec)

_MP3 = ("22050_32", "24000_48", "44100_32", "44100_64", "44100_96", "44100_128", "44100_192")
_PCM_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
_OPUS_BITRATES = (32, 64, 96, 128, 192)
_WAV_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)

MP3_FORMATS: tuple[str, ...] = tuple(f"mp3_{spec}" for spec in _MP3)
PCM_FORMATS: tuple[str, ...] = tuple(f"pcm_{rate}" for rate in _PCM_RATES)
G711_FORMATS: tuple[str, ...] = ("ulaw_8000", "alaw_8000")
OPUS_FORMATS: tuple[str, ...] = tuple(f"opus_48000_{kbps}" for kbps in _OPUS_BITRATES)
WAV_FORMATS: tuple[str, ...] = tuple(f"wav_{rate}" for rate in _WAV_RATES)

# Every name the live API documents, in its order.
KNOWN_FORMATS: tuple[str, ...] = (*MP3_FORMATS, *PCM_FORMATS, *G711_FORMATS, *OPUS_FORMATS, *WAV_FORMATS)
# What the local server encodes on its WebSocket endpoints (Opus when its 'opus' extra is installed).
LOCAL_FORMATS: tuple[str, ...] = (*MP3_FORMATS, *PCM_FORMATS, *G711_FORMATS, *OPUS_FORMATS)
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"


class FormatError(ValueError):
    """An output_format name that is unknown, or that the asked-for use cannot take."""


@dataclass(frozen=True)
class OutputFormat:
    name: str
    codec: Codec
    sample_rate: int
    bitrate_kbps: int | None = None

    @property
    def extension(self) -> str:
        return self.codec

    @property
    def streamable(self) -> bool:
        """Whether the WebSocket endpoints offer it (WAV is an HTTP-only, whole-file format)."""
        return self.codec != "wav"

    @property
    def raw(self) -> bool:
        """Headerless samples: a player must be told the encoding and the rate."""
        return self.codec in ("pcm", "ulaw", "alaw")

    @property
    def bytes_per_second(self) -> int | None:
        """For the raw codecs, the byte rate; None where the stream carries its own timing."""
        if self.codec == "pcm":
            return 2 * self.sample_rate
        if self.codec in ("ulaw", "alaw"):
            return self.sample_rate
        return None


def parse_output_format(name: str) -> OutputFormat:
    """The `OutputFormat` for a name the live API documents; `FormatError` otherwise."""
    if name not in KNOWN_FORMATS:
        raise FormatError(f"unknown output_format {name!r}; known values: {', '.join(KNOWN_FORMATS)}")
    codec, rate, *bitrate = name.split("_")
    assert codec in CODECS
    return OutputFormat(name, codec, int(rate), int(bitrate[0]) if bitrate else None)  # type: ignore[arg-type]
