"""Carry character timings from the spoken (normalized) text back to the text the client sent.

Pronunciation dictionaries change what is spoken ("SQL" -> "sequel"); `normalizedAlignment`
describes the spoken text and `alignment` the original. Pure.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from elevtts.protocol import Alignment


def remap_alignments(normalized: list[Alignment], spoken: str, original: str) -> list[Alignment]:
    """One alignment of `original` per frame, given the frames' alignments of `spoken`.

    Unchanged characters keep their own timings; a replaced span shares the time of what
    replaced it. Every original character lands in exactly one frame, in order.
    """
    timeline = [
        (index, start, duration)
        for index, frame in enumerate(normalized)
        for start, duration in zip(frame.char_start_times_ms, frame.char_durations_ms, strict=True)
    ]
    buckets: list[tuple[list[str], list[int], list[int]]] = [([], [], []) for _ in normalized] or [
        ([], [], [])
    ]
    matcher = SequenceMatcher(None, original, spoken, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for i in range(i1, i2):
            if tag == "equal":
                j, share = j1 + (i - i1), 1.0
            elif j2 > j1:
                j, share = j1 + (i - i1) * (j2 - j1) // (i2 - i1), (j2 - j1) / (i2 - i1)
            else:  # deleted from the spoken text: no time of its own
                j, share = min(j1, len(timeline) - 1), 0.0
            if timeline:
                frame, start, duration = timeline[max(j, 0)]
            else:
                frame, start, duration = 0, 0, 0
            chars, starts, durations = buckets[frame]
            chars.append(original[i])
            starts.append(start)
            durations.append(round(duration * share))
    return [Alignment(tuple(c), tuple(s), tuple(d)) for c, s, d in buckets]
