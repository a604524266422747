"""Stream readers on a Redis Cluster keep reading after the primary that their client looked
keys up on dies. redis-py's cluster client resolves XREAD/XREADGROUP keys with COMMAND GETKEYS
on its default node; once that node died, every later read failed with a connection error for
ever (no layout refresh), even for a stream served by a live node: the partition reader that
stopped in the cluster failover test. Both the keys service's FastStream reader and the clients
of ``connect`` are checked, on a stream that the killed node does not serve."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from faststream.redis import StreamSub
from redis.asyncio.cluster import RedisCluster

from services.common.redis_client import connect
from services.keys.streams.broker import new_broker, start_broker
from tests.support.redis_cluster import LocalRedisCluster

READ_AGAIN_SECONDS = 20.0  # the failover (about 3-5 s here) and FastStream's 5 s back-off


def key_on(client: RedisCluster, port: int, prefix: str, same: bool = True) -> str:
    """A key whose slot the primary on ``port`` serves (or, with ``same=False``, does not)."""
    for n in range(10_000):
        key = f"{prefix}{n}"
        node = client.get_node_from_key(key)
        if (node is not None and int(node.port) == port) is same:
            return key
    raise AssertionError("no such key")


async def read_with_retries(client: Any, stream: str) -> Sequence[Any]:
    """XREADGROUP until it answers (the failover's own outage is waited out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READ_AGAIN_SECONDS
    while True:
        try:
            reply: Any = await client.xreadgroup("g", "reader", {stream: ">"}, count=10)
            return [entry for _, entries in reply for entry in entries] if reply else []
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_the_keys_services_reader_goes_on_after_its_lookup_node_dies(
    private_redis_cluster: LocalRedisCluster,
) -> None:
    cluster = private_redis_cluster
    writer = connect(cluster.url, cluster=True)
    broker = new_broker(cluster.url, logging.getLogger("test.cluster-reader"), cluster=True)
    received: list[int] = []
    try:
        reader: Any = await broker.connect()  # the client the subscriber will read with
        await reader.initialize()  # its layout, and the node it looks keys up on
        lookup_port = int(reader.commands_parser.node.port)
        stream = key_on(reader, lookup_port, "reads-", same=False)
        await writer.xgroup_create(stream, "g", id="0", mkstream=True)

        @broker.subscriber(stream=StreamSub(stream, group="g", consumer="c", polling_interval=500))
        async def on_entry(body: dict[str, int]) -> None:
            received.append(body["n"])

        await start_broker(broker)
        await writer.xadd(stream, {"__data__": b'{"n": 1}'})
        await wait_for(lambda: received == [1], "the first entry read")

        await asyncio.to_thread(cluster.kill_primary_of, key_on(writer, lookup_port, "victim-"))

        await writer.xadd(stream, {"__data__": b'{"n": 2}'})
        await wait_for(lambda: received == [1, 2], "an entry added after the failover read")
    finally:
        await broker.stop()
        await writer.aclose()


async def test_a_connected_client_reads_on_after_its_lookup_node_dies(
    private_redis_cluster: LocalRedisCluster,
) -> None:
    cluster = private_redis_cluster
    client: Any = connect(cluster.url, cluster=True, retries=0)
    try:
        await client.initialize()
        lookup_port = int(client.commands_parser.node.port)
        stream = key_on(client, lookup_port, "reads-", same=False)
        await client.xgroup_create(stream, "g", id="0", mkstream=True)

        await asyncio.to_thread(cluster.kill_primary_of, key_on(client, lookup_port, "victim-"))

        await client.xadd(stream, {"__data__": b'{"n": 1}'})
        entries = await read_with_retries(client, stream)
        assert [fields[b"__data__"] for _, fields in entries] == [b'{"n": 1}']
    finally:
        await client.aclose()


async def wait_for(condition: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READ_AGAIN_SECONDS
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"{what}: not within {READ_AGAIN_SECONDS} s")
        await asyncio.sleep(0.1)
