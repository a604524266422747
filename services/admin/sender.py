"""How the admin service writes: only by sending commands with the client library, which
publishes each, awaits its result (resending once with the same ``command_id`` when none
comes in time) and, for a new key or a rotation, makes the token on this side.

``attempt`` turns what can go wrong into the error codes the pages show beside a field."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import TypeVar

from client import ApiKeysClient, ClientSettings
from client.errors import CommandTimeout, InvalidCommand
from contracts.results import CommandResult
from services.admin.settings import AdminSettings

T = TypeVar("T")
RESENDS = 1  # a command lost on the way gets one more chance, under the same command_id


def new_command_id() -> str:
    return f"admin-{uuid.uuid4().hex}"


def new_client(settings: AdminSettings) -> ApiKeysClient:
    return ApiKeysClient(
        ClientSettings(
            redis_url=settings.redis_url,
            redis_cluster=settings.redis_cluster,
            partitions=settings.partitions,
            partitions_key=settings.partitions_key,
            projection_url=settings.projections_url,
            commands_stream=settings.commands_stream,
            results_stream=settings.results_stream,
            caller_token=settings.caller_token,
            send_timeout=settings.command_timeout,
            resends=RESENDS,
        )
    )


async def attempt(call: Awaitable[T]) -> T | str:
    """What the call returned, or the code of why nothing came back (``timeout``: the command
    may still be applied; ``invalid_command``: it failed the contract and was not sent)."""
    try:
        return await call
    except CommandTimeout:
        return "timeout"
    except InvalidCommand:
        return "invalid_command"


def refusal(result: CommandResult) -> str | None:
    """The error code of a rejected command (a resend answered ``duplicate`` included)."""
    if result.status == "rejected" or (result.status == "duplicate" and result.error):
        return result.error.code if result.error else "rejected"
    return None
