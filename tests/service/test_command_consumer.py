"""CommandConsumer in process, against the session's private Redis: order of answers, dead
letters, acknowledgements, and what happens to an entry whose handling keeps failing."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from eventsourcing.persistence import OperationalError
from redis.asyncio import Redis

from contracts.results import CommandResult
from services.keys.processor import CommandProcessor, Entry
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams.consumer import CommandConsumer, ensure_group
from services.keys.streams.replies import Answer
from tests.support.keys_settings import keys_settings
from tests.support.scenario import key_command, organization_setup


class FailingOn(CommandProcessor):
    """A processor that fails unexpectedly on one command id (a bug, a broken store...)."""

    def __init__(self, app: ApiKeysApplication, poison: str):
        super().__init__(app)
        self.poison = poison

    def process(self, entries: list[Entry]) -> list:  # type: ignore[override]
        if any(e.command.command_id == self.poison for e in entries):
            raise RuntimeError("unexpected failure")
        return super().process(entries)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def settings_for(redis_url: str, unique: str) -> KeysSettings:
    return keys_settings(redis_url, unique, max_deliveries=2)


async def prepared(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> tuple[KeysSettings, ApiKeysApplication]:
    """The test's streams with the group created, and an event store of its own."""
    settings = settings_for(redis_url, unique)
    await ensure_group(redis, settings.commands_stream, settings.group)
    return settings, ApiKeysApplication(f"sqlite:///{tmp_path / 'e.db'}")


async def read_all(redis: Redis, stream: str) -> list[dict]:
    return [json.loads(f[b"__data__"]) for _, f in await redis.xrange(stream)]


async def deliver(redis: Redis, settings: KeysSettings, *payloads: bytes) -> list:
    for payload in payloads:
        await redis.xadd(settings.commands_stream, {"__data__": payload})
    reply = await redis.xreadgroup(
        settings.group, settings.consumer, {settings.commands_stream: ">"}, count=100
    )
    return list(reply[0][1])


