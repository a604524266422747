"""The answers for administration pages, built from the read model: an organization's
directory (module, administrators, locations with their paths, roles) and its keys' details."""

from __future__ import annotations

from datetime import datetime

from contracts import directory as d
from services.projections.model.queries import key_status
from services.projections.model.state import ReadModel
from services.projections.model.values import LocationNode


def organization_answer(model: ReadModel, organization_id: str) -> d.OrganizationAnswer:
    org = model.organizations.get(organization_id)
    if org is None:
        return d.OrganizationAnswer(
            organization_id=organization_id,
            known=False,
            api_module_enabled=False,
            administrators=[],
            locations=[],
            roles=[],
            position=model.position,
        )
    locations = [
        d.LocationEntry(
            location_id=location_id,
            name=node.name,
            parent_id=node.parent_id,
            path=location_path(org.locations, location_id),
        )
        for location_id, node in org.locations.items()
    ]
    locations.sort(key=lambda entry: ([name.casefold() for name in entry.path], entry.location_id))
    roles = [
        d.RoleEntry(role_id=role_id, name=role.name, permissions=list(role.permissions))
        for role_id, role in sorted(org.roles.items(), key=lambda item: item[1].name.casefold())
    ]
    return d.OrganizationAnswer(
        organization_id=organization_id,
        known=True,
        api_module_enabled=org.api_module_enabled,
        administrators=list(org.administrators),
        locations=locations,
        roles=roles,
        position=model.position,
    )


def location_path(locations: dict[str, LocationNode], location_id: str) -> list[str]:
    """The names from the root down to the location (a cycle or a missing parent ends it)."""
    names: list[str] = []
    seen: set[str] = set()
    current: str | None = location_id
    while current is not None and current not in seen and current in locations:
        seen.add(current)
        node = locations[current]
        names.append(node.name)
        current = node.parent_id
    names.reverse()
    return names


def key_details(model: ReadModel, key_id: str, now: datetime) -> d.KeyDetails | None:
    view = model.keys.get(key_id)
    if view is None:
        return None
    state, meta = view.state, view.meta
    return d.KeyDetails(
        key_id=key_id,
        organization_id=view.organization_id,
        name=state.name,
        location_ids=list(state.location_ids),
        role_ids=list(state.role_ids),
        matrix=list(state.matrix),
        status=key_status(model, key_id, now),
        enabled=state.enabled,
        deleted=state.deleted,
        expires_at=state.expires_at,
        secret_hint=state.secret_hint,
        previous_secret_valid_until=state.previous_secret_valid_until,
        created_at=meta.created_at,
        created_by=meta.created_by,
        changed_at=meta.changed_at,
        changed_by=meta.changed_by,
    )


def organization_keys_answer(
    model: ReadModel, organization_id: str, now: datetime
) -> d.OrganizationKeyListAnswer:
    details = [
        key_details(model, key_id, now) for key_id in model.org_keys.get(organization_id, ())
    ]
    keys = [k for k in details if k is not None and not k.deleted]
    keys.sort(key=lambda k: (k.name.casefold(), k.key_id))
    return d.OrganizationKeyListAnswer(
        organization_id=organization_id, keys=keys, position=model.position
    )
