"""`StreamStats`: pure bookkeeping, driven with explicit times (no clock, no socket)."""

from __future__ import annotations

import pytest

from elevtts.protocol import Alignment, AudioFrame
from elevtts.stats import StreamStats


def _frame(audio: bytes, chars: str | None) -> AudioFrame:
    alignment = None
    if chars is not None:
        n = len(chars)
        alignment = Alignment(tuple(chars), tuple(range(n)), tuple([1] * n))
    return AudioFrame(audio=audio, alignment=alignment)


def test_ttfb_runs_from_the_first_spoken_text_to_the_first_audio() -> None:
    stats = StreamStats(started_at=10.0)
    stats.text_sent(" ", flush=False, now=10.1)  # the opener's space is not text
    stats.text_sent("Hello. ", flush=True, now=10.2)
    stats.audio_received(_frame(b"", None), now=10.3)  # empty audio is not the first audio
    stats.audio_received(_frame(b"abc", "Hello."), now=10.45)
    stats.finished_at = 11.0
    assert stats.ttfb_ms == 250.0
    assert stats.total_ms == 1000.0
    summary = stats.summary()
    assert summary["chars_sent"] == 8 and summary["messages_sent"] == 2 and summary["flushes"] == 1
    assert summary["audio_chunks"] == 2 and summary["audio_bytes"] == 3
    assert summary["flush_latency_ms"]["all"] == [250.0]


def test_each_flush_waits_for_the_audio_of_its_own_text() -> None:
    stats = StreamStats(started_at=0.0)
    stats.text_sent("One. ", flush=True, now=1.0)
    stats.text_sent("Two. ", flush=True, now=2.0)
    stats.audio_received(_frame(b"x", "One."), now=2.5)  # answers the first flush only
    stats.audio_received(_frame(b"y", "Two."), now=2.9)
    assert stats.flush_latencies_ms == pytest.approx([1500.0, 900.0])
    assert stats.spoken_chars_confirmed == 8  # "One." and "Two."


def test_unaligned_audio_answers_the_oldest_flush_and_makes_resume_unknown() -> None:
    stats = StreamStats(started_at=0.0)
    stats.text_sent("One. ", flush=True, now=1.0)
    stats.audio_received(_frame(b"x", None), now=1.2)
    assert stats.flush_latencies_ms == pytest.approx([200.0])
    assert stats.spoken_chars_confirmed is None


def test_resume_restarts_the_counts_from_the_confirmed_text() -> None:
    stats = StreamStats(started_at=0.0)
    stats.text_sent("Alpha beta. ", flush=True, now=1.0)
    stats.audio_received(_frame(b"x", "Alpha"), now=1.5)
    stats.resumed(5)
    assert stats.reconnects == 1 and stats.summary()["reconnects"] == 1
    stats.text_sent("beta. ", flush=True, now=3.0)
    stats.audio_received(_frame(b"y", "beta."), now=3.4)
    assert stats.flush_latencies_ms[-1] == pytest.approx(400.0)
