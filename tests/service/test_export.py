"""`export_events`: the event store's history as JSON lines, in the events stream's format."""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgspec

from contracts.commands import command_decoder
from contracts.events import event_decoder
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from services.keys.streams.export import export_events
from tests.support.scenario import create_key, key_command, organization_setup


def fill(url: str) -> None:
    app = ApiKeysApplication(url)
    commands = organization_setup("acme") + organization_setup("globex")
    commands += [
        create_key("acme", "k1"),
        create_key("globex", "k2"),
        key_command("RenameApiKey", "acme", "k1", name="Renamed"),
    ]
    entries = [
        Entry(f"{i}-0", command_decoder.decode(json.dumps(c))) for i, c in enumerate(commands)
    ]
    results = CommandProcessor(app).process(entries)
    assert all(r.status == "accepted" for r in results)
    app.close()


def test_export_writes_every_published_event_in_position_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    fill(url)
    out, progress = io.StringIO(), io.StringIO()
    written = export_events(url, out, progress=progress)
    lines = out.getvalue().splitlines()
    assert written == len(lines) > 0
    events = [event_decoder.decode(line) for line in lines]
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))
    assert [type(e).__name__ for e in events][-1] == "ApiKeyRenamed"
    assert events[-1].key.name == "Renamed"  # type: ignore[union-attr]
    assert "exported" in progress.getvalue()


def test_export_since_a_position_and_for_one_organization(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    fill(url)
    everything = io.StringIO()
    export_events(url, everything)
    all_events = [msgspec.json.decode(line) for line in everything.getvalue().splitlines()]
    middle = all_events[len(all_events) // 2]["position"]
    later = io.StringIO()
    export_events(url, later, since=middle)
    assert [msgspec.json.decode(x) for x in later.getvalue().splitlines()] == [
        e for e in all_events if e["position"] > middle
    ]
    acme = io.StringIO()
    export_events(url, acme, organization_id="acme")
    acme_events = [msgspec.json.decode(x) for x in acme.getvalue().splitlines()]
    assert acme_events == [e for e in all_events if e["organization_id"] == "acme"]
