"""Which failures are worth another attempt, and how long to wait before it (batch and speak share it)."""

from __future__ import annotations

import datetime
import email.utils
import random
import re
from dataclasses import dataclass

from elevtts.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionDropped,
    ElevttsError,
    InactivityTimeout,
    IncompleteAudio,
    InputError,
    OutputError,
    ServerError,
    UsageError,
)

RETRYABLE_CLOSE_CODES = frozenset({1001, 1011, 1012, 1013, 1014})
RETRYABLE_ERRORS = frozenset({"too_many_concurrent_requests", "system_busy", "rate_limit_exceeded"})
RETRYABLE_HTTP = frozenset({408, 425, 429})


# ---------------------------------------------------------------------------------------------
# Retries


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff: uniform in [d/2, d], d = min(cap, base * 2**(retry-1))."""

    base_s: float = 0.5
    cap_s: float = 10.0
    hint_cap_s: float = 60.0  # a server's retry hint is honoured up to this

    def delay(self, retry: int, hint_s: float | None = None, *, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, retry - 1))
        wait = (rng or random).uniform(ceiling / 2, ceiling)
        if hint_s is not None:
            wait = max(wait, min(hint_s, self.hint_cap_s))
        return wait


_RETRY_HINT = re.compile(
    r"(?:retry[-_ ]?after|try\s+again\s+in|retry\s+in)[\"']?\s*[:=]?\s*(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds?|min(?:ute)?s?|s|secs?|seconds?)?\b",
    re.IGNORECASE,
)
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def retry_hint(message: str) -> float | None:
    """Seconds to wait, if the error's text says (`retry_after: 5`, `try again in 500 ms`, ...)."""
    match = _RETRY_HINT.search(message)
    if match is None:
        return None
    value = float(match.group(1))
    unit = (match.group(2) or "s").lower()
    if unit.startswith("mi") and not unit.startswith("mil"):
        return value * 60
    return value / 1000 if unit.startswith("m") else value


def retry_hint_for(exc: ElevttsError) -> float | None:
    """Seconds to wait: a refused handshake's `Retry-After` (seconds or HTTP date), else the text's hint."""
    value = exc.headers.get("retry-after") if isinstance(exc, ConnectError) else None
    if value:
        value = value.strip()
        if value.replace(".", "", 1).isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
    return retry_hint(exc.message)


def is_retryable(exc: BaseException) -> bool:
    """Worth another attempt: the same request might succeed later."""
    if isinstance(exc, AuthenticationError | InputError | OutputError | UsageError | InactivityTimeout):
        return False
    if isinstance(exc, ConnectionDropped | IncompleteAudio):
        return True
    if isinstance(exc, ConnectError):
        found = _HTTP_STATUS.search(exc.message)
        status = exc.status if exc.status is not None else (int(found.group(1)) if found else None)
        return status is None or not 400 <= status < 500 or status in RETRYABLE_HTTP
    if isinstance(exc, ServerError):
        return exc.code in RETRYABLE_CLOSE_CODES or exc.error in RETRYABLE_ERRORS
    return False
