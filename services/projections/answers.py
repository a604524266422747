"""Answer structs built from a read model, shared by live and as-of queries."""

from __future__ import annotations

from datetime import datetime

from contracts import queries as q
from services.projections import rules


def permissions_answer(
    model: rules.ReadModel, key_id: str, now: datetime
) -> q.KeyPermissionsAnswer:
    status, listing = rules.effective_permissions(model, key_id, now)
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
