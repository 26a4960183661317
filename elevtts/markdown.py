"""Strip Markdown from LLM output so it is not read aloud as asterisks.

Pure. `MarkdownStripper` (stdlib only) strips streamed text line by line;
`strip_markdown_document` parses a whole document with markdown-it-py.

For the stripper: block rules work per line (headings, lists, quotes, tables, rules, code
fences); inline rules (emphasis, code, links, images, HTML) work within a line, so emphasis
that spans lines is left as it is.

Headings, list items and table rows are ended as sentences (a `.` is added when they end in
neither punctuation nor a closing bracket/quote) so a speech splitter pauses after them.
Fenced code blocks are dropped and leave one blank line (a paragraph break). HTML tags go,
except `<break time="..."/>`: a pause the synthesizer honours (see `elevtts.breaks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from elevtts.sentences import CLAUSE_MARKS, CLOSERS, TERMINATORS

if TYPE_CHECKING:
    from markdown_it.token import Token

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_HRULE = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}")
_SETEXT = re.compile(r" {0,3}=+[ \t]*")
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_QUOTE = re.compile(r" {0,3}>[ \t]?")
_LIST = re.compile(r"[ \t]*(?:[-*+•]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_REFERENCE_DEF = re.compile(r" {0,3}\[[^\]]+\]:[ \t]*\S+.*")

_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")
_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
# A link destination may hold balanced parentheses (`wiki/Foo_(bar)`) and a quoted title.
_DESTINATION = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
_IMAGE = re.compile(r"!\[([^\]]*)\]" + _DESTINATION)
_LINK = re.compile(r"\[([^\]]+)\]" + _DESTINATION)
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+|[^>\s@]+@[^>\s]+)>")
_COMMENT = re.compile(r"<!--.*?-->")
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)  # an HTML line break
_PAUSE_TAG = re.compile(r"<break\b[^<>]*>", re.IGNORECASE)  # a speech pause (elevtts.breaks)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_EMPHASIS = (
    re.compile(r"(\*\*\*|___)(?=\S)(.+?)(?<=\S)\1"),
    re.compile(r"(?<!\w)(__)(?=\S)(.+?)(?<=\S)__(?!\w)"),
    re.compile(r"(\*\*)(?=\S)(.+?)(?<=\S)\*\*"),
    re.compile(r"(~~)(?=\S)(.+?)(?<=\S)~~"),
    re.compile(r"(?<![*\w])(\*)(?=\S)(.+?)(?<=\S)\*(?!\*)"),
    re.compile(r"(?<!\w)(_)(?=\S)(.+?)(?<=\S)_(?!\w)"),
)
_LEFTOVER = re.compile(r"[*`\[\]<>]|~~|(?<!\w)_|_(?!\w)")  # signs a construct may still be open
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
_PUNCTUATED = TERMINATORS + CLAUSE_MARKS + CLOSERS  # a line ending in one needs no added `.`


def _end_sentence(text: str) -> str:
    text = text.strip()
    if text and text[-1] not in _PUNCTUATED:
        text += "."
    return text


def strip_inline(text: str) -> str:
    """Remove inline Markdown from one line: emphasis, code, links, images, HTML tags."""
    kept: list[str] = []

    def keep(value: str) -> str:
        kept.append(value)
        return f"\ue000{len(kept) - 1}\ue001"

    text = _ESCAPE.sub(lambda m: keep(m.group(1)), text)
    text = _CODE.sub(lambda m: keep(m.group(2).strip()), text)
    text = _AUTOLINK.sub(lambda m: keep(m.group(1)), text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _FOOTNOTE.sub("", text)
    text = _COMMENT.sub("", text)
    text = _PAUSE_TAG.sub(lambda m: keep(m.group()), text)  # `<break time="1s"/>` is a pause, kept
    text = _BREAK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\2", text)
    return _PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], text)


def _is_table_separator(line: str) -> bool:
    return "|" in line and "-" in line and not line.strip(" \t|:-")


class MarkdownStripper:
    """Strip Markdown from text arriving in fragments.

    `feed` returns the stripped text of the lines completed so far. A partial line is held
    until its newline, except on plain paragraph lines (starting with a letter or quote),
    where the words up to the last space are released as soon as no inline construct is
    left open in them, so long LLM paragraphs still stream. The code-fence state carries
    across lines and across `flush`.
    """

    def __init__(self) -> None:
        self._line = ""  # the current partial line
        self._fence: str | None = None  # the opening fence (``` or ~~~) while inside a code block
        self._mid_line = False  # part of the current line was already released

    def feed(self, text: str) -> str:
        """Add text; return stripped text that is final now."""
        self._line += text
        out: list[str] = []
        while (newline := self._line.find("\n")) >= 0:
            line, self._line = self._line[:newline], self._line[newline + 1 :]
            processed = self._process(line.rstrip("\r"))
            if processed is not None:
                out.append(processed + "\n")
        out.append(self._release_partial())
        return "".join(out)

    def flush(self) -> str:
        """Process the held partial line (end of input or idle); no newline is added."""
        line, self._line = self._line, ""
        if not line:
            self._mid_line = False
            return ""
        return self._process(line) or ""

    def _release_partial(self) -> str:
        line = self._line
        if self._fence is not None:
            return ""
        if not self._mid_line:
            start = line.lstrip()
            if not start or not (start[0].isalpha() or start[0] in "\"'(\u201c\u2018"):
                return ""
        cut = max(line.rfind(" "), line.rfind("\t")) + 1
        if cut <= 0:
            return ""
        head = strip_inline(line[:cut])
        if _LEFTOVER.search(head):
            return ""
        self._line = line[cut:]
        self._mid_line = True
        return head

    def _process(self, line: str) -> str | None:
        """One complete line; `None` drops it (and its newline) entirely."""
        if self._mid_line:
            self._mid_line = False
            return strip_inline(line)
        fence = _FENCE.match(line)
        if self._fence is not None:
            marker = fence.group(1) if fence else ""
            closes = marker[:1] == self._fence[0] and len(marker) >= len(self._fence)
            if fence and closes and not line[fence.end() :].strip():
                self._fence = None
                return ""  # the block leaves a paragraph break
            return None
        if fence:
            self._fence = fence.group(1)
            return None
        return self._block(line)

    def _block(self, line: str) -> str | None:
        while quote := _QUOTE.match(line):
            line = line[quote.end() :]
        if _HRULE.fullmatch(line) or _SETEXT.fullmatch(line):
            return ""
        if _is_table_separator(line) or _REFERENCE_DEF.fullmatch(line):
            return None
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [strip_inline(cell).strip().rstrip(",") for cell in stripped.strip("|").split("|")]
            return _end_sentence(", ".join(cell for cell in cells if cell))
        ending: Callable[[str], str] = str.rstrip
        if heading := _HEADING.fullmatch(line):
            line, ending = heading.group(2) or "", _end_sentence
        elif item := _LIST.match(line):
            line, ending = line[item.end() :], _end_sentence
        return ending(strip_inline(line))


def strip_markdown(text: str) -> str:
    """Strip Markdown from a whole text (one `MarkdownStripper`, fed once and flushed)."""
    stripper = MarkdownStripper()
    return stripper.feed(text) + stripper.flush()


# ---------------------------------------------------------------------------------------------
# Whole documents: a real CommonMark parser (markdown-it-py), for `.md` files read at once


def strip_markdown_document(text: str) -> str:
    """The spoken text of a whole Markdown document, parsed by markdown-it-py (CommonMark plus
    tables and strikethrough), so nesting, link URLs with parentheses, setext headings and
    indented code read as a renderer reads them. The streaming `MarkdownStripper` stays for stdin.

    Same output conventions as the stripper: blocks separated by a blank line (the lines of a
    paragraph kept), headings, list items and table rows ended as sentences, code blocks, HTML,
    link URLs and image sources dropped (an image speaks its alt text); `<break time="..."/>`
    pause tags kept for the synthesizer.
    """
    from markdown_it import MarkdownIt  # lazy: only whole .md files need the parser

    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)
    blocks: list[str] = []  # spoken blocks, a blank line between them
    lines: list[str] = []  # the items of the current list, or the rows of the current table
    cells: list[str] = []  # the cells of the current table row
    containers: list[str] = []  # the open block tokens around the current one
    for token in tokens:
        if token.nesting == 1:
            containers.append(token.type)
        elif token.nesting == -1:
            containers.pop()
        if token.type == "inline":
            spoken = _inline_text(token.children or []).strip()
            where = next((c for c in reversed(containers) if c in _SENTENCE_BLOCKS), "")
            if where in ("th_open", "td_open"):
                cells.append(spoken.rstrip(","))
            elif where == "list_item_open":
                lines.append(_end_sentence(spoken))
            elif where == "heading_open":
                blocks.append(_end_sentence(spoken))
            else:
                blocks.append(spoken)
        elif token.type == "html_block" and _only_pause_tags(token.content):
            blocks.append(token.content.strip())  # a pause on its own line
        elif token.type == "tr_close":
            lines.append(_end_sentence(", ".join(cell for cell in cells if cell)))
            cells = []
        elif token.type in _LIST_CLOSERS and "list_item_open" not in containers:
            blocks.append("\n".join(line for line in lines if line))
            lines = []
    spoken_blocks = [block for block in blocks if block]
    return "\n\n".join(spoken_blocks) + ("\n" if spoken_blocks else "")


_SENTENCE_BLOCKS = frozenset({"heading_open", "list_item_open", "th_open", "td_open"})
_LIST_CLOSERS = frozenset({"bullet_list_close", "ordered_list_close", "table_close"})


def _only_pause_tags(html: str) -> bool:
    return bool(html.strip()) and not _PAUSE_TAG.sub("", html).strip()


def _inline_text(children: list[Token]) -> str:
    """The words of an inline run: text and code as written, images as their alt text."""
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(_inline_text(child.children or []))
        elif child.type == "html_inline" and _BREAK_TAG.fullmatch(child.content.strip()):
            parts.append(" ")
        elif child.type == "html_inline" and _PAUSE_TAG.fullmatch(child.content.strip()):
            parts.append(child.content)
    return "".join(parts)
