"""The read model of API keys and how each contract event changes it. Pure: no I/O, no clock.

State folding is deterministic, so live answers, rebuilds and (later) as-of answers all come from
folding the same events through ``apply``. Effective grants are cached per key and dropped when an
event may change them; key status (expiry included) is decided at query time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NamedTuple

import msgspec

from contracts import events as ev
from contracts.common import Permission
from contracts.queries import DenialReason, KeyStatus, Reason

GRANT_CACHE_LIMIT = 50_000


class LocationNode(msgspec.Struct):
    name: str
    parent_id: str | None


class RoleDefinition(msgspec.Struct):
    name: str
    permissions: list[Permission]


class OrganizationView(msgspec.Struct):
    api_module_enabled: bool = False
    locations: dict[str, LocationNode] = {}
    roles: dict[str, RoleDefinition] = {}


class KeyView(msgspec.Struct):
    organization_id: str
    state: ev.KeyState


class SecretRef(NamedTuple):
    key_id: str
    kind: Literal["current", "previous"]


class Touched(NamedTuple):
    """What one applied event changed, so a store writes only those rows."""

    organization_id: str
    key_id: str | None


@dataclass
class KeyGrants:
    """A key's effective grants, whatever its status: permission -> reasons."""

    everywhere: dict[str, list[Reason]] = field(default_factory=dict)
    at: dict[str, dict[str, list[Reason]]] = field(default_factory=dict)

    def reasons(self, permission: str, location_id: str) -> list[Reason]:
        found = set(self.at.get(permission, {}).get(location_id, ()))
        found.update(self.everywhere.get(permission, ()))
        return sorted(found)


@dataclass
class ReadModel:
    position: int = 0
    organizations: dict[str, OrganizationView] = field(default_factory=dict)
    keys: dict[str, KeyView] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    org_keys: dict[str, set[str]] = field(default_factory=dict)
    grant_cache: dict[str, KeyGrants] = field(default_factory=dict)
    children_cache: dict[str, dict[str | None, list[str]]] = field(default_factory=dict)


def restore(
    position: int, organizations: dict[str, OrganizationView], keys: dict[str, KeyView]
) -> ReadModel:
    """A read model from stored rows; the indexes are derived, never stored as truth."""
    model = ReadModel(position=position, organizations=organizations)
    for key_id, view in keys.items():
        _put_key(model, key_id, view)
    return model


# --- folding events ----------------------------------------------------------------------------


def apply(model: ReadModel, event: ev.AnyEvent) -> Touched | None:
    """Fold one event; an event at or below the model's position changes nothing."""
    if event.position <= model.position:
        return None
    model.position = event.position
    org_id = event.organization_id
    if isinstance(event, ev.KeyEvent):
        model.grant_cache.pop(event.key_id, None)
        _put_key(model, event.key_id, KeyView(org_id, event.key))
        return Touched(org_id, event.key_id)
    org = model.organizations.setdefault(org_id, OrganizationView())
    match event:
        case ev.ApiModuleEnabled():
            org.api_module_enabled = True
        case ev.ApiModuleDisabled():
            org.api_module_enabled = False
        case ev.LocationDefined() | ev.LocationRenamed() | ev.LocationMoved():
            org.locations[event.location_id] = LocationNode(event.name, event.parent_id)
            model.children_cache.pop(org_id, None)
        case ev.LocationRemoved():
            org.locations.pop(event.location_id, None)
            model.children_cache.pop(org_id, None)
        case ev.RoleDefined() | ev.RolePermissionsChanged() | ev.RoleRenamed():
            org.roles[event.role_id] = RoleDefinition(event.name, list(event.permissions))
        case ev.RoleRemoved():
            org.roles.pop(event.role_id, None)
        case _:
            return Touched(org_id, None)
    for key_id in model.org_keys.get(org_id, ()):
        model.grant_cache.pop(key_id, None)
    return Touched(org_id, None)


def fold(events: Iterable[ev.AnyEvent], model: ReadModel | None = None) -> ReadModel:
    model = model if model is not None else ReadModel()
    for event in events:
        apply(model, event)
    return model


def secret_refs(state: ev.KeyState) -> Iterator[tuple[str, SecretRef, datetime | None]]:
    """The secret hashes a key answers to, for the in-memory index and the stored one."""
    yield state.secret_sha256, SecretRef("", "current"), None
    if state.previous_secret_sha256:
        valid_until = state.previous_secret_valid_until
        yield state.previous_secret_sha256, SecretRef("", "previous"), valid_until


def _put_key(model: ReadModel, key_id: str, view: KeyView) -> None:
    old = model.keys.get(key_id)
    if old is not None:
        for sha, _, _ in secret_refs(old.state):
            if model.secrets.get(sha, SecretRef("", "current")).key_id == key_id:
                del model.secrets[sha]
        model.org_keys.get(old.organization_id, set()).discard(key_id)
    model.keys[key_id] = view
    model.org_keys.setdefault(view.organization_id, set()).add(key_id)
    for sha, ref, _ in secret_refs(view.state):
        model.secrets[sha] = ref._replace(key_id=key_id)


