"""The event log table: every applied contract event, as it came on the stream.

Written with the view rows and the position in one transaction, so it is exactly as complete as
the view. Its reads go through an index: a key's events by (key_id, position), its
organization's by (organization_id, position); nothing here scans the whole log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from contracts import events as ev

# position, organization_id, key_id (NULL for organization events), type, occurred_at, event JSON
EventRow = tuple[int, str, str | None, str, str, str]
MAX_POSITION = 2**63 - 1


def moment_text(moment: datetime) -> str:
    """UTC with a fixed width, so text order is time order in both databases."""
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.year < 1000:  # strftime's own year format, as these rows always had
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text as strftime at a fraction of its cost (a rebuild formats every event's)
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


class Queryable(Protocol):
    """What a read of the log needs of a store (``SqlViewStore.query``)."""

    def query(self, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...


class KeyEventsPage(NamedTuple):
    """One page of a key's events, with the key's state before the first of them."""

    organization_id: str | None
    events: Sequence[ev.KeyEvent]
    before: ev.KeyState | None
    next_after_position: int | None


def _decode(rows: list[tuple[object, ...]]) -> list[ev.AnyEvent]:
    return [ev.event_decoder.decode(str(row[0])) for row in rows]


def key_organization(store: Queryable, key_id: str) -> str | None:
    rows = store.query(
        "SELECT organization_id FROM {p}event_log WHERE key_id = ? ORDER BY position LIMIT 1",
        (key_id,),
    )
    return str(rows[0][0]) if rows else None


def key_events_page(
    store: Queryable,
    key_id: str,
    after_position: int,
    limit: int,
    as_of: datetime | None = None,
) -> KeyEventsPage:
    """Up to ``limit`` of the key's events after ``after_position`` (that occurred at or
    before ``as_of``, when given)."""
    moment = moment_text(as_of) if as_of is not None else "9999"
    rows = store.query(
        "SELECT event FROM {p}event_log WHERE key_id = ? AND position > ? AND occurred_at <= ?"
        " ORDER BY position LIMIT ?",
        (key_id, after_position, moment, limit + 1),
    )
    events = [e for e in _decode(rows[:limit]) if isinstance(e, ev.KeyEvent)]
    before = None
    if events and after_position > 0:
        previous = _decode(
            store.query(
                "SELECT event FROM {p}event_log WHERE key_id = ? AND position <= ?"
                " ORDER BY position DESC LIMIT 1",
                (key_id, after_position),
            )
        )
        before = previous[0].key if previous and isinstance(previous[0], ev.KeyEvent) else None
    org_id = events[0].organization_id if events else key_organization(store, key_id)
    next_after = events[-1].position if len(rows) > limit and events else None
    return KeyEventsPage(org_id, events, before, next_after)


def key_events(
    store: Queryable,
    key_id: str,
    *,
    as_of: datetime | None = None,
    until_position: int = MAX_POSITION,
) -> list[ev.AnyEvent]:
    """The key's and its organization's events up to a moment and a position, in order."""
    org_id = key_organization(store, key_id)
    if org_id is None:
        return []
    moment = moment_text(as_of) if as_of is not None else "9999"
    org_rows = store.query(
        "SELECT position, event FROM {p}event_log WHERE organization_id = ? AND key_id IS NULL"
        " AND position <= ? AND occurred_at <= ? ORDER BY position",
        (org_id, until_position, moment),
    )
    key_rows = store.query(
        "SELECT position, event FROM {p}event_log WHERE key_id = ?"
        " AND position <= ? AND occurred_at <= ? ORDER BY position",
        (key_id, until_position, moment),
    )
    merged = sorted(org_rows + key_rows, key=lambda row: int(str(row[0])))
    return _decode([(row[1],) for row in merged])
