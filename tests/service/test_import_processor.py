"""ImportApiKeys through the batch processor on a real event store: one result per command with
an outcome per key, the same ApiKeyCreated events the relay already publishes, nothing stored a
second time, and the outcomes kept for redeliveries and resends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from contracts import events as e
from contracts.commands import command_decoder
from contracts.results import CommandResult
from services.keys.processor import BATCH_KEYS, CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from services.keys.streams.feed import EventFeed
from services.keys.streams.mapping import PUBLISHED_TOPICS
from tests.support.scenario import organization_setup, sha

_entry_ids = itertools.count(1)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[ApiKeysApplication]:
    opened = ApiKeysApplication(f"sqlite:///{tmp_path}/events.db")
    yield opened
    opened.close()


@pytest.fixture
def processor(app: ApiKeysApplication) -> CommandProcessor:
    processor = CommandProcessor(app)
    process(processor, organization_setup("acme", locations=3, roles=2))
    return processor


def entry(command: dict[str, Any], entry_id: str | None = None) -> Entry:
    decoded = command_decoder.decode(msgspec.json.encode(command))
    return Entry(entry_id or f"{next(_entry_ids)}-0", decoded)


def process(processor: CommandProcessor, commands: list[dict[str, Any]]) -> list[CommandResult]:
    return processor.process([entry(command) for command in commands])


def key(key_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "key_id": key_id,
        "name": f"Key {key_id}",
        "location_ids": ["L1", "L2"],
        "role_ids": ["R0"],
        "secret_sha256": sha(key_id),
        "secret_hint": "apk_...0000",
        **fields,
    }


def import_of(command_id: str, *keys: dict[str, Any], actor: str = "alice") -> dict[str, Any]:
    return {
        "type": "ImportApiKeys",
        "command_id": command_id,
        "organization_id": "acme",
        "actor_id": actor,
        "keys": list(keys),
    }


def outcome_codes(result: CommandResult) -> list[tuple[str, str, str | None]]:
    return [(o.key_id, o.status, o.error.code if o.error else None) for o in result.outcomes or []]


def published(app: ApiKeysApplication) -> list[e.Event]:
    feed = EventFeed(app)
    out = []
    while True:
        batch = feed.read_batch()
        if not batch:
            return out
        out += [msgspec.json.decode(data, type=e.AnyEvent) for _, data in batch]


def test_one_result_with_an_outcome_per_key_in_the_commands_order(
    processor: CommandProcessor,
) -> None:
    [result] = process(
        processor,
        [import_of("i1", key("k1"), key("k2", role_ids=["nope"]), key("k3"))],
    )
    assert result.status == "accepted" and result.type == "ImportApiKeys"
    assert outcome_codes(result) == [
        ("k1", "accepted", None),
        ("k2", "rejected", "unknown_role"),
        ("k3", "accepted", None),
    ]
    assert result.position is not None


def test_imported_keys_are_published_as_the_usual_api_key_created_events(
    processor: CommandProcessor, app: ApiKeysApplication
) -> None:
    before = len(published(app))
    process(processor, [import_of("i1", key("k1"), key("k2"))])
    created = published(app)[before:]
    assert [type(event) for event in created] == [e.ApiKeyCreated, e.ApiKeyCreated]
    first = created[0]
    assert isinstance(first, e.ApiKeyCreated)
    assert (first.key_id, first.command_id, first.actor_id) == ("k1", "i1", "alice")
    assert first.key.secret_sha256 == sha("k1") and first.key.location_ids == ["L1", "L2"]


def test_a_second_import_of_the_same_keys_stores_no_key_event(
    processor: CommandProcessor, app: ApiKeysApplication
) -> None:
    keys = [key(f"k{i}") for i in range(20)]
    process(processor, [import_of("first", *keys)])
    published_before = app.last_position(PUBLISHED_TOPICS)
    fresh = CommandProcessor(app)  # nothing cached: what the store says decides
    [again] = process(fresh, [import_of("second", *keys)])
    assert {o.status for o in again.outcomes or []} == {"already_present"}
    assert app.last_position(PUBLISHED_TOPICS) == published_before


def test_keys_created_earlier_in_the_same_batch_are_already_present(
    processor: CommandProcessor,
) -> None:
    first, second = process(processor, [import_of("a", key("k1")), import_of("b", key("k1"))])
    assert outcome_codes(first) == [("k1", "accepted", None)]
    assert outcome_codes(second) == [("k1", "already_present", None)]


def test_an_import_refused_as_a_whole_rejects_every_key_with_its_code(
    processor: CommandProcessor, app: ApiKeysApplication
) -> None:
    before = app.last_position(PUBLISHED_TOPICS)
    [result] = process(processor, [import_of("i1", key("k1"), key("k2"), actor="mallory")])
    assert result.status == "rejected" and result.error is not None
    assert result.error.code == "not_api_administrator"
    assert [o[1:] for o in outcome_codes(result)] == [("rejected", "not_api_administrator")] * 2
    assert app.last_position(PUBLISHED_TOPICS) == before


def test_a_redelivery_and_a_resend_get_the_first_outcomes_from_the_store(
    processor: CommandProcessor, app: ApiKeysApplication
) -> None:
    command = import_of("i1", key("k1"), key("k2", location_ids=["nowhere"]))
    first_entry = entry(command, "900-0")
    [first] = processor.process([first_entry])
    restarted = CommandProcessor(app)  # a new process: only the receipt remembers
    [redelivered] = restarted.process([first_entry])
    [resent] = restarted.process([entry(command, "901-0")])
    assert redelivered.status == "accepted" and resent.status == "duplicate"
    for answer in (redelivered, resent):
        assert outcome_codes(answer) == outcome_codes(first)
        assert answer.position == first.position


def test_a_batch_of_many_imports_is_stored_in_parts_in_stream_order(
    processor: CommandProcessor,
) -> None:
    imports = [
        import_of(f"i{j}", *[key(f"k{j}-{i}") for i in range(1000)])
        for j in range(BATCH_KEYS // 1000 + 2)
    ]
    rename = {"type": "RenameApiKey", "command_id": "r1", "organization_id": "acme",
              "actor_id": "alice", "key_id": "k0-0", "name": "renamed"}  # fmt: skip
    results = process(processor, [*imports, rename])
    assert [r.status for r in results] == ["accepted"] * len(results)
    positions = [r.position or 0 for r in results]
    assert positions == sorted(positions)
    assert all(o.status == "accepted" for r in results[:-1] for o in r.outcomes or [])
