"""The event log read model: every applied contract event, as it came on the stream.

Written with the view rows and the position in one transaction, so it is exactly as complete as
the view; audit queries (history, as-of answers, explanations) read it through an index.
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import events as ev

# position, organization_id, key_id (NULL for organization events), type, occurred_at, event JSON
EventRow = tuple[int, str, str | None, str, str, str]

EVENT_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS {p}event_log (position BIGINT PRIMARY KEY,"
    " organization_id TEXT NOT NULL, key_id TEXT, type TEXT NOT NULL,"
    " occurred_at TEXT NOT NULL, event TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {p}event_log_key ON {p}event_log (key_id, position)",
    "CREATE INDEX IF NOT EXISTS {p}event_log_org ON {p}event_log (organization_id, position)",
)


def moment_text(moment: datetime) -> str:
    """UTC with a fixed width, so text order is time order in both databases."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_row(event: ev.AnyEvent, data: bytes | str) -> EventRow:
    text = data.decode() if isinstance(data, bytes) else data
    key_id = event.key_id if isinstance(event, ev.KeyEvent) else None
    return (
        event.position,
        event.organization_id,
        key_id,
        type(event).__name__,
        moment_text(event.occurred_at),
        text,
    )
