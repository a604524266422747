"""Events stored before the keys service was restructured keep decoding: the rows below are
a real store's rows, captured from the code as it was (topics and states as stored; only the
state's JSON is written here as Python values). The topics embed module paths, so moving a
class that defines stored events breaks these tests unless the old topic is registered."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest

from contracts.commands import command_decoder
from contracts.results import CommandResult, Error
from services.keys.domain import ApiKey, CommandReceipt, Organization, Outcome
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication

# The commands that wrote ROWS (entry ids "1-0" ... "1-8", in one batch).
COMMANDS: list[dict[str, Any]] = [
    {"type": "EnableApiModule", "command_id": "c1", "organization_id": "o1"},
    {
        "type": "GrantApiAdministrator",
        "command_id": "c2",
        "organization_id": "o1",
        "user_id": "alice",
    },
    {
        "type": "DefineLocation",
        "command_id": "c3",
        "organization_id": "o1",
        "location_id": "L0",
        "name": "HQ",
        "parent_id": None,
    },
    {
        "type": "DefineLocation",
        "command_id": "c4",
        "organization_id": "o1",
        "location_id": "L1",
        "name": "Lab",
        "parent_id": "L0",
    },
    {
        "type": "DefineRole",
        "command_id": "c5",
        "organization_id": "o1",
        "role_id": "R0",
        "name": "Ops",
        "permissions": [{"permission": "read", "scope": "everywhere"}],
    },
    {
        "type": "CreateApiKey",
        "command_id": "c6",
        "organization_id": "o1",
        "actor_id": "alice",
        "key_id": "k1",
        "name": "Key one",
        "location_ids": ["L0", "L1"],
        "role_ids": ["R0"],
        "secret_sha256": "a" * 64,
        "secret_hint": "apk_...0000",
        "expires_at": "2027-01-01T00:00:00Z",
    },
    {
        "type": "ToggleRoleLocation",
        "command_id": "c7",
        "organization_id": "o1",
        "actor_id": "alice",
        "key_id": "k1",
        "role_id": "R0",
        "location_id": "L1",
    },
    {
        "type": "RotateKeySecret",
        "command_id": "c8",
        "organization_id": "o1",
        "actor_id": "alice",
        "key_id": "k1",
        "secret_sha256": "b" * 64,
        "secret_hint": "apk_...1111",
        "grace_seconds": 60,
    },
    {
        "type": "RenameApiKey",
        "command_id": "c9",
        "organization_id": "o1",
        "actor_id": "bob",
        "key_id": "k1",
        "name": "Nope",
    },
]

# (originator id, version, topic, state) in notification order, as stored.
ROWS: list[tuple[str, int, str, dict[str, Any]]] = [
    (
        "10e0f7153042571290c841eb03674d12",
        1,
        "services.keys.domain.organization:Organization.Registered",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393485+00:00"},
            "originator_topic": "services.keys.domain.organization:Organization",
            "command_id": "c1",
            "actor_id": None,
            "organization_id": "o1",
        },
    ),
    (
        "10e0f7153042571290c841eb03674d12",
        2,
        "services.keys.domain.organization:Organization.ApiModuleEnabled",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393662+00:00"},
            "command_id": "c1",
            "actor_id": None,
        },
    ),
    (
        "5509a1f1e2fa5398ac3fd4a3264a3d24",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393730+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c1",
            "entry_id": "1-0",
            "command_type": "EnableApiModule",
            "organization_id": "o1",
            "key_id": None,
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "10e0f7153042571290c841eb03674d12",
            "last_event_version": 2,
        },
    ),
    (
        "10e0f7153042571290c841eb03674d12",
        3,
        "services.keys.domain.organization:Organization.ApiAdministratorGranted",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393783+00:00"},
            "command_id": "c2",
            "actor_id": None,
            "user_id": "alice",
        },
    ),
    (
        "de3b863e37ff5414a417fafcd9976613",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393816+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c2",
            "entry_id": "1-1",
            "command_type": "GrantApiAdministrator",
            "organization_id": "o1",
            "key_id": None,
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "10e0f7153042571290c841eb03674d12",
            "last_event_version": 3,
        },
    ),
    (
        "10e0f7153042571290c841eb03674d12",
        4,
        "services.keys.domain.organization:Organization.LocationDefined",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393847+00:00"},
            "command_id": "c3",
            "actor_id": None,
            "location_id": "L0",
            "name": "HQ",
            "parent_id": None,
        },
    ),
    (
        "3669a7363e3853bbb9ecefde037fc860",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393879+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c3",
            "entry_id": "1-2",
            "command_type": "DefineLocation",
            "organization_id": "o1",
            "key_id": None,
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "10e0f7153042571290c841eb03674d12",
            "last_event_version": 4,
        },
    ),
    (
        "10e0f7153042571290c841eb03674d12",
        5,
        "services.keys.domain.organization:Organization.LocationDefined",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393901+00:00"},
            "command_id": "c4",
            "actor_id": None,
            "location_id": "L1",
            "name": "Lab",
            "parent_id": "L0",
        },
    ),
    (
        "8847f144e3f15703b7fc8ec89d897de2",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393926+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c4",
            "entry_id": "1-3",
            "command_type": "DefineLocation",
            "organization_id": "o1",
            "key_id": None,
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "10e0f7153042571290c841eb03674d12",
            "last_event_version": 5,
        },
    ),
    (
        "10e0f7153042571290c841eb03674d12",
        6,
        "services.keys.domain.organization:Organization.RoleDefined",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393963+00:00"},
            "command_id": "c5",
            "actor_id": None,
            "role_id": "R0",
            "name": "Ops",
            "permissions": [["read", "everywhere"]],
        },
    ),
    (
        "d645700ff38b5e278e398e398b60273a",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.393997+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c5",
            "entry_id": "1-4",
            "command_type": "DefineRole",
            "organization_id": "o1",
            "key_id": None,
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "10e0f7153042571290c841eb03674d12",
            "last_event_version": 6,
        },
    ),
    (
        "10e0f7153042571290c841eb03674d12",
        7,
        "services.keys.domain.organization:Organization.KeyRegistered",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394174+00:00"},
            "command_id": "c6",
            "actor_id": "alice",
            "key_id": "k1",
        },
    ),
    (
        "af44c87655e15b61a1a29577acc7286e",
        1,
        "services.keys.domain.api_key:ApiKey.Created",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394073+00:00"},
            "originator_topic": "services.keys.domain.api_key:ApiKey",
            "command_id": "c6",
            "actor_id": "alice",
            "organization_id": "o1",
            "key_id": "k1",
            "name": "Key one",
            "location_ids": ["L0", "L1"],
            "role_ids": ["R0"],
            "off_cells": [],
            "secret_sha256": "a" * 64,
            "secret_hint": "apk_...0000",
            "expires_at": {"_type_": "datetime_iso", "_data_": "2027-01-01T00:00:00+00:00"},
        },
    ),
    (
        "8b7723b50e105f61ae8e32a986df6d2a",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394210+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c6",
            "entry_id": "1-5",
            "command_type": "CreateApiKey",
            "organization_id": "o1",
            "key_id": "k1",
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "af44c87655e15b61a1a29577acc7286e",
            "last_event_version": 1,
        },
    ),
    (
        "af44c87655e15b61a1a29577acc7286e",
        2,
        "services.keys.domain.api_key:ApiKey.RoleLocationToggled",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394258+00:00"},
            "command_id": "c7",
            "actor_id": "alice",
            "role_id": "R0",
            "location_id": "L1",
            "applies": False,
        },
    ),
    (
        "7efb26c8390b530e9311b788848d58ac",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394287+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c7",
            "entry_id": "1-6",
            "command_type": "ToggleRoleLocation",
            "organization_id": "o1",
            "key_id": "k1",
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "af44c87655e15b61a1a29577acc7286e",
            "last_event_version": 2,
        },
    ),
    (
        "af44c87655e15b61a1a29577acc7286e",
        3,
        "services.keys.domain.api_key:ApiKey.SecretRotated",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394330+00:00"},
            "command_id": "c8",
            "actor_id": "alice",
            "secret_sha256": "b" * 64,
            "secret_hint": "apk_...1111",
            "previous_secret_sha256": "a" * 64,
            "previous_secret_valid_until": {
                "_type_": "datetime_iso",
                "_data_": "2026-01-02T03:05:05+00:00",
            },
        },
    ),
    (
        "84e44ac05be4578c912451c084f24397",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394365+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c8",
            "entry_id": "1-7",
            "command_type": "RotateKeySecret",
            "organization_id": "o1",
            "key_id": "k1",
            "status": "accepted",
            "error_code": None,
            "error_message": None,
            "last_event_id": "af44c87655e15b61a1a29577acc7286e",
            "last_event_version": 3,
        },
    ),
    (
        "d6d463c05a005691bb26871bb9e5041b",
        1,
        "services.keys.domain.receipt:CommandReceipt.Recorded",
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-02T20:45:35.394406+00:00"},
            "originator_topic": "services.keys.domain.receipt:CommandReceipt",
            "command_id": "c9",
            "entry_id": "1-8",
            "command_type": "RenameApiKey",
            "organization_id": "o1",
            "key_id": "k1",
            "status": "rejected",
            "error_code": "not_api_administrator",
            "error_message": "the actor is not an API Administrator",
            "last_event_id": None,
            "last_event_version": None,
        },
    ),
]

ORGANIZATION_TOPIC = "services.keys.domain.organization:Organization"
API_KEY_TOPIC = "services.keys.domain.api_key:ApiKey"
RECEIPT_TOPIC = "services.keys.domain.receipt:CommandReceipt"
STORED_TOPICS = {
    f"{ORGANIZATION_TOPIC}.Registered": Organization.Registered,
    f"{ORGANIZATION_TOPIC}.ApiModuleEnabled": Organization.ApiModuleEnabled,
    f"{ORGANIZATION_TOPIC}.ApiAdministratorGranted": Organization.ApiAdministratorGranted,
    f"{ORGANIZATION_TOPIC}.LocationDefined": Organization.LocationDefined,
    f"{ORGANIZATION_TOPIC}.RoleDefined": Organization.RoleDefined,
    f"{ORGANIZATION_TOPIC}.KeyRegistered": Organization.KeyRegistered,
    f"{API_KEY_TOPIC}.Created": ApiKey.Created,
    f"{API_KEY_TOPIC}.RoleLocationToggled": ApiKey.RoleLocationToggled,
    f"{API_KEY_TOPIC}.SecretRotated": ApiKey.SecretRotated,
    f"{RECEIPT_TOPIC}.Recorded": CommandReceipt.Recorded,
}


@pytest.fixture
def old_store(tmp_path: Path) -> str:
    """A SQLite event store holding ROWS exactly as the old code stored them."""
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    ApiKeysApplication(url).close()  # the library's tables
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?)",
            [
                (oid, version, topic, json.dumps(state, separators=(",", ":")).encode())
                for oid, version, topic, state in ROWS
            ],
        )
    return url


def test_the_rows_use_every_pinned_topic() -> None:
    assert {topic for _, _, topic, _ in ROWS} == set(STORED_TOPICS)


def test_every_stored_topic_decodes_to_its_event_class(old_store: str) -> None:
    app = ApiKeysApplication(old_store)
    notifications = app.recorder.select_notifications(start=1, limit=100)
    assert [n.topic for n in notifications] == [topic for _, _, topic, _ in ROWS]
    for notification in notifications:
        event = app.mapper.to_domain_event(notification)
        assert type(event) is STORED_TOPICS[notification.topic]
    app.close()


def test_old_events_rebuild_the_organization_and_the_key(old_store: str) -> None:
    app = ApiKeysApplication(old_store)
    org = app.repository.get(Organization.create_id("o1"))
    assert isinstance(org, Organization) and org.version == 7
    assert org.api_module_enabled and org.administrators == {"alice"}
    assert {k: (v.name, v.parent_id) for k, v in org.locations.items()} == {
        "L0": ("HQ", None),
        "L1": ("Lab", "L0"),
    }
    assert org.roles["R0"].permissions == (("read", "everywhere"),)
    assert list(org.key_ids) == ["k1"]
    key = app.repository.get(ApiKey.create_id("k1"))
    assert isinstance(key, ApiKey) and key.version == 3
    assert (key.organization_id, key.name, key.location_ids) == ("o1", "Key one", ["L0", "L1"])
    assert key.matrix == {("R0", "L0"): True, ("R0", "L1"): False}
    assert key.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert (key.secret_sha256, key.previous_secret_sha256) == ("b" * 64, "a" * 64)
    assert key.previous_secret_valid_until == datetime(2026, 1, 2, 3, 5, 5, tzinfo=UTC)
    assert key.enabled and not key.deleted
    assert app.position_of(UUID("af44c87655e15b61a1a29577acc7286e"), 3) == 17
    app.close()


def test_old_receipts_rebuild_with_their_outcome(old_store: str) -> None:
    app = ApiKeysApplication(old_store)
    receipt = app.repository.get(CommandReceipt.create_id("c9"))
    assert isinstance(receipt, CommandReceipt) and receipt.version == 1
    expected = Outcome(
        command_id="c9",
        entry_id="1-8",
        command_type="RenameApiKey",
        organization_id="o1",
        key_id="k1",
        status="rejected",
        error_code="not_api_administrator",
        error_message="the actor is not an API Administrator",
    )
    stored = vars(receipt.outcome)
    assert stored.items() >= {k: v for k, v in vars(expected).items() if k in stored}.items()
    assert receipt.outcome.key_outcomes is None  # a field added later reads as its default
    created = app.repository.get(CommandReceipt.create_id("c6")).outcome
    assert (created.last_event_id, created.last_event_version) == (
        "af44c87655e15b61a1a29577acc7286e",
        1,
    )
    app.close()


def test_old_receipts_give_redelivered_commands_their_original_outcome(old_store: str) -> None:
    app = ApiKeysApplication(old_store)
    entries = [
        Entry(f"1-{i}", command_decoder.decode(msgspec.json.encode(command)))
        for i, command in enumerate(COMMANDS)
    ]
    results = CommandProcessor(app).process([entries[5], entries[8]])
    assert results == [
        CommandResult(
            command_id="c6",
            type="CreateApiKey",
            status="accepted",
            organization_id="o1",
            key_id="k1",
            position=13,
        ),
        CommandResult(
            command_id="c9",
            type="RenameApiKey",
            status="rejected",
            organization_id="o1",
            key_id="k1",
            error=Error("not_api_administrator", "the actor is not an API Administrator"),
        ),
    ]
    assert app.recorder.max_notification_id() == len(ROWS)  # nothing stored again
    app.close()
