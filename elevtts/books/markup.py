"""(X)HTML element trees -> plain text with paragraph breaks, and where each `id` starts. Pure.

Works on any ElementTree-like tree (the stdlib's via defusedxml, or lxml's).
"""

from __future__ import annotations

import re
from typing import Any

_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
        "title",
    ]
)
_SKIPPED = frozenset(["script", "style", "head", "noscript", "template", "svg", "math"])
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def local_name(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def tree_text(root: Any) -> tuple[str, dict[str, int]]:
    """The readable text under `root` and, for each element id, its offset in that text."""
    pieces: list[str] = []
    anchors: dict[str, int] = {}
    length = 0

    def emit(text: str) -> None:
        nonlocal length
        text = _SPACES.sub(" ", text.replace("\n", " "))
        if not text:
            return
        if text.startswith(" ") and (not pieces or pieces[-1].endswith((" ", "\n"))):
            text = text.lstrip(" ")
        pieces.append(text)
        length += len(text)

    def line_break(newlines: str) -> None:
        nonlocal length
        while pieces and pieces[-1].endswith(" "):  # no trailing spaces before a break
            pieces[-1] = pieces[-1][:-1]
            length -= 1
        if pieces and pieces[-1].endswith("\n") and newlines == "\n\n" and not pieces[-1].endswith("\n\n"):
            pieces.append("\n")
            length += 1
        elif pieces and not pieces[-1].endswith("\n"):
            pieces.append(newlines)
            length += len(newlines)

    def block_break() -> None:
        line_break("\n\n")

    def walk(element: Any) -> None:
        name = local_name(element.tag)
        if name in _SKIPPED or not name:
            return
        element_id = element.get("id") or (element.get("name") if name == "a" else None)
        if element_id and element_id not in anchors:
            anchors[element_id] = length
        if name == "br":  # a line break inside a paragraph (verse, addresses)
            line_break("\n")
            return
        block = name in _BLOCKS
        if block:
            block_break()
            if element_id:
                anchors[element_id] = length
        emit(element.text or "")
        for child in element:
            walk(child)
            emit(child.tail or "")  # a skipped child's tail (and a comment's) is still text
        if block:
            block_break()

    walk(root)
    text = "".join(pieces)
    stripped = text.rstrip()
    return stripped, {key: min(value, len(stripped)) for key, value in anchors.items()}
