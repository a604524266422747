"""Logging set-up for every process: plain lines, or JSON lines with APIKEYS_LOG_FORMAT=json.

Either way a last filter masks anything shaped like a token (``<prefix>_<base62>``), a secret
hash (64 hex digits) or a secret hint (``<prefix>_...<4>``), wherever it came from.
"""

from __future__ import annotations

import json
import logging
import os
import re

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_SECRETS = re.compile(
    r"\b[A-Za-z0-9]{1,16}_(?:[0-9A-Za-z]{30,}|\.\.\.[0-9A-Za-z]{4})\b|\b[0-9a-f]{64}\b"
)


def mask(text: str) -> str:
    return _SECRETS.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


class MaskingFormatter(logging.Formatter):
    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask(self.inner.format(record))


def configure(level: int = logging.WARNING) -> None:
    """Once per process, at start: the root logger's one handler, on standard error."""
    json_lines = os.environ.get("APIKEYS_LOG_FORMAT", "text").strip().lower() == "json"
    inner = JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter(inner))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
