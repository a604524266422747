"""The stream follower through a view-store outage, against the session's private Redis: it
keeps applying in memory, says the store is down, and saves everything once it answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from redis.asyncio import Redis

from services.common.resilience import cancel_all
from services.projections.feed.follower import StreamFollower
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel
from services.projections.store import open_store
from services.projections.store.batch import Batch
from services.projections.store.sql import SqlViewStore
from tests.support.projection_builders import EventLog, stream_fields


class UnreachableStore:
    """A real store whose saves fail as during an outage while ``down`` is set."""

    def __init__(self, store: SqlViewStore) -> None:
        self.store = store
        self.down = False
        self.failed_saves = 0

    def save(self, batch: Batch) -> bool:
        if self.down:
            self.failed_saves += 1
            raise OperationalError("connection refused")
        return self.store.save(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def publish(redis: Redis, stream: str, log: EventLog, start: int = 0) -> None:
    for event in log.events[start:]:
        entry_id, fields = stream_fields(event)
        await redis.xadd(stream, fields, id=entry_id)


async def eventually(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_store_outage_is_ridden_out_and_everything_applied_is_saved(
    redis: Redis, unique: str, tmp_path: Any
) -> None:
    stream = f"{unique}.events"
    store = UnreachableStore(open_store(f"sqlite:///{tmp_path / 'views.db'}"))
    live, freshness = LiveReadModel(), Freshness(5.0)
    follower = StreamFollower(redis, stream, live, store, freshness, count=10, block_ms=100)
    follower.save_backoff.cap = 0.1
    log = EventLog().setup()
    log.location("hq")
    log.role("r", ("view", "everywhere"))
    await publish(redis, stream, log)
    running = asyncio.create_task(follower.run())
    try:
        await eventually(lambda: store.position() == log.position)
        store.down = True
        start = len(log.events)
        for k in range(30):
            log.create_key(f"k{k}", ["hq"], ["r"])
        await publish(redis, stream, log, start)
        await eventually(lambda: live.position == log.position)  # memory goes on
        await eventually(lambda: freshness.store.is_down and store.failed_saves >= 2)
        assert store.position() < live.position
        store.down = False
        # `saved`: the save's task has finished too, not only its transaction
        await eventually(lambda: follower.saved and store.position() == live.position)
        assert not freshness.store.is_down
    finally:
        await cancel_all([running])
    stored = store.load()
    assert set(stored.keys) == set(live.model.keys) == {f"k{k}" for k in range(30)}
    rows = store.query("SELECT position FROM {p}event_log ORDER BY position")
    assert [r[0] for r in rows] == sorted({e.position for e in log.events})
    store.close()
