"""Word-timing helpers shared by the engines: tokens, word spans, spreading time over words.

Pure.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from elevtts.server.engines.base import WordTiming


def _tokens(text: str) -> list[tuple[int, int]]:
    """(start, end) of every whitespace-separated token."""
    spans: list[tuple[int, int]] = []
    start = None
    for i, ch in enumerate(text):
        if ch.isspace():
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        spans.append((start, len(text)))
    return spans


# Scripts written without spaces between words: there a word starts wherever the engine says one does.
_UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "IDEOGRAPHIC")


def _unspaced(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(_UNSPACED_SCRIPTS)


def _split_unspaced(
    text: str, tokens: Sequence[tuple[int, int]], starts: Iterable[int]
) -> list[tuple[int, int]]:
    """Cut whitespace tokens of a no-space script (Chinese, Japanese, Thai) where a word starts
    (`starts`: character offsets the engine gave); other tokens ("2024," read as four words) stay whole."""
    cut_at = sorted(set(starts))
    result: list[tuple[int, int]] = []
    for start, end in tokens:
        begin = start
        for position in cut_at:
            if begin < position < end and _unspaced(text[position]):
                before = text[position - 1]
                if _unspaced(before) or _is_punct(before):
                    result.append((begin, position))
                    begin = position
        result.append((begin, end))
    return result


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _word_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a token to its word: strip surrounding punctuation ("Hello," -> "Hello")."""
    s, e = start, end
    while s < e and _is_punct(text[s]):
        s += 1
    while e > s and _is_punct(text[e - 1]):
        e -= 1
    return (s, e) if s < e else (start, end)


def _speakable(text: str, start: int, end: int) -> bool:
    return any(ch.isalnum() for ch in text[start:end])


def _nothing_to_say(text: str) -> bool:
    """Only whitespace and punctuation: the engines would just make a pause of it."""
    return all(ch.isspace() or unicodedata.category(ch)[0] in "PCZ" for ch in text)


def _spread(spans: Sequence[tuple[int, int]], t0: float, t1: float) -> list[WordTiming]:
    """Share [t0, t1] between word spans in proportion to their lengths in characters."""
    total = sum(e - s for s, e in spans) or 1
    words, acc = [], 0
    for s, e in spans:
        a = t0 + (t1 - t0) * acc / total
        acc += e - s
        words.append(WordTiming(s, e, a, t0 + (t1 - t0) * acc / total))
    return words
