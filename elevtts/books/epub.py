"""EPUB 2 and 3, read directly: the zip container, the OPF package, the table of contents.

Chapters come from the EPUB 3 `toc` nav (never landmarks or page lists), else the EPUB 2 NCX,
else one per spine item. A table-of-contents target may be an anchor inside a file: the text is
cut there. Text before the first target (cover, title page) is not a chapter.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.parse import unquote, urldefrag

from elevtts.books import Book, BookError, Chapter, require
from elevtts.books.markup import local_name, tree_text

_OPS = "{http://www.idpf.org/2007/ops}"
_DC = "{http://purl.org/dc/elements/1.1/}"
# Font obfuscation scrambles embedded fonts only; any other encryption is DRM on the text.
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # one XHTML file this large is a zip bomb, not a chapter
_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})


@dataclass(frozen=True)
class _Target:
    title: str
    path: str  # inside the zip, percent-decoded
    anchor: str


def _parse(archive: zipfile.ZipFile, path: str) -> Any:
    etree = require("defusedxml.ElementTree")
    try:
        if archive.getinfo(path).file_size > MAX_MEMBER_BYTES:
            raise BookError(f"damaged EPUB: {path} unpacks to over {MAX_MEMBER_BYTES // 2**20} MB")
        return etree.fromstring(archive.read(path))
    except KeyError:
        raise BookError(f"damaged EPUB: {path} is missing") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise BookError(f"damaged EPUB: {path}: {exc}") from None
    except BookError:
        raise
    except Exception as exc:  # defusedxml's refusals and ParseError share no base class but this
        raise BookError(f"damaged EPUB: {path} is not well-formed XML ({exc})") from None


def _refuse_drm(archive: zipfile.ZipFile) -> None:
    names = set(archive.namelist())
    if "META-INF/rights.xml" in names:
        raise BookError("DRM-protected EPUB (META-INF/rights.xml)")
    if "META-INF/encryption.xml" in names:
        root = _parse(archive, "META-INF/encryption.xml")
        algorithms = {e.get("Algorithm", "") for e in root.iter() if local_name(e.tag) == "encryptionmethod"}
        if algorithms - _FONT_OBFUSCATION:
            raise BookError("DRM-protected EPUB (encrypted content in META-INF/encryption.xml)")


def _resolve(base: str, href: str) -> tuple[str, str]:
    """(path in the zip, anchor) for a link in the file `base`, percent-decoded."""
    link, anchor = urldefrag(href)
    path = posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(link))) if link else base
    return path, unquote(anchor)


def _label(element: Any) -> str:
    return " ".join("".join(element.itertext()).split())


def _nav_targets(archive: zipfile.ZipFile, nav_path: str) -> list[_Target]:
    root = _parse(archive, nav_path)
    for nav in root.iter():
        if local_name(nav.tag) == "nav" and "toc" in (nav.get(f"{_OPS}type") or "").split():
            return [
                _Target(_label(a), *_resolve(nav_path, a.get("href")))
                for a in nav.iter()
                if local_name(a.tag) == "a" and a.get("href")
            ]
    return []


def _ncx_targets(archive: zipfile.ZipFile, ncx_path: str) -> list[_Target]:
    root = _parse(archive, ncx_path)
    targets = []
    for point in root.iter():  # document order is reading order, nested points included
        if local_name(point.tag) != "navpoint":
            continue
        label = next((e for e in point if local_name(e.tag) == "navlabel"), None)
        content = next((e for e in point if local_name(e.tag) == "content"), None)
        if content is not None and content.get("src"):
            title = _label(label) if label is not None else ""
            targets.append(_Target(title, *_resolve(ncx_path, content.get("src"))))
    return targets


def read(data: bytes, *, name: str) -> Book:
    require("defusedxml.ElementTree")  # before anything: a missing extra is not a damaged file
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError):
        raise BookError("not an EPUB (damaged or truncated zip)") from None
    with archive:
        _refuse_drm(archive)
        container = _parse(archive, "META-INF/container.xml")
        rootfile = next(
            (e.get("full-path") for e in container.iter() if local_name(e.tag) == "rootfile"), None
        )
        if not rootfile:
            raise BookError("damaged EPUB: container.xml names no package file")
        opf = _parse(archive, rootfile)
        metadata = next((e for e in opf if local_name(e.tag) == "metadata"), None)

        def meta(field: str) -> str:
            element = metadata.find(f"{_DC}{field}") if metadata is not None else None
            return " ".join((element.text or "").split()) if element is not None else ""

        manifest: dict[str, tuple[str, str]] = {}  # id -> (path, properties)
        media_types: dict[str, str] = {}
        spine_ids: list[str] = []
        ncx_id = ""
        for section in opf:
            if local_name(section.tag) == "manifest":
                for item in section:
                    if item.get("id") and item.get("href"):
                        path, _ = _resolve(rootfile, item.get("href"))
                        manifest[item.get("id")] = (path, item.get("properties") or "")
                        media_types[item.get("id")] = item.get("media-type") or ""
            elif local_name(section.tag) == "spine":
                ncx_id = section.get("toc") or ""
                spine_ids = [
                    ref.get("idref") for ref in section if ref.get("idref") and ref.get("linear") != "no"
                ]
        spine = [manifest[i][0] for i in spine_ids if i in manifest]
        if not spine:
            raise BookError("damaged EPUB: the spine lists no content")

        texts: dict[str, tuple[str, dict[str, int]]] = {}
        for path in spine:
            texts[path] = tree_text(_parse(archive, path))

        nav = next((path for path, props in manifest.values() if "nav" in props.split()), None)
        targets = _nav_targets(archive, nav) if nav else []
        if not targets:
            ncx = manifest.get(ncx_id, ("", ""))[0] or next(
                (manifest[i][0] for i, t in media_types.items() if t == "application/x-dtbncx+xml"), ""
            )
            targets = _ncx_targets(archive, ncx) if ncx else []
        chapters = _cut(spine, texts, targets) if targets else ()
        if not chapters:  # no usable table of contents: one chapter per spine item
            chapters = tuple(
                Chapter(_first_line(texts[path][0]) or f"Part {number}", texts[path][0])
                for number, path in enumerate(spine, start=1)
                if texts[path][0].strip()
            )
    return Book(
        title=meta("title") or name, author=meta("creator"), language=meta("language"), chapters=chapters
    )


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()[:80]


def _cut(
    spine: list[str], texts: dict[str, tuple[str, dict[str, int]]], targets: list[_Target]
) -> tuple[Chapter, ...]:
    """Cut the spine's text at each target; a chapter runs to the next target in reading order."""
    order = {path: index for index, path in enumerate(spine)}
    starts: list[tuple[tuple[int, int], str]] = []
    seen: set[tuple[int, int]] = set()
    for target in targets:
        if target.path not in order:
            continue  # a link outside the spine (or a non-linear item)
        text, anchors = texts[target.path]
        position = (order[target.path], anchors.get(target.anchor, 0) if target.anchor else 0)
        if position not in seen:  # two entries pointing at one place: the first names it
            seen.add(position)
            starts.append((position, target.title))
    starts.sort(key=lambda start: start[0])
    chapters = []
    for index, ((file_index, offset), title) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else (len(spine) - 1, None)
        parts = []
        for current in range(file_index, end[0] + 1):
            text = texts[spine[current]][0]
            begin = offset if current == file_index else 0
            stop = end[1] if current == end[0] else None
            parts.append(text[begin:stop].strip())
        chapters.append(Chapter(title or _first_line(parts[0]), "\n\n".join(p for p in parts if p)))
    return tuple(chapters)
