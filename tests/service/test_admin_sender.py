"""The admin service's command sender on a real Redis: it adds the command to the commands
stream and returns its own result, read from the results stream from the entry current before
the send (results of other commands, older or newer, are passed over); no result in time is a
CommandTimeout."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from contracts import commands as c
from contracts.codec import json_encoder
from contracts.results import CommandResult
from contracts.streams import DATA_FIELD
from services.admin.sender import CommandTimeout, StreamCommandSender


def result(command_id: str, position: int) -> dict[str, bytes]:
    answer = CommandResult(
        command_id=command_id, type="EnableApiModule", status="accepted", position=position
    )
    return {DATA_FIELD: json_encoder.encode(answer)}


async def answer_commands(client: aioredis.Redis, commands: str, results: str) -> None:
    """A stand-in keys service: answers each command after an unrelated result."""
    last = "0-0"
    while True:
        read = await client.xread({commands: last}, block=1000)
        for _stream, entries in read or ():
            for entry_id, fields in entries:
                last = entry_id
                command = c.command_decoder.decode(fields[DATA_FIELD.encode()])
                await client.xadd(results, result("someone-else", 1))
                await client.xadd(results, result(command.command_id, 42))


async def test_send_returns_its_own_result(redis_url: str, unique: str) -> None:
    commands, results = f"{unique}.commands", f"{unique}.results"
    client = aioredis.Redis.from_url(redis_url)
    await client.xadd(results, result("old-one", 7))  # before the send: never read as ours
    responder = asyncio.create_task(answer_commands(client, commands, results))
    sender = StreamCommandSender(redis_url, commands, results, timeout=5)
    try:
        command = c.EnableApiModule(command_id=f"{unique}-1", organization_id="o")
        answer = await sender.send(command)
        assert (answer.command_id, answer.position) == (f"{unique}-1", 42)
        assert await client.xlen(commands) == 1
    finally:
        responder.cancel()
        await sender.close()
        await client.aclose()


async def test_no_result_in_time_is_a_timeout(redis_url: str, unique: str) -> None:
    sender = StreamCommandSender(redis_url, f"{unique}.c", f"{unique}.r", timeout=0.5)
    try:
        with pytest.raises(CommandTimeout):
            await sender.send(c.EnableApiModule(command_id="x", organization_id="o"))
    finally:
        await sender.close()
