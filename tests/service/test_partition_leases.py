"""Leases, the registry of live replicas and the agreed number of partitions, against the
session's real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.keys.partitions.count import PartitionsMismatch, agree_on_partitions
from services.keys.partitions.leases import Leases, holder_name, lease_key
from services.keys.partitions.registry import Registry


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_lease_has_one_holder_until_it_expires(redis: Redis, unique: str) -> None:
    first = Leases(redis, holder_name("keys-a"), ttl_ms=300)
    second = Leases(redis, holder_name("keys-b"), ttl_ms=300)
    assert await first.acquire(unique)
    assert not await second.acquire(unique)
    assert not await second.renew(unique)
    assert await first.renew(unique)
    await asyncio.sleep(0.5)  # not renewed: expired
    assert await second.acquire(unique)
    assert not await first.renew(unique)
    assert (await second.holder_of(unique) or "").startswith("keys-b|")


async def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(
    redis: Redis, unique: str
) -> None:
    first = Leases(redis, holder_name("keys-a"), ttl_ms=60_000)
    second = Leases(redis, holder_name("keys-b"), ttl_ms=60_000)
    assert await first.acquire(unique)
    await second.release(unique)
    assert not await second.acquire(unique)
    await first.release(unique)
    assert await second.acquire(unique)


async def test_a_restarted_replica_takes_its_own_leases_over_at_once(
    redis: Redis, unique: str
) -> None:
    killed = Leases(redis, holder_name("keys-a"), ttl_ms=60_000)
    assert await killed.acquire(unique)
    restarted = Leases(redis, holder_name("keys-a"), ttl_ms=60_000)
    assert await restarted.acquire(unique)
    assert await restarted.holder_of(unique) == restarted.holder
    assert not await Leases(redis, holder_name("keys-b"), ttl_ms=1).acquire(unique)


async def test_renewing_takes_back_a_lease_that_expired_while_nobody_took_it(
    redis: Redis, unique: str
) -> None:
    leases = Leases(redis, holder_name("keys-a"), ttl_ms=60_000)
    assert await leases.acquire(unique)
    await redis.delete(lease_key(unique))  # as if it expired during an outage
    assert await leases.renew(unique)
    assert await redis.pttl(lease_key(unique)) > 0


async def test_the_registry_counts_replicas_until_they_stop_renewing(
    redis: Redis, unique: str
) -> None:
    key = f"{unique}.replicas"
    a = Registry(redis, key, "keys-a", ttl_ms=300)
    b = Registry(redis, key, "keys-b", ttl_ms=60_000)
    assert await a.heartbeat() == 1
    assert await b.heartbeat() == 2
    assert await a.heartbeat() == 2  # the same member again
    await asyncio.sleep(0.5)
    assert await b.heartbeat() == 1  # keys-a stopped renewing
    await b.leave()
    assert await redis.zcard(key) == 0


async def test_the_first_replica_sets_the_number_of_partitions_and_others_must_agree(
    redis: Redis, unique: str
) -> None:
    key = f"{unique}.partitions"
    await agree_on_partitions(redis, key, 4)
    await agree_on_partitions(redis, key, 4)
    assert int(await redis.get(key)) == 4
    with pytest.raises(PartitionsMismatch, match=r"says .* 4 partition\(s\).*APIKEYS_PARTITIONS=2"):
        await agree_on_partitions(redis, key, 2)
