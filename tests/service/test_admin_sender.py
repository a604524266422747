"""The admin service's writes through the client library on a real Redis: a result comes back
as it is, a rejection as its code, no result in time as ``timeout`` (after one resend with the
same command_id), a command failing the contract as ``invalid_command`` (never sent)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from contracts import commands as c
from contracts.codec import json_encoder
from contracts.results import CommandResult, Error
from contracts.streams import DATA_FIELD
from services.admin.sender import attempt, new_client, refusal
from services.admin.settings import AdminSettings


async def answer_commands(client: aioredis.Redis, commands: str, results: str) -> None:
    """A stand-in keys service: rejects DisableApiModule, accepts the rest."""
    last = "0-0"
    while True:
        read = await client.xread({commands: last}, block=1000)
        for _stream, entries in read or ():
            for entry_id, fields in entries:
                last = entry_id
                command = c.command_decoder.decode(fields[DATA_FIELD.encode()])
                rejected = isinstance(command, c.DisableApiModule)
                answer = CommandResult(
                    command_id=command.command_id,
                    type=type(command).__name__,
                    status="rejected" if rejected else "accepted",
                    position=None if rejected else 42,
                    error=Error("unknown_organization", "no") if rejected else None,
                )
                await client.xadd(results, {DATA_FIELD: json_encoder.encode(answer)})


def settings(redis_url: str, unique: str, timeout: float = 5) -> AdminSettings:
    return AdminSettings(
        redis_url=redis_url,
        commands_stream=f"{unique}.commands",
        results_stream=f"{unique}.results",
        command_timeout=timeout,
    )


async def test_results_rejections_and_invalid_commands(redis_url: str, unique: str) -> None:
    raw = aioredis.Redis.from_url(redis_url)
    responder = asyncio.create_task(answer_commands(raw, f"{unique}.commands", f"{unique}.results"))
    try:
        async with new_client(settings(redis_url, unique)) as client:
            accepted = await attempt(
                client.send(c.EnableApiModule(command_id="a", organization_id="o"))
            )
            assert not isinstance(accepted, str) and accepted.position == 42
            assert refusal(accepted) is None
            rejected = await attempt(
                client.send(c.DisableApiModule(command_id="b", organization_id="o"))
            )
            assert not isinstance(rejected, str) and refusal(rejected) == "unknown_organization"
            too_long = c.EnableApiModule(command_id="c", organization_id="o" * 201)
            assert await attempt(client.send(too_long)) == "invalid_command"
    finally:
        responder.cancel()
        await raw.aclose()


async def test_no_result_in_time_is_a_timeout(redis_url: str, unique: str) -> None:
    async with new_client(settings(redis_url, unique, timeout=0.3)) as client:
        command = c.EnableApiModule(command_id="x", organization_id="o")
        assert await attempt(client.send(command)) == "timeout"
    raw = aioredis.Redis.from_url(redis_url)
    try:
        assert await raw.xlen(f"{unique}.commands") == 2  # sent, then resent once
    finally:
        await raw.aclose()
