"""EPUB reader: EPUB 3 nav, EPUB 2 NCX, spine fallback, DRM and damaged files (built here)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path

import pytest

from elevtts.books import BookError, read_book

CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""


def xhtml(body: str, title: str = "x") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"'
        f' xmlns:epub="http://www.idpf.org/2007/ops"><head><title>{title}</title></head><body>{body}</body></html>'
    )


def opf(manifest: str, spine: str, *, toc: str = "") -> str:
    return f"""<?xml version="1.0"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:title>The Test Book</dc:title><dc:creator>Ada Author</dc:creator><dc:language>en-GB</dc:language>
  </metadata>
  <manifest>{manifest}</manifest>
  <spine{f' toc="{toc}"' if toc else ""}>{spine}</spine>
</package>"""


def build(files: Mapping[str, str | bytes]) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", CONTAINER)
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# Text/part one.xhtml holds two chapters (the second starts at an anchor); its name needs %20.
PART_ONE = xhtml(
    "<p>Cover text that no chapter holds.</p>"
    '<h1 id="c1">Chapter One</h1><p>It was a dark night.</p>'
    '<h1 id="c2">Chapter Two</h1><p>The <em>morning</em> came.</p>'
)
PART_TWO = xhtml('<h1>Chapter Three</h1><p>The end.</p><script>var x = "not read";</script>')
NAV = xhtml(
    '<nav epub:type="landmarks"><ol><li><a href="../Text/part%20one.xhtml#c2">Landmark</a></li></ol></nav>'
    '<nav epub:type="toc"><ol>'
    '<li><a href="../Text/part%20one.xhtml#c1">One</a></li>'
    '<li><a href="../Text/part%20one.xhtml#c2">Two</a></li>'
    '<li><a href="../Text/two.xhtml">Three</a></li>'
    "</ol></nav>"
    '<nav epub:type="page-list"><ol><li><a href="../Text/two.xhtml">1</a></li></ol></nav>'
)
MANIFEST3 = (
    '<item id="nav" href="Nav/nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    '<item id="one" href="Text/part%20one.xhtml" media-type="application/xhtml+xml"/>'
    '<item id="two" href="Text/two.xhtml" media-type="application/xhtml+xml"/>'
)
SPINE = '<itemref idref="one"/><itemref idref="two"/>'


def epub3(**extra: str | bytes) -> bytes:
    return build(
        {
            "OEBPS/content.opf": opf(MANIFEST3, SPINE),
            "OEBPS/Nav/nav.xhtml": NAV,
            "OEBPS/Text/part one.xhtml": PART_ONE,
            "OEBPS/Text/two.xhtml": PART_TWO,
            **extra,
        }
    )


def write(tmp_path: Path, data: bytes, name: str = "book.epub") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_epub3_chapters_come_from_the_toc_nav_cut_at_anchors(tmp_path: Path) -> None:
    book = read_book(write(tmp_path, epub3()))
    assert (book.title, book.author, book.language) == ("The Test Book", "Ada Author", "en-GB")
    assert [c.title for c in book.chapters] == ["One", "Two", "Three"]
    assert book.chapters[0].text == "Chapter One\n\nIt was a dark night."
    assert book.chapters[1].text == "Chapter Two\n\nThe morning came."
    assert book.chapters[2].text == "Chapter Three\n\nThe end."
    assert "Cover text" not in "".join(c.text for c in book.chapters)


NCX = """<?xml version="1.0"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>
  <navPoint id="p1"><navLabel><text>First</text></navLabel><content src="Text/part%20one.xhtml#c1"/>
    <navPoint id="p2"><navLabel><text>Second</text></navLabel>
      <content src="Text/part%20one.xhtml#c2"/></navPoint>
  </navPoint>
  <navPoint id="p3"><navLabel><text>Third</text></navLabel><content src="Text/two.xhtml"/></navPoint>
