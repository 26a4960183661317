"""What every command shares: expected failures become a message on stderr and an exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from elevtts.errors import ElevttsError, ExitCode


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"elevtts: error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def run_guarded() -> Iterator[None]:
    """No traceback for expected failures; Ctrl-C exits 130."""
    try:
        yield
    except ElevttsError as exc:
        raise fail(exc.message, exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", ExitCode.INTERRUPTED) from None