async def test_answers_keep_stream_order_around_refused_entries(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings, app = await prepared(redis, redis_url, unique, tmp_path)
    consumer = CommandConsumer(settings, CommandProcessor(app), redis)
    setup = organization_setup("acme", locations=1, roles=0)
    payloads = [
        json.dumps(setup[0]).encode(),
        b'{"type": "Nope"}',
        b'{"type": "RenameApiKey", "command_id": "bad"}',
        json.dumps(setup[1]).encode(),
    ]
    entries = await deliver(redis, settings, *payloads)
    await consumer.handle([i for i, _ in entries], [d for _, d in entries])
    results = await read_all(redis, settings.results_stream)
    assert [r["command_id"] for r in results] == [
        setup[0]["command_id"],
        "bad",
        setup[1]["command_id"],
    ]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    dead = await read_all(redis, settings.dead_letter_stream)
    assert [d["entry_id"] for d in dead] == [entries[1][0].decode(), entries[2][0].decode()]
    assert (await redis.xpending(settings.commands_stream, settings.group))["pending"] == 0


async def test_an_entry_that_keeps_failing_stays_pending_then_is_dead_lettered(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings, app = await prepared(redis, redis_url, unique, tmp_path)
    setup = organization_setup("acme", locations=1, roles=0)
    poison = key_command("RenameApiKey", "acme", "k1", name="x")
    consumer = CommandConsumer(
        settings, FailingOn(app, poison["command_id"]), redis, retry_delays=(0.0,)
    )
    entries = await deliver(redis, settings, *(json.dumps(c).encode() for c in [*setup, poison]))
    await consumer.handle([i for i, _ in entries], [d for _, d in entries])
    results = await read_all(redis, settings.results_stream)
    assert [r["command_id"] for r in results] == [c["command_id"] for c in setup]
    pending = await redis.xpending_range(settings.commands_stream, settings.group, "-", "+", 10)
    assert [p["message_id"] for p in pending] == [entries[-1][0]]

    # redelivered (as after a restart) until its handling has failed max_deliveries times
    for _ in range(settings.max_deliveries - 1):
        assert await read_all(redis, settings.dead_letter_stream) == []
        assert await consumer.recover_own_pending() == 1
    dead = await read_all(redis, settings.dead_letter_stream)
    assert len(dead) == 1 and dead[0]["entry_id"] == entries[-1][0].decode()
    assert dead[0]["deliveries"] == settings.max_deliveries
    assert json.loads(dead[0]["payload"])["command_id"] == poison["command_id"]
    assert (await redis.xpending(settings.commands_stream, settings.group))["pending"] == 0
    assert await consumer.recover_own_pending() == 0


async def test_entries_read_again_after_outages_are_not_dead_lettered(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    """Re-reading a pending entry (as after each reconnect) raises Redis's delivery count, but
    only failures of the command's own handling count toward the budget."""
    settings, app = await prepared(redis, redis_url, unique, tmp_path)
    consumer = CommandConsumer(settings, CommandProcessor(app), redis)
    setup = organization_setup("acme", locations=1, roles=0)
    entries = await deliver(redis, settings, *(json.dumps(c).encode() for c in setup))
    for _ in range(settings.max_deliveries + 3):  # deliveries lost with dropped connections
        await redis.xreadgroup(
            settings.group, settings.consumer, {settings.commands_stream: "0"}, count=100
        )
    pending = await redis.xpending_range(settings.commands_stream, settings.group, "-", "+", 10)
    assert min(p["times_delivered"] for p in pending) > settings.max_deliveries
    assert await consumer.recover_own_pending() == len(entries)
    results = await read_all(redis, settings.results_stream)
    assert [r["status"] for r in results] == ["accepted"] * len(setup)
    assert await read_all(redis, settings.dead_letter_stream) == []


async def test_a_new_batch_waits_for_older_entries_whose_delivery_was_lost(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    """Entries delivered in a reply that never arrived are handled before newer ones."""
    settings, app = await prepared(redis, redis_url, unique, tmp_path)
    consumer = CommandConsumer(settings, CommandProcessor(app), redis)
    setup = organization_setup("acme", locations=1, roles=0)
    older = await deliver(redis, settings, *(json.dumps(c).encode() for c in setup[:2]))
    newer = await deliver(redis, settings, *(json.dumps(c).encode() for c in setup[2:]))
    await consumer.on_batch([i for i, _ in newer], [d for _, d in newer])
    results = await read_all(redis, settings.results_stream)
    assert [r["command_id"] for r in results] == [c["command_id"] for c in setup]
    assert [r["status"] for r in results] == ["accepted"] * len(setup)
    await consumer.on_batch([i for i, _ in newer], [d for _, d in newer])  # delivered twice
    assert len(await read_all(redis, settings.results_stream)) == len(setup)
    assert (
        len(older) == 2
        and (await redis.xpending(settings.commands_stream, settings.group))["pending"] == 0
    )


class UnreachableFor(CommandProcessor):
    """A processor whose store is unreachable for its first ``outages`` calls."""

    def __init__(self, app: ApiKeysApplication, outages: int):
        super().__init__(app)
        self.outages = outages

    def process(self, entries: list[Entry]) -> list:  # type: ignore[override]
        if self.outages:
            self.outages -= 1
            raise OperationalError("connection refused")
        return super().process(entries)


async def test_a_store_outage_holds_the_batch_until_the_store_answers(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings, app = await prepared(redis, redis_url, unique, tmp_path)
    consumer = CommandConsumer(settings, UnreachableFor(app, outages=8), redis, retry_delays=(0.0,))
    setup = organization_setup("acme", locations=1, roles=0)
    entries = await deliver(redis, settings, *(json.dumps(c).encode() for c in setup))
    await consumer.handle([i for i, _ in entries], [d for _, d in entries])
    results = await read_all(redis, settings.results_stream)
    assert [r["status"] for r in results] == ["accepted"] * len(setup)
    assert consumer.parked == set() and not consumer.store_outage.is_down
    assert await read_all(redis, settings.dead_letter_stream) == []


async def test_answers_sent_again_publish_nothing_twice(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    """A reply lost with a dropped connection, or an entry handled twice (a lost delivery, a
    second replica that claimed it): the result goes out only with the XACK that acks it."""
    settings, app = await prepared(redis, redis_url, unique, tmp_path)
    first = CommandConsumer(settings, CommandProcessor(app), redis)
    second = CommandConsumer(settings, CommandProcessor(app), redis)
    setup = organization_setup("acme", locations=1, roles=0)
    entries = await deliver(redis, settings, *(json.dumps(c).encode() for c in setup), b"not json")
    ids, datas = [i for i, _ in entries], [d for _, d in entries]
    await first.handle(ids, datas)
    await second.handle(ids, datas)
    await first.handle(ids, datas)
    results = await read_all(redis, settings.results_stream)
    assert [r["command_id"] for r in results] == [c["command_id"] for c in setup]
    assert [r["status"] for r in results] == ["accepted"] * len(setup)
    assert len(await read_all(redis, settings.dead_letter_stream)) == 1
    assert await first.replies.send([Answer(ids[0].decode(), results_struct(results[0]))]) == 0
    assert len(await read_all(redis, settings.results_stream)) == len(setup)


def results_struct(result: dict) -> CommandResult:
    return msgspec.convert(result, CommandResult)


class CollectorWatch(CommandProcessor):
    """Records whether the cycle collector was running while each batch was processed."""

    def __init__(self, app: ApiKeysApplication):
        super().__init__(app)
        self.collector_running: list[bool] = []

    def process(self, entries: list[Entry]) -> list:  # type: ignore[override]
        self.collector_running.append(gc.isenabled())
        return super().process(entries)


async def test_a_batch_is_handled_with_the_collector_paused_and_it_runs_again_after(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings, app = await prepared(redis, redis_url, unique, tmp_path)
    processor = CollectorWatch(app)
    consumer = CommandConsumer(settings, processor, redis)
    payloads = [json.dumps(c).encode() for c in organization_setup("acme", locations=1, roles=0)]
    entries = await deliver(redis, settings, *payloads)
    assert gc.isenabled()
    await consumer.handle([i for i, _ in entries], [d for _, d in entries])
    assert processor.collector_running == [False]
    assert gc.isenabled()  # resumed once the batch was answered
    results = await read_all(redis, settings.results_stream)
    assert [r["status"] for r in results] == ["accepted"] * len(payloads)
