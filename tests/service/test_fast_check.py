"""The lean path for plain checks answers byte for byte as the framework's handler does.

A query with ``min_position=0`` (always reached) is passed on to the Litestar handler; the same
query without it is answered by the lean path in front of the framework.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest

from services.projections import model as rules
from services.projections.http.app import create_app, served
from services.projections.runtime.live import LiveReadModel
from tests.support.projection_api import NOW, populated

KEYS = ["k1", "k2", "missing"]
PERMISSIONS = ["view", "edit", "nothing"]
LOCATIONS = ["hq", "plant", "line", "elsewhere"]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    live = LiveReadModel(rules.fold(populated().events))
    app = served(create_app(live, clock=lambda: NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.mark.parametrize("owner", ["", "&item_owner=key"])
async def test_every_plain_check_matches_the_framework_answer(
    client: httpx.AsyncClient, owner: str
) -> None:
    compared = 0
    for key, permission, location in itertools.product(KEYS, PERMISSIONS, LOCATIONS):
        parts = [f"key_id={key}", f"permission={permission}", f"location_id={location}"]
        orders = itertools.permutations(parts) if location == "line" else [parts]
        for order in orders:
            query = "&".join(order) + owner
            lean = await client.get(f"/v1/check?{query}")
            framework = await client.get(f"/v1/check?{query}&min_position=0")
            assert lean.status_code == framework.status_code == 200, query
            assert lean.content == framework.content, query
            assert lean.headers["content-type"] == framework.headers["content-type"]
            compared += 1
    assert compared == len(KEYS) * len(PERMISSIONS) * (len(LOCATIONS) - 1 + 6)


@pytest.mark.parametrize(
    "query",
    [
        "key_id=k1&permission=view&location_id=line&item_owner=",
        "key_id=k1&permission=view&location_id=line&item_owner=other",
        "key_id=k1&key_id=k2&permission=view&location_id=line",
        "key_id=&permission=view&location_id=line",
        "key_id=k1&permission=view",
        "key_id=k1&permission=view&location_id=line&surprise=1",
    ],
)
async def test_what_is_not_plain_gets_the_framework_error(
    client: httpx.AsyncClient, query: str
) -> None:
    answer = await client.get(f"/v1/check?{query}")
    assert 400 <= answer.status_code < 500
    assert "error" in answer.json()
