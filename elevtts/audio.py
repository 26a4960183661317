"""Audio bookkeeping for the client: how many seconds of audio a received stream holds.

Pure and stdlib only (no numpy). MP3 duration comes from MPEG audio frame headers, Ogg Opus
duration from page granule positions; PCM and G.711 from byte counts.
"""

from __future__ import annotations

from elevtts.formats import FormatError, OutputFormat, parse_output_format

# Bitrates in kbit/s by (MPEG-1?, layer) and index 1-14.
_BITRATES = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sample rates by version bits (3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5).
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def parse_mp3_header(header: bytes) -> tuple[int, int, int, int] | None:
    """(frame length in bytes, samples in the frame, sample rate, version bits) or None.

    `header` holds at least 4 bytes. Free-format and reserved values are refused.
    """
    b1, b2 = header[1], header[2]
    if header[0] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = (b1 >> 3) & 3
    layer = 4 - ((b1 >> 1) & 3)  # bits 3, 2, 1 mean layer I, II, III
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (b2 >> 1) & 1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate, version
    samples = 1152 if layer == 2 or mpeg1 else 576
    return samples // 8 * bitrate // rate + padding, samples, rate, version


class DurationMeter:
    """Running duration of a received audio stream in a given output_format.

    MP3: frames are counted once complete; a partial frame is carried to the next `feed`.
    ID3v2 tags are skipped, junk is skipped by resyncing (a header found after junk must be
    confirmed by the next frame's header), and a leading Xing/Info tag frame is not counted.
    Ogg Opus: the last complete page's granule position minus the pre-skip, at 48 kHz.
    """

    def __init__(self, output_format: OutputFormat | str) -> None:
        if isinstance(output_format, str):
            output_format = parse_output_format(output_format)
        if not output_format.streamable:
            raise FormatError(f"output_format {output_format.name} is not a streamed format")
        self.output_format = output_format
        self.codec = output_format.codec
        self._rate = 0 if self.codec in ("mp3", "opus") else output_format.sample_rate
        self._bytes = 0
        self._samples = 0.0  # mp3: seconds so far (frames may change rate); see `seconds`
        self._buffer = b""
        self._skip = 0  # bytes of an ID3 tag still to skip
        self._trusted = True  # the next header needs no confirmation (stream start, after a tag)
        self._first_frame = True
        self._pre_skip = 0
        self._granule = 0
        self._chained_s = 0.0  # Ogg: the seconds of the chained streams before this one

    @property
    def seconds(self) -> float:
        """Audio seconds fed so far."""
        if self.codec == "pcm":
            return self._bytes // 2 / self._rate
        if self.codec in ("ulaw", "alaw"):
            return self._bytes / self._rate
        if self.codec == "opus":
            return self._chained_s + max(0, self._granule - self._pre_skip) / 48000
        return self._samples

    def feed(self, data: bytes) -> None:
        """Account for the next received bytes."""
        self._bytes += len(data)
        if self.codec == "mp3":
            self._feed_mp3(data)
        elif self.codec == "opus":
            self._feed_ogg(data)

    # -- MP3 -----------------------------------------------------------------------------------

    def _feed_mp3(self, data: bytes) -> None:
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        buf = self._buffer + data
        pos = 0
        while len(buf) - pos >= 4:
            if buf[pos : pos + 3] == b"ID3":
                if len(buf) - pos < 10:
                    break
                size = _id3_size(buf[pos : pos + 10])
                if size is not None:
                    end = pos + size
                    if end > len(buf):
                        self._skip = end - len(buf)
                        pos = len(buf)
                        break
                    pos = end
                    self._trusted = True
                    continue
            frame = parse_mp3_header(buf[pos : pos + 4])
            if frame is None:
                pos += 1
                self._trusted = False
                continue
            length, samples, rate, version = frame
            needed = length if self._trusted else length + 4
            if len(buf) - pos < needed:
                break  # wait for the whole frame (and the next header, to confirm a resync)
            if not self._trusted:
                following = parse_mp3_header(buf[pos + length : pos + length + 4])
                if following is None or following[2:] != (rate, version):
                    pos += 1
                    continue
            if not (self._first_frame and _is_tag_frame(buf[pos : pos + length])):
                self._samples += samples / rate
            self._first_frame = False
            self._trusted = True
            pos += length
        self._buffer = buf[pos:]

    # -- Ogg -----------------------------------------------------------------------------------

    def _feed_ogg(self, data: bytes) -> None:
        buf = self._buffer + data
        pos = 0
        while len(buf) - pos >= 27:
            if buf[pos : pos + 4] != b"OggS":
                found = buf.find(b"OggS", pos + 1)
                pos = found if found >= 0 else len(buf) - 3
                continue
            segments = buf[pos + 26]
            if len(buf) - pos < 27 + segments:
                break
            body = sum(buf[pos + 27 : pos + 27 + segments])
            end = pos + 27 + segments + body
            if end > len(buf):
                break
            payload = buf[pos + 27 + segments : end]
            if payload.startswith(b"OpusHead") and len(payload) >= 12:
                # A chained stream (the server ends one at each flush): bank what came before.
                self._chained_s += max(0, self._granule - self._pre_skip) / 48000
                self._granule = 0
                self._pre_skip = int.from_bytes(payload[10:12], "little")
            granule = int.from_bytes(buf[pos + 6 : pos + 14], "little", signed=True)
            if granule > 0:
                self._granule = granule
            pos = end
        self._buffer = buf[pos:]


def _id3_size(header: bytes) -> int | None:
    """Total size of an ID3v2 tag from its 10-byte header, or None if it is not one."""
    size_bytes = header[6:10]
    if header[3] == 0xFF or header[4] == 0xFF or any(b & 0x80 for b in size_bytes):
        return None
    size = 0
    for byte in size_bytes:
        size = size << 7 | byte
    footer = 10 if header[5] & 0x10 else 0
    return 10 + size + footer


def _is_tag_frame(frame: bytes) -> bool:
    """A LAME/Xing VBR header frame carries no audio."""
    return b"Xing" in frame[4:48] or b"Info" in frame[4:48]
