"""The product's HTTP servers: uvicorn with the connection limits (``http_protocol``), without
its own signal handling (each service owns SIGINT/SIGTERM and stops in order), ticking twice a
second instead of ten times: an idle service should cost nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import Iterator
from typing import Any

import uvicorn

from services.common.http_limits import HttpLimits
from services.common.http_protocol import LimitedHttpProtocol, limited_protocol

TICK_SECONDS = 0.5
# descriptors the process needs besides its HTTP connections (Redis, stores, threads, logs)
RESERVED_DESCRIPTORS = 200
log = logging.getLogger("apikeys.http")


def http_config(app: Any, limits: HttpLimits, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for one of the product's servers (``options`` add to them); raises
    the process's descriptor limit if the connection cap needs it."""
    allow_descriptors(limits.max_connections + RESERVED_DESCRIPTORS)
    return uvicorn.Config(
        app,
        http=limited_protocol(limits),
        ws="none",
        # uvicorn's keep-alive timer takes any number of seconds, though typed int
        timeout_keep_alive=limits.keepalive_seconds,  # type: ignore[arg-type]
        log_level="warning",
        access_log=False,
        lifespan="off",
        **options,
    )


def allow_descriptors(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE to ``needed`` (as far as the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "%d file descriptors allowed, %d wanted: lower APIKEYS_HTTP_MAX_CONNECTIONS "
            "or raise the limit (ulimit -n)",
            soft,
            needed,
        )


class HttpServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn refreshes its Date header when the counter is a multiple of 10 (once a
        # second at its 0.1 s tick): counting in tens keeps that on every tick
        counter = 0
        loop = asyncio.get_running_loop()
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            await asyncio.sleep(TICK_SECONDS)
            now = loop.time()
            for connection in list(self.server_state.connections):
                if isinstance(connection, LimitedHttpProtocol):
                    connection.check_deadline(now)
