"""Domain events to contract events: the edge where stored events become published ones.

Key events carry the key's resulting state, so the relay folds each event onto the aggregate
before mapping it. Bookkeeping events (receipts, a key joining its organization) are not
published.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic

from contracts import events as e
from contracts.common import MatrixCell, Permission
from services.keys.domain import ApiKey, Organization

KEY_EVENTS: dict[type, type[e.KeyEvent]] = {
    ApiKey.Created: e.ApiKeyCreated,
    ApiKey.Renamed: e.ApiKeyRenamed,
    ApiKey.LocationAdded: e.KeyLocationAdded,
    ApiKey.LocationRemoved: e.KeyLocationRemoved,
    ApiKey.RoleAdded: e.KeyRoleAdded,
    ApiKey.RoleRemoved: e.KeyRoleRemoved,
    ApiKey.RoleLocationToggled: e.RoleLocationToggled,
    ApiKey.SecretRotated: e.KeySecretRotated,
    ApiKey.Disabled: e.ApiKeyDisabled,
    ApiKey.Enabled: e.ApiKeyEnabled,
    ApiKey.Deleted: e.ApiKeyDeleted,
}

ORGANIZATION_EVENTS: dict[type, type[e.OrganizationEvent]] = {
    Organization.Registered: e.OrganizationRegistered,
    Organization.ApiModuleEnabled: e.ApiModuleEnabled,
    Organization.ApiModuleDisabled: e.ApiModuleDisabled,
    Organization.ApiAdministratorGranted: e.ApiAdministratorGranted,
    Organization.ApiAdministratorRevoked: e.ApiAdministratorRevoked,
    Organization.LocationDefined: e.LocationDefined,
    Organization.LocationRenamed: e.LocationRenamed,
    Organization.LocationMoved: e.LocationMoved,
    Organization.LocationRemoved: e.LocationRemoved,
    Organization.RoleDefined: e.RoleDefined,
    Organization.RolePermissionsChanged: e.RolePermissionsChanged,
    Organization.RoleRenamed: e.RoleRenamed,
    Organization.RoleRemoved: e.RoleRemoved,
}

# Key-event fields that the contract event names (beside the whole key state).
_KEY_EVENT_FIELDS = {
    e.ApiKeyRenamed: ("name",),
    e.KeyLocationAdded: ("location_id",),
    e.KeyLocationRemoved: ("location_id",),
    e.KeyRoleAdded: ("role_id",),
    e.KeyRoleRemoved: ("role_id",),
    e.RoleLocationToggled: ("role_id", "location_id", "applies"),
}


def is_published(event: Any) -> bool:
    return type(event) in KEY_EVENTS or type(event) in ORGANIZATION_EVENTS


def key_state(key: ApiKey) -> e.KeyState:
    return e.KeyState(
        name=key.name,
        location_ids=list(key.location_ids),
        role_ids=list(key.role_ids),
        matrix=[
            MatrixCell(role_id, location_id, key.matrix.get((role_id, location_id), True))
            for role_id in key.role_ids
            for location_id in key.location_ids
        ],
        enabled=key.enabled,
        deleted=key.deleted,
        expires_at=key.expires_at,
        secret_sha256=key.secret_sha256,
        secret_hint=key.secret_hint,
        previous_secret_sha256=key.previous_secret_sha256,
        previous_secret_valid_until=key.previous_secret_valid_until,
    )


def to_contract(
    event: Any, aggregate_after: Any, position: int, previous_position: int | None = None
) -> e.Event | None:
    """The contract event for a stored domain event, given the aggregate just after it (and
    the position of the event published just before it)."""
    if not is_published(event):
        return None
    envelope = {
        "position": position,
        "previous_position": previous_position,
        "occurred_at": event.timestamp,
        "actor_id": event.actor_id,
        "command_id": event.command_id,
    }
    key_class = KEY_EVENTS.get(type(event))
    if key_class is not None:
        key: ApiKey = aggregate_after
        fields = {name: getattr(event, name) for name in _KEY_EVENT_FIELDS.get(key_class, ())}
        return key_class(
            **envelope,
            organization_id=key.organization_id,
            key_id=key.key_id,
            key=key_state(key),
            **fields,
        )
    org_class = ORGANIZATION_EVENTS.get(type(event))
    if org_class is None:
        return None
    org: Organization = aggregate_after
    return org_class(**envelope, organization_id=org.organization_id, **_org_fields(event, org))


def _org_fields(event: Any, org: Organization) -> dict[str, Any]:
    administrators = Organization.ApiAdministratorGranted | Organization.ApiAdministratorRevoked
    if isinstance(event, administrators):
        return {"user_id": event.user_id}
    if isinstance(event, Organization.LocationRemoved):
        return {"location_id": event.location_id}
    if isinstance(event, Organization.RoleRemoved):
        return {"role_id": event.role_id}
    location_id = getattr(event, "location_id", None)
    if location_id is not None:
        location = org.locations[location_id]
        return {"location_id": location_id, "name": location.name, "parent_id": location.parent_id}
    role_id = getattr(event, "role_id", None)
    if role_id is not None:
        role = org.roles[role_id]
        return {
            "role_id": role_id,
            "name": role.name,
            "permissions": [Permission(p, s) for p, s in role.permissions],  # type: ignore[arg-type]
        }
    return {}


# the stored topics that the relay publishes (receipts and bookkeeping are not)
PUBLISHED_TOPICS = tuple(get_topic(cls) for cls in (*KEY_EVENTS, *ORGANIZATION_EVENTS))
