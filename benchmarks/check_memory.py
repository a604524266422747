"""Resident memory of the read model holding ~1,000,000 (key, location, permission) grants.

Run in a fresh process per measurement (allocators keep freed memory), by ``checks.py``:

    .venv/bin/python -m benchmarks.check_memory model|baseline [--keys 20000]

``model``: fold the events of `keys` keys (5 leaf locations each, two roles of 5 permissions,
location_only and location_and_below: 50 grants a key) through the projection rules and check
every key once so every grant is materialised as the service holds it under load.
``baseline``: the same grants as a plain set of (key, location, permission) tuples.
Prints one JSON line: rss growth in bytes, the grants counted and the keys' stored rows' bytes.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
from collections.abc import Iterator

from benchmarks import check_workload as w
from contracts import events as ev
from contracts.codec import json_encoder
from services.projections import model as rules

ROLES = {
    "M0": [(f"p{i}", "location_only") for i in range(5)],
    "M1": [(f"q{i}", "location_and_below") for i in range(5)],
}
LOCATIONS = 1_000


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def leaves() -> list[str]:
    parents = {w.parent_of(i) for i in range(LOCATIONS)}
    return [w.location_id(i) for i in range(LOCATIONS) if w.location_id(i) not in parents]


def key_events(keys: int) -> Iterator[ev.AnyEvent]:
    rng = random.Random(3)
    pos = w.Positions()
    yield from w.org_events(pos, LOCATIONS, ROLES)
    leaf_ids = leaves()
    for k in range(keys):
        key_id = f"k{k}"
        yield w.created(pos, key_id, w.key_state(key_id, rng.sample(leaf_ids, 5), list(ROLES)))


def measure_model(keys: int) -> dict[str, int]:
    gc.collect()
    before = rss_bytes()
    model = rules.fold(key_events(keys))
    gc.collect()
    folded = rss_bytes()
    grants = 0
    for key_id in model.keys:
        rules.check(model, key_id, "p0", "L999", False, w.NOW)
        cached = rules.key_grants(model, key_id)
        grants += sum(len(at) for at in cached.at.values())
        grants += len(cached.everywhere) * LOCATIONS
    gc.collect()
    after = rss_bytes()
    stored = sum(len(json_encoder.encode(view.state)) for view in model.keys.values())
    return {
        "keys": len(model.keys),
        "state_json_bytes": stored,  # the keys' rows as the view store holds them
        "grants": grants,
        "rss_growth": after - before,
        "rss_folded": folded - before,
        "rss_total": after,
        "cached_keys": len(model.grant_cache),
    }


def measure_baseline(keys: int) -> dict[str, int]:
    gc.collect()
    before = rss_bytes()
    grants: set[tuple[str, str, str]] = set()
    for event in key_events(keys):
        if isinstance(event, ev.ApiKeyCreated):
            for role_id in event.key.role_ids:
                for permission, _ in ROLES[role_id]:
                    for loc in event.key.location_ids:
                        grants.add((event.key_id, loc, permission))
    gc.collect()
    after = rss_bytes()
    return {"grants": len(grants), "rss_growth": after - before, "rss_total": after}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["model", "baseline"])
    parser.add_argument("--keys", type=int, default=20_000)
    args = parser.parse_args()
    measure = measure_model if args.what == "model" else measure_baseline
    print(json.dumps(measure(args.keys)))


if __name__ == "__main__":
    main()
