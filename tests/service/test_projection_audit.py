"""The event log read model and the audit queries over it, on SQLite and PostgreSQL, and HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from contracts import events as ev
from contracts.codec import json_encoder
from services.projections import audit
from services.projections import model as rules
from services.projections.audit import queries as audit_queries
from services.projections.feed.consumer import apply_batch, fold_entries
from services.projections.http.app import create_app
from services.projections.runtime.live import LiveReadModel
from services.projections.store import event_log, open_store
from services.projections.store.batch import full_batch
from services.projections.store.sql import SqlViewStore
from tests.support.audit_scenario import TICK, TimedLog, day, entries, scenario
from tests.support.stores import STORES


@pytest.fixture(params=STORES)
def store(request, tmp_path: Path, unique: str) -> Iterator[SqlViewStore]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_dsn")
    else:
        url = f"sqlite:///{tmp_path / 'views.db'}"
    opened = open_store(url, f"apikeys_view_audit{unique}_")
    yield opened
    opened.drop()
    opened.close()


async def filled(store: SqlViewStore, events: list[ev.AnyEvent]) -> LiveReadModel:
    live = LiveReadModel()
    await apply_batch(live, store, entries(events))
    return live


def log_rows(store: SqlViewStore) -> list[tuple]:
    return store.query(
        "SELECT position, organization_id, key_id, type, occurred_at, event"
        " FROM {p}event_log ORDER BY position"
    )


class TestEventLog:
    async def test_every_applied_event_is_logged_once_as_it_came(self, store):
        log, _ = scenario()
        live = await filled(store, log.events)
        assert await apply_batch(live, store, entries(log.events)) == 0  # a replay writes nothing
        rows = log_rows(store)
        assert [row[0] for row in rows] == [e.position for e in log.events]
        by_position = {e.position: e for e in log.events}
        for position, org_id, key_id, type_, _, data in rows:
            event = by_position[position]
            assert (org_id, key_id, type_) == (
                event.organization_id,
                getattr(event, "key_id", None),
                type(event).__name__,
            )
            assert data == json_encoder.encode(event).decode()

    async def test_a_rebuild_fills_the_log_like_the_live_run(self, store):
        log, _ = scenario()
        await filled(store, log.events)
        live_rows = log_rows(store)
        model, rows = rules.ReadModel(), []
        fold_entries(model, entries(log.events), rows)
        store.replace(full_batch(model, rows))
        assert log_rows(store) == live_rows

    async def test_as_of_queries_fold_what_the_pure_twin_folds(self, store):
        log, steps = scenario()
        await filled(store, log.events)
        for moment, _, _ in steps:
            for at in (moment - TICK, moment):
                got = event_log.key_events(store, "key-1", as_of=at)
                assert got == audit.key_and_organization_events(log.events, "key-1", at)

    async def test_history_pages_with_after_position_and_limit(self, store):
        log, _ = scenario()
        await filled(store, log.events)
        expected = [e.position for e in log.events if getattr(e, "key_id", None) == "key-1"]
        seen, after = [], 0
        while True:
            page = audit_queries.key_history(store, "key-1", after, 3)
            seen += [entry.position for entry in page.entries]
            assert len(page.entries) <= 3
            if page.next_after_position is None:
                break
            after = page.next_after_position
        assert seen == expected
        assert page.organization_id == "org-1"
        # a page's first entry is compared with the state before it, not with nothing
        second = audit_queries.key_history(store, "key-1", expected[0], 1).entries[0]
        assert second.changes == {"role_id": "viewer", "role_ids": {"from": [], "to": ["viewer"]}}

    async def test_the_first_history_page_of_a_10000_event_key_is_an_index_lookup(self, store):
        log = TimedLog().setup()
        log.location("site")
        log.create_key("key-1", ["site"], [])
        for n in range(10_000):
            log.key(ev.ApiKeyRenamed, "key-1", {"name": f"name {n}"}, name=f"name {n}")
        await filled(store, log.events)
        started = time.perf_counter()
        page = audit_queries.key_history(store, "key-1", 0, 100)
        elapsed = time.perf_counter() - started
        assert len(page.entries) == 100 and page.next_after_position is not None
        assert elapsed < 1.0  # smoke bound only; figures belong in benchmarks/


NOW = day(30)


@pytest.fixture
async def client(store: SqlViewStore) -> AsyncIterator[httpx.AsyncClient]:
    log, _ = scenario()
    live = await filled(store, log.events)
    app = create_app(live, clock=lambda: NOW, min_position_wait=0.2, event_log=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def check_url(**extra: str) -> str:
    query = "key_id=key-1&permission=view_private&location_id=plant-7"
    return "/v1/check?" + "&".join([query, *(f"{k}={v}" for k, v in extra.items())])


class TestAuditOverHttp:
    async def test_history_lists_a_deleted_keys_events_in_pages(self, client):
        first = (await client.get("/v1/keys/key-1/history?limit=5")).json()
        assert [e["type"] for e in first["entries"]][:2] == ["ApiKeyCreated", "KeyRoleAdded"]
        assert set(first["entries"][0]) == {
            "position",
            "type",
            "occurred_at",
            "actor_id",
            "command_id",
            "changes",
        }
        after = first["next_after_position"]
        rest = (await client.get(f"/v1/keys/key-1/history?after_position={after}")).json()
        assert rest["entries"][-1]["type"] == "ApiKeyDeleted"
        assert rest["next_after_position"] is None

    async def test_history_as_of_ends_at_that_instant_inclusive(self, client):
        log, steps = scenario()
        key_events = [e for e in log.events if getattr(e, "key_id", None) == "key-1"]
        for moment, _, _ in steps:
            for at in (moment - TICK, moment):
                stamp = at.isoformat().replace("+00:00", "Z")
                answer = (await client.get(f"/v1/keys/key-1/history?as_of={stamp}")).json()
                expected = [e.position for e in key_events if e.occurred_at <= at]
                assert [e["position"] for e in answer["entries"]] == expected, stamp

    async def test_history_as_of_pages_within_its_instant(self, client):
        log, steps = scenario()
        at = steps[len(steps) // 2][0].isoformat().replace("+00:00", "Z")
        whole = (await client.get(f"/v1/keys/key-1/history?as_of={at}")).json()["entries"]
        assert len(whole) > 2
        pages, after = [], 0
        while after is not None:
            url = f"/v1/keys/key-1/history?as_of={at}&limit=2&after_position={after}"
            page = (await client.get(url)).json()
            pages.extend(page["entries"])
            after = page["next_after_position"]
        assert pages == whole

    async def test_check_as_of_answers_like_the_key_was_then(self, client):
        live = (await client.get(check_url())).json()
        assert live["denied_because"] == "deleted"
        then = (await client.get(check_url(as_of="2024-01-05T00:00:00Z"))).json()
        assert then["allowed"] is True
        before = (await client.get(check_url(as_of="2024-01-04T23:59:59Z"))).json()
        assert before["denied_because"] == "not_granted"

    async def test_explain_gives_the_chain_with_positions(self, client):
        answer = (await client.get(check_url(as_of="2024-01-13T00:00:00Z", explain="true"))).json()
        (chain,) = answer["explanation"]
        assert chain["role_id"] == "viewer" and chain["location_id"] == "site"
        assert chain["cell_set_by"] == "toggle"
        assert [link["location_id"] for link in chain["path"]] == ["plant-7"]
        assert all(
            isinstance(p, int)
            for p in (chain["role_permission_position"], chain["key_location_position"])
        )

    async def test_permissions_as_of_use_the_live_answer_format(self, client):
        then = (await client.get("/v1/keys/key-1/permissions?as_of=2024-01-03T12:00:00Z")).json()
        assert then["status"] == "active"
        assert set(then) == set((await client.get("/v1/keys/key-1/permissions")).json())
        assert {loc["location_id"] for loc in then["locations"]} == {"site", "plant-7"}

    @pytest.mark.parametrize(
        "url",
        [
            "/v1/keys/key-1/history?limit=1001",
            "/v1/keys/key-1/history?limit=0",
            "/v1/keys/key-1/history?after_position=-1",
            "/v1/keys/key-1/permissions?as_of=yesterday",
            "/v1/keys/key-1/history?as_of=yesterday",
            "/v1/keys/key-1/history?as_of=2024-13-01T00:00:00Z",
            check_url(as_of="not-a-time"),
        ],
    )
    async def test_bad_audit_input_is_a_4xx_with_a_json_error(self, client, url):
        response = await client.get(url)
        assert response.status_code == 400
        assert "error" in response.json()

    async def test_min_position_is_honoured(self, client):
        response = await client.get("/v1/keys/key-1/history?min_position=999999")
        assert response.status_code == 503


def test_as_of_after_everything_equals_the_live_model():
    log, _ = scenario()
    replayed = audit.replay(audit.key_and_organization_events(log.events, "key-1"))
    assert replayed.model.keys["key-1"] == rules.fold(log.events).keys["key-1"]
    assert day(0) + timedelta(0) < NOW
