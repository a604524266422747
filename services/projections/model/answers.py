"""The query answers built from the read model: one builder per answer, shared by the HTTP app,
the lean check path and the audit queries (live and as-of alike)."""

from __future__ import annotations

import re
from datetime import datetime

from contracts import audit as a
from contracts import queries as q
from contracts.common import ID_MAX
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


# A cursor is where the next page starts, in the listing's own order: "<location id> <permission>"
# (a location id holds no space, a permission may), the permission empty for the whole
# location. Any text of this form is a position in that order, so every cursor the document
# allows is one the listing can follow.
PERMISSION_MAX = 200
CURSOR_MAX = ID_MAX + 1 + PERMISSION_MAX
CURSOR_PATTERN = rf"^[^\x00-\x20\x7f-\x9f]{{1,{ID_MAX}}} [^\x00-\x1f\x7f]{{0,{PERMISSION_MAX}}}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(cursor: Cursor) -> str:
    return f"{cursor[0]} {cursor[1]}"


def decode_cursor(text: str) -> Cursor:
    """The position a cursor names; ValueError for text not of the cursor's form."""
    if _CURSOR.fullmatch(text) is None:
        raise ValueError("not a cursor: <location id> <permission>")
    location_id, permission = text.split(" ", 1)
    return location_id, permission
