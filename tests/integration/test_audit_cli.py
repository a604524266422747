"""The audit subcommands as processes, against a view store filled by the projection consumer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.projections.feed.consumer import apply_batch
from services.projections.runtime.live import LiveReadModel
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from tests.support.audit_scenario import entries, scenario
from tests.support.projection_builders import stream_fields
from tests.support.stores import STORES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=STORES)
def settings(request, redis_url: str, unique: str, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_dsn")
    else:
        url = f"sqlite:///{tmp_path / 'views.db'}"
    made = Settings(
        redis_url=redis_url,
        events_stream=f"test.{unique}.events",
        view_store=url,
        view_table_prefix=f"apikeys_view_cli{unique}_",
    )
    log, _ = scenario()
    with redis.Redis.from_url(redis_url) as client:
        for event in log.events:
            entry_id, fields = stream_fields(event)
            client.xadd(made.events_stream, fields, id=entry_id)
    store = open_store(made.view_store, made.view_table_prefix)
    live = LiveReadModel()
    rows = entries(log.events)
    for start in range(0, len(rows), 4):  # the consumer's path, a few batches
        asyncio.run(apply_batch(live, store, rows[start : start + 4]))
    yield made
    store.drop()
    store.close()
    with redis.Redis.from_url(redis_url) as client:
        client.delete(made.events_stream)


def apikeys(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "APIKEYS_EVENTS_STREAM": settings.events_stream,
        "APIKEYS_VIEW_STORE": settings.view_store,
        "APIKEYS_VIEW_TABLE_PREFIX": settings.view_table_prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_history_as_a_table_and_as_json(settings):
    table = apikeys(settings, "history", "key-1")
    assert table.returncode == 0, table.stderr
    assert "ApiKeyCreated" in table.stdout and "ApiKeyDeleted" in table.stdout
    page = apikeys(settings, "history", "key-1", "--json", "--limit", "2")
    answer = json.loads(page.stdout)
    assert [e["type"] for e in answer["entries"]] == ["ApiKeyCreated", "KeyRoleAdded"]
    after = str(answer["next_after_position"])
    rest = json.loads(
        apikeys(settings, "history", "key-1", "--json", "--after-position", after).stdout
    )
    assert rest["entries"][0]["type"] == "RoleLocationToggled"


def test_permissions_as_of_and_live(settings):
    then = apikeys(settings, "permissions", "key-1", "--as-of", "2024-01-03T12:00:00Z", "--json")
    answer = json.loads(then.stdout)
    assert answer["status"] == "active"
    assert {loc["location_id"] for loc in answer["locations"]} == {"site", "plant-7"}
    now = json.loads(apikeys(settings, "permissions", "key-1", "--json").stdout)
    assert now["status"] == "deleted"
    assert "plant-7" in apikeys(settings, "permissions", "key-1", "--as-of", "2024-01-03").stdout


def test_diff_lists_gained_and_lost(settings):
    out = apikeys(
        settings, "diff", "key-1", "--from", "2024-01-05T00:00:00Z", "--to", "2024-01-08T00:00:00Z"
    )
    assert out.returncode == 0, out.stderr
    assert "- view_private" in out.stdout and "plant-7" in out.stdout
    assert "+ view_private" in out.stdout and "location_only" in out.stdout


def test_verify_projections_finds_no_difference_then_a_tampered_row(settings):
    clean = apikeys(settings, "verify-projections")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "equals a rebuild" in clean.stdout
    store = open_store(settings.view_store, settings.view_table_prefix)
    try:
        with store._transaction() as cur:
            cur.execute(
                store._sql("UPDATE {p}keys SET state = ? WHERE key_id = ?"),
                ('{"name": "tampered"}', "key-1"),
            )
    finally:
        store.close()
    tampered = apikeys(settings, "verify-projections")
    assert tampered.returncode == 1
    assert "keys key-1: differs" in tampered.stdout
