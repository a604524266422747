"""Snapshots of aggregates over a real event store: an aggregate rebuilt from its snapshot equals
the one replayed from all its events; after a restart a load reads the snapshot and fewer than
an interval of events; the relay's feed never sees a snapshot; a store written without
snapshots gets them as its aggregates are next loaded; the caches stay within their size."""

from __future__ import annotations

import itertools
from typing import Any
from uuid import UUID

import msgspec
import pytest

from contracts.commands import command_decoder
from services.keys.domain import ApiKey, Organization
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from services.keys.streams.feed import EventFeed
from tests.support.scenario import create_key, key_command, organization_setup, sha

ORG = "org-s"
INTERVAL = 10


class Stream:
    """Entries as the consumer would hand them over, with stream-like ids."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)

    def entries(self, *commands: dict[str, Any]) -> list[Entry]:
        return [
            Entry(f"{next(self.ids)}-0", command_decoder.decode(msgspec.json.encode(c)))
            for c in commands
        ]


def directory(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "command_id": f"d-{sha(repr(fields))[:8]}-{type_}", **fields}


def rich_history() -> list[dict[str, Any]]:
    """Every kind of state the aggregates hold: a tree, roles, administrators, a matrix with a
    cell off, an expiry, a rotated secret still in its grace period, a disabled key."""
    commands = organization_setup(ORG, locations=4, roles=3)
    commands += [
        key_command("GrantApiAdministrator", ORG, "-", user_id="bob"),
        create_key(ORG, "k1", locations=("L1", "L2"), roles=("R0", "R1")),
        create_key(ORG, "k2", expires_at="2030-01-01T00:00:00+00:00"),
        key_command("ToggleRoleLocation", ORG, "k1", role_id="R0", location_id="L2"),
        key_command("RotateKeySecret", ORG, "k1", secret_sha256=sha("new"), grace_seconds=60),
        key_command("DisableApiKey", ORG, "k2"),
    ]
    for command in commands:
        if command["type"] == "GrantApiAdministrator":
            command.pop("actor_id", None)
            command.pop("key_id", None)
    for i in range(3 * INTERVAL):  # a long history for the organization and for k1
        commands.append(
            key_command("RenameApiKey", ORG, "k1", name=f"name {i}"),
        )
        commands.append(
            {
                "type": "RenameLocation",
                "command_id": f"rl-{i}",
                "organization_id": ORG,
                "location_id": "L3",
                "name": f"site {i}",
            }
        )
    return commands


def replayed(url: str, aggregate_id: UUID) -> Any:
    """The aggregate from all its events (snapshots not read)."""
    app = ApiKeysApplication(url, IS_SNAPSHOTTING_ENABLED="n")
    try:
        assert app.snapshots is None
        return app.repository.get(aggregate_id)
    finally:
        app.close()


def state(aggregate: Any) -> dict[str, Any]:
    found = dict(vars(aggregate))
    found.pop("_pending_events")
    return found


@pytest.fixture
def written(event_store_url: str) -> str:
    """The rich history, stored by a processor that snapshots every INTERVAL events."""
    app = ApiKeysApplication(event_store_url)
    processor = CommandProcessor(app, snapshot_interval=INTERVAL)
    results = processor.process(Stream().entries(*rich_history()))
    assert {r.status for r in results} == {"accepted"}, [r for r in results if r.error]
    app.close()
    return event_store_url


@pytest.mark.parametrize(
    "aggregate_id",
    [Organization.create_id(ORG), ApiKey.create_id("k1"), ApiKey.create_id("k2")],
    ids=["organization", "key", "short-key"],
)
def test_an_aggregate_from_its_snapshot_equals_the_replayed_one(
    written: str, aggregate_id: UUID
) -> None:
    app = ApiKeysApplication(written)
    try:
        aggregate = app.repository.get(aggregate_id)
        app.put_snapshots([aggregate])  # a snapshot at the latest version: nothing replayed
        from_snapshot, events_read = app.load(aggregate_id)
    finally:
        app.close()
    assert events_read == 0
    assert type(from_snapshot) is type(aggregate)
    assert state(from_snapshot) == state(replayed(written, aggregate_id))


def test_after_a_restart_a_load_reads_the_snapshot_and_fewer_than_an_interval_of_events(
    written: str,
) -> None:
    restarted = ApiKeysApplication(written)
    try:
        for aggregate_id in (Organization.create_id(ORG), ApiKey.create_id("k1")):
            assert restarted.snapshots is not None
            newest = list(restarted.snapshots.get(aggregate_id, desc=True, limit=1))
            assert newest, "no snapshot stored"
            aggregate, events_read = restarted.load(aggregate_id)
            assert aggregate.version > 3 * INTERVAL
            assert events_read < INTERVAL
            assert state(aggregate) == state(replayed(written, aggregate_id))
    finally:
        restarted.close()


def test_a_command_after_a_restart_works_on_the_snapshotted_state(written: str) -> None:
    app = ApiKeysApplication(written)
    try:
        processor = CommandProcessor(app, snapshot_interval=INTERVAL)
        stream = Stream()
        rename = key_command("RenameApiKey", ORG, "k1", name="after restart")
        (result,) = processor.process(stream.entries(rename))
        assert result.status == "accepted"
        key, _ = app.load(ApiKey.create_id("k1"))
        assert key.name == "after restart"
        assert key.matrix[("R0", "L2")] is False
    finally:
        app.close()


def test_the_feed_reads_events_only_never_snapshots(written: str) -> None:
    app = ApiKeysApplication(written)
    try:
        feed = EventFeed(app)
        published = []
        while batch := feed.read_batch():
            published.extend(batch)
        assert published
        assert all(b"Snapshot" not in data for _, data in published)
        topics = app.recorder.select_notifications(start=1, limit=100_000)
        assert not [n for n in topics if "Snapshot" in n.topic]
    finally:
        app.close()


def test_a_store_written_without_snapshots_gets_one_at_the_next_load(
    event_store_url: str,
) -> None:
    app = ApiKeysApplication(event_store_url)
    CommandProcessor(app, snapshot_interval=0).process(Stream().entries(*rich_history()))
    org_id = Organization.create_id(ORG)
    assert app.snapshots is not None
    assert not list(app.snapshots.get(org_id))
    app.close()

    restarted = ApiKeysApplication(event_store_url)
    try:
        processor = CommandProcessor(restarted, snapshot_interval=INTERVAL)
        command = directory("RenameLocation", organization_id=ORG, location_id="L0", name="HQ")
        (result,) = processor.process(Stream().entries(command))
        assert result.status == "accepted"
        _, events_read = restarted.load(org_id)
        assert events_read == 0
    finally:
        restarted.close()


def test_the_caches_hold_at_most_their_size(event_store_url: str) -> None:
    app = ApiKeysApplication(event_store_url)
    try:
        processor = CommandProcessor(app, cache_size=3)
        commands = organization_setup(ORG) + [create_key(ORG, f"k{i}") for i in range(10)]
        results = processor.process(Stream().entries(*commands))
        assert {r.status for r in results} == {"accepted"}
        assert len(processor.recent) <= 3
        assert len(processor.cache.items) <= 3
    finally:
        app.close()
