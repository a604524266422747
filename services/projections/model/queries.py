"""Questions answered from the read model: a key's compiled grants, its status, a check, its
effective permissions and the keys holding a permission. Pure: the time is given."""

from __future__ import annotations

from datetime import datetime

from contracts.queries import KeyStatus, Reason
from services.projections.model import grants as g
from services.projections.model.decisions import NOT_GRANTED, UNKNOWN_KEY, Decision
from services.projections.model.grants import KeyGrants, aware
from services.projections.model.state import GRANT_CACHE_LIMIT, ReadModel


def key_grants(model: ReadModel, key_id: str) -> KeyGrants:
    """The key's compiled grants (the key must exist), cached until an event may change them."""
    cached = model.grant_cache.get(key_id)
    if cached is not None:
        return cached
    if len(model.answers) >= model.answer_limit:
        model.drop_derived()
    view = model.keys[key_id]
    org_id = view.organization_id
    org = model.organizations.get(org_id)
    index = model.org_indexes.get(org_id)
    if index is None and org is not None:
        children = model.trees.get(org_id)
        if children is None:
            children = model.trees[org_id] = g.tree(org)
        index = model.org_indexes[org_id] = g.OrgIndex(org, model.answers, children)
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
            return UNKNOWN_KEY
        grants = key_grants(model, key_id)
    org = grants.org
    if not grants.plain or not org.api_module_enabled:  # type: ignore[union-attr]
        denied = g.status_denial(grants, now)
        if denied is not None:
            return denied
        if grants.direct is not None:
            found = grants.direct.answer(permission, location_id)
            if found is None:
                return NOT_GRANTED
            return found.own if item_owner_is_key else found.others
    entry = grants.get(permission)
    if entry is None:
        return NOT_GRANTED
    if type(entry) is dict:
        found = entry.get(location_id)  # only existing locations are compiled in
        if found is not None:
            return found.own if item_owner_is_key else found.others
        anywhere = grants.everywhere.get(permission)
        if anywhere is None:
            return NOT_GRANTED
        answer = anywhere
    else:
        answer = entry  # type: ignore[assignment]  # not a dict: an Answer
    if location_id not in org.locations:  # type: ignore[union-attr]
        return NOT_GRANTED
    return answer.own if item_owner_is_key else answer.others


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
