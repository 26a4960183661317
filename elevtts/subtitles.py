"""Subtitles from alignment: characters -> words -> SRT / WebVTT / JSON.

Pure and stdlib only. `SubtitleBuilder` takes each received audio chunk's character alignment
(times in ms relative to the chunk) with the chunk's absolute start, and joins characters into
whitespace-delimited words with absolute times in seconds, also across chunk boundaries. A
`<break time="..."/>` tag is silence, not words: its characters (which the alignment may carry
over the silence) are left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from elevtts.breaks import Pause, split_breaks, unfinished_tag_start
from elevtts.protocol import Alignment
from elevtts.sentences import (
    CLOSERS,
    NO_SPACE_CLAUSE_MARKS,
    NO_SPACE_TERMINATORS,
    ends_at_cut_mark,
    ends_sentence,
)

CUE_GAP_S = 0.7  # a pause longer than this starts a new cue
# A stop and its closing quotes stay one word.
_STAYS_IN_TOKEN = CLOSERS + NO_SPACE_TERMINATORS + NO_SPACE_CLAUSE_MARKS


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    glued: bool = False  # no space before it in the text (Chinese, Japanese): cues join it without one


class SubtitleBuilder:
    """Collect words from a stream of alignments. Times are made monotonic (never going back)."""

    def __init__(self) -> None:
        self._words: list[Word] = []
        self._chars: list[str] = []  # the word being built
        self._start = 0.0
        self._end = 0.0
        self._last_end = 0.0  # end of the last completed word
        self._glued = False  # the word being built follows the last one with no space
        self._held: list[tuple[str, int, int, float]] = []  # what may still become a break tag

    def add(self, alignment: Alignment | None, offset_s: float) -> None:
        """Add one audio chunk's alignment; `offset_s` is the chunk's start in the stream."""
        if alignment is None:
            return
        for char, start_ms, duration_ms in zip(
            alignment.chars, alignment.char_start_times_ms, alignment.char_durations_ms, strict=True
        ):
            if not (self._held or char == "<"):
                self._char(char, start_ms, duration_ms, offset_s)
                continue
            self._held.append((char, start_ms, duration_ms, offset_s))
            held = "".join(item[0] for item in self._held)
            if unfinished_tag_start(held) == 0:
                continue  # `<`, `<bre`, `<break time="1`: wait for more
            segments = split_breaks(held)
            if len(segments) == 1 and isinstance(segments[0], Pause):  # a whole tag: silence
                self._held = []
                self._complete()
                self._glued = False
            else:
                self._release()

    def _release(self) -> None:
        """What was held as a possible tag is text after all (a tag cut off is dropped, as
        `elevtts.breaks` never speaks one)."""
        held, self._held = self._held, []
        segments = split_breaks("".join(item[0] for item in held))
        if len(segments) == 1 and isinstance(segments[0], Pause):
            return
        for item in held:
            self._char(*item)

    def _char(self, char: str, start_ms: int, duration_ms: int, offset_s: float) -> None:
        if not char or char.isspace():
            self._complete()
            self._glued = False
            return
        if self._chars and ends_at_cut_mark("".join(self._chars)) and char not in _STAYS_IN_TOKEN:
            self._complete()  # a full-width comma or stop ended the word; no space follows
            self._glued = True
        start = offset_s + start_ms / 1000
        end = start + max(duration_ms, 0) / 1000
        if not self._chars:
            self._start = max(start, self._last_end)
            self._end = self._start
        self._chars.append(char)
        self._end = max(self._end, end)

    def resume(self, *, repeat_word: bool) -> None:
        """A new stream carries on: the word in progress ends here, or is dropped when the new
        stream speaks it again from its start."""
        if repeat_word:
            self._chars, self._held = [], []
        else:
            self._release()
            self._complete()

    def words(self) -> list[Word]:
        """The completed words so far (a word completes when whitespace follows it)."""
        return list(self._words)

    def finish(self) -> list[Word]:
        """Complete the last word (end of stream) and return all words."""
        self._release()
        self._complete()
        return self.words()

    def _complete(self) -> None:
        if not self._chars:
            return
        word = Word("".join(self._chars), self._start, max(self._end, self._start), glued=self._glued)
        self._words.append(word)
        self._last_end = word.end_s
        self._chars = []


def cues(words: list[Word], *, max_chars: int = 42, max_duration_s: float = 5.0) -> list[list[Word]]:
    """Group words into one-line cues: break after sentence ends (the splitter's rule, so
    `Dr. Smith` stays together), at pauses over 0.7 s, and before a word that would make the
    line longer than `max_chars` or the cue longer than `max_duration_s` (a cue always holds at
    least one word)."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    length = 0
    for index, word in enumerate(words):
        if current:
            previous = current[-1]
            if (
                ends_sentence(
                    previous.text, next_word=word.text, previous=words[index - 2].text if index > 1 else ""
                )
                or word.start_s - previous.end_s > CUE_GAP_S
                or length + (0 if word.glued else 1) + len(word.text) > max_chars
                or word.end_s - current[0].start_s > max_duration_s
            ):
                groups.append(current)
                current, length = [], 0
        length += len(word.text) + (1 if current and not word.glued else 0)
        current.append(word)
    if current:
        groups.append(current)
    return groups


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _cue_text(group: list[Word]) -> str:
    """The words of a cue, one space between them unless the text had none."""
    return "".join(
        word.text if index == 0 or word.glued else " " + word.text for index, word in enumerate(group)
    )


def _srt_text(text: str) -> str:
    """SRT has no escapes; an arrow in cue text would read as a timing line, so shorten it."""
    while "-->" in text:
        text = text.replace("-->", "->")
    return text


def _vtt_text(text: str) -> str:
    """WebVTT cue text is markup: `&` and `<` start entities and tags, and `-->` may not occur."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cue_lines(
    words: list[Word], separator: str, max_chars: int, max_duration_s: float, escape: Callable[[str], str]
) -> list[str]:
    blocks = []
    for group in cues(words, max_chars=max_chars, max_duration_s=max_duration_s):
        start, end = group[0].start_s, max(group[-1].end_s, group[0].start_s)
        text = escape(_cue_text(group))
        blocks.append(f"{_timestamp(start, separator)} --> {_timestamp(end, separator)}\n{text}\n")
    return blocks


def to_srt(words: list[Word], *, max_chars: int = 42, max_duration_s: float = 5.0) -> str:
    """SubRip: numbered cues, HH:MM:SS,mmm times, a blank line after each cue."""
    blocks = _cue_lines(words, ",", max_chars, max_duration_s, _srt_text)
    return "".join(f"{number}\n{block}\n" for number, block in enumerate(blocks, start=1))


def to_vtt(words: list[Word], *, max_chars: int = 42, max_duration_s: float = 5.0) -> str:
    """WebVTT: a `WEBVTT` header, HH:MM:SS.mmm times, a blank line between cues."""
    blocks = _cue_lines(words, ".", max_chars, max_duration_s, _vtt_text)
    return "WEBVTT\n" + "".join(f"\n{block}" for block in blocks)


def to_json(words: list[Word]) -> str:
    """`{"words": [{"text", "start", "end"}, ...]}` with times in seconds (3 decimals)."""
    data = {
        "words": [{"text": w.text, "start": round(w.start_s, 3), "end": round(w.end_s, 3)} for w in words]
    }
    return json.dumps(data, ensure_ascii=False) + "\n"
