"""The projection's read endpoints for administration pages: an organization's directory
(module, administrators, locations with paths, roles), its keys' details and one key's details;
the administrators and the keys' created/changed facts survive the view store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from contracts import events as ev
from services.projections import model as rules
from services.projections.http.app import create_app
from services.projections.runtime.live import LiveReadModel
from services.projections.store import open_store
from services.projections.store.batch import full_batch
from tests.support.projection_api import NOW, populated
from tests.support.projection_builders import T0, EventLog


@pytest.fixture
def log() -> EventLog:
    log = populated()
    log.org(ev.ApiAdministratorGranted, user_id="bob")
    log.org(ev.ApiAdministratorGranted, user_id="alice")
    log.org(ev.ApiAdministratorGranted, user_id="carol")
    log.org(ev.ApiAdministratorRevoked, user_id="bob")
    log.key(ev.ApiKeyRenamed, "k1", {"name": "Nightly", "actor_id": "alice"}, name="Nightly")
    log.create_key("gone", ["hq"], ["viewer"])
    log.key(ev.ApiKeyDeleted, "gone", deleted=True)
    return log


@pytest.fixture
async def client(log: EventLog) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(LiveReadModel(rules.fold(log.events)), clock=lambda: NOW)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_the_directory_has_module_administrators_location_paths_and_roles(client, log):
    answer = (await client.get("/v1/organizations/org-1")).json()
    assert answer["known"] is True
    assert answer["api_module_enabled"] is True
    assert answer["administrators"] == ["alice", "carol"]
    assert [(e["location_id"], e["path"]) for e in answer["locations"]] == [
        ("hq", ["hq"]),
        ("plant", ["hq", "plant"]),
        ("line", ["hq", "plant", "line"]),
    ]
    assert answer["roles"] == [
        {
            "role_id": "viewer",
            "name": "viewer",
            "permissions": [
                {"permission": "view", "scope": "location_and_below"},
                {"permission": "edit", "scope": "own_items"},
            ],
        }
    ]
    assert answer["position"] == log.position


async def test_an_organization_never_seen_is_not_known_and_has_no_administrators(client):
    answer = (await client.get("/v1/organizations/nobody")).json()
    assert (answer["known"], answer["api_module_enabled"], answer["administrators"]) == (
        False,
        False,
        [],
    )


async def test_the_key_list_has_details_status_and_who_changed_what_without_deleted_keys(client):
    keys = (await client.get("/v1/organizations/org-1/api-keys")).json()["keys"]
    assert [(k["key_id"], k["name"], k["status"]) for k in keys] == [
        ("k2", "k2", "disabled"),
        ("k1", "Nightly", "active"),
    ]
    k1 = keys[1]
    assert k1["location_ids"] == ["plant"] and k1["role_ids"] == ["viewer"]
    assert k1["changed_by"] == "alice" and k1["created_by"] is None
    assert k1["created_at"].startswith(T0.date().isoformat())
    assert "secret_sha256" not in k1 and k1["secret_hint"]


async def test_one_key_answers_its_details_deleted_included_and_404_when_unknown(client):
    gone = (await client.get("/v1/keys/gone")).json()["key"]
    assert (gone["status"], gone["deleted"]) == ("deleted", True)
    missing = await client.get("/v1/keys/nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown_key")


async def test_an_expired_key_says_expired(log):
    log.create_key("old", ["hq"], ["viewer"], expires_at=NOW - timedelta(seconds=1))
    app = create_app(LiveReadModel(rules.fold(log.events)), clock=lambda: NOW)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as h:
        assert (await h.get("/v1/keys/old")).json()["key"]["status"] == "expired"


async def test_unknown_query_parameters_are_refused(client):
    answer = await client.get("/v1/organizations/org-1/api-keys?permission=view")
    assert answer.status_code == 400


def test_administrators_and_key_facts_survive_the_view_store(tmp_path: Path, log: EventLog):
    model = rules.fold(log.events)
    store = open_store(f"sqlite:///{tmp_path / 'views.db'}")
    try:
        store.replace(full_batch(model))
        loaded = store.load()
    finally:
        store.close()
    assert loaded.organizations["org-1"].administrators == ["alice", "carol"]
    assert loaded.keys["k1"].meta == model.keys["k1"].meta
    assert loaded.keys["k1"].meta.changed_by == "alice"


async def test_the_openapi_document_describes_the_new_endpoints(client):
    document = (await client.get("/schema/openapi.json")).json()
    paths = document["paths"]
    for path in (
        "/v1/organizations/{organization_id}",
        "/v1/organizations/{organization_id}/api-keys",
        "/v1/keys/{key_id}",
    ):
        assert "get" in paths[path], path
    schemas = document["components"]["schemas"]
    assert {"OrganizationAnswer", "OrganizationKeyListAnswer", "KeyDetailsAnswer"} <= set(schemas)
    assert "secret_sha256" not in schemas["KeyDetails"]["properties"]


async def test_with_callers_the_admin_endpoints_need_list_and_the_organization(
    tmp_path: Path,
) -> None:
    from tests.support.callers import bearer, serve_api

    async with serve_api(tmp_path) as api, httpx.AsyncClient(base_url=api.url) as http:

        async def status(url: str, caller: str | None) -> int:
            headers = bearer(caller) if caller else {}
            return (await http.get(url, headers=headers)).status_code

        for url in ("/v1/organizations/org-a", "/v1/organizations/org-a/api-keys", "/v1/keys/ka"):
            assert await status(url, None) == 401
            assert await status(url, "gateway") == 403  # no `list`
            assert await status(url, "auditor") == 200
        assert await status("/v1/organizations/org-b/api-keys", "auditor") == 403
        # another tenant's key is answered as an unknown one
        hidden = await http.get("/v1/keys/kb", headers=bearer("auditor"))
        unknown = await http.get("/v1/keys/kz", headers=bearer("auditor"))
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json() == unknown.json()
        assert await status("/v1/keys/kb", "root") == 200
