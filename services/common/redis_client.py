"""Redis clients that reconnect by themselves (redis-py's own retry and health checks), for a
single Redis server or, with ``APIKEYS_REDIS_CLUSTER=true``, a Redis Cluster."""

from __future__ import annotations

from typing import Any, cast

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from client.cluster_reads import StreamKeysParser as StreamKeysParser
from client.cluster_reads import find_stream_keys_locally as find_stream_keys_locally
from client.cluster_reads import stream_read_keys as stream_read_keys

# the shared parts of the Redis layout, kept where the client library can use them too
from contracts.redis_layout import CLUSTER_SETTING as CLUSTER_SETTING
from contracts.redis_layout import cluster_nodes as cluster_nodes
from contracts.redis_layout import cluster_setting as cluster_setting
from contracts.redis_layout import same_slot_key as same_slot_key

# A blocking read waits at most this long on the server, so the socket timeout sits above it.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 2.0
HEALTH_CHECK_SECONDS = 15
MAX_CONNECTIONS = 16  # per server (on a cluster: per node)


def retry(retries: int) -> Retry:
    """redis-py's retry of a command on a dropped connection: exponential backoff from 0.05 s,
    capped at 0.5 s (8 retries ride out about 2.7 s, a Redis restart under ``apikeys run``)."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries)


def connect(
    url: str, *, cluster: bool = False, retries: int = 3, socket_timeout: float = SOCKET_TIMEOUT
) -> Redis:
    """A client whose commands are retried on a dropped connection (``retries`` times, with
    exponential backoff capped at 0.5 s) and whose idle connections are pinged before use.

    Use ``retries=0`` where a command must not be sent twice (an XADD with a generated id,
    a MULTI/EXEC whose reply was lost): the caller then checks and retries itself.

    With ``cluster`` the client is redis-py's ``RedisCluster``: ``url`` names any node and
    the others are discovered (and found again after a failover). It has the same command
    methods; what differs is that every script and transaction must keep to one hash slot.
    """
    options: dict[str, Any] = {
        "retry": retry(retries),
        "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "max_connections": MAX_CONNECTIONS,
    }
    if cluster:
        first, nodes = cluster_nodes(url)
        client = RedisCluster.from_url(
            first, startup_nodes=[ClusterNode(host, port) for host, port in nodes], **options
        )
        find_stream_keys_locally(client)
        # same command methods as Redis: the services hold either behind one type
        return cast(Redis, client)
    return Redis.from_url(url, **options)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)
