"""HTML reader: the article only, title/author/language from the metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from elevtts.books import BookError, read_book

PARAGRAPHS = [
    "The harbour was quiet that winter, and the boats lay on the shingle with their keels to the sky,"
    " waiting for a spring that seemed, to the fishermen, never quite ready to arrive.",
    "Every morning the keeper walked the length of the pier, counting the gulls and the broken planks,"
    " and every evening he wrote both numbers in a ledger that nobody else would ever read.",
    "When the ice finally broke, the whole village came down to the water to watch, and for an hour"
    " nobody spoke at all, as if the sound of the sea were something that could be frightened away.",
]

PAGE = f"""<!DOCTYPE html>
<html lang="en-US"><head>
<title>The Quiet Harbour | Coastal Stories</title>
<meta name="author" content="Ada Author">
<meta property="og:title" content="The Quiet Harbour">
</head><body>
<div id="cookie-banner" class="cookie consent">
We use cookies to improve your experience. Accept all cookies?</div>
<nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
<li><a href="/shop">Shop</a></li></ul></nav>
<div class="sidebar"><h3>Related</h3><ul><li><a href="/x">Ten best beaches</a></li></ul></div>
<article class="post-content"><h1>The Quiet Harbour</h1>
{"".join(f"<p>{p}</p>" for p in PARAGRAPHS)}
</article>
<footer class="site-footer">Copyright 2026 Coastal Stories. All rights reserved. Privacy policy.</footer>
</body></html>"""


def test_html_keeps_the_article_and_drops_menus_banners_sidebars_and_footers(tmp_path: Path) -> None:
    path = tmp_path / "harbour.html"
    path.write_text(PAGE, encoding="utf-8")
    book = read_book(path)
    assert (book.title, book.author, book.language) == ("The Quiet Harbour", "Ada Author", "en-US")
    [chapter] = book.chapters
    assert chapter.title == "The Quiet Harbour"
    for paragraph in PARAGRAPHS:
        assert paragraph in chapter.text
    for furniture in ("cookies", "Home", "Shop", "Ten best beaches", "Copyright", "Privacy"):
        assert furniture not in chapter.text


def test_an_empty_html_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.htm"
    path.write_bytes(b"  \n")
    with pytest.raises(BookError, match=r"^empty HTML file$"):
        read_book(path)
