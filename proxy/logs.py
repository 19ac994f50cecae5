"""JSON-lines logging. Records name payment ids and events; callers never pass card data,
passwords, tokens, cookies or the API key, and the access log redacts the secret path segment
of the notification URL and receipt tokens, and drops every query string (a Primo token
travels in one)."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# Attributes every LogRecord has; anything else came in through `extra=` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Path segments that are secrets: the notification token, and receipt tokens (each opens a
# receipt without a session).
_SECRET_SEGMENT = re.compile(r"(/cashnet/postback/|/api/receipts/)[^/?]*")
# `json.dumps(entry, default=str)`, with its encoder made once rather than for every line.
_ENCODE = json.JSONEncoder(default=str).encode


class JsonFormatter(logging.Formatter):
    # The formatted second of the last record: a busy proxy writes several lines a millisecond
    # (two per fees-page request), and strftime was a visible share of their cost.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": f"{self._timestamp(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODE(entry)

    def _timestamp(self, second: int) -> str:
        if self._second[0] != second:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return self._second[1]


def redact_path(path: str) -> str:
    """A request path fit for the log: tokens in it replaced."""
    if "/cashnet/postback/" not in path and "/api/receipts/" not in path:
        return path  # most paths: no pattern to run
    return _SECRET_SEGMENT.sub(r"\1***", path)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our lines name no source file, line, thread or process: skip looking them up for every
    # record (the logging HOWTO's "Optimization"), a visible share of a fees page's CPU.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # uvicorn's own access log prints raw paths and query strings; ours redacts them.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
