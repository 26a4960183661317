"""Books in, chapters out: one reader per format behind one interface.

`read_book(path)` picks the reader from the file's type and returns a `Book` (title, author,
language, chapters). Every failure to read (unsupported type, damaged or truncated file,
password or DRM, no text layer) raises `BookError`, whose `reason` is one line for
`cannot read FILE: <reason>`. The readers' libraries come with the `books` extra and are imported
only when a reader needs them; without them `MissingExtraError` names the extra to install.

    Exception
     +-- BookError            cannot read this file (reason)
     +-- ImportError
          +-- MissingExtraError    the `books` extra is not installed

How `elevtts book` uses the pieces:

    book = read_book(path)                       # BookError -> "cannot read FILE: {reason}", exit 3
    for chapter in book.chapters: ...            # synthesize chapter.text to NN-slug.mp3
    write_audiobook(stem.mp3, [(chapter.title, mp3_path), ...], title=book.title, author=book.author)
    write_m4b(stem.m4b, [...same...], title=book.title, author=book.author)      # --m4b
    (both in elevtts.books.marks; ValueError when the chapter files cannot be joined)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

INSTALL_HINT = "pip install 'elevtts[books]'"


@dataclass(frozen=True)
class Chapter:
    title: str
    text: str


@dataclass(frozen=True)
class Book:
    title: str
    author: str
    language: str  # BCP 47 tag from the source, "" when it does not say
    chapters: tuple[Chapter, ...]


class BookError(Exception):
    """The file cannot be read as a book; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingExtraError(ImportError):
    def __init__(self, module: str) -> None:
        super().__init__(
            f"reading books needs {module}: {INSTALL_HINT} (from the repo: pip install -e '.[books]')"
        )


def require(module: str) -> ModuleType:
    """Import a reader's dependency lazily; a missing one names the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module) from None


# suffix -> (module in elevtts.books, its `read(data: bytes, *, name: str) -> Book`)
_READERS = {
    ".epub": ("epub", "read"),
    ".pdf": ("pdf", "read"),
    ".html": ("html", "read"),
    ".htm": ("html", "read"),
    ".xhtml": ("html", "read"),
    ".md": ("text", "read_markdown"),
    ".markdown": ("text", "read_markdown"),
    ".txt": ("text", "read_plain"),
    ".text": ("text", "read_plain"),
}


def read_book(path: str | Path) -> Book:
    """Read `path` with the reader for its suffix. `BookError` if it cannot be read."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise BookError(f"unsupported file type {path.suffix or '(no suffix)'!r}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BookError(exc.strerror or str(exc)) from None
    module, function = reader
    book: Book = getattr(importlib.import_module(f"elevtts.books.{module}"), function)(data, name=path.stem)
    if not any(chapter.text.strip() for chapter in book.chapters):
        raise BookError("no text found")
    return book
