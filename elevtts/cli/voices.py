"""`elevtts voices`: the local voices, or those of a server (`--url`, or the live service with a key)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from elevtts.cli.common import api_key_for, configure_logging, run_guarded
from elevtts.cli.options import ApiKeyOpt, DebugOpt, LogLevelOpt, RegionOpt, UrlOpt

if TYPE_CHECKING:
    from elevtts.target import Target


def local_voices() -> list[dict[str, Any]]:
    from elevtts.errors import missing_local_extra

    try:
        from elevtts.server.engines import available_voices
    except ImportError as exc:
        raise missing_local_extra(exc, what="the local voices") from None
    return [v.to_json() for v in available_voices()]


def remote_voices(target: Target, *, timeout: float = 15.0) -> list[dict[str, Any]]:
    """GET /v1/voices over HTTP(S) from the server a WebSocket URL names; the key in a header."""
    import json
    import logging
    import urllib.error
    import urllib.request

    from elevtts.errors import AuthenticationError, ConnectError

    base = (target.base_url or "").replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    request = urllib.request.Request(f"{base}/v1/voices", headers={"Accept": "application/json"})
    if target.api_key:
        request.add_header("xi-api-key", target.api_key)
    log = logging.getLogger("elevtts.voices")
    log.debug("> GET %s/v1/voices (xi-api-key: %s)", base, target.api_key)  # the key is hidden in logs
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (401, 403):
            raise AuthenticationError(
                f"{target.description} refused the API key (HTTP {exc.code})", status=exc.code
            ) from None
        raise ConnectError(
            f"{target.description} answered HTTP {exc.code} for /v1/voices",
            status=exc.code,
            headers=dict(exc.headers.items()),
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConnectError(f"cannot list the voices of {target.description}: {reason}") from None
    voices = data.get("voices") if isinstance(data, dict) else None
    log.debug("< %d voices", len(voices) if isinstance(voices, list) else 0)
    if not isinstance(voices, list):
        raise ConnectError(f"{target.description} sent no voice list")
    return [v for v in voices if isinstance(v, dict)]


def voices(
    ctx: typer.Context,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    region: RegionOpt = "global",
    as_json: Annotated[bool, typer.Option("--json", help="Print the voices as JSON.")] = False,
    debug: DebugOpt = False,
    log_level: LogLevelOpt = None,
) -> None:
    """List the voices: the local ones, or a server's (--url, or the live service with a key)."""
    with run_guarded():
        import json

        configure_logging(debug=debug, log_level=log_level, api_key=api_key)
        api_key = api_key_for(ctx, api_key)

        from elevtts.target import resolve_target

        target = resolve_target(url=url, api_key=api_key, region=region)
        found = local_voices() if target.kind == "embedded" else remote_voices(target)
        if as_json:
            json.dump({"voices": found}, sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        for voice in found:
            labels = voice.get("labels") or {}
            detail = ", ".join(str(v) for v in labels.values() if v) if isinstance(labels, dict) else ""
            typer.echo(f"{voice.get('voice_id', '?'):<24} {voice.get('name', '')}  {detail}".rstrip())
