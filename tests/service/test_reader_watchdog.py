"""A partition's reader that stops reading while its replica holds the partition is noticed
from Redis (entries wait after the group's last delivered id, which does not move, with the
consumer idle) and its worker ends, so that the partition is given back and taken again with
a new reader. A reader that reads, a consumer busy with a batch, and a stream with nothing
waiting are never judged stalled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.keys.health import Readiness
from services.keys.partitions.worker import PartitionWorker
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams import watchdog
from services.keys.streams.consumer import ensure_group
from services.keys.streams.watchdog import ReaderWatch
from tests.support.keys_settings import keys_settings
from tests.support.scenario import organization_setup

STALL = 5.0


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_entries_waiting_undelivered_with_the_consumer_idle_are_a_stall(
    redis: Redis, unique: str
) -> None:
    stream = f"{unique}.commands"
    await ensure_group(redis, stream, "g")
    watch = ReaderWatch(redis, stream, "g", STALL)
    assert not await watch.stalled(busy=False, now=0.0)
    assert not await watch.stalled(busy=False, now=100.0)  # nothing waiting: never a stall
    await redis.xadd(stream, {"__data__": b"{}"})
    # measured from the last look that found nothing waiting
    assert not await watch.stalled(busy=False, now=101.0)
    assert not await watch.stalled(busy=False, now=100.0 + STALL - 0.5)
    assert await watch.stalled(busy=False, now=100.0 + STALL)
    assert not await watch.stalled(busy=True, now=200.0)  # a batch in hand: not judged
    assert not await watch.stalled(busy=False, now=200.0 + STALL - 0.5)
    assert await watch.stalled(busy=False, now=200.0 + STALL)


async def test_a_reader_that_delivers_is_not_a_stall(redis: Redis, unique: str) -> None:
    stream = f"{unique}.commands"
    await ensure_group(redis, stream, "g")
    watch = ReaderWatch(redis, stream, "g", STALL)
    await redis.xadd(stream, {"__data__": b"{}"})
    assert not await watch.stalled(busy=False, now=0.0)
    await redis.xreadgroup("g", "c", {stream: ">"}, count=1)
    await redis.xadd(stream, {"__data__": b"{}"})
    assert not await watch.stalled(busy=False, now=STALL)  # delivered meanwhile: moving
    await redis.xreadgroup("g", "c", {stream: ">"}, count=1)
    assert not await watch.stalled(busy=False, now=3 * STALL)  # all delivered


async def test_a_worker_whose_reader_stopped_ends_and_one_that_reads_does_not(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watchdog, "STALL_SECONDS", 2.0)
    settings = keys_settings(redis_url, unique, commands_stream=f"{unique}.commands.0")
    await ensure_group(redis, settings.commands_stream, settings.group)
    app = ApiKeysApplication(f"sqlite:///{tmp_path / 'e.db'}")
    worker = PartitionWorker(
        settings.commands_stream, settings, app, redis, Readiness(), lambda: None
    )
    commands = organization_setup("acme", locations=1, roles=0)
    try:
        await worker.start()
        await redis.xadd(settings.commands_stream, {"__data__": json.dumps(commands[0])})
        await until(lambda: results(redis, settings), 1, "the first command answered")
        await asyncio.sleep(2 * watchdog.STALL_SECONDS)
        assert not worker.ended.is_set()  # reading, idle, nothing waiting

        assert worker.broker is not None
        await worker.broker.stop()  # the reader stops; the worker does not know
        # a read it left blocked in Redis (BLOCK of the subscriber's 1 s polling interval)
        # would still be handed the next entry: let it end unanswered first
        await asyncio.sleep(1.5)
        await redis.xadd(settings.commands_stream, {"__data__": json.dumps(commands[1])})
        await asyncio.wait_for(worker.ended.wait(), watchdog.STALL_SECONDS + 15)
        assert await results(redis, settings) == 1  # left for the partition's next reader
    finally:
        await worker.stop()
        app.close()


async def results(redis: Redis, settings: KeysSettings) -> int:
    return int(await redis.xlen(settings.results_stream))


async def until(count: object, expected: int, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await count() < expected:  # type: ignore[operator]
        if loop.time() > deadline:
            pytest.fail(f"{what}: not within 10 s")
        await asyncio.sleep(0.1)