</navMap></ncx>"""


def test_epub2_chapters_come_from_the_ncx(tmp_path: Path) -> None:
    manifest = (
        '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
        '<item id="one" href="Text/part%20one.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="two" href="Text/two.xhtml" media-type="application/xhtml+xml"/>'
    )
    data = build(
        {
            "OEBPS/content.opf": opf(manifest, SPINE, toc="ncx"),
            "OEBPS/toc.ncx": NCX,
            "OEBPS/Text/part one.xhtml": PART_ONE,
            "OEBPS/Text/two.xhtml": PART_TWO,
        }
    )
    book = read_book(write(tmp_path, data))
    assert [(c.title, c.text.splitlines()[-1]) for c in book.chapters] == [
        ("First", "It was a dark night."),
        ("Second", "The morning came."),
        ("Third", "The end."),
    ]


def test_without_a_table_of_contents_each_spine_item_is_a_chapter(tmp_path: Path) -> None:
    manifest = (
        '<item id="one" href="Text/part%20one.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="two" href="Text/two.xhtml" media-type="application/xhtml+xml"/>'
    )
    data = build(
        {
            "OEBPS/content.opf": opf(manifest, '<itemref idref="two"/><itemref idref="one"/>'),
            "OEBPS/Text/part one.xhtml": PART_ONE,
            "OEBPS/Text/two.xhtml": PART_TWO,
        }
    )
    book = read_book(write(tmp_path, data))
    assert [c.title for c in book.chapters] == ["Chapter Three", "Cover text that no chapter holds."]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"META-INF/rights.xml": "<rights/>"}, "DRM-protected EPUB (META-INF/rights.xml)"),
        (
            {
                "META-INF/encryption.xml": "<encryption"
                ' xmlns="urn:oasis:names:tc:opendocument:xmlns:container"'
                ' xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
                "</enc:EncryptedData></encryption>"
            },
            "DRM-protected EPUB (encrypted content in META-INF/encryption.xml)",
        ),
    ],
)
def test_drm_is_refused(tmp_path: Path, extra: dict[str, str], reason: str) -> None:
    with pytest.raises(BookError) as caught:
        read_book(write(tmp_path, epub3(**extra)))
    assert caught.value.reason == reason


def test_font_obfuscation_alone_is_not_drm(tmp_path: Path) -> None:
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"'
        ' xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/></enc:EncryptedData></encryption>'
    )
    book = read_book(write(tmp_path, epub3(**{"META-INF/encryption.xml": encryption})))
    assert len(book.chapters) == 3


def test_damaged_and_truncated_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    whole = epub3()
    with pytest.raises(BookError, match=r"not an EPUB \(damaged or truncated zip\)"):
        read_book(write(tmp_path, whole[: len(whole) // 2]))
    with pytest.raises(BookError, match=r"damaged EPUB: OEBPS/Text/two.xhtml is not well-formed XML"):
        read_book(write(tmp_path, epub3(**{"OEBPS/Text/two.xhtml": "<html><p>unclosed"})))
    with pytest.raises(BookError, match=r"damaged EPUB: OEBPS/content.opf is missing"):
        read_book(write(tmp_path, build({})))
    huge = "<html><body><p>" + "a" * (64 * 1024 * 1024) + "</p></body></html>"  # compresses to ~64 kB
    with pytest.raises(BookError, match=r"^damaged EPUB: OEBPS/Text/two.xhtml unpacks to over 64 MB$"):
        read_book(write(tmp_path, epub3(**{"OEBPS/Text/two.xhtml": huge})))
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><html>&a;</html>'
    with pytest.raises(BookError, match=r"damaged EPUB: OEBPS/Text/two.xhtml"):
        read_book(write(tmp_path, epub3(**{"OEBPS/Text/two.xhtml": bomb})))


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(BookError, match=r"unsupported file type '.docx'"):
        read_book(write(tmp_path, b"PK", name="a.docx"))
    with pytest.raises(BookError, match=r"No such file or directory"):
        read_book(tmp_path / "missing.epub")


def test_a_long_book_with_a_nested_nav_keeps_every_entry_in_reading_order(tmp_path: Path) -> None:
    """Forty chapters in two files under two parts: nested entries are chapters too."""
    files, nav_items = {}, []
    for part in (1, 2):
        body = f'<h1 id="part{part}">Part {part}</h1>'
        items = []
        for chapter in range(1 + (part - 1) * 20, 1 + part * 20):
            body += f'<h2 id="ch{chapter}">Chapter {chapter}</h2><p>Line one<br/>line two of {chapter}.</p>'
            items.append(f'<li><a href="../Text/p{part}.xhtml#ch{chapter}">Chapter {chapter}</a></li>')
        files[f"OEBPS/Text/p{part}.xhtml"] = xhtml(body)
        nav_items.append(
            f'<li><a href="../Text/p{part}.xhtml#part{part}">Part {part}</a><ol>{"".join(items)}</ol></li>'
        )
    manifest = (
        '<item id="nav" href="Nav/nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        '<item id="p1" href="Text/p1.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="p2" href="Text/p2.xhtml" media-type="application/xhtml+xml"/>'
    )
    files["OEBPS/Nav/nav.xhtml"] = xhtml(f'<nav epub:type="toc"><ol>{"".join(nav_items)}</ol></nav>')
    files["OEBPS/content.opf"] = opf(manifest, '<itemref idref="p1"/><itemref idref="p2"/>')
    book = read_book(write(tmp_path, build(files)))
    titles = [c.title for c in book.chapters]
    assert len(titles) == 42
    assert titles[:3] == ["Part 1", "Chapter 1", "Chapter 2"] and titles[21:23] == ["Part 2", "Chapter 21"]
    assert book.chapters[0].text == "Part 1"
    assert book.chapters[40].text == "Chapter 39\n\nLine one\nline two of 39."
