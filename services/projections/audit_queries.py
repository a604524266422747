"""Audit queries answered from the event log: history, as-of answers and explanations.

Shared by the HTTP API and the CLI; the store calls are blocking, so the API runs them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts import audit as a
from contracts import queries as q
from services.projections import audit, event_log, rules
from services.projections.answers import permissions_answer
from services.projections.views import SqlViewStore


def history(
    store: SqlViewStore, key_id: str, after_position: int, limit: int, position: int
) -> a.KeyHistoryAnswer:
    page = event_log.key_history(store, key_id, after_position, limit)
    return a.KeyHistoryAnswer(
        key_id=key_id,
        organization_id=page.organization_id,
        entries=page.entries,
        next_after_position=page.next_after_position,
        position=position,
    )


def permissions_as_of(store: SqlViewStore, key_id: str, as_of: datetime) -> q.KeyPermissionsAnswer:
    done = event_log.replay_key(store, key_id, as_of=as_of)
    return permissions_answer(done.model, key_id, as_of)


@dataclass(frozen=True)
class CheckRequest:
    key_id: str
    permission: str
    location_id: str
    own_item: bool
    as_of: datetime | None = None
    explain: bool = False


def check(
    store: SqlViewStore,
    live: rules.ReadModel,
    request: CheckRequest,
    now: datetime,
) -> a.ExplainedCheckAnswer:
    """A check as of ``request.as_of`` (else live), with its explanation when asked for."""
    if request.as_of is not None:
        now = request.as_of
        done = event_log.replay_key(store, request.key_id, as_of=request.as_of)
        model = done.model
    else:
        model = live
        done = None
    decision = rules.check(
        model, request.key_id, request.permission, request.location_id, request.own_item, now
    )
    explanation = None
    if request.explain:
        if done is None:
            done = event_log.replay_key(store, request.key_id, until_position=live.position)
        explanation = audit.explain(
            done, request.key_id, request.permission, request.location_id, decision.reasons
        )
    return a.ExplainedCheckAnswer(
        allowed=decision.allowed,
        reasons=decision.reasons,
        denied_because=decision.denied_because,
        position=model.position,
        explanation=explanation,
    )


def diff(store: SqlViewStore, key_id: str, t1: datetime, t2: datetime) -> a.PermissionsDiff:
    earlier = event_log.replay_key(store, key_id, as_of=t1).model
    later = event_log.replay_key(store, key_id, as_of=t2).model
    return audit.diff(key_id, earlier, t1, later, t2)
