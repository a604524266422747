"""The rebuild's history fold gives the same model and event-log rows as the live fold."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import msgspec

from contracts import events as ev
from contracts.codec import json_encoder
from contracts.streams import DATA_FIELD
from services.projections import model as rules
from services.projections.feed.consumer import fold_entries
from services.projections.feed.rebuild import HistoryFold
from services.projections.store.event_log import EventRow
from tests.support import workload as w

Entries = list[tuple[bytes, dict[bytes, bytes]]]
Entry = tuple[bytes, dict[bytes, bytes]]

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def live(entries: Entries) -> tuple[rules.ReadModel, list[EventRow]]:
    model, rows = rules.ReadModel(), []
    for start in range(0, len(entries), 7):
        fold_entries(model, entries[start : start + 7], rows)
    return model, rows


def history(entries: Entries) -> tuple[rules.ReadModel, list[EventRow]]:
    rows: list[EventRow] = []
    fold = HistoryFold(rules.ReadModel(), rows)
    raw: list[Any] = [[i, [f for kv in fields.items() for f in kv]] for i, fields in entries]
    for start in range(0, len(raw), 5):
        fold.feed(raw[start : start + 5])
    return fold.finish(), rows


def same(entries: Entries) -> None:
    (a, rows_a), (b, rows_b) = live(entries), history(entries)
    assert rows_b == rows_a
    assert b.position == a.position
    assert b.keys == a.keys
    assert b.secrets == a.secrets
    assert b.org_keys == a.org_keys
    assert b.organizations == a.organizations


def entry(event: ev.AnyEvent, entry_position: int | None = None) -> Entry:
    position = event.position if entry_position is None else entry_position
    return f"{position}-1".encode(), {DATA_FIELD.encode(): json_encoder.encode(event)}


def renamed(position: int, key_id: str, state: ev.KeyState, org: str = w.ORG) -> ev.ApiKeyRenamed:
    return ev.ApiKeyRenamed(
        position=position,
        organization_id=org,
        occurred_at=T0,
        key_id=key_id,
        key=state,
        name=state.name,
    )


def test_the_check_workload_folds_the_same() -> None:
    events, _ = w.check_events(300, 50, 3_000)
    same([entry(e) for e in events])


def test_secrets_shared_between_keys_fold_the_same() -> None:
    rng = random.Random(5)
    shas = [f"{i:064x}" for i in range(6)]
    events: list[ev.AnyEvent] = list(w.org_events(w.Positions(), 3, w.ROLES))
    position = events[-1].position
    for _ in range(400):
        position += 1
        key_id = f"k{rng.randrange(5)}"
        previous = rng.choice([None, "", *shas])
        state = w.key_state(key_id, ["L0"], ["R0"])

        state = msgspec.structs.replace(
            state,
            name=f"n{position}",
            secret_sha256=rng.choice([*shas, ""]),
            previous_secret_sha256=previous,
            previous_secret_valid_until=T0 if previous else None,
        )
        events.append(renamed(position, key_id, state, rng.choice([w.ORG, "other"])))
    same([entry(e) for e in events])


def test_skipped_entries_and_positions_fold_the_same() -> None:
    events = list(w.org_events(w.Positions(), 3, w.ROLES))
    entries = [entry(e) for e in events]
    state = w.key_state("k1", ["L0"], ["R0"])
    p = events[-1].position
    entries.append((f"{p + 1}-1".encode(), {DATA_FIELD.encode(): b"{not json"}))
    entries.append((f"{p + 2}-1".encode(), {b"other": b"x"}))
    entries.append(entry(renamed(p + 3, "k1", state)))
    entries.append(entry(renamed(p + 2, "k2", state), p + 4))  # behind the model: skipped
    entries.append(entry(renamed(p + 10, "k2", state), p + 5))  # ahead of its entry id
    entries.append(entry(renamed(p + 6, "k3", state), p + 11))  # behind: skipped
    entries.append(
        entry(ev.ApiModuleDisabled(position=p + 12, organization_id=w.ORG, occurred_at=T0))
    )
    entries.append(entry(renamed(p + 13, "k1", state)))
    same(entries)


def test_a_model_with_compiled_grants_is_refused() -> None:
    events, _ = w.check_events(20, 10, 40)
    model = rules.fold(events)
    rules.key_grants(model, "k1")
    try:
        HistoryFold(model, [])
    except ValueError:
        return
    raise AssertionError("expected a ValueError")


def test_a_secret_taken_over_and_dropped_folds_the_same() -> None:

    events = list(w.org_events(w.Positions(), 3, w.ROLES))
    p = events[-1].position
    base = w.key_state("k", ["L0"], ["R0"])
    x, z = "a" * 64, "b" * 64
    events += [
        renamed(p + 1, "A", msgspec.structs.replace(base, secret_sha256=x)),
        renamed(p + 2, "B", msgspec.structs.replace(base, secret_sha256=x)),
        renamed(p + 3, "B", msgspec.structs.replace(base, secret_sha256=z)),
    ]
    same([entry(e) for e in events])
