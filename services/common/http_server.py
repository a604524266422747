"""uvicorn without its own signal handling (each service owns SIGINT/SIGTERM and stops in
order), ticking once a second instead of ten times: an idle service should cost nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

TICK_SECONDS = 0.5


class HttpServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn refreshes its Date header when the counter is a multiple of 10 (once a
        # second at its 0.1 s tick): counting in tens keeps that on every tick
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            await asyncio.sleep(TICK_SECONDS)
