"""Expected failures and the exit codes they map to.

ElevttsError                 exit_code
  UsageError                 2   a bad option value or combination
  InputError                 3   an input file that cannot be read
  OutputError                4   an output directory or file that cannot be written (disk full too)
  ConnectError               5   the server cannot be reached or refused the handshake
  AuthenticationError        6   the API key was refused
  ServerError                7   the server sent an error frame or closed with an error code
    InactivityTimeout        9   the server closed the stream for inactivity
  ConnectionDropped          8   the connection ended before the audio was complete
    IncompleteAudio          8   the stream ended normally with no audio for text that has some
  BatchIncomplete            10  some files of a batch failed (the others are done)
  Interrupted                130 Ctrl-C
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2
    INPUT = 3
    OUTPUT = 4
    CONNECT = 5
    AUTH = 6
    SERVER = 7
    DROPPED = 8
    INACTIVITY = 9
    BATCH_INCOMPLETE = 10
    INTERRUPTED = 130


class ElevttsError(Exception):
    exit_code = ExitCode.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ElevttsError):
    exit_code = ExitCode.USAGE


class InputError(ElevttsError):
    exit_code = ExitCode.INPUT


class OutputError(ElevttsError):
    exit_code = ExitCode.OUTPUT


class ConnectError(ElevttsError):
    exit_code = ExitCode.CONNECT


class AuthenticationError(ElevttsError):
    exit_code = ExitCode.AUTH


class ServerError(ElevttsError):
    """The server reported an error: `error` is its public name, `code` the close code."""

    exit_code = ExitCode.SERVER

    def __init__(
        self, message: str, *, error: str = "", code: int | None = None, context_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.error = error
        self.code = code
        self.context_id = context_id


class ConnectionDropped(ElevttsError):
    exit_code = ExitCode.DROPPED


class InactivityTimeout(ServerError):
    exit_code = ExitCode.INACTIVITY


class Interrupted(ElevttsError):
    exit_code = ExitCode.INTERRUPTED


class BatchIncomplete(ElevttsError):
    """Some files of a batch failed; the others are done."""

    exit_code = ExitCode.BATCH_INCOMPLETE


class IncompleteAudio(ConnectionDropped):
    """The stream ended normally but brought no audio for text that has some (retried)."""
