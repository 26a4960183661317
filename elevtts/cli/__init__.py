"""The `elevtts` command line: thin Typer commands over the library, composed here.

Each command module declares a plain function and imports its library code only when it runs,
so `elevtts --help` costs little more than Typer itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elevtts import __version__
from elevtts.cli import batch, bench, book, serve, speak, voices
from elevtts.cli.common import run_guarded
from elevtts.cli.exit_codes import EXIT_CODES_HELP

app = typer.Typer(
    name="elevtts",
    help="Streaming text to speech over the ElevenLabs stream-input WebSocket, online or fully offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # expected failures get a message and an exit code, not a traceback
    pretty_exceptions_show_locals=False,  # and an unexpected one never prints a key
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"elevtts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            metavar="PATH",
            help="Read settings from this file instead of ./.env (the current directory's only).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Streaming text to speech over the ElevenLabs stream-input WebSocket."""
    # Runs before the command's options are read, so their environment variables can come from .env.
    from elevtts.config import load_env_file

    with run_guarded():
        load_env_file(env_file)


app.command(name="speak", epilog=EXIT_CODES_HELP)(speak.speak_command)
app.command(name="batch", epilog=EXIT_CODES_HELP)(batch.batch_command)
app.command(name="book", epilog=EXIT_CODES_HELP)(book.book_command)
app.command(name="serve")(serve.serve)
app.command(name="voices")(voices.voices)
app.command(name="bench")(bench.bench_command)


def main() -> None:
    app()
