"""The check benchmark's data: an organization tree, roles with mixed scopes, keys, a history
of key changes, and a random mix of allowed and denied queries. Deterministic (seeded).

The events come from tests.support.workload (the history-fold tests use them too); the queries
and the publishing are the benchmarks' own."""

from __future__ import annotations

import random
from typing import Any

from contracts import events as ev
from contracts.codec import json_encoder
from tests.support.workload import (
    NOW,
    ORG,
    PAST,
    PERMISSIONS,
    ROLES,
    SHARED_ROLE,
    T0,
    Positions,
    check_events,
    created,
    key_state,
    location_id,
    org_events,
    parent_of,
)

__all__ = [
    "NOW",
    "ORG",
    "PAST",
    "PERMISSIONS",
    "ROLES",
    "SHARED_ROLE",
    "T0",
    "Positions",
    "check_events",
    "created",
    "key_state",
    "location_id",
    "org_events",
    "parent_of",
    "Query",
    "publish",
    "queries",
    "query_path",
]

Query = tuple[str, str, str, bool]


def queries(
    states: dict[str, ev.KeyState], count: int, locations: int = 1_000, seed: int = 11
) -> list[Query]:
    """key, permission, location, item_owner_is_key: half at one of the key's own locations,
    1% unknown keys, a permission nobody holds now and then."""
    rng = random.Random(seed)
    key_ids = list(states)
    found: list[Query] = []
    for _ in range(count):
        key_id = rng.choice(key_ids) if rng.random() > 0.01 else f"unknown{rng.randrange(99)}"
        state = states.get(key_id)
        if state is not None and rng.random() < 0.5:
            loc = rng.choice(state.location_ids)
        else:
            loc = location_id(rng.randrange(locations))
        found.append((key_id, rng.choice(PERMISSIONS), loc, rng.random() < 0.1))
    return found


def query_path(query: Query) -> str:
    key_id, permission, loc, own = query
    path = f"/v1/check?key_id={key_id}&permission={permission}&location_id={loc}"
    return path + "&item_owner=key" if own else path


def publish(client: Any, events: list[ev.AnyEvent], stream: str = "apikeys.events") -> None:
    """XADD the events as the relay does: entry id ``<position>-1``, one ``__data__`` field."""
    for start in range(0, len(events), 2000):
        pipe = client.pipeline(transaction=False)
        for event in events[start : start + 2000]:
            pipe.xadd(stream, {"__data__": json_encoder.encode(event)}, id=f"{event.position}-1")
        pipe.execute()
