# ruff: noqa: RUF002, RUF003  (this module is about full-width punctuation)
"""The one sentence-end rule, shared by the client splitter, the server buffer and subtitle cues.

Pure and stdlib only. Text is read as tokens (`WORD`): runs of non-space characters, also cut
after the punctuation of no-space scripts (`。！？，、` ...), so Chinese and Japanese text has
places to cut although it has no spaces.

A sentence ends after a token whose last characters (before closing quotes/brackets) are
`. ! ? …` (or `...`), or the full-width `。！？`, unless:
- the next token is only closing quotes (French `« Oui ! »`): the sentence ends after them;
- the next token, on the same line, starts (after opening quotes, `¿ ¡`) with a lowercase
  letter (`Wait... then`, `"Stop!" she said`): it is a continuation; so is a full-width end
  inside closing quotes that the sentence goes on after (Japanese `「…。」と言った`);
- a single `.` follows an abbreviation (`Dr.`, `Inc.`, `Fig.`, `approx.`, `e.g.`, `Jan.`), a
  single capital initial (`J.`), or a list number at the start of a line (`1.`). Abbreviations
  that are also everyday words (`no`, `me`, `may`) count only before a number (`No. 5`).
  A false end is an audible pause, a missed one only a longer chunk: when in doubt, no end.
Dots inside a token (`3.14`, `v1.2.3`, `example.com`) never end a sentence, because a token
only ends at whitespace (or after no-space-script punctuation).

The abbreviation lists are `data/abbreviations.txt` (pysbd's English lists, MIT, with the
notice, plus a few for the other languages the local voices speak).
"""

from __future__ import annotations

import re
from importlib import resources

# `.` `!` `?` `…`, then the full-width ends of Chinese and Japanese (and `‼ ⁇`).
TERMINATORS = ".!?…\u3002\uff01\uff1f\uff0e\u203c\u2047"
NO_SPACE_TERMINATORS = "\u3002\uff01\uff1f\uff0e"  # 。！？． end a sentence with no space after them
NO_SPACE_CLAUSE_MARKS = "\uff0c\u3001\uff1b\uff1a"  # ，、；： the places to cut inside a sentence
# Closing quotes/brackets: also » ” ’, the German closing “, and 」 』 ） 〕 】 〉 》.
CLOSERS = "\"')]}\u00bb\u201d\u2019\u201c\u300d\u300f\uff09\u3015\u3011\u3009\u300b"
# Openers: also « “ ‘, the German „ ‚, the Spanish ¿ ¡, and 「 『 （ 〔 【 〈 《.
OPENERS = "\"'([{\u00ab\u201c\u2018\u201e\u201a\u00bf\u00a1\u300c\u300e\uff08\u3014\u3010\u3008\u300a"
CLAUSE_MARKS = ",;:\u2014\u2013" + NO_SPACE_CLAUSE_MARKS  # comma, semicolon, colon, em/en dash, ，、；：

# A token: non-space characters up to whitespace, or up to (and with) no-space-script
# punctuation and its closing quotes when a character follows at once. Possessive, so that
# `。」` at the end of a streamed buffer stays one token that may still grow.
_CUT_MARKS = re.escape(NO_SPACE_TERMINATORS + NO_SPACE_CLAUSE_MARKS)
WORD = re.compile(rf"\S+?(?:[{_CUT_MARKS}]++[{re.escape(CLOSERS)}]*+(?=\S)|(?=\s)|\Z)")

_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # U.S, e.g, a.m, Ph.D, J.R.R (final dot removed)


