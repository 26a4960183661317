"""Which browser pages may open a WebSocket on this server: the `Origin` rule.

Pure: the `Origin` and `Host` headers in, a yes or no out. A browser always sends `Origin` on a
WebSocket upgrade, and a page cannot forge it; other clients (the SDK, agents, `elevtts speak`)
send none and are unaffected. Without this check any page the user visits could speak through a
server on their loopback (WebSockets are not covered by CORS).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_allowed(
    origin: str | None, *, host: str | None, secure: bool, cors_origins: Iterable[str]
) -> bool:
    """True for no `Origin`, the server's own origin (`host` as the client addressed it, over
    http or https as `secure` says), or one of `cors_origins` (`--cors-origin`)."""
    if origin is None:
        return True
    wanted = _normal(origin)
    if wanted is None:
        return False  # "null" (a sandboxed frame, a file: page) or garbage
    if any(wanted == _normal(allowed) for allowed in cors_origins):
        return True
    return host is not None and wanted == _normal(f"{'https' if secure else 'http'}://{host}")


def _normal(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the default port filled in; None when it is no origin."""
    try:
        split = urlsplit(origin.strip())
        port = split.port
    except ValueError:
        return None
    scheme = split.scheme.lower()
    if scheme not in DEFAULT_PORTS or not split.hostname:
        return None
    return scheme, split.hostname.lower(), port or DEFAULT_PORTS[scheme]
