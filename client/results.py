"""One reader per client following the results stream, handing each result to whoever waits
for its ``command_id``.

It starts at the entry id that is newest when the client starts (XREVRANGE ... COUNT 1), so
every result of a command sent afterwards lies ahead of it, and then only reads forward with a
blocking XREAD: the results stream is never scanned, however long it is.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from redis.asyncio import Redis

from client.connection import BLOCK_MS, RECONNECT_ERRORS, is_cluster, text
from contracts.results import CommandResult, result_decoder
from contracts.streams import DATA_FIELD

log = logging.getLogger("client.results")
READ_COUNT = 500
MAX_BACKOFF = 2.0
STOP_TIMEOUT = 2.0


class ResultFollower:
    def __init__(self, redis: Redis, stream: str) -> None:
        """``redis``: a client of the follower's own (its blocking read holds a connection,
        and closing it is how the read is stopped)."""
        self.redis = redis
        self.stream = stream
        self._stopping = False
        self.last_id = "0-0"
        self._waiters: dict[str, list[asyncio.Future[CommandResult]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        newest: Any = await self.redis.xrevrange(self.stream, count=1)
        self.last_id = text(newest[0][0]) if newest else "0-0"
        self._task = asyncio.create_task(self._follow(), name="apikeys-results")

    async def close(self) -> None:
        """Stop reading: the blocked read is ended by closing the connection under it
        (cancelling a task inside redis-py's blocking read can leave it hanging)."""
        self._stopping = True
        if self._task is not None:
            if not is_cluster(self.redis):
                await self.redis.connection_pool.disconnect(inuse_connections=True)
            # a cluster client would take a closed connection for a failed node and read
            # again: there the read is let end by itself (within BLOCK_MS)
            done, _ = await asyncio.wait({self._task}, timeout=STOP_TIMEOUT)
            if not done:
                self._task.cancel()
            self._task = None
        await self.redis.aclose()
        for waiters in self._waiters.values():
            for future in waiters:
                future.cancel()
        self._waiters.clear()

    def wait_for(self, command_id: str) -> asyncio.Future[CommandResult]:
        """A future resolved by the next result carrying ``command_id``; call ``forget``
        with it when done waiting."""
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(command_id, []).append(future)
        return future

    def forget(self, command_id: str, future: asyncio.Future[CommandResult]) -> None:
        waiters = self._waiters.get(command_id)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[command_id]

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def _follow(self) -> None:
        backoff = 0.05
        while not self._stopping:
            try:
                reply: Any = await self.redis.xread(
                    {self.stream: self.last_id}, count=READ_COUNT, block=BLOCK_MS
                )
            except RECONNECT_ERRORS as error:
                if self._stopping:
                    return
                log.warning("results stream unreachable (%s); retrying", type(error).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.05
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    self.last_id = text(entry_id)
                    self._dispatch(fields)

    def _dispatch(self, fields: dict[bytes, bytes]) -> None:
        if not self._waiters:
            return
        try:
            result = result_decoder.decode(fields[DATA_FIELD.encode()])
        except (KeyError, msgspec.DecodeError):
            return  # not a result: nothing waits for it
        for future in self._waiters.pop(result.command_id or "", ()):
            if not future.done():
                future.set_result(result)
