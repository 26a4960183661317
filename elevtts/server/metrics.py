"""What `GET /metrics` exports (Prometheus text format), and the outcome of one session.

Every label is bounded: the endpoint is one of our route names, the voice is a served voice id
(never the string a client asked for), the code is a WebSocket close code or an HTTP status, the
error is one of the protocol's error names. No key, text, peer address or session id is ever a
label or a value. Each server has its own registry, so servers in one process do not mix.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "SessionRecord"]

# Time to first audio: a neural voice's first piece takes tens to hundreds of milliseconds.
TTFB_BUCKETS_S = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
# Synthesis time / audio time of one piece: below 1 the voice speaks faster than real time.
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass
class SessionRecord:
    """One WebSocket session or HTTP request, filled in as it goes; logged and counted at its end."""

    endpoint: str
    voice: str
    output_format: str
    model: str | None = None
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started: float = field(default_factory=time.monotonic)
    first_piece_at: float | None = None  # a piece was handed to synthesis (a slot awaited)
    ttfb_s: float | None = None  # from the first piece handed to synthesis to its first audio
    characters: int = 0
    audio_s: float = 0.0
    code: int | None = None  # the WebSocket close code, or the HTTP status
    error: str | None = None  # the protocol error name, if the session ended with one

    def piece_started(self, characters: int) -> None:
        self.characters += characters
        if self.first_piece_at is None:
            self.first_piece_at = time.monotonic()

    def audio_sent(self, seconds: float, *, encoded_bytes: int) -> None:
        """`seconds` of audio synthesized; `encoded_bytes` of it went out now (an encoder may hold
        the first frames back: the first audio is the first bytes sent)."""
        if self.ttfb_s is None and self.first_piece_at is not None and encoded_bytes:
            self.ttfb_s = time.monotonic() - self.first_piece_at
        self.audio_s += seconds

    @property
    def duration_s(self) -> float:
        return time.monotonic() - self.started


class Metrics:
    """The server's collectors, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions = Counter(
            "elevtts_sessions", "Sessions ended, by endpoint and WebSocket close code or HTTP status.",
            ["endpoint", "code"], registry=r,
        )  # fmt: skip
        self.active = Gauge(
            "elevtts_active_sessions", "Sessions open now, by endpoint (the autoscaling signal).",
            ["endpoint"], registry=r,
        )  # fmt: skip
        self.ttfb = Histogram(
            "elevtts_time_to_first_audio_seconds",
            "From a session's first piece handed to synthesis to its first audio (sessions with audio).",
            ["endpoint"], buckets=TTFB_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.characters = Counter(
            "elevtts_characters", "Characters synthesized, by served voice.", ["voice"], registry=r
        )
        self.audio = Counter(
            "elevtts_audio_seconds", "Audio synthesized, in seconds, by served voice.", ["voice"], registry=r
        )
        self.real_time_factor = Histogram(
            "elevtts_synthesis_real_time_factor",
            "Synthesis time over audio time, per piece, by served voice.",
            ["voice"], buckets=RTF_BUCKETS, registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "elevtts_errors", "Sessions and requests ended by an error, by error name.", ["error"], registry=r
        )
        self.voice_load = Gauge(
            "elevtts_voice_load_seconds", "How long loading each served voice took.", ["voice"], registry=r
        )
        self.draining = Gauge("elevtts_draining", "1 while the server drains before stopping.", registry=r)

    def session_started(self, record: SessionRecord) -> None:
        self.active.labels(record.endpoint).inc()

    def session_ended(self, record: SessionRecord) -> None:
        self.active.labels(record.endpoint).dec()
        self.sessions.labels(record.endpoint, str(record.code or 0)).inc()
        if record.ttfb_s is not None:
            self.ttfb.labels(record.endpoint).observe(record.ttfb_s)
        if record.characters:
            self.characters.labels(record.voice).inc(record.characters)
        if record.audio_s:
            self.audio.labels(record.voice).inc(record.audio_s)
        if record.error is not None:
            self.errors.labels(record.error).inc()

    def piece_synthesized(self, voice: str, *, synthesis_s: float, audio_s: float) -> None:
        if audio_s > 0:
            self.real_time_factor.labels(voice).observe(synthesis_s / audio_s)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)
