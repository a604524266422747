"""The client's Redis connection: commands retried on a dropped connection by redis-py."""

from __future__ import annotations

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

# blocking reads wait at most BLOCK_MS on the server, so the socket timeout sits above it
BLOCK_MS = 1000
SOCKET_TIMEOUT = 10.0
POOL_WAIT_SECONDS = 30.0
RECONNECT_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


def connect(url: str, *, retries: int = 3, max_connections: int = 32) -> Redis:
    """A client whose commands wait for a free connection (at most ``max_connections``)
    rather than fail when many run at once."""
    pool = BlockingConnectionPool.from_url(
        url,
        timeout=POOL_WAIT_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        retry_on_error=[redis_errors.ConnectionError, redis_errors.TimeoutError],
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=2.0,
        socket_keepalive=True,
        health_check_interval=15,
        max_connections=max_connections,
    )
    return Redis(connection_pool=pool)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
