"""The playground: a page on `GET /` that speaks through the server's own `stream-input` socket.

Plain HTML, CSS and JavaScript shipped as package data (no CDN, no build step): it works offline.
This module only finds and serves those files; everything the page does runs in the browser.
"""

from __future__ import annotations

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
