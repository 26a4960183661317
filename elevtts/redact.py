"""Keep API keys out of logs, whoever logs and whoever configures logging.

At debug level websockets logs every request header and every frame, and a frame's text is
elided in the middle (`'{"text": ...` + `...` + the last characters), so a key can appear whole,
after its name, or as a bare piece with its name cut away. Two rules cover that:

- a value after `xi-api-key`, `xi_api_key` or `authorization` (header, query or JSON; after a
  scheme such as `Bearer`) is hidden, known or not: a wrong key a client sent may be a real one;
- a registered or already-seen key is hidden wherever `MIN_FRAGMENT` or more of its characters
  appear in a row, so an elided frame cannot show its head or its tail. A logged frame's whole
  payload (both ends of it) is read for named keys before its elided text is made.

The rules run in a log-record factory, once per record and after `msg % args` (so a key split
across arguments is seen whole), before any handler or filter of any logger sees the record.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

MIN_FRAGMENT = 6  # shorter runs of a key carry too little of it to matter, and occur by chance
MASK = "***"
_MAX_LEARNED = 64  # keys seen after their name, remembered to hide their pieces later (bounded)
# An elided frame shows only its first and last few dozen characters, so only a key near either
# end can show; reading this much of each end of a payload finds it without scanning 16 MiB.
_PAYLOAD_WINDOW = 4096

_ASSIGNED = re.compile(
    r"""(?P<name>xi[-_]api[-_]key|authorization)(?P<sep>["']?\s*[:=]\s*["']?(?:[a-z]+\s+)?)"""
    r"""(?P<value>[^\s"'&,;}\]]+)""",
    re.IGNORECASE,
)

_lock = threading.Lock()
_registered: dict[str, None] = {}  # keys this process holds (insertion-ordered set)
_learned: OrderedDict[str, None] = OrderedDict()  # keys seen in logs, most recent last
_installed = False


def register_secret(secret: str | None) -> None:
    """Hide `secret` (and its pieces) in every log record from now on."""
    secret = (secret or "").strip()
    if secret:
        with _lock:
            _registered[secret] = None
    _install()


def protect_websockets_logs(api_key: str | None = None) -> None:
    """Redact keys in every log record (websockets' included); `api_key`: a key to register."""
    register_secret(api_key)


class RedactSecrets(logging.Filter):
    """A filter for handlers one configures: registers `api_key` for every logger and applies
    the same rules to each record it sees (records made before the factory was installed)."""

    def __init__(self, api_key: str | None) -> None:
        super().__init__()
        register_secret(api_key)

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def redact(text: str, *, secrets: Iterable[str] = ()) -> str:
    """`text` with named key values and every piece of `secrets` replaced by `***`."""
    text = _ASSIGNED.sub(lambda m: m.group("name") + m.group("sep") + MASK, text)
    for secret in secrets:
        text = _hide_pieces(text, secret)
    return text


def _hide_pieces(text: str, secret: str) -> str:
    """Hide every run of `MIN_FRAGMENT` or more characters of `secret` found in `text`."""
    if len(secret) < MIN_FRAGMENT:
        return text.replace(secret, MASK)
    grams = _grams(secret)
    out: list[str] = []
    position = 0
    while (match := grams.search(text, position)) is not None:
        start = match.start()
        # the leftmost piece starts here (an earlier character would have matched earlier);
        # extend it as far as the secret goes, from each place the matched run occurs in it
        length = max(
            _common_prefix(text, start, secret, offset) for offset in _offsets(secret, match.group())
        )
        out.append(text[position:start] + MASK)
        position = start + length
    return "".join(out) + text[position:] if out else text


@lru_cache(maxsize=128)
def _grams(secret: str) -> re.Pattern[str]:
    pieces = {secret[i : i + MIN_FRAGMENT] for i in range(len(secret) - MIN_FRAGMENT + 1)}
    return re.compile("|".join(map(re.escape, sorted(pieces))))


def _offsets(secret: str, piece: str) -> list[int]:
    offsets, at = [], secret.find(piece)
    while at >= 0:
        offsets.append(at)
        at = secret.find(piece, at + 1)
    return offsets


def _common_prefix(text: str, start: int, secret: str, offset: int) -> int:
    length = 0
    while (
        start + length < len(text)
        and offset + length < len(secret)
        and text[start + length] == secret[offset + length]
    ):
        length += 1
    return length


def _known_secrets() -> list[str]:
    with _lock:
        return [*_registered, *_learned]


def _learn(text: str) -> None:
    """Remember whole values seen after a key's name, to hide their pieces in later records."""
    for match in _ASSIGNED.finditer(text):
        value = match.group("value")
        if len(value) >= MIN_FRAGMENT and "..." not in value and value != MASK:
            with _lock:
                if value not in _registered:
                    _learned[value] = None
                    _learned.move_to_end(value)
                    while len(_learned) > _MAX_LEARNED:
                        _learned.popitem(last=False)


def _learn_from_payloads(args: Any) -> None:
    """Learn keys from the whole payload of a logged frame, before its elided text is made:
    the elided text may show a key's tail without its name."""
    for arg in args if isinstance(args, tuple) else ():
        data = getattr(arg, "data", arg)
        if isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data[:_PAYLOAD_WINDOW]) + b"\n" + bytes(data[-_PAYLOAD_WINDOW:])
            _learn(data.decode("utf-8", "replace"))
        elif isinstance(data, str):
            _learn(data[:_PAYLOAD_WINDOW] + "\n" + data[-_PAYLOAD_WINDOW:])


def _redact_record(record: logging.LogRecord) -> None:
    _learn_from_payloads(record.args)
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the handler reports it, as it would anyway
        return
    _learn(message)
    secrets = _known_secrets()
    hidden = redact(message, secrets=secrets)
    if hidden != message:
        record.msg, record.args = hidden, None
    if record.exc_info and not record.exc_text:
        # formatted now, so the traceback text (exception messages included) is redacted too
        record.exc_text = redact(
            "".join(traceback.format_exception(*record.exc_info)).rstrip("\n"), secrets=secrets
        )
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets=secrets)


def _install() -> None:
    """Wrap the log-record factory once, so every record of every logger is redacted."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
