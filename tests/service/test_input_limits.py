"""Every input limit's code end to end: commands written to a real Redis stream, read by the
consumer, applied by the processor on a real event store, answered on the results stream (or
dead-lettered). The numbers are lowered here so that the cases stay small; the unit tests
pin the real ones."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from contracts.common import ID_MAX
from contracts.streams import DEAD_LETTER_PAYLOAD_MAX_BYTES, ENTRY_MAX_BYTES
from services.keys.domain import api_key, organization
from services.keys.processor import CommandProcessor
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams.consumer import CommandConsumer, ensure_group
from tests.support.keys_settings import keys_settings
from tests.support.scenario import cid, create_key, organization_setup


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_key, "LOCATIONS_PER_KEY", 2)
    monkeypatch.setattr(api_key, "ROLES_PER_KEY", 1)
    monkeypatch.setattr(organization, "LOCATIONS_PER_ORGANIZATION", 3)
    monkeypatch.setattr(organization, "ROLES_PER_ORGANIZATION", 2)


class Service:
    def __init__(self, redis: Redis, settings: KeysSettings, app: ApiKeysApplication) -> None:
        self.redis, self.settings = redis, settings
        self.consumer = CommandConsumer(settings, CommandProcessor(app), redis)

    async def send(self, *commands: dict[str, Any] | bytes) -> None:
        if not commands:
            return
        for command in commands:
            raw = command if isinstance(command, bytes) else json.dumps(command).encode()
            await self.redis.xadd(self.settings.commands_stream, {"__data__": raw})
        reply = await self.redis.xreadgroup(
            self.settings.group, "c1", {self.settings.commands_stream: ">"}, count=1000
        )
        entries = list(reply[0][1])
        await self.consumer.handle([i for i, _ in entries], [d for _, d in entries])

    async def read(self, stream: str) -> list[dict[str, Any]]:
        return [json.loads(f[b"__data__"]) for _, f in await self.redis.xrange(stream)]

    async def result_of(self, command_id: str) -> dict[str, Any]:
        results = await self.read(self.settings.results_stream)
        (found,) = [r for r in results if r.get("command_id") == command_id]
        return found


@pytest.fixture
async def service(
    redis: Redis, redis_url: str, unique: str, event_store_url: str, tmp_path: Path
) -> AsyncIterator[Service]:
    settings = keys_settings(redis_url, unique)
    await ensure_group(redis, settings.commands_stream, settings.group)
    app = ApiKeysApplication(event_store_url)
    running = Service(redis, settings, app)
    # acme: L0 > L1, roles R0 and R1 (each at the lowered organization limits but one)
    await running.send(*organization_setup("acme", locations=2, roles=2))
    yield running
    app.close()


def directory(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "command_id": cid(), "organization_id": "acme", **fields}


def role(role_id: str, *permissions: str) -> dict[str, Any]:
    perms = [{"permission": p, "scope": "everywhere"} for p in permissions]
    return directory("DefineRole", role_id=role_id, name=role_id, permissions=perms)


CASES: dict[str, Any] = {
    "value_too_long": lambda: [
        directory(
            "ChangeRolePermissions",
            role_id="R0",
            permissions=[{"permission": "p" * 201, "scope": "everywhere"}],
        )
    ],
    "too_many_permissions": lambda: [
        directory(
            "ChangeRolePermissions",
            role_id="R0",
            permissions=[{"permission": f"p{i}", "scope": "everywhere"} for i in range(501)],
        )
    ],
    "too_many_locations": lambda: [
        directory("DefineLocation", location_id="L2", name="L2", parent_id=None),
        create_key("acme", "k9", locations=("L0", "L1", "L2")),
    ],
    "too_many_roles": lambda: [create_key("acme", "k9", roles=("R0", "R1"))],
    "organization_too_large": lambda: [
        directory("DefineLocation", location_id="L2", name="L2", parent_id=None),
        directory("DefineLocation", location_id="L3", name="L3", parent_id=None),
    ],
    "organization_too_large (roles)": lambda: [role("R2")],
    "name_too_long": lambda: [create_key("acme", "k9", name="n" * 101)],
    "invalid_secret_hint": lambda: [create_key("acme", "k9", secret_hint="h" * 33)],
    "invalid_command": lambda: [create_key("acme", "k" * (ID_MAX + 1))],
}


@pytest.mark.usefixtures("small_limits")
@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_command_past_a_limit_is_rejected_with_its_code(
    service: Service, case: str
) -> None:
    *before, past = CASES[case]()
    await service.send(*before)
    for command in before:
        assert (await service.result_of(command["command_id"]))["status"] == "accepted"
    await service.send(past)
    result = await service.result_of(past["command_id"])
    assert result["status"] == "rejected"
    assert result["error"]["code"] == case.split(" ")[0]


async def test_an_entry_over_the_size_limit_is_dead_lettered_and_consuming_goes_on(
    service: Service,
) -> None:
    huge = create_key("acme", "k-huge", name="n" * ENTRY_MAX_BYTES)
    after = create_key("acme", "k-after")
    await service.send(huge, after)

    (letter,) = await service.read(service.settings.dead_letter_stream)
    assert letter["reason"] == "entry_too_large"
    assert letter["truncated"] is True
    assert len(letter["payload"].encode()) == DEAD_LETTER_PAYLOAD_MAX_BYTES
    results = await service.read(service.settings.results_stream)
    assert huge["command_id"] not in {r["command_id"] for r in results}
    assert (await service.result_of(after["command_id"]))["status"] == "accepted"
    pending = await service.redis.xpending(service.settings.commands_stream, "apikeys-keys")
    assert pending["pending"] == 0
