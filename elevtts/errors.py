"""Expected failures: one tree, each error carrying what a caller needs to react to it.

ElevttsError                 the root, for the client and the server alike
  UsageError                 a bad option value or combination
  InputError                 an input file that cannot be read, or nothing to speak
  OutputError                an output directory or file that cannot be written (disk full too)
  ConnectError               the server cannot be reached or refused the handshake (`status`, `headers`)
  AuthenticationError        the API key was refused (`status` when it was the handshake)
  ServerError                the server sent an error frame or closed with an error code (`error`, `code`)
    InactivityTimeout        the server closed the stream for inactivity
  ConnectionDropped          the connection ended before the audio was complete
    IncompleteAudio          the stream ended normally with no audio for text that has some
  BatchIncomplete            some files of a batch failed (the others are done)
  Interrupted                Ctrl-C or SIGTERM

The library raises these and knows nothing of exit codes: the command line chooses them from the
type (`elevtts.cli.exit_codes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class ElevttsError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ElevttsError):
    pass


class InputError(ElevttsError):
    pass


class OutputError(ElevttsError):
    pass


class ConnectError(ElevttsError):
    """`status` and `headers` are the HTTP response's when the handshake was refused, else None/empty."""

    def __init__(
        self, message: str, *, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        # Lower-case names: HTTP header names are case-insensitive.
        self.headers: Mapping[str, str] = MappingProxyType({k.lower(): v for k, v in (headers or {}).items()})


class AuthenticationError(ElevttsError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerError(ElevttsError):
    """The server reported an error: `error` is its public name, `code` the close code."""

    def __init__(
        self, message: str, *, error: str = "", code: int | None = None, context_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.error = error
        self.code = code
        self.context_id = context_id


class ConnectionDropped(ElevttsError):
    pass


class InactivityTimeout(ServerError):
    pass


class Interrupted(ElevttsError):
    pass


class BatchIncomplete(ElevttsError):
    """Some files of a batch failed; the others are done."""


class IncompleteAudio(ConnectionDropped):
    """The stream ended normally but brought no audio for text that has some (retried)."""


def missing_local_extra(exc: ImportError, *, what: str, alternative: str = "") -> UsageError:
    """A missing optional dependency: how to install it (elevtts is installed from its repository)."""
    return UsageError(
        f"{what} needs the 'local' extra ({exc.name} is missing): "
        "pip install -e '.[local]' in your elevtts checkout" + (f", {alternative}" if alternative else "")
    )
