"""Log lines as events: `log_event(logger, "session_end", field=value, ...)`.

Text format (the default): the event name then `field=value` pairs, as before. JSON format
(`serve --log-format json`): one object a line with an RFC 3339 UTC `time`, `level`, `event` and the
event's fields, which a log pipeline can query. A plain `logger.info("...")` line becomes an object
whose `event` is `message` and whose `message` is the text. Keys are redacted by the handler's
`RedactSecrets` filter either way; no caller passes a text (its length at most).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with `fields`: readable as text, structured as JSON."""
    if not logger.isEnabledFor(level):
        return
    shown = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
    logger.log(level, "%s%s", event, f" {shown}" if shown else "", extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (RFC 3339, UTC), level, logger, event, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", "message"),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({name: value for name, value in fields.items() if name not in line})
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str, log_format: str) -> logging.Handler:
    """Every log line on stderr in `log_format`; returns the handler (for filters)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler
