"""Redis clients that reconnect by themselves (redis-py's own retry and health checks), for a
single Redis server or, with ``APIKEYS_REDIS_CLUSTER=true``, a Redis Cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis import exceptions as redis_errors
from redis._parsers import AsyncCommandsParser
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

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


# The options of XREAD and XREADGROUP before STREAMS, and how many arguments each takes.
_READ_OPTIONS = {
    "GROUP": 2,
    "COUNT": 1,
    "MAXCOUNT": 1,
    "MAXSIZE": 1,
    "BLOCK": 1,
    "CLAIM": 1,
    "NOACK": 0,
}


class StreamKeysParser(AsyncCommandsParser):
    """redis-py's cluster client finds the keys of XREAD and XREADGROUP (commands whose keys
    "move") by asking one node, COMMAND GETKEYS on the node that was its default when it
    last read the cluster's layout. When that node dies, the lookup fails with a connection
    error that, unlike a failed command, does not make the client read the layout again: every
    later XREAD(GROUP) fails the same way, for ever, although the stream's own node is up (a
    partition's reader stopped after a primary failover). The stream keys are in the command
    itself (after STREAMS), so they are read from it here and no node is asked."""

    async def get_keys(self, *args: Any) -> tuple[Any, ...] | None:
        keys = stream_read_keys(args)
        if keys is not None:
            return keys
        return await super().get_keys(*args)


def stream_read_keys(args: Sequence[Any]) -> tuple[Any, ...] | None:
    """The stream keys of an XREAD or XREADGROUP command (its name first), None for any other
    command or one this does not understand (then redis-py's own lookup decides)."""
    if not args or _word(args[0]) not in ("XREAD", "XREADGROUP"):
        return None
    at = 1
    while at < len(args):
        word = _word(args[at])
        if word == "STREAMS":
            rest = args[at + 1 :]
            if not rest or len(rest) % 2:
                return None
            return tuple(rest[: len(rest) // 2])
        if word not in _READ_OPTIONS:
            return None
        at += 1 + _READ_OPTIONS[word]
    return None


def _word(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode(errors="replace").upper()
    return str(arg).upper()


def find_stream_keys_locally(client: Any) -> None:
    """Make a cluster client (ours, or the one FastStream's broker made) route XREAD and
    XREADGROUP by the stream named in the command (``StreamKeysParser``); done before the
    client's first command. A single server's client is left as it is."""
    if not is_cluster(client):
        return
    current = client.commands_parser
    if isinstance(current, StreamKeysParser):
        return
    parser = StreamKeysParser()
    for name in ("commands", "node"):  # what an earlier start-up learned, if any
        if hasattr(current, name):
            setattr(parser, name, getattr(current, name))
    client.commands_parser = parser


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)
