"""Chapter marks: chapter MP3s (real LAME encodes) joined without re-encoding, marks read back with
mutagen and checked against each chapter file's decoded duration (miniaudio)."""

from __future__ import annotations

import itertools
import math
from array import array
from io import BytesIO
from pathlib import Path

import lameenc
import miniaudio
import pytest
from mutagen.id3 import ID3, TIT2, CTOCFlags

from elevtts.books.marks import mp3_frames, write_audiobook, write_m4b

RATE = 22050


def encode(seconds: float, *, rate: int = RATE, frequency: float = 440.0, kbps: int = 32) -> bytes:
    pcm = array(
        "h", (int(6000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(int(seconds * rate)))
    )
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def with_id3(mp3: bytes, title: str) -> bytes:
    """The file as a tagger leaves it: an ID3v2 tag in front and an ID3v1 tag at the end."""
    tags = ID3()
    tags.add(TIT2(encoding=3, text=[title]))
    head = BytesIO()
    tags.save(head, v2_version=4, padding=lambda info: 64)
    id3v1 = b"TAG" + title.encode().ljust(30, b"\0") + bytes(95)
    return head.getvalue() + mp3 + id3v1


def with_info_frame(mp3: bytes) -> bytes:
    """A silent first frame carrying an `Info` header, as LAME writes for CBR files."""
    first = mp3_frames(mp3)[0]
    frame = bytearray(mp3[first.offset : first.offset + first.length])
    frame[4 : 4 + 9] = bytes(9)  # MPEG-2 mono: 9 bytes of side information, then the tag
    frame[13:17] = b"Info"
    return bytes(frame) + mp3


def decoded_ms(mp3: bytes) -> float:
    sound = miniaudio.mp3_read_s16(mp3)
    return sound.num_frames * 1000 / sound.sample_rate


def test_marks_span_each_chapter_files_decoded_duration(tmp_path: Path) -> None:
    chapter_files = [
        encode(1.0),
        with_id3(encode(2.3, frequency=330), "tagged"),
        with_info_frame(encode(0.7, frequency=550)),
    ]
    paths = []
    for number, data in enumerate(chapter_files, start=1):
        paths.append(tmp_path / f"{number:02d}.mp3")
        paths[-1].write_bytes(data)
    titles = ["Arrival", "Storm", "Departure"]
    book = tmp_path / "book.mp3"
    marks = write_audiobook(
        book,
        [(titles[0], paths[0]), (titles[1], chapter_files[1]), (titles[2], paths[2])],
        title="Tale",
        author="Ada",
    )
    assert not (tmp_path / "book.mp3.part").exists()

    tags = ID3(book)
    assert tags.version[:2] == (2, 3)
    assert tags["TIT2"].text == ["Tale"] and tags["TPE1"].text == ["Ada"]
    [toc] = tags.getall("CTOC")
    assert toc.flags == CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED
    chaps = {chap.element_id: chap for chap in tags.getall("CHAP")}
    ordered = [chaps[element_id] for element_id in toc.child_element_ids]
    assert [chap.sub_frames["TIT2"].text[0] for chap in ordered] == titles
    assert ordered[0].start_time == 0
    for before, after in itertools.pairwise(ordered):
        assert before.end_time == after.start_time  # contiguous
    durations = [decoded_ms(data) for data in chapter_files]
    for chap, duration in zip(ordered, durations, strict=True):
        assert abs((chap.end_time - chap.start_time) - duration) <= 1.0
    assert abs(ordered[-1].end_time - sum(durations)) <= 0.5
    assert [(m.title, m.start_ms, m.end_ms) for m in marks] == [
        (c.sub_frames["TIT2"].text[0], c.start_time, c.end_time) for c in ordered
    ]
    # the joined frames decode to exactly the chapters' samples: nothing re-encoded, nothing lost
    whole = miniaudio.mp3_read_s16(book.read_bytes())
    assert whole.sample_rate == RATE
    assert whole.num_frames == sum(miniaudio.mp3_read_s16(data).num_frames for data in chapter_files)


def test_the_info_frame_and_tags_are_not_audio() -> None:
    plain = encode(0.5)
    assert len(mp3_frames(with_info_frame(plain))) == len(mp3_frames(plain))
    assert len(mp3_frames(with_id3(plain, "x"))) == len(mp3_frames(plain))
    assert sum(f.samples for f in mp3_frames(plain)) == miniaudio.mp3_read_s16(plain).num_frames


def test_chapters_that_would_need_a_re_encode_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"chapter 2: .*cannot join without re-encoding"):
        write_audiobook(
            tmp_path / "b.mp3", [("a", encode(0.3)), ("b", encode(0.3, rate=44100, kbps=128))], title="t"
        )
    with pytest.raises(ValueError, match=r"^chapter 1: no MPEG Layer III audio frames$"):
        write_audiobook(tmp_path / "b.mp3", [("a", b"RIFF not an mp3")], title="t")
    assert list(tmp_path.iterdir()) == []


def test_m4b_has_the_same_chapters_and_tags(tmp_path: Path) -> None:
    import av

    chapter_files = [encode(1.0), with_id3(encode(2.3, frequency=330), "tagged"), encode(0.7, frequency=550)]
    titles = ["Arrival", "Storm", "Departure"]
    book = tmp_path / "book.m4b"
    marks = write_m4b(book, list(zip(titles, chapter_files, strict=True)), title="Tale", author="Ada")
    assert not (tmp_path / "book.m4b.part").exists()
    with av.open(str(book)) as container:
        assert container.metadata["title"] == "Tale" and container.metadata["artist"] == "Ada"
        chapters = container.chapters()
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        decoded = sum(frame.samples for frame in container.decode(stream))
    assert [c["metadata"]["title"] for c in chapters] == titles
    time_bases = [c["time_base"] for c in chapters]
    assert all(time_base is not None for time_base in time_bases)
    starts_ms = [float(c["start"] * (c["time_base"] or 0) * 1000) for c in chapters]
    ends_ms = [float(c["end"] * (c["time_base"] or 0) * 1000) for c in chapters]
    assert starts_ms[0] == 0 and starts_ms[1:] == ends_ms[:-1]
    for start, end, data in zip(starts_ms, ends_ms, chapter_files, strict=True):
        assert abs((end - start) - decoded_ms(data)) <= 1.0
    assert [(m.start_ms, m.end_ms) for m in marks] == [
        (round(s), round(e)) for s, e in zip(starts_ms, ends_ms, strict=True)
    ]
    # AAC keeps the audio: PyAV decodes it with the encoder's 1024-sample priming and the last
    # frame's padding (each under 1024 samples) on top of the chapters' samples
    expected = sum(miniaudio.mp3_read_s16(d).num_frames for d in chapter_files)
    assert expected <= decoded < expected + 2 * 1024
