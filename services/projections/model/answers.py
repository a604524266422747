"""The query answers built from the read model: one builder per answer, shared by the HTTP app,
the lean check path and the audit queries (live and as-of alike)."""

from __future__ import annotations

from datetime import datetime

from contracts import audit as a
from contracts import queries as q
from services.projections.model.decisions import Decision
from services.projections.model.queries import effective_permissions
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


def permissions_answer(model: ReadModel, key_id: str, now: datetime) -> q.KeyPermissionsAnswer:
    status, listing = effective_permissions(model, key_id, now)
    view = model.keys.get(key_id)
    locations = [
        q.LocationPermissions(
            location_id=location_id,
            permissions=[
                q.PermissionScopes(
                    permission=permission,
                    scopes=sorted({r.scope for r in reasons}),
                    reasons=reasons,
                )
                for permission, reasons in by_permission.items()
            ],
        )
        for location_id, by_permission in listing.items()
    ]
    return q.KeyPermissionsAnswer(
        key_id=key_id,
        organization_id=view.organization_id if view else None,
        status=status,
        locations=locations,
        position=model.position,
    )