def _load_abbreviations() -> tuple[frozenset[str], frozenset[str]]:
    """(abbreviations, also-words) from the data file, lowercased, without the final dot."""
    sections: dict[str, set[str]] = {}
    current: set[str] = set()
    text = resources.files("elevtts").joinpath("data/abbreviations.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], set())
        elif line and not line.startswith("#"):
            current.update(line.lower().split())
    also_words = frozenset(sections.get("words", set()))
    every = sections.get("prepositive", set()) | sections.get("number", set()) | sections.get("other", set())
    return frozenset(every) - also_words, also_words


ABBREVIATIONS, WORD_ABBREVIATIONS = _load_abbreviations()


def words(text: str) -> list[re.Match[str]]:
    """The tokens of `text`, as matches (their spans keep the splitting lossless)."""
    return list(WORD.finditer(text))


def _core(word: str) -> str:
    """The token without trailing closing quotes/brackets."""
    return word.rstrip(CLOSERS)


def ends_at_cut_mark(token: str) -> bool:
    """True if a token ends at no-space-script punctuation (then closing quotes): a character
    other than those that follows at once starts a new token (the `WORD` rule, char by char)."""
    core = _core(token)
    return bool(core) and core[-1] in NO_SPACE_TERMINATORS + NO_SPACE_CLAUSE_MARKS


def has_terminator(word: str) -> bool:
    """True if the token ends with sentence punctuation (before any closing quotes)."""
    core = _core(word)
    return bool(core) and core[-1] in TERMINATORS


def is_clause_end(word: str) -> bool:
    """True if the token ends a clause: a comma, semicolon, colon, dash, or `，、；：`."""
    return word in ("-", "--", "\u2014", "\u2013") or _core(word)[-1:] in tuple(CLAUSE_MARKS)


def _is_closing_quotes(word: str) -> bool:
    """Only closing quotes/brackets (`»`, `)`); `"` and `“` alone read as opening ones."""
    return not word.rstrip(CLOSERS) and bool(word.lstrip(OPENERS))


def lookahead_decided(following: str) -> bool:
    """True once a streamed `following` text (what comes after a token) is enough to decide.

    The rule reads the next token's first character after its opening quotes, or learns that
    the token is only quotes: both are known once a character that is not a quote, or a
    whitespace after the quotes, has arrived.
    """
    return any(char.isspace() or not (char in OPENERS or char in CLOSERS) for char in following.lstrip())


def ends_sentence(
    word: str,
    *,
    next_word: str | None = None,
    previous: str = "",
    line_start: bool = False,
    same_line: bool = True,
) -> bool:
    """True if a sentence ends after `word`.

    `next_word` is the following token (or enough of its start: see `lookahead_decided`),
    `None` at the end of the text, when nothing after it is known. `previous` is the token
    before `word`, which matters when `word` is only punctuation (`Oui !`, `! »`).
    `line_start` says `word` is the first on its line (where `1.` is a list number);
    `same_line` says no newline separates it from `next_word`.
    """
    core = _core(word)
    if not core or core[-1] not in TERMINATORS:
        if not (core == "" and word and previous):  # a token of closing quotes ends what it closes
            return False
        core = _core(previous)
        if not core or core[-1] not in TERMINATORS:
            return False
    elif not any(char.isalnum() for char in core) and previous:
        core = _core(previous) + core  # French spacing: `Vraiment ?`
    if next_word is not None:
        if _is_closing_quotes(next_word):
            return False  # the closing quote belongs to this sentence: it ends after the quote
        if same_line and next_word.lstrip(OPENERS)[:1].islower():
            return False  # `Wait... then`, `"Stop!" she said`
        if core[-1] in NO_SPACE_TERMINATORS and word != core and next_word[:1] not in OPENERS:
            return False  # `「雨です。」と言った`: the quote ends, its sentence goes on
    if core[-1] != "." or core.endswith("..."):
        return True
    return not _is_abbreviation(core[:-1].lstrip(OPENERS), next_word=next_word, line_start=line_start)


def _is_abbreviation(body: str, *, next_word: str | None, line_start: bool) -> bool:
    """True if the `.` after `body` marks an abbreviation rather than a sentence end."""
    if not body:
        return False
    lowered = body.lower()
    if lowered in WORD_ABBREVIATIONS:
        return next_word is not None and next_word.lstrip(OPENERS)[:1].isdigit()  # `No. 5`
    if lowered in ABBREVIATIONS or _DOTTED.fullmatch(body):
        return True
    if len(body) == 1 and body.isalpha() and body.isupper():
        return True  # an initial, as in "J. R. R. Tolkien"
    return line_start and body.isdigit()  # a list number


def number_at_end(word: str) -> bool:
    """A token like `3.` or `v1.2.` that may still grow into `3.14` in a streamed buffer."""
    core = _core(word)
    return core.endswith(".") and core[:-1][-1:].isdigit()
