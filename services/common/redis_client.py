"""Redis clients that reconnect by themselves (redis-py's own retry and health checks), for a
single Redis server or, with ``APIKEYS_REDIS_CLUSTER=true``, a Redis Cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

# A blocking read waits at most this long on the server, so the socket timeout sits above it.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 2.0
HEALTH_CHECK_SECONDS = 15
MAX_CONNECTIONS = 16  # per server (on a cluster: per node)
CLUSTER_SETTING = "APIKEYS_REDIS_CLUSTER"


def retry(retries: int) -> Retry:
    """redis-py's retry of a command on a dropped connection: exponential backoff from 0.05 s,
    capped at 0.5 s (8 retries ride out about 2.7 s, a Redis restart under ``apikeys run``)."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries)


def cluster_setting(env: Mapping[str, str]) -> bool:
    """``APIKEYS_REDIS_CLUSTER``: true when ``REDIS_URL`` names a node of a Redis Cluster."""
    text = env.get(CLUSTER_SETTING, "false").strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{CLUSTER_SETTING} must be true or false, got {text!r}")


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
        # same command methods as Redis: the services hold either behind one type
        return cast(Redis, client)
    return Redis.from_url(url, **options)


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster's ``REDIS_URL`` may name several nodes, comma-separated
    (``redis://[user:password@]host1:port1,host2:port2/0``), so that a process started while
    one of them is down still finds the cluster. Returns the URL of the first node alone and
    every node's address."""
    parts = urlsplit(url)
    auth, at, hosts = parts.netloc.rpartition("@")
    nodes = []
    for address in hosts.split(","):
        host, colon, port = address.strip().rpartition(":")
        nodes.append((host, int(port)) if colon else (address.strip(), 6379))
    first = f"{auth}{at}{nodes[0][0]}:{nodes[0][1]}"
    return urlunsplit(parts._replace(netloc=first)), nodes


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def same_slot_key(key: str, suffix: str) -> str:
    """A key that a Redis Cluster keeps in ``key``'s hash slot (so one script may touch
    both): ``key``'s own hash tag if it has one, else ``key`` as the tag."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:
        return f"{key}{suffix}"
    return f"{{{key}}}{suffix}"
