"""`elevtts bench`: latency trials against any stream-input server, their statistics and their table.

    settings = [BenchSetting(voice_id="joe", schedule=(50, 120)), BenchSetting("joe", auto_mode=True)]
    report = await run_bench(endpoint, settings, text, trials=10)
    report.to_json()        # numbers as numbers, the unit in each key
    render(report)          # a rich table with min/p50/p95/p99/max and a TTFB histogram

Every trial opens its own connection. TTFB runs from the first text sent to the first frame that
carries audio: a frame with `"audio": null` or `""` is no audio, an error frame is an error. A
failing trial is recorded with its error and the run goes on, so every trial is reported.
Settings run in turn (A B A B ...) so a change in the machine's load touches each of them alike.

Imports nothing heavy: rich only when a table is drawn.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from elevtts.cli.exit_codes import ExitCode, exit_code_for
from elevtts.client import Endpoint, Session, StreamOptions
from elevtts.errors import ElevttsError, UsageError
from elevtts.formats import FormatError, parse_output_format
from elevtts.protocol import StreamParams

if TYPE_CHECKING:
    from rich.console import RenderableType

EndpointKind = Literal["ws", "multi", "http"]
SendMode = Literal["words", "whole"]
FlushMode = Literal["end", "sentence"]
METRICS = ("connect_ms", "ttfb_ms", "flush_latency_ms", "total_ms", "audio_s", "real_time_factor")
TRIAL_TIMEOUT_S = 120.0  # a trial that hangs is an error, not the end of the run
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class BenchSetting:
    """One way of speaking the text: what a column of the comparison measured."""

    voice_id: str
    output_format: str = "mp3_44100_128"
    schedule: tuple[int, ...] | None = None  # None: the server's default
    auto_mode: bool = False
    endpoint: EndpointKind = "ws"
    model_id: str | None = None
    send: SendMode = "words"  # one message per word (as an LLM streams) or the whole text at once
    flush: FlushMode = "end"  # a flush at the end only, or after every sentence

    @property
    def label(self) -> str:
        parts = [f"schedule {','.join(map(str, self.schedule))}" if self.schedule else "schedule default"]
        parts.append("auto_mode on" if self.auto_mode else "auto_mode off")
        if self.endpoint != "ws":
            parts.append(self.endpoint)
        return ", ".join(parts)

    def describe(self) -> dict[str, Any]:
        data = asdict(self)
        data["schedule"] = list(self.schedule) if self.schedule else None
        data["label"] = self.label
        return data


@dataclass
class TrialResult:
    """One trial on one new connection. Times in ms, audio in seconds; None where nothing came."""

    index: int
    error: str | None = None
    error_name: str | None = None  # the server's public error name, when it sent one
    exit_code: int | None = None
    connect_ms: float | None = None
    ttfb_ms: float | None = None
    flush_latencies_ms: list[float] = field(default_factory=list)
    total_ms: float | None = None
    audio_frames: int = 0
    audio_bytes: int = 0
    audio_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def real_time_factor(self) -> float | None:
        """Audio seconds per wall second (above 1: faster than real time)."""
        if not self.audio_s or not self.total_ms:
            return None
        return self.audio_s / (self.total_ms / 1000)

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.index,
            "ok": self.ok,
            "error": self.error,
            "error_name": self.error_name,
            "connect_ms": _round(self.connect_ms),
            "ttfb_ms": _round(self.ttfb_ms),
            "flush_latency_ms": [_round(x) for x in self.flush_latencies_ms],
            "total_ms": _round(self.total_ms),
            "audio_frames": self.audio_frames,
            "audio_bytes": self.audio_bytes,
            "audio_s": _round(self.audio_s, 3),
            "real_time_factor": _round(self.real_time_factor, 2),
        }


@dataclass(frozen=True)
class Summary:
    count: int
    min: float
    p50: float
    p95: float
    p99: float
    max: float

    def to_json(self) -> dict[str, Any]:
        return {k: (v if k == "count" else _round(v, 3)) for k, v in asdict(self).items()}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); `values` must not be empty."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float]) -> Summary | None:
    if not values:
        return None
    return Summary(
        len(values),
        min(values),
        percentile(values, 50),
        percentile(values, 95),
        percentile(values, 99),
        max(values),
    )


@dataclass
class SettingResult:
    setting: BenchSetting
    trials: list[TrialResult] = field(default_factory=list)

    @property
    def errors(self) -> list[TrialResult]:
        return [t for t in self.trials if not t.ok]

    def values(self, metric: str) -> list[float]:
        if metric == "flush_latency_ms":
            return [x for t in self.trials if t.ok for x in t.flush_latencies_ms]
        found = (getattr(t, metric) for t in self.trials if t.ok)
        return [x for x in found if x is not None]

    def summary(self, metric: str) -> Summary | None:
        return summarize(self.values(metric))

    def to_json(self) -> dict[str, Any]:
        return {
            "setting": self.setting.describe(),
            "trials_run": len(self.trials),
            "trials_ok": len(self.trials) - len(self.errors),
            "errors": len(self.errors),
            "summary": {metric: (s.to_json() if (s := self.summary(metric)) else None) for metric in METRICS},
            "trials": [t.to_json() for t in self.trials],
        }


@dataclass
class BenchReport:
    target: str
    text_chars: int
    concurrency: int
    results: list[SettingResult]

    @property
    def exit_code(self) -> int:
        """0 when every trial succeeded, else the exit code of the first failure's kind."""
        for result in self.results:
            for trial in result.trials:
                if not trial.ok:
                    return trial.exit_code or ExitCode.SERVER
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "text_chars": self.text_chars,
            "concurrency": self.concurrency,
            "results": [r.to_json() for r in self.results],
        }


