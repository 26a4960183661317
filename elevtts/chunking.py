"""Text splitting: into protocol chunks on the client, into synthesis pieces on the server.

Pure and stdlib only. Where a sentence ends is decided by the one rule in `elevtts.sentences`
(shared with the server buffer and subtitle cues); this module adds the line rules (a blank line
is a paragraph boundary; a single newline ends a sentence after a terminator, a list item or a
heading) and the cuts of over-long sentences at clause marks.

Client: `TextSplitter` turns text arriving in arbitrary fragments into `Chunk`s.
Server: `sentence_spans`, `complete_sentences_end` and `synthesis_pieces` split raw text
losslessly ("".join(result) == text).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from elevtts.breaks import unfinished_tag_start
from elevtts.sentences import (
    WORD,
    ends_sentence,
    has_terminator,
    is_clause_end,
    lookahead_decided,
    number_at_end,
    words,
)

_LIST_MARKER = re.compile(r"(?:[-*+•]|\d{1,3}[.)])")
_HEADING_MARKER = re.compile(r"#{1,6}")
_SPACE = re.compile(r"\s+")

BOUNDARIES = ("paragraph", "sentence", "clause", "word")


def _is_line_marker(word: str) -> bool:
    """A list bullet / number or a Markdown heading marker (when first on a line)."""
    return bool(_LIST_MARKER.fullmatch(word) or _HEADING_MARKER.fullmatch(word))


def _next_token(raw: str, start: int) -> str | None:
    """The token starting at `start` (or its start), once enough of it has arrived for the
    sentence rule (`sentences.lookahead_decided`); `None` while more is needed. Reads one
    token only, so feeding a long text stays linear."""
    match = WORD.match(raw, start)
    if match is None:
        return None
    token = match.group()
    return token if match.end() < len(raw) or lookahead_decided(token) else None


def _joined(tokens: list[str], glued: list[bool]) -> str:
    """Tokens joined by one space, or by nothing where the text had none (no-space scripts)."""
    return "".join(
        ("" if index == 0 or glue else " ") + token
        for index, (token, glue) in enumerate(zip(tokens, glued, strict=True))
    )


# ---------------------------------------------------------------------------------------------
# Client side: incremental chunks


@dataclass(frozen=True)
class Chunk:
    """One piece of text to send. `text` is normalised and ends with exactly one space."""

    text: str
    boundary: str  # "paragraph" | "sentence" | "clause" | "word": what ends this chunk


class TextSplitter:
    """Split streamed text into chunks at paragraph, sentence and (when too long) clause ends.

    Decisions depend only on complete tokens and on the start of the next one (its first
    character after opening quotes: see `sentences.lookahead_decided`), so any fragmentation
    of the same input yields the same chunks. A sentence end is confirmed once that much of
    the next token has arrived (or on `flush`). Sentences longer than `max_chars` are cut at
    the last clause mark (`sentences.CLAUSE_MARKS`) that leaves at least `max_chars // 3`
    characters, else before the token that overflows; a chunk ends at a sentence or
    single-newline boundary only once it has `min_chars` characters (a blank line always ends it).
    Tokens are joined by one space, or by none where the text had none (Chinese, Japanese).
    """

    def __init__(self, *, max_chars: int = 250, min_chars: int = 0) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self.max_chars = max_chars
        self.min_chars = min_chars
        self._raw = ""  # unprocessed input: starts at an incomplete token or whitespace run
        self._words: list[str] = []  # complete tokens of the chunk being built
        self._glued: list[bool] = []  # per token: no whitespace before it in the text
        self._length = 0  # len(_joined(self._words, self._glued))
        self._previous = ""  # the token before the last one, also across chunks
        self._last = ""  # the last token seen, also across chunks
        self._glue = False  # the next token follows the last one with no whitespace
        self._line_start = True  # the next token is the first on its line
        self._line_marked = False  # the current line starts with a list/heading marker
        self._last_line_start = False  # the last token in _words was first on its line
        self._newline_pending = False  # a single newline whose meaning depends on the next token

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
                following = _next_token(raw, match.end())
                if following is None:
                    break  # the whitespace run may grow, and its meaning with it
                self._separator(match.group(), following, out)
                self._glue = False
                pos = match.end()
            else:
                match = WORD.match(raw, pos)
                assert match is not None
                end = match.end()
                if end == len(raw):
                    break  # a token is complete only once something follows it
                glued = not raw[end].isspace()  # no space before the next token (Chinese, Japanese)
                following = _next_token(raw, end) if glued else None
                if glued and following is None:
                    break
                self._word(match.group(), out)
                if following is not None:
                    self._separator("", following, out)
                self._glue = glued
                pos = end
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
        if self._length < self.min_chars or not self._ends_sentence():
            return []
        out: list[Chunk] = []
        self._raw = ""
        self._emit("sentence", out)
        return out

    def pending(self) -> str:
        """Buffered text not yet emitted (normalised: single spaces between words)."""
        return " ".join([_joined(self._words, self._glued), *self._raw.split()]).strip()

    def flush(self) -> list[Chunk]:
        """Emit everything buffered (end of input, or idle); a partial last token counts as one."""
        out: list[Chunk] = []
        raw, self._raw = self._raw, ""
        word = raw.strip()
        if word:  # feed() stops at the first incomplete token: what is left is one word
            tokens = words(word)  # (or a few no-space-script tokens waiting for their lookahead)
            for index, match in enumerate(tokens):
                self._word(match.group(), out)
                if index + 1 < len(tokens):
                    self._separator("", tokens[index + 1].group(), out)
                self._glue = True
        elif raw:
            self._separator(raw, "", out)  # trailing whitespace: a blank line still ends a paragraph
        self._newline_pending = False
        self._glue = False
        if self._words:
            self._emit("sentence" if self._ends_sentence() else "word", out)
        return out

    # -- internals -----------------------------------------------------------------------------

    def _ends_sentence(self, next_word: str | None = None, *, same_line: bool = True) -> bool:
        """The one sentence rule, after the last token."""
        return ends_sentence(
            self._last,
            next_word=next_word or None,
            previous=self._previous,
            line_start=self._last_line_start,
            same_line=same_line,
        )

    def _separator(self, space: str, following: str, out: list[Chunk]) -> None:
        """A complete whitespace run (or none, between glued tokens), then the next token
        (`following`, or as much of it as decides: see `_next_token`; "" at the end)."""
        newlines = space.count("\n") + space.count("\r") - space.count("\r\n")
        if self._words:
            if newlines >= 2:
                self._emit("paragraph", out)
            elif self._length >= self.min_chars:
                if self._ends_sentence(following, same_line=newlines == 0) or (
                    newlines == 1 and (has_terminator(self._last) or self._line_marked)
                ):
                    self._emit("sentence", out)
                elif newlines == 1:
                    self._newline_pending = True  # ends the chunk if the next line is a list item
        if newlines:
            self._line_start = True
            self._line_marked = False

    def _word(self, word: str, out: list[Chunk]) -> None:
        """A complete token."""
        line_start, self._line_start = self._line_start, False
        if line_start:
            self._line_marked = _is_line_marker(word)
            if self._newline_pending and self._line_marked and self._words:
                self._emit("sentence", out)
        self._newline_pending = False
        glue = self._glue and bool(self._words)
        self._words.append(word)
        self._glued.append(glue)
        self._length += len(word) + (1 if len(self._words) > 1 and not glue else 0)
        self._previous, self._last = self._last, word
        self._last_line_start = line_start
        while self._length > self.max_chars and len(self._words) > 1:
            self._cut(out)
        if self._length > self.max_chars:
            self._emit("word", out)  # one token longer than max_chars goes alone, uncut

    def _cut(self, out: list[Chunk]) -> None:
        """Cut an over-long chunk before its last token: at the last clause mark, else there."""
        tokens, glued = self._words, self._glued
        cut = len(tokens) - 1
        boundary = "word"
        for index in range(len(tokens) - 2, -1, -1):
            if len(_joined(tokens[: index + 1], glued[: index + 1])) < self.max_chars // 3:
                break  # a clause mark this early would leave a tiny chunk: cut between tokens
            if is_clause_end(tokens[index]):
                cut, boundary = index + 1, "clause"
                break
        cut = _outside_break_tags(tokens, glued, cut)
        out.append(Chunk(_joined(tokens[:cut], glued[:cut]) + " ", boundary))
        self._words, self._glued = tokens[cut:], [False, *glued[cut + 1 :]]
        self._length = len(_joined(self._words, self._glued))

    def _emit(self, boundary: str, out: list[Chunk]) -> None:
        if self._words:
            out.append(Chunk(_joined(self._words, self._glued) + " ", boundary))
        self._words, self._glued = [], []
        self._length = 0
        self._newline_pending = False


def _outside_break_tags(tokens: list[str], glued: list[bool], cut: int) -> int:
    """Move a cut out of a `<break time="..."/>` tag (its attributes hold spaces): a half-sent
    tag would be read aloud. Earlier if possible, else just after the tag."""
    candidates = [*range(cut, 0, -1), *range(cut + 1, len(tokens))]
    for candidate in candidates:
        if unfinished_tag_start(_joined(tokens[:candidate], glued[:candidate])) is None:
            return candidate
    return cut


def split_text(text: str, **kw: int) -> list[Chunk]:
    """Split a whole text into chunks (`TextSplitter(**kw)`, fed once and flushed)."""
    splitter = TextSplitter(**kw)
    return splitter.feed(text) + splitter.flush()


# ---------------------------------------------------------------------------------------------
# Server side: lossless spans of raw text


def _breaks(text: str, *, growing: bool) -> list[int]:
    """Indexes where a new sentence (or paragraph) starts, in increasing order.

    A break sits after the whitespace that follows a sentence end, i.e. at the next token (or
    at len(text) when only whitespace follows). With `growing`, the text is a buffer that may
    still grow: a terminator at its very end counts unless it is an abbreviation or a number,
    and a single trailing newline is only a break after a terminator or a list/heading line.
    """
    tokens = words(text)
    breaks: list[int] = []
    line_start = True
    line_marked = False
    for index, match in enumerate(tokens):
        word = match.group()
        if line_start:
            line_marked = _is_line_marker(word)
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        nxt = following.start() if following else len(text)
        space = text[match.end() : nxt]
        newlines = space.count("\n")
        previous = tokens[index - 1].group() if index else ""
        if following is None and not space:
            # the very end of the text
            if ends_sentence(word, previous=previous, line_start=line_start) and not (
                growing and number_at_end(word)
            ):
                breaks.append(nxt)
            break
        if (
            newlines >= 2
            or ends_sentence(
                word,
                next_word=following.group() if following else None,
                previous=previous,
                line_start=line_start,
                same_line=newlines == 0,
            )
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
    tokens = words(text)
    for match, following in itertools.pairwise(tokens):
        if match.end() - tokens[0].start() > limit:
            break
        if (not clause_only or is_clause_end(match.group())) and _outside_tag(text, following.start()):
            best = following.start()
    return best


def _outside_tag(text: str, index: int) -> bool:
    """A cut at `index` leaves no `<break .../>` tag half in the head (it would be read aloud)."""
    return unfinished_tag_start(text[:index]) is None


def _cut_long(piece: str, max_chars: int) -> list[str]:
    out = []
    while len(piece.strip()) > max_chars:
        cut = _cut_index(piece, max_chars, clause_only=True) or _cut_index(
            piece, max_chars, clause_only=False
        )
        if cut is None:  # the first word alone is too long: cut after it, never inside
            starts = [token.start() for token in words(piece)[1:] if _outside_tag(piece, token.start())]
            if not starts:
                break
            cut = starts[0]
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
    for match, following in itertools.pairwise(words(text)):
        if is_clause_end(match.group()) and _outside_tag(text, following.start()):
            return following.start()
    return None
