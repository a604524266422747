"""Answers say when the projection is behind what has been stored; with refuse_when_stale,
checks and verifies are refused instead (fail closed); /ready tells why it is not ready."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.projections import model as rules
from services.projections.http.app import create_app, served
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel
from tests.support.projection_api import NOW, TOKEN, check_url, populated

READY_LAG = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> Clock:
    return Clock()


@pytest.fixture
def live() -> LiveReadModel:
    model = LiveReadModel(rules.fold(populated().events))
    model.mark_caught_up()
    return model


@pytest.fixture
def freshness(wall: Clock) -> Freshness:
    return Freshness(READY_LAG, clock=wall)


async def client_for(
    live: LiveReadModel, freshness: Freshness, refuse: bool
) -> AsyncIterator[httpx.AsyncClient]:
    app = served(create_app(live, clock=lambda: NOW, freshness=freshness, refuse_when_stale=refuse))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def client(live: LiveReadModel, freshness: Freshness) -> AsyncIterator[httpx.AsyncClient]:
    async for http in client_for(live, freshness, refuse=False):
        yield http


@pytest.fixture
async def refusing(live: LiveReadModel, freshness: Freshness) -> AsyncIterator[httpx.AsyncClient]:
    async for http in client_for(live, freshness, refuse=True):
        yield http


def fall_behind(live: LiveReadModel, freshness: Freshness, wall: Clock, seconds: float) -> None:
    """The keys service stored an event the model has not applied, ``seconds`` ago (and
    Redis has just said so)."""
    freshness.observed((live.position + 1, wall.now - seconds))


QUERIES = [
    check_url(),
    check_url(item_owner="key"),
    "/v1/keys/k1/permissions",
    "/v1/organizations/acme/keys?permission=view&location_id=line",
]


class TestStaleAnswers:
    @pytest.mark.parametrize("url", QUERIES)
    async def test_current_answers_do_not_mention_staleness(self, client, url):
        answer = (await client.get(url)).json()
        assert "stale" not in answer and "lag_seconds" not in answer

    @pytest.mark.parametrize("url", QUERIES)
    async def test_answers_given_while_behind_say_so(self, client, live, freshness, wall, url):
        fall_behind(live, freshness, wall, READY_LAG + 2)
        response = await client.get(url)
        assert response.status_code == 200
        assert response.json()["stale"] is True
        assert response.json()["lag_seconds"] == pytest.approx(READY_LAG + 2)

    async def test_a_lag_within_the_ready_lag_is_not_stale(self, client, live, freshness, wall):
        fall_behind(live, freshness, wall, READY_LAG - 1)
        assert "stale" not in (await client.get(check_url())).json()
        assert (await client.get("/ready")).status_code == 200

    async def test_catching_up_clears_it(self, client, live, freshness, wall):
        fall_behind(live, freshness, wall, READY_LAG + 2)
        live.model.position += 1
        assert "stale" not in (await client.get(check_url())).json()

    async def test_verify_while_behind_says_so(self, client, live, freshness, wall):
        fall_behind(live, freshness, wall, READY_LAG + 2)
        answer = (await client.post("/v1/verify", json={"token": TOKEN})).json()
        assert answer["code"] == "VALID" and answer["stale"] is True


class TestRefuseWhenStale:
    async def test_check_and_verify_answer_503_while_behind(self, refusing, live, freshness, wall):
        fall_behind(live, freshness, wall, READY_LAG + 2)
        for response in (
            await refusing.get(check_url()),
            await refusing.post("/v1/verify", json={"token": TOKEN}),
        ):
            assert response.status_code == 503
            assert response.json()["error"] == "stale"
            assert response.json()["lag_seconds"] == pytest.approx(READY_LAG + 2)

    async def test_they_answer_normally_when_current(self, refusing):
        assert (await refusing.get(check_url())).json()["allowed"] is True
        assert (await refusing.post("/v1/verify", json={"token": TOKEN})).json()["valid"]


class TestReady:
    async def test_ready_when_current(self, client):
        response = await client.get("/ready")
        assert response.status_code == 200 and response.json()["reason"] is None

    async def test_not_ready_while_behind(self, client, live, freshness, wall):
        fall_behind(live, freshness, wall, READY_LAG + 2)
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["stored_position"] == live.position + 1
        assert "behind" in response.json()["reason"]

    async def test_not_ready_while_the_stream_or_the_store_is_unreachable(self, client, freshness):
        freshness.stream.failed(ConnectionError("refused"))
        assert (await client.get("/ready")).json()["reason"] == "events stream unreachable"
        freshness.stream.succeeded()
        freshness.store.failed(ConnectionError("refused"))
        assert (await client.get("/ready")).json()["reason"] == "view store unreachable"
        freshness.store.succeeded()
        assert (await client.get("/ready")).status_code == 200

    async def test_while_redis_is_unreachable_the_lag_grows_from_its_last_answer(
        self, client, freshness, wall
    ):
        freshness.observed(None)
        freshness.stream.failed(ConnectionError("refused"))
        wall.now += READY_LAG + 3
        answer = (await client.get(check_url())).json()
        assert answer["stale"] is True and answer["lag_seconds"] == pytest.approx(READY_LAG + 3)

    async def test_silence_longer_than_a_read_counts_as_lag_before_any_error(
        self, client, freshness, wall
    ):
        """A link that went silent raises no error until its socket times out."""
        freshness.observed(None)
        wall.now += freshness.read_block_seconds + READY_LAG + 2
        answer = (await client.get(check_url())).json()
        assert answer["stale"] is True and answer["lag_seconds"] == pytest.approx(READY_LAG + 2)
        assert (await client.get("/ready")).status_code == 503


class TestStarting:
    """The service answers /health before its model is loaded; queries wait or answer 503."""

    @pytest.fixture
    def loading(self) -> LiveReadModel:
        return LiveReadModel(loaded=False)

    @pytest.fixture
    async def starting(
        self, loading: LiveReadModel, freshness: Freshness
    ) -> AsyncIterator[httpx.AsyncClient]:
        async for http in client_for(loading, freshness, refuse=False):
            yield http

    async def test_health_answers_and_queries_say_starting(self, starting):
        assert (await starting.get("/health")).status_code == 200
        assert (await starting.get("/ready")).json()["reason"] == "starting"
        for response in (
            await starting.get(check_url()),
            await starting.post("/v1/verify", json={"token": TOKEN}),
        ):
            assert response.status_code == 503 and response.json()["error"] == "starting"

    async def test_a_query_with_min_position_waits_for_the_load(self, starting, loading):
        model = rules.fold(populated().events)
        pending = asyncio.ensure_future(starting.get(check_url(min_position=model.position)))
        await asyncio.sleep(0.05)
        assert not pending.done()
        loading.load(model)
        response = await pending
        assert response.status_code == 200 and response.json()["allowed"] is True