# ---------------------------------------------------------------------------------------------
# Running trials


def check_setting(setting: BenchSetting) -> None:
    """Refuse, before connecting, what no trial could run."""
    if setting.endpoint == "http":
        raise UsageError(
            "--endpoint http is not available yet: the HTTP text-to-speech endpoints do not exist; "
            "use ws or multi"
        )
    try:
        if not parse_output_format(setting.output_format).streamable:
            raise UsageError(f"--output-format {setting.output_format} is HTTP only, not on a WebSocket")
    except FormatError as exc:
        raise UsageError(f"--output-format: {exc}") from None


def audio_seconds(output_format: str, audio_bytes: int) -> float | None:
    """Seconds of audio in `audio_bytes` of a stream: from the byte rate or the (constant) bitrate."""
    fmt = parse_output_format(output_format)
    if fmt.bytes_per_second:
        return audio_bytes / fmt.bytes_per_second
    if fmt.bitrate_kbps:
        return audio_bytes * 8 / (fmt.bitrate_kbps * 1000)
    return None


def messages_for(text: str, setting: BenchSetting) -> list[tuple[str, bool]]:
    """The (text, flush) messages of a trial; every text ends with one space, as the protocol asks."""
    if setting.send == "whole" and setting.flush == "end":
        return [(" ".join(text.split()) + " ", True)]
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s] or [text.strip()]
    messages: list[tuple[str, bool]] = []
    for sentence in sentences:
        pieces = sentence.split() if setting.send == "words" else [sentence]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            messages.append((piece + " ", setting.flush == "sentence" and last))
    messages[-1] = (messages[-1][0], True)  # the end of the text is always flushed
    return messages


async def run_trial(endpoint: Endpoint, setting: BenchSetting, text: str, *, index: int) -> TrialResult:
    """One trial on a new connection; any failure is recorded in the result, never raised."""
    result = TrialResult(index)
    options = StreamOptions(
        voice_id=setting.voice_id,
        params=StreamParams(
            model_id=setting.model_id, output_format=setting.output_format, auto_mode=setting.auto_mode
        ),
        schedule=setting.schedule,
    )
    multi = setting.endpoint == "multi"
    started = time.monotonic()
    session = Session.open(endpoint, options, multi=multi)
    stream = None
    try:
        async with asyncio.timeout(TRIAL_TIMEOUT_S):
            await session.connect()
            stream = await session.start()
            for message, flush in messages_for(text, setting):
                await stream.send(message, flush=flush)
            await stream.end()
            async for _frame in stream:
                pass
            if multi:
                await session.close_socket()
    except ElevttsError as exc:
        result.error = exc.message
        result.error_name = getattr(exc, "error", None) or None
        result.exit_code = int(exit_code_for(exc))
    except TimeoutError:
        result.error = f"no isFinal within {TRIAL_TIMEOUT_S:g} s"
        result.exit_code = ExitCode.DROPPED
    finally:
        await session.aclose()
    result.connect_ms = session.connect_ms
    if stream is not None:
        stats = stream.stats
        result.ttfb_ms = stats.ttfb_ms
        result.flush_latencies_ms = list(stats.flush_latencies_ms)
        result.audio_frames = stats.audio_chunks
        result.audio_bytes = stats.audio_bytes
    result.total_ms = (time.monotonic() - started) * 1000
    result.audio_s = audio_seconds(setting.output_format, result.audio_bytes) if result.audio_bytes else None
    return result


