"""What people see on stderr: a live line while speaking, and a latency table at the end.

`RichDisplay` on a terminal; `PlainDisplay` (a line per event) or `SilentDisplay` elsewhere.
Data (audio with `-o -`, `--json`) goes to stdout and never through here.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text


class Display(Protocol):
    def status(self, message: str) -> None: ...
    def start(self, label: str, target: str) -> None: ...
    def update(
        self, *, state: str | None = None, chars_sent: int | None = None, audio_s: float | None = None
    ) -> None: ...
    def stop(self) -> None: ...
    def report(self, stats: dict[str, Any]) -> None: ...
    def note(self, message: str) -> None: ...


class SilentDisplay:
    def status(self, message: str) -> None:
        """Before the stream starts (e.g. "loading voice joe...")."""

    def start(self, label: str, target: str) -> None:
        pass

    def update(
        self, *, state: str | None = None, chars_sent: int | None = None, audio_s: float | None = None
    ) -> None:
        pass

    def stop(self) -> None:
        pass

    def report(self, stats: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def stats_table(stats: dict[str, Any]) -> Table:
    table = Table(title="elevtts", title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    flush = stats.get("flush_latency_ms") or {}
    if stats.get("voice_load_ms") is not None:
        table.add_row("voice load (embedded server)", _ms(stats["voice_load_ms"]))
    table.add_row("connect", _ms(stats.get("connect_ms")))
    table.add_row("TTFB (first text to first audio)", _ms(stats.get("ttfb_ms")))
    if flush.get("count"):
        table.add_row(
            f"flush to first audio ({flush['count']})",
            f"p50 {_ms(flush.get('p50'))}  p95 {_ms(flush.get('p95'))}  max {_ms(flush.get('max'))}",
        )
    if stats.get("elapsed_ms") is not None:
        table.add_row("stream (connect to last audio)", _ms(stats.get("total_ms")))
        table.add_row("total (the whole command)", _ms(stats["elapsed_ms"]))
    else:
        table.add_row("total", _ms(stats.get("total_ms")))
    audio_s = stats.get("audio_seconds")
    table.add_row("audio", "-" if audio_s is None else f"{audio_s:.2f} s")
    rtf = stats.get("real_time_factor")
    rtf_label = "real-time factor (stream / audio)"
    if stats.get("input") == "stream":  # the stream lasts as long as the producer takes
        rtf_label += ", input pauses included"
    table.add_row(rtf_label, "-" if rtf is None else f"{rtf:.3f}")
    table.add_row(
        "sent",
        f"{count(stats.get('chars_sent', 0), 'char')} in {count(stats.get('messages_sent', 0), 'message')}",
    )
    table.add_row(
        "received",
        f"{count(stats.get('audio_bytes', 0), 'byte')} in {count(stats.get('audio_chunks', 0), 'chunk')}",
    )
    return table


def count(number: int, noun: str) -> str:
    """`1 message`, `2 messages`, `1,024 bytes`."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


class PlainDisplay(SilentDisplay):
    """No live display: just the final table (used when stderr is not a terminal but not --quiet)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def status(self, message: str) -> None:
        self.note(f"elevtts: {message}")

    def report(self, stats: dict[str, Any]) -> None:
        self.console.print(stats_table(stats))

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


class RichDisplay(PlainDisplay):
    """A live status line on a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self._live: Live | None = None
        self._state = "starting"
        self._chars = 0
        self._audio_s = 0.0
        self._label = ""
        self._target = ""
        self._started = time.monotonic()

    def status(self, message: str) -> None:
        self._state = message
        self._live_on()

    def start(self, label: str, target: str) -> None:
        self._label, self._target = label, target
        self._state = "connecting"
        self._live_on()

    def _live_on(self) -> None:
        if self._live is None:
            self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
            self._live.start()

    def update(
        self, *, state: str | None = None, chars_sent: int | None = None, audio_s: float | None = None
    ) -> None:
        if state is not None:
            self._state = state
        if chars_sent is not None:
            self._chars = chars_sent
        if audio_s is not None:
            self._audio_s = audio_s

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def note(self, message: str) -> None:
        if self._live is not None:
            self._live.console.print(message, markup=False, highlight=False)
        else:
            super().note(message)

    def __rich__(self) -> Text:
        elapsed = time.monotonic() - self._started
        text = Text()
        text.append(f"{self._label} ", style="bold")
        text.append(f"[{self._state}] ", style="cyan")
        if self._state == "sending" and not self._chars:
            text.append("waiting for input · ")
        else:
            text.append(f"sent {count(self._chars, 'char')} · ")
        text.append(f"audio {self._audio_s:.1f} s · {elapsed:.1f} s elapsed")
        text.append(f"  ({self._target})", style="dim")
        return text


def make_display(*, quiet: bool, console: Console | None = None) -> Display:
    console = console or Console(stderr=True)
    if quiet:
        return SilentDisplay()
    return RichDisplay(console) if console.is_terminal else PlainDisplay(console)
