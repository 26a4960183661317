"""The plan and report of a batch, and what people see while it runs."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from elevtts.batch.manifest import DONE, FAILED, FAILED_BEFORE, INTERRUPTED, NOT_STARTED, SKIPPED
from elevtts.display import SilentDisplay, count
from elevtts.retry import Backoff
from elevtts.speak import INPUT_SENT

# ---------------------------------------------------------------------------------------------
# Plan, reports, progress


@dataclass(frozen=True)
class BatchPlan:
    output_dir: Path
    jobs: int = 2
    retries: int = 3  # further attempts after the first
    retry_failed: bool = False
    force: bool = False
    subtitles: tuple[str, ...] = ()
    keep_chunks: bool = False
    write_stats: bool = True
    backoff: Backoff = field(default_factory=Backoff)


@dataclass
class FileReport:
    """One input in the report (`--json`) and in the progress display."""

    input: str
    output: str | None
    status: str = NOT_STARTED
    ttfb_ms: float | None = None
    audio_seconds: float | None = None
    real_time_factor: float | None = None
    error: str | None = None
    attempts: int = 0
    chars: int = 0
    reason: str = ""  # why it was run or skipped: new, changed text, unfinished, ...

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchReport:
    files: list[FileReport] = field(default_factory=list)
    manifest: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    wall_s: float | None = None
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(f.status in (DONE, SKIPPED) for f in self.files)

    def totals(self) -> dict[str, Any]:
        done = [f for f in self.files if f.status == DONE]
        return {
            "files": len(self.files),
            **{status: self.count(status) for status in (DONE, SKIPPED, FAILED, INTERRUPTED, NOT_STARTED)},
            "chars": sum(f.chars for f in done),
            "audio_seconds": round(sum(f.audio_seconds or 0.0 for f in done), 3),
            "wall_s": None if self.wall_s is None else round(self.wall_s, 3),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "interrupted": self.interrupted,
            "manifest": self.manifest,
            "totals": self.totals(),
            "files": [f.to_json() for f in self.files],
        }


class BatchProgress(Protocol):
    """What a batch tells its display; see `PlainBatchProgress` and `RichBatchProgress`."""

    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None: ...
    def status(self, message: str) -> None: ...
    def file_started(self, file: FileReport) -> None: ...
    def file_update(
        self,
        file: FileReport,
        *,
        state: str | None = None,
        chars_sent: int | None = None,
        audio_s: float | None = None,
    ) -> None: ...
    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None: ...
    def file_finished(self, file: FileReport) -> None: ...
    def end(self, report: BatchReport) -> None: ...


class SilentBatchProgress:
    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None:
        pass

    def status(self, message: str) -> None:
        """Before the first file (e.g. "loading voice joe...")."""

    def file_started(self, file: FileReport) -> None:
        pass

    def file_update(
        self,
        file: FileReport,
        *,
        state: str | None = None,
        chars_sent: int | None = None,
        audio_s: float | None = None,
    ) -> None:
        pass

    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None:
        pass

    def file_finished(self, file: FileReport) -> None:
        pass

    def end(self, report: BatchReport) -> None:
        pass


def _file_line(file: FileReport) -> str:
    if file.status == DONE:
        details = [f"{file.audio_seconds or 0:.1f} s audio"]
        if file.ttfb_ms is not None:
            details.append(f"TTFB {file.ttfb_ms:,.0f} ms")
        if file.real_time_factor is not None:
            details.append(f"RTF {file.real_time_factor:.2f}")
        if file.attempts > 1:
            details.append(f"{file.attempts} attempts")
        return f"done    {file.input} -> {file.output}  ({', '.join(details)})"
    if file.status == FAILED:
        tries = f" ({file.attempts} attempt{'s' if file.attempts != 1 else ''})" if file.attempts else ""
        if file.reason == FAILED_BEFORE:
            tries = " (in an earlier run; --retry-failed tries again)"
        return f"failed  {file.input}: {file.error}{tries}"
    return f"{file.status:<7} {file.input}"


def _summary_line(report: BatchReport) -> str:
    totals = report.totals()
    parts = [f"{totals[DONE]} done"]
    parts += [
        f"{totals[s]} {s.replace('_', ' ')}" for s in (SKIPPED, FAILED, INTERRUPTED, NOT_STARTED) if totals[s]
    ]
    audio, wall = totals["audio_seconds"], totals["wall_s"] or 0.0
    line = f"batch: {', '.join(parts)}; {audio:.1f} s of audio in {wall:.1f} s"
    line += f" (manifest {report.manifest})" if report.manifest else ""
    if report.interrupted:
        kept = [
            f.output
            for f in report.files
            if f.status == INTERRUPTED and f.output and Path(f.output + ".part").exists()
        ]
        line += "\nbatch: interrupted; re-run the same command to resume"
        line += f" (partial audio kept in {', '.join(p + '.part' for p in kept)})" if kept else ""
    return line


class PlainBatchProgress(SilentBatchProgress):
    """Not a terminal: a line per finished file, retry and summary on stderr."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.finished = 0
        self.to_run = 0

    def _print(self, line: str, *, fit: bool = False) -> None:
        """`fit`: on a terminal, one line cut to its width (a log file keeps it whole)."""
        self.stream.write(line + "\n")
        self.stream.flush()

    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None:
        self.to_run = to_run
        skipped = report.count(SKIPPED)
        failed_before = [f for f in report.files if f.status == FAILED]
        files = count(len(report.files), "file")
        line = f"batch: {files}, {to_run} to speak ({count(chars, 'char')}) on {target}"
        self._print(line + (f"; {skipped} unchanged, skipped" if skipped else ""))
        for file in failed_before:
            self._print(_file_line(file))

    def status(self, message: str) -> None:
        self._print(f"batch: {message}")

    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None:
        self._print(f"retry   {file.input}: {error} (attempt {file.attempts + 1} in {delay_s:.1f} s)")

    def file_finished(self, file: FileReport) -> None:
        self.finished += 1
        self._print(f"[{self.finished}/{self.to_run}] {_file_line(file)}", fit=file.status == DONE)

    def end(self, report: BatchReport) -> None:
        self._print(_summary_line(report))


