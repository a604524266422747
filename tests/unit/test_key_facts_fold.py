"""Who created a key and when, who changed it last and when, and the API administrators: folded
the same by the live fold and by a rebuild's history fold (which puts each key once, from its
last event)."""

from __future__ import annotations

from datetime import timedelta

from contracts import events as ev
from services.projections import model as rules
from services.projections.feed.rebuild import HistoryFold
from tests.support.projection_builders import T0, EventLog, stream_fields


def entries(log: EventLog) -> list:
    return [
        (entry_id.encode(), {k.encode(): v for k, v in fields.items()})
        for entry_id, fields in map(stream_fields, log.events)
    ]


def history() -> EventLog:
    log = EventLog().setup()
    log.location("hq")
    log.role("r", ("view", "everywhere"))
    log.org(ev.ApiAdministratorGranted, user_id="alice")
    log.org(ev.ApiAdministratorGranted, user_id="bob")
    log.org(ev.ApiAdministratorRevoked, user_id="alice")
    log.key(ev.ApiKeyCreated, "k1", {"actor_id": "alice"}, location_ids=["hq"], role_ids=["r"])
    log.key(ev.ApiKeyRenamed, "k1", {"name": "B", "actor_id": "bob"}, name="B")
    log.key(ev.ApiKeyCreated, "k2", {"actor_id": "bob"}, location_ids=["hq"])
    log.key(ev.ApiKeyDisabled, "k1", {"actor_id": "carol"}, enabled=False)
    for minutes, event in enumerate(log.events):
        event.occurred_at = T0 + timedelta(minutes=minutes)
    return log


def test_the_live_fold_keeps_the_first_and_the_latest_event_of_each_key() -> None:
    log = history()
    model = rules.fold(log.events)
    k1 = model.keys["k1"].meta
    assert (k1.created_by, k1.changed_by) == ("alice", "carol")
    assert k1.created_at == log.events[7].occurred_at  # its ApiKeyCreated
    assert k1.changed_at == log.events[-1].occurred_at
    assert model.organizations["org-1"].administrators == ["bob"]


def test_a_rebuild_fold_gives_the_same_facts_as_the_live_fold() -> None:
    log = history()
    fold = HistoryFold(rules.ReadModel(), [])
    half = len(log.events) - 2
    fold.feed(entries(log)[:half])
    fold.finish()  # a key put once already, then changed again
    fold.feed(entries(log)[half:])
    rebuilt = fold.finish()
    live = rules.fold(log.events)
    assert {k: v.meta for k, v in rebuilt.keys.items()} == {k: v.meta for k, v in live.keys.items()}
    assert rebuilt.organizations == live.organizations
