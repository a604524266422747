"""``send``: a command onto its commands stream, and its result back.

A command is checked against the contract before it leaves (``InvalidCommand``), gets a
``command_id`` when it has none, goes to its organization's partition stream, and is awaited on
the results stream. No result within the timeout: it is sent again with the same
``command_id`` (the keys service answers a resend ``duplicate`` with the first outcome, so
this is safe), a bounded number of times, then ``CommandTimeout``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TypeVar

import msgspec
from redis.asyncio import Redis

from client.connection import connect, text
from client.errors import CommandRejected, CommandTimeout, InvalidCommand, PartitionMismatch
from client.partitions import commands_stream_for
from client.results import ResultFollower
from client.settings import ClientSettings
from contracts.codec import json_encoder
from contracts.commands import Command, command_decoder
from contracts.results import CommandResult
from contracts.streams import DATA_FIELD

C = TypeVar("C", bound=Command)


def new_command_id() -> str:
    return uuid.uuid4().hex


def with_command_id(command: C) -> C:
    """The command, with a fresh ``command_id`` when it has none (empty or None)."""
    if command.command_id:
        return command
    return msgspec.structs.replace(command, command_id=new_command_id())


def is_rejection(result: CommandResult) -> bool:
    return result.status == "rejected" or (result.status == "duplicate" and bool(result.error))


class Publisher:
    def __init__(self, redis: Redis, settings: ClientSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.partitions = 1
        # the follower's blocking read gets a connection of its own
        self.results = ResultFollower(
            connect(settings.redis_url, cluster=settings.redis_cluster, max_connections=1),
            settings.results_stream,
        )
        self._slots = asyncio.Semaphore(settings.max_in_flight)

    async def start(self) -> None:
        self.partitions = await self.check_partitions()
        await self.results.start()

    async def close(self) -> None:
        await self.results.close()

    async def check_partitions(self) -> int:
        """The number of partitions to publish with (PartitionMismatch if the configured one
        differs from the one the keys service published)."""
        published_raw = await self.redis.get(self.settings.partitions_key)
        published = int(text(published_raw)) if published_raw is not None else None
        configured = self.settings.partitions
        if configured is not None and published is not None and configured != published:
            raise PartitionMismatch(configured, published)
        return configured or published or 1

    def stream_for(self, command: Command) -> str:
        return commands_stream_for(
            self.settings.commands_stream, command.organization_id, self.partitions
        )

    async def send(
        self,
        command: Command,
        *,
        timeout: float | None = None,
        resends: int | None = None,
        raise_on_reject: bool = False,
    ) -> CommandResult:
        command = with_command_id(command)
        payload = json_encoder.encode(command)
        try:
            command_decoder.decode(payload)
        except msgspec.ValidationError as error:
            raise InvalidCommand(f"{type(command).__name__}: {error}") from None
        async with self._slots:
            result = await self._send_and_wait(
                command,
                payload,
                self.settings.send_timeout if timeout is None else timeout,
                self.settings.resends if resends is None else resends,
            )
        if raise_on_reject and is_rejection(result):
            raise CommandRejected(result)
        return result

    async def _send_and_wait(
        self, command: Command, payload: bytes, timeout: float, resends: int
    ) -> CommandResult:
        started = time.monotonic()
        future = self.results.wait_for(command.command_id)
        try:
            for _attempt in range(resends + 1):
                await self.redis.xadd(self.stream_for(command), {DATA_FIELD: payload})
                done, _ = await asyncio.wait({future}, timeout=timeout)
                if done:
                    return future.result()
                self.partitions = await self.check_partitions()
        finally:
            self.results.forget(command.command_id, future)
        raise CommandTimeout(command.command_id, resends + 1, time.monotonic() - started)
