"""The client library on a Redis Cluster against the real product: the keys service (three
partitions) and the projection service on the session's cluster; commands sent to each
organization's partition and their results awaited, events read from a position and in a
consumer group (a gap between deliveries included), queries, the synchronous client built from
the environment, and the admin service's writer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import ApiKeysClient, ClientSettings, EventsMissing, SyncClient
from client.errors import PartitionMismatch
from client.partitions import partition_of
from contracts import events as ev
from contracts.partitions import partition_stream
from services.admin.sender import attempt, new_client
from services.admin.settings import AdminSettings
from tests.faults.deployment import Streams
from tests.faults.processes import ProcessHarness
from tests.integration.cluster_deployment import ClusterDeployment
from tests.integration.test_client_queries_events import (
    collect,
    organization_with_key,
    pending_events_trimmed_before_they_were_handled,
    published,
)
from tests.support.redis_cluster import LocalRedisCluster

PARTITIONS = 3


class ClusterProduct:
    def __init__(self, deployment: ClusterDeployment, partitions_key: str) -> None:
        self.deployment = deployment
        self.partitions_key = partitions_key

    @property
    def streams(self) -> Streams:
        return self.deployment.streams

    def env(self) -> dict[str, str]:
        """The environment a publisher on this deployment is given."""
        return {
            "REDIS_URL": self.deployment.cluster.nodes_url,
            "APIKEYS_REDIS_CLUSTER": "true",
            "APIKEYS_PARTITIONS": str(PARTITIONS),
            "APIKEYS_PARTITIONS_KEY": self.partitions_key,
            "APIKEYS_PROJECTION_URL": self.deployment.projections["projections-1"],
            **self.streams.env(),
        }

    def settings(self, **overrides: object) -> ClientSettings:
        base = ClientSettings.from_env(self.env())
        return ClientSettings(**{**base.__dict__, **overrides})


@pytest.fixture(scope="module")
def product(
    redis_cluster: LocalRedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterProduct]:
    workdir: Path = tmp_path_factory.mktemp("client-cluster")
    unique = uuid.uuid4().hex[:10]
    harness = ProcessHarness(workdir, marker=f"client-cluster-{unique}")
    partitions_key = f"cc{unique}.partitions"
    deployment = ClusterDeployment(
        harness,
        redis_cluster,
        f"sqlite:///{workdir / 'events.db'}",
        Streams.unique(f"cc{unique}"),
        APIKEYS_PARTITIONS=str(PARTITIONS),
        APIKEYS_PARTITIONS_KEY=partitions_key,
    )
    try:
        deployment.start_keys("keys-1")
        deployment.start_projection("projections-1", f"sqlite:///{workdir / 'views.db'}")
        yield ClusterProduct(deployment, partitions_key)
    finally:
        deployment.close()
        survivors = harness.kill_everything()
        if survivors:
            pytest.fail(f"processes of the test survived the teardown: {survivors}")


def organizations_in(partitions: set[int], count: int) -> list[str]:
    """``count`` new organization ids whose partitions are exactly ``partitions``."""
    found: list[str] = []
    while len(found) < count or {partition_of(o, PARTITIONS) for o in found} != partitions:
        organization = f"org-{uuid.uuid4().hex[:8]}"
        if partition_of(organization, PARTITIONS) in partitions:
            found.append(organization)
    return found


async def test_commands_go_to_their_organizations_partition_and_results_come_back(
    product: ClusterProduct,
) -> None:
    organizations = organizations_in({0, 2}, 4)
    async with ApiKeysClient(product.settings()) as client:
        made = await asyncio.gather(*(organization_with_key(client, o) for o in organizations))
        assert (await client.publisher()).partitions == PARTITIONS
        for (_, key_id, position), organization in zip(made, organizations, strict=True):
            check = await client.check(key_id, "view_private", "plant-7", min_position=position)
            assert check.allowed and check.position >= position, organization

        # many sends at once on one organization: each its own result, none refused for want
        # of a connection
        locations = await asyncio.gather(
            *(
                client.define_location(organizations[0], f"loc-{n}", f"Location {n}", "plant-7")
                for n in range(200)
            )
        )
        assert [r.status for r in locations] == ["accepted"] * 200

        commands = product.streams.commands
        for partition in range(PARTITIONS):
            info = await client.redis.xinfo_stream(
                partition_stream(commands, partition, PARTITIONS)
            )
            written = info["last-generated-id"] not in (b"0-0", "0-0")
            assert written == (partition in {0, 2}), (partition, info)
        assert await client.redis.exists(commands) == 0  # nothing to the unpartitioned stream


async def test_a_partition_count_other_than_the_published_one_is_refused(
    product: ClusterProduct,
) -> None:
    async with ApiKeysClient(product.settings(partitions=PARTITIONS - 1)) as client:
        with pytest.raises(PartitionMismatch):
            await client.enable_api_module(f"org-{uuid.uuid4().hex[:8]}")


async def test_events_from_a_position_and_in_a_group_on_a_cluster(
    product: ClusterProduct,
) -> None:
    async with ApiKeysClient(product.settings()) as client:
        _, key_id, position = await organization_with_key(client, organizations_in({1}, 1)[0])
        await published(client, product.streams.events, position)
        created = await collect(client.events(after=position - 1), 1)
        assert isinstance(created[0], ev.ApiKeyCreated) and created[0].key_id == key_id

        total = await client.redis.xlen(product.streams.events)
        group = f"g-{uuid.uuid4().hex[:6]}"
        seen: list[int] = []

        async def drain(consumer: str) -> None:
            async for event in client.group_events(group, consumer, count=5):
                seen.append(event.position)
                await asyncio.sleep(0)
                if len(seen) >= total:
                    return

        tasks = {asyncio.create_task(drain(name)) for name in ("one", "two")}
        done, pending = await asyncio.wait(tasks, timeout=30, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        assert done and sorted(seen) == sorted(set(seen)) and len(seen) == total


async def test_a_gap_between_group_deliveries_is_raised_on_a_cluster(
    product: ClusterProduct,
) -> None:
    stream = f"window-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    async with ApiKeysClient(product.settings(events_stream=stream)) as client:
        _, _, position = await organization_with_key(client, organizations_in({0}, 1)[0])
        await published(client, product.streams.events, position)
        source = await client.redis.xrange(product.streams.events, count=5)
        positions = [int(entry_id.split(b"-")[0]) for entry_id, _ in source]
        for entry_id, fields in source[:2]:
            await client.redis.xadd(stream, fields, id=entry_id)
        one = client.group_events(group, "one")
        assert [e.position for e in await collect(one, 2)] == positions[:2]
        for entry_id, fields in source[2:]:
            await client.redis.xadd(stream, fields, id=entry_id)
        await client.redis.xtrim(stream, minid=source[3][0], approximate=False)
        with pytest.raises(EventsMissing) as missing:
            await collect(one, 1)
        assert (missing.value.after_position, missing.value.up_to_position) == (
            positions[1],
            positions[2],
        )
        await client.resume_group(group)
        rest = await collect(client.group_events(group, "one"), 2)
        assert [e.position for e in rest] == positions[3:5]


async def test_pending_events_trimmed_before_they_were_handled_raise_on_a_cluster(
    product: ClusterProduct,
) -> None:
    """Redis 7 (the cluster's) lists trimmed pending entries apart in XAUTOCLAIM's reply."""
    async with ApiKeysClient(product.settings()) as client:
        _, _, position = await organization_with_key(client, organizations_in({2}, 1)[0])
        await published(client, product.streams.events, position)
        await pending_events_trimmed_before_they_were_handled(client, product.streams.events)


def test_the_sync_client_from_the_environment_on_a_cluster(product: ClusterProduct) -> None:
    organization = organizations_in({1}, 1)[0]
    with SyncClient(ClientSettings.from_env(product.env())) as client:
        result = client.enable_api_module(organization)
        assert result.status == "accepted" and result.position


async def test_the_admin_writer_sends_to_the_cluster(product: ClusterProduct) -> None:
    settings = AdminSettings.from_env(product.env())
    assert settings.redis_cluster and settings.partitions == PARTITIONS
    assert settings.partitions_key == product.partitions_key
    async with new_client(settings) as client:
        organization = organizations_in({2}, 1)[0]
        result = await attempt(client.enable_api_module(organization))
        assert not isinstance(result, str) and result.status == "accepted"
