"""PDF with pypdfium2: the text layer per page, cleaned of what a reader's eye skips.

Running headers and footers (lines at the top or bottom of pages that repeat, numbers aside) and
page numbers are dropped; words hyphenated at a line end are joined (PDFium marks such hyphens
with U+0002; a plain hyphen before a lower-case word on the next line is joined too). Chapters
come from the top-level outline, cut where the entry's title appears on its page; else from
`Chapter N` lines; else ranges of `PAGES_PER_PART` pages.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from typing import Any

from elevtts.books import Book, BookError, Chapter, require
from elevtts.books.text import CHAPTER_LINE

PAGES_PER_PART = 10
EDGE_LINES = 2  # lines at each end of a page that may be a running header or footer
MIN_REPEATS = 3  # pages a line must repeat on to count as a running header or footer
_PAGE_NUMBER = re.compile(
    r"(?i:(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?|[-\u2013\u2014]\s*\d{1,4}\s*[-\u2013\u2014])"
    r"|(?=[ivxlc])c{0,3}(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"  # front matter: lower-case Roman numerals
)
_SOFT_HYPHEN = "\x02"


def _shape(line: str) -> str:
    """A line with its numbers blanked: a running header carries the page number."""
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _edges(lines: list[str]) -> dict[int, str]:
    """The lines that may be a header or footer, by position (0, 1 from the top; -1, -2 from the end)."""
    positions = list(range(min(EDGE_LINES, len(lines)))) + list(range(-min(EDGE_LINES, len(lines)), 0))
    return {position: lines[position] for position in positions}


def _clean_pages(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers, and lines repeating at the same edge of several pages: exactly on
    `MIN_REPEATS` pages, or with only their numbers changing on more than half the pages."""
    edges = [_edges(lines) for lines in pages]
    exact = Counter((position, line) for page in edges for position, line in page.items())
    shapes = Counter((position, _shape(line)) for page in edges for position, line in page.items())
    cleaned = []
    for lines, page_edges in zip(pages, edges, strict=True):
        dropped = {
            position % len(lines)
            for position, line in page_edges.items()
            if _PAGE_NUMBER.fullmatch(line)
            or exact[position, line] >= MIN_REPEATS
            or (
                shapes[position, _shape(line)] >= MIN_REPEATS
                and shapes[position, _shape(line)] * 2 > len(pages)
            )
        }
        cleaned.append([line for index, line in enumerate(lines) if index not in dropped])
    return cleaned


def _join_hyphens(text: str) -> str:
    text = re.sub(_SOFT_HYPHEN + r"\s*\n?\s*", "", text)
    return re.sub(r"(\w)-\n(?=[a-z])", r"\1", text)


def _open(data: bytes):  # type: ignore[no-untyped-def]
    pdfium = require("pypdfium2")
    if not data.startswith(b"%PDF-"):
        raise BookError("not a PDF file")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise BookError("password-protected PDF") from None
        raise BookError(f"damaged or truncated PDF ({exc})") from None


def read(data: bytes, *, name: str) -> Book:
    document = _open(data)
    try:
        pages = []
        for page in document:
            text = page.get_textpage().get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
            pages.append([line.strip() for line in text.split("\n") if line.strip()])
        if not any(pages):
            raise BookError("no text layer (a scanned PDF?)")
        outline = [
            (bookmark.get_title().strip(), bookmark.get_dest().get_index())
            for bookmark in document.get_toc()
            if bookmark.level == 0
            and bookmark.get_dest() is not None
            and bookmark.get_dest().get_index() is not None
        ]
        metadata = document.get_metadata_dict(skip_empty=True)
        language = _language(document)
    finally:
        document.close()
    pages = _clean_pages(pages)
    page_texts = ["\n".join(lines) for lines in pages]
    page_starts, offset = [], 0
    for page_text in page_texts:
        page_starts.append(offset)
        offset += len(page_text) + 1
    text = "".join(page_text + "\n" for page_text in page_texts)
    title = " ".join(metadata.get("Title", "").split()) or name
    starts = _outline_starts(outline, page_texts, page_starts) or _chapter_line_starts(text)
    if not starts:
        starts = [
            (page_starts[first], f"Pages {first + 1} to {min(first + PAGES_PER_PART, len(pages))}")
            for first in range(0, len(pages), PAGES_PER_PART)
        ]
        if len(starts) == 1:
            starts = [(0, title)]
    chapters = []
    for index, (start, chapter_title) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        chapter_text = _join_hyphens(text[start:end]).strip()
        if chapter_text:
            chapters.append(Chapter(chapter_title, chapter_text))
    return Book(
        title=title,
        author=" ".join(metadata.get("Author", "").split()),
        language=language,
        chapters=tuple(chapters),
    )


def _language(document: Any) -> str:
    """The catalog's /Lang entry (UTF-16 from PDFium), "" when absent."""
    raw = require("pypdfium2.raw")
    size = raw.FPDFCatalog_GetLanguage(document, None, 0)
    if size <= 2:
        return ""
    buffer = (ctypes.c_ushort * (size // 2))()
    raw.FPDFCatalog_GetLanguage(document, buffer, size)
    return bytes(buffer).decode("utf-16-le", "replace").rstrip("\x00").strip()


def _outline_starts(
    outline: list[tuple[str, int]], page_texts: list[str], page_starts: list[int]
) -> list[tuple[int, str]]:
    starts = []
    for title, page in outline:
        if not 0 <= page < len(page_texts):
            continue
        words = title.split()
        found = (
            re.search(r"\s+".join(map(re.escape, words)), page_texts[page], re.IGNORECASE) if words else None
        )
        starts.append((page_starts[page] + (found.start() if found else 0), title))
    unique = {
        offset: title for offset, title in reversed(starts)
    }  # one place, two entries: the first names it
    return sorted(unique.items())


def _chapter_line_starts(text: str) -> list[tuple[int, str]]:
    return [(match.start(), " ".join(match.group().split())) for match in CHAPTER_LINE.finditer(text)]
