"""A private redis-server per test with AOF on, that a test can SIGKILL and start again."""

from __future__ import annotations

import signal
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.local.embedded_redis import EmbeddedRedis, free_port


class RestartableRedis:
    """redis-server with ``appendonly yes`` and ``appendfsync everysec``; ``kill()`` is a
    SIGKILL, ``start()`` brings it back on the same port from the same directory (its AOF)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.server = EmbeddedRedis(directory, port or free_port(), append_only=True)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> RestartableRedis:
        self.server.start()
        return self

    def kill(self) -> None:
        process = self.server.process
        if process is None or process.poll() is not None:
            raise AssertionError("redis-server is not running")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.server.process = None

    def stop(self) -> None:
        self.server.stop()

    def client(self, timeout: float = 5.0) -> redis.Redis:
        """A direct client that raises at the first error (no retries)."""
        return redis.Redis(
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
