"""What every command shares: expected failures become one line on stderr and an exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from elevtts.cli.exit_codes import ExitCode, exit_code_for
from elevtts.errors import ElevttsError


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"elevtts: error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def run_guarded() -> Iterator[None]:
    """No traceback for expected failures; Ctrl-C exits 130."""
    try:
        yield
    except ElevttsError as exc:
        raise fail(exc.message, exit_code_for(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", ExitCode.INTERRUPTED) from None
