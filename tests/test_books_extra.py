"""The books extra: imported only when a reader needs it, and named when it is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from elevtts.books import MissingExtraError, read_book

HEAVY = ("pypdfium2", "lxml", "readability", "defusedxml", "mutagen", "av", "numpy", "markdown_it")


def test_importing_the_books_package_imports_no_reader_library() -> None:
    code = (
        "import sys, elevtts.books, elevtts.books.marks, elevtts.books.epub, elevtts.books.pdf,"
        " elevtts.books.html, elevtts.books.text, elevtts.normalize\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(("suffix", "module"), [(".pdf", "pypdfium2"), (".epub", "defusedxml.ElementTree")])
def test_a_missing_extra_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if the books extra were not installed
    path = tmp_path / f"book{suffix}"
    path.write_bytes(b"%PDF-1.4\n" if suffix == ".pdf" else b"PK\x03\x04")
    with pytest.raises(MissingExtraError) as caught:
        read_book(path)
    assert str(caught.value) == (
        f"reading books needs {module}: pip install 'elevtts[books]'"
        " (from the repo: pip install -e '.[books]')"
    )
