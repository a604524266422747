"""The projection HTTP API against an in-memory read model fed with contract events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from contracts import events as ev
from contracts.tokens import new_token
from services.projections import model as rules
from services.projections.http.app import create_app
from services.projections.runtime.live import LiveReadModel
from tests.support.projection_api import NOW, OLD_TOKEN, TOKEN, check_url, populated
from tests.support.projection_builders import EventLog


@pytest.fixture
def log() -> EventLog:
    return populated()


@pytest.fixture
def live(log: EventLog) -> LiveReadModel:
    return LiveReadModel(rules.fold(log.events))


@pytest.fixture
def clock() -> list:
    return [NOW]


@pytest.fixture
async def client(live: LiveReadModel, clock: list) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(live, clock=lambda: clock[0], min_position_wait=0.5)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


class TestCheck:
    async def test_allowed_with_the_reasons_and_the_position(self, client, log):
        answer = (await client.get(check_url())).json()
        assert answer == {
            "allowed": True,
            "reasons": [
                {"role_id": "viewer", "location_id": "plant", "scope": "location_and_below"}
            ],
            "position": log.position,
        }

    @pytest.mark.parametrize(
        ("url", "because"),
        [
            (check_url(key="nope"), "unknown_key"),
            (check_url(key="k2"), "disabled"),
            (check_url(location="hq"), "not_granted"),
            (check_url(permission="edit"), "not_granted"),
        ],
    )
    async def test_denials_say_why(self, client, url, because):
        answer = (await client.get(url)).json()
        assert answer["allowed"] is False
        assert answer["denied_because"] == because

    async def test_own_items_need_item_owner_key(self, client):
        assert (await client.get(check_url(permission="edit", item_owner="key"))).json()["allowed"]

    async def test_expiry_is_decided_at_query_time(self, client, live, log, clock):
        rules.apply(live.model, log.key(ev.ApiKeyEnabled, "k1", expires_at=NOW + timedelta(1)))
        assert (await client.get(check_url())).json()["allowed"]
        clock[0] = NOW + timedelta(days=2)
        assert (await client.get(check_url())).json()["denied_because"] == "expired"


class TestMinPosition:
    async def test_waits_for_the_consumer_to_apply_the_position(self, client, live, log):
        event = log.key(ev.ApiKeyDisabled, "k1", enabled=False)

        def consumer_applies() -> None:
            rules.apply(live.model, event)
            live.advanced()

        asyncio.get_running_loop().call_later(0.05, consumer_applies)
        response = await client.get(check_url(min_position=event.position))
        assert response.status_code == 200
        assert response.json() == {
            "allowed": False,
            "reasons": [],
            "position": event.position,
            "denied_because": "disabled",
        }

    async def test_503_with_the_current_position_when_not_reached(self, client, log):
        response = await client.get(check_url(min_position=log.position + 1))
        assert response.status_code == 503
        assert response.json()["position"] == log.position
        assert "error" in response.json()

    async def test_a_reached_position_answers_at_once(self, client, log):
        response = await client.get(f"/v1/keys/k1/permissions?min_position={log.position}")
        assert response.status_code == 200


class TestVerify:
    @pytest.mark.parametrize(
        ("body", "code", "key_id"),
        [
            ({"token": TOKEN}, "VALID", "k1"),
            ({"token": OLD_TOKEN}, "VALID", "k1"),
            ({"token": new_token()}, "NOT_FOUND", None),
            ({"token": TOKEN[:-1] + ("A" if TOKEN[-1] != "A" else "B")}, "MALFORMED", None),
            ({"token": "not-a-project-token"}, "NOT_FOUND", None),
        ],
    )
    async def test_codes(self, client, log, body, code, key_id):
        answer = (await client.post("/v1/verify", json=body)).json()
        assert answer["code"] == code
        assert answer["valid"] == (code == "VALID")
        assert answer["key_id"] == key_id
        assert answer["position"] == log.position
        assert "allowed" not in answer

    async def test_old_secret_stops_after_the_grace_period(self, client, clock):
        clock[0] = NOW + timedelta(hours=1)
        assert (await client.post("/v1/verify", json={"token": OLD_TOKEN})).json()["code"] == (
            "NOT_FOUND"
        )
        assert (await client.post("/v1/verify", json={"token": TOKEN})).json()["valid"]

    async def test_allowed_when_permission_and_location_given(self, client):
        body = {"token": TOKEN, "permission": "view", "location_id": "line"}
        assert (await client.post("/v1/verify", json=body)).json()["allowed"] is True
        body["location_id"] = "hq"
        assert (await client.post("/v1/verify", json=body)).json()["allowed"] is False

    async def test_inactive_key_codes(self, client, live, log):
        rules.apply(live.model, log.org(ev.ApiModuleDisabled))
        answer = (await client.post("/v1/verify", json={"token": TOKEN})).json()
        assert (answer["code"], answer["valid"]) == ("API_MODULE_DISABLED", False)


class TestListings:
    async def test_key_permissions_by_location(self, client, log):
        answer = (await client.get("/v1/keys/k1/permissions")).json()
        assert answer["status"] == "active"
        assert answer["organization_id"] == "org-1"
        assert answer["position"] == log.position
        by_location = {
            loc["location_id"]: {p["permission"]: p["scopes"] for p in loc["permissions"]}
            for loc in answer["locations"]
        }
        assert by_location == {
            "plant": {"view": ["location_and_below"], "edit": ["own_items"]},
            "line": {"view": ["location_and_below"], "edit": ["own_items"]},
        }

    async def test_key_permissions_a_page_at_a_time(self, client):
        whole = (await client.get("/v1/keys/k1/permissions")).json()
        assert whole["next_cursor"] is None
        listed, url = [], "/v1/keys/k1/permissions?limit=1"
        while True:
            page = (await client.get(url)).json()
            assert sum(len(loc["permissions"]) for loc in page["locations"]) == 1
            listed += [
                (loc["location_id"], p) for loc in page["locations"] for p in loc["permissions"]
            ]
            if page["next_cursor"] is None:
                break
            url = f"/v1/keys/k1/permissions?limit=1&cursor={page['next_cursor']}"
        assert listed == [
            (loc["location_id"], p) for loc in whole["locations"] for p in loc["permissions"]
        ]

    @pytest.mark.parametrize(("key_id", "status"), [("k2", "disabled"), ("zz", "unknown")])
    async def test_inactive_keys_list_no_permissions(self, client, key_id, status):
        answer = (await client.get(f"/v1/keys/{key_id}/permissions")).json()
        assert (answer["status"], answer["locations"]) == (status, [])

    async def test_organization_keys_holding_a_permission(self, client, live, log):
        url = "/v1/organizations/org-1/keys?permission=view&location_id=line"
        assert [k["key_id"] for k in (await client.get(url)).json()["keys"]] == ["k1"]
        rules.apply(live.model, log.key(ev.ApiKeyEnabled, "k2", enabled=True))
        answer = (await client.get(url)).json()
        assert [k["key_id"] for k in answer["keys"]] == ["k1", "k2"]
        assert answer["position"] == log.position


class TestBadInput:
    @pytest.mark.parametrize(
        "url",
        [
            check_url(extra="1"),
            check_url(key=""),
            check_url(key="a%20b"),
            check_url(key="x" * 201),
            check_url(min_position="-1"),
            check_url(min_position="abc"),
            check_url(item_owner="someone"),
            check_url() + "&key_id=k2",
            "/v1/check?key_id=k1",
            "/v1/keys/k1/permissions?verbose=1",
            "/v1/keys/a%20b/permissions",
            "/v1/keys/k1/permissions?limit=0",
            "/v1/keys/k1/permissions?limit=5001",
            "/v1/keys/k1/permissions?cursor=bm90IGpzb24",
            "/v1/keys/k1/permissions?cursor=no-space",
            "/v1/organizations/org-1/keys?permission=view",
        ],
    )
    async def test_bad_queries_are_4xx_json(self, client, url):
        response = await client.get(url)
        assert 400 <= response.status_code < 500
        assert "error" in response.json()

    @pytest.mark.parametrize(
        "content",
        [
            b"{not json",
            b"[]",
            b"{}",
            b'{"token": 5}',
            b'{"token": ""}',
            b'{"token": "x", "extra": 1}',
            b'{"token": "' + b"a" * 9000 + b'"}',
        ],
    )
    async def test_bad_verify_bodies_are_4xx_json(self, client, content):
        response = await client.post(
            "/v1/verify", content=content, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500
        assert "error" in response.json()


class TestService:
    async def test_openapi_document_lists_the_endpoints(self, client):
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
        assert {"/v1/check", "/v1/verify", "/v1/keys/{key_id}/permissions"} <= set(paths)
        listing = paths["/v1/keys/{key_id}/permissions"]["get"]
        parameters = {p["name"]: p["schema"] for p in listing["parameters"]}
        assert parameters["limit"]["default"] == 1000 and parameters["limit"]["maximum"] == 5000
        assert "cursor" in parameters

    async def test_health_and_readiness(self, client, live):
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 503
        live.mark_caught_up()
        assert (await client.get("/ready")).status_code == 200
