"""What every command shares: expected failures become one line on stderr and an exit code."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer

from elevtts.choices import LogLevel
from elevtts.cli.exit_codes import ExitCode, exit_code_for
from elevtts.errors import ElevttsError

if TYPE_CHECKING:
    import logging

    from elevtts.config import Origin


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"elevtts: error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def run_guarded() -> Iterator[None]:
    """No traceback for expected failures; Ctrl-C and SIGTERM exit 130 after the same clean shutdown."""
    previous = _forward_sigterm()
    try:
        yield
    except ElevttsError as exc:
        raise fail(exc.message, exit_code_for(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", ExitCode.INTERRUPTED) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        _stop_logging()


def _forward_sigterm() -> Any:
    """SIGTERM (`timeout`, `docker stop`) becomes SIGINT, so it takes Ctrl-C's path: asyncio cancels
    the work, `.part` files are kept and named, the batch manifest is saved. Returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None  # signal handlers can only be set from the main thread
    return signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))


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
    _saved_level.append(root.level)
    root.setLevel(level.upper())


_log_handler: logging.Handler | None = None
_saved_level: list[int] = []  # the root logger's level before the command


def _stop_logging() -> None:
    """The command is over: its handler (on its stderr) goes, so a library caller's logging is theirs."""
    global _log_handler
    if _log_handler is not None:
        import logging

        logging.getLogger().removeHandler(_log_handler)
        logging.getLogger().setLevel(_saved_level[0] if _saved_level else logging.WARNING)
        _saved_level.clear()
        _log_handler = None


def origin(ctx: typer.Context, parameter: str, envvar: str) -> Origin:
    """Where an option's value came from: the command line, the environment, or the `.env` file."""
    from elevtts.config import FROM_ENV_FILE

    source = ctx.get_parameter_source(parameter)  # click's ParameterSource (Typer vendors click)
    name = source.name if source is not None else "DEFAULT"
    if name == "COMMANDLINE":
        return "flag"
    if name == "ENVIRONMENT":
        return "env_file" if envvar in FROM_ENV_FILE else "environment"
    return "default"


def api_key_for(ctx: typer.Context, api_key: str | None) -> str | None:
    """The key to send, or None when the URL came only from a `.env` file that did not give the key."""
    from elevtts.config import withholds_key

    if not api_key:
        return api_key
    url_origin = origin(ctx, "url", "ELEVTTS_URL")
    if not withholds_key(url_origin=url_origin, key_origin=origin(ctx, "api_key", "ELEVENLABS_API_KEY")):
        return api_key
    typer.echo(
        "elevtts: not sending the API key: ELEVTTS_URL comes from the .env file, the key does not "
        "(a .env may only send its own key; give --url, or put the key in that .env)",
        err=True,
    )
    return None


def process_started_at() -> float:
    """When elevtts started loading, on the `time.monotonic()` clock: "total" counts the imports too,
    as the user's clock does (the interpreter's own start, some 30 ms, is left out). The process's
    start time in /proc is not used: a shell running `a && elevtts ...` execs into elevtts, so that
    would count what ran before."""
    from elevtts import STARTED_AT

    return STARTED_AT
