"""The product as processes for the client's tests: the keys service and the projection service
started alone against the session's private Redis and SQLite stores, once per module (each test
uses organizations and streams of its own), everything they started ended afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from client import ClientSettings
from services.local.embedded_redis import EmbeddedRedis
from tests.faults.deployment import SplitDeployment, StoreUrls, Streams, Topology
from tests.faults.processes import ProcessHarness


class Product:
    def __init__(self, topology: Topology, deployment: SplitDeployment) -> None:
        self.topology = topology
        self.deployment = deployment

    def settings(self, **overrides: object) -> ClientSettings:
        streams = self.topology.streams
        base = ClientSettings(
            redis_url=self.topology.redis_url,
            projection_url=self.topology.projections_url,
            commands_stream=streams.commands,
            results_stream=streams.results,
            events_stream=streams.events,
        )
        return ClientSettings(**{**base.__dict__, **overrides})


@pytest.fixture(scope="module")
def product(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Product]:
    workdir = tmp_path_factory.mktemp("product")
    unique = uuid.uuid4().hex[:10]
    harness = ProcessHarness(workdir, marker=f"client-{unique}")
    stores = StoreUrls(
        "sqlite", f"sqlite:///{workdir / 'events.db'}", f"sqlite:///{workdir / 'views.db'}"
    )
    deployment = SplitDeployment(harness, redis_server.url, stores, Streams.unique(f"c{unique}"))
    try:
        yield Product(deployment.start(), deployment)
    finally:
        survivors = harness.kill_everything()
        if survivors:
            pytest.fail(f"processes of the test survived the teardown: {survivors}")
