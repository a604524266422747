"""previous_position: every published event names the position of the one published just
before it (0 for the first), read off the store, so a relay restarted at any point and an
export from any position give exactly what an uninterrupted relay publishes."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from contracts.commands import command_decoder
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from services.keys.streams.export import export_events
from services.keys.streams.relay import EventRelay
from tests.support.scenario import create_key, key_command, organization_setup


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def store_commands(app: ApiKeysApplication, commands: list[dict[str, Any]], tag: str) -> None:
    """Stored as the keys service stores them: events and a receipt per command (so the
    published positions skip numbers)."""
    entries = [
        Entry(f"{tag}-{i}", command_decoder.decode(json.dumps(c))) for i, c in enumerate(commands)
    ]
    CommandProcessor(app).process(entries)


def first_half() -> list[dict[str, Any]]:
    return organization_setup("acme") + [create_key("acme", "k1"), create_key("acme", "k2")]


def second_half() -> list[dict[str, Any]]:
    return [
        key_command("RenameApiKey", "acme", "k1", name="One"),
        key_command("ToggleRoleLocation", "acme", "k2", role_id="R0", location_id="L1"),
        *organization_setup("globex"),
        key_command("DisableApiKey", "acme", "k1"),
    ]


async def stream_bodies(redis: Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"__data__"]) for _, fields in await redis.xrange(stream)]


def exported(url: str, since: int = 0) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_events(url, out, since=since)
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_each_event_names_the_position_published_before_it(
    redis: Redis, event_store_url: str, unique: str
) -> None:
    app = ApiKeysApplication(event_store_url)
    store_commands(app, first_half() + second_half(), "a")
    await EventRelay(app, redis, f"{unique}.events").relay_once()
    events = await stream_bodies(redis, f"{unique}.events")
    positions = [e["position"] for e in events]
    assert [e["previous_position"] for e in events] == [0, *positions[:-1]]
    assert any(b - a > 1 for a, b in zip(positions, positions[1:], strict=False)), (
        "receipts are stored between published events, so positions skip"
    )
    app.close()


async def test_a_restarted_relay_and_an_export_agree_with_an_uninterrupted_run(
    redis: Redis, event_store_url: str, unique: str
) -> None:
    app = ApiKeysApplication(event_store_url)
    store_commands(app, first_half(), "a")
    interrupted, whole = f"{unique}.interrupted", f"{unique}.whole"
    await EventRelay(app, redis, interrupted).relay_once()
    store_commands(app, second_half(), "b")
    restarted = EventRelay(app, redis, interrupted)  # a new process: nothing in memory
    assert await restarted.start_position() > 0
    await restarted.relay_once()
    await EventRelay(app, redis, whole).relay_once()
    published = await stream_bodies(redis, interrupted)
    assert published == await stream_bodies(redis, whole)
    assert exported(event_store_url) == published  # field for field
    middle = published[len(published) // 2]["position"]
    later = exported(event_store_url, since=middle)
    assert later == [e for e in published if e["position"] > middle]
    assert later[0]["previous_position"] == middle
    # a --since that is not a published position: the last published one before it
    receipt_gap = next(
        a["position"] + 1
        for a, b in zip(published, published[1:], strict=False)
        if b["position"] - a["position"] > 1
    )
    assert exported(event_store_url, since=receipt_gap)[0]["previous_position"] == next(
        e["position"] for e in reversed(published) if e["position"] < receipt_gap
    )
    app.close()
