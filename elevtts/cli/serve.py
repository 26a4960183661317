"""`elevtts serve`: the local server; its library is imported when the command runs."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from elevtts.cli.common import fail
from elevtts.cli.exit_codes import ExitCode
from elevtts.config import LogLevel


def serve(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, metavar="PORT", help="Port; 0 picks a free one.")
    ] = 8765,
    voice: Annotated[
        list[str] | None,
        typer.Option("--voice", metavar="VOICE_ID", help="Serve only this voice (repeatable). Default: all."),
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
            exists=True, dir_okay=False, metavar="PATH", help="TLS certificate (PEM): serve wss://."
        ),
    ] = None,
    keyfile: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, metavar="PATH", help="TLS private key (PEM)."),
    ] = None,
    dictionary: Annotated[
        list[Path] | None,
        typer.Option(
            "--dictionary",
            exists=True,
            dir_okay=False,
            metavar="PATH",
            help="W3C PLS lexicon to offer (repeatable).",
        ),
    ] = None,
    slots: Annotated[
        int,
        typer.Option(min=1, max=16, metavar="N", help="Pieces synthesized at once, shared by all streams."),
    ] = 1,
    fallback_voice: Annotated[
        str | None,
        typer.Option(
            metavar="VOICE_ID",
            help="Speak any unknown voice_id with this voice (agents configured with service voice ids). "
            "Default: unknown ids are refused.",
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="How much the server logs (on stderr).")] = "info",
) -> None:
    """Run a local server that speaks the stream-input and multi-stream-input protocols offline."""
    import asyncio
    import logging
    import os
    import ssl

    from elevtts.errors import missing_local_extra
    from elevtts.redact import RedactSecrets

    if api_key is not None and not api_key.strip():
        # An empty key would look like protection while it lets every client in.
        raise fail("--api-key must not be empty (leave it out to serve without a key)", ExitCode.USAGE)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets(api_key))  # every log line, ours and the libraries'

    try:
        from elevtts.server.app import ServerConfig, serve_forever
        from elevtts.server.dictionary import DictionaryStore, load_lexicon
        from elevtts.server.engines import available_voices
    except ImportError as exc:
        raise fail(missing_local_extra(exc, what="elevtts serve").message, ExitCode.USAGE) from None

    known = [v.voice_id for v in available_voices()]
    served = voice or known
    unknown = [v for v in [*(voice or []), *([fallback_voice] if fallback_voice else [])] if v not in known]
    if unknown:
        typer.echo(
            f"elevtts serve: unknown voice {', '.join(unknown)}; available: {', '.join(known)}", err=True
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
    )

    def ready(url: str) -> None:
        print(url, flush=True)  # stdout: for scripts
        typer.echo(
            f"elevtts serve: listening on {url} (voices: {', '.join(voice or known)}); Ctrl-C to stop",
            err=True,
        )

    try:
        asyncio.run(_run_until_signal(serve_forever(config, ready=ready)))
    except OSError as exc:
        # asyncio's bind error repeats the address in strerror: the plain errno text reads better
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        typer.echo(f"elevtts serve: cannot listen on {host}:{port}: {reason}", err=True)
        raise typer.Exit(ExitCode.CONNECT) from None
    except KeyboardInterrupt:
        pass
    typer.echo("elevtts serve: stopped", err=True)


async def _run_until_signal(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` and cancel it cleanly on SIGTERM or SIGINT."""
    import asyncio
    import signal

    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