async def run_bench(
    endpoint: Endpoint,
    settings: Sequence[BenchSetting],
    text: str,
    *,
    trials: int,
    concurrency: int = 1,
    target: str = "",
) -> BenchReport:
    """`trials` trials per setting, settings alternating, up to `concurrency` trials at once."""
    for setting in settings:
        check_setting(setting)
    results = [SettingResult(s) for s in settings]
    for first in range(0, trials, concurrency):
        indices = range(first, min(first + concurrency, trials))
        for result in results:  # one round of each setting in turn: A B A B ...
            batch = await asyncio.gather(
                *(run_trial(endpoint, result.setting, text, index=i) for i in indices)
            )
            result.trials.extend(batch)
    return BenchReport(target, len(text), concurrency, results)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# ---------------------------------------------------------------------------------------------
# The table


def histogram(values: Sequence[float], *, bins: int = 8, width: int = 24) -> list[tuple[float, float, int]]:
    """(low, high, count) for `bins` equal-width bins over the values' range."""
    if not values:
        return []
    low, high = min(values), max(values)
    step = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / step))] += 1
    return [(low + i * step, low + (i + 1) * step, c) for i, c in enumerate(counts)]


def render(report: BenchReport) -> list[RenderableType]:
    """Settings side by side, then per setting min/p50/p95/p99/max and a TTFB histogram, then failures."""
    from rich.table import Table
    from rich.text import Text

    per_setting = len(report.results[0].trials) if report.results else 0
    title = f"{report.target}: {report.text_chars} chars, {per_setting} trials per setting" + (
        f", {report.concurrency} at once" if report.concurrency > 1 else ""
    )
    compared = Table(title=title, title_justify="left", caption="times in ms", caption_justify="left")
    compared.add_column("setting", no_wrap=True)
    for name in ("ttfb p50", "ttfb p95", "total p50", "rtf p50", "ok", "errors"):
        compared.add_column(name, justify="right")
    for result in report.results:
        ttfb, total, rtf = (result.summary(m) for m in ("ttfb_ms", "total_ms", "real_time_factor"))
        compared.add_row(
            result.setting.label,
            _cell(ttfb.p50, "ttfb_ms") if ttfb else "-",
            _cell(ttfb.p95, "ttfb_ms") if ttfb else "-",
            _cell(total.p50, "total_ms") if total else "-",
            _cell(rtf.p50, "real_time_factor") if rtf else "-",
            str(len(result.trials) - len(result.errors)),
            str(len(result.errors)),
        )
    out: list[RenderableType] = [compared]
    for result in report.results:
        detail = Table(title=result.setting.label, title_justify="left")
        detail.add_column("metric")
        for name in ("min", "p50", "p95", "p99", "max"):
            detail.add_column(name, justify="right")
        for metric in METRICS:
            summary = result.summary(metric)
            names = ("min", "p50", "p95", "p99", "max")
            cells = [_cell(getattr(summary, n), metric) for n in names] if summary else ["-"] * 5
            detail.add_row(metric, *cells)
        out.append(detail)
        bars = histogram(result.values("ttfb_ms"), bins=min(8, len(result.values("ttfb_ms"))))
        if bars:
            peak = max(count for *_, count in bars)
            lines = ["ttfb_ms histogram:"]
            lines += [
                f"  {lo:8.1f} - {hi:<8.1f} {'#' * (round(24 * c / peak) if c else 0):<24} {c}"
                for lo, hi, c in bars
            ]
            out.append(Text("\n".join(lines)))
        for trial in result.errors:
            out.append(Text(f"trial {trial.index} failed: {trial.error}", style="red"))
    return out


def _cell(value: float, metric: str) -> str:
    if metric == "audio_s":
        return f"{value:.2f}"
    if metric == "real_time_factor":
        return f"{value:.1f}x"
    return f"{value:.0f}"
