"""`elevtts book` end to end: books built here (EPUB 3, PDF, Markdown) spoken by a real local server
(espeak), chapter marks read back, resume after a real SIGINT, chapter selection, refused files.

Faults come from real places: a real Ctrl-C to a real process, an engine registered through the
engine registry that waits on cue, and damaged or protected files built by the tests.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import miniaudio
import pytest
from conftest import ServerThread, assert_speech, decode_mp3, rms, run, run_local_server
from fpdf import FPDF
from mutagen.id3 import ID3
from test_books_epub import epub3
from test_books_pdf import _body
from test_books_pdf import build_book as build_pdf
from test_cli_help import _modules_after
from test_speak_reliability import KEY, HeaderRecorder, clean_env
from typer.testing import CliRunner

from elevtts.batch.manifest import MANIFEST_NAME
from elevtts.books import Book, Chapter, read_book
from elevtts.books.convert import (
    TEXT_DIR,
    TITLE_PAUSE,
    BookPlan,
    BookProgress,
    chapter_listing,
    chapter_names,
    convert_book,
    eta_seconds,
    format_duration,
    join_chapters,
    parse_chapter_selection,
    spoken_text,
)
from elevtts.cli import app
from elevtts.client import Endpoint, StreamOptions
from elevtts.errors import UsageError
from elevtts.protocol import StreamParams
from elevtts.server import engines
from elevtts.server.app import ServerConfig
from elevtts.server.engines import (
    ESPEAK_VOICE,
    Speech,
    SynthesisOptions,
    Voice,
    get_engine,
    register_engine,
)
from elevtts.speak import SendPolicy

runner = CliRunner()
ESPEAK = ("--voice", "espeak")

MARKDOWN = """---
title: The Little Test Book
author: Ada Author
---

# Arrival

The train came into the station on a quiet morning. Nobody was waiting on the platform.

# The Storm

Rain fell all afternoon. The river rose and the bridge was closed.

# Departure

