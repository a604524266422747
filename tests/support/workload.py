"""The check workload's events: an organization tree, roles with mixed scopes, keys and a history
of key changes. Deterministic (seeded). The check benchmarks and the history-fold tests use it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec

from contracts import events as ev
from contracts.common import MatrixCell, Permission

ORG = "bench"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
PAST = datetime(2020, 1, 1, tzinfo=UTC)
ROLES: dict[str, list[tuple[str, str]]] = {
    "R0": [("view", "location_and_below"), ("list", "location_and_below")],
    "R1": [("export", "location_only"), ("view_private", "location_only")],
    "R2": [("audit", "everywhere")],
    "R3": [("edit", "own_items"), ("delete", "own_items")],
    "R4": [("restart", "location_and_below"), ("configure", "location_only")],
}
PERMISSIONS = sorted({p for perms in ROLES.values() for p, _ in perms}) + ["never_granted"]
SHARED_ROLE = "R0"  # held by every key: the role-change figure changes it


def location_id(i: int) -> str:
    return f"L{i}"


def parent_of(i: int, fanout: int = 10) -> str | None:
    """A tree of fanout 10: L0 > L1..L10 > L11..L110 > the rest (mostly leaves)."""
    return None if i == 0 else location_id((i - 1) // fanout)


class Positions:
    def __init__(self) -> None:
        self.position = 0

    def next(self) -> int:
        self.position += 1
        return self.position


def org_events(
    pos: Positions, locations: int, roles: dict[str, list[tuple[str, str]]]
) -> Iterator[ev.AnyEvent]:
    base = {"organization_id": ORG, "occurred_at": T0}
    yield ev.OrganizationRegistered(position=pos.next(), **base)
    yield ev.ApiModuleEnabled(position=pos.next(), **base)
    for i in range(locations):
        yield ev.LocationDefined(
            position=pos.next(),
            location_id=location_id(i),
            name=f"Location {i}",
            parent_id=parent_of(i),
            **base,
        )
    for role_id, perms in roles.items():
        yield ev.RoleDefined(
            position=pos.next(),
            role_id=role_id,
            name=role_id,
            permissions=[Permission(p, s) for p, s in perms],  # type: ignore[arg-type]
            **base,
        )


def key_state(key_id: str, location_ids: list[str], role_ids: list[str]) -> ev.KeyState:
    return ev.KeyState(
        name=f"Key {key_id}",
        location_ids=location_ids,
        role_ids=role_ids,
        matrix=[MatrixCell(r, loc, True) for r in role_ids for loc in location_ids],
        enabled=True,
        deleted=False,
        expires_at=None,
        secret_sha256=f"{abs(hash(key_id)):064x}"[-64:],
        secret_hint="apk_...0000",
    )


def created(pos: Positions, key_id: str, state: ev.KeyState) -> ev.ApiKeyCreated:
    return ev.ApiKeyCreated(
        position=pos.next(), organization_id=ORG, occurred_at=T0, key_id=key_id, key=state
    )


def check_events(
    keys: int = 10_000, locations: int = 1_000, history: int = 100_000, seed: int = 7
) -> tuple[list[ev.AnyEvent], dict[str, ev.KeyState]]:
    """Organization set-up, `keys` keys (3 locations, the shared role and 1-2 more, a few
    matrix cells off, ~3% disabled / deleted / expired), then key changes up to `history`
    events in all. Returns the events and each key's final state."""
    rng = random.Random(seed)
    pos = Positions()
    events: list[ev.AnyEvent] = list(org_events(pos, locations, ROLES))
    states: dict[str, ev.KeyState] = {}
    others = [r for r in ROLES if r != SHARED_ROLE]
    for k in range(keys):
        key_id = f"k{k}"
        locs = [location_id(i) for i in rng.sample(range(locations), 3)]
        roles = [SHARED_ROLE, *rng.sample(others, rng.randint(1, 2))]
        state = key_state(key_id, locs, roles)
        if k % 10 == 3:
            off = state.matrix[rng.randrange(len(state.matrix))]
            state = msgspec.structs.replace(
                state,
                matrix=[MatrixCell(c.role_id, c.location_id, c is not off) for c in state.matrix],
            )
        fate = k % 100
        if fate == 1:
            state = msgspec.structs.replace(state, enabled=False)
        elif fate == 2:
            state = msgspec.structs.replace(state, deleted=True)
        elif fate == 3:
            state = msgspec.structs.replace(state, expires_at=PAST)
        states[key_id] = state
        events.append(created(pos, key_id, state))
    key_ids = list(states)
    while len(events) < history:
        key_id = rng.choice(key_ids)
        state = msgspec.structs.replace(states[key_id], name=f"renamed {len(events)}")
        states[key_id] = state
        events.append(
            ev.ApiKeyRenamed(
                position=pos.next(),
                organization_id=ORG,
                occurred_at=T0,
                key_id=key_id,
                key=state,
                name=state.name,
            )
        )
    return events, states
