"""HTML: the main text only (readability-lxml drops menus, cookie banners, sidebars, footers).

readability-lxml was chosen over trafilatura: both keep the article and drop the page furniture
of our test page once cookie-consent boxes are removed first (readability's list of unlikely
blocks has no "cookie"), and readability-lxml needs only lxml, cssselect and chardet (about 16 MB)
where trafilatura 2.3.1 brings 14 packages, 71 MB (courlan, htmldate, dateparser, babel, ...).
Title and author come from the page's metadata; the page is one chapter.
"""

from __future__ import annotations

from typing import Any

from elevtts.books import Book, BookError, Chapter, require
from elevtts.books.markup import tree_text

_AUTHOR_META = (
    "//meta[@name='author']/@content",
    "//meta[@property='article:author']/@content",
    "//meta[@name='dc.creator' or @name='DC.creator']/@content",
    "//meta[@name='byl']/@content",
)
# Consent boxes by id or class: readability scores them as content when they hold a sentence.
_CONSENT = "//*[re:test(@id, 'cookie|consent|gdpr', 'i') or re:test(@class, 'cookie|consent|gdpr', 'i')]"
_REGEX_NS = {"re": "http://exslt.org/regular-expressions"}
_TITLE_META = (
    "//meta[@property='og:title']/@content",
    "//meta[@name='dc.title' or @name='DC.title']/@content",
)


def _first(page: Any, queries: tuple[str, ...]) -> str:
    for query in queries:
        for value in page.xpath(query):
            if str(value).strip():
                return " ".join(str(value).split())
    return ""


def read(data: bytes, *, name: str) -> Book:
    readability = require("readability")
    lxml_html = require("lxml.html")
    if not data.strip():
        raise BookError("empty HTML file")
    try:
        page = lxml_html.document_fromstring(data)
        cleaned = lxml_html.document_fromstring(data)
        for box in cleaned.xpath(_CONSENT, namespaces=_REGEX_NS):
            box.drop_tree()
        document = readability.Document(lxml_html.tostring(cleaned, encoding="unicode"))
        main = document.summary(html_partial=True)
    except Exception as exc:  # lxml and readability raise their own types for unparsable input
        raise BookError(f"not readable as HTML ({type(exc).__name__}: {exc})") from None
    text, _ = tree_text(lxml_html.fragment_fromstring(main, create_parent="div"))
    title = _first(page, _TITLE_META) or " ".join((document.short_title() or "").split()) or name
    language = (page.get("lang") or page.get("{http://www.w3.org/XML/1998/namespace}lang") or "").strip()
    return Book(
        title=title,
        author=_first(page, _AUTHOR_META),
        language=language,
        chapters=(Chapter(title, text),) if text else (),
    )