# --- effective permissions -----------------------------------------------------------------------


def _children(model: ReadModel, org_id: str, org: OrganizationView) -> dict[str | None, list[str]]:
    children = model.children_cache.get(org_id)
    if children is None:
        children = {}
        for location_id, node in sorted(org.locations.items()):
            children.setdefault(node.parent_id, []).append(location_id)
        model.children_cache[org_id] = children
    return children


def subtree(children: dict[str | None, list[str]], root: str) -> list[str]:
    """The root and every location below it (a cycle cannot loop forever)."""
    seen, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return sorted(seen)


def key_grants(model: ReadModel, key_id: str) -> KeyGrants:
    cached = model.grant_cache.get(key_id)
    if cached is not None:
        return cached
    grants = KeyGrants()
    view = model.keys.get(key_id)
    org = model.organizations.get(view.organization_id) if view else None
    if view is not None and org is not None:
        children = _children(model, view.organization_id, org)
        cells = {(c.role_id, c.location_id): c.applies for c in view.state.matrix}
        for role_id in dict.fromkeys(view.state.role_ids):
            role = org.roles.get(role_id)
            for location_id in dict.fromkeys(view.state.location_ids):
                if role is None or location_id not in org.locations:
                    continue
                if not cells.get((role_id, location_id), True):
                    continue
                for perm in role.permissions:
                    _grant(grants, children, perm, Reason(role_id, location_id, perm.scope))
    if len(model.grant_cache) >= GRANT_CACHE_LIMIT:
        model.grant_cache.clear()
    model.grant_cache[key_id] = grants
    return grants


def _grant(
    grants: KeyGrants, children: dict[str | None, list[str]], perm: Permission, reason: Reason
) -> None:
    if perm.scope == "everywhere":
        reasons = grants.everywhere.setdefault(perm.permission, [])
        if reason not in reasons:
            reasons.append(reason)
        return
    if perm.scope == "location_only":
        targets = [reason.location_id]
    else:
        targets = subtree(children, reason.location_id)
    by_location = grants.at.setdefault(perm.permission, {})
    for target in targets:
        reasons = by_location.setdefault(target, [])
        if reason not in reasons:
            reasons.append(reason)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def key_status(model: ReadModel, key_id: str, now: datetime) -> KeyStatus:
    view = model.keys.get(key_id)
    if view is None:
        return "unknown"
    if view.state.deleted:
        return "deleted"
    org = model.organizations.get(view.organization_id)
    if org is None or not org.api_module_enabled:
        return "api_module_disabled"
    if not view.state.enabled:
        return "disabled"
    expires_at = view.state.expires_at
    if expires_at is not None and aware(expires_at) <= aware(now):
        return "expired"
    return "active"


class Decision(NamedTuple):
    allowed: bool
    reasons: list[Reason]
    denied_because: DenialReason | None


def check(
    model: ReadModel,
    key_id: str,
    permission: str,
    location_id: str,
    item_owner_is_key: bool,
    now: datetime,
) -> Decision:
    status = key_status(model, key_id, now)
    if status != "active":
        return Decision(False, [], "unknown_key" if status == "unknown" else status)
    view = model.keys[key_id]
    if location_id not in model.organizations[view.organization_id].locations:
        return Decision(False, [], "not_granted")
    reasons = key_grants(model, key_id).reasons(permission, location_id)
    if not item_owner_is_key:
        reasons = [r for r in reasons if r.scope != "own_items"]
    if not reasons:
        return Decision(False, [], "not_granted")
    return Decision(True, reasons, None)


def effective_permissions(
    model: ReadModel, key_id: str, now: datetime
) -> tuple[KeyStatus, dict[str, dict[str, list[Reason]]]]:
    """The key's status and, when active, location -> permission -> reasons (sorted)."""
    status = key_status(model, key_id, now)
    if status != "active":
        return status, {}
    view = model.keys[key_id]
    grants = key_grants(model, key_id)
    listing: dict[str, dict[str, list[Reason]]] = {}
    for location_id in sorted(model.organizations[view.organization_id].locations):
        permissions = set(grants.everywhere) | {
            p for p, at in grants.at.items() if location_id in at
        }
        for permission in sorted(permissions):
            reasons = grants.reasons(permission, location_id)
            if reasons:
                listing.setdefault(location_id, {})[permission] = reasons
    return status, listing


def keys_with_permission(
    model: ReadModel, org_id: str, permission: str, location_id: str, now: datetime
) -> list[tuple[str, list[Reason]]]:
    """Active keys of the organization holding the permission at the location (any scope)."""
    org = model.organizations.get(org_id)
    if org is None or location_id not in org.locations:
        return []
    holders = []
    for key_id in sorted(model.org_keys.get(org_id, ())):
        if key_status(model, key_id, now) == "active":
            reasons = key_grants(model, key_id).reasons(permission, location_id)
            if reasons:
                holders.append((key_id, reasons))
    return holders
