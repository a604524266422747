"""The consumer's batch step against an in-memory SQLite view store, without Redis."""

from __future__ import annotations

import asyncio

import pytest

from contracts.streams import DATA_FIELD
from services.projections import model as rules
from services.projections.feed.consumer import apply_batch
from services.projections.feed.entries import stream_cursor, stream_entries
from services.projections.runtime.live import LiveReadModel, PositionNotReached
from services.projections.store import open_store
from tests.support.projection_builders import EventLog, stream_fields


def entries(log: EventLog) -> list:
    rows = []
    for event in log.events:
        entry_id, fields = stream_fields(event)
        rows.append((entry_id.encode(), {k.encode(): v for k, v in fields.items()}))
    return rows


def busy_log() -> EventLog:
    log = EventLog(step=3).setup()
    log.location("hq")
    log.role("r", ("view", "everywhere"))
    log.create_key("k1", ["hq"], ["r"])
    return log


@pytest.fixture
def store():
    opened = open_store("sqlite:///:memory:")
    yield opened
    opened.close()


async def test_a_batch_is_stored_with_its_position_and_wakes_waiters(store):
    log = busy_log()
    live = LiveReadModel()
    waiter = asyncio.create_task(live.wait_for(log.position, timeout=5))
    assert await apply_batch(live, store, entries(log)) == len(log.events)
    await waiter
    loaded = store.load()
    assert loaded.position == live.position == log.position
    assert loaded.keys == live.model.keys
    assert rules.check(loaded, "k1", "view", "hq", False, log.events[0].occurred_at).allowed


async def test_re_applied_entries_change_nothing(store):
    log = busy_log()
    live = LiveReadModel()
    await apply_batch(live, store, entries(log))
    assert await apply_batch(live, store, entries(log)) == 0
    assert store.position() == log.position


async def test_an_undecodable_entry_is_passed_over(store):
    log = busy_log()
    rows = entries(log)
    rows.insert(2, (b"4-1", {DATA_FIELD.encode(): b'{"type": "Nonsense"}'}))
    live = LiveReadModel()
    assert await apply_batch(live, store, rows) == len(log.events)
    assert store.position() == log.position


async def test_waiting_for_an_unreached_position_times_out():
    with pytest.raises(PositionNotReached) as raised:
        await LiveReadModel().wait_for(5, timeout=0.01)
    assert (raised.value.wanted, raised.value.position) == (5, 0)


def test_stream_replies_and_cursors():
    row = (b"3-1", {b"__data__": b"{}"})
    assert stream_entries([[b"s", [row]]]) == [row]
    assert stream_entries({b"s": [[row]]}) == [row]
    assert stream_entries([]) == []
    assert (stream_cursor(0), stream_cursor(42)) == ("0-0", "42-1")
