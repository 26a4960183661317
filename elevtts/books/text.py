"""Markdown and plain text: chapters from headings, or from `CHAPTER IV` / `Chapter 4: ...` lines.

Markdown chapters are the top heading level used more than once (a lone `#` heading above them is
the book's title); a YAML front matter block gives `title`, `author` and `lang`/`language`.
Plain text takes `Title:`/`Author:`/`Language:` lines near the top (as Project Gutenberg writes).
Text before the first chapter heading becomes a chapter named after the book.
A heading with no text under it (a table of contents) is not a chapter.
"""

from __future__ import annotations

import re

from elevtts.books import Book, BookError, Chapter
from elevtts.markdown import strip_inline, strip_markdown_document

CHAPTER_LINE = re.compile(
    r"^[ \t]*(?:chapter|CHAPTER|Chapter)[ \t]+(?:[IVXLCDM]+|[ivxlcdm]+|\d+|[A-Za-z]+(?:-[A-Za-z]+)?)\b"
    r"(?:[ \t]*[.:\-\u2013\u2014][ \t]*\S.*|[ \t]*\.?)[ \t]*$",
    re.MULTILINE,
)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text.replace("\r\n", "\n").replace("\r", "\n")
    raise BookError("not a text file (not UTF-8 or UTF-16)")


def _split(lines: list[str], starts: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """(title, source) per chapter: from each start line to the next; the lead-in before the first."""
    pieces = []
    first = starts[0][0] if starts else len(lines)
    if "".join(lines[:first]).strip():
        pieces.append(("", "\n".join(lines[:first])))  # "" marks the lead-in
    for index, (line, title) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        pieces.append((title, "\n".join(lines[line:end])))
    return pieces


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FIELD = re.compile(
    r"^[ \t]*(title|author|creator|lang|language)[ \t]*:[ \t]*(.+?)[ \t]*$", re.IGNORECASE | re.MULTILINE
)


def _fields(text: str) -> dict[str, str]:
    """title/author/language from `key: value` lines (the first of each wins)."""
    found: dict[str, str] = {}
    for key, value in _FIELD.findall(text):
        key = {"creator": "author", "lang": "language"}.get(key.lower(), key.lower())
        found.setdefault(key, value.strip().strip("\"'").strip())
    return found


def read_markdown(data: bytes, *, name: str) -> Book:
    from markdown_it import MarkdownIt  # lazy, as in elevtts.markdown

    source = _decode(data)
    front = _FRONT_MATTER.match(source)
    fields = _fields(front.group(1)) if front else {}
    if front:  # keep the line count: headings are found by line number
        source = "\n" * front.group().count("\n") + source[front.end() :]
    tokens = MarkdownIt("commonmark").parse(source)
    headings = [  # (level, first line, title)
        (int(token.tag[1]), token.map[0], strip_inline(tokens[index + 1].content).strip())
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.map
    ]
    levels = [level for level, _, _ in headings]
    title = fields.get("title") or name
    chapter_level = min((lv for lv in set(levels) if levels.count(lv) > 1), default=min(levels, default=0))
    if levels.count(1) == 1 and chapter_level > 1 and "title" not in fields:
        title = next(text for level, _, text in headings if level == 1)
    starts = [(line, text) for level, line, text in headings if level == chapter_level]
    lines = source.split("\n")
    pieces = [(heading, strip_markdown_document(chunk).strip()) for heading, chunk in _split(lines, starts)]
    return Book(
        title=title,
        author=fields.get("author", ""),
        language=fields.get("language", ""),
        chapters=_keep_read(pieces, title),
    )


def _keep_read(pieces: list[tuple[str, str]], book_title: str) -> tuple[Chapter, ...]:
    """Chapters with something to read besides their heading (or, for the lead-in, the title)."""
    chapters = []
    for heading, text in pieces:
        blocks = [block for block in text.split("\n\n") if block.strip()]
        body = blocks[1:] if heading else [b for b in blocks if b.strip().rstrip(".") != book_title]
        if body or len(pieces) == 1:
            chapters.append(Chapter(heading or book_title, text))
    return tuple(chapter for chapter in chapters if chapter.text)


def read_plain(data: bytes, *, name: str) -> Book:
    source = _decode(data)
    lines = source.split("\n")
    line_starts = {match.start(): match.group().strip() for match in CHAPTER_LINE.finditer(source)}
    starts, offset = [], 0
    for number, line in enumerate(lines):
        if offset in line_starts:
            starts.append((number, " ".join(line_starts[offset].split())))
        offset += len(line) + 1
    fields = _fields("\n".join(lines[:40]))
    first_line = next((line.strip() for line in lines if line.strip()), name)[:80]
    title = fields.get("title") or (first_line if starts else name)
    pieces = [(heading, _paragraphs(chunk)) for heading, chunk in _split(lines, starts)]
    return Book(
        title=title,
        author=fields.get("author", ""),
        language=fields.get("language", ""),
        chapters=_keep_read(pieces, title),
    )


def _paragraphs(text: str) -> str:
    """Paragraphs separated by one blank line, each with its lines kept."""
    blocks = re.split(r"\n[ \t]*\n+", text.strip())
    return "\n\n".join(
        "\n".join(line.rstrip() for line in block.split("\n")) for block in blocks if block.strip()
    )
