"""Exit codes: chosen here, in the CLI layer, from the type of the library's error."""

from __future__ import annotations

from enum import IntEnum

from elevtts.errors import (
    AuthenticationError,
    BatchIncomplete,
    ConnectError,
    ConnectionDropped,
    ElevttsError,
    InactivityTimeout,
    InputError,
    Interrupted,
    OutputError,
    ServerError,
    UsageError,
)


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


# Most specific first: InactivityTimeout is a ServerError with its own code.
_BY_TYPE: tuple[tuple[type[ElevttsError], ExitCode], ...] = (
    (UsageError, ExitCode.USAGE),
    (InputError, ExitCode.INPUT),
    (OutputError, ExitCode.OUTPUT),
    (AuthenticationError, ExitCode.AUTH),
    (ConnectError, ExitCode.CONNECT),
    (InactivityTimeout, ExitCode.INACTIVITY),
    (ServerError, ExitCode.SERVER),
    (ConnectionDropped, ExitCode.DROPPED),
    (BatchIncomplete, ExitCode.BATCH_INCOMPLETE),
    (Interrupted, ExitCode.INTERRUPTED),
)


def exit_code_for(error: ElevttsError) -> ExitCode:
    for kind, code in _BY_TYPE:
        if isinstance(error, kind):
            return code
    return ExitCode.USAGE


_MEANINGS = {
    ExitCode.OK: "done",
    ExitCode.USAGE: "a bad option value or combination",
    ExitCode.INPUT: "an input file that cannot be read, or nothing to speak",
    ExitCode.OUTPUT: "an output directory or file that cannot be written",
    ExitCode.CONNECT: "the server cannot be reached or refused the handshake",
    ExitCode.AUTH: "the API key was refused",
    ExitCode.SERVER: "the server sent an error or closed with an error code",
    ExitCode.DROPPED: "the connection ended before the audio was complete (the .part is kept)",
    ExitCode.INACTIVITY: "the server closed the stream for inactivity",
    ExitCode.BATCH_INCOMPLETE: "some files of a batch failed (the others are done)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}
# Shown at the end of `speak --help` and `batch --help` (Rich markup: one line each).
EXIT_CODES_HELP = "[bold]Exit codes[/bold]\n\n" + "\n\n".join(
    f"[bold]{int(code):>3}[/bold] {meaning}" for code, meaning in _MEANINGS.items()
)
