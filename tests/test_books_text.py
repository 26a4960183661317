"""Markdown and plain-text readers: chapters from headings or chapter lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from elevtts.books import BookError, read_book

MARKDOWN = """# The Lighthouse

A short note before the first chapter.

## Contents

## Chapter 1: Arrival

The *keeper* climbed the [stairs](https://example.com/stairs).

```
code is not read
```

## Chapter 2: Storm

- rain
- wind

### A subsection

Still chapter two.
"""


def test_markdown_chapters_come_from_the_repeated_heading_level(tmp_path: Path) -> None:
    path = tmp_path / "light.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    book = read_book(path)
    assert book.title == "The Lighthouse"
    assert [c.title for c in book.chapters] == ["The Lighthouse", "Chapter 1: Arrival", "Chapter 2: Storm"]
    assert book.chapters[0].text == "The Lighthouse.\n\nA short note before the first chapter."
    assert book.chapters[1].text == "Chapter 1: Arrival.\n\nThe keeper climbed the stairs."
    assert book.chapters[2].text == "Chapter 2: Storm.\n\nrain.\nwind.\n\nA subsection.\n\nStill chapter two."


PLAIN = """THE OLD HOUSE

Contents
Chapter I
Chapter II

CHAPTER I

It stood on a hill,
alone.

Chapter 2: The Door

It opened.

CHAPTER THREE. THE END

Nothing more.
"""


def test_plain_text_chapters_come_from_chapter_lines(tmp_path: Path) -> None:
    path = tmp_path / "house.txt"
    path.write_text(PLAIN, encoding="utf-8")
    book = read_book(path)
    assert book.title == "THE OLD HOUSE"
    assert [c.title for c in book.chapters] == [
        "THE OLD HOUSE",
        "CHAPTER I",
        "Chapter 2: The Door",
        "CHAPTER THREE. THE END",
    ]
    assert book.chapters[1].text == "CHAPTER I\n\nIt stood on a hill,\nalone."
    assert book.chapters[3].text == "CHAPTER THREE. THE END\n\nNothing more."


def test_plain_text_without_chapter_lines_is_one_chapter(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes("A chaptered life.\r\nNo headings here.\r\n".encode("utf-16"))
    book = read_book(path)
    assert [(c.title, c.text) for c in book.chapters] == [("note", "A chaptered life.\nNo headings here.")]


def test_binary_or_empty_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00\x00\x00garbage\x00\x00\xc3")
    with pytest.raises(BookError, match=r"^not a text file \(not UTF-8 or UTF-16\)$"):
        read_book(path)
    path.write_text("   \n\n", encoding="utf-8")
    with pytest.raises(BookError, match=r"^no text found$"):
        read_book(path)


def test_markdown_front_matter_gives_title_author_and_language(tmp_path: Path) -> None:
    path = tmp_path / "fm.md"
    path.write_text(
        '---\ntitle: "Sea Stories"\nauthor: Ada Author\nlang: en-GB\n---\n\n'
        "## One\n\nWaves.\n\n## Two\n\nGulls.\n",
        encoding="utf-8",
    )
    book = read_book(path)
    assert (book.title, book.author, book.language) == ("Sea Stories", "Ada Author", "en-GB")
    assert [(c.title, c.text) for c in book.chapters] == [
        ("One", "One.\n\nWaves."),
        ("Two", "Two.\n\nGulls."),
    ]


def test_plain_text_title_and_author_lines(tmp_path: Path) -> None:
    path = tmp_path / "pg.txt"
    path.write_text("Title: The Old House\nAuthor: Ada Author\n\nCHAPTER I\n\nIt stood.\n", encoding="utf-8")
    book = read_book(path)
    assert (book.title, book.author) == ("The Old House", "Ada Author")
    assert [c.title for c in book.chapters] == ["The Old House", "CHAPTER I"]
