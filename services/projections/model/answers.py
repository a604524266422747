"""The query answers built from the read model: one builder per answer, shared by the HTTP app,
the lean check path and the audit queries (live and as-of alike)."""

from __future__ import annotations

import base64
from datetime import datetime

import msgspec

from contracts import audit as a
from contracts import queries as q
from contracts.codec import json_encoder
from services.projections.model.decisions import Decision
from services.projections.model.listing import PAGE_ENTRIES, WORK_BUDGET, Cursor, permissions_page
from services.projections.model.state import ReadModel


def check_answer(
    decision: Decision,
    position: int,
    explanation: list[a.ReasonExplanation] | None = None,
) -> a.ExplainedCheckAnswer:
    """A check's answer (the explanation is left out of the JSON when there is none)."""
    answer = a.ExplainedCheckAnswer(
        allowed=decision.allowed,
        reasons=decision.reasons,
        denied_because=decision.denied_because,
        position=position,
    )
    if explanation is not None:  # set only when given: the lean path builds one per check
        answer.explanation = explanation
    return answer


def permissions_answer(
    model: ReadModel,
    key_id: str,
    now: datetime,
    after: Cursor | None = None,
    limit: int | None = PAGE_ENTRIES,
    budget: int | None = WORK_BUDGET,
) -> q.KeyPermissionsAnswer:
    """A page of the key's permissions (the whole listing with no limit and no budget)."""
    page = permissions_page(model, key_id, now, after, limit, budget)
    locations: list[q.LocationPermissions] = []
    for location_id, permission, reasons in page.entries:
        if not locations or locations[-1].location_id != location_id:
            locations.append(q.LocationPermissions(location_id=location_id, permissions=[]))
        scopes = sorted({r.scope for r in reasons})
        locations[-1].permissions.append(
            q.PermissionScopes(permission=permission, scopes=scopes, reasons=reasons)
        )
    view = model.keys.get(key_id)
    return q.KeyPermissionsAnswer(
        key_id=key_id,
        organization_id=view.organization_id if view else None,
        status=page.status,
        locations=locations,
        next_cursor=None if page.next_cursor is None else encode_cursor(page.next_cursor),
        position=model.position,
    )


CURSOR_MAX = 1_200  # characters: two ids at their longest, base64 of JSON


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(json_encoder.encode(list(cursor))).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor a page gave; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        location_id, permission = msgspec.json.decode(raw, type=tuple[str, str])
    except (ValueError, msgspec.DecodeError) as error:
        raise ValueError("not a cursor given by this listing") from error
    return location_id, permission
