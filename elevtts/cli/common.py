"""What every command shares: expected failures become one line on stderr and an exit code."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

from elevtts.cli.exit_codes import ExitCode, exit_code_for
from elevtts.config import LogLevel
from elevtts.errors import ElevttsError

if TYPE_CHECKING:
    import logging


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


def configure_logging(*, debug: bool, log_level: LogLevel | None, api_key: str | None) -> None:
    """`--debug` / `--log-level`: log records on stderr, every key hidden (see `elevtts.redact`)."""
    level = "debug" if debug else log_level
    if level is None:
        return
    import logging

    from elevtts.redact import register_secret

    global _log_handler
    register_secret(api_key)  # before the first record: the handshake's headers carry it
    root = logging.getLogger()
    if _log_handler is not None:  # one handler, on today's stderr, however often a command runs
        root.removeHandler(_log_handler)
    _log_handler = logging.StreamHandler(sys.stderr)
    _log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(_log_handler)
    root.setLevel(level.upper())


_log_handler: logging.Handler | None = None
