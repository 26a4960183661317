"""`<break time="1.5s"/>` tags: split text into spoken segments and pauses.

Pure and stdlib only. The live service honours break tags in its v2/flash/turbo models: it
drops the tag from speech and inserts the silence, up to 3 s. The local server does the same
by synthesizing each `Speech` segment and inserting each `Pause` as silence.

    >>> split_breaks('Hi <break time="1.5s"/> there')
    [Speech(text='Hi ', start=0), Pause(seconds=1.5, start=3, end=23), Speech(text=' there', start=23)]

The segments cover the original text losslessly and in order: a `Speech` covers
`text[start : start + len(speech.text)]`, a `Pause` covers the tag, `text[start:end]`. So
alignment stays consistent with the original text: `alignment` covers the original input (the
protocol says so), so a pause's characters are the tag's own, spread over the silence
(`Pause.alignment`); `normalizedAlignment` covers the spoken text, where the tag is absent.
protocol.md does not say what the live service puts there; this is our documented choice.

A malformed tag (no `time`, a time that is not a number of `s` or `ms`, or a tag cut off
before its `>`) is never read aloud: it becomes a `Pause` of 0 s. A tag still arriving in a
streamed buffer (`<break time="1` at its end) is found by `unfinished_tag_start`, so a caller
can hold it back until it is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from elevtts.protocol import Alignment

MAX_BREAK_S = 3.0  # the live API's documented maximum

# `<break`, its attributes (values may be cut off), an optional `/`, and `>` if it arrived.
_TAG = re.compile(
    r"""<break\b(?:\s+[\w:-]+(?:\s*=\s*(?:"[^"<>]*"?|'[^'<>]*'?|[^\s"'<>/]*))?)*\s*/?\s*>?""",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"""\btime\s*=\s*(["']?)\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*\1(?=[\s/>]|$)""", re.IGNORECASE
)


@dataclass(frozen=True)
class Speech:
    """Text to synthesize; `start` is the index of its first character in the original."""

    text: str
    start: int


@dataclass(frozen=True)
class Pause:
    """Silence of `seconds` (0 for a malformed tag), in place of the tag `original[start:end]`."""

    seconds: float
    start: int
    end: int

    def alignment(self, original: str, *, start_ms: int = 0) -> Alignment:
        """The tag's characters spread evenly over the silence, starting at `start_ms`."""
        chars = tuple(original[self.start : self.end])
        total_ms = round(self.seconds * 1000)
        count = len(chars)
        starts = tuple(start_ms + total_ms * index // count for index in range(count))
        ends = (*starts[1:], start_ms + total_ms)
        return Alignment(chars, starts, tuple(end - start for start, end in zip(starts, ends, strict=True)))


Segment = Speech | Pause


def _seconds(tag: str) -> float:
    """The pause a complete tag asks for, capped at MAX_BREAK_S; 0 when malformed."""
    match = _TIME.search(tag)
    if not tag.endswith(">") or match is None:
        return 0.0
    value = float(match.group(2))
    if match.group(3).lower() == "ms":
        value /= 1000
    return min(value, MAX_BREAK_S)


def split_breaks(text: str) -> list[Segment]:
    """Speech and pauses of `text`, in order, covering it losslessly (see the module doc).

    Text without a break tag is one `Speech`; an empty text gives no segment. Speech segments
    may be whitespace only (around a tag): callers that synthesize skip those.
    """
    segments: list[Segment] = []
    position = 0
    for match in _TAG.finditer(text):
        if match.start() > position:
            segments.append(Speech(text[position : match.start()], position))
        segments.append(Pause(_seconds(match.group()), match.start(), match.end()))
        position = match.end()
    if position < len(text):
        segments.append(Speech(text[position:], position))
    return segments


def spoken_text(text: str) -> str:
    """`text` without its break tags: what is synthesized (the normalized text's view)."""
    return "".join(segment.text for segment in split_breaks(text) if isinstance(segment, Speech))


def unfinished_tag_start(text: str) -> int | None:
    """Where a break tag that has not received its `>` yet starts at the end of a streamed
    buffer (`... <break time="1.`), or `None`: hold the text from there until more arrives.
    Also a bare `<`, `<b`, `<bre` at the very end, which may still become a tag."""
    start = text.rfind("<")
    if start < 0:
        return None
    tail = text[start:]
    if "<break"[: len(tail)].lower() == tail.lower():
        return start  # `<`, `<bre`: may still become `<break`
    match = _TAG.match(text, start)
    if match and match.end() == len(text) and not match.group().endswith(">"):
        return start
    return None
