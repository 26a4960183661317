"""`elevtts voices`: the local voices, or those of a server (`--url`, or the live service with a key).

The table goes to stdout: a header, aligned columns (id, language, engine, name), the default voice
marked with `*`. `--language de` keeps the voices that speak German, the multilingual `espeak`
(through language_code) included.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from elevtts.cli.common import api_key_for, configure_logging, run_guarded
from elevtts.cli.options import ApiKeyOpt, DebugOpt, LogLevelOpt, RegionOpt, UrlOpt

if TYPE_CHECKING:
    from elevtts.target import Target


def local_voices() -> list[dict[str, Any]]:
    """The voices the embedded server offers, the Piper models of ELEVTTS_PIPER_VOICES included
    (no model is loaded)."""
    from elevtts.errors import missing_local_extra

    try:
        from elevtts.server.engines import add_piper_voices, available_voices
    except ImportError as exc:
        raise missing_local_extra(exc, what="the local voices") from None
    add_piper_voices()
    return [v.to_json() for v in available_voices()]


def _labels(voice: dict[str, Any]) -> dict[str, Any]:
    labels = voice.get("labels")
    return labels if isinstance(labels, dict) else {}


def speaks(voice: dict[str, Any], language: str) -> bool:
    """Whether a listed voice speaks `language` ("de", "pt-BR"): its label or one of its
    verified_languages (a region-less code matches every region)."""
    wanted = language.strip().replace("_", "-").lower()
    labels = _labels(voice)
    codes = [str(labels.get("language") or "")]
    for entry in voice.get("verified_languages") or []:
        if isinstance(entry, dict):
            codes += [str(entry.get("language") or ""), str(entry.get("locale") or "")]
    for code in (c.replace("_", "-").lower() for c in codes if c):
        if code == wanted or code.startswith(wanted + "-"):
            return True
    return False


def voice_table(found: list[dict[str, Any]], *, default_voice: str) -> list[str]:
    """Header and one aligned line per voice; `*` marks the default voice."""
    rows = [(" ", "VOICE_ID", "LANGUAGE", "ENGINE", "NAME")]
    for voice in found:
        labels = _labels(voice)
        languages = len(voice.get("verified_languages") or [])
        language = str(labels.get("language") or "-")
        if languages > 1:
            language += f" +{languages - 1}"  # the others through language_code
        voice_id = str(voice.get("voice_id", "?"))
        marker = "*" if voice_id == default_voice else " "  # the column keeps its width
        engine = str(labels.get("engine") or voice.get("category") or "-")
        rows.append((marker, voice_id, language, engine, str(voice.get("name", ""))))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    return [
        " ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]


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
    language: Annotated[
        str | None,
        typer.Option(
            "--language", metavar="CODE", help="Only the voices that speak this language (de, pt-BR, ...)."
        ),
    ] = None,
) -> None:
    """List the voices: the local ones, or a server's (--url, or the live service with a key).

    Local Piper models are listed from ELEVTTS_PIPER_VOICES (model files or folders)."""
    with run_guarded():
        import json

        configure_logging(debug=debug, log_level=log_level, api_key=api_key)
        api_key = api_key_for(ctx, api_key)

        from elevtts.target import resolve_target

        target = resolve_target(url=url, api_key=api_key, region=region)
        found = local_voices() if target.kind == "embedded" else remote_voices(target)
        if language is not None:
            found = [voice for voice in found if speaks(voice, language)]
        if as_json:
            json.dump({"voices": found}, sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        if not found:
            typer.echo(f"no voice speaks {language!r}" if language else "no voices", err=True)
            return
        for line in voice_table(found, default_voice=target.default_voice):
            typer.echo(line.rstrip())
        if any(voice.get("voice_id") == target.default_voice for voice in found):
            typer.echo("* the default voice", err=True)
