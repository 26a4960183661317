"""The playground page on `GET /`, and the `Origin` rule on WebSocket upgrades.

The page itself runs in a real browser in tests/browser; here: the pure rule, and what the real
server answers (files, content types, headers, refusals) to plain HTTP and WebSocket clients.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from urllib.error import HTTPError
from urllib.parse import urlsplit

import pytest
from conftest import exchange, run, run_local_server
from websockets.exceptions import InvalidStatus

from elevtts.server.app import ServerConfig
from elevtts.server.origin import origin_allowed

PAGE_ORIGIN = "http://page.test"


# -- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "secure", "allowed"),
    [
        (None, "127.0.0.1:8765", False, True),  # the SDK, agents, `elevtts speak`: no Origin
        ("http://127.0.0.1:8765", "127.0.0.1:8765", False, True),  # the page on this server
        ("HTTP://LocalHost:8765", "localhost:8765", False, True),  # case does not matter
        ("http://example.com", "example.com:80", False, True),  # the default port, written or not
        ("https://example.com", "example.com", True, True),
        ("http://127.0.0.1:8765", "127.0.0.1:8765", True, False),  # the page over http, server over https
        ("http://127.0.0.1:9999", "127.0.0.1:8765", False, False),  # another port is another origin
        ("http://evil.test", "127.0.0.1:8765", False, False),
        ("http://localhost:8765", "127.0.0.1:8765", False, False),  # the name the client used counts
        ("null", "127.0.0.1:8765", False, False),  # a sandboxed frame or a file: page
        ("file://", "127.0.0.1:8765", False, False),
        ("http://[::1", "127.0.0.1:8765", False, False),  # garbage
        ("http://127.0.0.1:8765", None, False, False),  # no Host: nothing is its own origin
        (PAGE_ORIGIN, "127.0.0.1:8765", False, True),  # --cors-origin
        (f"{PAGE_ORIGIN}:80", "127.0.0.1:8765", False, True),
        ("https://page.test", "127.0.0.1:8765", False, False),
    ],
)
def test_origin_rule(origin: str | None, host: str | None, secure: bool, allowed: bool) -> None:
    assert origin_allowed(origin, host=host, secure=secure, cors_origins=(PAGE_ORIGIN,)) is allowed


# -- the real server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), cors_origins=(PAGE_ORIGIN,)))
    yield url
    thread.stop()


def http_of(url: str) -> str:
    return url.replace("ws://", "http://", 1)


def get(url: str, *, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_browser_gets_the_page_and_a_probe_still_gets_the_status(server: str) -> None:
    status, headers, body = get(f"{http_of(server)}/", accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert '<script src="/playground/app.js"' in page and 'href="/playground/style.css"' in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    status, headers, body = get(f"{http_of(server)}/")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


@pytest.mark.parametrize(("name", "content_type"), [("app.js", "text/javascript"), ("style.css", "text/css")])
def test_the_page_files_are_served_with_their_types(server: str, name: str, content_type: str) -> None:
    status, headers, body = get(f"{http_of(server)}/playground/{name}")
    assert status == 200 and headers["Content-Type"].startswith(content_type) and len(body) > 1000
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_loads_nothing_from_elsewhere(server: str) -> None:
    """No CDN: every URL in the page's files is a path on this server (the browser test checks
    the requests the page really makes)."""
    for name in ("", "playground/app.js", "playground/style.css"):
        _, _, body = get(f"{http_of(server)}/{name}", accept="text/html")
        text = body.decode()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text


def test_unknown_page_files_are_a_json_404(server: str) -> None:
    for name in ("missing.js", "..%2f__init__.py", "__init__.py"):
        status, headers, body = get(f"{http_of(server)}/playground/{name}")
        assert status == 404 and headers["Content-Type"] == "application/json"
        assert json.loads(body)["detail"]["status"] == "not_found"


SPEAK = [{"text": " "}, {"text": "Hello there. "}, {"text": ""}]


def test_a_foreign_origin_is_refused_at_the_handshake(server: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        run(
            exchange(
                f"{server}/v1/text-to-speech/espeak/stream-input",
                SPEAK,
                headers={"Origin": "http://evil.test"},
            )
        )
    response = refused.value.response
    assert response.status_code == 403
    assert json.loads(response.body)["detail"]["status"] == "origin_not_allowed"


@pytest.mark.parametrize(
    "origin", [None, "own", PAGE_ORIGIN], ids=["no Origin", "its own origin", "a --cors-origin"]
)
def test_allowed_origins_speak(server: str, origin: str | None) -> None:
    if origin == "own":
        origin = f"http://127.0.0.1:{urlsplit(server).port}"
    headers = {"Origin": origin} if origin else {}
    result = run(exchange(f"{server}/v1/text-to-speech/espeak/stream-input", SPEAK, headers=headers))
    assert result.close_code == 1000 and result.audio() and result.finals()


def test_the_page_files_are_package_data() -> None:
    """A wheel carries the three files (setuptools' package-data globs), so `serve` from an
    installed package answers the page as it does from this checkout."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from elevtts.server import playground

    repo = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "elevtts"
    ]
    for name in playground.ASSETS:
        assert (repo / "elevtts" / "server" / "playground" / name).is_file()
        assert any(fnmatch.fnmatch(f"server/playground/{name}", glob) for glob in globs), name


def test_the_readme_sections_the_page_links_to_are_served(server: str) -> None:
    """The page links to the API's README sections; the server answers them from the installed
    package's metadata (offline too), with GitHub's anchors, as its own HTML only."""
    _, _, page = get(f"{http_of(server)}/", accept="text/html")
    anchors = re.findall(r'href="/playground/readme#([^"]+)"', page.decode())
    assert {"elevtts-serve", "playground"} <= set(anchors) and len(anchors) == 3
    status, headers, body = get(f"{http_of(server)}/playground/readme")
    readme = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for anchor in anchors:
        assert f'id="{anchor}"' in readme, anchor
    assert "stream-input" in readme and "<table>" in readme
    assert "<img" not in readme and "<script" not in readme  # images as their text, raw HTML escaped
