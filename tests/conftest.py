"""Shared fixtures: a private real Redis server per test session, PostgreSQL when reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.local.embedded_redis import EmbeddedRedis
from tests.support.redis_cluster import LocalRedisCluster
from tests.support.stores import STORES

POSTGRES_DSN = os.environ.get("APIKEYS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TIERS = (
    "unit",
    "service",
    "integration",
    "faults",
    "browser",
)  # a folder of tests/ each, and its marker
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tier marker comes from the folder a test lives in, never from the test itself;
    a test that needs PostgreSQL directly is marked `postgres` too, one that needs a Redis
    Cluster `cluster`."""
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of {TIERS}")
        item.add_marker(getattr(pytest.mark, tier))
        if {"postgres_dsn", "postgres_url"} & set(item.fixturenames):
            item.add_marker(pytest.mark.postgres)
        if {"redis_cluster", "private_redis_cluster"} & set(item.fixturenames):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), append_only=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A six-node Redis Cluster shared by the session's cluster tests (none kills a node of
    it: those use ``private_redis_cluster``); each test uses streams of its own."""
    with LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def private_redis_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A cluster of the test's own, which it may take nodes of down."""
    with LocalRedisCluster(tmp_path / "redis-cluster") as cluster:
        yield cluster


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session's private server; each test gets its own stream names via `streams`."""
    return redis_server.url


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_DSN}")
    return POSTGRES_DSN


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
def postgres_url(postgres_dsn: str) -> Iterator[str]:
    """A PostgreSQL URL with a schema of its own, dropped after the test."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_dsn}?schema={schema}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=STORES)
def event_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return str(request.getfixturevalue("postgres_url"))
