"""One audiobook MP3 from per-chapter MP3s, with ID3v2 chapter marks. Frames are copied, never
re-encoded.

Each chapter file's ID3v2/ID3v1/APE tags and its Xing/Info/VBRI frame (a silent frame holding
the old file's length, which decoders skip) are dropped; the MPEG frames follow one ID3v2.3 tag
with the title (TIT2), author (TPE1), one CHAP per chapter (titled, contiguous, each as long as
its frames decode to) under one ordered top-level CTOC. Times in a CHAP are whole milliseconds:
each boundary is rounded from the exact sample count, so no error adds up over many chapters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from io import BytesIO
from pathlib import Path

from elevtts.books import require

_BITRATES_KBPS = {  # Layer III
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
_VERSIONS = {3: 1, 2: 2, 0: 25}  # header bits -> MPEG 1, 2, 2.5
_NO_OFFSET = 0xFFFFFFFF  # CHAP byte offsets unused: times rule


@dataclass(frozen=True)
class _Frame:
    offset: int
    length: int
    samples: int
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class ChapterMark:
    title: str
    start_ms: int
    end_ms: int


def _header(data: bytes | memoryview, offset: int) -> _Frame | None:
    """The Layer III frame starting at `offset`, if its header is valid and it fits."""
    if offset + 4 > len(data):
        return None
    b0, b1, b2, b3 = data[offset], data[offset + 1], data[offset + 2], data[offset + 3]
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0 or ((b1 >> 1) & 3) != 1:
        return None
    version = _VERSIONS.get((b1 >> 3) & 3)
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if version is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _BITRATES_KBPS[1 if version == 1 else 2][bitrate_index] * 1000
    sample_rate = _SAMPLE_RATES[version][rate_index]
    samples = 1152 if version == 1 else 576
    length = samples // 8 * bitrate // sample_rate + ((b2 >> 1) & 1)
    if offset + length > len(data):
        return None  # a truncated last frame: decoders drop it too
    return _Frame(offset, length, samples, sample_rate, 1 if (b3 >> 6) == 3 else 2)


def _is_info_frame(data: bytes, frame: _Frame) -> bool:
    version_bits = (data[frame.offset + 1] >> 3) & 3
    side_info = (
        (32 if frame.channels == 2 else 17) if version_bits == 3 else (17 if frame.channels == 2 else 9)
    )
    tag_at = frame.offset + 4 + side_info
    return (
        data[tag_at : tag_at + 4] in (b"Xing", b"Info")
        or data[frame.offset + 36 : frame.offset + 40] == b"VBRI"
    )


def _skip_id3v2(data: bytes) -> int:
    offset = 0
    while data[offset : offset + 3] == b"ID3" and offset + 10 <= len(data):  # some files carry two
        size = 0
        for byte in data[offset + 6 : offset + 10]:
            size = (size << 7) | (byte & 0x7F)
        offset += 10 + size + (10 if data[offset + 5] & 0x10 else 0)
    return offset


def mp3_frames(data: bytes, *, name: str = "MP3") -> list[_Frame]:
    """The audio frames of one MP3 file, tags and the Xing/Info frame left out.

    `ValueError` if it holds no Layer III frames. Bytes that are not a frame (junk, a trailing
    ID3v1 or APE tag) are skipped up to the next frame whose successor also lines up."""
    frames: list[_Frame] = []
    offset = _skip_id3v2(data)
    while offset + 4 <= len(data):
        frame = _header(data, offset)
        following = _header(data, offset + frame.length) if frame else None
        end_of_data = frame is not None and offset + frame.length == len(data)
        if frame and (
            following or end_of_data or (frames and frames[-1].offset + frames[-1].length == offset)
        ):
            frames.append(frame)
            offset += frame.length
        else:
            offset += 1
    if frames and _is_info_frame(data, frames[0]):
        frames = frames[1:]
    if not frames:
        raise ValueError(f"{name}: no MPEG Layer III audio frames")
    return frames


def _read(source: bytes | str | Path) -> bytes:
    return bytes(source) if isinstance(source, bytes | bytearray | memoryview) else Path(source).read_bytes()


def _chapter_frames(sources: Sequence[bytes | str | Path]) -> Iterator[tuple[int, bytes, list[_Frame]]]:
    for number, source in enumerate(sources, start=1):
        data = _read(source)
        yield number, data, mp3_frames(data, name=f"chapter {number}")


def chapter_marks(titles: Sequence[str], sources: Sequence[bytes | str | Path]) -> list[ChapterMark]:
    """Where each chapter starts and ends in the joined audio. `ValueError` if the files differ
    in sample rate or channels (joining them would need a re-encode)."""
    if len(titles) != len(sources):
        raise ValueError(f"{len(titles)} titles for {len(sources)} chapter files")
    marks, total_samples, first = [], 0, None
    for number, _, frames in _chapter_frames(sources):
        shape = {(frame.sample_rate, frame.channels) for frame in frames}
        first = first or frames[0]
        if shape != {(first.sample_rate, first.channels)}:
            raise ValueError(
                f"chapter {number}: {sorted(shape)} (Hz, channels) differs from chapter 1's"
                f" {(first.sample_rate, first.channels)}: cannot join without re-encoding"
            )
        start = total_samples
        total_samples += sum(frame.samples for frame in frames)
        marks.append(
            ChapterMark(
                titles[number - 1],
                round(start * 1000 / first.sample_rate),
                round(total_samples * 1000 / first.sample_rate),
            )
        )
    return marks


def _tag(marks: Sequence[ChapterMark], *, title: str, author: str) -> bytes:
    id3 = require("mutagen.id3")
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=id3.Encoding.UTF8, text=[title]))
    if author:
        tags.add(id3.TPE1(encoding=id3.Encoding.UTF8, text=[author]))
    ids = [f"chp{number}" for number in range(1, len(marks) + 1)]
    tags.add(
        id3.CTOC(
            element_id="toc",
            flags=id3.CTOCFlags.TOP_LEVEL | id3.CTOCFlags.ORDERED,
            child_element_ids=ids,
            sub_frames=[id3.TIT2(encoding=id3.Encoding.UTF8, text=[title])],
        )
    )
    for element_id, mark in zip(ids, marks, strict=True):
        tags.add(
            id3.CHAP(
                element_id=element_id,
                start_time=mark.start_ms,
                end_time=mark.end_ms,
                start_offset=_NO_OFFSET,
                end_offset=_NO_OFFSET,
                sub_frames=[id3.TIT2(encoding=id3.Encoding.UTF8, text=[mark.title])],
            )
        )
    buffer = BytesIO()
    tags.save(buffer, v2_version=3, padding=lambda info: 0)  # v2.3: what most players read
    return buffer.getvalue()


def write_audiobook(
    path: str | Path,
    chapters: Sequence[tuple[str, bytes | str | Path]],
    *,
    title: str,
    author: str = "",
) -> list[ChapterMark]:
    """Write `path`: the chapters' frames in order under one tag with their chapter marks.

    `chapters` are (title, MP3 bytes or path). Written to `path.part` and renamed, so a
    half-written audiobook never carries the final name. Files are read one at a time."""
    titles = [chapter_title for chapter_title, _ in chapters]
    sources = [source for _, source in chapters]
    marks = chapter_marks(titles, sources)
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as out:
            out.write(_tag(marks, title=title, author=author))
            for _, data, frames in _chapter_frames(sources):
                view = memoryview(data)
                for frame in frames:
                    out.write(view[frame.offset : frame.offset + frame.length])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return marks


def write_m4b(
    path: str | Path,
    chapters: Sequence[tuple[str, bytes | str | Path]],
    *,
    title: str,
    author: str = "",
    bitrate: int = 64000,
) -> list[ChapterMark]:
    """Write `path` as an M4B: the chapters' MP3 audio decoded and encoded once to AAC, with
    title/author tags and one chapter per chapter file (PyAV). Marks are the MP3s' decoded
    lengths, in milliseconds, as for `write_audiobook`. Written to `path.part` and renamed."""
    av = require("av")
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    marks: list[ChapterMark] = []
    try:
        with av.open(str(partial), "w", format="ipod") as out:
            out.metadata.update({"title": title, "album": title, "artist": author, "genre": "Audiobook"})
            stream = None
            sample_rate = layout = None
            position = 0  # samples so far
            spans = []
            for number, (chapter_title, source) in enumerate(chapters, start=1):
                start = position
                with av.open(BytesIO(_read(source)), "r") as chapter:
                    for frame in chapter.decode(audio=0):
                        if stream is None:
                            sample_rate, layout = frame.sample_rate, frame.layout.name
                            stream = out.add_stream("aac", rate=sample_rate, layout=layout)
                            stream.bit_rate = bitrate
                        elif (frame.sample_rate, frame.layout.name) != (sample_rate, layout):
                            raise ValueError(
                                f"chapter {number}: {frame.sample_rate} Hz {frame.layout.name} differs"
                                f" from chapter 1's {sample_rate} Hz {layout}"
                            )
                        position += frame.samples
                        frame.pts = None  # the encoder numbers samples itself: one timeline
                        for packet in stream.encode(frame):
                            out.mux(packet)
                if position == start:
                    raise ValueError(f"chapter {number}: no audio")
                spans.append((chapter_title, start, position))
            if stream is None or sample_rate is None:
                raise ValueError("no chapters")
            for packet in stream.encode(None):
                out.mux(packet)
            out.set_chapters(
                [
                    {
                        "id": index,
                        "start": start,
                        "end": end,
                        "time_base": Fraction(1, sample_rate),
                        "metadata": {"title": chapter_title},
                    }
                    for index, (chapter_title, start, end) in enumerate(spans, start=1)
                ]
            )
            marks = [
                ChapterMark(t, round(s * 1000 / sample_rate), round(e * 1000 / sample_rate))
                for t, s, e in spans
            ]
        os.replace(partial, path)
    except av.error.FFmpegError as exc:
        raise ValueError(f"cannot decode or encode the chapter audio ({exc})") from None
    finally:
        partial.unlink(missing_ok=True)
    return marks
