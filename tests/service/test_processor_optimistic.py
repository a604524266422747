"""The fast path takes an uncached key id to be new; the store's uniqueness check keeps it
honest: a batch that creates an existing key is replayed carefully and answers key_exists."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.commands import command_decoder
from services.keys.domain import ApiKey
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from tests.support.scenario import create_key, key_command, organization_setup


def entries(*commands: dict, start: int = 0) -> list[Entry]:
    return [
        Entry(f"{start + i}-0", command_decoder.decode(json.dumps(c)))
        for i, c in enumerate(commands)
    ]


def test_creating_a_stored_but_uncached_key_is_key_exists_and_the_batch_keeps_its_order(
    tmp_path: Path,
) -> None:
    app = ApiKeysApplication(f"sqlite:///{tmp_path / 'events.db'}")
    setup = organization_setup("acme")
    first = CommandProcessor(app).process(entries(*setup, create_key("acme", "k1")))
    assert all(r.status == "accepted" for r in first)
    restarted = CommandProcessor(app)  # empty cache, as after a restart
    before = app.recorder.max_notification_id()
    results = restarted.process(
        entries(
            create_key("acme", "k2"),
            create_key("acme", "k1"),
            key_command("RenameApiKey", "acme", "k2", name="Second"),
            start=100,
        )
    )
    assert [r.status for r in results] == ["accepted", "rejected", "accepted"]
    assert results[1].error is not None and results[1].error.code == "key_exists"
    assert results[0].position is not None and results[2].position is not None
    assert before < results[0].position < results[2].position
    original = app.repository.get(ApiKey.create_id("k1"))
    assert original.name == "Key k1" and original.version == 1
