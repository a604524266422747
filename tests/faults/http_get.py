"""Plain HTTP GETs to the services, timed, never through an environment-configured proxy."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    body: Any
    latency: float
    error: str = ""


def get(url: str, timeout: float = 2.0) -> Answer:
    started = time.perf_counter()
    try:
        with _opener.open(url, timeout=timeout) as response:
            raw = response.read()
            return Answer(response.status, _decoded(raw), time.perf_counter() - started)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return Answer(error.code, _decoded(raw), time.perf_counter() - started)
    except (OSError, ValueError) as error:
        return Answer(None, None, time.perf_counter() - started, repr(error))


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
