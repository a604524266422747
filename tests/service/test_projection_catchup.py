"""A projection behind the events stream's window: it finds the gap (at start and mid-run),
refuses to answer as if complete (/ready 503 ``events_missing``, answers stale or refused),
then catches up from a file (``rebuild-projections --from``) or on the wire (a replay of the
keys service), and ends equal to a rebuild of the whole history. Real Redis, SQLite and
PostgreSQL view stores."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from services import cli
from services.common.resilience import cancel_all
from services.projections.feed.catchup import CatchUpFailed, Replayer
from services.projections.feed.follower import StreamFollower
from services.projections.feed.rebuild import rebuild
from services.projections.http.app import create_app, served
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from services.projections.store.dump import read_tables
from tests.support.projection_builders import export_lines, stream_fields
from tests.support.replay import LogResponder, history, publish, trim_to
from tests.support.stores import STORES

KEPT = 5  # entries the trimmed stream still holds


@pytest.fixture(params=STORES)
def view_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'views.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(redis_url: str, unique: str, view_store_url: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        events_stream=f"{unique}.events",
        view_store=view_store_url,
        replay_requests_stream=f"{unique}.replay-requests",
        replay_timeout_seconds=0.5,
    )


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[SyncRedis]:
    client = SyncRedis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def eventually(condition: Any, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await condition()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Projection:
    """A follower on the view store with its HTTP app, as the service composes them."""

    def __init__(self, redis: Redis, settings: Settings, *, refuse: bool = False) -> None:
        self.store = open_store(settings.view_store)
        self.live = LiveReadModel(self.store.load())
        self.freshness = Freshness(5.0)
        self.follower = StreamFollower(
            redis,
            settings.events_stream,
            self.live,
            self.store,
            self.freshness,
            count=4,
            block_ms=100,
            replayer=Replayer(redis, settings.replay_requests_stream, timeout_seconds=0.3),
        )
        app = served(create_app(self.live, freshness=self.freshness, refuse_when_stale=refuse))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Projection:
        self.task = asyncio.create_task(self.follower.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        await cancel_all([self.task])
        assert self.task.cancelled()
        await self.follower.flush(3.0)
        await self.http.aclose()
        self.store.close()

    async def ready(self) -> httpx.Response:
        return await self.http.get("/ready")

    async def not_ready_missing(self) -> dict[str, Any] | None:
        answer = await self.ready()
        body: dict[str, Any] = answer.json()
        return body if answer.status_code == 503 and body["reason"] == "events_missing" else None

    async def is_ready(self) -> bool:
        return (await self.ready()).status_code == 200


def full_rebuild(settings: Settings, sync_redis: SyncRedis, events: list[Any], scratch: Path):
    """The tables of a rebuild from an untrimmed stream of the same history (call it in a
    thread: the rebuild runs an event loop of its own)."""
    stream = f"{settings.events_stream}.untrimmed"
    publish(sync_redis, stream, events)
    other = Settings(
        redis_url=settings.redis_url, events_stream=stream, view_store=f"sqlite:///{scratch}"
    )
    rebuild(other)
    store = open_store(other.view_store)
    try:
        return read_tables(store)
    finally:
        store.close()


def tables(settings: Settings) -> dict[str, Any]:
    store = open_store(settings.view_store)
    try:
        return read_tables(store)
    finally:
        store.close()


async def test_started_after_a_trim_it_refuses_then_catches_up_from_a_file(
    settings: Settings, redis: Redis, sync_redis: SyncRedis, tmp_path: Path, monkeypatch: Any
) -> None:
    log = history()
    publish(sync_redis, settings.events_stream, log.events)
    trim_to(sync_redis, settings.events_stream, KEPT)
    first_kept = log.events[-KEPT]
    async with Projection(redis, settings, refuse=True) as projection:
        body = await eventually(projection.not_ready_missing)
        assert body["missing"] == {
            "after_position": 0,
            "up_to_position": first_kept.previous_position,
        }
        assert projection.live.position == 0  # nothing skipped, nothing applied
        check = await projection.http.get("/v1/check?key_id=k0&permission=view&location_id=plant")
        assert check.status_code == 503
        assert check.json()["error"] == "stale"
        assert "missing" in check.json()["detail"]
    # the operator's remedy: a file of the history (here up to before the last two events),
    # then the rest from the stream
    path = tmp_path / "history.jsonl"
    path.write_text("".join(export_lines(log.events[:-2])))
    for name, value in {
        "REDIS_URL": settings.redis_url,
        "APIKEYS_EVENTS_STREAM": settings.events_stream,
        "APIKEYS_VIEW_STORE": settings.view_store,
        "APIKEYS_REPLAY_REQUESTS_STREAM": settings.replay_requests_stream,
    }.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(cli.main, ["rebuild-projections", "--from", str(path)]) == 0
    assert tables(settings) == await asyncio.to_thread(
        full_rebuild, settings, sync_redis, log.events, tmp_path / "f.db"
    )
    async with Projection(redis, settings) as projection:
        assert projection.live.position == log.position
        await eventually(projection.is_ready)


async def test_started_after_a_trim_it_catches_up_on_the_wire(
    settings: Settings, redis: Redis, sync_redis: SyncRedis, tmp_path: Path
) -> None:
    log = history()
    publish(sync_redis, settings.events_stream, log.events)
    trim_to(sync_redis, settings.events_stream, KEPT)
    keys_service = LogResponder(redis, settings.replay_requests_stream, log.events)
    keys_service.answering.clear()  # not answering yet
    answering = asyncio.create_task(keys_service.run())
    try:
        async with Projection(redis, settings) as projection:
            assert await eventually(projection.not_ready_missing)
            keys_service.answering.set()
            await eventually(projection.is_ready)
            assert projection.live.position == log.position
            await eventually(lambda: _saved(projection, log.position))
    finally:
        answering.cancel()
    assert [(r.after_position, r.up_to_position) for r in keys_service.answered][-1] == (
        0,
        log.events[-KEPT].previous_position,
    )
    assert tables(settings) == await asyncio.to_thread(
        full_rebuild, settings, sync_redis, log.events, tmp_path / "f.db"
    )


async def _saved(projection: Projection, position: int) -> bool:
    return projection.store.position() == position


async def test_a_gap_found_mid_run_stops_applying_until_the_replay_fills_it(
    settings: Settings, redis: Redis, sync_redis: SyncRedis, tmp_path: Path
) -> None:
    log = history()
    half = len(log.events) // 2
    keys_service = LogResponder(redis, settings.replay_requests_stream, log.events)
    keys_service.answering.clear()
    answering = asyncio.create_task(keys_service.run())
    try:
        publish(sync_redis, settings.events_stream, log.events[:half])
        async with Projection(redis, settings) as projection:
            await eventually(projection.is_ready)
            reached = log.events[half - 1].position
            assert projection.live.position == reached
            # the rest is published and trimmed before the projection reads it
            pipe = sync_redis.pipeline(transaction=True)
            for event in log.events[half:]:
                entry_id, fields = stream_fields(event)
                pipe.xadd(settings.events_stream, fields, id=entry_id)  # type: ignore[arg-type]
            pipe.xtrim(settings.events_stream, maxlen=2, approximate=False)
            pipe.execute()
            body = await eventually(projection.not_ready_missing)
            assert body["missing"] == {
                "after_position": reached,
                "up_to_position": log.events[-2].previous_position,
            }
            assert projection.live.position == reached  # stopped at the gap
            answer = await projection.http.get(
                "/v1/check?key_id=k0&permission=view&location_id=plant"
            )
            assert answer.json()["stale"] is True
            keys_service.answering.set()
            await eventually(projection.is_ready)
            assert projection.live.position == log.position
            await eventually(lambda: _saved(projection, log.position))
    finally:
        answering.cancel()
    assert tables(settings) == await asyncio.to_thread(
        full_rebuild, settings, sync_redis, log.events, tmp_path / "f.db"
    )


async def test_a_rebuild_reads_a_file_from_standard_input_and_fails_loudly_on_a_hole(
    settings: Settings, sync_redis: SyncRedis, monkeypatch: Any, capsys: Any
) -> None:
    log = history()
    publish(sync_redis, settings.events_stream, log.events)
    trim_to(sync_redis, settings.events_stream, KEPT)
    with pytest.raises(CatchUpFailed, match="neither in the file nor on the events stream"):
        await asyncio.to_thread(rebuild, settings, export_lines(log.events[:3]))
    for name, value in {
        "REDIS_URL": settings.redis_url,
        "APIKEYS_EVENTS_STREAM": settings.events_stream,
        "APIKEYS_VIEW_STORE": settings.view_store,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APIKEYS_REPLAY_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(export_lines(log.events))))
    assert await asyncio.to_thread(cli.main, ["rebuild-projections", "--from", "-"]) == 0
    assert f"{len(log.events)} events applied" in capsys.readouterr().out
    assert tables(settings)["position"] == {"position": log.position}
