"""How each contract event changes the read model, and the answers read from it. Pure: no I/O,
no clock.

State folding is deterministic, so live answers, rebuilds and as-of answers all come from
folding the same events through ``apply``. Effective grants are compiled per key (see
``grants``) and dropped when an event may change them; key status (expiry included) is decided
at query time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from contracts import events as ev
from contracts.common import Permission
from contracts.queries import KeyStatus, Reason
from services.projections import grants as g
from services.projections.grants import Decision, KeyGrants, aware
from services.projections.read_model import (
    KeyView,
    LocationNode,
    OrganizationView,
    ReadModel,
    RoleDefinition,
    SecretRef,
    Touched,
)

__all__ = [
    "GRANT_CACHE_LIMIT",
    "Decision",
    "KeyGrants",
    "KeyView",
    "LocationNode",
    "OrganizationView",
    "ReadModel",
    "RoleDefinition",
    "SecretRef",
    "Touched",
    "apply",
    "aware",
    "check",
    "effective_permissions",
    "fold",
    "key_grants",
    "key_status",
    "keys_with_permission",
    "restore",
    "secret_refs",
]

GRANT_CACHE_LIMIT = 50_000


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
    org = model.organizations.get(org_id)
    if org is None:  # keys compiled before their organization was known must look again
        org = model.organizations[org_id] = OrganizationView()
        _forget_grants(model, org_id)
    match event:
        case ev.ApiModuleEnabled():
            org.api_module_enabled = True
        case ev.ApiModuleDisabled():
            org.api_module_enabled = False
        case ev.LocationDefined() | ev.LocationRenamed() | ev.LocationMoved():
            org.locations[event.location_id] = LocationNode(event.name, event.parent_id)
            _tree_changed(model, org_id)
        case ev.LocationRemoved():
            org.locations.pop(event.location_id, None)
            _tree_changed(model, org_id)
        case ev.RoleDefined() | ev.RolePermissionsChanged() | ev.RoleRenamed():
            old = org.roles.get(event.role_id)
            org.roles[event.role_id] = RoleDefinition(event.name, list(event.permissions))
            _role_changed(model, org_id, event.role_id, old, event.permissions)
        case ev.RoleRemoved():
            old = org.roles.pop(event.role_id, None)
            _role_changed(model, org_id, event.role_id, old, [])
    return Touched(org_id, None)


def fold(events: Iterable[ev.AnyEvent], model: ReadModel | None = None) -> ReadModel:
    model = model if model is not None else ReadModel()
    for event in events:
        apply(model, event)
    return model


def _tree_changed(model: ReadModel, org_id: str) -> None:
    model.org_indexes.pop(org_id, None)
    _forget_grants(model, org_id)


def _role_changed(
    model: ReadModel,
    org_id: str,
    role_id: str,
    old: RoleDefinition | None,
    permissions: list[Permission],
) -> None:
    """Recompile, in the compiled grants of the role's holders, only the permissions whose
    grants changed: a role held by thousands of keys stays cheap to change."""
    names = {p.permission for p in set(old.permissions if old else ()) ^ set(permissions)}
    index = model.org_indexes.get(org_id)
    if index is None:
        _forget_grants(model, org_id, role_id)
        return
    index.role_changed(role_id)
    if not names:
        return
    cache, keys = model.grant_cache, model.keys
    for key_id in model.org_keys.get(org_id, ()):
        grants = cache.get(key_id)
        if grants is not None:
            state = keys[key_id].state
            if role_id in state.role_ids:
                cache[key_id] = g.refresh(index, grants, state, names)


def _forget_grants(model: ReadModel, org_id: str, role_id: str | None = None) -> None:
    """Drop the compiled grants of the organization's keys (holding the role, when given)."""
    cache, keys = model.grant_cache, model.keys
    for key_id in model.org_keys.get(org_id, ()):
        if key_id in cache and (role_id is None or role_id in keys[key_id].state.role_ids):
            del cache[key_id]


