"""The reference world: an obviously-correct state of organizations and keys, random operations
on it, and the contract event each operation stands for (with a from-scratch check answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from contracts import events as ev
from contracts.common import SCOPES, MatrixCell, Permission
from contracts.queries import Reason
from tests.support.projection_builders import T0, key_state

NOW = T0 + timedelta(days=1)
ORGS = ("o1", "o2")
LOCATIONS = ("a", "b", "c", "d")
ROLES = ("r1", "r2")
PERMISSIONS = ("view", "edit")
KEY_ORG = {"k1": "o1", "k2": "o1", "k3": "o2"}
EXPIRIES = (None, NOW - timedelta(seconds=1), NOW + timedelta(seconds=1))


@dataclass
class Org:
    module: bool = False
    parents: dict[str, str | None] = field(default_factory=dict)
    roles: dict[str, list[Permission]] = field(default_factory=dict)


@dataclass
class World:
    """The obviously-correct state: plain dicts, kept by the test alongside the events."""

    orgs: dict[str, Org] = field(default_factory=lambda: {o: Org() for o in ORGS})
    keys: dict[str, ev.KeyState] = field(default_factory=dict)


def at_or_below(org: Org, location: str, ancestor: str) -> bool:
    seen: set[str] = set()
    current: str | None = location
    while current is not None and current in org.parents and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = org.parents[current]
    return False


def reference(world: World, key_id: str, permission: str, location: str, own: bool) -> Any:
    key = world.keys.get(key_id)
    if key is None:
        return False, [], "unknown_key"
    org = world.orgs[KEY_ORG[key_id]]
    for failed, because in (
        (key.deleted, "deleted"),
        (not org.module, "api_module_disabled"),
        (not key.enabled, "disabled"),
        (key.expires_at is not None and key.expires_at <= NOW, "expired"),
    ):
        if failed:
            return False, [], because
    reasons = set()
    for role_id in key.role_ids:
        for key_location in key.location_ids:
            cells = [c for c in key.matrix if (c.role_id, c.location_id) == (role_id, key_location)]
            if role_id not in org.roles or key_location not in org.parents:
                continue
            if location not in org.parents or (cells and not cells[-1].applies):
                continue
            for perm in org.roles[role_id]:
                hit = perm.permission == permission and (
                    perm.scope == "everywhere"
                    or (perm.scope == "location_only" and location == key_location)
                    or (
                        perm.scope == "location_and_below"
                        and at_or_below(org, location, key_location)
                    )
                    or (
                        perm.scope == "own_items"
                        and own
                        and at_or_below(org, location, key_location)
                    )
                )
                if hit:
                    reasons.add(Reason(role_id, key_location, perm.scope))
    return (True, sorted(reasons), None) if reasons else (False, [], "not_granted")


def would_cycle(org: Org, location: str, parent: str | None) -> bool:
    return parent is not None and at_or_below(org, parent, location)


permissions_st = st.lists(
    st.builds(Permission, st.sampled_from(PERMISSIONS), st.sampled_from(SCOPES)), max_size=3
)
operation = st.one_of(
    st.tuples(
        st.just("location"),
        st.sampled_from(ORGS),
        st.sampled_from(LOCATIONS),
        st.sampled_from((None, *LOCATIONS)),
    ),
    st.tuples(st.just("remove_location"), st.sampled_from(ORGS), st.sampled_from(LOCATIONS)),
    st.tuples(st.just("role"), st.sampled_from(ORGS), st.sampled_from(ROLES), permissions_st),
    st.tuples(st.just("remove_role"), st.sampled_from(ORGS), st.sampled_from(ROLES)),
    st.tuples(st.just("module"), st.sampled_from(ORGS), st.booleans()),
    st.tuples(
        st.just("key"),
        st.sampled_from(sorted(KEY_ORG)),
        st.lists(st.sampled_from(LOCATIONS), max_size=3),
        st.lists(st.sampled_from(ROLES), max_size=2),
        st.lists(
            st.builds(
                MatrixCell, st.sampled_from(ROLES), st.sampled_from(LOCATIONS), st.booleans()
            ),
            max_size=3,
        ),
        st.sampled_from((True, True, True, False)),  # enabled, mostly
        st.sampled_from((False, False, False, True)),  # deleted, rarely
        st.sampled_from((None, None, *EXPIRIES)),
    ),
)


# a populated start, so that most random steps change answers somebody can observe
SETUP: list[tuple[Any, ...]] = [
    *(("module", org, True) for org in ORGS),
    *(
        ("location", org, loc, parent)
        for org in ORGS
        for loc, parent in (("a", None), ("b", "a"), ("c", "b"))
    ),
    *(
        ("role", org, role, [Permission("view", scope), Permission("edit", "location_only")])
        for org in ORGS
        for role, scope in (("r1", "location_and_below"), ("r2", "own_items"))
    ),
]


def to_event(world: World, op: tuple[Any, ...], position: int) -> ev.AnyEvent | None:
    """Update the world and return the matching contract event (None for a refused change)."""
    kind, common = op[0], {"position": position, "occurred_at": T0}
    if kind == "key":
        _, key_id, locations, roles, matrix, enabled, deleted, expires = op
        state = key_state(
            name=key_id,
            location_ids=locations,
            role_ids=roles,
            matrix=matrix,
            enabled=enabled,
            deleted=deleted,
            expires_at=expires,
        )
        cls = ev.ApiKeyEnabled if key_id in world.keys else ev.ApiKeyCreated
        world.keys[key_id] = state
        return cls(organization_id=KEY_ORG[key_id], key_id=key_id, key=state, **common)
    org_id = op[1]
    org = world.orgs[org_id]
    common["organization_id"] = org_id
    if kind == "location":
        _, _, location, parent = op
        if parent not in (None, *org.parents) or would_cycle(org, location, parent):
            return None
        cls = ev.LocationMoved if location in org.parents else ev.LocationDefined
        org.parents[location] = parent
        return cls(location_id=location, name=location, parent_id=parent, **common)
    if kind == "remove_location":
        org.parents.pop(op[2], None)
        return ev.LocationRemoved(location_id=op[2], **common)
    if kind == "role":
        cls = ev.RolePermissionsChanged if op[2] in org.roles else ev.RoleDefined
        org.roles[op[2]] = op[3]
        return cls(role_id=op[2], name=op[2], permissions=op[3], **common)
    if kind == "remove_role":
        org.roles.pop(op[2], None)
        return ev.RoleRemoved(role_id=op[2], **common)
    org.module = op[2]
    return (ev.ApiModuleEnabled if op[2] else ev.ApiModuleDisabled)(**common)
