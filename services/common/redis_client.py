"""Redis clients that reconnect by themselves (redis-py's own retry and health checks), for a
single Redis server or, with ``APIKEYS_REDIS_CLUSTER=true``, a Redis Cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as redis_errors
from redis._parsers import AsyncCommandsParser
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
        find_stream_keys_locally(client)
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


def same_slot_key(key: str, suffix: str) -> str:
    """A key that a Redis Cluster keeps in ``key``'s hash slot (so one script may touch
    both): ``key``'s own hash tag if it has one, else ``key`` as the tag."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:
        return f"{key}{suffix}"
    return f"{{{key}}}{suffix}"
