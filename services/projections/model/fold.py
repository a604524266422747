"""The rules: how each contract event changes the read model. Pure: no I/O, no clock.

State folding is deterministic, so live answers, rebuilds and as-of answers all come from
folding the same events through ``apply``. An event drops the compiled grants it may change
(or recompiles only the permissions a role change moved); key status is decided at query time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from contracts import events as ev
from contracts.common import Permission
from services.projections.model import grants as g
from services.projections.model.state import ReadModel
from services.projections.model.values import (
    KeyMeta,
    KeyView,
    LocationNode,
    OrganizationView,
    RoleDefinition,
    SecretRef,
)


class Touched(NamedTuple):
    """What one applied event changed, so a store writes only those rows."""

    organization_id: str
    key_id: str | None


def restore(
    position: int, organizations: dict[str, OrganizationView], keys: dict[str, KeyView]
) -> ReadModel:
    """A read model from stored rows; the indexes are derived, never stored as truth."""
    model = ReadModel(position=position, organizations=organizations)
    for key_id, view in keys.items():
        _put_key(model, key_id, view)
    return model


def apply(model: ReadModel, event: ev.AnyEvent) -> Touched | None:
    """Fold one event; an event at or below the model's position changes nothing."""
    if event.position <= model.position:
        return None
    model.position = event.position
    org_id = event.organization_id
    if isinstance(event, ev.KeyEvent):
        model.release(model.grant_cache.pop(event.key_id, None))
        _put_key(model, event.key_id, KeyView(org_id, event.key, _meta(model, event)))
        return Touched(org_id, event.key_id)
    org = model.organizations.get(org_id)
    if org is None:  # keys compiled before their organization was known must look again
        org = model.organizations[org_id] = OrganizationView()
        model.trees.pop(org_id, None)
        _forget_grants(model, org_id)
    match event:
        case ev.ApiModuleEnabled():
            org.api_module_enabled = True
        case ev.ApiModuleDisabled():
            org.api_module_enabled = False
        case ev.ApiAdministratorGranted():
            org.administrators = sorted({*org.administrators, event.user_id})
        case ev.ApiAdministratorRevoked():
            org.administrators = [u for u in org.administrators if u != event.user_id]
        case ev.LocationDefined() | ev.LocationRenamed() | ev.LocationMoved():
            _place(model, org_id, event.location_id, event.parent_id)
            org.locations[event.location_id] = LocationNode(event.name, event.parent_id)
            _tree_changed(model, org_id)
        case ev.LocationRemoved():
            _place(model, org_id, event.location_id, None, removed=True)
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


def _meta(model: ReadModel, event: ev.KeyEvent) -> KeyMeta:
    old = model.keys.get(event.key_id)
    return next_meta(None if old is None else old.meta, event)


def next_meta(old: KeyMeta | None, event: ev.KeyEvent) -> KeyMeta:
    """Created by and when from the key's first event, changed by and when from this one."""
    first = old is None or isinstance(event, ev.ApiKeyCreated)
    return KeyMeta(
        created_at=event.occurred_at if first else old.created_at,  # type: ignore[union-attr]
        created_by=event.actor_id if first else old.created_by,  # type: ignore[union-attr]
        changed_at=event.occurred_at,
        changed_by=event.actor_id,
    )


def fold(events: Iterable[ev.AnyEvent], model: ReadModel | None = None) -> ReadModel:
    model = model if model is not None else ReadModel()
    for event in events:
        apply(model, event)
    return model


def _place(
    model: ReadModel, org_id: str, location_id: str, parent_id: str | None, removed: bool = False
) -> None:
    """Keep the organization's tree (when one has been worked out) as the locations will be."""
    children = model.trees.get(org_id)
    if children is None:
        return
    old = model.organizations[org_id].locations.get(location_id)
    if old is not None:
        if not removed and old.parent_id == parent_id:
            return  # renamed: the tree is unchanged
        siblings = children.get(old.parent_id)
        if siblings is not None:
            siblings.pop(location_id, None)
            if not siblings:
                del children[old.parent_id]
    if not removed:
        children.setdefault(parent_id, {})[location_id] = None


def _tree_changed(model: ReadModel, org_id: str) -> None:
    model.release(model.org_indexes.pop(org_id, None))
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
    model.release(index.role_changed(role_id))
    if not names:
        return
    cache, keys, spent = model.grant_cache, model.keys, 0
    for key_id in model.org_keys.get(org_id, ()):
        grants = cache.get(key_id)
        if grants is None or role_id not in keys[key_id].state.role_ids:
            continue
        state = keys[key_id].state
        # within one event's budget; past it (or for a key answered directly) the grants are
        # dropped and worked out again when the key is next asked about
        cost = 0 if grants.direct else g.compile_cost(index, state, g.COMPILE_BUDGET)
        spent += cost
        if grants.direct is not None or cost > g.COMPILE_BUDGET or spent > g.COMPILE_BUDGET:
            model.release(cache.pop(key_id))
        else:
            cache[key_id] = g.refresh(index, grants, state, names)
            model.release(grants)


def _forget_grants(model: ReadModel, org_id: str, role_id: str | None = None) -> None:
    """Drop the compiled grants of the organization's keys (holding the role, when given)."""
    cache, keys = model.grant_cache, model.keys
    for key_id in model.org_keys.get(org_id, ()):
        if key_id in cache and (role_id is None or role_id in keys[key_id].state.role_ids):
            model.release(cache.pop(key_id))


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
