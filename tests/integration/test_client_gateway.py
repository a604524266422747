"""The gateway middleware in front of an app, verifying through the real projection service:
401 and 403 with JSON bodies, Bearer and Basic, the key in the scope, cache expiry, 503 (never
401) while the projection service is unreachable or answers 503."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Any

import httpx
from litestar import Litestar, Request, get

from client import ApiKeysClient
from client.middleware import ApiKeyMiddleware, path_rule
from client.queries import Queries
from tests.integration.conftest import Product


@get("/whoami")
async def whoami(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"key_id": request.state.api_key.key_id}


@get("/plants/{location_id:str}/report")
async def report(location_id: str) -> dict[str, str]:
    return {"location_id": location_id}


def gateway(middleware: dict[str, Any]) -> httpx.AsyncClient:
    rule = path_rule(r"^/plants/(?P<location_id>[^/]+)/report$", "view_private")
    app = Litestar(
        [whoami, report],
        middleware=[lambda app: ApiKeyMiddleware(app, requirement=rule, **middleware)],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def key_with_role(client: ApiKeysClient, role: bool) -> tuple[str, str, str, int]:
    organization = f"org-{uuid.uuid4().hex[:8]}"
    await client.enable_api_module(organization, raise_on_reject=True)
    await client.grant_api_administrator(organization, "alice", raise_on_reject=True)
    await client.define_location(organization, "plant-7", "Plant 7", raise_on_reject=True)
    await client.define_role(
        organization, "exporter", "Exporter", [("view_private", "location_and_below")]
    )
    roles = ["exporter"] if role else []
    created = await client.create_key(
        organization, "alice", "Gateway key", ["plant-7"], roles, raise_on_reject=True
    )
    assert created.result.position is not None
    await client.check(created.key_id, "x", "plant-7", min_position=created.result.position)
    return organization, created.key_id, created.token, created.result.position


async def test_the_middleware_answers_401_403_and_lets_a_valid_key_through(
    product: Product,
) -> None:
    async with ApiKeysClient(product.settings()) as client:
        _, key_id, token, _ = await key_with_role(client, role=True)
        _, _, roleless, _ = await key_with_role(client, role=False)
    settings = product.settings()
    async with gateway({"settings": settings}) as http:
        missing = await http.get("/whoami")
        assert missing.status_code == 401 and set(missing.json()) == {"error", "detail"}
        assert "www-authenticate" in missing.headers
        bad = await http.get("/whoami", headers={"Authorization": "Bearer apk_nonsense"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_key"
        bearer = await http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200 and bearer.json() == {"key_id": key_id}
        basic = base64.b64encode(f"api:{token}".encode()).decode()
        assert (await http.get("/whoami", headers={"Authorization": f"Basic {basic}"})).is_success
        other_user = base64.b64encode(f"bob:{token}".encode()).decode()
        wrong = await http.get("/whoami", headers={"Authorization": f"Basic {other_user}"})
        assert wrong.status_code == 401
        allowed = await http.get(
            "/plants/plant-7/report", headers={"Authorization": f"Bearer {token}"}
        )
        assert allowed.status_code == 200
        denied = await http.get(
            "/plants/plant-7/report", headers={"Authorization": f"Bearer {roleless}"}
        )
        assert denied.status_code == 403 and denied.json()["error"] == "forbidden"


async def test_a_positive_answer_is_cached_at_most_cache_seconds(product: Product) -> None:
    async with ApiKeysClient(product.settings()) as client:
        organization, key_id, token, _ = await key_with_role(client, role=True)
        headers = {"Authorization": f"Bearer {token}"}
        async with gateway({"settings": product.settings(), "cache_seconds": 1.5}) as http:
            assert (await http.get("/whoami", headers=headers)).status_code == 200
            disabled = await client.disable_key(organization, "alice", key_id)
            assert disabled.position is not None
            await client.check(key_id, "x", "plant-7", min_position=disabled.position)
            disabled_at = time.monotonic()
            # still cached: the projection already says disabled, the gateway has not asked
            assert (await http.get("/whoami", headers=headers)).status_code == 200
            while (await http.get("/whoami", headers=headers)).status_code == 200:
                assert time.monotonic() - disabled_at < 1.5 + 1.0, "cached past cache_seconds"
                await asyncio.sleep(0.05)
            # a negative answer is never cached: enabling works at the next request
            enabled = await client.enable_key(organization, "alice", key_id)
            assert enabled.position is not None
            await client.check(key_id, "x", "plant-7", min_position=enabled.position)
            assert (await http.get("/whoami", headers=headers)).status_code == 200


async def test_an_unreachable_or_unavailable_projection_is_503_never_401(
    product: Product,
) -> None:
    headers = {"Authorization": "Bearer apk_whatever"}
    async with gateway({"settings": product.settings(projection_url="http://127.0.0.1:9")}) as http:
        down = await http.get("/whoami", headers=headers)
    assert down.status_code == 503 and set(down.json()) == {"error", "detail"}

    def unavailable(_: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "starting", "detail": "loading"})

    queries = Queries(product.settings())
    queries._http = httpx.AsyncClient(
        transport=httpx.MockTransport(unavailable), base_url="http://projection"
    )
    async with gateway({"queries": queries}) as http:
        starting = await http.get("/whoami", headers=headers)
    assert starting.status_code == 503 and starting.json()["error"] == "unavailable"
