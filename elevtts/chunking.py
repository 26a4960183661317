"""Text splitting: into protocol chunks on the client, into synthesis pieces on the server.

Pure and stdlib only. Both sides share one notion of a sentence end: a word whose last
characters are `. ! ? …` (or `...`), optionally followed by closing quotes or brackets, and
then whitespace. A single `.` does not end a sentence after a common abbreviation (`Dr.`,
`e.g.`, `U.S.`), a single capital initial (`J.`) or a list number at the start of a line
(`1.`). Dots inside a word (`3.14`, `v1.2.3`, `example.com`) are never ends, because a word
only ends at whitespace. A blank line is a paragraph boundary.

Client: `TextSplitter` turns text arriving in arbitrary fragments into `Chunk`s.
Server: `sentence_spans`, `complete_sentences_end` and `synthesis_pieces` split raw text
losslessly ("".join(result) == text).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "u.s"}
)
TERMINATORS = ".!?…"
CLOSERS = "\"')]}\u00bb\u201d\u2019"  # also » ” and the right single quote
OPENERS = "\"'([{\u00ab\u201c\u2018\u00bf\u00a1"
CLAUSE_MARKS = ",;:\u2014\u2013"  # comma, semicolon, colon, em dash, en dash
DASH_WORDS = frozenset({"-", "--", "\u2014", "\u2013"})

_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # U.S, e.g, a.m, J.R.R (final dot removed)
_LIST_MARKER = re.compile(r"(?:[-*+•]|\d{1,3}[.)])")
_HEADING_MARKER = re.compile(r"#{1,6}")
_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s+")

BOUNDARIES = ("paragraph", "sentence", "clause", "word")


# ---------------------------------------------------------------------------------------------
# Word rules shared by both sides


def _core(word: str) -> str:
    """The word without trailing closing quotes/brackets."""
    return word.rstrip(CLOSERS)


def has_terminator(word: str) -> bool:
    """True if the word ends with sentence punctuation (before any closing quotes)."""
    core = _core(word)
    return bool(core) and core[-1] in TERMINATORS


def ends_sentence(word: str, *, line_start: bool = False) -> bool:
    """True if a sentence ends after this word (given that whitespace or end of text follows).

    `line_start` says the word is the first on its line, where `1.` is a list number.
    """
    core = _core(word)
    if not core or core[-1] not in TERMINATORS:
        return False
    if core[-1] != "." or core.endswith("..."):
        return True
    body = core[:-1].lstrip(OPENERS)
    if not body:
        return True
    if body.lower() in ABBREVIATIONS or _DOTTED.fullmatch(body):
        return False
    if len(body) == 1 and body.isalpha() and body.isupper():
        return False  # an initial, as in "J. R. R. Tolkien"
    return not (line_start and body.isdigit())


def _is_line_marker(word: str) -> bool:
    """A list bullet / number or a Markdown heading marker (when first on a line)."""
    return bool(_LIST_MARKER.fullmatch(word) or _HEADING_MARKER.fullmatch(word))


def _is_clause_end(word: str) -> bool:
    return word in DASH_WORDS or _core(word)[-1:] in tuple(CLAUSE_MARKS)


def _number_at_end(word: str) -> bool:
    """A word like `3.` or `v1.2.` that may still grow into `3.14` in a streamed buffer."""
    core = _core(word)
    return core.endswith(".") and core[:-1][-1:].isdigit()


# ---------------------------------------------------------------------------------------------
# Client side: incremental chunks


@dataclass(frozen=True)
class Chunk:
    """One piece of text to send. `text` is normalised and ends with exactly one space."""

    text: str
    boundary: str  # "paragraph" | "sentence" | "clause" | "word": what ends this chunk


class TextSplitter:
    """Split streamed text into chunks at paragraph, sentence and (when too long) clause ends.

    Decisions depend only on complete words and the first character after a whitespace run, so
    any fragmentation of the same input yields the same chunks. A sentence end is confirmed
    once the next non-space character arrives (or on `flush`). Sentences longer than
    `max_chars` are cut at the last clause mark (CLAUSE_MARKS) that leaves at least
    `max_chars // 3` characters, else before the word that overflows; a chunk
    ends at a sentence or single-newline boundary only once it has `min_chars` characters
    (a blank line always ends it).
    """

    def __init__(self, *, max_chars: int = 250, min_chars: int = 0) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self.max_chars = max_chars
        self.min_chars = min_chars
        self._raw = ""  # unprocessed input: starts at an incomplete word or whitespace run
        self._words: list[str] = []  # complete words of the chunk being built
        self._length = 0  # len(" ".join(self._words))
        self._line_start = True  # the next word is the first on its line
        self._line_marked = False  # the current line starts with a list/heading marker
        self._last_line_start = False  # the last word in _words was first on its line
        self._newline_pending = False  # a single newline whose meaning depends on the next word

    def feed(self, text: str) -> list[Chunk]:
        """Add text; return the chunks that are complete now."""
        self._raw += text
        out: list[Chunk] = []
        pos = 0
        raw = self._raw
        while pos < len(raw):
            if raw[pos].isspace():
                match = _SPACE.match(raw, pos)
                assert match is not None
                if match.end() == len(raw):
                    break  # the whitespace run may grow, and its meaning with it
                self._separator(match.group(), out)
                pos = match.end()
            else:
                match = _WORD.match(raw, pos)
                assert match is not None
                if match.end() == len(raw):
                    break  # a word is complete only once whitespace follows it
                self._word(match.group(), out)
                pos = match.end()
        self._raw = raw[pos:]
        return out

    def finished_sentence(self) -> list[Chunk]:
        """Input has paused: emit a sentence that ends the buffer, without waiting for more.

        `feed` confirms a sentence end only when the next character arrives; a caller that
        knows no more text is at hand (a pipe that went quiet) uses this to send it at once.
        Text ending in a newline still waits, since a blank line may follow.
        """
        if not self._words or self._raw.strip() or not self._raw or any(c in self._raw for c in "\r\n"):
            return []
        if self._length < self.min_chars or not ends_sentence(
            self._words[-1], line_start=self._last_line_start
        ):
            return []
        out: list[Chunk] = []
        self._raw = ""
        self._emit("sentence", out)
        return out

    def pending(self) -> str:
        """Buffered text not yet emitted (normalised: single spaces between words)."""
        return " ".join(self._words + self._raw.split())

    def flush(self) -> list[Chunk]:
        """Emit everything buffered (end of input, or idle); a partial last word counts as a word."""
        out: list[Chunk] = []
        raw, self._raw = self._raw, ""
        word = raw.strip()
        if word:  # at most one word: feed() stops at the first incomplete token
            self._word(word, out)
        elif raw:
            self._separator(raw, out)  # trailing whitespace: a blank line still ends a paragraph
        self._newline_pending = False
        if self._words:
            last = self._words[-1]
            boundary = "sentence" if ends_sentence(last, line_start=self._last_line_start) else "word"
            self._emit(boundary, out)
        return out

    # -- internals -----------------------------------------------------------------------------

    def _separator(self, space: str, out: list[Chunk]) -> None:
        """A complete whitespace run, followed by a non-space character."""
        newlines = space.count("\n") + space.count("\r") - space.count("\r\n")
        if self._words:
            last = self._words[-1]
            if newlines >= 2:
                self._emit("paragraph", out)
            elif self._length >= self.min_chars:
                if ends_sentence(last, line_start=self._last_line_start) or (
                    newlines == 1 and (has_terminator(last) or self._line_marked)
                ):
                    self._emit("sentence", out)
                elif newlines == 1:
                    self._newline_pending = True  # ends the chunk if the next line is a list item
        if newlines:
            self._line_start = True
            self._line_marked = False

    def _word(self, word: str, out: list[Chunk]) -> None:
        """A complete word."""
        line_start, self._line_start = self._line_start, False
        if line_start:
            self._line_marked = _is_line_marker(word)
            if self._newline_pending and self._line_marked and self._words:
                self._emit("sentence", out)
        self._newline_pending = False
        self._words.append(word)
        self._length += len(word) + (1 if len(self._words) > 1 else 0)
        self._last_line_start = line_start
        while self._length > self.max_chars and len(self._words) > 1:
            self._cut(out)
        if self._length > self.max_chars:
            self._emit("word", out)  # one word longer than max_chars goes alone, uncut

    def _cut(self, out: list[Chunk]) -> None:
        """Cut an over-long chunk before its last word: at the last clause mark, else there."""
        words = self._words
        cut = len(words) - 1
        boundary = "word"
        for index in range(len(words) - 2, -1, -1):
            if len(" ".join(words[: index + 1])) < self.max_chars // 3:
                break  # a clause mark this early would leave a tiny chunk: cut between words
            if _is_clause_end(words[index]):
                cut, boundary = index + 1, "clause"
                break
        head, self._words = words[:cut], words[cut:]
        out.append(Chunk(" ".join(head) + " ", boundary))
        self._length = len(" ".join(self._words))

    def _emit(self, boundary: str, out: list[Chunk]) -> None:
        if self._words:
            out.append(Chunk(" ".join(self._words) + " ", boundary))
        self._words = []
        self._length = 0
        self._newline_pending = False


def split_text(text: str, **kw: int) -> list[Chunk]:
    """Split a whole text into chunks (`TextSplitter(**kw)`, fed once and flushed)."""
    splitter = TextSplitter(**kw)
    return splitter.feed(text) + splitter.flush()


# ---------------------------------------------------------------------------------------------
# Server side: lossless spans of raw text


def _breaks(text: str, *, growing: bool) -> list[int]:
    """Indexes where a new sentence (or paragraph) starts, in increasing order.

    A break sits after the whitespace that follows a sentence end, i.e. at the next word (or
    at len(text) when only whitespace follows). With `growing`, the text is a buffer that may
    still grow: a terminator at its very end counts unless it is an abbreviation or a number,
    and a single trailing newline is only a break after a terminator or a list/heading line.
    """
    words = list(_WORD.finditer(text))
    breaks: list[int] = []
    line_start = True
    line_marked = False
    for index, match in enumerate(words):
        word = match.group()
        if line_start:
            line_marked = _is_line_marker(word)
        following = words[index + 1] if index + 1 < len(words) else None
        space = text[match.end() : following.start() if following else len(text)]
        newlines = space.count("\n")
        nxt = following.start() if following else len(text)
        if following is None and not space:
            # the very end of the text
            if ends_sentence(word, line_start=line_start) and not (growing and _number_at_end(word)):
                breaks.append(nxt)
            break
        if (
            newlines >= 2
            or ends_sentence(word, line_start=line_start)
            or (newlines == 1 and (has_terminator(word) or line_marked))
            or (newlines == 1 and following is not None and _is_line_marker(following.group()))
        ):
            breaks.append(nxt)
        line_start = newlines > 0
        if line_start:
            line_marked = False
    return breaks


def sentence_spans(text: str) -> list[str]:
    """Split losslessly after sentence ends and paragraph breaks; spans keep trailing whitespace."""
    spans: list[str] = []
    start = 0
    for end in _breaks(text, growing=False):
        if end > start:
            spans.append(text[start:end])
            start = end
    if start < len(text):
        if spans and not text[start:].strip():
            spans[-1] += text[start:]
        else:
            spans.append(text[start:])
    return spans


def complete_sentences_end(text: str) -> int:
    """Index just after the last complete sentence (and its trailing whitespace); 0 if none.

    A terminator at the very end of the buffer completes a sentence (clients may send one
    sentence per message with no trailing space), except after an abbreviation or a number.
    """
    breaks = _breaks(text, growing=True)
    return breaks[-1] if breaks else 0


def _cut_index(text: str, limit: int, *, clause_only: bool) -> int | None:
    """The largest split index (at a word start) whose head, stripped, fits in `limit`.

    Only after a clause mark if `clause_only`; `None` if there is no such place.
    """
    best = None
    words = list(_WORD.finditer(text))
    for match, following in itertools.pairwise(words):
        if match.end() - words[0].start() > limit:
            break
        if not clause_only or _is_clause_end(match.group()):
            best = following.start()
    return best


def _cut_long(piece: str, max_chars: int) -> list[str]:
    out = []
    while len(piece.strip()) > max_chars:
        cut = _cut_index(piece, max_chars, clause_only=True) or _cut_index(
            piece, max_chars, clause_only=False
        )
        if cut is None:  # the first word alone is too long: cut after it, never inside
            words = list(_WORD.finditer(piece))
            if len(words) < 2:
                break
            cut = words[1].start()
        out.append(piece[:cut])
        piece = piece[cut:]
    out.append(piece)
    return out


def synthesis_pieces(text: str, *, first_max_chars: int = 80, max_chars: int = 300) -> list[str]:
    """Split losslessly into pieces to synthesize one by one.

    Pieces are sentences. The first one is cut at its last clause mark within
    `first_max_chars` (or its first clause mark if none fits) so the first audio comes
    fast; any piece over `max_chars` is cut at clause marks, then between words.
    """
    pieces: list[str] = []
    for span in sentence_spans(text):
        if not pieces and len(span.strip()) > first_max_chars:
            cut = _cut_index(span, first_max_chars, clause_only=True)
            if cut is None:
                cut = _first_clause_cut(span)
            if cut is not None:
                pieces += _cut_long(span[:cut], max_chars)
                span = span[cut:]
        pieces += _cut_long(span, max_chars)
    return pieces


def _first_clause_cut(text: str) -> int | None:
    words = list(_WORD.finditer(text))
    for match, following in itertools.pairwise(words):
        if _is_clause_end(match.group()):
            return following.start()
    return None
