"""Fencing in the event store: a partition's epoch taken by a new holder makes every batch of
the holder before it fail, store nothing and stop its consumer (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication, Fence, Fenced
from services.keys.streams.consumer import CommandConsumer, ensure_group
from services.keys.streams.intake import read_entry
from tests.support.keys_settings import keys_settings
from tests.support.scenario import organization_setup


@pytest.fixture
def app(event_store_url: str) -> Iterator[ApiKeysApplication]:
    application = ApiKeysApplication(event_store_url)
    yield application
    application.close()


def entries(org: str) -> list[Entry]:
    out = []
    for n, command in enumerate(organization_setup(org, locations=1, roles=0)):
        parsed = read_entry(f"1-{n}", {b"__data__": json.dumps(command).encode()}, "s")
        assert not hasattr(parsed, "dead_letter")
        out.append(Entry(f"1-{n}", parsed))  # type: ignore[arg-type]
    return out


def test_each_take_of_a_partition_gets_the_next_epoch(app: ApiKeysApplication) -> None:
    assert [app.take_epoch("p.0") for _ in range(3)] == [1, 2, 3]
    assert app.take_epoch("p.1") == 1


def test_a_batch_with_the_current_epoch_is_stored(app: ApiKeysApplication) -> None:
    epoch = app.take_epoch("p.0")
    processor = CommandProcessor(app, fence=Fence("p.0", epoch))
    results = processor.process(entries("acme"))
    assert {r.status for r in results} == {"accepted"}
    assert app.recorder.max_notification_id()


def test_a_batch_with_an_older_epoch_is_refused_and_stores_nothing(
    app: ApiKeysApplication,
) -> None:
    deposed = CommandProcessor(app, fence=Fence("p.0", app.take_epoch("p.0")))
    successor = CommandProcessor(app, fence=Fence("p.0", app.take_epoch("p.0")))
    before = app.recorder.max_notification_id() or 0
    with pytest.raises(Fenced, match="epoch 1 is no longer current"):
        deposed.process(entries("acme"))
    assert (app.recorder.max_notification_id() or 0) == before
    results = successor.process(entries("acme"))
    assert {r.status for r in results} == {"accepted"}


def test_a_fenced_batch_is_not_retried_one_by_one(app: ApiKeysApplication) -> None:
    """A conflict replays a batch command by command; a refusal by the fence must not."""
    deposed = CommandProcessor(app, fence=Fence("p.0", app.take_epoch("p.0")))
    app.take_epoch("p.0")
    with pytest.raises(Fenced):
        deposed.process(entries("acme"))
    assert app.recorder.max_notification_id() in (None, 0)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_fenced_consumer_answers_nothing_leaves_the_batch_pending_and_stops(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings = keys_settings(redis_url, unique)
    await ensure_group(redis, settings.commands_stream, settings.group)
    app = ApiKeysApplication(f"sqlite:///{tmp_path / 'e.db'}")
    fenced: list[Fenced] = []
    processor = CommandProcessor(app, fence=Fence("x", app.take_epoch("x")))
    app.take_epoch("x")  # another replica took the partition over
    consumer = CommandConsumer(
        settings, processor, redis, retry_delays=(0.0,), on_fenced=fenced.append
    )
    for command in organization_setup("acme", locations=1, roles=0):
        await redis.xadd(settings.commands_stream, {"__data__": json.dumps(command)})
    reply = await redis.xreadgroup(
        settings.group, settings.consumer, {settings.commands_stream: ">"}, count=100
    )
    batch = list(reply[0][1])
    await consumer.on_batch([i for i, _ in batch], [d for _, d in batch])
    assert len(fenced) == 1 and consumer.stopping
    assert await redis.xlen(settings.results_stream) == 0
    assert await redis.xlen(settings.dead_letter_stream) == 0
    pending = await redis.xpending(settings.commands_stream, settings.group)
    assert pending["pending"] == len(batch)
    app.close()
