"""The client's Redis connection: commands retried on a dropped connection by redis-py, to one
Redis server or (``cluster=True``) to a Redis Cluster whose nodes are discovered from any one."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from client.cluster_reads import find_stream_keys_locally
from contracts.redis_layout import cluster_nodes

# blocking reads wait at most BLOCK_MS on the server, so the socket timeout sits above it
BLOCK_MS = 1000
SOCKET_TIMEOUT = 10.0
POOL_WAIT_SECONDS = 30.0
RECONNECT_ERRORS = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,  # the cluster is failing over (CLUSTERDOWN)
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,  # no node reachable yet
    OSError,
)


def connect(
    url: str, *, cluster: bool = False, retries: int = 3, max_connections: int = 32
) -> Redis:
    """A client whose commands wait for a free connection (at most ``max_connections``)
    rather than fail when many run at once. With ``cluster``, redis-py's ``RedisCluster``
    (same command methods; ``url`` may name several nodes, comma-separated)."""
    options: dict[str, Any] = {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "max_connections": max_connections,
    }
    if cluster:
        first, nodes = cluster_nodes(url)
        client = cast(
            BoundedRedisCluster,
            BoundedRedisCluster.from_url(
                first, startup_nodes=[ClusterNode(host, port) for host, port in nodes], **options
            ),
        )
        client.command_slots = asyncio.Semaphore(max_connections)
        find_stream_keys_locally(client)  # reads keep working after a primary failover
        return cast(Redis, client)
    pool = BlockingConnectionPool.from_url(url, timeout=POOL_WAIT_SECONDS, **options)
    return Redis(connection_pool=pool)


class BoundedRedisCluster(RedisCluster):
    """A cluster client whose commands wait for one of ``max_connections`` slots: redis-py's
    cluster client has no blocking pool and raises ``MaxConnectionsError`` when more commands
    than connections run at once on a node (many concurrent sends)."""

    command_slots: asyncio.Semaphore

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.command_slots:
            return await super().execute_command(*args, **kwargs)


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` in a task that was cancelled and carried on: on Python 3.11,
    ``asyncio.wait_for`` returns normally when a cancellation lands just as the call it waits
    for completes (CPython gh-86296, fixed in 3.12), and redis-py sends every command through
    it when a socket timeout is set. A loop reading Redis calls this at every turn, so that a
    subscriber whose task is cancelled stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
