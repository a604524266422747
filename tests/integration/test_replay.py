"""The keys service as a process answers replay requests: what the projection's requester
reads back is the published history (each event naming the one before it), then a trimmed
stream's missing head is had on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from contracts.streams import DATA_FIELD
from services.projections.feed.catchup import Replayer
from tests.integration.keys_process import KeysProcess
from tests.support.scenario import create_key, key_command, organization_setup


@pytest.fixture
def keys(
    redis_url: str, event_store_url: str, unique: str, tmp_path: Path
) -> Iterator[KeysProcess]:
    process = KeysProcess(redis_url, event_store_url, f"t{unique}", tmp_path).start()
    try:
        yield process
    finally:
        process.stop()


async def replayed(redis_url: str, requests_stream: str, after: int, up_to: int) -> list[Any]:
    redis = Redis.from_url(redis_url)
    try:
        requester = Replayer(redis, requests_stream, timeout_seconds=20.0)
        return [
            msgspec.json.decode(fields[DATA_FIELD.encode()])
            async for entries in requester.replay(after, up_to)
            for _, fields in entries
        ]
    finally:
        await redis.aclose()


def bare(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "previous_position"} for e in events]


def test_the_keys_service_replays_a_trimmed_head_of_the_events_stream(
    keys: KeysProcess, redis_url: str
) -> None:
    commands = organization_setup("acme") + [create_key("acme", f"k{n}") for n in range(5)]
    commands.append(key_command("RenameApiKey", "acme", "k1", name="Renamed"))
    keys.send(*commands)
    results = keys.wait_for_results(len(commands))
    assert [r["status"] for r in results] == ["accepted"] * len(commands)
    keys.wait_for_events_up_to(max(r["position"] for r in results))
    published = [body for _, body in keys.read("events")]
    keys.redis.xtrim(keys.streams["events"], maxlen=3, approximate=False)
    first_kept = keys.read("events")[0][1]["position"]
    missing_up_to = max(e["position"] for e in published if e["position"] < first_kept)

    got = asyncio.run(replayed(redis_url, keys.streams["replay_requests"], 0, missing_up_to))

    assert bare(got) == bare([e for e in published if e["position"] <= missing_up_to])
    positions = [0] + [e["position"] for e in got]
    assert [e["previous_position"] for e in got] == positions[:-1]