def secret_refs(state: ev.KeyState) -> Iterator[tuple[str, SecretRef, datetime | None]]:
    """The secret hashes a key answers to, for the in-memory index and the stored one."""
    yield state.secret_sha256, SecretRef("", "current"), None
    if state.previous_secret_sha256:
        valid_until = state.previous_secret_valid_until
        yield state.previous_secret_sha256, SecretRef("", "previous"), valid_until


def _put_key(model: ReadModel, key_id: str, view: KeyView) -> None:
    secrets, state = model.secrets, view.state
    current, previous = state.secret_sha256, state.previous_secret_sha256 or None
    old = model.keys.get(key_id)
    model.keys[key_id] = view
    if old is None:
        model.org_keys.setdefault(view.organization_id, set()).add(key_id)
    else:
        old_state = old.state
        for sha in (old_state.secret_sha256, old_state.previous_secret_sha256):
            if sha and sha != current and sha != previous:
                ref = secrets.get(sha)
                if ref is not None and ref.key_id == key_id:
                    del secrets[sha]
        if old.organization_id != view.organization_id:
            model.org_keys.get(old.organization_id, set()).discard(key_id)
            model.org_keys.setdefault(view.organization_id, set()).add(key_id)
    _point(secrets, current, key_id, "current")
    if previous is not None:
        _point(secrets, previous, key_id, "previous")


def _point(secrets: dict[str, SecretRef], sha: str, key_id: str, kind: str) -> None:
    ref = secrets.get(sha)
    if ref is None or ref.key_id != key_id or ref.kind != kind:
        secrets[sha] = SecretRef(key_id, kind)  # type: ignore[arg-type]


# --- effective permissions -----------------------------------------------------------------------


def key_grants(model: ReadModel, key_id: str) -> KeyGrants:
    """The key's compiled grants (the key must exist), cached until an event may change them."""
    cached = model.grant_cache.get(key_id)
    if cached is not None:
        return cached
    view = model.keys[key_id]
    org_id = view.organization_id
    org = model.organizations.get(org_id)
    index = model.org_indexes.get(org_id)
    if index is None and org is not None:
        index = model.org_indexes[org_id] = g.OrgIndex(org, model.answers)
    grants = g.compile_grants(index, view.state)
    if len(model.grant_cache) >= GRANT_CACHE_LIMIT:
        model.grant_cache.clear()
    model.grant_cache[key_id] = grants
    return grants


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


def check(
    model: ReadModel,
    key_id: str,
    permission: str,
    location_id: str,
    item_owner_is_key: bool,
    now: datetime,
) -> Decision:
    """The decision, with its reasons sorted. Decisions are shared: read them, never change them."""
    grants = model.grant_cache.get(key_id)
    if grants is None:
        if key_id not in model.keys:
            return g.UNKNOWN_KEY
        grants = key_grants(model, key_id)
    org = grants.org
    if not grants.plain or not org.api_module_enabled:  # type: ignore[union-attr]
        denied = g.status_denial(grants, now)
        if denied is not None:
            return denied
    entry = grants.get(permission)
    if entry is None:
        return g.NOT_GRANTED
    if type(entry) is dict:
        found = entry.get(location_id)  # only existing locations are compiled in
        if found is not None:
            return found.own if item_owner_is_key else found.others
        anywhere = grants.everywhere.get(permission)
        if anywhere is None:
            return g.NOT_GRANTED
        answer = anywhere
    else:
        answer = entry  # type: ignore[assignment]  # not a dict: an Answer
    if location_id not in org.locations:  # type: ignore[union-attr]
        return g.NOT_GRANTED
    return answer.own if item_owner_is_key else answer.others


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
    scoped = grants.at
    for location_id in sorted(model.organizations[view.organization_id].locations):
        permissions = set(grants.everywhere) | {p for p, at in scoped.items() if location_id in at}
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
