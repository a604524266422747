"""One PostgreSQL event store shared by several keys replicas, each through a pool of its
own with explicit bounds."""

from __future__ import annotations

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
