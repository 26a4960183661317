"""`elevtts serve`: the local server; its library is imported when the command runs."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from elevtts.choices import LogLevel
from elevtts.cli.common import fail
from elevtts.cli.exit_codes import ExitCode

LogFormat = Literal["text", "json"]

if TYPE_CHECKING:
    from elevtts.server.http import Shutdown

# Every flag can come from the environment (a container needs no command line); a repeatable
# flag's variable holds its values separated by spaces.
ENV = "ELEVTTS_"


def serve(
    host: Annotated[
        str,
        typer.Option(
            envvar=f"{ENV}HOST", metavar="ADDRESS", help="Address to listen on (loopback by default)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(envvar=f"{ENV}PORT", min=0, max=65535, metavar="PORT", help="Port; 0 picks a free one."),
    ] = 8765,
    voice: Annotated[
        list[str] | None,
        typer.Option(
            "--voice",
            envvar=f"{ENV}SERVE_VOICE",  # not ELEVTTS_VOICE: that is the voice `speak` uses
            metavar="VOICE_ID",
            help="Serve only this voice (repeatable). Default: all.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="ELEVTTS_SERVER_API_KEY",
            metavar="KEY",
            help="Require this key (xi-api-key header, authorization, or first message).",
            show_default=False,
        ),
    ] = None,
    certfile: Annotated[
        Path | None,
        typer.Option(
            envvar=f"{ENV}CERTFILE",
            exists=True,
            dir_okay=False,
            metavar="PATH",
            help="TLS certificate (PEM): serve wss:// and https://.",
        ),
    ] = None,
    keyfile: Annotated[
        Path | None,
        typer.Option(
            envvar=f"{ENV}KEYFILE", exists=True, dir_okay=False, metavar="PATH", help="TLS private key (PEM)."
        ),
    ] = None,
    dictionary: Annotated[
        list[Path] | None,
        typer.Option(
            "--dictionary",
            envvar=f"{ENV}DICTIONARY",
            exists=True,
            dir_okay=False,
            metavar="PATH",
            help="W3C PLS lexicon to offer (repeatable).",
        ),
    ] = None,
    slots: Annotated[
        int,
        typer.Option(
            envvar=f"{ENV}SLOTS",
            min=1,
            max=16,
            metavar="N",
            help="Pieces synthesized at once, shared by all streams and requests.",
        ),
    ] = 1,
    piper_voice: Annotated[
        list[Path] | None,
        typer.Option(
            "--piper-voice",
            envvar="ELEVTTS_PIPER_VOICES",  # paths joined by ':' (click.Path splits on os.pathsep)
            metavar="PATH",
            help="Also serve your own Piper model: NAME.onnx beside its NAME.onnx.json, or a folder of "
            "them; its voice id is NAME (repeatable; in ELEVTTS_PIPER_VOICES, paths joined by ':').",
            show_default=False,
        ),
    ] = None,
    fallback_voice: Annotated[
        str | None,
        typer.Option(
            envvar=f"{ENV}FALLBACK_VOICE",
            metavar="VOICE_ID",
            help="Speak any unknown voice_id with this voice (agents configured with service voice ids). "
            "Default: unknown ids are refused.",
        ),
    ] = None,
    voice_map: Annotated[
        str | None,
        typer.Option(
            envvar=f"{ENV}VOICE_MAP",
            metavar="NAME=VOICE_ID,...",
            help="OpenAI voice names to served voices for /v1/audio/speech, e.g. alloy=joe,echo=espeak. "
            "Default: every OpenAI voice speaks with joe (else the first served voice).",
            show_default=False,
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            envvar=f"{ENV}CORS_ORIGIN",
            metavar="ORIGIN",
            help="Let browser pages from this origin (e.g. http://localhost:3000) call the HTTP API "
            "(repeatable). Default: none.",
        ),
    ] = None,
    max_queue: Annotated[
        int,
        typer.Option(
            envvar=f"{ENV}MAX_QUEUE",
            min=0,
            metavar="N",
            help="HTTP requests that may wait for a free slot; more get 429 with Retry-After.",
        ),
    ] = 16,
    max_text_chars: Annotated[
        int | None,
        typer.Option(
            envvar=f"{ENV}MAX_TEXT_CHARS",
            min=1,
            metavar="N",
            help="Longest text of one HTTP request. Default: the live API's limit for the model "
            "(10,000 for eleven_multilingual_v2, 40,000 for flash/turbo v2.5).",
            show_default=False,
        ),
    ] = None,
    drain_timeout: Annotated[
        float,
        typer.Option(
            envvar=f"{ENV}DRAIN_TIMEOUT",
            min=0,
            metavar="SECONDS",
            help="On SIGTERM/SIGINT, let open sessions finish for this long (new ones get 503), then "
            "close the rest with 1012. A second signal stops at once.",
        ),
    ] = 30.0,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            envvar=f"{ENV}LOG_FORMAT",
            help="Log lines on stderr as text, or as JSON objects (one a line) for a log pipeline.",
        ),
    ] = "text",
    log_level: Annotated[
        LogLevel, typer.Option(envvar=f"{ENV}LOG_LEVEL", help="How much the server logs (on stderr).")
    ] = "info",
) -> None:
    """Run a local server: the stream-input and multi-stream-input WebSockets, the ElevenLabs REST
    text-to-speech API and OpenAI's /v1/audio/speech, offline, on one port."""
    import asyncio
    import logging
    import os
    import ssl

    from elevtts.errors import missing_local_extra
    from elevtts.logs import configure as configure_logs
    from elevtts.logs import log_event
    from elevtts.redact import RedactSecrets

    if api_key is not None and not api_key.strip():
        # An empty key would look like protection while it lets every client in.
        raise fail("--api-key must not be empty (leave it out to serve without a key)", ExitCode.USAGE)
    handler = configure_logs(log_level, log_format)
    handler.addFilter(RedactSecrets(api_key))  # every log line, ours and the libraries'
    log = logging.getLogger("elevtts.server")

    try:
        from elevtts.server.app import ServerConfig, serve_forever
        from elevtts.server.dictionary import DictionaryStore, load_lexicon
        from elevtts.server.engines import VoiceModelError, add_piper_voices, available_voices
    except ImportError as exc:
        raise fail(missing_local_extra(exc, what="elevtts serve").message, ExitCode.USAGE) from None
    try:
        add_piper_voices(piper_voice or ())
    except VoiceModelError as exc:
        typer.echo(f"elevtts serve: {exc.message}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None

    known = [v.voice_id for v in available_voices()]
    served = voice or known
    unknown = [v for v in [*(voice or []), *([fallback_voice] if fallback_voice else [])] if v not in known]
    if unknown:
        typer.echo(
            f"elevtts serve: unknown voice {', '.join(unknown)}; list them with `elevtts voices`", err=True
        )
        raise typer.Exit(ExitCode.USAGE)
    if fallback_voice and fallback_voice not in served:
        typer.echo(
            f"elevtts serve: --fallback-voice {fallback_voice} is not among the served voices", err=True
        )
        raise typer.Exit(ExitCode.USAGE)
    if (certfile is None) != (keyfile is None):
        typer.echo("elevtts serve: --certfile and --keyfile go together", err=True)
        raise typer.Exit(ExitCode.USAGE)
    try:
        voice_pairs = _voice_map(voice_map or "", served)
    except ValueError as exc:
        typer.echo(f"elevtts serve: --voice-map: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    ssl_context = None
    if certfile is not None and keyfile is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, OSError) as exc:
            typer.echo(
                f"elevtts serve: cannot load the certificate {certfile} with the key {keyfile} "
                f"(both must be PEM and match): {exc}",
                err=True,
            )
            raise typer.Exit(ExitCode.USAGE) from None
    store = DictionaryStore()
    for path in dictionary or []:
        try:
            lexicon = load_lexicon(path)
        except (OSError, ValueError) as exc:
            typer.echo(f"elevtts serve: {path}: {exc}", err=True)
            raise typer.Exit(ExitCode.INPUT) from None
        store.add(lexicon)
        locator = f"{lexicon.dictionary_id}:{lexicon.version_id}"  # what speak's option takes
        typer.echo(
            f"dictionary {lexicon.name}: --pronunciation-dictionary {locator}",
            err=True,
        )
    config = ServerConfig(
        host=host,
        port=port,
        api_key=api_key,
        voices=tuple(voice or ()),
        dictionaries=store,
        synthesis_slots=slots,
        ssl_context=ssl_context,
        fallback_voice=fallback_voice,
        max_queue=max_queue,
        max_text_chars=max_text_chars,
        cors_origins=tuple(cors_origin or ()),
        voice_map=voice_pairs,
        drain_timeout_s=drain_timeout,
    )

    def ready(url: str) -> None:
        print(url, flush=True)  # stdout: for scripts
        if log_format == "json":
            log_event(log, "listening", url=url, voices=list(voice or known), drain_timeout_s=drain_timeout)
            return
        typer.echo(
            f"elevtts serve: listening on {url}, HTTP API at {url.replace('ws', 'http', 1)} "
            f"(voices: {_summary(voice or known)}); Ctrl-C to stop",
            err=True,
        )

    try:
        asyncio.run(_serve_until_signals(lambda stop: serve_forever(config, ready=ready, shutdown=stop)))
    except OSError as exc:
        # asyncio's bind error repeats the address in strerror: the plain errno text reads better
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        typer.echo(f"elevtts serve: cannot listen on {host}:{port}: {reason}", err=True)
        raise typer.Exit(ExitCode.CONNECT) from None
    except VoiceModelError as exc:  # a model that could not be loaded at start-up
        typer.echo(f"elevtts serve: {exc.message}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except KeyboardInterrupt:
        pass
    if log_format == "json":
        log_event(log, "stopped")
    else:
        typer.echo("elevtts serve: stopped", err=True)


def _voice_map(text: str, served: list[str]) -> tuple[tuple[str, str], ...]:
    """`alloy=joe,echo=espeak` -> pairs; each voice must be served."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, voice_id = (side.strip() for side in item.partition("="))
        if not sep or not name or not voice_id:
            raise ValueError(f"{item!r} is not NAME=VOICE_ID")
        if voice_id not in served:
            raise ValueError(f"{voice_id} is not a served voice ({', '.join(served)})")
        pairs.append((name, voice_id))
    return tuple(pairs)


def _summary(voice_ids: list[str]) -> str:
    """The served voices in one line: the espeak-ng languages counted, not named."""
    languages = [v for v in voice_ids if v.startswith("espeak-")]
    others = [v for v in voice_ids if v not in languages]
    if len(languages) <= 3:
        return ", ".join(voice_ids)
    return ", ".join([*others, f"{len(languages)} espeak-ng languages (espeak-<tag>)"])


async def _serve_until_signals(main: Callable[[Shutdown], Coroutine[Any, Any, None]]) -> None:
    """Run `main(shutdown)`: SIGTERM or SIGINT starts its drain, a second one ends the drain."""
    import asyncio
    import signal

    from elevtts.server.app import Shutdown

    shutdown = Shutdown()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.signal)
    await main(shutdown)
