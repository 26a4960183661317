"""Keep API keys out of logs: websockets logs request headers and frames at debug level."""

from __future__ import annotations

import logging
import re


class RedactSecrets(logging.Filter):
    """Hide API keys in log lines: at debug level websockets logs request headers and frames.

    Any value after `xi-api-key`, `xi_api_key` or `authorization` (header, query or JSON; after
    a scheme such as `Bearer`) is hidden, so a wrong key a client sent, possibly a real one, is
    not logged either.
    """

    _ASSIGNED = re.compile(
        r"""(?P<name>xi[-_]api[-_]key|authorization)(?P<sep>["']?\s*[:=]\s*["']?(?:[a-z]+\s+)?)"""
        r"""(?P<value>[^\s"'&,;}]+)""",
        re.IGNORECASE,
    )

    def __init__(self, api_key: str | None) -> None:
        super().__init__()
        self._api_key = (api_key or "").strip()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._ASSIGNED.sub(r"\g<name>\g<sep>***", message)
        if self._api_key:
            redacted = redacted.replace(self._api_key, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def protect_websockets_logs() -> None:
    """Redact keys in what the websockets library logs, whoever configures logging."""
    for name in ("websockets.server", "websockets.client"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets(None))
