"""From one synthesized piece (text + Speech) to audio frames with character alignments, and the
join of alignments across frames whose audio the encoder held back.

Pure: word timings in, per-character timings and PCM slices out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

from elevtts.protocol import Alignment

if TYPE_CHECKING:
    import numpy as np

    from elevtts.server.engines.base import Speech


def _char_spans_s(text: str, speech: Speech) -> list[tuple[float, float]]:
    """(start_s, end_s) for every char: a word's chars share its time, the chars between words the gap."""
    duration = speech.duration_s
    spans: list[tuple[float, float]] = []
    t = 0.0  # time reached so far; keeps starts monotonic even if word timings overlap

    def spread(count: int, t0: float, t1: float) -> None:
        step = (t1 - t0) / count if count else 0.0
        spans.extend((t0 + k * step, t0 + (k + 1) * step) for k in range(count))

    for word in sorted(speech.words, key=lambda w: w.start_char):
        if word.start_char < len(spans) or word.end_char > len(text) or word.end_char <= word.start_char:
            continue  # overlapping or out of range: leave those chars to the gaps
        start = min(max(word.start_s, t), duration)
        end = min(max(word.end_s, start), duration)
        spread(word.start_char - len(spans), t, start)
        spread(word.end_char - word.start_char, start, end)
        t = end
    spread(len(text) - len(spans), t, duration)
    return spans


def char_timings(text: str, speech: Speech) -> list[tuple[int, int]]:
    """(start_ms, duration_ms) for every char of `text`, within the speech, starts non-decreasing."""
    timings = []
    for start, end in _char_spans_s(text, speech):
        start_ms = round(start * 1000)
        timings.append((start_ms, round(end * 1000) - start_ms))
    return timings


def _cuts(speech: Speech, max_samples: int) -> list[int]:
    """Sample positions where frames end (the last is the end of the PCM)."""
    rate, total = speech.sample_rate, len(speech.pcm)
    ordered = sorted(speech.words, key=lambda w: w.start_s)
    # Between consecutive words: (start, end) of the silence, or a zero-width boundary.
    gaps = [
        (round(a.end_s * rate), round(b.start_s * rate)) for a, b in pairwise(ordered) if b.start_s >= a.end_s
    ]
    cuts, position = [], 0
    while total - position > max_samples:
        lo, hi = position + max(1, max_samples // 2), position + max_samples
        near = [(g0, g1) for g0, g1 in gaps if g0 <= hi and g1 >= lo]
        # Prefer the latest real silence in the second half of the span, then the latest word
        # boundary; cut mid-word only when neither exists.
        silences = [(g0, g1) for g0, g1 in near if g1 > g0] or near
        best = hi
        if silences:
            best = max(min(max((g0 + g1) // 2, lo, g0), hi, g1) for g0, g1 in silences)
        cuts.append(best)
        position = best
    cuts.append(total)
    return cuts


def frames(text: str, speech: Speech, *, max_frame_s: float = 1.0) -> list[tuple[np.ndarray, Alignment]]:
    """Slice the speech into frames of at most `max_frame_s`, each with the chars that start in it.

    Every char of `text` lands in exactly one frame, in order. Empty speech gives one empty frame
    carrying all chars.
    """
    spans = _char_spans_s(text, speech)
    rate = speech.sample_rate
    if len(speech.pcm) == 0:
        alignment = Alignment(tuple(text), (0,) * len(text), (0,) * len(text))
        return [(speech.pcm, alignment)]
    cuts = _cuts(speech, max(1, int(max_frame_s * rate)))
    result: list[tuple[np.ndarray, Alignment]] = []
    i, start = 0, 0
    for index, end in enumerate(cuts):
        last = index == len(cuts) - 1
        t0, frame_ms = start / rate, round((end - start) / rate * 1000)
        chars, starts, durations = [], [], []
        while i < len(text) and (last or round(spans[i][0] * rate) < end):
            start_ms = min(max(round((spans[i][0] - t0) * 1000), 0), frame_ms)
            end_ms = min(max(round((spans[i][1] - t0) * 1000), start_ms), frame_ms)
            chars.append(text[i])
            starts.append(start_ms)
            durations.append(end_ms - start_ms)
            i += 1
        result.append((speech.pcm[start:end], Alignment(tuple(chars), tuple(starts), tuple(durations))))
        start = end
    return result


def join(first: Alignment, second: Alignment, offset_ms: int) -> Alignment:
    """Alignments of two consecutive frames as one; the second starts `offset_ms` in."""
    return Alignment(
        first.chars + second.chars,
        first.char_start_times_ms + tuple(t + offset_ms for t in second.char_start_times_ms),
        first.char_durations_ms + second.char_durations_ms,
    )


@dataclass(frozen=True)
class TimedAlignment:
    """A frame's alignments (of the original text and of the text spoken) and its audio length."""

    original: Alignment = field(default_factory=Alignment)
    normalized: Alignment = field(default_factory=Alignment)
    duration_ms: int = 0

    def then(self, later: TimedAlignment) -> TimedAlignment:
        """This frame and the one after it as one frame."""
        return TimedAlignment(
            join(self.original, later.original, self.duration_ms),
            join(self.normalized, later.normalized, self.duration_ms),
            self.duration_ms + later.duration_ms,
        )