At last the sky cleared, and everyone went home.
"""


def book(*args: Any) -> Any:
    return runner.invoke(app, ["book", *map(str, args)])


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def decoded_ms(path: Path) -> float:
    sound = miniaudio.mp3_read_s16(path.read_bytes())
    return sound.num_frames * 1000 / sound.sample_rate


def read_marks(path: Path) -> tuple[ID3, list[tuple[str, int, int]]]:
    tags = ID3(path)
    toc = tags.getall("CTOC")
    assert len(toc) == 1 and toc[0].flags & 0x03 == 0x03  # top level and ordered
    chapters = {frame.element_id: frame for frame in tags.getall("CHAP")}
    marks = [
        (chapters[i].sub_frames["TIT2"].text[0], chapters[i].start_time, chapters[i].end_time)
        for i in toc[0].child_element_ids
    ]
    return tags, marks


def check_audiobook(out: Path, stem: str, titles: list[str], *, title: str, author: str) -> None:
    """One mark per chapter, titled, contiguous, each as long as its chapter file decodes to."""
    tags, marks = read_marks(out / f"{stem}.mp3")
    assert tags["TIT2"].text == [title]
    assert (tags["TPE1"].text if author else None) == ([author] if author else None)
    assert [mark[0] for mark in marks] == titles
    assert marks[0][1] == 0
    assert all(marks[i][2] == marks[i + 1][1] for i in range(len(marks) - 1))
    files = chapter_files(out)
    assert len(files) == len(marks)
    for (_, start, end), file in zip(marks, files, strict=True):
        assert abs((end - start) - decoded_ms(file)) <= 1.0, file.name
    # the frames were copied, not re-encoded: the whole decodes to the chapters' sum
    assert abs(decoded_ms(out / f"{stem}.mp3") - sum(decoded_ms(f) for f in files)) <= 1.0


LITTLE_TITLES = ["Arrival", "The Storm", "Departure"]


def check_little(out: Path, titles: list[str]) -> None:
    check_audiobook(out, "little", titles, title="The Little Test Book", author="Ada Author")


def longest_silence_s(samples: Any, rate: int, *, window_s: float = 0.02) -> float:
    """The longest run of 20 ms windows below a whisper (RMS 100), in seconds."""
    window = int(rate * window_s)
    longest = run_length = 0
    for start in range(0, len(samples) - window, window):
        run_length = run_length + 1 if rms(samples[start : start + window]) < 100 else 0
        longest = max(longest, run_length)
    return longest * window_s


def chapter_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("[0-9]*.mp3"))


def mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in chapter_files(out)}


# ---------------------------------------------------------------------------------------------
# Pure parts


@pytest.mark.parametrize(
    ("spec", "count", "chosen"),
    [("1-3,7", 9, (1, 2, 3, 7)), ("2", 3, (2,)), (" 3 , 1-2 ,2", 3, (1, 2, 3)), ("10-12", 12, (10, 11, 12))],
)
def test_chapter_selection(spec: str, count: int, chosen: tuple[int, ...]) -> None:
    assert parse_chapter_selection(spec, count) == chosen


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "--chapters takes numbers and ranges like 1-3,7, not ''"),
        ("a", "--chapters takes numbers and ranges like 1-3,7, not 'a'"),
        ("1,,2", "--chapters takes numbers and ranges like 1-3,7, not '1,,2'"),
        ("-3", "--chapters takes numbers and ranges like 1-3,7, not '-3'"),
        ("2-", "--chapters takes numbers and ranges like 1-3,7, not '2-'"),
        ("3-1", "--chapters: the range 3-1 goes backwards"),
        ("0", "--chapters: 0 is out of range (the book has 5 chapters: 1-5)"),
        ("4-6", "--chapters: 6 is out of range (the book has 5 chapters: 1-5)"),
    ],
)
def test_bad_chapter_selections_are_refused(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_chapter_selection(spec, 5)
    assert caught.value.message == message


def test_chapter_names_are_numbered_in_the_whole_book_and_padded() -> None:
    chapters = [Chapter("Chapter 1: The Road!", "x"), Chapter("日本語", "x"), Chapter("", "x")]
    assert chapter_names(chapters) == ["01-chapter-1-the-road", "02-chapter", "03-chapter"]
    assert chapter_names([Chapter(f"Part {n}", "x") for n in range(1, 101)])[99] == "100-part-100"


def test_the_title_is_read_once_then_a_pause() -> None:
    # the heading is the text's first line: the pause goes after it, the title is not read twice
    epub_like = Chapter("One", "Chapter One\n\nIt was a dark night.")
    assert spoken_text(epub_like) == 'Chapter One.<break time="1s"/>\n\nIt was a dark night.'
    pdf_like = Chapter("Chapter 1", "Chapter 1: Arrival\nThe arrival paragraph.")
    assert spoken_text(pdf_like) == 'Chapter 1: Arrival.<break time="1s"/>\n\nThe arrival paragraph.'
    asked = Chapter("Is it over?", "Is it over?\n\nNo.")
    assert spoken_text(asked) == 'Is it over?<break time="1s"/>\n\nNo.'
    # a first line that is not the title: the title is read first
    untitled = Chapter("Pages 1 to 10", "It was a dark night.")
    assert spoken_text(untitled) == 'Pages 1 to 10.<break time="1s"/>\n\nIt was a dark night.'
    assert spoken_text(Chapter("* * *", "* * *\n\n...")) == "* * *\n\n..."  # nothing to speak, no pause
    assert TITLE_PAUSE == '<break time="1s"/>'


def test_listing_and_estimates() -> None:
    lines = chapter_listing(
        Book("T", "", "", (Chapter("A\n  title", "word " * 310), Chapter("B", "one two")))
    )
    assert lines == ["1  A title  310 words  ~2 min", "2  B  2 words  ~1 min"]
    assert chapter_listing(Book("T", "", "", (Chapter("A", "x"), Chapter("B", "y"))), (2,)) == [
        "2  B  1 words  ~1 min"
    ]


def test_eta_from_characters_per_second() -> None:
    assert eta_seconds(done_chars=0, elapsed_s=5.0, remaining_chars=100) is None
    assert eta_seconds(done_chars=1000, elapsed_s=10.0, remaining_chars=3000) == pytest.approx(30.0)
    assert [format_duration(s) for s in (4.44, 59.96, 75, 3725)] == [
        "4.4 s",
        "1 min 00 s",
        "1 min 15 s",
        "1 h 02 min",
    ]


def test_the_eta_counts_from_the_first_chapter_at_its_characters_per_second() -> None:
    from elevtts.batch.progress import BatchReport, FileReport

    now = [100.0]
    stream = io.StringIO()
    progress = BookProgress(stream, clock=lambda: now[0])
    files = [FileReport(f"{n}.txt", f"out/0{n}-x.mp3", chars=chars) for n, chars in ((1, 300), (2, 900))]
    progress.begin(BatchReport(files=files), to_run=2, chars=1200, target="here")
    progress.status("loading voice joe...")
    now[0] = 130.0  # the voice took 30 s to load: not part of the rate
    progress.file_started(files[0])
    now[0] = 140.0  # 300 chars in 10 s: 900 more take 30 s
    files[0].status, files[0].audio_seconds = "done", 20.0
    progress.file_finished(files[0])
    assert stream.getvalue().splitlines() == [
        "book: 2 chapters, 2 to speak (1,200 chars) on here",
        "loading voice joe...",
        "        01-x.mp3  (300 chars) ...",
        "[1/2] done    01-x.mp3  (20.0 s audio)  ETA 30.0 s",
    ]


# ---------------------------------------------------------------------------------------------
# End to end: Markdown, EPUB 3, PDF


def test_a_markdown_book_end_to_end(tmp_path: Path, local_server: str) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    out = tmp_path / "out"
    result = book(source, "--url", local_server, *ESPEAK, "-d", out, "--subtitles", "json", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["audiobook"] == str(out / "little.mp3")
    assert [c["status"] for c in report["chapters"]] == ["done"] * 3
    names = ["01-arrival", "02-the-storm", "03-departure"]
    assert [p.stem for p in chapter_files(out)] == names
    for name, first_word in zip(names, ["Arrival.", "The", "Departure."], strict=True):
        assert json.loads((out / f"{name}.json").read_text())["ok"] is True  # speak's sidecars
        words = json.loads((out / f"{name}.words.json").read_text())["words"]
        assert words[0]["text"] == first_word
    samples, rate = decode_mp3((out / "01-arrival.mp3").read_bytes())
    assert_speech(samples, rate, words=16)
    check_audiobook(
        out,
        "little",
        ["Arrival", "The Storm", "Departure"],
        title="The Little Test Book",
        author="Ada Author",
    )
    assert report["marks"][-1]["end_ms"] == read_marks(out / "little.mp3")[1][-1][2]
    assert not list(out.rglob("*.part"))
    # a second of silence after the title, and the tag is not read aloud
    spoken = (out / TEXT_DIR / "02-the-storm.txt").read_text(encoding="utf-8")
    assert spoken.startswith('The Storm.<break time="1s"/>\n\nRain fell')
    words = json.loads((out / "02-the-storm.words.json").read_text())["words"]
    assert [w["text"] for w in words[:3]] == ["The", "Storm.", "Rain"]
    assert words[2]["start"] - words[1]["end"] >= 0.9
    assert not any("break" in w["text"] for w in words)
    samples, rate = decode_mp3((out / "02-the-storm.mp3").read_bytes())
    quiet = longest_silence_s(samples, rate)
    assert 0.95 <= quiet < 1.5, quiet


def test_an_epub3_book_end_to_end_with_m4b(tmp_path: Path, local_server: str) -> None:
    import av

    source = write(tmp_path / "tale.epub", epub3())
    out = tmp_path / "out"
    result = book(source, "--url", local_server, *ESPEAK, "-d", out, "--m4b", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""  # -q: nothing on either stream
    assert [p.name for p in chapter_files(out)] == ["01-one.mp3", "02-two.mp3", "03-three.mp3"]
    check_audiobook(out, "tale", ["One", "Two", "Three"], title="The Test Book", author="Ada Author")
    # the nav's "One" is the heading "Chapter One": read once, then the pause
    spoken = (out / TEXT_DIR / "01-one.txt").read_text(encoding="utf-8")
    assert spoken == 'Chapter One.<break time="1s"/>\n\nIt was a dark night.'
    with av.open(str(out / "tale.m4b")) as container:
        assert container.metadata["title"] == "The Test Book"
        assert [c["metadata"]["title"] for c in container.chapters()] == ["One", "Two", "Three"]


def test_a_pdf_book_end_to_end(tmp_path: Path, local_server: str) -> None:
    source = write(tmp_path / "generated.pdf", build_pdf())
    out = tmp_path / "out"
    result = book(source, "--url", local_server, *ESPEAK, "-d", out)
    assert result.exit_code == 0, result.output
    titles = ["Chapter 1: Arrival", "Chapter 2: Storm", "Chapter 3: Departure"]
    check_audiobook(out, "generated", titles, title="A Generated Book", author="Ada Author")
    assert [p.stem for p in chapter_files(out)] == [
        "01-chapter-1-arrival",
        "02-chapter-2-storm",
        "03-chapter-3-departure",
    ]
    # off a terminal: no progress lines, one summary line
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("book: 3 chapters;")
    assert str(out / "generated.mp3") in result.stderr


def test_the_default_output_directory_is_named_after_the_book(tmp_path: Path, local_server: str) -> None:
    write(tmp_path / "little.md", MARKDOWN)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = book("little.md", "--url", local_server, *ESPEAK, "--chapters", "3")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert [p.name for p in chapter_files(tmp_path / "output" / "little")] == ["03-departure.mp3"]


# ---------------------------------------------------------------------------------------------
# Resume, selection, listing


def test_a_rerun_converts_only_what_changed(tmp_path: Path, local_server: str) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    out = tmp_path / "out"
    assert book(source, "--url", local_server, *ESPEAK, "-d", out).exit_code == 0
    first = mtimes(out)

    result = book(source, "--url", local_server, *ESPEAK, "-d", out, "--json")
    assert result.exit_code == 0, result.output
    assert [(c["status"], c["reason"]) for c in json.loads(result.stdout)["chapters"]] == [
        ("skipped", "unchanged")
    ] * 3
    assert mtimes(out) == first
    assert (out / "little.mp3").exists()

    write(source, MARKDOWN.replace("Rain fell all afternoon.", "Snow fell all night."))
    result = book(source, "--url", local_server, *ESPEAK, "-d", out, "--json")
    assert result.exit_code == 0, result.output
    assert [c["reason"] for c in json.loads(result.stdout)["chapters"]] == [
        "unchanged",
        "changed text",
        "unchanged",
    ]
    after = mtimes(out)
    assert after["01-arrival.mp3"] == first["01-arrival.mp3"]
    assert after["02-the-storm.mp3"] != first["02-the-storm.mp3"]
    check_audiobook(
        out,
        "little",
        ["Arrival", "The Storm", "Departure"],
        title="The Little Test Book",
        author="Ada Author",
    )

    # a setting that shapes the audio redoes everything
    result = book(source, "--url", local_server, *ESPEAK, "-d", out, "--speed", "1.1", "--json")
    assert [c["reason"] for c in json.loads(result.stdout)["chapters"]] == ["changed settings"] * 3


def test_chapters_selects_and_keeps_names(tmp_path: Path, local_server: str) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    out = tmp_path / "out"
    result = book(source, "--url", local_server, *ESPEAK, "-d", out, "--chapters", "3,2")
    assert result.exit_code == 0, result.output
    assert [p.name for p in chapter_files(out)] == ["02-the-storm.mp3", "03-departure.mp3"]
    check_little(out, LITTLE_TITLES[1:])
    kept = mtimes(out)
    result = book(source, "--url", local_server, *ESPEAK, "-d", out, "--json")  # then the whole book
    assert [c["reason"] for c in json.loads(result.stdout)["chapters"]] == ["new", "unchanged", "unchanged"]
    assert {k: v for k, v in mtimes(out).items() if k in kept} == kept
    check_audiobook(
        out,
        "little",
        ["Arrival", "The Storm", "Departure"],
        title="The Little Test Book",
        author="Ada Author",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("4", "--chapters: 4 is out of range (the book has 3 chapters: 1-3)"),
        ("1-x", "--chapters takes numbers and ranges like 1-3,7, not '1-x'"),
    ],
)
def test_bad_chapters_exit_2_and_write_nothing(tmp_path: Path, spec: str, message: str) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    result = book(source, "-d", tmp_path / "out", "--chapters", spec)
    assert result.exit_code == 2
    assert result.stderr == f"elevtts: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_list_chapters_prints_and_writes_nothing(tmp_path: Path) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    result = book(source, "--list-chapters", "-d", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "1  Arrival  17 words  ~1 min",
        "2  The Storm  14 words  ~1 min",
        "3  Departure  10 words  ~1 min",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["little.md"]


def test_a_non_mp3_format_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    result = book(source, "-d", tmp_path / "out", "--output-format", "pcm_16000")
    assert result.exit_code == 2
    assert "a book is written as MP3" in result.stderr and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Refused files: exit 3, one line, nothing written


def _password_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    _body(pdf, "Secret text.")
    return bytes(pdf.output())


def _scanned_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 100, style="F")
    return bytes(pdf.output())


REFUSED = {
    "locked.pdf": (_password_pdf, "password-protected PDF"),
    "scan.pdf": (_scanned_pdf, "no text layer (a scanned PDF?)"),
    "drm.epub": (
        lambda: epub3(**{"META-INF/rights.xml": "<rights/>"}),
        "DRM-protected EPUB (META-INF/rights.xml)",
    ),
    "cut.epub": (lambda: epub3()[:600], "not an EPUB (damaged or truncated zip)"),
    "cut.pdf": (lambda: build_pdf()[:900], "damaged or truncated PDF ("),
    "letter.docx": (lambda: b"PK\x03\x04", "unsupported file type '.docx'"),
    "empty.txt": (lambda: b"\n\n", "no text found"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_file_that_cannot_be_read_exits_3_with_one_line(tmp_path: Path, name: str) -> None:
    build, reason = REFUSED[name]
    source = write(tmp_path / name, build())
    out = tmp_path / "out"
    result = book(source, "-d", out, *ESPEAK)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(f"elevtts: error: cannot read {source}: {reason}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == "" and not out.exists()


def test_a_missing_file_exits_3(tmp_path: Path) -> None:
    result = book(tmp_path / "nowhere.epub", "-d", tmp_path / "out")
    assert result.exit_code == 3
    assert (
        result.stderr
        == f"elevtts: error: cannot read {tmp_path / 'nowhere.epub'}: No such file or directory\n"
    )


def test_a_missing_books_extra_is_named(tmp_path: Path) -> None:
    """In a real process where pypdfium2 cannot be imported, as without the extra."""
    source = write(tmp_path / "book.pdf", build_pdf())
    code = (
        "import sys; sys.modules['pypdfium2'] = None\n"
        "from elevtts.cli import main; sys.argv = ['elevtts', 'book', sys.argv[1], '--list-chapters']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(source)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr == (
        "elevtts: error: reading books needs pypdfium2: pip install 'elevtts[books]'"
        " (from the repo: pip install -e '.[books]')\n"
    )


def test_book_help_imports_nothing_heavy() -> None:
    assert _modules_after("book", "--help") == []


def test_a_join_that_ends_after_a_cancel_leaves_no_audiobook(tmp_path: Path) -> None:
    """Ctrl-C while the audiobook is joined: the thread runs to its end, then removes its file."""
    from test_books_marks import encode

    chapters = [
        ("A", write(tmp_path / "01-a.mp3", encode(0.5))),
        ("B", write(tmp_path / "02-b.mp3", encode(0.7))),
    ]
    cancelled = threading.Event()
    cancelled.set()
    for m4b in (False, True):
        target = tmp_path / ("b.m4b" if m4b else "b.mp3")
        marks = join_chapters(target, chapters, title="T", author="", m4b=m4b, cancelled=cancelled)
        assert [mark.title for mark in marks] == ["A", "B"]
        assert not target.exists() and not target.with_name(target.name + ".part").exists()
    join_chapters(tmp_path / "b.mp3", chapters, title="T", author="")
    written = json.loads((tmp_path / TEXT_DIR / "audiobooks.json").read_text())
    assert written["b.mp3"] == (tmp_path / "b.mp3").stat().st_size  # ours: a re-run may replace it


# ---------------------------------------------------------------------------------------------
# Progress with an ETA (the library with a display on a stream)


def test_progress_lines_carry_an_eta(tmp_path: Path, local_server: str) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    stream = io.StringIO()

    async def go() -> Any:
        endpoint = Endpoint(local_server)
        return await convert_book(
            read_book(source),
            stem="little",
            endpoint=endpoint,
            options=StreamOptions(voice_id="espeak", params=StreamParams(output_format="mp3_22050_32")),
            policy=SendPolicy(),
            plan=BookPlan(output_dir=tmp_path / "out", jobs=1),
            progress=BookProgress(stream),
        )

    report = run(go())
    lines = stream.getvalue().splitlines()
    chars = sum(len(spoken_text(c)) for c in read_book(source).chapters)
    assert lines[0] == f"book: 3 chapters, 3 to speak ({chars} chars) on {Endpoint(local_server).display}"
    done = [line for line in lines if "] done" in line]
    assert [line.split()[0] for line in done] == ["[1/3]", "[2/3]", "[3/3]"]
    assert "01-arrival.mp3" in done[0] and " ETA " in done[0] and " ETA " in done[1]
    assert " ETA " not in done[2]  # nothing left
    assert report.ok and report.audiobook == str(tmp_path / "out" / "little.mp3")


# ---------------------------------------------------------------------------------------------
# Ctrl-C: a real SIGINT to a real process, then a re-run


class GateEngine:
    """espeak, except that a piece containing "Gate" waits until the test opens the gate."""

    voice = Voice("book-gate", "Gate", "espeak", "en", ESPEAK_VOICE.sample_rate, "espeak with a gate")
    entered = threading.Event()
    opened = threading.Event()

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if "Gate" in text:
            type(self).entered.set()
            type(self).opened.wait(timeout=30)
        return get_engine("espeak").synthesize(text, options)


class PoisonEngine:
    """espeak, except that a piece containing "Poison" always fails."""

    voice = Voice("book-poison", "Poison", "espeak", "en", ESPEAK_VOICE.sample_rate, "espeak that fails")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if "Poison" in text:
            raise RuntimeError("the engine failed on cue")
        return get_engine("espeak").synthesize(text, options)


@pytest.fixture
def gate_server(local_server: str) -> Iterator[tuple[ServerThread, str]]:
    register_engine(GateEngine.voice, GateEngine)
    register_engine(PoisonEngine.voice, PoisonEngine)
    GateEngine.entered.clear()
    GateEngine.opened.clear()
    # two synthesis slots: the gated chapter must not hold up the one beside it
    voices = ("espeak", "book-gate", "book-poison")
    thread, url = run_local_server(ServerConfig(port=0, voices=voices, synthesis_slots=2))
    yield thread, url
    GateEngine.opened.set()
    thread.stop()
    for voice in (GateEngine.voice, PoisonEngine.voice):  # there is no public unregister
        engines._REGISTRY.pop(voice.voice_id, None)


def test_a_failed_chapter_exits_10_with_no_audiobook(
    tmp_path: Path, gate_server: tuple[ServerThread, str]
) -> None:
    _, url = gate_server
    source = write(tmp_path / "little.md", MARKDOWN.replace("Rain fell", "Poison fell"))
    out = tmp_path / "out"
    result = book(source, "--url", url, "--voice", "book-poison", "-d", out, "--json")
    assert result.exit_code == 10, result.output
    message = result.stderr.splitlines()[-1]
    assert message.startswith("elevtts: error: 1 of 3 chapters failed: chapter 2 (The Storm): ")
    assert message.endswith("; no audiobook written")
    report = json.loads(result.stdout)
    assert [c["status"] for c in report["chapters"]] == ["done", "failed", "done"]
    assert report["ok"] is False and report["audiobook"] is None
    assert [p.name for p in chapter_files(out)] == ["01-arrival.mp3", "03-departure.mp3"]
    assert not (out / "little.mp3").exists() and not (out / "little.mp3.part").exists()


GATED = MARKDOWN.replace("Rain fell all afternoon.", "Rain fell. Gate holds this chapter.")


def test_ctrl_c_keeps_finished_chapters_and_a_rerun_finishes_the_rest(
    tmp_path: Path, gate_server: tuple[ServerThread, str]
) -> None:
    _, url = gate_server
    source = write(tmp_path / "little.md", GATED)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("ELEVENLABS_API_KEY", "ELEVTTS_URL")}
    command = [sys.executable, "-m", "elevtts", "book", str(source), "--url", url, "--voice", "book-gate"]
    process = subprocess.Popen(
        [*command, "-d", str(out), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert GateEngine.entered.wait(timeout=30), "chapter 2 never reached the server"
        deadline = time.monotonic() + 20
        while not (out / "01-arrival.mp3").exists():
            assert time.monotonic() < deadline, "chapter 1 never finished"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        GateEngine.opened.set()
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "elevtts: error: interrupted" and "Traceback" not in stderr
    hint = r"^book: interrupted with [1-2] of 3 chapters done; re-run the same command to resume$"
    assert re.search(hint, stderr, re.MULTILINE)
    report = json.loads(stdout)  # printed even when interrupted
    assert report["interrupted"] is True and report["ok"] is False and report["audiobook"] is None
    statuses = [c["status"] for c in report["chapters"]]
    assert statuses[0] == "done" and statuses[1] == "interrupted"
    assert not (out / "little.mp3").exists() and not (out / "little.mp3.part").exists()
    assert not (out / "02-the-storm.mp3").exists()
    finished = mtimes(out)
    assert "01-arrival.mp3" in finished

    result = book(source, "--url", url, "--voice", "book-gate", "-d", out, "--json")
    assert result.exit_code == 0, result.output
    reasons = [(c["status"], c["reason"]) for c in json.loads(result.stdout)["chapters"]]
    assert reasons[0] == ("skipped", "unchanged") and reasons[1] == ("done", "unfinished")
    assert {k: v for k, v in mtimes(out).items() if k in finished} == finished  # untouched
    check_audiobook(
        out,
        "little",
        ["Arrival", "The Storm", "Departure"],
        title="The Little Test Book",
        author="Ada Author",
    )
    assert json.loads((out / MANIFEST_NAME).read_text())["format"] == "elevtts-batch-manifest"


def test_an_audiobook_name_taken_by_another_file_is_not_overwritten(
    tmp_path: Path, local_server: str
) -> None:
    source = write(tmp_path / "little.md", MARKDOWN)
    out = tmp_path / "out"
    theirs = write(out / "little.mp3", b"someone else's recording")
    result = book(source, "--url", local_server, *ESPEAK, "-d", out)
    assert result.exit_code == 4
    assert result.stderr == (
        f"elevtts: error: {theirs} exists and was not written by elevtts book (use --force to overwrite)\n"
    )
    assert theirs.read_bytes() == b"someone else's recording" and not chapter_files(out)
    assert book(source, "--url", local_server, *ESPEAK, "-d", out, "--force").exit_code == 0
    check_little(out, LITTLE_TITLES)
    # ours from here on: a re-run replaces it without --force
    assert book(source, "--url", local_server, *ESPEAK, "-d", out, "--chapters", "1").exit_code == 0
    assert [title for title, _, _ in read_marks(out / "little.mp3")[1]] == ["Arrival"]


def test_book_takes_speaks_voice_and_format_options_as_declared() -> None:
    import typer
    from test_cli_help import _options

    group: Any = typer.main.get_command(app)
    speak, book_options = _options(group.commands["speak"]), _options(group.commands["book"])
    shared = set(book_options) & set(speak)
    voice_and_format = {"url", "api_key", "voice", "model", "output_format", "speed", "stability"}
    assert shared >= voice_and_format | {"subtitles", "force", "as_json", "quiet"}
    for name in shared - {"output_dir"}:  # a book's own directory by default: output/<file name>
        assert book_options[name] == speak[name], name
    assert set(book_options) - set(speak) == {"list_chapters", "chapters", "m4b"}


def test_a_chapter_with_nothing_to_speak_is_left_out_of_the_audiobook(
    tmp_path: Path, local_server: str
) -> None:
    odd = Book(
        "Odd", "", "", (Chapter("Start", "Start\n\nA real chapter."), Chapter("* * *", "* * *\n\n..."))
    )
    options = StreamOptions(voice_id="espeak", params=StreamParams(output_format="mp3_22050_32"))
    report = run(
        convert_book(
            odd,
            stem="odd",
            endpoint=Endpoint(local_server),
            options=options,
            policy=SendPolicy(),
            plan=BookPlan(output_dir=tmp_path / "out"),
        )
    )
    assert [(c.status, c.reason) for c in report.chapters] == [
        ("done", "new"),
        ("skipped", "nothing to speak"),
    ]
    assert [title for title, _, _ in read_marks(tmp_path / "out" / "odd.mp3")[1]] == ["Start"]


@pytest.fixture
def key_recorder() -> Iterator[tuple[HeaderRecorder, str]]:
    """A server that records the key each connection sent (test_speak_reliability's)."""
    from websockets.asyncio.server import serve

    server = HeaderRecorder()

    async def factory() -> tuple[Any, str]:
        ws_server = await serve(server.handle, "127.0.0.1", 0)
        return ws_server, f"ws://127.0.0.1:{next(iter(ws_server.sockets)).getsockname()[1]}"

    thread = ServerThread(factory)
    url = thread.start()
    yield server, url
    thread.stop()


def test_book_keeps_the_key_from_a_url_only_a_dotenv_named(
    key_recorder: tuple[HeaderRecorder, str], tmp_path: Path
) -> None:
    server, url = key_recorder
    (tmp_path / ".env").write_text(f"ELEVTTS_URL={url}\n")
    write(tmp_path / "little.md", MARKDOWN)
    env = {**clean_env(), "ELEVENLABS_API_KEY": KEY}
    done = subprocess.run(
        [sys.executable, "-m", "elevtts", "book", "little.md", "--chapters", "1", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert server.keys and set(server.keys) == {None}, done.stderr
    assert b"not sending the API key" in done.stderr
    assert KEY.encode() not in done.stderr
