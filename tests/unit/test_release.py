"""What the fold drops is kept aside in the live model and freed a slice at a time
(``gc_policy.release``), yielding to the event loop between slices, and taking apart only what
nothing else refers to: every answer afterwards is what a model folded afresh gives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.projections.model import gc_policy, queries
from services.projections.model.fold import apply, fold
from services.projections.model.state import ReadModel
from tests.support.projection_builders import EventLog

NOW = datetime(2025, 1, 1, tzinfo=UTC)
PERMISSIONS = [f"p{i}" for i in range(80)]


def answers(model: ReadModel, keys: list[str], locations: list[str]) -> list[object]:
    return [
        queries.check(model, key, permission, location, False, NOW)
        for key in keys
        for permission in [*PERMISSIONS, "new"]
        for location in locations[::7]
    ]


async def test_released_grants_are_freed_in_slices_and_live_answers_stay_whole() -> None:
    log = EventLog().setup()
    log.location("root")
    locations = ["root"]
    for i in range(100):
        locations.append(f"L{i}")
        log.location(f"L{i}", "root" if i < 10 else f"L{i // 10 - 1}")
    log.role("R0", *[(p, "location_and_below") for p in PERMISSIONS])
    log.role("R1", *[(p, "location_only") for p in PERMISSIONS])
    keys = [f"k{i}" for i in range(40)]
    for i, key in enumerate(keys):
        log.create_key(key, [f"L{i}", f"L{i + 50}"], ["R0", "R1"])
    model = fold(log.events)
    model.released = []
    answers(model, keys, locations)  # every key compiled
    changed = log.role("R0", *[(p, "location_and_below") for p in [*PERMISSIONS[1:], "new"]])
    apply(model, changed)
    apply(model, log.move("L12", "L3"))
    assert model.released  # dropped grants, blocks and an index, kept aside

    yields = 0

    async def count_yields() -> None:
        nonlocal yields
        while True:
            await asyncio.sleep(0)
            yields += 1

    counter = asyncio.create_task(count_yields())
    await gc_policy.release(model, step=50)
    counter.cancel()
    assert model.released == [] and yields > 1  # freed in several slices
    assert answers(model, keys, locations) == answers(fold(log.events), keys, locations)


def test_a_model_outside_the_live_service_frees_at_once() -> None:
    log = EventLog().setup()
    log.location("root")
    log.role("R0", ("view", "location_and_below"))
    log.create_key("k", ["root"], ["R0"])
    model = fold(log.events)
    queries.check(model, "k", "view", "root", False, NOW)
    apply(model, log.role("R0", ("edit", "location_and_below"), changed=True))
    assert model.released is None
