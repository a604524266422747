"""One PostgreSQL event store shared by several keys replicas, each through a pool of its
own with explicit bounds; replicas started together on an empty schema all open it."""

from __future__ import annotations

import threading
import uuid

import psycopg
from eventsourcing.postgres import PostgresDatastore

from services.keys.processor import CommandProcessor
from services.keys.store import ApiKeysApplication, Fence
from services.keys.store.application import POOL_MAX_OVERFLOW, POOL_SIZE
from tests.service.test_fencing import entries


def test_replicas_share_one_store_through_bounded_pools(postgres_url: str) -> None:
    first, second = ApiKeysApplication(postgres_url), ApiKeysApplication(postgres_url)
    try:
        datastore = first.recorder.datastore  # type: ignore[attr-defined]
        assert isinstance(datastore, PostgresDatastore)
        assert datastore.pool.min_size == POOL_SIZE
        assert datastore.pool.max_size == POOL_SIZE + POOL_MAX_OVERFLOW
        batch = entries("acme")
        before = CommandProcessor(first, fence=Fence("p.0", first.take_epoch("p.0")))
        assert {r.status for r in before.process(batch)} == {"accepted"}
        after = CommandProcessor(second, fence=Fence("p.0", second.take_epoch("p.0")))
        stored = first.recorder.max_notification_id()
        assert second.recorder.max_notification_id() == stored
        # the successor sees what its predecessor stored: the same entries, redelivered, get
        # their original outcomes and store nothing again
        assert [r.position for r in after.process(batch)] == [
            r.position for r in before.process(batch)
        ]
        assert second.recorder.max_notification_id() == stored
    finally:
        first.close()
        second.close()


def test_replicas_opening_an_empty_schema_at_once_all_open_it(postgres_dsn: str) -> None:
    """Each replica creates the tables it finds missing: without taking turns, two doing it
    at the same moment made all but one fail (a duplicate row type, "relation already
    exists"), and that replica exited at start."""
    failures: list[str] = []
    for _ in range(5):  # the race was lost in most rounds before the fix
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        together = threading.Barrier(3)

        def open_store(
            url: str = f"{postgres_dsn}?schema={schema}", together: threading.Barrier = together
        ) -> None:
            together.wait()
            try:
                ApiKeysApplication(url).close()
            except Exception as error:
                failures.append(f"{type(error).__name__}: {error}")

        replicas = [threading.Thread(target=open_store) for _ in range(3)]
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.join()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    assert failures == []
