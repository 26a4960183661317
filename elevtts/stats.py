"""Latency and volume of one stream: fed with what was sent and received, and when; pure.

    stats = StreamStats(started_at=now)
    stats.text_sent("Hello. ", flush=True, now=t1)
    stats.audio_received(frame, now=t2)       # an AudioFrame
    stats.summary()                           # the JSON the CLI prints and writes

Times are `time.monotonic()` seconds passed in by the caller: no clock is read here except as the
default for `started_at` and for an unfinished stream's `total_ms`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elevtts.protocol import AudioFrame


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class StreamStats:
    """Latency and volume of one stream. Times are `time.monotonic()` seconds."""

    connect_ms: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    first_text_at: float | None = None
    first_audio_at: float | None = None
    finished_at: float | None = None
    chars_sent: int = 0
    messages_sent: int = 0
    flushes: int = 0
    audio_chunks: int = 0
    audio_bytes: int = 0
    unaligned_chunks: int = 0  # audio that came without alignment (then no resume is possible)
    reconnects: int = 0
    flush_latencies_ms: list[float] = field(default_factory=list)
    # Segments closed by a flush: (non-space characters before it, when it was sent), waiting for audio.
    _pending_flushes: list[tuple[int, float]] = field(default_factory=list)
    _flushed_upto: int = 0
    _spoken_chars_sent: int = 0
    _spoken_chars_received: int = 0

    def text_sent(self, text: str, *, flush: bool, now: float) -> None:
        if text.strip() and self.first_text_at is None:
            self.first_text_at = now
        self.chars_sent += len(text)
        self.messages_sent += 1
        self._spoken_chars_sent += sum(not c.isspace() for c in text)
        if flush:
            self.flushes += 1
            # A flush covers everything sent since the previous one; its latency runs to the
            # first audio of that text.
            already_heard = self._spoken_chars_received > self._flushed_upto
            if self._spoken_chars_sent > self._flushed_upto and not already_heard:
                self._pending_flushes.append((self._flushed_upto, now))
            self._flushed_upto = self._spoken_chars_sent

    def audio_received(self, frame: AudioFrame, *, now: float) -> None:
        if self.first_audio_at is None and frame.audio:
            self.first_audio_at = now
        self.audio_chunks += 1
        self.audio_bytes += len(frame.audio)
        if frame.alignment is None:  # no alignment: the oldest waiting flush gets this audio
            self.unaligned_chunks += 1
            if self._pending_flushes and frame.audio:
                _, sent_at = self._pending_flushes.pop(0)
                self.flush_latencies_ms.append(max(0.0, (now - sent_at) * 1000))
            return
        self._spoken_chars_received += sum(not c.isspace() for c in frame.alignment.chars)
        while self._pending_flushes and self._spoken_chars_received > self._pending_flushes[0][0]:
            _, sent_at = self._pending_flushes.pop(0)
            self.flush_latencies_ms.append(max(0.0, (now - sent_at) * 1000))

    def resumed(self, confirmed: int) -> None:
        """A new connection carries on after `confirmed` non-space characters; the rest is sent again."""
        self.reconnects += 1
        self._spoken_chars_sent = self._flushed_upto = self._spoken_chars_received = confirmed
        self._pending_flushes.clear()

    @property
    def spoken_chars_confirmed(self) -> int | None:
        """Non-space characters whose audio has arrived, by the alignment; None if unknown."""
        return None if self.unaligned_chunks else self._spoken_chars_received

    @property
    def ttfb_ms(self) -> float | None:
        """First text sent to first audio byte received."""
        if self.first_text_at is None or self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.first_text_at) * 1000

    @property
    def total_ms(self) -> float:
        return ((self.finished_at or time.monotonic()) - self.started_at) * 1000

    def summary(self) -> dict[str, Any]:
        latencies = self.flush_latencies_ms
        return {
            "connect_ms": _round(self.connect_ms),
            "ttfb_ms": _round(self.ttfb_ms),
            "flush_latency_ms": {
                "count": len(latencies),
                "p50": _round(_percentile(latencies, 50)),
                "p95": _round(_percentile(latencies, 95)),
                "max": _round(max(latencies) if latencies else None),
                "all": [_round(x) for x in latencies],
            },
            "total_ms": _round(self.total_ms),
            "chars_sent": self.chars_sent,
            "messages_sent": self.messages_sent,
            "flushes": self.flushes,
            "audio_chunks": self.audio_chunks,
            "audio_bytes": self.audio_bytes,
            "reconnects": self.reconnects,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
