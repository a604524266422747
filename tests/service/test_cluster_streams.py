"""The keys service's Redis work on a Redis Cluster, in process: each batch's answers (results,
dead letters, XACK and XDEL, in single-slot steps), a crash between publishing results and
acknowledging them, the relay's lost-tail recovery, and dead-letter retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from contracts.codec import json_encoder
from contracts.results import CommandResult, DeadLetter
from contracts.streams import entry_id_to_position
from services.common.redis_client import connect
from services.common.resilience import cancel_all
from services.keys.processor import CommandProcessor
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams import dead_letters
from services.keys.streams.consumer import CommandConsumer, ensure_group
from services.keys.streams.relay import EventRelay
from services.keys.streams.replies import Answer
from tests.support.keys_settings import keys_settings
from tests.support.redis_cluster import LocalRedisCluster
from tests.support.scenario import create_key, organization_setup


class Crash(Exception):
    """Stands for the process dying between two steps (not an outage: not retried)."""


@pytest.fixture
async def redis(redis_cluster: LocalRedisCluster) -> AsyncIterator[Redis]:
    client = connect(redis_cluster.url, cluster=True, retries=0)
    yield client
    await client.aclose()


@pytest.fixture
def settings(redis_cluster: LocalRedisCluster, unique: str) -> KeysSettings:
    return keys_settings(redis_cluster.url, unique, redis_cluster=True)


@pytest.fixture
def app(tmp_path: Path) -> ApiKeysApplication:
    return ApiKeysApplication(f"sqlite:///{tmp_path / 'events.db'}")


async def delivered(redis: Redis, settings: KeysSettings, payloads: list[Any]) -> list[Any]:
    await ensure_group(redis, settings.commands_stream, settings.group)
    for payload in payloads:
        data = payload if isinstance(payload, bytes) else json.dumps(payload)
        await redis.xadd(settings.commands_stream, {"__data__": data})
    reply: Any = await redis.xreadgroup(
        settings.group, settings.consumer, {settings.commands_stream: ">"}, count=100
    )
    return list(reply[0][1])


async def bodies(redis: Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(f[b"__data__"]) for _, f in await redis.xrange(stream)]


async def test_each_entry_is_answered_once_then_acknowledged_and_removed(
    redis: Redis, settings: KeysSettings, app: ApiKeysApplication
) -> None:
    commands = organization_setup("acme") + [create_key("acme", "k1")]
    entries = await delivered(redis, settings, [*commands, b"not json"])
    consumer = CommandConsumer(settings, CommandProcessor(app), redis)
    await consumer.handle([i for i, _ in entries], [d for _, d in entries])

    results = await bodies(redis, settings.results_stream)
    assert [r["command_id"] for r in results] == [c["command_id"] for c in commands]
    assert {r["status"] for r in results} == {"accepted"}
    letters = await bodies(redis, settings.dead_letter_stream)
    assert [letter["reason"] for letter in letters] == ["not a JSON object"]
    assert (await redis.xpending(settings.commands_stream, settings.group))["pending"] == 0
    assert await redis.xlen(settings.commands_stream) == 0

    # the same answers sent again (a reply lost, an entry handled twice): nothing published
    answers = [
        Answer(entry_id.decode(), msgspec.convert(result, CommandResult))
        for result, (entry_id, _) in zip(results, entries, strict=False)
    ]
    assert await consumer.replies.send(answers) == 0
    assert len(await bodies(redis, settings.results_stream)) == len(commands)


async def test_a_crash_after_the_results_and_before_the_acknowledgement_answers_once(
    redis: Redis, settings: KeysSettings, app: ApiKeysApplication
) -> None:
    commands = organization_setup("acme") + [create_key("acme", "k1")]
    entries = await delivered(redis, settings, commands)
    consumer = CommandConsumer(settings, CommandProcessor(app), redis)
    steps = consumer.replies._cluster
    assert steps is not None

    async def dies(**_: Any) -> None:
        raise Crash

    steps._acknowledge = dies  # type: ignore[method-assign]
    with pytest.raises(Crash):  # the results are out; the process dies before the XACK
        await consumer.handle([i for i, _ in entries], [d for _, d in entries])
    first = await bodies(redis, settings.results_stream)
    assert len(first) == len(commands)
    pending = await redis.xpending(settings.commands_stream, settings.group)
    assert pending["pending"] == len(commands)

    # restarted (same store, same consumer name): its pending entries are finished first
    restarted = CommandConsumer(settings, CommandProcessor(app), redis)
    assert await restarted.recover_own_pending() == len(commands)
    assert await bodies(redis, settings.results_stream) == first  # no second result
    assert (await redis.xpending(settings.commands_stream, settings.group))["pending"] == 0
    assert await redis.xlen(settings.commands_stream) == 0


async def test_the_relay_publishes_again_a_tail_that_the_stream_lost(
    redis: Redis, settings: KeysSettings, app: ApiKeysApplication
) -> None:
    consumer = CommandConsumer(settings, CommandProcessor(app), redis)
    first = await delivered(redis, settings, organization_setup("acme"))
    await consumer.handle([i for i, _ in first], [d for _, d in first])
    relay = EventRelay(app, connect(settings.redis_url, cluster=True), settings.events_stream)
    running = asyncio.create_task(relay.run(poll_seconds=0.1))
    try:
        published = await wait_for_stream(redis, settings.events_stream, minimum=1)
        # a failover that lost the stream's tail: the stream ends earlier than published
        kept = published[: len(published) // 2]
        await redis.delete(settings.events_stream)
        for entry_id, fields in kept:
            await redis.xadd(settings.events_stream, fields, id=entry_id)
        more = await delivered(redis, settings, [create_key("acme", "k1")])
        await consumer.handle([i for i, _ in more], [d for _, d in more])
        relay.wake.set()
        results = await bodies(redis, settings.results_stream)
        last = max(r["position"] for r in results)
        after = await wait_for_stream(redis, settings.events_stream, up_to=last)
    finally:
        await cancel_all([running])
        await relay.redis.aclose()
    positions = [entry_id_to_position(i) for i, _ in after]
    assert positions == sorted(set(positions))  # each position once, in order
    assert [i for i, _ in after[: len(published)]] == [i for i, _ in published]
    events = [json.loads(f[b"__data__"]) for _, f in after]
    assert [e["previous_position"] for e in events] == [0, *positions[:-1]]


async def wait_for_stream(
    redis: Redis, stream: str, minimum: int = 0, up_to: int = 0, timeout: float = 20.0
) -> list[Any]:
    """The stream's entries once it holds ``minimum`` entries and reaches position ``up_to``
    and has stopped growing."""
    deadline = asyncio.get_running_loop().time() + timeout
    previous: list[Any] | None = None
    while asyncio.get_running_loop().time() < deadline:
        entries: Any = await redis.xrange(stream)
        top = entry_id_to_position(entries[-1][0]) if entries else 0
        if len(entries) >= minimum and top >= up_to and entries == previous:
            return list(entries)
        previous = entries
        await asyncio.sleep(0.3)
    raise AssertionError(f"{stream} did not settle within {timeout} s")


async def test_a_dead_letter_retried_goes_back_onto_the_commands_stream(
    redis: Redis, settings: KeysSettings
) -> None:
    command = organization_setup("acme")[0]
    letter = DeadLetter(
        entry_id="1-1",
        stream=settings.commands_stream,
        reason="handling failed 5 times",
        payload=json.dumps(command),
        deliveries=5,
        truncated=False,
    )
    dead_id = (
        await redis.xadd(settings.dead_letter_stream, {"__data__": json_encoder.encode(letter)})
    ).decode()
    retried = await dead_letters.retry(redis, settings, [dead_id, "1-0"])
    assert retried[dead_id] is not None and retried["1-0"] is None
    commands = await bodies(redis, settings.commands_stream)
    assert commands == [command]
    assert await redis.xlen(settings.dead_letter_stream) == 0
