"""A book into chapter files and one audiobook: the library behind `elevtts book`.

    book = read_book("novel.epub")
    async with open_endpoint(target, voices=(options.voice_id,)) as endpoint:
        report = await convert_book(book, stem="novel", endpoint=endpoint, options=options,
                                    policy=policy, plan=BookPlan(output_dir=Path("output/novel")))

Each selected chapter is spoken into `<NN>-<slug>.mp3` (NN: its number in the whole book, so a
selection keeps names stable) by `elevtts.batch.run_batch`, which brings the crash-safe manifest,
the resume rules and the retries: the text of each chapter (title, a pause, body) is written to
`<output-dir>/.elevtts-book/<NN>-<slug>.txt` and that file is the batch's input, so a chapter is
redone exactly when its text or the settings that shape the audio change. When every selected
chapter is done, `<stem>.mp3` joins their frames under one ID3 tag with a chapter mark each (and
`<stem>.m4b` with `m4b`). Both are removed before any synthesis and written last (`.part`, then
rename): an interrupted or failed run never leaves an audiobook that looks complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from elevtts.batch import BatchPlan, BatchReport, discover_inputs, run_batch
from elevtts.batch.manifest import DONE, SKIPPED
from elevtts.batch.progress import BatchProgress, FileReport, SilentBatchProgress
from elevtts.batch.runner import NOTHING_TO_SPEAK
from elevtts.books import Book, Chapter
from elevtts.books.marks import ChapterMark, write_audiobook, write_m4b
from elevtts.client import Endpoint, StreamOptions
from elevtts.errors import BatchIncomplete, InputError, OutputError, UsageError
from elevtts.output import ensure_directory, slug, write_text
from elevtts.speak import SendPolicy

TEXT_DIR = ".elevtts-book"  # the spoken text of each chapter: the batch's inputs
WRITTEN_NAME = "audiobooks.json"  # in TEXT_DIR: the audiobooks written here (name -> size)
WORDS_PER_MINUTE = 155  # a usual audiobook narration rate, for `--list-chapters` estimates
# A second of silence after each chapter's title: the live service and the local server both turn
# the tag into silence and never read it aloud (elevtts.breaks).
TITLE_PAUSE = '<break time="1s"/>'


# ---------------------------------------------------------------------------------------------
# Pure parts: selection, names, listing, the spoken text


def parse_chapter_selection(spec: str, count: int) -> tuple[int, ...]:
    """`"1-3,7"` -> (1, 2, 3, 7): chapter numbers (1-based), sorted, each once.

    `UsageError` for a malformed list, a reversed range or a number outside 1..count."""
    numbers: set[int] = set()
    parts = [part.strip() for part in spec.split(",")]
    for part in parts:
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise UsageError(f"--chapters takes numbers and ranges like 1-3,7, not {spec!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise UsageError(f"--chapters: the range {part} goes backwards")
        for number in (first, last):
            if not 1 <= number <= count:
                raise UsageError(
                    f"--chapters: {number} is out of range (the book has {count} chapter"
                    f"{'s' if count != 1 else ''}: 1-{count})"
                )
        numbers.update(range(first, last + 1))
    return tuple(sorted(numbers))


def one_line(text: str) -> str:
    return " ".join(text.split())


def chapter_names(chapters: Sequence[Chapter]) -> list[str]:
    """`<NN>-<slug>` per chapter, NN zero-padded to the width of the last number (at least 2)."""
    width = max(2, len(str(len(chapters))))
    names = []
    for number, chapter in enumerate(chapters, start=1):
        ascii_title = unicodedata.normalize("NFKD", chapter.title).encode("ascii", "ignore").decode()
        name = slug(chapter.title) if re.search(r"[A-Za-z0-9]", ascii_title) else "chapter"
        names.append(f"{number:0{width}d}-{name}")
    return names


def estimated_minutes(words: int) -> int:
    return max(1, round(words / WORDS_PER_MINUTE)) if words else 0


def chapter_listing(book: Book, selection: Sequence[int] | None = None) -> list[str]:
    """`N  TITLE  W words  ~M min` per chapter (two spaces between columns)."""
    lines = []
    for number, chapter in enumerate(book.chapters, start=1):
        if selection is not None and number not in selection:
            continue
        words = len(chapter.text.split())
        title = one_line(chapter.title) or "(untitled)"
        lines.append(f"{number}  {title}  {words:,} words  ~{estimated_minutes(words)} min")
    return lines


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def spoken_text(chapter: Chapter) -> str:
    """The chapter as read: its title as a sentence, a second's pause, then its body.

    Readers keep the heading as the text's first line. A first line whose words hold the title's
    ("One" / "Chapter One"), or the other way round, is the heading; else the title is read first."""
    text = chapter.text.strip()
    title = one_line(chapter.title)
    first, _, rest = text.partition("\n")
    heading_words, title_words = _words(first), _words(title)
    if title_words and heading_words and (title_words <= heading_words or heading_words <= title_words):
        heading, body = one_line(first), rest.strip()
    else:
        heading, body = title, text
    if not heading:
        return body
    if not any(char.isalnum() for char in heading + body):
        return text  # nothing to speak ("* * *"): no pause either, so the runner skips it
    ending = "" if heading[-1] in ".!?" else "."  # a sentence end: the title's own intonation
    return f"{heading}{ending}{TITLE_PAUSE}\n\n{body}"


def eta_seconds(*, done_chars: int, elapsed_s: float, remaining_chars: int) -> float | None:
    """Remaining time at the characters-per-second rate so far; None before anything is done."""
    if done_chars <= 0 or elapsed_s <= 0:
        return None
    return remaining_chars / (done_chars / elapsed_s)


def format_duration(seconds: float) -> str:
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


# ---------------------------------------------------------------------------------------------
# Plan and report


@dataclass(frozen=True)
class BookPlan:
    output_dir: Path
    chapters: tuple[int, ...] | None = None  # 1-based selection; None: every chapter
    subtitles: tuple[str, ...] = ()
    m4b: bool = False
    force: bool = False
    jobs: int = 2
    retries: int = 3  # further attempts per chapter (batch's rules)


@dataclass
class ChapterReport:
    number: int
    title: str
    file: str
    status: str = "not_started"
    reason: str = ""
    chars: int = 0
    audio_seconds: float | None = None
    real_time_factor: float | None = None
    attempts: int = 0
    error: str | None = None


@dataclass
class BookReport:
    source: str = ""
    title: str = ""
    author: str = ""
    chapters: list[ChapterReport] = field(default_factory=list)
    audiobook: str | None = None
    m4b: str | None = None
    marks: list[dict[str, Any]] = field(default_factory=list)
    manifest: str | None = None
    interrupted: bool = False
    wall_s: float | None = None

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(c.status in (DONE, SKIPPED) for c in self.chapters)

    def to_json(self) -> dict[str, Any]:
        done = [c for c in self.chapters if c.status == DONE]
        return {
            "ok": self.ok,
            "interrupted": self.interrupted,
            "source": self.source,
            "title": self.title,
            "author": self.author,
            "audiobook": self.audiobook,
            "m4b": self.m4b,
            "manifest": self.manifest,
            "totals": {
                "chapters": len(self.chapters),
                "done": len(done),
                "skipped": sum(c.status == SKIPPED for c in self.chapters),
                "failed": sum(c.status == "failed" for c in self.chapters),
                "chars": sum(c.chars for c in done),
                "audio_seconds": round(sum(c.audio_seconds or 0.0 for c in done), 3),
                "wall_s": None if self.wall_s is None else round(self.wall_s, 3),
            },
            "chapters": [asdict(c) for c in self.chapters],
            "marks": self.marks,
        }


# ---------------------------------------------------------------------------------------------
# Progress: a line per chapter with an ETA from characters per second


class BookProgress(SilentBatchProgress):
    """The batch's progress events as book lines on `stream` (stderr on a terminal)."""

    def __init__(self, stream: IO[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self.to_run = 0
        self.total_chars = 0
        self.done_chars = 0
        self.finished = 0
        self.started_at: float | None = None  # the first chapter's start (not the voice loading)

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None:
        self.to_run, self.total_chars = to_run, chars
        unchanged = report.count(SKIPPED)
        line = f"book: {len(report.files)} chapters, {to_run} to speak ({chars:,} chars) on {target}"
        self._print(line + (f"; {unchanged} unchanged, kept" if unchanged else ""))

    def status(self, message: str) -> None:
        self._print(message)  # before the first chapter, e.g. while the voice loads

    def file_started(self, file: FileReport) -> None:
        if self.started_at is None:
            self.started_at = self.clock()
        self._print(f"        {_chapter_file(file)}  ({file.chars:,} chars) ...")

    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None:
        attempt = f"attempt {file.attempts + 1} in {delay_s:.1f} s"
        self._print(f"retry   {_chapter_file(file)}: {error} ({attempt})")

    def file_finished(self, file: FileReport) -> None:
        self.finished += 1
        self.done_chars += file.chars
        if file.status != DONE:
            self._print(f"[{self.finished}/{self.to_run}] failed  {_chapter_file(file)}: {file.error}")
            return
        eta = eta_seconds(
            done_chars=self.done_chars,
            elapsed_s=self.clock() - (self.started_at or self.clock()),
            remaining_chars=self.total_chars - self.done_chars,
        )
        left = "" if eta is None or self.finished == self.to_run else f"  ETA {format_duration(eta)}"
        audio = f"{file.audio_seconds or 0:.1f} s audio"
        self._print(f"[{self.finished}/{self.to_run}] done    {_chapter_file(file)}  ({audio}){left}")


def _chapter_file(file: FileReport) -> str:
    return Path(file.output).name if file.output else file.input


# ---------------------------------------------------------------------------------------------
# Converting


def _written(text_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((text_dir / WRITTEN_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def _remove_stale(text_dir: Path, paths: Sequence[Path], *, force: bool) -> None:
    """Remove the audiobooks an earlier run wrote here; refuse to remove anyone else's file."""
    written = _written(text_dir)
    for path in paths:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not force and written.get(path.name) != size:
            raise OutputError(f"{path} exists and was not written by elevtts book (use --force to overwrite)")
        try:
            path.unlink()
        except OSError as exc:
            raise OutputError(f"cannot remove {path}: {exc.strerror or exc}") from None


def _record_written(text_dir: Path, path: Path) -> None:
    written = _written(text_dir)
    written[path.name] = path.stat().st_size
    write_text(ensure_directory(text_dir) / WRITTEN_NAME, json.dumps(written, indent=2) + "\n")


def _write_texts(text_dir: Path, scripts: dict[str, str]) -> list[Path]:
    paths = []
    for name, script in scripts.items():
        path = text_dir / f"{name}.txt"
        try:
            unchanged = path.read_text(encoding="utf-8") == script
        except (OSError, UnicodeDecodeError):
            unchanged = False
        if not unchanged:
            write_text(path, script)
        paths.append(path)
    return paths


async def convert_book(
    book: Book,
    *,
    stem: str,
    endpoint: Endpoint,
    options: StreamOptions,
    policy: SendPolicy,
    plan: BookPlan,
    progress: BatchProgress | None = None,
    settings_for_stats: dict[str, Any] | None = None,
    target: str | None = None,
    report: BookReport | None = None,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> BookReport:
    """Speak the selected chapters (resuming) and, when all are done, write the audiobook.

    Raises `BatchIncomplete` when a chapter failed (the others are kept, no audiobook),
    `OutputError`, `UsageError` (another run holds the directory), `AuthenticationError`;
    a cancellation (Ctrl-C) propagates with `report.interrupted` set. `prepare` (e.g. loading the
    embedded server's voice) is awaited only if a chapter is to be spoken."""
    report = report if report is not None else BookReport()
    report.title, report.author = book.title, book.author
    started = time.monotonic()
    root = ensure_directory(plan.output_dir)
    text_dir = ensure_directory(root / TEXT_DIR)
    names = chapter_names(book.chapters)
    selected = plan.chapters or tuple(range(1, len(book.chapters) + 1))
    audiobook, m4b = root / f"{stem}.mp3", root / f"{stem}.m4b"
    # Out of date from here on: an interrupted run must not leave one that looks complete.
    _remove_stale(text_dir, (audiobook, m4b), force=plan.force)
    scripts = {names[n - 1]: spoken_text(book.chapters[n - 1]) for n in selected}
    texts = await asyncio.to_thread(_write_texts, text_dir, scripts)
    for number, text_path in zip(selected, texts, strict=True):
        title = one_line(book.chapters[number - 1].title)
        report.chapters.append(ChapterReport(number, title, str(root / f"{text_path.stem}.mp3")))
    batch = BatchReport()
    try:
        await run_batch(
            discover_inputs(texts),
            endpoint=endpoint,
            options=options,
            text_policy=policy,
            plan=BatchPlan(
                output_dir=root,
                jobs=plan.jobs,
                retries=plan.retries,
                force=plan.force,
                subtitles=plan.subtitles,
            ),
            progress=progress,
            settings_for_stats=settings_for_stats,
            target=target,
            report=batch,
            prepare=prepare,
        )
    except (asyncio.CancelledError, KeyboardInterrupt):
        report.interrupted = True
        raise
    finally:
        report.manifest = batch.manifest
        for chapter, file in zip(report.chapters, batch.files, strict=False):
            chapter.status, chapter.reason, chapter.chars = file.status, file.reason, file.chars
            chapter.audio_seconds, chapter.real_time_factor = file.audio_seconds, file.real_time_factor
            chapter.attempts, chapter.error = file.attempts, file.error
            if file.output:
                chapter.file = file.output
        report.wall_s = time.monotonic() - started
    failed = [c for c in report.chapters if c.status not in (DONE, SKIPPED)]
    if failed:
        first = f"chapter {failed[0].number} ({failed[0].title}): {failed[0].error or failed[0].status}"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise BatchIncomplete(
            f"{len(failed)} of {len(report.chapters)} chapters failed: {first}{more}; no audiobook written"
        )
    # A chapter with no letter or digit (a "* * *" divider) has no audio file: not a chapter mark.
    chapters = [(c.title, Path(c.file)) for c in report.chapters if c.reason != NOTHING_TO_SPEAK]
    if not chapters:
        raise InputError("nothing to speak in the chapters chosen")
    cancelled = threading.Event()
    try:
        marks = await asyncio.to_thread(
            join_chapters, audiobook, chapters, title=book.title, author=book.author, cancelled=cancelled
        )
        report.audiobook = str(audiobook)
        report.marks = [asdict(mark) for mark in marks]
        if plan.m4b:
            await asyncio.to_thread(
                join_chapters,
                m4b,
                chapters,
                title=book.title,
                author=book.author,
                m4b=True,
                cancelled=cancelled,
            )
            report.m4b = str(m4b)
    except (asyncio.CancelledError, KeyboardInterrupt):
        # The joining thread runs on to its end (asyncio.run waits for it): it removes its file
        # when it sees the flag, and this removes one it finished before the flag was set.
        cancelled.set()
        report.interrupted, report.audiobook, report.m4b, report.marks = True, None, None, []
        with contextlib.suppress(OutputError):
            _remove_stale(text_dir, (audiobook, m4b), force=True)
        raise
    report.wall_s = time.monotonic() - started
    return report


def join_chapters(
    path: Path,
    chapters: Sequence[tuple[str, Path]],
    *,
    title: str,
    author: str,
    m4b: bool = False,
    cancelled: threading.Event | None = None,
) -> list[ChapterMark]:
    """Write the audiobook `path` (MP3 frames joined, or M4B) and record it as ours. If
    `cancelled` is set by the time it is written, it is removed: a cancelled run leaves none."""
    write = write_m4b if m4b else write_audiobook
    try:
        marks = write(path, chapters, title=title, author=author)
        _record_written(path.parent / TEXT_DIR, path)
    except ValueError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if cancelled is not None and cancelled.is_set():
        path.unlink(missing_ok=True)
    return marks
