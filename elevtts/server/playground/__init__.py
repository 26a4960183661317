"""The playground: a page on `GET /` that speaks through the server's own `stream-input` socket.

Plain HTML, CSS and JavaScript shipped as package data (no CDN, no build step): it works offline.
This module only finds and serves those files, and the README (from the installed package's
metadata, so it is there offline too) that the page links to; the page runs in the browser.
"""

from __future__ import annotations

import functools
import html
import itertools
import re
from importlib.metadata import PackageNotFoundError, metadata
from importlib.resources import files

from aiohttp import web

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page loads only its own files and talks only to its own server.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "media-src 'self' blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def wants_page(accept: str | None) -> bool:
    """A browser asks for HTML; probes and scripts that ask for nothing in particular keep the
    JSON status `GET /` always answered."""
    return accept is not None and "text/html" in accept


def asset(name: str) -> web.Response:
    if name not in ASSETS:
        raise web.HTTPNotFound(reason=f"no playground file {name!r}")
    body = files(__package__).joinpath(name).read_bytes()
    return web.Response(body=body, headers={"Content-Type": ASSETS[name], **SECURITY_HEADERS})


async def serve_asset(request: web.Request) -> web.Response:
    return asset(request.match_info["name"])


@functools.cache
def readme_html() -> str | None:
    """The README as HTML, each heading with GitHub's anchor; None when the package has no
    metadata (run from a plain checkout). Raw HTML in it is escaped and images are shown as
    their text: the page loads nothing that is not its own."""
    from markdown_it import MarkdownIt

    try:
        text = metadata("elevtts").get_payload()  # type: ignore[attr-defined]
    except PackageNotFoundError:
        return None
    if not text:
        return None
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("image", lambda _renderer, tokens, index, *_: html.escape(tokens[index].content))
    tokens = md.parse(text)
    for opening, inline in itertools.pairwise(tokens):
        if opening.type == "heading_open":
            opening.attrSet("id", _anchor(inline.content))
    body = md.renderer.render(tokens, md.options, {})
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>elevtts README</title>'
        '<link rel="stylesheet" href="/playground/style.css"><link rel="icon" href="data:,"></head>'
        f'<body class="readme"><p><a href="/">back to the playground</a></p>{body}</body></html>'
    )


def _anchor(heading: str) -> str:
    """GitHub's rule: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


async def serve_readme(request: web.Request) -> web.Response:
    page = readme_html()
    if page is None:
        raise web.HTTPNotFound(reason="this installation has no README in its metadata")
    return web.Response(
        body=page.encode(), headers={"Content-Type": ASSETS["index.html"], **SECURITY_HEADERS}
    )
