"""Each stream's window, against the session's private Redis: results by age and count,
events by their own occurred_at and count (the newest always stays), dead letters by count,
and commands removed once stored, answered and acknowledged (never while pending or
undelivered)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.keys.processor import CommandProcessor, Entry
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams import trimming
from services.keys.streams.consumer import CommandConsumer, ensure_group
from services.keys.streams.trimming import StreamTrimmer
from tests.support.keys_settings import keys_settings
from tests.support.scenario import key_command, organization_setup

NOW = 1_900_000_000.0  # the trimmer's clock in these tests (Unix seconds)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def settings_for(redis_url: str, unique: str, **limits: object) -> KeysSettings:
    return dataclasses.replace(
        keys_settings(redis_url, unique, max_deliveries=2),
        **limits,
    )


async def ids(redis: Redis, stream: str) -> list[str]:
    return [i.decode() for i, _ in await redis.xrange(stream)]


async def add_event(redis: Redis, stream: str, position: int, occurred_at: datetime) -> None:
    body = {"type": "ApiKeyRenamed", "position": position, "organization_id": "acme"}
    body["occurred_at"] = occurred_at.isoformat().replace("+00:00", "Z")
    await redis.xadd(stream, {"__data__": json.dumps(body)}, id=f"{position}-1")


async def test_results_are_kept_at_most_the_retention_and_the_count(
    redis: Redis, redis_url: str, unique: str
) -> None:
    settings = settings_for(
        redis_url, unique, results_retention_seconds=60.0, results_max_entries=3
    )
    now_ms = int(NOW * 1000)
    for age_seconds in (300, 120, 61, 59, 30, 10, 1):  # ids are Redis times in ms
        await redis.xadd(
            settings.results_stream, {"__data__": "{}"}, id=f"{now_ms - age_seconds * 1000}-0"
        )
    trimmed = await StreamTrimmer(settings, redis, clock=lambda: NOW).trim_once()
    assert await ids(redis, settings.results_stream) == [
        f"{now_ms - age * 1000}-0" for age in (30, 10, 1)
    ]  # the count; then age (61 s is older than 60 s: gone either way)
    assert trimmed.results == 4
    roomier = dataclasses.replace(settings, results_max_entries=100)
    later = await StreamTrimmer(roomier, redis, clock=lambda: NOW + 31).trim_once()
    assert later.results == 1
    assert await ids(redis, settings.results_stream) == [
        f"{now_ms - age * 1000}-0" for age in (10, 1)
    ]


async def test_events_are_trimmed_from_their_occurred_at_not_their_ids(
    redis: Redis, redis_url: str, unique: str
) -> None:
    settings = settings_for(redis_url, unique, events_retention_seconds=3600.0)
    now = datetime.fromtimestamp(NOW, UTC)
    ages_by_position = {3: 7200, 8: 4000, 9: 3601, 15: 1000, 16: 5000, 20: 10}
    for position, age in ages_by_position.items():
        await add_event(redis, settings.events_stream, position, now - timedelta(seconds=age))
    trimmed = await StreamTrimmer(settings, redis, clock=lambda: NOW).trim_once()
    # the first event within the hour is at 15: everything before it goes; 16 (older, but
    # after the first one kept) stays, so the window never has a hole
    assert await ids(redis, settings.events_stream) == ["15-1", "16-1", "20-1"]
    assert trimmed.events == 3


async def test_the_newest_event_stays_even_when_every_event_is_older_than_the_window(
    redis: Redis, redis_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trimming, "EVENTS_STEP", 2)  # several steps of reads
    settings = settings_for(redis_url, unique, events_retention_seconds=60.0)
    old = datetime.fromtimestamp(NOW, UTC) - timedelta(days=30)
    for position in range(1, 12):
        await add_event(redis, settings.events_stream, position * 2, old)
    await StreamTrimmer(settings, redis, clock=lambda: NOW).trim_once()
    assert await ids(redis, settings.events_stream) == ["22-1"]


async def test_events_and_dead_letters_are_kept_at_most_their_count_in_bounded_steps(
    redis: Redis, redis_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trimming, "STEP_ENTRIES", 3)  # a backlog drains over several steps
    settings = settings_for(redis_url, unique, events_max_entries=4, dead_letter_max_entries=2)
    now = datetime.fromtimestamp(NOW, UTC)
    for position in range(1, 21):
        await add_event(redis, settings.events_stream, position, now)
    for n in range(9):
        await redis.xadd(settings.dead_letter_stream, {"__data__": json.dumps({"n": n})})
    trimmed = await StreamTrimmer(settings, redis, clock=lambda: NOW).trim_once()
    assert await ids(redis, settings.events_stream) == [f"{p}-1" for p in range(17, 21)]
    letters = await redis.xrange(settings.dead_letter_stream)
    assert [json.loads(f[b"__data__"])["n"] for _, f in letters] == [7, 8]
    assert (trimmed.events, trimmed.dead_letters) == (16, 7)


async def test_within_the_limits_nothing_is_trimmed(
    redis: Redis, redis_url: str, unique: str
) -> None:
    settings = settings_for(redis_url, unique)
    await add_event(redis, settings.events_stream, 5, datetime.now(UTC))
    await redis.xadd(settings.results_stream, {"__data__": "{}"})
    await redis.xadd(settings.dead_letter_stream, {"__data__": "{}"})
    trimmed = await StreamTrimmer(settings, redis).trim_once()  # the real clock
    assert trimmed == trimming.Trimmed()


class FailingOn(CommandProcessor):
    """A processor whose handling of one command fails unexpectedly (the entry is parked)."""

    def __init__(self, app: ApiKeysApplication, poison: str):
        super().__init__(app)
        self.poison = poison

    def process(self, entries: list[Entry]) -> list:  # type: ignore[override]
        if any(e.command.command_id == self.poison for e in entries):
            raise RuntimeError("unexpected failure")
        return super().process(entries)


async def handle_a_batch(
    redis: Redis, settings: KeysSettings, tmp_path: Path
) -> tuple[list[str], dict[str, str]]:
    """Three commands, one that fails, one that is not JSON: delivered and handled; then one
    more added and never delivered. Returns the commands stream's ids and the ids by role."""
    await ensure_group(redis, settings.commands_stream, settings.group)
    app = ApiKeysApplication(f"sqlite:///{tmp_path / 'e.db'}")
    poison = key_command("RenameApiKey", "acme", "k1", name="x")
    consumer = CommandConsumer(
        settings, FailingOn(app, poison["command_id"]), redis, retry_delays=(0.0,)
    )
    payloads = [json.dumps(c) for c in organization_setup("acme", locations=1, roles=0)]
    payloads += [json.dumps(poison), "not json"]
    added = [await redis.xadd(settings.commands_stream, {"__data__": p}) for p in payloads]
    delivered = await redis.xreadgroup(
        settings.group, settings.consumer, {settings.commands_stream: ">"}, count=10
    )
    later = key_command("RenameApiKey", "acme", "k2", name="y")
    undelivered = await redis.xadd(settings.commands_stream, {"__data__": json.dumps(later)})
    entries = delivered[0][1]
    await consumer.handle([i for i, _ in entries], [d for _, d in entries])
    app.close()
    roles = {"pending": added[3].decode(), "undelivered": undelivered.decode()}
    return await ids(redis, settings.commands_stream), roles


async def test_a_command_leaves_the_stream_once_answered_and_acknowledged_never_before(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, unique, max_deliveries=3)
    remaining, roles = await handle_a_batch(redis, settings, tmp_path)
    # answered (accepted or dead-lettered) and acknowledged: gone; the entry whose handling
    # failed is still pending, the last one was never delivered: both stay
    assert remaining == [roles["pending"], roles["undelivered"]]
    pending = await redis.xpending_range(settings.commands_stream, settings.group, "-", "+", 10)
    assert [p["message_id"].decode() for p in pending] == [roles["pending"]]
    assert await redis.xlen(settings.results_stream) == 3
    assert await redis.xlen(settings.dead_letter_stream) == 1


async def test_with_trimming_off_every_command_stays(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, unique, max_deliveries=3, trim_streams=False)
    remaining, _ = await handle_a_batch(redis, settings, tmp_path)
    assert len(remaining) == 6
