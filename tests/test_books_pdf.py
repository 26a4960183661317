"""PDF reader on PDFs built here with fpdf2: outline chapters, running headers, page numbers,
hyphenation, and the files it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF

from elevtts.books import BookError, read_book


class _Book(FPDF):
    def header(self) -> None:
        self.set_font("Helvetica", size=9)
        self.cell(0, 8, f"The Test Book - {self.page_no()}", new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=9)
        self.cell(0, 8, str(self.page_no()), align="C")


def _body(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")


def build_book(*, outline: bool = True) -> bytes:
    pdf = _Book()
    pdf.set_title("A Generated Book")
    pdf.set_author("Ada Author")
    pdf.set_lang("en-GB")
    pdf.add_page()
    _body(pdf, "Title page.")
    for number, name in enumerate(["Arrival", "Storm", "Departure"], start=1):
        if number != 2:
            pdf.add_page()
        if outline:
            pdf.start_section(f"Chapter {number}: {name}")
        _body(pdf, f"Chapter {number}: {name}")
        _body(pdf, f"The {name.lower()} para-\ngraph begins here.")
        if outline and number == 1:
            pdf.start_section("A subsection", level=1)  # not a chapter: only the top level is
        pdf.add_page()
        _body(pdf, f"{name} goes on over a second page.")
    return bytes(pdf.output())


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "book.pdf"
    path.write_bytes(data)
    return path


def test_outline_chapters_without_headers_page_numbers_or_hyphens(tmp_path: Path) -> None:
    book = read_book(write(tmp_path, build_book()))
    assert (book.title, book.author) == ("A Generated Book", "Ada Author")
    assert [c.title for c in book.chapters] == [
        "Chapter 1: Arrival",
        "Chapter 2: Storm",
        "Chapter 3: Departure",
    ]
    # chapter 2 starts on the page where chapter 1 ends: the cut is at its title, not the page
    assert book.chapters[0].text == (
        "Chapter 1: Arrival\nThe arrival paragraph begins here.\nArrival goes on over a second page."
    )
    assert book.chapters[1].text.startswith("Chapter 2: Storm\nThe storm paragraph begins here.")
    everything = "\n".join(c.text for c in book.chapters)
    assert "Test Book" not in everything and "Title page" not in everything
    assert not any(line.strip().isdigit() for line in everything.splitlines())


def test_without_an_outline_chapter_lines_cut_the_text(tmp_path: Path) -> None:
    book = read_book(write(tmp_path, build_book(outline=False)))
    assert [c.title for c in book.chapters] == [
        "Chapter 1: Arrival",
        "Chapter 2: Storm",
        "Chapter 3: Departure",
    ]
    assert book.chapters[2].text.endswith("Departure goes on over a second page.")


def test_without_outline_or_chapter_lines_parts_are_page_ranges(tmp_path: Path) -> None:
    pdf = FPDF()
    for page in range(1, 24):
        pdf.add_page()
        _body(pdf, f"Plain page {chr(64 + page)} of the report.")
    book = read_book(write(tmp_path, bytes(pdf.output())))
    assert book.language == ""
    assert [c.title for c in book.chapters] == ["Pages 1 to 10", "Pages 11 to 20", "Pages 21 to 23"]
    assert book.chapters[2].text == "\n".join(f"Plain page {letter} of the report." for letter in "UVW")


def test_a_password_protected_pdf_is_refused(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    _body(pdf, "Secret text.")
    with pytest.raises(BookError) as caught:
        read_book(write(tmp_path, bytes(pdf.output())))
    assert caught.value.reason == "password-protected PDF"


def test_an_empty_user_password_pdf_opens(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner")
    pdf.add_page()
    _body(pdf, "Open text.")
    assert read_book(write(tmp_path, bytes(pdf.output()))).chapters[0].text == "Open text."


def test_a_pdf_without_a_text_layer_is_refused(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 100, style="F")  # a scan is an image: no text to extract
    with pytest.raises(BookError, match=r"^no text layer \(a scanned PDF\?\)$"):
        read_book(write(tmp_path, bytes(pdf.output())))


def test_damaged_and_truncated_pdfs_are_refused(tmp_path: Path) -> None:
    whole = build_book()
    with pytest.raises(BookError, match=r"^damaged or truncated PDF \("):
        read_book(write(tmp_path, whole[: len(whole) // 3]))
    with pytest.raises(BookError, match=r"^not a PDF file$"):
        read_book(write(tmp_path, b"<html>not a pdf</html>"))


def test_page_number_styles_are_dropped_and_words_that_look_like_them_kept(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    footers = ["ii", "Page 2 of 4", "- 3 -", "4"]
    last_lines = ["vivid", "Did", "mix", "The end."]
    for footer, last in zip(footers, last_lines, strict=True):
        pdf.add_page()
        _body(pdf, f"Text above {last.lower().rstrip('.')}.")
        _body(pdf, last)
        pdf.set_y(-15)
        _body(pdf, footer)
    [chapter] = read_book(write(tmp_path, bytes(pdf.output()))).chapters
    assert chapter.text.split("\n") == [
        "Text above vivid.", "vivid", "Text above did.", "Did", "Text above mix.", "mix",
        "Text above the end.", "The end.",
    ]  # fmt: skip
