"""Audit queries answered from the event log: history, as-of answers and explanations.

Shared by the HTTP API and the CLI; the store calls are blocking, so the API runs them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from contracts import audit as a
from contracts import queries as q
from services.projections.audit import history as h
from services.projections.audit.provenance import Replay, explain, replay
from services.projections.model import queries as model_queries
from services.projections.model.answers import check_answer, permissions_answer
from services.projections.model.listing import PAGE_ENTRIES, WORK_BUDGET, Cursor
from services.projections.model.state import ReadModel
from services.projections.store import event_log
from services.projections.store.event_log import MAX_POSITION, Queryable


class HistoryPage(NamedTuple):
    organization_id: str | None
    entries: list[a.HistoryEntry]
    next_after_position: int | None


def key_history(
    store: Queryable, key_id: str, after_position: int, limit: int, as_of: datetime | None = None
) -> HistoryPage:
    """One page of the key's events after ``after_position`` (up to and including ``as_of``,
    when given), with what each changed."""
    page = event_log.key_events_page(store, key_id, after_position, limit, as_of)
    entries = h.history_entries(page.events, page.before)
    return HistoryPage(page.organization_id, entries, page.next_after_position)


def replay_key(
    store: Queryable,
    key_id: str,
    *,
    as_of: datetime | None = None,
    until_position: int = MAX_POSITION,
) -> Replay:
    """The key and its organization folded from the log, up to a moment and a position."""
    events = event_log.key_events(store, key_id, as_of=as_of, until_position=until_position)
    return replay(events)


def history(
    store: Queryable,
    key_id: str,
    after_position: int,
    limit: int,
    position: int,
    as_of: datetime | None = None,
) -> a.KeyHistoryAnswer:
    page = key_history(store, key_id, after_position, limit, as_of)
    return a.KeyHistoryAnswer(
        key_id=key_id,
        organization_id=page.organization_id,
        entries=page.entries,
        next_after_position=page.next_after_position,
        position=position,
    )


def permissions_as_of(
    store: Queryable,
    key_id: str,
    as_of: datetime,
    after: Cursor | None = None,
    limit: int | None = PAGE_ENTRIES,
) -> q.KeyPermissionsAnswer:
    """A page of the key's permissions as they were (the whole listing with no limit)."""
    done = replay_key(store, key_id, as_of=as_of)
    budget = WORK_BUDGET if limit is not None else None
    return permissions_answer(done.model, key_id, as_of, after, limit, budget)


@dataclass(frozen=True)
class CheckRequest:
    key_id: str
    permission: str
    location_id: str
    own_item: bool
    as_of: datetime | None = None
    explain: bool = False


def check(
    store: Queryable,
    live: ReadModel,
    request: CheckRequest,
    now: datetime,
) -> a.ExplainedCheckAnswer:
    """A check as of ``request.as_of`` (else live), with its explanation when asked for."""
    if request.as_of is not None:
        now = request.as_of
        done = replay_key(store, request.key_id, as_of=request.as_of)
        model = done.model
    else:
        model = live
        done = None
    decision = model_queries.check(
        model, request.key_id, request.permission, request.location_id, request.own_item, now
    )
    explanation = None
    if request.explain:
        if done is None:
            done = replay_key(store, request.key_id, until_position=live.position)
        explanation = explain(
            done, request.key_id, request.permission, request.location_id, decision.reasons
        )
    return check_answer(decision, model.position, explanation)


def diff(store: Queryable, key_id: str, t1: datetime, t2: datetime) -> a.PermissionsDiff:
    earlier = replay_key(store, key_id, as_of=t1).model
    later = replay_key(store, key_id, as_of=t2).model
    return h.diff(key_id, earlier, t1, later, t2)
