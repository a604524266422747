"""How the admin service writes: it sends a command and awaits its result, nothing else.

``CommandSender`` is the narrow interface the pages use; ``StreamCommandSender`` adds the command
to the commands stream and follows the results stream from the entry current before the send
until the command's own result arrives (never a scan of the whole stream)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

import redis.asyncio as aioredis

from contracts import commands as c
from contracts.codec import json_encoder
from contracts.results import CommandResult, result_decoder
from contracts.streams import DATA_FIELD

READ_COUNT = 200


class CommandTimeout(Exception):
    """No result arrived in time: the command may still be applied later."""


class CommandSender(Protocol):
    async def send(self, command: c.Command) -> CommandResult: ...

    async def close(self) -> None: ...


def new_command_id() -> str:
    return f"admin-{uuid.uuid4().hex}"


class StreamCommandSender:
    def __init__(
        self,
        redis_url: str,
        commands_stream: str,
        results_stream: str,
        timeout: float = 10.0,
    ) -> None:
        self.redis = aioredis.Redis.from_url(redis_url, socket_timeout=timeout + 5)
        self.commands_stream = commands_stream
        self.results_stream = results_stream
        self.timeout = timeout

    async def send(self, command: c.Command) -> CommandResult:
        last: Any = await self.redis.xrevrange(self.results_stream, count=1)
        after: bytes = last[0][0] if last else b"0-0"
        await self.redis.xadd(self.commands_stream, {DATA_FIELD: json_encoder.encode(command)})
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            block = max(1, int(min(left, 1.0) * 1000))
            answer: Any = await self.redis.xread(
                {self.results_stream: after}, count=READ_COUNT, block=block
            )
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    after = entry_id
                    result = result_decoder.decode(fields[DATA_FIELD.encode()])
                    if result.command_id == command.command_id:
                        return result
        raise CommandTimeout(f"no result for {command.command_id} in {self.timeout:.0f} s")

    async def close(self) -> None:
        await self.redis.aclose()
