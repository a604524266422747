"""The event store's batch recorders and fast transcoder: every command type stored through
them gives the bytes the stock eventsourcing classes give, a stock application reads the store,
and the notification ids returned for each batch are the store's notification log."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    StoredEvent,
    UUIDAsHex,
)

from contracts.commands import command_decoder
from services.keys.domain import api_key, organization, receipt
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication, persistence_env
from services.keys.store.transcoder import FastJSONTranscoder
from tests.support.scenario import create_key, key_command, organization_setup
from tests.support.stores import STORES


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/events.db"
    else:
        yield request.getfixturevalue("postgres_url")


def every_command() -> list[dict[str, Any]]:
    org = "o1"
    commands = organization_setup(org, locations=4, roles=3)
    commands += [
        {
            "type": "RenameLocation",
            "command_id": "x1",
            "organization_id": org,
            "location_id": "L3",
            "name": 'Lé "quoted" \\ \n\t\u2028 😀',
        },
        {
            "type": "MoveLocation",
            "command_id": "x2",
            "organization_id": org,
            "location_id": "L3",
            "new_parent_id": "L0",
        },
        {
            "type": "ChangeRolePermissions",
            "command_id": "x3",
            "organization_id": org,
            "role_id": "R2",
            "permissions": [{"permission": "p", "scope": "own_items"}],
        },
        {
            "type": "RenameRole",
            "command_id": "x4",
            "organization_id": org,
            "role_id": "R2",
            "name": "Role two",
        },
        create_key(
            org,
            "k1",
            locations=("L0", "L1", "L2"),
            roles=("R0", "R2"),
            role_locations=[{"role_id": "R0", "location_id": "L1"}],
            expires_at="2030-01-02T03:04:05.000006+00:00",
        ),
        {
            "type": "ImportApiKeys",
            "command_id": "x5",
            "organization_id": org,
            "actor_id": "alice",
            "keys": [
                {
                    "key_id": "imported-1",
                    "name": "Imported",
                    "location_ids": ["L0"],
                    "secret_sha256": "c" * 64,
                },
                {
                    "key_id": "imported-2",
                    "name": "Refused",
                    "location_ids": ["nowhere"],
                    "secret_sha256": "c" * 64,
                },
            ],
        },  # fmt: skip
        key_command("RenameApiKey", org, "k1", name="renamed"),
        key_command("AddKeyLocation", org, "k1", location_id="L3"),
        key_command("RemoveKeyLocation", org, "k1", location_id="L3"),
        key_command("AddKeyRole", org, "k1", role_id="R1"),
        key_command("RemoveKeyRole", org, "k1", role_id="R1"),
        key_command("ToggleRoleLocation", org, "k1", role_id="R0", location_id="L2"),
        key_command("ToggleRoleLocation", org, "k1", role_id="R0", location_id="L2", applies=True),
        key_command(
            "RotateKeySecret", org, "k1", secret_sha256="b" * 64, secret_hint="h", grace_seconds=60
        ),
        key_command("DisableApiKey", org, "k1"),
        key_command("EnableApiKey", org, "k1"),
        key_command("RenameApiKey", org, "k1", name=""),  # rejected: receipt with an error
        {"type": "RemoveRole", "command_id": "x5", "organization_id": org, "role_id": "R2"},
        key_command("DeleteApiKey", org, "k1"),
        {"type": "RemoveLocation", "command_id": "x6", "organization_id": org, "location_id": "L3"},
        {
            "type": "RevokeApiAdministrator",
            "command_id": "x7",
            "organization_id": org,
            "user_id": "alice",
        },
        {"type": "DisableApiModule", "command_id": "x8", "organization_id": org},
    ]
    return commands


def domain_event_topics() -> set[str]:
    topics = set()
    for module in (api_key, organization, receipt):
        for aggregate in vars(module).values():
            if inspect.isclass(aggregate) and aggregate.__module__ == module.__name__:
                for event in vars(aggregate).values():
                    concrete = inspect.isclass(event) and event.__name__ != "Event"
                    if concrete and issubclass(event, DomainEvent):
                        topics.add(f"{module.__name__}:{event.__qualname__}")
    return topics


def stock_transcoder(cls: type[JSONTranscoder] = JSONTranscoder) -> JSONTranscoder:
    transcoder = cls()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


def run_commands(app: ApiKeysApplication, commands: list[dict[str, Any]], batch: int) -> None:
    processor = CommandProcessor(app)
    entries = [
        Entry(f"{n + 1}-0", command_decoder.decode(msgspec.json.encode(c)))
        for n, c in enumerate(commands)
    ]
    for start in range(0, len(entries), batch):
        processor.process(entries[start : start + batch])


class TestStoredBytes:
    def test_every_event_type_is_stored_as_the_stock_transcoder_writes_it(
        self, store_url: str
    ) -> None:
        app = ApiKeysApplication(store_url)
        run_commands(app, every_command(), batch=7)
        stock = stock_transcoder()
        notifications = app.recorder.select_notifications(start=1, limit=10_000)
        kinds = {"" if not n.topic else n.topic.rsplit(".", 1)[-1] for n in notifications}
        missing = {t for t in domain_event_topics() if t.rsplit(".", 1)[-1] not in kinds}
        assert not missing, f"scenario does not store {missing}"
        for notification in notifications:
            state = stock.decode(notification.state)
            assert stock.encode(state) == notification.state
            assert app.mapper.to_domain_event(notification).originator_version >= 1
        app.close()

    def test_a_stock_application_reads_the_store(self, store_url: str) -> None:
        app = ApiKeysApplication(store_url)
        run_commands(app, every_command(), batch=5)
        ours = app.recorder.select_notifications(start=1, limit=10_000)
        app.close()
        env = {
            k: v
            for k, v in persistence_env(store_url).items()
            if k not in ("APPLICATION_RECORDER_TOPIC", "TRANSCODER_TOPIC")
        }
        stock = ApiKeysStock(env)
        theirs = stock.recorder.select_notifications(start=1, limit=10_000)
        assert [(n.id, n.originator_id, n.state) for n in theirs] == [
            (n.id, n.originator_id, n.state) for n in ours
        ]
        for notification in theirs:
            event = stock.mapper.to_domain_event(notification)
            assert event.originator_id == notification.originator_id
        stock.close()


class ApiKeysStock(Application[uuid.UUID]):
    name = "ApiKeys"


class TestFastTranscoder:
    @pytest.mark.parametrize(
        "state",
        [
            {"timestamp": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "name": "n", "x": None},
            {
                "timestamp": datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                "ids": ["a", "b"],
                "cells": [["a", "b"]],
                "n": 2**70,
                "b": True,
                "when": datetime(2025, 1, 1),
            },
            {"id": uuid.UUID(int=7), "d": Decimal("1.50"), "nested": {"u": [uuid.UUID(int=1)]}},
            {"f": 1.5, "nan": float("nan"), "t": (1, "x"), "k": {1: "int key"}},
            {"s": "".join(chr(c) for c in range(0, 0x800)) + "\u2028\U0001f600"},
            [1, "a", None, datetime(2025, 1, 1, tzinfo=UTC)],
        ],
    )
    def test_encodes_exactly_as_the_stock_transcoder(self, state: Any) -> None:
        fast, stock = stock_transcoder(FastJSONTranscoder), stock_transcoder()
        assert fast.encode(state) == stock.encode(state)
        decoded = stock.decode(fast.encode(state))
        assert stock.encode(decoded) == stock.encode(state)

    def test_refuses_what_the_stock_transcoder_refuses(self) -> None:
        fast, stock = stock_transcoder(FastJSONTranscoder), stock_transcoder()
        for bad in ({"b": b"bytes"}, {"s": {1, 2}}, {"surrogate": "\ud800"}):
            with pytest.raises(Exception) as expected:
                stock.encode(bad)
            with pytest.raises(type(expected.value)):
                fast.encode(bad)


class TestNotificationIds:
    def test_ids_returned_for_each_batch_are_the_notification_log(self, store_url: str) -> None:
        app = ApiKeysApplication(store_url)
        returned: list[tuple[uuid.UUID, int, int]] = []
        for batch in range(30):
            events = [
                StoredEvent(uuid.uuid4(), version, "t:T", b"{}")
                for _ in range(batch % 7 + 1)
                for version in (1, 2)
            ]
            ids = app.recorder.insert_events(events)
            assert ids is not None and len(ids) == len(events)
            returned += [
                (e.originator_id, e.originator_version, i) for e, i in zip(events, ids, strict=True)
            ]
        log = app.recorder.select_notifications(start=1, limit=10_000)
        assert [(n.originator_id, n.originator_version, n.id) for n in log] == returned
        assert [i for _, _, i in returned] == sorted(i for _, _, i in returned)
        app.close()

    def test_a_conflicting_batch_stores_nothing_and_ids_continue(self, store_url: str) -> None:
        from eventsourcing.persistence import IntegrityError

        app = ApiKeysApplication(store_url)
        first = StoredEvent(uuid.uuid4(), 1, "t:T", b"{}")
        assert app.recorder.insert_events([first]) == [1]
        with pytest.raises(IntegrityError):
            app.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "t:T", b"{}"), first])
        later = [StoredEvent(uuid.uuid4(), 1, "t:T", b"{}") for _ in range(3)]
        ids = app.recorder.insert_events(later)
        log = app.recorder.select_notifications(start=1, limit=100)
        assert [n.id for n in log][1:] == list(ids or [])
        assert [n.originator_id for n in log] == [first.originator_id] + [
            e.originator_id for e in later
        ]
        app.close()


def test_the_store_uses_the_batch_recorder_and_fast_transcoder(store_url: str) -> None:
    from services.keys.store.recorders import (
        ArraysPostgresApplicationRecorder,
        BatchSQLiteApplicationRecorder,
    )

    app = ApiKeysApplication(store_url)
    expected = (
        BatchSQLiteApplicationRecorder
        if store_url.startswith("sqlite")
        else ArraysPostgresApplicationRecorder
    )
    assert type(app.recorder) is expected
    assert type(app.mapper.transcoder) is FastJSONTranscoder
    app.close()
