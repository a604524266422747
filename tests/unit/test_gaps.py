"""Finding a gap: an event whose previous_position is past the reader's position shows events
missing; folding stops there (live and in a rebuild) and nothing after it is applied."""

from __future__ import annotations

import pytest

from contracts.streams import REPLAY_REQUESTS_STREAM
from services.keys.settings import KeysSettings
from services.projections import model as rules
from services.projections.feed.catchup import EventsMissing, Gap, file_entries, gap_before
from services.projections.feed.consumer import fold_entries, fold_until_gap
from services.projections.feed.rebuild import HistoryFold
from services.projections.runtime.settings import Settings
from tests.support.projection_builders import EventLog, export_lines, stream_fields


@pytest.mark.parametrize(
    ("previous", "position", "reader_at", "gap"),
    [
        (None, 9, 0, False),  # published before the field: nobody can tell
        (4, 9, 4, False),  # the reader has what comes before
        (6, 9, 4, True),  # 5..6 are missing
        (6, 3, 4, False),  # a repeat of an event the reader has
        (2, 9, 4, False),  # names nothing the reader lacks
    ],
)
def test_a_gap_is_a_previous_position_past_the_reader(
    previous: int | None, position: int, reader_at: int, gap: bool
) -> None:
    assert gap_before(previous, position, reader_at) is gap


def chained_log() -> EventLog:
    log = EventLog(chained=True, step=3).setup()
    log.location("hq")
    log.role("r", ("view", "everywhere"))
    for n in range(4):
        log.create_key(f"k{n}", ["hq"], ["r"])
    return log


def entries(log: EventLog, start: int = 0) -> list:
    return [
        (entry_id.encode(), {k.encode(): v for k, v in fields.items()})
        for entry_id, fields in map(stream_fields, log.events[start:])
    ]


def test_folding_stops_at_the_first_event_after_a_gap() -> None:
    log = chained_log()
    model = rules.ReadModel()
    touched, gap = fold_until_gap(model, entries(log, 0)[:2] + entries(log, 4))
    assert gap == Gap(log.events[1].position, log.events[3].position, 2)
    assert model.position == log.events[1].position  # nothing after the gap applied
    assert len(touched) == 2
    with pytest.raises(EventsMissing):
        fold_entries(rules.ReadModel(), entries(log, 1))


def test_a_rebuild_fold_stops_at_a_gap_and_goes_on_once_it_is_filled() -> None:
    log = chained_log()
    rows: list = []
    fold = HistoryFold(rules.ReadModel(), rows)
    rest = entries(log, 5)
    gap = fold.feed(entries(log, 0)[:3] + rest)
    assert gap == Gap(log.events[2].position, log.events[4].position, 3)
    assert fold.feed(entries(log, 3)[:2]) is None
    assert fold.feed((entries(log, 0)[:3] + rest)[gap.index :]) is None
    assert fold.finish().position == log.position
    assert [row[0] for row in rows] == [e.position for e in log.events]


def test_a_file_of_exported_events_reads_as_stream_entries_and_rejects_other_lines() -> None:
    log = chained_log()
    lines = export_lines(log.events)
    chunks = list(file_entries(["\n", *lines], chunk=3))
    assert [len(c) for c in chunks] == [3, 3, 2]
    assert chunks[0][0][0] == f"{log.events[0].position}-1"
    with pytest.raises(ValueError, match="line 2"):
        list(file_entries([lines[0], "not json\n"], chunk=3))


def test_replay_settings_come_from_the_environment() -> None:
    assert Settings.from_env({}).replay_requests_stream == REPLAY_REQUESTS_STREAM
    projection = Settings.from_env(
        {"APIKEYS_REPLAY_REQUESTS_STREAM": "r", "APIKEYS_REPLAY_TIMEOUT_SECONDS": "2.5"}
    )
    assert (projection.replay_requests_stream, projection.replay_timeout_seconds) == ("r", 2.5)
    keys = KeysSettings.from_env(
        {"APIKEYS_REPLAY_MAX_EVENTS": "7", "APIKEYS_REPLAY_TTL_SECONDS": "9"}
    )
    assert (keys.replay_requests_stream, keys.replay_max_events, keys.replay_ttl_seconds) == (
        REPLAY_REQUESTS_STREAM,
        7,
        9,
    )
