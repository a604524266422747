"""Queries over the event log read model (``<prefix>event_log``), each through an index.

A key's events are found by (key_id, position), its organization's by (organization_id,
position); nothing here scans the whole log or replays more than one key and its organization.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from contracts import audit as a
from contracts import events as ev
from services.projections import audit
from services.projections.event_rows import moment_text
from services.projections.views import SqlViewStore

MAX_POSITION = 2**63 - 1


class HistoryPage(NamedTuple):
    organization_id: str | None
    entries: list[a.HistoryEntry]
    next_after_position: int | None


def _decode(rows: list[tuple[object, ...]]) -> list[ev.AnyEvent]:
    return [ev.event_decoder.decode(str(row[0])) for row in rows]


def key_organization(store: SqlViewStore, key_id: str) -> str | None:
    rows = store.query(
        "SELECT organization_id FROM {p}event_log WHERE key_id = ? ORDER BY position LIMIT 1",
        (key_id,),
    )
    return str(rows[0][0]) if rows else None


def key_history(store: SqlViewStore, key_id: str, after_position: int, limit: int) -> HistoryPage:
    """One page of the key's events after ``after_position``, with what each changed."""
    rows = store.query(
        "SELECT event FROM {p}event_log WHERE key_id = ? AND position > ?"
        " ORDER BY position LIMIT ?",
        (key_id, after_position, limit + 1),
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
    return HistoryPage(org_id, audit.history_entries(events, before), next_after)


def key_events(
    store: SqlViewStore,
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


def replay_key(
    store: SqlViewStore,
    key_id: str,
    *,
    as_of: datetime | None = None,
    until_position: int = MAX_POSITION,
) -> audit.Replay:
    return audit.replay(key_events(store, key_id, as_of=as_of, until_position=until_position))
