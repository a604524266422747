"""A SQLite rebuild writes its new tables under a rollback journal, then goes back to WAL; with
another connection open it stays in WAL. Either way the store holds exactly the new content."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.projections import model as rules
from services.projections.store import open_store
from services.projections.store.batch import full_batch
from tests.support.projection_builders import EventLog


def model_of(keys: int) -> rules.ReadModel:
    log = EventLog().setup()
    log.location("hq")
    log.role("viewer", ("view", "location_and_below"))
    for n in range(keys):
        log.create_key(f"k{n}", ["hq"], ["viewer"])
    return rules.fold(log.events)


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.mark.parametrize("reader_open", [False, True])
def test_a_rebuild_replaces_the_content_and_leaves_the_store_in_wal(
    tmp_path: Path, reader_open: bool
) -> None:
    path = tmp_path / "views.db"
    store = open_store(f"sqlite:///{path}")
    store.replace(full_batch(model_of(5)))
    reader = sqlite3.connect(path) if reader_open else None
    if reader is not None:
        reader.execute("SELECT count(*) FROM apikeys_view_keys").fetchone()
    store.replace(full_batch(model_of(3)))
    if reader is not None:
        reader.close()
    assert journal_mode(path) == "wal"
    loaded = store.load()
    assert sorted(loaded.keys) == ["k0", "k1", "k2"]
    store.close()
