"""Which server a command talks to: `--url`, the ElevenLabs service, or the embedded local server.

With an explicit URL, that server. With an API key and no URL, the live service (regional host
selectable). With neither, a local server started in-process on an ephemeral loopback port for
the duration of the command, reached over a real WebSocket like any other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from elevtts.errors import UsageError, missing_local_extra

if TYPE_CHECKING:
    from elevtts.client import Endpoint

TargetKind = Literal["embedded", "url", "elevenlabs"]
Region = Literal["global", "us", "eu", "in", "sg"]
ELEVENLABS_HOSTS: dict[Region, str] = {
    "global": "wss://api.elevenlabs.io",
    "us": "wss://api.us.elevenlabs.io",
    "eu": "wss://api.eu.residency.elevenlabs.io",
    "in": "wss://api.in.residency.elevenlabs.io",
    "sg": "wss://api.sg.residency.elevenlabs.io",
}
LOCAL_DEFAULT_VOICE = "joe"
ELEVENLABS_DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", the voice of ElevenLabs' own examples


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)

    @property
    def default_voice(self) -> str:
        return ELEVENLABS_DEFAULT_VOICE if self.kind == "elevenlabs" else LOCAL_DEFAULT_VOICE

    @property
    def description(self) -> str:
        if self.kind == "embedded":
            return "embedded local server"
        return display_url(self.base_url or "")


def display_url(url: str) -> str:
    """The URL without query or credentials, safe to print."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def resolve_target(*, url: str | None, api_key: str | None, region: Region = "global") -> Target:
    """The server to talk to. `region` is checked even when it is not used, so a typo never waits."""
    if region not in ELEVENLABS_HOSTS:
        raise UsageError(f"--region must be one of {', '.join(ELEVENLABS_HOSTS)}, not {region!r}")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise UsageError(f"--url must be a ws:// or wss:// URL with a host, not {url!r}")
        if parts.username or parts.password or parts.query:
            raise UsageError("--url must not carry credentials or a query; use --api-key for the key")
        return Target("url", url.rstrip("/"), api_key)
    if api_key:
        return Target("elevenlabs", ELEVENLABS_HOSTS[region], api_key)
    return Target("embedded")


@contextlib.asynccontextmanager
async def open_endpoint(
    target: Target,
    *,
    voices: tuple[str, ...] = (),
    on_status: Callable[[str], None] | None = None,
) -> AsyncIterator[Endpoint]:
    """Yield an endpoint for the target, running the embedded server while it is in use.

    `voices` are loaded before the endpoint is yielded (`on_status` hears "loading voice ...",
    and `endpoint.voice_load_ms` says how long it took); with none, `load_voices` can load them
    later, only if there turns out to be something to speak.
    """
    from elevtts.client import Endpoint

    if target.kind != "embedded":
        yield Endpoint(target.base_url or "", target.api_key)
        return
    try:
        from elevtts.server.app import ServerConfig, server_url, start_server
        from elevtts.server.engines import add_piper_voices
    except ImportError as exc:
        raise missing_local_extra(
            exc, what="the embedded local server", alternative="or give --url or ELEVENLABS_API_KEY"
        ) from None
    add_piper_voices()  # the user's own Piper models, from ELEVTTS_PIPER_VOICES
    server, app = await start_server(ServerConfig(port=0), preload=False)
    endpoint = Endpoint(server_url(server))
    _embedded[endpoint.base_url] = app
    try:
        if voices:
            endpoint = await load_voices(endpoint, voices, on_status=on_status)
        yield endpoint
    finally:
        _embedded.pop(endpoint.base_url, None)
        server.close()
        await server.wait_closed()


_embedded: dict[str, Any] = {}  # the embedded server's state, by the URL of its endpoint


async def load_voices(
    endpoint: Endpoint, voices: tuple[str, ...], *, on_status: Callable[[str], None] | None = None
) -> Endpoint:
    """Load these voices into the embedded server behind `endpoint` (nothing for other servers);
    returns the endpoint with the time it took in `voice_load_ms`."""
    app = _embedded.get(endpoint.base_url)
    if app is None:
        return endpoint
    to_load = [v for v in voices if v in app.voice_ids]
    if not to_load:
        return endpoint
    if on_status is not None:
        on_status(f"loading voice {', '.join(to_load)}...")
    started = time.monotonic()
    await app.preload(to_load, warm_up=False)
    return dataclasses.replace(endpoint, voice_load_ms=round((time.monotonic() - started) * 1000, 1))
