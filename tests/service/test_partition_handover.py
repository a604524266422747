"""A replica that lost a partition's lease (it expired during a Redis failover and another
replica took it) stops its worker without holding the partition any more: it does not renew
that lease while the worker stops (renewing takes a free lease, so it took the partition back
as soon as the other replica gave it up, for a worker that was stopping), and a worker that
does not stop is off its hands within a bounded time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.keys.health import Readiness
from services.keys.partitions import coordinator as coordination
from services.keys.partitions.coordinator import Coordinator, Held
from services.keys.partitions.leases import lease_key
from services.keys.partitions.relay_duty import relay_lease_name
from services.keys.settings import KeysSettings


class StuckWorker:
    """A partition worker whose stop never ends."""

    def stop_reading(self) -> None:
        pass

    async def stop(self) -> None:
        await asyncio.Event().wait()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_lost_lease_is_not_taken_back_while_its_worker_stops(
    redis: Redis, redis_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coordination, "STOP_SECONDS", 1.0)
    settings = KeysSettings(
        redis_url=redis_url,
        commands_stream=f"{unique}.commands",
        events_stream=f"{unique}.events",
        consumer="keys-a",
    )
    # another replica runs the relay: this one's passes only handle the partition
    await redis.set(lease_key(relay_lease_name(settings.events_stream)), "keys-z|r", px=60_000)
    here = Coordinator(settings, None, redis, redis, Readiness())  # type: ignore[arg-type]
    stream = settings.commands_stream
    assert await here.leases.acquire(stream)
    waiting = asyncio.create_task(asyncio.Event().wait())
    here.held[stream] = Held(StuckWorker(), waiting)  # type: ignore[arg-type]
    try:
        await redis.set(lease_key(stream), "keys-b|1", px=60_000)  # taken over meanwhile
        await here.one_pass()  # the lease is lost: its worker is being stopped
        assert here.held[stream].leaving
        await redis.delete(lease_key(stream))  # the other replica gives the partition up
        await here.one_pass()
        assert await redis.get(lease_key(stream)) is None  # not taken back for a stopping worker
        await asyncio.sleep(coordination.STOP_SECONDS + 0.5)
        assert stream not in here.held  # off its hands although the worker never stopped
    finally:
        for task in [waiting, *here.background]:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(waiting, *here.background, return_exceptions=True)
