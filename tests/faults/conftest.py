"""Fixtures of the fault-injection suite: a private AOF Redis per test, stores on SQLite and
PostgreSQL, a process harness that leaves nothing behind, TCP proxies to cut links."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.deployment import RunDeployment, SplitDeployment, StoreUrls, Streams
from tests.faults.processes import ProcessHarness
from tests.faults.proxy import TcpProxy
from tests.faults.redis_server import RestartableRedis
from tests.support.stores import STORES


@pytest.fixture
def fault_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    """redis-server with AOF (appendfsync everysec), restartable on the same port and data."""
    server = RestartableRedis(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUrls:
    """The event store and the view store: SQLite files, or a PostgreSQL schema of the test's
    own (``postgres_url`` drops it afterwards). Override with indirect parametrization."""
    if request.param == "sqlite":
        return StoreUrls(
            "sqlite", f"sqlite:///{tmp_path / 'events.db'}", f"sqlite:///{tmp_path / 'views.db'}"
        )
    url = str(request.getfixturevalue("postgres_url"))
    return StoreUrls("postgres", url, url)


@pytest.fixture
def streams(unique: str) -> Streams:
    return Streams.unique(f"f{unique}")


@pytest.fixture
def harness(tmp_path: Path, unique: str) -> Iterator[ProcessHarness]:
    """Starts processes in their own groups, logs in tmp_path; at teardown kills every group,
    every descendant and every process tagged with this test's marker, and fails the test if
    any survives."""
    processes = ProcessHarness(tmp_path, marker=f"fault-{unique}")
    try:
        yield processes
    finally:
        survivors = processes.kill_everything()
        if survivors:
            pytest.fail(f"processes of the test survived the teardown: {survivors}")


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """A factory: ``tcp_proxy(host, port)`` -> a proxy to host:port, closed after the test."""
    made: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def split_deployment(
    store: StoreUrls, fault_redis: RestartableRedis, harness: ProcessHarness, streams: Streams
) -> SplitDeployment:
    """The two services, not started yet (a test may route one through a proxy first). The
    store comes first among the arguments so that its teardown (dropping a PostgreSQL schema)
    runs after the harness has killed every process."""
    return SplitDeployment(harness, fault_redis.url, store, streams)


@pytest.fixture
def run_deployment(harness: ProcessHarness, tmp_path: Path, streams: Streams) -> RunDeployment:
    return RunDeployment(harness, tmp_path, streams)
