"""Structured logs: one JSON object per line, with the event id wherever there is one."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(*, root: bool) -> None:
    """modstream's records, from info up, as JSON lines on stderr (a background service's
    stderr is its log file). With ``root``, every other library's warnings as well, through
    the root logger: only where no framework owns it (the dashboard; Faust configures the
    root logger of the worker itself)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    ours = logging.getLogger("modstream")
    ours.setLevel(logging.INFO)
    if root:
        everything = logging.getLogger()
        everything.handlers[:] = [handler]
        everything.setLevel(logging.WARNING)
        ours.handlers.clear()
        ours.propagate = True
    else:
        ours.handlers[:] = [handler]
        ours.propagate = False
