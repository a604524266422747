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
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.year < 1000:  # strftime's own year format, as these rows always had
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text as strftime at a third of its cost (a rebuild formats every event's)
    return _MOMENT % (
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


_MOMENT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def event_row(event: ev.AnyEvent, data: bytes | str) -> EventRow:
    return (
        event.position,
        event.organization_id,
        event.key_id if isinstance(event, ev.KeyEvent) else None,
        type(event).__name__,
        moment_text(event.occurred_at),
        data.decode() if isinstance(data, bytes) else data,
    )
