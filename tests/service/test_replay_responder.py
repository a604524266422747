"""The keys service's replay responder against a real event store (SQLite and PostgreSQL) and
the session's Redis: it publishes the range asked for in the events stream's format (ids are
positions, each event naming the one before it), bounded, then the end marker, on a private
stream that expires; the projection's requester reads it back whole. And verify-projections
passes after the stream was trimmed, the replay filling what it no longer holds."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from contracts.replay import ReplayRequest, replay_end_decoder
from contracts.streams import DATA_FIELD, replay_stream
from services.keys.store import ApiKeysApplication
from services.keys.streams.export import export_events
from services.keys.streams.replay import ReplayResponder
from services.projections.feed.catchup import Replayer
from services.projections.feed.rebuild import rebuild
from services.projections.feed.verify import verify_projections
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from services.projections.store.dump import read_tables
from tests.support.replay import fill_store, publish_items, published_history, trim_to


@pytest.fixture
def filled(event_store_url: str) -> str:
    fill_store(event_store_url)
    return event_store_url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[SyncRedis]:
    client = SyncRedis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def app(filled: str) -> AsyncIterator[ApiKeysApplication]:
    opened = ApiKeysApplication(filled)
    yield opened
    opened.close()


def responder(app: ApiKeysApplication, redis: Redis, unique: str, **limits: Any) -> ReplayResponder:
    return ReplayResponder(
        app, redis, f"{unique}.replay-requests", group="g", consumer="c", block_ms=100, **limits
    )


async def reply(redis: Redis, request_id: str) -> tuple[list[tuple[str, Any]], Any]:
    entries: Any = await redis.xrange(replay_stream(request_id))
    *events, (end_id, end_fields) = entries
    end = replay_end_decoder.decode(end_fields[DATA_FIELD.encode()])
    decoded = [(i.decode(), msgspec.json.decode(f[DATA_FIELD.encode()])) for i, f in events]
    return [*decoded, (end_id.decode(), end)], end


def bare(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events without previous_position (the stream's own may not have it yet)."""
    return [{k: v for k, v in e.items() if k != "previous_position"} for e in events]


def positions(events: list[dict[str, Any]]) -> list[int]:
    """0, then each event's position: what each names as previous in a whole history."""
    return [0] + [e["position"] for e in events]


def exported(url: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_events(url, out)
    return [msgspec.json.decode(line) for line in out.getvalue().splitlines()]


async def test_a_replay_publishes_the_range_as_the_stream_holds_it_then_the_end(
    app: ApiKeysApplication, filled: str, redis: Redis, unique: str
) -> None:
    history = exported(filled)
    after, up_to = history[2]["position"], history[-3]["position"]
    end = await responder(app, redis, unique).answer(
        ReplayRequest(request_id=unique, after_position=after, up_to_position=up_to)
    )
    entries, marker = await reply(redis, unique)
    assert end == marker and (end.complete, end.last_position) == (True, up_to)
    events = [body for _, body in entries[:-1]]
    wanted = history[3:-2]
    assert bare(events) == bare(wanted)
    assert [entry_id for entry_id, _ in entries[:-1]] == [f"{e['position']}-1" for e in wanted]
    assert entries[-1][0] == f"{up_to}-2"
    assert [e["previous_position"] for e in events] == [after] + [e["position"] for e in wanted][
        :-1
    ]
    assert 0 < await redis.ttl(replay_stream(unique)) <= 300


async def test_a_reply_is_bounded_and_the_requester_asks_for_the_rest(
    app: ApiKeysApplication, filled: str, redis: Redis, unique: str
) -> None:
    history = exported(filled)
    keys_service = responder(app, redis, unique, max_events=4)
    end = await keys_service.answer(
        ReplayRequest(request_id=unique, after_position=0, up_to_position=history[-1]["position"])
    )
    assert (end.complete, end.last_position) == (False, history[3]["position"])
    answering = asyncio.create_task(keys_service.run())
    try:
        requester = Replayer(redis, keys_service.requests_stream, timeout_seconds=5.0, count=3)
        got = [
            msgspec.json.decode(fields[DATA_FIELD.encode()])
            async for entries in requester.replay(0, history[-1]["position"])
            for _, fields in entries
        ]
    finally:
        answering.cancel()
    assert bare(got) == bare(history)
    assert [e["previous_position"] for e in got] == positions(history)[:-1]
    requests: Any = await redis.xrange(keys_service.requests_stream)
    asked = [msgspec.json.decode(fields[DATA_FIELD.encode()]) for _, fields in requests]
    # one request per reply of 4 events, each after the last event of the one before
    assert [r["after_position"] for r in asked] == positions(history)[: len(history) : 4]
    for request in asked:  # each reply read is removed
        assert not await redis.exists(replay_stream(request["request_id"]))


async def test_an_impossible_range_is_answered_with_an_error(
    app: ApiKeysApplication, redis: Redis, unique: str
) -> None:
    end = await responder(app, redis, unique).answer(
        ReplayRequest(request_id=unique, after_position=9, up_to_position=3)
    )
    assert (end.error, end.complete) == ("invalid_request", False)


async def test_verify_projections_passes_after_the_stream_was_trimmed(
    app: ApiKeysApplication,
    filled: str,
    redis: Redis,
    sync_redis: SyncRedis,
    unique: str,
    tmp_path: Path,
    capsys: Any,
    redis_url: str,
) -> None:
    settings = Settings(
        redis_url=redis_url,
        events_stream=f"{unique}.events",
        view_store=f"sqlite:///{tmp_path / 'views.db'}",
        replay_requests_stream=f"{unique}.replay-requests",
        replay_timeout_seconds=5.0,
    )
    items = published_history(filled)
    publish_items(sync_redis, settings.events_stream, items)
    await asyncio.to_thread(rebuild, settings)  # the live store, from the whole stream
    before = _tables(settings)
    trim_to(sync_redis, settings.events_stream, 3)
    answering = asyncio.create_task(responder(app, redis, unique).run())
    try:
        assert await asyncio.to_thread(verify_projections, settings) == 0
        assert "equals a rebuild" in capsys.readouterr().out
        assert await asyncio.to_thread(rebuild, settings) == len(items)
        assert _tables(settings) == before  # a rebuild after trimming is complete
    finally:
        answering.cancel()


def _tables(settings: Settings) -> dict[str, Any]:
    store = open_store(settings.view_store)
    try:
        return read_tables(store)
    finally:
        store.close()
