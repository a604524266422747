"""Redis clients that reconnect by themselves (redis-py's own retry and health checks)."""

from __future__ import annotations

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

# A blocking read waits at most this long on the server, so the socket timeout sits above it.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 2.0
HEALTH_CHECK_SECONDS = 15
MAX_CONNECTIONS = 16


def retry(retries: int) -> Retry:
    """redis-py's retry of a command on a dropped connection: exponential backoff from 0.05 s,
    capped at 0.5 s (8 retries ride out about 2.7 s, a Redis restart under ``apikeys run``)."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries)


def connect(url: str, *, retries: int = 3, socket_timeout: float = SOCKET_TIMEOUT) -> Redis:
    """A client whose commands are retried on a dropped connection (``retries`` times, with
    exponential backoff capped at 0.5 s) and whose idle connections are pinged before use.

    Use ``retries=0`` where a command must not be sent twice (an XADD with a generated id,
    a MULTI/EXEC whose reply was lost): the caller then checks and retries itself.
    """
    return Redis.from_url(
        url,
        retry=retry(retries),
        retry_on_error=[redis_errors.ConnectionError, redis_errors.TimeoutError],
        socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
        max_connections=MAX_CONNECTIONS,
    )
