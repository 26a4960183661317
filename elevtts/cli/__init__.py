"""The `elevtts` command line: thin Typer commands over the library."""

from __future__ import annotations

import typer

from elevtts import __version__

app = typer.Typer(
    name="elevtts",
    help="Streaming text to speech over the ElevenLabs stream-input WebSocket, online or fully offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # expected failures get a message and an exit code, not a traceback
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"elevtts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Streaming text to speech over the ElevenLabs stream-input WebSocket."""


# Importing the modules registers their commands.
from elevtts.cli import batch as _batch  # noqa: E402,F401
from elevtts.cli import bench as _bench  # noqa: E402,F401
from elevtts.cli import serve as _serve  # noqa: E402,F401
from elevtts.cli import speak as _speak  # noqa: E402,F401
from elevtts.cli import voices as _voices  # noqa: E402,F401


def main() -> None:
    # Settings precedence: flags, then the environment, then .env (which never overrides the environment).
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)
    app()