class RichBatchProgress(PlainBatchProgress):
    """A terminal: one live line per file in flight and an overall bar; finished files scroll above."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        super().__init__()
        self.console = console or Console(stderr=True)
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None
        self._active: dict[int, dict[str, Any]] = {}
        self._done_chars = 0
        self._failed_chars = 0  # failed files count as processed, so the bar ends full
        self._audio_s = 0.0

    def _print(self, line: str, *, fit: bool = False) -> None:
        if fit:  # a result line never wraps into two: the end is cut ("…") to the terminal's width
            self.console.print(line, markup=False, highlight=False, no_wrap=True, overflow="ellipsis")
        else:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        super().begin(report, to_run=to_run, chars=chars, target=target)
        self._progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            TextColumn("{task.fields[files]}/{task.fields[to_run]} files"),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} chars"),
            TextColumn("{task.fields[audio]:.1f} s audio"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
        )
        self._task = self._progress.add_task("batch", total=max(1, chars), files=0, to_run=to_run, audio=0.0)

        self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
        self._live.start()

    def __rich__(self) -> Any:
        from rich.console import Group

        return Group(*(self._line(state) for state in self._active.values()), self._progress)

    def _line(self, state: dict[str, Any]) -> Any:
        from rich.text import Text

        file: FileReport = state["file"]
        text = Text()
        text.append(f"{file.input} ", style="bold")
        text.append(f"[{state['state']}] ", style="cyan")
        text.append(
            f"{min(state['chars'], file.chars):,}/{count(file.chars, 'char')} · audio {state['audio']:.1f} s"
        )
        if file.attempts > 1:
            text.append(f" · attempt {file.attempts}", style="yellow")
        return text

    def _refresh(self) -> None:
        if self._progress is None:
            return
        # Text is sent well ahead of the audio: count a file in flight by the text its audio
        # covers so far, at the characters-per-second rate of the files already finished.
        rate = self._done_chars / self._audio_s if self._audio_s else 15.0
        in_flight = sum(min(s["chars"], s["audio"] * rate, s["file"].chars) for s in self._active.values())
        audio = self._audio_s + sum(s["audio"] for s in self._active.values())
        completed = self._done_chars + self._failed_chars + in_flight
        self._progress.update(self._task, completed=completed, files=self.finished, audio=audio)

    def file_started(self, file: FileReport) -> None:
        self._active[id(file)] = {"file": file, "state": "connecting", "chars": 0, "audio": 0.0}
        self._refresh()

    def file_update(
        self,
        file: FileReport,
        *,
        state: str | None = None,
        chars_sent: int | None = None,
        audio_s: float | None = None,
    ) -> None:
        current = self._active.get(id(file))
        if current is None:
            return
        if state is not None:
            current["state"] = state
        if chars_sent is not None:
            current["chars"] = chars_sent
        if state == INPUT_SENT:
            # The count was of the text sent (Markdown stripped, spaces folded): all of the file now.
            current["chars"] = file.chars
        if audio_s is not None:
            current["audio"] = audio_s
        self._refresh()

    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None:
        super().file_retry(file, delay_s=delay_s, error=error)
        self.file_update(file, state=f"retry in {delay_s:.1f} s", chars_sent=0, audio_s=0.0)

    def file_finished(self, file: FileReport) -> None:
        self._active.pop(id(file), None)
        if file.status == DONE:
            self._done_chars += file.chars
            self._audio_s += file.audio_seconds or 0.0
        else:
            self._failed_chars += file.chars
        super().file_finished(file)
        self._refresh()

    def end(self, report: BatchReport) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        super().end(report)


def make_batch_progress(*, quiet: bool, console: Any = None) -> BatchProgress:
    """Rich on a terminal, plain lines elsewhere, nothing with --quiet (all on stderr)."""
    if quiet:
        return SilentBatchProgress()
    from rich.console import Console

    console = console or Console(stderr=True)
    return RichBatchProgress(console) if console.is_terminal else PlainBatchProgress()


class FileDisplay(SilentDisplay):
    """`speak`'s per-stream display, forwarded to the batch progress."""

    def __init__(self, progress: BatchProgress, file: FileReport) -> None:
        self.progress = progress
        self.file = file

    def start(self, label: str, target: str) -> None:
        self.progress.file_update(self.file, state="connecting", chars_sent=0, audio_s=0.0)

    def update(
        self, *, state: str | None = None, chars_sent: int | None = None, audio_s: float | None = None
    ) -> None:
        self.progress.file_update(self.file, state=state, chars_sent=chars_sent, audio_s=audio_s)
