"""The keys service's settings on streams of a test's own (``<unique>.commands``, ``.results``,
``.events``, ``.dead``), read by the consumer ``c1``."""

from __future__ import annotations

from typing import Any

from services.keys.settings import KeysSettings


def keys_settings(redis_url: str, unique: str, **more: Any) -> KeysSettings:
    fields: dict[str, Any] = {
        "redis_url": redis_url,
        "commands_stream": f"{unique}.commands",
        "results_stream": f"{unique}.results",
        "events_stream": f"{unique}.events",
        "dead_letter_stream": f"{unique}.dead",
        "consumer": "c1",
    }
    return KeysSettings(**(fields | more))
